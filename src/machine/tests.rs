//! State-by-state tests of the core, with a fake clock and no processes.
//!
//! Sections: start and dependencies; exits and restart policy; backoff and the
//! retry budget; stop; shutdown; commands and their answers. Readiness,
//! liveness and notify are in `tests_readiness.rs`; reload and the invariant
//! walk in `tests_reload.rs`; the whole table in `tests_table.rs`.

#![allow(clippy::wildcard_enum_match_arm)]

use std::time::Duration;

use super::tests_support::*;
use super::*;
use crate::config::{Condition, Readiness, RestartPolicy, Signal};

pub(super) const TERM: Signal = Signal::TERM;
pub(super) const KILL: Signal = Signal::KILL;
pub(super) const CONT: Signal = Signal::CONT;

pub(super) fn code(c: i32) -> ExitStatus {
    ExitStatus::Code(c)
}

pub(super) fn named(v: &[(String, Signal)]) -> Vec<(&str, Signal)> {
    v.iter().map(|(n, s)| (n.as_str(), *s)).collect()
}

pub(super) fn log_ready(name: &str) -> crate::config::ServiceSpec {
    let mut s = spec(name);
    s.readiness = Some(Box::new(Readiness::Log {
        pattern: "up".into(),
    }));
    s
}

// ----- start and dependencies -----

#[test]
fn independent_services_start_in_the_same_turn() {
    let mut h = Harness::start(config(vec![spec("a"), spec("b"), spec("c")]));
    let actions = h.take();
    assert_eq!(h.spawned(&actions), ["a", "b", "c"]);
    for n in ["a", "b", "c"] {
        assert_eq!(h.state(n), StateName::Running);
        assert!(h.pid(n).is_some());
    }
}

#[test]
fn a_start_is_one_log_line() {
    let mut h = Harness::start(config(vec![spec("a")]));
    let lines: Vec<_> = h
        .take()
        .into_iter()
        .filter_map(|a| match a {
            Action::Transitioned(t) => Some((t.from, t.to, t.why)),
            _ => None,
        })
        .collect();
    assert_eq!(
        lines,
        [(StateName::Pending, StateName::Running, Why::Spawned)]
    );
}

#[test]
fn disabled_service_is_stopped_and_not_spawned() {
    let mut s = spec("a");
    s.enabled = false;
    let mut h = Harness::start(config(vec![s]));
    assert!(h.take_spawned().is_empty());
    assert_eq!(h.state("a"), StateName::Stopped);
}

#[test]
fn ready_dependency_waits_for_running() {
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Ready)];
    let mut h = Harness::start(config(vec![web, log_ready("db")]));
    assert_eq!(h.take_spawned(), ["db"]);
    assert_eq!(h.state("db"), StateName::Starting);
    assert_eq!(h.state("web"), StateName::Pending);
    assert_eq!(h.sup.waiting_for(h.id("web")), Some("db"));
    h.ready("db");
    assert_eq!(h.take_spawned(), ["web"]);
    assert_eq!(h.sup.waiting_for(h.id("web")), None);
}

#[test]
fn started_dependency_is_met_at_spawn() {
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Started)];
    let mut h = Harness::start(config(vec![log_ready("db"), web]));
    assert_eq!(h.take_spawned(), ["db", "web"]);
}

#[test]
fn completed_dependency_waits_for_oneshot_success() {
    let mut web = spec("web");
    web.dependencies = vec![dep("migrate", Condition::Completed)];
    let mut h = Harness::start(config(vec![oneshot("migrate"), web]));
    assert_eq!(h.take_spawned(), ["migrate"]);
    assert_eq!(h.state("migrate"), StateName::Starting);
    h.exit("migrate", code(0));
    assert_eq!(h.state("migrate"), StateName::Stopped);
    assert_eq!(h.take_spawned(), ["web"]);
}

#[test]
fn ready_on_a_oneshot_means_completed() {
    let mut web = spec("web");
    web.dependencies = vec![dep("init", Condition::Ready)];
    let mut h = Harness::start(config(vec![oneshot("init"), web]));
    assert_eq!(h.take_spawned(), ["init"]);
    h.exit("init", code(0));
    assert_eq!(h.take_spawned(), ["web"]);
}

#[test]
fn failed_dependency_keeps_dependent_pending_and_says_which() {
    let mut job = oneshot("job");
    job.restart_policy = RestartPolicy::Never;
    let mut web = spec("web");
    web.dependencies = vec![dep("job", Condition::Completed)];
    let mut h = Harness::start(config(vec![job, web]));
    h.exit("job", code(4));
    assert_eq!(h.state("job"), StateName::Failed);
    assert_eq!(h.state("web"), StateName::Pending);
    assert_eq!(h.sup.waiting_for(h.id("web")), Some("job"));
}

#[test]
fn spawn_failure_fails_only_that_service() {
    let mut h = Harness::new(config(vec![spec("bad"), spec("good")]));
    h.unspawnable.push("bad".into());
    let actions = h.sup.start(h.now);
    h.run(actions);
    assert_eq!(h.state("bad"), StateName::Failed);
    assert_eq!(h.state("good"), StateName::Running);
    let error = "No such file or directory (os error 2)".to_string();
    assert_eq!(
        h.service("bad").last_error.as_deref(),
        Some(&Failure::Spawn(error))
    );
    // Nothing is scheduled for it: a spawn failure is not retried.
    assert_eq!(h.sup.poll_deadline(), None);
}

// ----- exits and restart policy -----

#[test]
fn an_exit_clears_what_is_left_in_the_group_before_anything_else() {
    let mut h = Harness::start(config(vec![spec("a")]));
    let process = h.service("a").state.process();
    h.take();
    h.exit("a", code(1));
    let first = h.take().into_iter().next();
    assert!(
        matches!(first, Some(Action::ClearGroup { process: p, .. }) if Some(p) == process),
        "{first:?}"
    );
}

#[test]
fn always_restarts_after_success_and_failure() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.exit("a", code(0));
    assert_eq!(h.state("a"), StateName::Restarting);
    h.next_deadline();
    assert_eq!(h.state("a"), StateName::Running);
    h.exit("a", code(1));
    assert_eq!(h.state("a"), StateName::Restarting);
    assert_eq!(h.service("a").restarts, 2);
}

#[test]
fn on_failure_stops_on_success_and_restarts_on_failure() {
    let mut s = spec("a");
    s.restart_policy = RestartPolicy::OnFailure;
    let mut h = Harness::start(config(vec![s]));
    h.exit("a", code(2));
    assert_eq!(h.state("a"), StateName::Restarting);
    h.next_deadline();
    h.exit("a", code(0));
    assert_eq!(h.state("a"), StateName::Stopped);
    assert_eq!(h.sup.poll_deadline(), None);
}

#[test]
fn never_fails_on_failure_and_stops_on_success() {
    let mut s = spec("a");
    s.restart_policy = RestartPolicy::Never;
    let mut t = spec("b");
    t.restart_policy = RestartPolicy::Never;
    let mut h = Harness::start(config(vec![s, t]));
    h.exit("a", ExitStatus::Signal(9));
    h.exit("b", code(0));
    assert_eq!(h.state("a"), StateName::Failed);
    assert_eq!(h.state("b"), StateName::Stopped);
    let exit = Exit {
        status: ExitStatus::Signal(9),
        after: Duration::ZERO,
    };
    assert_eq!(
        h.service("a").last_error.as_deref(),
        Some(&Failure::Exit(exit))
    );
}

#[test]
fn success_exit_codes_decide_success() {
    let mut s = spec("a");
    s.restart_policy = RestartPolicy::OnFailure;
    s.success_exit_codes = vec![0, 3];
    let mut h = Harness::start(config(vec![s]));
    h.exit("a", code(3));
    assert_eq!(h.state("a"), StateName::Stopped);
}

#[test]
fn oneshot_success_is_completed() {
    let mut h = Harness::start(config(vec![oneshot("job")]));
    h.exit("job", code(0));
    assert_eq!(h.service("job").state, State::Stopped { completed: true });
}

#[test]
fn oneshot_failure_retries_under_on_failure() {
    let mut h = Harness::start(config(vec![oneshot("job")]));
    h.exit("job", code(1));
    assert_eq!(h.state("job"), StateName::Restarting);
}

#[test]
fn exit_of_an_old_run_is_ignored() {
    let mut h = Harness::start(config(vec![spec("a")]));
    let (service, old, old_pid) = (h.id("a"), h.run_id("a"), h.pid("a"));
    h.exit("a", code(1));
    h.next_deadline();
    let pid = h.pid("a");
    h.event(Event::Exited {
        service,
        run: old,
        pid: old_pid.unwrap_or(Pid(1)),
        status: code(1),
    });
    assert_eq!(h.state("a"), StateName::Running);
    assert_eq!(h.pid("a"), pid);
}

#[test]
fn last_error_is_cleared_once_running_again() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.exit("a", code(3));
    assert!(h.service("a").last_error.is_some());
    h.next_deadline();
    assert_eq!(h.state("a"), StateName::Running);
    assert_eq!(h.service("a").last_error, None);
    assert_eq!(h.service("a").last_exit, Some(code(3)));
}

// ----- backoff and the retry budget -----

/// Backoff delays of consecutive restarts, each exited right after its start.
fn delays(h: &mut Harness, name: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    for _ in 0..n {
        h.exit(name, code(1));
        let start = h.now;
        let Some(at) = h.next_deadline() else { break };
        out.push(at.saturating_since(start));
    }
    out
}

#[test]
fn backoff_is_exact_under_the_fixed_seed() {
    let mut s = spec("a");
    s.retry_delay = Duration::from_millis(100);
    s.max_retry_delay = Duration::from_millis(1000);
    s.max_retries = 100;
    s.retry_window = Duration::from_secs(3600);
    let mut h = Harness::start(config(vec![s]));
    let got: Vec<u128> = delays(&mut h, "a", 7)
        .iter()
        .map(|d| d.as_micros())
        .collect();
    // retry_delay doubling to the cap, each ±10% by the seeded jitter (seed 42).
    assert_eq!(got, EXPECTED_BACKOFF_MICROS);
    let bases = [100_000.0, 200_000.0, 400_000.0, 800_000.0, 1e6, 1e6, 1e6];
    for (us, base) in got.iter().zip(bases) {
        let us = *us as f64;
        assert!(us >= base * 0.9 - 1.0 && us <= base * 1.1, "{us} vs {base}");
    }
}

const EXPECTED_BACKOFF_MICROS: [u128; 7] = [
    102_398, 198_135, 369_120, 806_997, 1_059_873, 990_526, 920_502,
];

#[test]
fn retry_delay_zero_restarts_at_once() {
    let mut s = spec("a");
    s.retry_delay = Duration::ZERO;
    let mut h = Harness::start(config(vec![s]));
    h.exit("a", code(1));
    assert_eq!(h.sup.poll_deadline(), Some(h.now));
    h.at(0);
    assert_eq!(h.state("a"), StateName::Running);
}

#[test]
fn max_retries_in_window_then_failed() {
    let mut s = spec("a");
    s.max_retries = 3;
    s.retry_delay = Duration::from_millis(10);
    let mut h = Harness::start(config(vec![s]));
    assert_eq!(delays(&mut h, "a", 3).len(), 3);
    h.exit("a", code(7));
    assert_eq!(h.state("a"), StateName::Failed);
    assert_eq!(h.service("a").restarts, 3);
    assert!(matches!(
        h.service("a").last_error.as_deref(),
        Some(Failure::GaveUp { restarts: 3, .. })
    ));
    assert_eq!(h.sup.poll_deadline(), None);
}

#[test]
fn the_window_slides_so_old_restarts_stop_counting() {
    let mut s = spec("a");
    s.max_retries = 2;
    s.retry_delay = Duration::from_millis(10);
    s.retry_window = Duration::from_secs(10);
    let mut h = Harness::start(config(vec![s]));
    assert_eq!(delays(&mut h, "a", 2).len(), 2);
    h.at(20_000); // both restarts are now outside the window
    h.exit("a", code(1));
    assert_eq!(h.state("a"), StateName::Restarting);
    // And the backoff starts again from retry_delay.
    let at = h.sup.poll_deadline().map(|d| d.saturating_since(h.now));
    assert!(at.is_some_and(|d| d <= Duration::from_millis(11)), "{at:?}");
}

#[test]
fn max_retries_zero_fails_at_the_first_exit() {
    let mut s = spec("a");
    s.max_retries = 0;
    let mut h = Harness::start(config(vec![s]));
    h.exit("a", code(1));
    assert_eq!(h.state("a"), StateName::Failed);
}

// ----- stop -----

#[test]
fn stop_sends_stop_signal_and_cont_then_kill_after_timeout() {
    let mut s = spec("a");
    s.stop_signal = Signal(2);
    s.timeout_stop = Duration::from_secs(5);
    let mut h = Harness::start(config(vec![s]));
    h.take();
    h.request_stop("a");
    let acts = h.take();
    assert_eq!(named(&h.signals(&acts)), [("a", Signal(2)), ("a", CONT)]);
    assert_eq!(h.state("a"), StateName::Stopping);
    h.at(4_999);
    assert!(h.take_signals().is_empty());
    h.at(5_000);
    assert_eq!(named(&h.take_signals()), [("a", KILL)]);
    h.exit("a", ExitStatus::Signal(9));
    assert_eq!(h.state("a"), StateName::Stopped);
    assert_eq!(h.sup.poll_deadline(), None);
}

#[test]
fn exit_while_stopping_is_stopped_not_restarted() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.request_stop("a");
    h.exit("a", code(1));
    assert_eq!(h.state("a"), StateName::Stopped);
    assert_eq!(h.sup.poll_deadline(), None);
}

#[test]
fn stop_while_restarting_cancels_the_restart() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.exit("a", code(1));
    h.take();
    h.request_stop("a");
    assert_eq!(h.state("a"), StateName::Stopped);
    h.at(100_000);
    assert!(h.take_spawned().is_empty());
}

#[test]
fn stop_while_starting_stops_it() {
    let mut h = Harness::start(config(vec![log_ready("a")]));
    h.take();
    h.request_stop("a");
    assert_eq!(h.state("a"), StateName::Stopping);
    assert_eq!(named(&h.take_signals()), [("a", TERM), ("a", CONT)]);
}

#[test]
fn stop_takes_dependents_down_first() {
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Ready)];
    let mut h = Harness::start(config(vec![spec("db"), web]));
    h.take();
    h.request_stop("db");
    assert_eq!(named(&h.take_signals()), [("web", TERM), ("web", CONT)]);
    assert_eq!(h.state("db"), StateName::Running);
    h.exit("web", code(0));
    assert_eq!(named(&h.take_signals()), [("db", TERM), ("db", CONT)]);
}

#[test]
fn a_finished_oneshot_passes_the_stop_order_on() {
    // web -completed-> migrate -ready-> db: db stops only after web.
    let mut migrate = oneshot("migrate");
    migrate.dependencies = vec![dep("db", Condition::Ready)];
    let mut web = spec("web");
    web.dependencies = vec![dep("migrate", Condition::Completed)];
    let mut h = Harness::start(config(vec![spec("db"), migrate, web]));
    h.exit("migrate", code(0));
    assert_eq!(h.state("web"), StateName::Running);
    h.take();
    h.shutdown();
    assert_eq!(named(&h.take_signals()), [("web", TERM), ("web", CONT)]);
    assert_eq!(h.state("db"), StateName::Running);
    h.exit("web", code(0));
    assert_eq!(named(&h.take_signals()), [("db", TERM), ("db", CONT)]);
}

// ----- shutdown -----

#[test]
fn shutdown_stops_in_reverse_dependency_order_in_parallel() {
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Ready)];
    let mut h = Harness::start(config(vec![spec("db"), web, spec("other")]));
    h.take();
    h.event(Event::Terminate);
    let first: Vec<_> = h.take_signals().into_iter().map(|(n, _)| n).collect();
    assert_eq!(first, ["web", "web", "other", "other"]);
    h.exit("other", code(0));
    h.exit("web", code(0));
    let acts = h.take();
    assert_eq!(named(&h.signals(&acts)), [("db", TERM), ("db", CONT)]);
    assert_eq!(Harness::exit_action(&acts), None);
    h.exit("db", ExitStatus::Signal(15));
    assert_eq!(Harness::exit_action(&h.take()), Some(0));
}

#[test]
fn shutdown_tells_tends_own_supervisor() {
    let mut h = Harness::start(config(vec![spec("a")]));
    assert!(h.take().contains(&Action::Upward(Upward::Ready)));
    h.shutdown();
    assert!(h.take().contains(&Action::Upward(Upward::Stopping)));
}

#[test]
fn second_termination_signal_kills_everything_left() {
    let mut h = Harness::start(config(vec![spec("a"), spec("b")]));
    h.event(Event::Terminate);
    h.take();
    h.event(Event::Terminate);
    assert_eq!(named(&h.take_signals()), [("a", KILL), ("b", KILL)]);
}

#[test]
fn shutdown_timeout_kills_what_is_left() {
    let mut c = config(vec![spec("a")]);
    c.shutdown_timeout = Duration::from_secs(2);
    c.services[0].timeout_stop = Duration::from_secs(100);
    let mut h = Harness::start(c);
    h.shutdown();
    h.take();
    h.at(2_000);
    assert_eq!(named(&h.take_signals()), [("a", KILL)]);
}

#[test]
fn no_restarts_during_shutdown() {
    let mut h = Harness::start(config(vec![spec("a"), spec("b")]));
    h.exit("b", code(1));
    h.shutdown();
    assert_eq!(h.state("b"), StateName::Stopped);
    h.exit("a", code(0));
    let acts = h.take();
    assert_eq!(h.spawned(&acts).len(), 2, "only the initial spawns");
    assert_eq!(Harness::exit_action(&acts), Some(0));
}

#[test]
fn critical_failure_shuts_down_with_its_exit_code() {
    let mut c = spec("core");
    c.critical = true;
    c.max_retries = 0;
    let mut h = Harness::start(config(vec![c, spec("other")]));
    h.exit("core", code(3));
    assert!(h.sup.is_shutting_down());
    h.exit("other", code(0));
    assert_eq!(Harness::exit_action(&h.take()), Some(3));
}

#[test]
fn critical_killed_by_signal_exits_128_plus_n() {
    let mut c = spec("core");
    c.critical = true;
    c.restart_policy = RestartPolicy::Never;
    let mut h = Harness::start(config(vec![c]));
    h.exit("core", ExitStatus::Signal(9));
    assert_eq!(Harness::exit_action(&h.take()), Some(137));
}

#[test]
fn exit_when_idle_exits_0_when_all_succeeded() {
    let mut c = config(vec![oneshot("a"), oneshot("b")]);
    c.exit_when_idle = true;
    let mut h = Harness::start(c);
    h.exit("a", code(0));
    assert_eq!(Harness::exit_action(&h.take()), None);
    h.exit("b", code(0));
    assert_eq!(Harness::exit_action(&h.take()), Some(0));
}

#[test]
fn exit_when_idle_exits_with_the_first_failed_code() {
    let mut a = oneshot("a");
    a.restart_policy = RestartPolicy::Never;
    let mut b = spec("b");
    b.dependencies = vec![dep("a", Condition::Completed)];
    let mut c = config(vec![a, b]);
    c.exit_when_idle = true;
    let mut h = Harness::start(c);
    h.exit("a", code(5));
    // b can never start: tend is idle.
    assert_eq!(Harness::exit_action(&h.take()), Some(5));
}
