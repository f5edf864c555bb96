//! Commands (`tend start|stop|restart|signal`) and the answers their clients
//! wait for.

#![allow(clippy::wildcard_enum_match_arm)]

use std::time::Duration;

use super::tests::{code, log_ready, named};
use super::tests_support::*;
use super::*;
use crate::config::{Condition, RestartPolicy, Signal};

// ----- commands and their answers -----

#[test]
fn restart_request_stops_then_starts_a_new_run() {
    let mut h = Harness::start(config(vec![spec("a")]));
    let old = h.pid("a");
    h.request_restart("a");
    assert_eq!(h.state("a"), StateName::Stopping);
    h.exit("a", ExitStatus::Signal(15));
    assert_eq!(h.state("a"), StateName::Running);
    assert_ne!(h.pid("a"), old);
    assert_eq!(h.service("a").restarts, 1);
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
    assert_eq!(h.service("db").goal, Goal::Needed);
    assert_eq!(h.service("web").goal, Goal::Up);
}

#[test]
fn start_request_on_restarting_skips_the_backoff() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.exit("a", code(1));
    h.request_start("a");
    assert_eq!(h.state("a"), StateName::Running);
}

#[test]
fn commands_during_shutdown_start_nothing_and_say_so() {
    let mut h = Harness::start(config(vec![spec("a")]));
    h.shutdown();
    h.take();
    let a = h.id("a");
    let r = h.ask(Command::Start {
        services: vec![a],
        wait: true,
    });
    h.request_restart("a");
    let actions = h.take();
    assert!(h.spawned(&actions).is_empty());
    assert!(actions.contains(&Action::Answer {
        request: r,
        answer: Answer::ShuttingDown
    }));
}

#[test]
fn a_waiting_start_is_answered_once_running() {
    let mut h = Harness::start(config(vec![log_ready("a")]));
    h.request_stop("a");
    h.exit("a", code(0));
    let a = h.id("a");
    let r = h.ask(Command::Start {
        services: vec![a],
        wait: true,
    });
    assert!(h.answers().is_empty(), "held while starting");
    h.ready("a");
    assert_eq!(h.answers(), [(r, Answer::Done)]);
}

#[test]
fn a_waiting_restart_needs_a_new_run() {
    let mut h = Harness::start(config(vec![spec("a")]));
    let a = h.id("a");
    let r = h.ask(Command::Restart {
        services: vec![a],
        wait: true,
    });
    assert!(h.answers().is_empty(), "still the old run");
    h.exit("a", ExitStatus::Signal(15));
    assert_eq!(h.answers(), [(r, Answer::Done)]);
}

#[test]
fn a_start_that_fails_is_answered_with_the_state() {
    let mut s = log_ready("a");
    s.retry_delay = Duration::from_secs(5);
    let mut h = Harness::start(config(vec![s]));
    h.request_stop("a");
    h.exit("a", code(0));
    let a = h.id("a");
    let r = h.ask(Command::Start {
        services: vec![a],
        wait: true,
    });
    h.exit("a", code(1));
    let answer = Answer::NotSettled {
        service: a,
        state: StateName::Restarting,
    };
    assert_eq!(h.answers(), [(r, answer)]);
}

#[test]
fn stopping_a_failed_service_is_not_stopped() {
    let mut s = spec("a");
    s.restart_policy = RestartPolicy::Never;
    let mut h = Harness::start(config(vec![s]));
    h.exit("a", code(1));
    let a = h.id("a");
    let r = h.ask(Command::Stop {
        services: vec![a],
        wait: true,
    });
    let answer = Answer::NotSettled {
        service: a,
        state: StateName::Failed,
    };
    assert_eq!(h.answers(), [(r, answer)]);
    assert_eq!(h.state("a"), StateName::Failed);
}

#[test]
fn a_start_blocked_by_a_failed_dependency_is_answered_at_once() {
    let mut job = oneshot("job");
    job.restart_policy = RestartPolicy::Never;
    let mut web = spec("web");
    web.dependencies = vec![dep("job", Condition::Completed)];
    web.enabled = false;
    let mut h = Harness::start(config(vec![job, web]));
    h.exit("job", code(1));
    let web = h.id("web");
    // Starting web restarts job too (it is needed): make it fail again.
    let r = h.ask(Command::Start {
        services: vec![web],
        wait: true,
    });
    h.exit("job", code(1));
    let answer = Answer::NotSettled {
        service: web,
        state: StateName::Pending,
    };
    assert_eq!(h.answers(), [(r, answer)]);
}

#[test]
fn a_waiter_times_out_after_the_settle_timeout() {
    let mut h = Harness::start(config(vec![log_ready("a")]));
    let a = h.id("a");
    h.request_stop("a");
    h.exit("a", code(0));
    let r = h.ask(Command::Start {
        services: vec![a],
        wait: true,
    });
    h.at(SETTLE_TIMEOUT.as_millis() as u64 - 1);
    assert!(h.answers().is_empty());
    h.at(SETTLE_TIMEOUT.as_millis() as u64);
    let answer = Answer::TimedOut {
        after: SETTLE_TIMEOUT,
    };
    assert_eq!(h.answers(), [(r, answer)]);
}

#[test]
fn tend_signal_reaches_only_a_service_with_a_process() {
    let mut h = Harness::start(config(vec![spec("a"), oneshot("b")]));
    h.exit("b", code(0));
    let (a, b) = (h.id("a"), h.id("b"));
    h.take();
    let r1 = h.ask(Command::Signal {
        service: a,
        signal: Signal(1),
    });
    let actions = h.take();
    assert_eq!(named(&h.signals(&actions)), [("a", Signal(1))]);
    assert!(actions.contains(&Action::Answer {
        request: r1,
        answer: Answer::Done
    }));
    let r2 = h.ask(Command::Signal {
        service: b,
        signal: Signal(1),
    });
    assert_eq!(h.answers(), [(r2, Answer::NoProcess { service: b })]);
}

#[test]
fn idle_supervisor_has_no_deadline() {
    let h = Harness::start(config(vec![spec("a"), spec("b")]));
    assert_eq!(h.sup.poll_deadline(), None);
}
