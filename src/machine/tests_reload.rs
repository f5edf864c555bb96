//! Reload, and a random walk over every input that checks the invariants.

#![allow(clippy::wildcard_enum_match_arm)]

use std::collections::HashSet;
use std::time::Duration;

use super::behaviour::{Liveness, Readiness};
use super::tests::code;
use super::tests_support::*;
use super::*;
use crate::config::{Condition, ServiceSpec};

fn with_command(name: &str, command: &str) -> ServiceSpec {
    let mut s = spec(name);
    s.command = vec![command.into()];
    s
}

#[test]
fn reload_applies_the_four_cases() {
    let mut h = Harness::start(config(vec![spec("keep"), spec("change"), spec("drop")]));
    let keep_pid = h.pid("keep");
    let drop_id = h.id("drop");
    let drop_run = h.run_id("drop");
    let drop_pid = h.pid("drop");
    let plan = h.reload(config(vec![
        spec("keep"),
        with_command("change", "/bin/true"),
        spec("add"),
    ]));
    assert_eq!(plan.summary(), "1 added, 1 removed, 1 changed, 1 unchanged");
    assert_eq!(h.state("add"), StateName::Running);
    assert_eq!(h.state("change"), StateName::Stopping);
    assert_eq!(h.pid("keep"), keep_pid);
    assert!(h.sup.find("drop").is_none());
    h.exit("change", ExitStatus::Signal(15));
    assert_eq!(h.state("change"), StateName::Running);
    h.take();
    h.event(Event::Exited {
        service: drop_id,
        run: drop_run,
        pid: drop_pid.unwrap_or(Pid(1)),
        status: ExitStatus::Signal(15),
    });
    assert!(h.take().contains(&Action::Forget { service: drop_id }));
    assert!(h.sup.get(drop_id).is_none());
    assert_eq!(h.sup.services().count(), 3);
}

#[test]
fn a_second_reload_compares_with_what_the_service_will_run() {
    // A→B then B→A within timeout_stop: the service must end up running A.
    let a = with_command("s", "/bin/a");
    let b = with_command("s", "/bin/b");
    let mut h = Harness::start(config(vec![a.clone()]));
    let first = h.service("s").revision;
    let plan = h.reload(config(vec![b]));
    assert_eq!(plan.changed.len(), 1);
    assert_eq!(h.state("s"), StateName::Stopping);
    let plan = h.reload(config(vec![a]));
    assert_eq!(plan.changed.len(), 1, "B→A is a change");
    assert_ne!(h.service("s").revision, first, "A again, as a new revision");
    h.exit("s", ExitStatus::Signal(15));
    assert_eq!(h.state("s"), StateName::Running);
    let revision = h.service("s").revision;
    // And the shell's newest definition of "s" is A: it spawns A.
    let plan = h.reload(config(vec![with_command("s", "/bin/a")]));
    assert_eq!(plan.kept.len(), 1);
    assert_eq!(h.service("s").revision, revision);
}

#[test]
fn removed_and_added_back_while_stopping_is_one_instance() {
    let mut h = Harness::start(config(vec![spec("s"), spec("other")]));
    let id = h.id("s");
    h.reload(config(vec![spec("other")]));
    assert!(h.sup.find("s").is_none());
    h.take();
    let plan = h.reload(config(vec![spec("other"), spec("s")]));
    assert_eq!(plan.added.len(), 1);
    assert_eq!(h.id("s"), id, "the same slot");
    assert!(h.take_spawned().is_empty(), "not while the old one is up");
    h.exit("s", ExitStatus::Signal(15));
    assert_eq!(h.take_spawned(), ["s"]);
    assert_eq!(h.state("s"), StateName::Running);
}

#[test]
fn removed_services_are_freed_and_their_slots_reused() {
    let mut h = Harness::start(config(vec![spec("keep")]));
    for i in 0..1000 {
        let name = format!("s{i}");
        h.reload(config(vec![spec("keep"), spec(&name)]));
        h.exit(&name, ExitStatus::Signal(15));
        h.reload(config(vec![spec("keep")]));
        let id = h.sup.find_any(&name);
        if let Some(id) = id {
            let run = h.sup.get(id).and_then(|s| s.state.run());
            let pid = h.sup.get(id).and_then(|s| s.state.pid());
            if let (Some(run), Some(pid)) = (run, pid) {
                h.event(Event::Exited {
                    service: id,
                    run,
                    pid,
                    status: ExitStatus::Signal(15),
                });
            }
        }
        h.take();
    }
    assert!(h.sup.slots.len() <= 3, "{} slots", h.sup.slots.len());
    assert!(h.sup.by_name.len() <= 2);
    assert_eq!(h.sup.services().count(), 1);
}

#[test]
fn disabling_by_reload_stops_after_dependents() {
    let mut web = spec("web");
    web.dependencies = vec![dep("db", Condition::Ready)];
    let mut h = Harness::start(config(vec![spec("db"), web.clone()]));
    h.take();
    let mut db = spec("db");
    db.enabled = false;
    let mut web2 = web;
    web2.enabled = false;
    h.reload(config(vec![db, web2]));
    let signals = h.take_signals();
    assert_eq!(signals.first().map(|(n, _)| n.as_str()), Some("web"));
    assert_eq!(h.state("db"), StateName::Running);
    h.exit("web", code(0));
    assert_eq!(h.state("db"), StateName::Stopping);
}

#[test]
fn a_failed_service_changed_by_reload_is_tried_again() {
    let mut s = spec("a");
    s.max_retries = 0;
    let mut h = Harness::start(config(vec![s.clone()]));
    h.exit("a", code(1));
    assert_eq!(h.state("a"), StateName::Failed);
    h.take();
    s.retry_delay = Duration::from_millis(5);
    h.reload(config(vec![s]));
    assert_eq!(h.take_spawned(), ["a"]);
}

#[test]
fn a_waiter_on_a_removed_service_is_answered() {
    let mut h = Harness::start(config(vec![log_ready_spec("a"), spec("b")]));
    let a = h.id("a");
    h.request_stop("a");
    h.exit("a", code(0));
    let r = h.ask(Command::Start {
        services: vec![a],
        wait: true,
    });
    h.take();
    h.reload(config(vec![spec("b")]));
    let actions = h.take();
    let answered = actions.iter().any(|x| {
        matches!(x, Action::Answer { request, answer: Answer::Removed { .. } } if *request == r)
    });
    assert!(answered, "{actions:?}");
}

fn log_ready_spec(name: &str) -> ServiceSpec {
    super::tests::log_ready(name)
}

// ----- invariant walk -----

/// Every invariant the core promises, checked after each step.
fn check_invariants(h: &Harness, reaped: &HashSet<i32>, signalled: &[(Pid, bool)]) {
    let mut counts = [0usize; 7];
    let mut names = HashSet::new();
    for slot in &h.sup.slots {
        let Some(s) = &slot.service else { continue };
        counts[s.state.name() as usize] += 1;
        assert!(names.insert(s.name.clone()), "one instance per name");
        // A deadline is armed iff the state has one, at that time.
        assert_eq!(
            h.sup.timers.get(Timer::Service(s.id)),
            s.state.deadline(),
            "{}: {:?}",
            s.name,
            s.state
        );
        // At most one live run per service, and never one of a reaped pid.
        if let Some(pid) = s.state.pid() {
            assert!(!reaped.contains(&pid.0), "{} holds a reaped pid", s.name);
        }
        if matches!(s.state, State::Running { .. }) {
            assert!(s.is_ready());
        }
    }
    assert_eq!(counts, h.sup.counts, "state counts agree");
    for (pid, after_reap) in signalled {
        assert!(!after_reap, "signal to reaped pid {}", pid.0);
    }
}

#[test]
fn random_walk_over_every_input_keeps_the_invariants() {
    let mut a = super::tests::log_ready("a");
    a.max_retries = 3;
    let mut b = spec("b");
    b.dependencies = vec![dep("a", Condition::Ready)];
    let mut c = oneshot("c");
    c.max_retries = 2;
    let mut d = spec("d");
    d.dependencies = vec![dep("c", Condition::Completed)];
    let e = spec("e");
    let full = config(vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()]);
    let mut e2 = e.clone();
    e2.command = vec!["/bin/other".into()];
    let partial = config(vec![a.clone(), c.clone(), e2]);
    let names = ["a", "b", "c", "d", "e"];
    let tweak = |def: &mut Definition| {
        if &*def.name == "e" {
            def.behaviour.readiness = Readiness::Checked {
                interval: Duration::from_millis(300),
            };
            def.behaviour.liveness = Some(Liveness {
                interval: Duration::from_secs(1),
                failures: 2,
            });
        }
        if &*def.name == "d" {
            def.behaviour.contained = true;
        }
        if &*def.name == "b" {
            def.behaviour.readiness = Readiness::Notify;
            def.behaviour.watchdog = Some(Duration::from_secs(2));
        }
    };
    for seed in 1..60u64 {
        let mut h = Harness::start_with(full.clone(), tweak);
        h.unspawnable.clear();
        let mut rng = policy::Rng::new(seed);
        let mut reaped: HashSet<i32> = HashSet::new();
        let mut restarts = std::collections::HashMap::new();
        for _ in 0..500 {
            let name = names[(rng.next_u64() % 5) as usize];
            let id = h.sup.find(name);
            let service = id.and_then(|id| h.sup.get(id));
            let run = service.and_then(|s| s.state.run());
            let pid = service.and_then(|s| s.state.pid());
            let pick = rng.next_u64() % 14;
            if pick == 13 {
                h.unspawnable = if rng.next_u64().is_multiple_of(2) {
                    vec![name.to_string()]
                } else {
                    Vec::new()
                };
            }
            let mut exiting = None;
            let event = match (pick, id) {
                (0 | 1, Some(id)) => run.zip(pid).map(|(run, pid)| {
                    exiting = Some(pid.0);
                    Event::Exited {
                        service: id,
                        run,
                        pid,
                        status: ExitStatus::Code((rng.next_u64() % 3) as i32),
                    }
                }),
                (2, Some(id)) => run.map(|run| Event::Ready { service: id, run }),
                (3, Some(id)) => run.map(|run| Event::ProbeResult {
                    service: id,
                    run,
                    role: if rng.next_u64().is_multiple_of(2) {
                        Role::Readiness
                    } else {
                        Role::Liveness
                    },
                    ok: rng.next_u64().is_multiple_of(2),
                    message: "x".into(),
                }),
                (4, Some(id)) => pid.map(|pid| Event::Notified {
                    service: id,
                    from: Sender {
                        pid,
                        pgid: Some(pid),
                    },
                    notice: Notice {
                        ready: rng.next_u64().is_multiple_of(2),
                        watchdog: true,
                        ..Notice::default()
                    },
                }),
                (5, Some(id)) => Some(Event::Command {
                    request: None,
                    command: Command::Stop {
                        services: vec![id],
                        wait: false,
                    },
                }),
                (6, Some(id)) => Some(Event::Command {
                    request: Some(RequestId(rng.next_u64())),
                    command: Command::Start {
                        services: vec![id],
                        wait: true,
                    },
                }),
                (7, Some(id)) => Some(Event::Command {
                    request: None,
                    command: Command::Restart {
                        services: vec![id],
                        wait: false,
                    },
                }),
                (9 | 10, Some(id)) => service
                    .and_then(|s| match s.state {
                        State::Draining { run, .. } => Some(run),
                        _ => None,
                    })
                    .map(|run| Event::GroupEmpty { service: id, run }),
                (8, _) => {
                    let next = if rng.next_u64().is_multiple_of(2) {
                        &full
                    } else {
                        &partial
                    };
                    h.reload(next.clone());
                    None
                }
                _ => None,
            };
            match event {
                Some(e) => h.event(e),
                None => {
                    h.next_deadline();
                }
            }
            let signalled: Vec<(Pid, bool)> = h
                .take()
                .iter()
                .filter_map(|a| match a {
                    Action::Signal { process, .. } | Action::ClearGroup { process, .. } => {
                        Some((process.pid, reaped.contains(&process.pid.0)))
                    }
                    _ => None,
                })
                .collect();
            // The exited pid is reaped after the actions of its exit.
            reaped.extend(exiting);
            check_invariants(&h, &reaped, &signalled);
            for s in h.sup.services() {
                let before = restarts.insert(s.id, s.restarts).unwrap_or(0);
                assert!(s.restarts >= before, "restarts only grow");
            }
        }
        // Shutdown always completes once every process exits.
        h.shutdown();
        for _ in 0..3 {
            let draining: Vec<_> = h
                .sup
                .slots
                .iter()
                .filter_map(|s| s.service.as_ref())
                .filter_map(|s| match s.state {
                    State::Draining { run, .. } => Some((s.id, run)),
                    _ => None,
                })
                .collect();
            for (service, run) in draining {
                h.event(Event::GroupEmpty { service, run });
            }
            let live: Vec<_> = h
                .sup
                .slots
                .iter()
                .filter_map(|s| s.service.as_ref())
                .filter_map(|s| Some((s.id, s.state.run()?, s.state.pid()?)))
                .collect();
            for (service, run, pid) in live {
                h.event(Event::Exited {
                    service,
                    run,
                    pid,
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
        "SystemTime",
        "std::fs",
        "std::net",
        "crate::runtime",
        "crate::logging",
        "crate::cli",
    ];
    for entry in std::fs::read_dir(dir).expect("NOTE(unwrap): the source folder exists") {
        let path = entry.expect("NOTE(unwrap): readable").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("tests") {
            continue; // tests may read files and name what they forbid
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for word in forbidden {
            assert!(!text.contains(word), "{} mentions {word}", path.display());
        }
    }
}
