//! Real spawns of `/bin/sh`: the same tests check the concurrent batch and, built
//! with `--cfg tend_serial_spawn`, the serial one.

use std::ffi::CString;
use std::os::fd::OwnedFd;

use super::*;
use crate::machine::ExitStatus;

fn cstrings(items: &[&str]) -> Vec<CString> {
    items
        .iter()
        .map(|s| CString::new(*s).expect("no NUL"))
        .collect()
}

/// `/bin/sh -c SCRIPT ARGS...` with a tiny environment.
fn shell(script: &str, args: &[&str], dir: Option<&str>, limits: &[Rlimit]) -> ExecPlan {
    let mut argv = vec!["/bin/sh", "-c", script, "sh"];
    argv.extend_from_slice(args);
    ExecPlan::new(
        cstrings(&argv),
        cstrings(&["PATH=/usr/bin:/bin", "GREETING=hi"]),
        dir.map(|d| CString::new(d).expect("no NUL")),
        limits,
        &Credentials::default(),
    )
    .expect("a plan")
}

/// A job whose stdout is a pipe; returns the read end too.
fn piped(plan: &ExecPlan) -> (Job<'_>, OwnedFd) {
    let (rx, tx) = fd::pipe().expect("pipe");
    let job = Job {
        plan,
        stdout: Output::Pipe(tx),
        stderr: Output::Null,
        readiness: None,
        program: None,
    };
    (job, rx)
}

fn read_all(rx: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match fd::read_some(rx.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn wait(pid: libc::pid_t) -> Option<ExitStatus> {
    crate::sys::reap_blocking(pid)
}

#[test]
fn stages_round_trip_through_their_codes() {
    for stage in Stage::ALL {
        assert_eq!(Stage::from_code(stage as u32), stage);
    }
    assert_eq!(Stage::from_code(999), Stage::Exec);
}

#[test]
fn a_child_runs_its_plan_and_its_exit_is_seen() {
    let mut cloner = Cloner::new(None).expect("cloner");
    let plan = shell(
        "echo \"$GREETING $1 $(pwd)\"; exit 3",
        &["there"],
        Some("/"),
        &[],
    );
    let (job, rx) = piped(&plan);
    let pid = cloner.spawn(job).expect("spawned");
    assert_eq!(read_all(&rx), "hi there /\n");
    assert_eq!(wait(pid), Some(ExitStatus::Code(3)));
}

#[test]
fn a_failing_step_is_reported_with_its_stage() {
    let mut cloner = Cloner::new(None).expect("cloner");
    let plan = shell("exit 0", &[], Some("/no/such/dir/tend"), &[]);
    let err = cloner
        .spawn(Job {
            plan: &plan,
            stdout: Output::Null,
            stderr: Output::Null,
            readiness: None,
            program: None,
        })
        .expect_err("no such dir");
    assert_eq!(err.stage, Stage::WorkingDir);
    assert_eq!(err.source.raw_os_error(), Some(libc::ENOENT));
    assert!(err.to_string().starts_with("working_dir: "), "{err}");
    let missing = ExecPlan::new(
        cstrings(&["/no/such/program/tend"]),
        Vec::new(),
        None,
        &[],
        &Credentials::default(),
    )
    .expect("a plan");
    let err = cloner
        .spawn(Job {
            plan: &missing,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            readiness: None,
            program: None,
        })
        .expect_err("no such program");
    assert_eq!(err.stage, Stage::Exec);
    assert!(err.to_string().contains("No such file"), "{err}");
}

#[test]
fn an_empty_argv_is_refused() {
    let err = ExecPlan::new(Vec::new(), Vec::new(), None, &[], &Credentials::default())
        .expect_err("empty");
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn a_batch_gives_each_child_its_own_plan_and_keeps_the_order() {
    // 70 children: more than are in flight at once (64), so stack slots are
    // reused; a failure in the middle and a job that could not be prepared are
    // reported in their place.
    let mut cloner = Cloner::new(None).expect("cloner");
    let plans: Vec<ExecPlan> = (0..70)
        .map(|i| {
            let dir = if i == 33 {
                Some("/no/such/dir/tend")
            } else {
                None
            };
            shell("printf %s \"$1\"", &[&format!("child {i}")], dir, &[])
        })
        .collect();
    let mut readers = Vec::new();
    let jobs = plans.iter().enumerate().map(|(i, plan)| {
        if i == 50 {
            readers.push(None);
            return Err(SpawnError::new(Stage::Prepare, io::Error::other("skipped")));
        }
        let (job, rx) = piped(plan);
        readers.push(Some(rx));
        Ok(job)
    });
    let results = cloner.spawn_all(jobs.collect::<Vec<_>>().into_iter());
    assert_eq!(results.len(), 70);
    for (i, (result, rx)) in results.into_iter().zip(readers).enumerate() {
        match (i, result) {
            (33, Err(e)) => assert_eq!(e.stage, Stage::WorkingDir),
            (50, Err(e)) => assert_eq!(e.to_string(), "prepare: skipped"),
            (_, Ok(pid)) => {
                let rx = rx.expect("a pipe");
                assert_eq!(read_all(&rx), format!("child {i}"));
                assert_eq!(wait(pid), Some(ExitStatus::Code(0)));
            }
            (_, Err(e)) => panic!("child {i}: {e}"),
        }
    }
}

#[test]
fn nofile_goes_back_to_the_inherited_limit_unless_set() {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer (sys is allowed `unsafe`, in tests too).
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) },
        0
    );
    let inherited = libc::rlimit {
        rlim_cur: 100.min(current.rlim_max),
        rlim_max: current.rlim_max,
    };
    let mut cloner = Cloner::new(Some(inherited)).expect("cloner");
    let plain = shell("ulimit -n", &[], None, &[]);
    let set = shell(
        "ulimit -n",
        &[],
        None,
        &[Rlimit {
            resource: Resource::Nofile,
            value: 50.min(current.rlim_max),
        }],
    );
    for (plan, want) in [
        (&plain, inherited.rlim_cur),
        (&set, 50.min(current.rlim_max)),
    ] {
        let (job, rx) = piped(plan);
        let pid = cloner.spawn(job).expect("spawned");
        assert_eq!(read_all(&rx).trim(), want.to_string());
        wait(pid);
    }
}

/// `pipe:[inode]`, as /proc shows the pipe `fd` is.
fn pipe_name(fd: &OwnedFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// A job that prints what its fd `target` is and which fds it has, with a
/// readiness pipe on `target`; returns the job, its stdout and the readiness
/// pipe's read end.
fn with_readiness(plan: &ExecPlan, target: RawFd) -> (Job<'_>, OwnedFd, OwnedFd) {
    let (ready_rx, ready_tx) = fd::pipe().expect("pipe");
    let (mut job, rx) = piped(plan);
    job.readiness = Some(ReadinessFd {
        write: ready_tx,
        target,
    });
    (job, rx, ready_rx)
}

/// The fds this test process has without close-on-exec: what it inherited
/// from its own parent (a shell's, cargo's jobserver pipes), which every
/// child gets.
fn inherited() -> Vec<RawFd> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let fds = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok());
    // SAFETY: F_GETFD only reads an fd's flags; a closed one fails.
    fds.filter(|fd: &RawFd| *fd > 2 && unsafe { libc::fcntl(*fd, libc::F_GETFD) } == 0)
        .collect()
}

/// Checks the child's report: its fd `target` is the readiness pipe, and its
/// only other fds are 0, 1, 2 (and the one `ls` lists its folder with, and
/// those the test process inherited).
fn check_readiness(output: &str, target: RawFd, ready_rx: &OwnedFd) {
    let mut lines = output.lines();
    let name = lines.next().unwrap_or_default();
    assert_eq!(
        name,
        pipe_name(ready_rx),
        "fd {target} is the readiness pipe"
    );
    let fds: Vec<RawFd> = lines.filter_map(|l| l.trim().parse().ok()).collect();
    let inherited = inherited();
    let extra: Vec<&RawFd> = fds
        .iter()
        .filter(|fd| ![0, 1, 2, target].contains(fd) && !inherited.contains(fd))
        .collect();
    assert!(extra.len() <= 1, "fd {target}: the child has {fds:?}");
    assert!(fds.contains(&target), "fd {target}: the child has {fds:?}");
}

const SHOW_FDS: &str = "readlink /proc/self/fd/$1; ls /proc/self/fd";

#[test]
fn the_readiness_fd_is_placed_whatever_number_it_collides_with() {
    // The readiness fd's number is the user's choice, so it may be the number
    // of any fd tend hands the child: its own write end, an output pipe,
    // /dev/null or the report pipe (created right after `probe`, whose numbers
    // it then takes). Each must still end up as the readiness pipe, and a
    // failure after it must still be reported.
    let mut cloner = Cloner::new(None).expect("cloner");
    let mut targets: Vec<RawFd> = (3..=12).collect();
    for _ in 0..3 {
        let (ready_rx, ready_tx) = fd::pipe().expect("pipe");
        let (out_rx, out_tx) = fd::pipe().expect("pipe");
        let (probe_rx, probe_tx) = fd::pipe().expect("probe");
        let report = [probe_rx.as_raw_fd(), probe_tx.as_raw_fd()];
        targets.extend(report);
        targets.extend([ready_tx.as_raw_fd(), out_tx.as_raw_fd()]);
        drop((probe_rx, probe_tx));
        let target = report[1];
        let plan_here = shell(SHOW_FDS, &[&target.to_string()], None, &[]);
        let job = Job {
            plan: &plan_here,
            stdout: Output::Pipe(out_tx),
            stderr: Output::Null,
            readiness: Some(ReadinessFd {
                write: ready_tx,
                target,
            }),
            program: None,
        };
        let pid = cloner.spawn(job).expect("spawned");
        check_readiness(&read_all(&out_rx), target, &ready_rx);
        wait(pid);
    }
    targets.sort_unstable();
    targets.dedup();
    for target in targets {
        let plan = shell(SHOW_FDS, &[&target.to_string()], None, &[]);
        let (job, rx, ready_rx) = with_readiness(&plan, target);
        let pid = cloner.spawn(job).expect("spawned");
        check_readiness(&read_all(&rx), target, &ready_rx);
        wait(pid);
        let missing = ExecPlan::new(
            cstrings(&["/no/such/program/tend"]),
            Vec::new(),
            None,
            &[],
            &Credentials::default(),
        )
        .expect("a plan");
        let (job, _rx, _ready) = with_readiness(&missing, target);
        let err = cloner.spawn(job).expect_err("no such program");
        assert_eq!(err.stage, Stage::Exec, "fd {target}: {err}");
    }
}

#[test]
fn a_batch_places_each_readiness_fd() {
    let mut cloner = Cloner::new(None).expect("cloner");
    let targets: Vec<RawFd> = (3..=20).collect();
    let plans: Vec<ExecPlan> = targets
        .iter()
        .map(|t| shell(SHOW_FDS, &[&t.to_string()], None, &[]))
        .collect();
    let mut pipes = Vec::new();
    let jobs: Vec<Result<Job<'_>, SpawnError>> = plans
        .iter()
        .zip(&targets)
        .map(|(plan, &target)| {
            let (job, rx, ready_rx) = with_readiness(plan, target);
            pipes.push((rx, ready_rx));
            Ok(job)
        })
        .collect();
    let results = cloner.spawn_all(jobs.into_iter());
    for ((result, (rx, ready_rx)), &target) in results.into_iter().zip(&pipes).zip(&targets) {
        let pid = result.expect("spawned");
        check_readiness(&read_all(rx), target, ready_rx);
        wait(pid);
    }
}

#[test]
fn a_readiness_fd_below_3_is_refused() {
    let mut cloner = Cloner::new(None).expect("cloner");
    let plan = shell("exit 0", &[], None, &[]);
    for target in [-1, 0, 1, 2] {
        let (job, _rx, _ready) = with_readiness(&plan, target);
        let err = cloner.spawn(job).expect_err("refused");
        assert_eq!(err.stage, Stage::Prepare);
        assert_eq!(err.source.raw_os_error(), Some(libc::EINVAL));
    }
}

#[test]
fn a_cgroup_that_cannot_be_joined_fails_the_spawn_at_that_stage() {
    let mut cloner = Cloner::new(None).expect("cloner");
    let mut plan = shell("exit 0", &[], None, &[]);
    plan.set_cgroup(Some(
        CString::new("/no/such/cgroup/cgroup.procs").expect("path"),
    ));
    let err = cloner
        .spawn(Job {
            plan: &plan,
            stdout: Output::Null,
            stderr: Output::Null,
            readiness: None,
            program: None,
        })
        .expect_err("no such cgroup");
    assert_eq!(err.stage, Stage::Cgroup);
    assert_eq!(err.source.raw_os_error(), Some(libc::ENOENT));
    assert!(err.to_string().starts_with("cgroup: "), "{err}");
    // Joining a real cgroup: `runtime::cgroup`'s tests (they need root).
}
