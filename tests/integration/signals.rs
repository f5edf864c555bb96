//! Signals never end tend but by SIGTERM, SIGINT, `tend shutdown` or SIGKILL
//! (SPEC §5): every other signal that would end a process is ignored and logged
//! once (SIGUSR2 re-executes tend: `reexec.rs`), and what tend's parent blocked
//! or ignored cannot blind it.

use std::os::unix::process::CommandExt;

use serde_json::json;

use crate::support::*;

/// The standard signals tend must survive, with their names (the fault signals
/// among them: sent with kill, they are not faults).
const STANDARD: [(i32, &str); 18] = [
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGSYS, "SIGSYS"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGABRT, "SIGABRT"),
];

/// Every signal to send, with the name tend logs it by (tend is built against
/// the same libc as this test, so it has the same SIGRTMIN).
fn every_signal() -> Vec<(i32, String)> {
    let mut all: Vec<(i32, String)> = STANDARD
        .iter()
        .map(|(n, name)| (*n, name.to_string()))
        .collect();
    let first = libc::SIGRTMIN();
    for n in first..=libc::SIGRTMAX() {
        let name = match n - first {
            0 => "SIGRTMIN".to_string(),
            k => format!("SIGRTMIN+{k}"),
        };
        all.push((n, name));
    }
    all
}

fn send(pid: i32, signal: i32) {
    // SAFETY: kill with a pid this test spawned and has not reaped.
    let ret = unsafe { libc::kill(pid, signal) };
    assert_eq!(ret, 0, "kill({pid}, {signal})");
}

#[test]
fn every_other_signal_is_ignored_and_logged_once() {
    let dir = TestDir::new("ignored");
    let config = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(),
            "services": [{"name": "s", "command": ["sleep", "1000"]}]})
        .to_string(),
    );
    // At debug level, repeats are logged too (as debug lines), so the test can
    // tell when tend has seen them.
    let tend = Tend::start_with(&dir, &config, &[("TEND_LOG", "debug")]);
    tend.wait_state("s", "running");
    let service_pid = tend.service_pid("s");
    let me = std::process::id();
    let signals = every_signal();
    // The warning, once: `...from pid N; tend ends only by...`; the debug
    // line for repeats ends in `again`.
    let first = |name: &str| format!("ignoring {name} from pid {me};");
    let again = |name: &str| format!("ignoring {name} from pid {me} again");

    // A burst of all of them at once.
    for (n, _) in &signals {
        send(tend.pid(), *n);
    }
    for (_, name) in &signals {
        tend.wait_log(&first(name));
    }
    // One by one, again: each is seen (a debug line) but not warned about again.
    for (n, name) in &signals {
        send(tend.pid(), *n);
        tend.wait_log(&again(name));
    }
    let log = tend.log();
    for (_, name) in &signals {
        assert_eq!(log.matches(&first(name)).count(), 1, "{name}\n{log}");
    }
    assert!(!log.contains("ignoring SIGUSR2"), "{log}");
    // tend and its service kept running, and tend still answers.
    let (code, out, _) = tend.client(&["status"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(tend.service_pid("s"), service_pid);
    assert_eq!(tend.state("s"), "running");
    let mut tend = tend;
    assert!(
        tend.child.try_wait().expect("try_wait").is_none(),
        "tend ended"
    );
    // SIGTERM still ends it, with 0.
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
}

#[test]
fn a_parent_that_blocked_or_ignored_signals_cannot_blind_tend() {
    let dir = TestDir::new("blinded");
    let config = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "services": [
            {"name": "crash", "command": ["sh", "-c", "exit 1"],
             "retry_delay": "10ms", "max_retry_delay": "10ms", "max_retries": 1000},
            {"name": "s", "command": ["sleep", "1000"]}]})
        .to_string(),
    );
    let mut tend = Tend::start_customized(&dir, &config, |command| {
        // SAFETY: sigprocmask and signal are async-signal-safe, as pre_exec
        // requires; both survive the exec into tend.
        unsafe {
            command.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGCHLD);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                libc::signal(libc::SIGTSTP, libc::SIG_IGN);
                Ok(())
            });
        }
    });
    // SIGCHLD gets through: the crashing service is restarted again and again.
    tend.wait_until("crash restarted 3 times", |t| {
        t.service("crash")["restarts"].as_u64().unwrap_or(0) >= 3
    });
    // Nothing is blocked or ignored any more, in tend or in its services. In
    // tend, libc's reserved signals (32 up to SIGRTMIN) are left as they came:
    // libc refuses to change them, and this test's own parent may ignore them.
    let reserved: u64 = (32..libc::SIGRTMIN()).map(|s| 1u64 << (s - 1)).sum();
    let tend_status = proc_status(tend.pid());
    // Only libc's reserved signals stay blocked in tend (so that one sent with
    // kill stays pending instead of ending tend: sys::signal::reserved).
    assert_eq!(sig_mask(&tend_status, "SigBlk"), reserved, "{tend_status}");
    assert_eq!(
        sig_mask(&tend_status, "SigIgn") & !reserved,
        0,
        "{tend_status}"
    );
    let service = tend.service_pid("s").expect("a pid");
    let status = proc_status(service as i32);
    assert_eq!(sig_mask(&status, "SigBlk"), 0, "{status}");
    assert_eq!(sig_mask(&status, "SigIgn"), 0, "{status}");
    // And SIGTERM shuts it down.
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0), "{}", tend.log());
    poll_until("the service is stopped", PATIENCE, || is_dead(service));
}

fn proc_status(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status")
}

/// A signal set line of /proc/PID/status (`SigBlk:\t0000000000010000`).
fn sig_mask(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}
