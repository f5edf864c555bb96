//! Real spawns with namespaces, scheduling settings and a verified program
//! fd, each through the single spawn and the batch. Namespaces need root:
//! without it the same tests check that the refusal is reported at its stage.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use super::*;
use crate::machine::ExitStatus;

fn cstrings(items: &[&str]) -> Vec<CString> {
    items
        .iter()
        .map(|s| CString::new(*s).expect("no NUL"))
        .collect()
}

fn shell(script: &str) -> ExecPlan {
    ExecPlan::new(
        cstrings(&["/bin/sh", "-c", script]),
        cstrings(&["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]),
        None,
        &[],
        &Credentials::default(),
    )
    .expect("a plan")
}

fn read_all(rx: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = fd::read_some(rx.as_raw_fd(), &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run `plan` once alone and once in a batch of two; the output of each run.
fn run_both_ways(plan: &ExecPlan) -> Vec<Result<String, SpawnError>> {
    let mut cloner = Cloner::new(None).expect("cloner");
    let mut outputs = Vec::new();
    let job = |plan| {
        let (rx, tx) = fd::pipe().expect("pipe");
        let job = Job {
            plan,
            stdout: Output::Pipe(tx),
            stderr: Output::Null,
            readiness: None,
            program: None,
        };
        (job, rx)
    };
    let (single, rx) = job(plan);
    outputs.push(cloner.spawn(single).map(|pid| {
        let text = read_all(&rx);
        crate::sys::reap_blocking(pid);
        text
    }));
    let (a, rx_a) = job(plan);
    let (b, rx_b) = job(plan);
    let results = cloner.spawn_all(vec![Ok(a), Ok(b)].into_iter());
    for (result, rx) in results.into_iter().zip([rx_a, rx_b]) {
        outputs.push(result.map(|pid| {
            let text = read_all(&rx);
            crate::sys::reap_blocking(pid);
            text
        }));
    }
    outputs
}

fn is_root() -> bool {
    crate::sys::effective_uid() == 0
}

#[test]
fn priorities_are_set_before_exec() {
    let mut plan = shell(
        "read -r stat < /proc/self/stat; set -- ${stat##*) }; echo \"nice ${17}\"; \
         echo \"oom $(cat /proc/self/oom_score_adj)\"; \
         grep Cpus_allowed_list /proc/self/status",
    );
    plan.set_priorities(&Priorities {
        nice: Some(7),
        io_priority: Some((IoClass::Idle, 0)),
        oom_score_adj: Some(321),
        cpu_affinity: Some(vec![0]),
    });
    let own_oom = || std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    let before = own_oom();
    for output in run_both_ways(&plan) {
        assert_eq!(own_oom(), before, "the parent's score must not change");
        let text = output.expect("spawned");
        assert!(text.contains("nice 7\n"), "{text}");
        assert!(text.contains("oom 321\n"), "{text}");
        assert!(text.contains("Cpus_allowed_list:\t0\n"), "{text}");
    }
}

#[test]
fn each_priority_that_fails_has_its_stage() {
    let mut cloner = Cloner::new(None).expect("cloner");
    let cases = [
        (
            Priorities {
                cpu_affinity: Some(vec![1023]),
                ..Priorities::default()
            },
            Stage::CpuAffinity,
            "cpu_affinity: ",
        ),
        (
            Priorities {
                oom_score_adj: Some(5000),
                ..Priorities::default()
            },
            Stage::OomScoreAdj,
            "oom_score_adj: ",
        ),
    ];
    for (priorities, stage, prefix) in cases {
        let mut plan = shell("exit 0");
        plan.set_priorities(&priorities);
        let err = cloner
            .spawn(Job {
                plan: &plan,
                stdout: Output::Null,
                stderr: Output::Null,
                readiness: None,
                program: None,
            })
            .expect_err("refused");
        assert_eq!(err.stage, stage, "{err}");
        assert!(err.to_string().starts_with(prefix), "{err}");
    }
}

/// `/proc/self/ns/KIND` of this process.
fn own_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn namespaces_are_new_with_root_and_a_refusal_names_its_stage() {
    let mut plan = shell(
        "for k in net mnt ipc uts; do echo \"$k $(readlink /proc/self/ns/$k)\"; done; \
         hostname; stat -c 'tmp %a %m' /tmp; ls /tmp | wc -l; \
         tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    );
    plan.set_namespaces(&Namespaces {
        network: true,
        tmp: true,
        ipc: true,
        hostname: Some("tend-ns-test".into()),
    });
    assert!(plan.isolates());
    for output in run_both_ways(&plan) {
        if !is_root() {
            let err = output.expect_err("refused without CAP_SYS_ADMIN");
            assert_eq!(err.stage, Stage::IsolateNetwork, "{err}");
            assert_eq!(
                err.to_string(),
                "isolate network: Operation not permitted (os error 1)"
            );
            continue;
        }
        let text = output.expect("spawned");
        for kind in ["net", "mnt", "ipc", "uts"] {
            let line = format!("{kind} {}\n", own_ns(kind));
            assert!(!text.contains(&line), "{kind} not new: {text}");
        }
        assert!(text.contains("tend-ns-test\n"), "{text}");
        assert!(text.contains("tmp 1777 /tmp\n"), "{text}");
        // An empty /tmp, and no interface but lo (`ip link` in the
        // integration tests shows it is up).
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.get(6..), Some(&["0", "lo"][..]), "{text}");
    }
}

#[test]
fn without_namespaces_the_child_shares_tends() {
    let plan = shell("for k in net mnt ipc uts; do echo \"$k $(readlink /proc/self/ns/$k)\"; done");
    assert!(!plan.isolates());
    for output in run_both_ways(&plan) {
        let text = output.expect("spawned");
        for kind in ["net", "mnt", "ipc", "uts"] {
            assert!(
                text.contains(&format!("{kind} {}\n", own_ns(kind))),
                "{text}"
            );
        }
    }
}

#[test]
fn a_program_fd_is_exec_ed_whatever_argv_0_says() {
    // argv[0] names nothing; the open /bin/sh runs, on whichever fd number,
    // also the one the readiness pipe takes.
    let plan = ExecPlan::new(
        cstrings(&["/no/such/program/tend", "-c", "echo \"ran as $0\""]),
        Vec::new(),
        None,
        &[],
        &Credentials::default(),
    )
    .expect("a plan");
    let mut cloner = Cloner::new(None).expect("cloner");
    for readiness_on_program in [false, true] {
        let sh = std::fs::File::open(std::fs::canonicalize("/bin/sh").expect("sh")).expect("open");
        let program = OwnedFd::from(sh);
        let (rx, tx) = fd::pipe().expect("pipe");
        let readiness = readiness_on_program.then(|| {
            let (_ready_rx, ready_tx) = fd::pipe().expect("pipe");
            ReadinessFd {
                write: ready_tx,
                target: program.as_raw_fd(),
            }
        });
        let pid = cloner
            .spawn(Job {
                plan: &plan,
                stdout: Output::Pipe(tx),
                stderr: Output::Null,
                readiness,
                program: Some(program),
            })
            .expect("spawned from the fd");
        assert_eq!(read_all(&rx), "ran as /no/such/program/tend\n");
        assert_eq!(crate::sys::reap_blocking(pid), Some(ExitStatus::Code(0)));
    }
}
