//! The core through a snapshot and back (`snapshot.rs`, encoded by
//! `codec::wire`): every state, with its deadlines, comes back equal, and the
//! restored core decides exactly as the original one from then on.

#![allow(clippy::wildcard_enum_match_arm)]

use std::collections::HashMap;
use std::time::Duration;

use super::behaviour::{Behaviour, Liveness, Readiness};
use super::tests_support::*;
use super::*;
use crate::codec::wire::{decode, encode};
use crate::config::Condition;

/// `snapshot` through its encoding and back.
fn through_bytes(snapshot: &CoreSnapshot) -> CoreSnapshot {
    let bytes = encode(snapshot);
    match decode(&bytes) {
        Ok(back) => back,
        Err(e) => panic!("{e}"),
    }
}

/// One service in each state the core has, plus a waiting client and a
/// check in flight, at 1.5 s.
fn every_state() -> Harness {
    let mut pend = spec("pend");
    pend.dependencies = vec![dep("fail", Condition::Ready)];
    let mut done = oneshot("done");
    done.command = vec!["/bin/true".into()];
    let mut off = spec("off");
    off.enabled = false;
    let services = vec![
        spec("fail"),
        pend,
        spec("ready"),
        spec("up"),
        spec("check"),
        spec("live"),
        spec("dog"),
        spec("stop"),
        spec("drain"),
        spec("crash"),
        done,
        off,
        spec("spawning"),
    ];
    let mut h = Harness::new(config(services.clone()));
    h.unspawnable = vec!["fail".into()];
    let mut defs = h.definitions(&config(services));
    for d in &mut defs {
        let b = &mut d.behaviour;
        match &*d.name {
            "ready" => b.readiness = Readiness::Reported,
            "up" => b.min_uptime = Duration::from_secs(5),
            "check" => {
                b.readiness = Readiness::Checked {
                    interval: Duration::from_millis(500),
                }
            }
            "live" => {
                b.liveness = Some(Liveness {
                    interval: Duration::from_secs(2),
                    failures: 3,
                })
            }
            "dog" => {
                b.readiness = Readiness::Notify;
                b.watchdog = Some(Duration::from_secs(3));
            }
            "drain" => b.contained = true,
            "crash" => b.retry_delay = Duration::from_secs(7),
            _ => {}
        }
    }
    h.sup = Supervisor::new(defs, settings(&config(Vec::new())), 7);
    let actions = h.sup.start(h.now);
    h.run(actions);
    h.at(100);
    // The first readiness attempt of `check` is due after 50 ms: in flight now.
    assert_eq!(h.service("check").state.name(), StateName::Starting);
    let from = {
        let process = h.service("dog").state.process().expect("dog runs");
        Sender {
            pid: process.pid,
            pgid: Some(process.pgid),
        }
    };
    let ready = Notice {
        ready: true,
        ..Notice::default()
    };
    h.notify("dog", from, ready);
    h.request_stop("stop");
    h.exit("drain", ExitStatus::Code(0));
    h.exit("crash", ExitStatus::Code(1));
    h.exit("done", ExitStatus::Code(0));
    h.probe("live", Role::Liveness, false);
    let ready_id = h.id("ready");
    h.ask(Command::Start {
        services: vec![ready_id],
        wait: true,
    });
    h.at(1500);
    // `spawning` cannot be seen between calls; put it there by hand.
    let id = h.id("spawning");
    let slot = &mut h.sup.slots[id.index as usize];
    let service = slot.service.as_mut().expect("spawning exists");
    let was = service.state.name();
    service.state = State::Spawning {
        run: RunId(999),
        from: StateName::Pending,
    };
    h.sup.counts[was as usize] -= 1;
    h.sup.counts[StateName::Starting as usize] += 1;
    h.sup.timers.set(Timer::Service(id), None);
    h
}

fn state_of(sup: &Supervisor, name: &str) -> State {
    let id = sup.find(name).expect("the service exists");
    sup.get(id).expect("the service exists").state.clone()
}

#[test]
fn every_state_is_covered() {
    let h = every_state();
    let expect = |name: &str, ok: fn(&State) -> bool| {
        let state = state_of(&h.sup, name);
        assert!(ok(&state), "{name}: {state:?}");
    };
    expect("fail", |s| *s == State::Failed);
    expect("pend", |s| *s == State::Pending);
    expect("ready", |s| {
        matches!(
            s,
            State::Starting {
                ready_by: Some(_),
                up_by: None,
                check: None,
                ..
            }
        )
    });
    expect("up", |s| {
        matches!(s, State::Starting { up_by: Some(_), .. })
    });
    expect(
        "check",
        |s| matches!(s, State::Starting { check: Some(c), .. } if c.next_at.is_none()),
    );
    expect(
        "live",
        |s| matches!(s, State::Running { check: Some(c), .. } if c.failures == 1),
    );
    expect("dog", |s| {
        matches!(
            s,
            State::Running {
                watchdog_by: Some(_),
                ..
            }
        )
    });
    expect("stop", |s| {
        matches!(
            s,
            State::Stopping {
                kill_at: Some(_),
                ..
            }
        )
    });
    expect("drain", |s| matches!(s, State::Draining { .. }));
    expect("crash", |s| matches!(s, State::Restarting { .. }));
    expect("done", |s| *s == State::Stopped { completed: true });
    expect("off", |s| *s == State::Stopped { completed: false });
    expect("spawning", |s| matches!(s, State::Spawning { .. }));
    assert_eq!(h.sup.waiters.len(), 1);
}

#[test]
fn a_snapshot_survives_its_encoding_and_restores_equal() {
    let h = every_state();
    let snapshot = h.sup.snapshot(&|_, _| false);
    let back = through_bytes(&snapshot);
    assert_eq!(back, snapshot);
    let restored = Supervisor::restore(back, &|_, _| None).expect("restore");
    assert_eq!(restored.snapshot(&|_, _| false), snapshot);
    assert_eq!(restored.poll_deadline(), h.sup.poll_deadline());
    assert_eq!(restored.counts, h.sup.counts);
    assert_eq!(restored.timers.len(), h.sup.timers.len());
    for service in h.sup.services() {
        let id = restored.find(service.name()).expect("same names");
        assert_eq!(id, service.id);
        assert_eq!(
            format!("{:?}", restored.get(id)),
            format!("{:?}", Some(service))
        );
        assert_eq!(restored.waiting_for(id), h.sup.waiting_for(id));
    }
}

#[test]
fn behaviours_the_shell_keeps_are_left_out_and_given_back() {
    let h = every_state();
    let mut kept: HashMap<(String, u64), Behaviour> = HashMap::new();
    for s in h.sup.services() {
        kept.insert((s.name().to_string(), s.revision), s.behaviour.clone());
    }
    let known =
        |name: &str, revision: u64| name != "crash" && kept.contains_key(&(name.into(), revision));
    let snapshot = through_bytes(&h.sup.snapshot(&known));
    let held: Vec<&str> = snapshot
        .slots
        .iter()
        .filter_map(|s| s.service.as_ref())
        .filter(|s| s.behaviour.is_some())
        .map(|s| &*s.name)
        .collect();
    assert_eq!(held, ["crash"], "only crash's behaviour is in the snapshot");
    let asked = std::cell::RefCell::new(Vec::new());
    let given = |name: &str, revision: u64| {
        asked.borrow_mut().push(name.to_string());
        kept.get(&(name.to_string(), revision)).cloned()
    };
    let restored = Supervisor::restore(snapshot.clone(), &given).expect("restore");
    assert_eq!(asked.borrow().len(), h.sup.services().count() - 1);
    assert!(!asked.borrow().iter().any(|n| n == "crash"));
    assert_eq!(
        restored.snapshot(&|_, _| false),
        h.sup.snapshot(&|_, _| false)
    );
    // A definition the shell does not have: refused, not guessed.
    let err = Supervisor::restore(snapshot, &|_, _| None)
        .err()
        .unwrap_or_default();
    assert!(err.contains("no definition of"), "{err}");
}

#[test]
fn the_restored_core_decides_as_the_original_would() {
    let mut h = every_state();
    let snapshot = through_bytes(&h.sup.snapshot(&|_, _| false));
    let mut restored = Supervisor::restore(snapshot, &|_, _| None).expect("restore");
    // An exit and a command, then every deadline for three minutes: the
    // backoff, the stop's SIGKILL, the readiness timeouts, the watchdog, the
    // waiter, the drain's give-up, min_uptime and checks all fire alike.
    let live = h.id("live");
    let process = h.service("live").state.process().expect("live runs");
    let run = h.run_id("live");
    let exit = Event::Exited {
        service: live,
        run,
        pid: process.pid,
        status: ExitStatus::Signal(9),
    };
    let now = h.now;
    assert_eq!(h.sup.handle(exit.clone(), now), restored.handle(exit, now));
    let stop = Event::Command {
        request: Some(RequestId(77)),
        command: Command::Stop {
            services: vec![h.id("up")],
            wait: true,
        },
    };
    assert_eq!(h.sup.handle(stop.clone(), now), restored.handle(stop, now));
    let mut fired = 0;
    for step in 1..=3600 {
        let at = now.saturating_add(Duration::from_millis(50 * step));
        let (a, b) = (h.sup.handle_deadlines(at), restored.handle_deadlines(at));
        fired += a.len();
        assert_eq!(a, b, "at {at}");
        assert_eq!(h.sup.poll_deadline(), restored.poll_deadline(), "at {at}");
    }
    assert!(fired > 10, "the deadlines fired ({fired} actions)");
}

#[test]
fn a_check_in_flight_is_due_again_after_rearming() {
    let h = every_state();
    let mut restored =
        Supervisor::restore(h.sup.snapshot(&|_, _| false), &|_, _| None).expect("restore");
    let later = Instant::from_millis(2000);
    restored.rearm_checks(later);
    let check = state_of(&restored, "check");
    let State::Starting { check: Some(c), .. } = check else {
        panic!("{check:?}");
    };
    assert_eq!(c.next_at, Some(later));
    // The liveness check that was scheduled keeps its time.
    assert_eq!(state_of(&restored, "live"), state_of(&h.sup, "live"));
    let actions = restored.handle_deadlines(later);
    let probed: Vec<ServiceId> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Probe { service, .. } => Some(*service),
            _ => None,
        })
        .collect();
    assert_eq!(probed, [h.id("check")]);
}

#[test]
fn a_snapshot_that_does_not_hold_together_is_refused() {
    let h = every_state();
    let good = h.sup.snapshot(&|_, _| false);
    type Mutation = (&'static str, fn(&mut CoreSnapshot));
    let mutations: [Mutation; 6] = [
        ("wrong slot", |s| s.slots[0].generation = 5),
        ("order", |s| {
            s.order.push(ServiceId {
                index: 999,
                generation: 0,
            })
        }),
        ("order twice", |s| s.order.push(s.order[0])),
        ("free", |s| s.free = vec![0]),
        ("twice", |s| {
            let mut copy = s.slots[0].clone();
            let index = s.slots.len() as u32;
            if let Some(service) = &mut copy.service {
                service.id.index = index;
            }
            s.slots.push(copy);
        }),
        ("waiter", |s| {
            s.waiters[0].waiter.services[0].0 = ServiceId {
                index: 999,
                generation: 0,
            }
        }),
    ];
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        let snapshot = through_bytes(&bad);
        assert!(
            Supervisor::restore(snapshot, &|_, _| None).is_err(),
            "{what}"
        );
    }
}

/// Two cores fed the same random inputs, one of them restored from a
/// snapshot (through its encoding) now and then: their orders never differ.
#[test]
fn random_walk_with_restores_decides_as_without() {
    let mut a = super::tests::log_ready("a");
    a.max_retries = 3;
    let mut b = spec("b");
    b.dependencies = vec![dep("a", Condition::Ready)];
    let mut c = oneshot("c");
    c.max_retries = 2;
    let mut d = spec("d");
    d.dependencies = vec![dep("c", Condition::Completed)];
    let full = config(vec![a.clone(), b, c.clone(), d, spec("e")]);
    let mut e2 = spec("e");
    e2.command = vec!["/bin/other".into()];
    let partial = config(vec![a, c, e2]);
    let names = ["a", "b", "c", "d", "e"];
    let tweak = |def: &mut Definition| match &*def.name {
        "e" => {
            def.behaviour.readiness = Readiness::Checked {
                interval: Duration::from_millis(300),
            };
            def.behaviour.liveness = Some(Liveness {
                interval: Duration::from_secs(1),
                failures: 2,
            });
        }
        "d" => def.behaviour.contained = true,
        "b" => {
            def.behaviour.readiness = Readiness::Notify;
            def.behaviour.watchdog = Some(Duration::from_secs(2));
        }
        _ => {}
    };
    let mut restores = 0;
    for seed in 1..40u64 {
        let mut plain = Harness::start_with(full.clone(), tweak);
        let mut restored = Harness::start_with(full.clone(), tweak);
        let mut rng = policy::Rng::new(seed);
        for step in 0..400 {
            let name = names[(rng.next_u64() % 5) as usize];
            let id = plain.sup.find(name);
            let service = id.and_then(|id| plain.sup.get(id));
            let run = service.and_then(|s| s.state.run());
            let pid = service.and_then(|s| s.state.pid());
            let draining = service.and_then(|s| match s.state {
                State::Draining { run, .. } => Some(run),
                _ => None,
            });
            let pick = rng.next_u64() % 12;
            let event = match (pick, id) {
                (0 | 1, Some(id)) => run.zip(pid).map(|(run, pid)| Event::Exited {
                    service: id,
                    run,
                    pid,
                    status: ExitStatus::Code((rng.next_u64() % 3) as i32),
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
                        ready: true,
                        watchdog: true,
                        ..Notice::default()
                    },
                }),
                (5, Some(id)) => Some(Event::Command {
                    request: Some(RequestId(step)),
                    command: Command::Stop {
                        services: vec![id],
                        wait: true,
                    },
                }),
                (6, Some(id)) => Some(Event::Command {
                    request: Some(RequestId(step)),
                    command: Command::Start {
                        services: vec![id],
                        wait: true,
                    },
                }),
                (7, Some(id)) => draining.map(|run| Event::GroupEmpty { service: id, run }),
                (8, _) => {
                    let next = if rng.next_u64().is_multiple_of(2) {
                        &full
                    } else {
                        &partial
                    };
                    assert_eq!(plain.reload(next.clone()), restored.reload(next.clone()));
                    None
                }
                (9, _) => {
                    let snapshot = through_bytes(&restored.sup.snapshot(&|_, _| false));
                    restored.sup = Supervisor::restore(snapshot, &|_, _| None).expect("restore");
                    restores += 1;
                    None
                }
                _ => None,
            };
            match event {
                Some(e) => {
                    plain.event(e.clone());
                    restored.event(e);
                }
                None => {
                    let at = plain.next_deadline();
                    if let Some(at) = at {
                        restored.now = at.max(restored.now);
                        let actions = restored.sup.handle_deadlines(restored.now);
                        restored.run(actions);
                    }
                }
            }
            assert_eq!(plain.take(), restored.take(), "seed {seed} step {step}");
            assert_eq!(
                plain.sup.snapshot(&|_, _| false),
                restored.sup.snapshot(&|_, _| false),
                "seed {seed}"
            );
        }
    }
    assert!(restores > 100, "{restores} restores");
}
