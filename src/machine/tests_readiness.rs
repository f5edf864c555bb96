//! Readiness, liveness, the notify protocol and the watchdog, in the core.

#![allow(clippy::wildcard_enum_match_arm)]

use std::time::Duration;

use super::behaviour::{Liveness, Readiness};
use super::tests::{CONT, TERM, code, log_ready, named};
use super::tests_support::*;
use super::*;
use crate::config::{Condition, RestartPolicy};

fn checked(interval_ms: u64) -> impl Fn(&mut Definition) {
    move |d: &mut Definition| {
        d.behaviour.readiness = Readiness::Checked {
            interval: Duration::from_millis(interval_ms),
        }
    }
}

fn probes(actions: &[Action]) -> Vec<Role> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Probe { role, .. } => Some(*role),
            _ => None,
        })
        .collect()
}

fn notify(d: &mut Definition) {
    d.behaviour.readiness = Readiness::Notify;
    d.behaviour.watchdog = Some(Duration::from_secs(3));
}

fn sender(h: &Harness, name: &str) -> Sender {
    let process = h.service(name).state.process().expect("a process");
    Sender {
        pid: process.pid,
        pgid: Some(process.pgid),
    }
}

// ----- passive readiness: fd, log -----

#[test]
fn log_readiness_is_watched_from_the_spawn() {
    let mut h = Harness::start(config(vec![log_ready("a")]));
    assert_eq!(probes(&h.take()), [Role::Readiness]);
    assert_eq!(h.state("a"), StateName::Starting);
    h.ready("a");
    assert_eq!(h.state("a"), StateName::Running);
    assert!(h.service("a").is_ready());
}

#[test]
fn readiness_timeout_counts_as_a_failed_start() {
    let mut s = log_ready("a");
    s.timeout_start = Duration::from_secs(3);
    let mut h = Harness::start(config(vec![s]));
    h.take();
    h.at(3_000);
    assert_eq!(h.state("a"), StateName::Stopping);
    assert_eq!(named(&h.take_signals()), [("a", TERM), ("a", CONT)]);
    h.exit("a", ExitStatus::Signal(15));
    assert_eq!(h.state("a"), StateName::Restarting);
    let Some(Failure::Stopped { cause, .. }) = h.service("a").last_error.as_deref().cloned() else {
        panic!("{:?}", h.service("a").last_error);
    };
    assert_eq!(*cause, Failure::NotReady(Duration::from_secs(3)));
}

#[test]
fn readiness_timeouts_spend_the_retry_budget_then_fail() {
    let mut s = log_ready("a");
    s.timeout_start = Duration::from_millis(100);
    s.max_retries = 2;
    s.retry_delay = Duration::from_millis(10);
    let mut h = Harness::start(config(vec![s]));
    for _ in 0..3 {
        h.next_deadline(); // timeout_start
        h.exit("a", ExitStatus::Signal(15));
        if h.state("a") == StateName::Failed {
            break;
        }
        h.next_deadline(); // backoff
    }
    assert_eq!(h.state("a"), StateName::Failed);
    assert!(matches!(
        h.service("a").last_error.as_deref(),
        Some(Failure::GaveUp { restarts: 2, .. })
    ));
}

#[test]
fn an_exit_before_ready_is_a_failed_start_even_with_code_0() {
    let mut s = log_ready("a");
    s.restart_policy = RestartPolicy::OnFailure;
    let mut h = Harness::start(config(vec![s]));
    h.exit("a", code(0));
    assert_eq!(h.state("a"), StateName::Restarting);
    assert!(matches!(
        h.service("a").last_error.as_deref(),
        Some(Failure::EarlyExit(_))
    ));
}

#[test]
fn a_ready_dependency_waits_for_real_readiness_and_started_does_not() {
    let mut ready_dep = spec("r");
    ready_dep.dependencies = vec![dep("db", Condition::Ready)];
    let mut started_dep = spec("s");
    started_dep.dependencies = vec![dep("db", Condition::Started)];
    let mut h = Harness::start_with(config(vec![spec("db"), ready_dep, started_dep]), |d| {
        if &*d.name == "db" {
            checked(1000)(d)
        }
    });
    assert_eq!(h.take_spawned(), ["db", "s"]);
    h.next_deadline(); // the first attempt
    h.probe("db", Role::Readiness, true);
    assert_eq!(h.take_spawned(), ["r"]);
}

// ----- checked readiness: exec, tcp, http, grpc -----

#[test]
fn readiness_attempts_ramp_up_to_the_interval() {
    let mut h = Harness::start_with(config(vec![spec("a")]), checked(1000));
    let mut gaps = Vec::new();
    let mut last = h.now;
    for _ in 0..7 {
        let at = h.next_deadline().expect("an attempt is scheduled");
        gaps.push(at.saturating_since(last).as_millis());
        assert_eq!(probes(&h.take()), [Role::Readiness]);
        last = h.now;
        h.probe("a", Role::Readiness, false);
    }
    assert_eq!(gaps, [50, 50, 100, 200, 400, 800, 1000]);
    let report = h.service("a").last_probe.clone().expect("a report");
    assert_eq!(report.failures_in_row, 7);
    assert!(!report.ok);
    h.next_deadline();
    h.probe("a", Role::Readiness, true);
    assert_eq!(h.state("a"), StateName::Running);
    assert_eq!(h.service("a").last_probe.as_ref().map(|r| r.ok), Some(true));
}

#[test]
fn no_attempt_is_scheduled_while_one_is_in_flight() {
    let mut h = Harness::start_with(config(vec![spec("a")]), checked(1000));
    h.next_deadline();
    h.take();
    // The attempt is out: only timeout_start is pending.
    let at = h.sup.poll_deadline().map(|d| d.saturating_since(h.now));
    assert_eq!(at, Some(Duration::from_millis(59_950)));
}

#[test]
fn a_late_probe_result_of_an_old_run_is_ignored() {
    let mut h = Harness::start_with(config(vec![spec("a")]), checked(1000));
    let (service, old) = (h.id("a"), h.run_id("a"));
    h.exit("a", code(1));
    h.next_deadline(); // backoff over: a new run
    h.event(Event::ProbeResult {
        service,
        run: old,
        role: Role::Readiness,
        ok: true,
        message: String::new(),
    });
    assert_eq!(h.state("a"), StateName::Starting);
}

// ----- min_uptime -----

#[test]
fn min_uptime_keeps_it_starting_and_an_early_exit_is_a_failure() {
    let up = |d: &mut Definition| d.behaviour.min_uptime = Duration::from_secs(2);
    let mut h = Harness::start_with(config(vec![spec("a")]), up);
    assert_eq!(h.state("a"), StateName::Starting);
    h.at(500);
    h.exit("a", code(0));
    assert_eq!(h.state("a"), StateName::Restarting);
    h.next_deadline();
    let since = h.now;
    h.next_deadline();
    assert_eq!(h.state("a"), StateName::Running);
    assert_eq!(h.now.saturating_since(since), Duration::from_secs(2));
}

// ----- liveness -----

fn live(d: &mut Definition) {
    d.behaviour.liveness = Some(Liveness {
        interval: Duration::from_secs(10),
        failures: 3,
    });
}

#[test]
fn liveness_runs_every_interval_while_running() {
    let mut h = Harness::start_with(config(vec![spec("a")]), live);
    h.take();
    assert_eq!(h.next_deadline(), Some(Instant::from_millis(10_000)));
    assert_eq!(probes(&h.take()), [Role::Liveness]);
    h.probe("a", Role::Liveness, true);
    assert_eq!(h.next_deadline(), Some(Instant::from_millis(20_000)));
}

#[test]
fn liveness_failing_in_a_row_restarts_as_a_failure() {
    let mut s = spec("a");
    s.restart_policy = RestartPolicy::OnFailure;
    let mut h = Harness::start_with(config(vec![s]), live);
    for round in 1..=3 {
        h.next_deadline();
        h.probe("a", Role::Liveness, false);
        let expected = if round < 3 {
            StateName::Running
        } else {
            StateName::Stopping
        };
        assert_eq!(h.state("a"), expected, "after {round} failures");
    }
    h.exit("a", code(0)); // even a clean exit counts as a failure here
    assert_eq!(h.state("a"), StateName::Restarting);
    assert_eq!(h.service("a").restarts, 1);
}

#[test]
fn a_passing_check_resets_the_failures_in_a_row() {
    let mut h = Harness::start_with(config(vec![spec("a")]), live);
    for ok in [false, false, true, false, false] {
        h.next_deadline();
        h.probe("a", Role::Liveness, ok);
    }
    assert_eq!(h.state("a"), StateName::Running);
}

// ----- notify -----

#[test]
fn notify_ready_status_and_watchdog() {
    let mut h = Harness::start_with(config(vec![spec("a")]), notify);
    assert_eq!(h.state("a"), StateName::Starting);
    let from = sender(&h, "a");
    let notice = Notice {
        ready: true,
        status: Some("accepting connections".into()),
        ..Notice::default()
    };
    h.notify("a", from, notice);
    assert_eq!(h.state("a"), StateName::Running);
    let status = h.service("a").status_text.clone();
    assert_eq!(status.as_deref(), Some("accepting connections"));
    // The watchdog: pinged in time, then not.
    h.at(2_000);
    let ping = Notice {
        watchdog: true,
        ..Notice::default()
    };
    h.notify("a", from, ping);
    h.at(4_999);
    assert_eq!(h.state("a"), StateName::Running);
    h.at(5_000);
    assert_eq!(h.state("a"), StateName::Stopping);
    assert!(matches!(
        h.service("a").last_error.as_deref(),
        Some(Failure::Watchdog(_))
    ));
}

#[test]
fn a_member_of_the_group_may_notify_and_a_stranger_may_not() {
    let mut h = Harness::start_with(config(vec![spec("a")]), notify);
    let own = sender(&h, "a");
    let stranger = Sender {
        pid: Pid(9999),
        pgid: Some(Pid(9999)),
    };
    let ready = Notice {
        ready: true,
        ..Notice::default()
    };
    h.take();
    h.notify("a", stranger, ready.clone());
    assert_eq!(h.state("a"), StateName::Starting);
    let a = h.id("a");
    let rejected = Action::Note(Note::NotifyRejected {
        service: a,
        pid: Pid(9999),
    });
    assert!(h.take().contains(&rejected));
    // systemd-notify sends from its own pid, in the service's group.
    let helper = Sender {
        pid: Pid(4242),
        pgid: own.pgid,
    };
    h.notify("a", helper, ready);
    assert_eq!(h.state("a"), StateName::Running);
}

#[test]
fn notify_ready_counts_only_for_notify_readiness() {
    let mut h = Harness::start(config(vec![log_ready("a")]));
    let from = sender(&h, "a");
    let ready = Notice {
        ready: true,
        ..Notice::default()
    };
    h.notify("a", from, ready);
    assert_eq!(h.state("a"), StateName::Starting);
}

#[test]
fn extend_timeout_moves_timeout_start() {
    let mut h = Harness::start_with(config(vec![spec("a")]), notify);
    let from = sender(&h, "a");
    h.at(50_000);
    let more = Notice {
        extend_timeout: Some(Duration::from_secs(30)),
        ..Notice::default()
    };
    h.notify("a", from, more);
    h.at(60_000);
    assert_eq!(h.state("a"), StateName::Starting);
    h.at(80_000);
    assert_eq!(h.state("a"), StateName::Stopping);
}

#[test]
fn mainpid_moves_the_main_process_within_the_group() {
    let mut h = Harness::start_with(config(vec![spec("a")]), notify);
    let from = sender(&h, "a");
    let pgid = from.pgid.expect("a group");
    let moved = Notice {
        main_pid: Some((Pid(5000), Some(pgid))),
        ..Notice::default()
    };
    h.take();
    h.notify("a", from, moved);
    assert_eq!(h.pid("a"), Some(Pid(5000)));
    let (a, run) = (h.id("a"), h.run_id("a"));
    let actions = h.take();
    assert!(actions.contains(&Action::Track {
        service: a,
        run,
        pid: Pid(5000)
    }));
    // The old main process exiting is not the service's exit.
    h.event(Event::Exited {
        service: a,
        run,
        pid: from.pid,
        status: code(0),
    });
    assert_eq!(h.state("a"), StateName::Starting);
    // A pid outside the group is refused.
    let outside = Notice {
        main_pid: Some((Pid(6000), Some(Pid(1)))),
        ..Notice::default()
    };
    h.notify("a", from, outside);
    assert_eq!(h.pid("a"), Some(Pid(5000)));
}
