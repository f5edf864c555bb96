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
        })
        .expect_err("no such cgroup");
    assert_eq!(err.stage, Stage::Cgroup);
    assert_eq!(err.source.raw_os_error(), Some(libc::ENOENT));
    assert!(err.to_string().starts_with("cgroup: "), "{err}");
    // Joining a real cgroup: `runtime::cgroup`'s tests (they need root).
}
