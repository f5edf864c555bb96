//! State-by-state tests of the core, with a fake clock and no processes.
//!
//! Sections: start and dependencies; exits and restart policy; backoff and the
//! retry budget; stop; shutdown; commands; readiness; reload; an invariant walk.

#![allow(clippy::wildcard_enum_match_arm)]

use std::time::Duration;

use super::tests_support::*;
use super::*;
use crate::config::{Condition, Probe, RestartPolicy};

const TERM: Signal = Signal::TERM;
const KILL: Signal = Signal::KILL;
const CONT: Signal = Signal::CONT;

fn code(c: i32) -> ExitStatus {
    ExitStatus::Code(c)
}

fn named(v: &[(String, Signal)]) -> Vec<(&str, Signal)> {
    v.iter().map(|(n, s)| (n.as_str(), *s)).collect()
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
fn disabled_service_is_stopped_and_not_spawned() {
    let mut s = spec("a");
    s.enabled = false;
    let mut h = Harness::start(config(vec![s]));
    assert!(h.take_spawned().is_empty());
    assert_eq!(h.state("a"), StateName::Stopped);
}

#[test]
fn ready_dependency_waits_for_running() {
    let mut db = spec("db");
    db.readiness = Some(Probe::Log {
        pattern: "up".into(),
    });
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Ready)];
    let mut h = Harness::start(config(vec![web, db]));
    assert_eq!(h.take_spawned(), ["db"]);
    assert_eq!(h.state("db"), StateName::Starting);
    assert_eq!(h.state("web"), StateName::Pending);
    assert_eq!(h.sup.waiting_for(h.id("web")), Some("db"));
    let (service, run) = (h.id("db"), h.run_id("db"));
    h.event(Event::BecameReady { service, run });
    assert_eq!(h.take_spawned(), ["web"]);
    assert_eq!(h.sup.waiting_for(h.id("web")), None);
}

#[test]
fn started_dependency_is_met_at_spawn() {
    let mut db = spec("db");
    db.readiness = Some(Probe::Log {
        pattern: "up".into(),
    });
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Started)];
    let mut h = Harness::start(config(vec![db, web]));
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
    let last_error = h.sup.get(h.id("bad")).and_then(|s| s.last_error.clone());
    assert_eq!(
        last_error.as_deref(),
        Some("spawn failed: No such file or directory (os error 2)")
    );
    // Nothing is scheduled for it: a spawn failure is not retried.
    assert_eq!(h.sup.poll_deadline(), None);
}

// ----- exits and restart policy -----

#[test]
fn always_restarts_after_success_and_failure() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.exit("a", code(0));
    assert_eq!(h.state("a"), StateName::Restarting);
    h.next_deadline();
    assert_eq!(h.state("a"), StateName::Running);
    h.exit("a", code(1));
    assert_eq!(h.state("a"), StateName::Restarting);
    assert_eq!(h.sup.get(h.id("a")).map(|s| s.restarts), Some(2));
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
    let a = h.sup.get(h.id("a")).cloned();
    assert_eq!(
        a.and_then(|s| s.last_error),
        Some("killed by SIGKILL after 0ms".into())
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
    let job = h.sup.get(h.id("job")).map(|s| s.state.clone());
    assert_eq!(job, Some(State::Stopped { completed: true }));
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
    let (service, old) = (h.id("a"), h.run_id("a"));
    h.exit("a", code(1));
    h.next_deadline();
    let pid = h.pid("a");
    h.event(Event::Exited {
        service,
        run: old,
        status: code(1),
    });
    assert_eq!(h.state("a"), StateName::Running);
    assert_eq!(h.pid("a"), pid);
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
fn backoff_doubles_from_retry_delay_to_the_cap_with_jitter() {
    let mut s = spec("a");
    s.retry_delay = Duration::from_millis(100);
    s.max_retry_delay = Duration::from_millis(1000);
    s.max_retries = 100;
    s.retry_window = Duration::from_secs(3600);
    let mut h = Harness::start(config(vec![s]));
    let got = delays(&mut h, "a", 7);
    let bases = [100.0, 200.0, 400.0, 800.0, 1000.0, 1000.0, 1000.0];
    assert_eq!(got.len(), bases.len());
    for (d, base) in got.iter().zip(bases) {
        let ms = d.as_secs_f64() * 1000.0;
        assert!(
            ms >= base * 0.9 - 0.01 && ms <= base * 1.1,
            "{ms} vs {base}"
        );
    }
}

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
    let a = h.sup.get(h.id("a")).cloned();
    assert_eq!(a.as_ref().map(|s| s.restarts), Some(3));
    let err = a.and_then(|s| s.last_error).unwrap_or_default();
    assert!(err.contains("giving up after 3 restarts in 1m0s"), "{err}");
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
    s.stop_signal = Signal(libc_sigint());
    s.timeout_stop = Duration::from_secs(5);
    let mut h = Harness::start(config(vec![s]));
    h.take();
    h.request_stop("a");
    let acts = h.take();
    assert_eq!(
        named(&h.signals(&acts)),
        [("a", Signal(libc_sigint())), ("a", CONT)]
    );
    assert_eq!(h.state("a"), StateName::Stopping);
    h.at(4_999);
    assert!(h.take_signals().is_empty());
    h.at(5_000);
    assert_eq!(named(&h.take_signals()), [("a", KILL)]);
    h.exit("a", ExitStatus::Signal(9));
    assert_eq!(h.state("a"), StateName::Stopped);
    assert_eq!(h.sup.poll_deadline(), None);
}

fn libc_sigint() -> i32 {
    2
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
    let mut s = spec("a");
    s.readiness = Some(Probe::Log {
        pattern: "x".into(),
    });
    let mut h = Harness::start(config(vec![s]));
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

// ----- shutdown -----

#[test]
fn shutdown_stops_in_reverse_dependency_order_in_parallel() {
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Ready)];
    let mut h = Harness::start(config(vec![spec("db"), web, spec("other")]));
    h.take();
    h.event(Event::TerminationSignaled);
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
fn second_termination_signal_kills_everything_left() {
    let mut h = Harness::start(config(vec![spec("a"), spec("b")]));
    h.event(Event::TerminationSignaled);
    h.take();
    h.event(Event::TerminationSignaled);
    assert_eq!(named(&h.take_signals()), [("a", KILL), ("b", KILL)]);
}

#[test]
fn shutdown_timeout_kills_what_is_left() {
    let mut c = config(vec![spec("a")]);
    c.shutdown_timeout = Duration::from_secs(2);
    let mut s = c.services[0].clone();
    s.timeout_stop = Duration::from_secs(100);
    c.services[0] = s;
    let mut h = Harness::start(c);
    h.event(Event::ShutdownRequested);
    h.take();
    h.at(2_000);
    assert_eq!(named(&h.take_signals()), [("a", KILL)]);
}

#[test]
fn no_restarts_during_shutdown() {
    let mut h = Harness::start(config(vec![spec("a"), spec("b")]));
    h.exit("b", code(1));
    h.event(Event::ShutdownRequested);
    assert_eq!(h.state("b"), StateName::Stopped);
    h.exit("a", code(0));
    let acts = h.take();
    assert!(h.spawned(&acts).len() == 2, "only the initial spawns");
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

// ----- commands -----

#[test]
fn restart_request_stops_then_starts_a_new_run() {
    let mut h = Harness::start(config(vec![spec("a")]));
    let old = h.pid("a");
    h.request_restart("a");
    assert_eq!(h.state("a"), StateName::Stopping);
    h.exit("a", ExitStatus::Signal(15));
    assert_eq!(h.state("a"), StateName::Running);
    assert_ne!(h.pid("a"), old);
    assert_eq!(h.sup.get(h.id("a")).map(|s| s.restarts), Some(1));
}

#[test]
fn start_request_revives_a_failed_service_and_its_dependencies() {
    let mut db = spec("db");
    db.restart_policy = RestartPolicy::Never;
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Ready)];
    let mut h = Harness::start(config(vec![db, web]));
    h.request_stop("db");
    h.exit("web", code(0));
    h.exit("db", code(0));
    assert_eq!(h.state("web"), StateName::Stopped);
    h.take();
    h.request_start("web");
    assert_eq!(h.take_spawned(), ["db", "web"]);
}

#[test]
fn start_request_on_restarting_skips_the_backoff() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.exit("a", code(1));
    h.request_start("a");
    assert_eq!(h.state("a"), StateName::Running);
}

#[test]
fn commands_during_shutdown_start_nothing() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.event(Event::ShutdownRequested);
    h.take();
    h.request_start("a");
    h.request_restart("a");
    assert!(h.take_spawned().is_empty());
}

// ----- readiness and liveness -----

#[test]
fn readiness_timeout_counts_as_a_failed_start() {
    let mut s = spec("a");
    s.readiness = Some(Probe::Log {
        pattern: "x".into(),
    });
    s.timeout_start = Duration::from_secs(3);
    let mut h = Harness::start(config(vec![s]));
    h.take();
    h.at(3_000);
    assert_eq!(h.state("a"), StateName::Stopping);
    h.exit("a", ExitStatus::Signal(15));
    assert_eq!(h.state("a"), StateName::Restarting);
    let err = h.sup.get(h.id("a")).and_then(|s| s.last_error.clone());
    assert_eq!(
        err.as_deref(),
        Some("not ready within timeout_start (3.0s)")
    );
}

#[test]
fn liveness_failure_restarts_as_a_failure() {
    let mut s = spec("a");
    s.restart_policy = RestartPolicy::OnFailure;
    let mut h = Harness::start(config(vec![s]));
    let (service, run) = (h.id("a"), h.run_id("a"));
    h.event(Event::LivenessFailed {
        service,
        run,
        why: "liveness failed 3 times".into(),
    });
    h.exit("a", code(0)); // even a clean exit counts as a failure here
    assert_eq!(h.state("a"), StateName::Restarting);
}

// ----- deadlines -----

#[test]
fn idle_supervisor_has_no_deadline() {
    let mut h = Harness::start(config(vec![spec("a"), spec("b")]));
    assert_eq!(h.sup.poll_deadline(), None);
}

// ----- reload -----

#[test]
fn reload_applies_the_four_cases() {
    let mut h = Harness::start(config(vec![spec("keep"), spec("change"), spec("drop")]));
    let keep_pid = h.pid("keep");
    let mut changed = spec("change");
    changed.command = vec!["/bin/true".into()];
    let (plan, actions) = h
        .sup
        .reload(&config(vec![spec("keep"), changed, spec("add")]), h.now);
    h.run(actions);
    assert_eq!(plan.summary(), "1 added, 1 removed, 1 changed, 1 unchanged");
    assert_eq!(h.state("add"), StateName::Running);
    assert_eq!(h.state("change"), StateName::Stopping);
    assert_eq!(h.pid("keep"), keep_pid);
    assert!(h.sup.find("drop").is_none());
    let drop_id = ServiceId(2);
    let drop_run = h.sup.get(drop_id).and_then(|s| s.state.run());
    h.exit("change", ExitStatus::Signal(15));
    assert_eq!(h.state("change"), StateName::Running);
    let spec_now = h.sup.get(h.id("change")).map(|s| s.spec.command.clone());
    assert_eq!(spec_now, Some(vec!["/bin/true".to_string()]));
    h.take();
    if let Some(run) = drop_run {
        h.event(Event::Exited {
            service: drop_id,
            run,
            status: ExitStatus::Signal(15),
        });
    }
    let acts = h.take();
    assert!(acts.contains(&Action::Forget { service: drop_id }));
    assert_eq!(h.sup.services().count(), 3);
}

// ----- invariant walk -----

#[test]
fn random_event_walk_keeps_invariants() {
    let mut a = spec("a");
    a.readiness = Some(Probe::Log {
        pattern: "x".into(),
    });
    a.max_retries = 3;
    let mut b = spec("b");
    b.dependencies = vec![dep("a", Condition::Ready)];
    let mut c = oneshot("c");
    c.max_retries = 2;
    let mut d = spec("d");
    d.dependencies = vec![dep("c", Condition::Completed)];
    for seed in 1..40u64 {
        let mut h = Harness::start(config(vec![a.clone(), b.clone(), c.clone(), d.clone()]));
        let mut rng = policy::Rng::new(seed);
        let mut restarts = [0u64; 4];
        let mut exited_runs: Vec<RunId> = Vec::new();
        for _ in 0..400 {
            let id = ServiceId((rng.next_u64() % 4) as usize);
            let run = h.sup.get(id).and_then(|s| s.state.run());
            let event = match rng.next_u64() % 9 {
                0 | 1 => run.map(|run| {
                    exited_runs.push(run);
                    Event::Exited {
                        service: id,
                        run,
                        status: ExitStatus::Code((rng.next_u64() % 3) as i32),
                    }
                }),
                2 => run.map(|run| Event::BecameReady { service: id, run }),
                3 => Some(Event::StopRequested { service: id }),
                4 => Some(Event::StartRequested { service: id }),
                5 => Some(Event::RestartRequested { service: id }),
                6 => run.map(|run| Event::LivenessFailed {
                    service: id,
                    run,
                    why: "x".into(),
                }),
                _ => None,
            };
            match event {
                Some(e) => h.event(e),
                None => {
                    h.next_deadline();
                }
            }
            for (i, r) in restarts.iter_mut().enumerate() {
                let s = h.sup.get(ServiceId(i)).cloned();
                let Some(s) = s else { continue };
                assert_eq!(
                    s.state.pid().is_some(),
                    matches!(
                        s.state,
                        State::Starting { pid: Some(_), .. }
                            | State::Running { .. }
                            | State::Stopping { .. }
                    )
                );
                assert!(s.restarts >= *r, "restarts only grow");
                *r = s.restarts;
                if let Some(d) = s.state.deadline() {
                    assert!(d >= h.now || h.sup.poll_deadline().is_some_and(|p| p <= d));
                }
            }
            for action in h.take() {
                if let Action::Signal { run, .. } = action {
                    assert!(!exited_runs.contains(&run), "signal to a reaped run");
                }
            }
        }
        // Shutdown always completes once every process exits.
        h.event(Event::ShutdownRequested);
        for i in 0..4 {
            if let Some(run) = h.sup.get(ServiceId(i)).and_then(|s| s.state.run()) {
                h.event(Event::Exited {
                    service: ServiceId(i),
                    run,
                    status: ExitStatus::Signal(15),
                });
            }
        }
        assert!(
            h.sup.exit_code().is_some(),
            "seed {seed}: shutdown finished"
        );
    }
}

// ----- purity -----

#[test]
fn the_core_does_no_io() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/machine");
    let forbidden = [
        "libc",
        "mio::",
        "std::process",
        "Instant::now",
        "std::fs",
        "std::net",
    ];
    for entry in std::fs::read_dir(dir).expect("NOTE(unwrap): the source folder exists") {
        let path = entry.expect("NOTE(unwrap): readable").path();
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for word in forbidden {
            assert!(!text.contains(word), "{} mentions {word}", path.display());
        }
    }
}
