//! The whole transition table, walked cell by cell and compared with
//! `src/machine/table.txt`.
//!
//! Every state × every input × four kinds of service is fed to
//! `Service::step` once; each cell that changes anything (state, goal,
//! actions) becomes one line of the table. A cell that is not in the file
//! must change nothing. So any change of behaviour, intended or not, shows
//! up as a diff of that file: review it, then regenerate it with
//! `TEND_BLESS=1 cargo test --lib tests_table`.

#![allow(clippy::wildcard_enum_match_arm)]

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use super::behaviour::{Behaviour, Liveness, Readiness};
use super::policy::Rng;
use super::reload::Definition;
use super::service::{Checking, Goal, Process, Service, State};
use super::tests_support::{oneshot, some_id, spec};
use super::transition::{Cx, Input};
use super::*;

const RUN: RunId = RunId(7);
const OLD_RUN: RunId = RunId(6);
const PID: Pid = Pid(700);

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn kinds() -> Vec<(&'static str, Behaviour)> {
    let plain = Behaviour::of(&spec("s"));
    let mut checked = plain.clone();
    checked.readiness = Readiness::Checked {
        interval: Duration::from_secs(1),
    };
    checked.liveness = Some(Liveness {
        interval: Duration::from_secs(10),
        failures: 3,
    });
    let mut notify = plain.clone();
    notify.readiness = Readiness::Notify;
    notify.watchdog = Some(Duration::from_secs(30));
    let mut up = plain.clone();
    up.min_uptime = Duration::from_secs(2);
    let mut contained = plain.clone();
    contained.contained = true;
    vec![
        ("plain", plain),
        ("checked", checked),
        ("notify", notify),
        ("min_uptime", up),
        ("contained", contained),
        ("oneshot", Behaviour::of(&oneshot("s"))),
    ]
}

/// The states a service of `b` can be in, as the table's fixtures.
fn states(b: &Behaviour) -> Vec<(&'static str, State)> {
    let process = Process {
        pid: PID,
        pgid: PID,
    };
    let check = |next: u64| {
        Some(Checking {
            next_at: Some(ms(next)),
            failures: 1,
            attempts: 1,
        })
    };
    let (ready_by, up_by, starting_check) = match b.readiness {
        _ if b.is_oneshot() => (None, None, None),
        Readiness::Checked { .. } => (Some(ms(60_000)), None, check(1_100)),
        Readiness::Notify | Readiness::Reported => (Some(ms(60_000)), None, None),
        Readiness::None if !b.min_uptime.is_zero() => (None, Some(ms(2_000)), None),
        Readiness::None => (None, None, None),
    };
    let running_check = b.liveness.map(|_| check(10_000)).unwrap_or(None);
    let watchdog_by = b.watchdog.map(|_| ms(30_000));
    vec![
        ("pending", State::Pending),
        (
            "spawning",
            State::Spawning {
                run: RUN,
                from: StateName::Pending,
            },
        ),
        (
            "starting",
            State::Starting {
                run: RUN,
                process,
                since: ms(0),
                ready_by,
                up_by,
                check: starting_check,
            },
        ),
        (
            "running",
            State::Running {
                run: RUN,
                process,
                since: ms(0),
                check: running_check,
                watchdog_by,
            },
        ),
        (
            "stopping",
            State::Stopping {
                run: RUN,
                process,
                since: ms(0),
                kill_at: Some(ms(10_000)),
                failure: None,
            },
        ),
        (
            "stopping(failure)",
            State::Stopping {
                run: RUN,
                process,
                since: ms(0),
                kill_at: Some(ms(10_000)),
                failure: Some(Failure::NotReady(Duration::from_secs(60))),
            },
        ),
        (
            "draining",
            State::Draining {
                run: RUN,
                exit: Exit {
                    status: ExitStatus::Code(1),
                    after: Duration::from_secs(3),
                },
                was: Ended::Running,
                give_up_at: ms(13_000),
            },
        ),
        ("stopped", State::Stopped { completed: false }),
        ("completed", State::Stopped { completed: true }),
        (
            "restarting",
            State::Restarting {
                start_at: ms(1_000),
            },
        ),
        ("failed", State::Failed),
    ]
}

/// Every input, with the goal and context it is fed with.
fn inputs(b: &Behaviour) -> Vec<(&'static str, Goal, bool, Input)> {
    let notice = |f: fn(&mut Notice)| {
        let mut n = Notice::default();
        f(&mut n);
        n
    };
    let own = Sender {
        pid: PID,
        pgid: Some(PID),
    };
    let stranger = Sender {
        pid: Pid(9),
        pgid: Some(Pid(9)),
    };
    let mut disabled = b.clone();
    disabled.enabled = false;
    let def = |behaviour: Behaviour| {
        Input::Redefine(Box::new(Definition {
            name: Arc::from("s"),
            revision: 2,
            behaviour,
        }))
    };
    let probe = |role, ok| Input::ProbeResult {
        run: RUN,
        role,
        ok,
        message: "m".into(),
    };
    let exited = |pid, code| Input::Exited {
        run: RUN,
        pid,
        status: ExitStatus::Code(code),
    };
    use Goal::{Down, Remove, Up};
    vec![
        ("evaluate, goal up", Up, false, Input::Evaluate),
        ("evaluate, goal down", Down, false, Input::Evaluate),
        ("evaluate, goal down, held", Down, true, Input::Evaluate),
        ("evaluate, goal remove", Remove, false, Input::Evaluate),
        ("start (named)", Down, false, Input::Start { named: true }),
        ("start (needed)", Down, false, Input::Start { named: false }),
        ("stop", Up, false, Input::Stop),
        ("restart", Up, false, Input::Restart),
        ("redefine", Up, false, def(b.clone())),
        ("redefine (disabled)", Up, false, def(disabled)),
        ("remove", Up, false, Input::Remove),
        ("shutdown", Up, false, Input::Shutdown),
        ("kill", Up, false, Input::Kill),
        ("spawned", Up, false, Input::Spawned { run: RUN, pid: PID }),
        (
            "spawn failed",
            Up,
            false,
            Input::SpawnFailed {
                run: RUN,
                error: "e".into(),
            },
        ),
        ("exit 0", Up, false, exited(PID, 0)),
        ("exit 1", Up, false, exited(PID, 1)),
        ("exit 0, goal down", Down, false, exited(PID, 0)),
        ("cgroup empty", Up, false, Input::GroupEmpty { run: RUN }),
        ("exit of another pid", Up, false, exited(Pid(8), 1)),
        (
            "exit of an old run",
            Up,
            false,
            Input::Exited {
                run: OLD_RUN,
                pid: PID,
                status: ExitStatus::Code(1),
            },
        ),
        ("ready", Up, false, Input::Ready { run: RUN }),
        ("readiness passed", Up, false, probe(Role::Readiness, true)),
        ("readiness failed", Up, false, probe(Role::Readiness, false)),
        ("liveness passed", Up, false, probe(Role::Liveness, true)),
        ("liveness failed", Up, false, probe(Role::Liveness, false)),
        (
            "notify READY=1",
            Up,
            false,
            Input::Notified {
                from: own,
                notice: notice(|n| n.ready = true),
            },
        ),
        (
            "notify WATCHDOG=1",
            Up,
            false,
            Input::Notified {
                from: own,
                notice: notice(|n| n.watchdog = true),
            },
        ),
        (
            "notify EXTEND_TIMEOUT_USEC",
            Up,
            false,
            Input::Notified {
                from: own,
                notice: notice(|n| n.extend_timeout = Some(Duration::from_secs(90))),
            },
        ),
        (
            "notify from a stranger",
            Up,
            false,
            Input::Notified {
                from: stranger,
                notice: notice(|n| n.ready = true),
            },
        ),
        ("deadline", Up, false, Input::Deadline),
    ]
}

/// One action, briefly.
fn action(a: &Action) -> String {
    match a {
        Action::Spawn { run, .. } => format!("Spawn(run {})", run.0),
        Action::Signal { signal, .. } => format!("Signal({signal})"),
        Action::ClearGroup { .. } => "ClearGroup".into(),
        Action::Probe { role, .. } => format!("Probe({role:?})"),
        Action::CancelProbe { role, .. } => format!("CancelProbe({role:?})"),
        Action::Track { pid, .. } => format!("Track({})", pid.0),
        Action::Transitioned(t) => format!("log({} -> {}: {:?})", t.from, t.to, t.why),
        Action::Note(n) => format!("Note({})", note(n)),
        Action::Answer { .. } => "Answer".into(),
        Action::Forget { .. } => "Forget".into(),
        Action::Upward(u) => format!("Upward({u:?})"),
        Action::Exit { code } => format!("Exit({code})"),
    }
}

fn note(n: &Note) -> &'static str {
    match n {
        Note::NotifyRejected { .. } => "notify rejected",
        Note::NotifyStopping { .. } => "stopping",
        Note::MainPid { .. } => "main pid",
        Note::MainPidRejected { .. } => "main pid rejected",
        Note::Reloaded(_) => "reloaded",
        Note::LeftBehind { .. } => "left behind",
        Note::Terminating { .. } => "terminating",
    }
}

/// A state with its times, briefly.
fn state(s: &State) -> String {
    let t = |i: &Option<Instant>| i.map_or("-".to_string(), |i| i.to_string());
    let c = |c: &Option<Checking>| match c {
        Some(c) => format!(" check {} f{}", t(&c.next_at), c.failures),
        None => String::new(),
    };
    match s {
        State::Pending => "pending".into(),
        State::Spawning { run, .. } => format!("spawning(run {})", run.0),
        State::Starting {
            ready_by,
            up_by,
            check,
            process,
            ..
        } => format!(
            "starting(pid {} ready_by {} up_by {}{})",
            process.pid.0,
            t(ready_by),
            t(up_by),
            c(check)
        ),
        State::Running {
            check,
            watchdog_by,
            process,
            ..
        } => format!(
            "running(pid {} watchdog {}{})",
            process.pid.0,
            t(watchdog_by),
            c(check)
        ),
        State::Stopping {
            kill_at, failure, ..
        } => format!(
            "stopping(kill_at {}{})",
            t(kill_at),
            if failure.is_some() { " counted" } else { "" }
        ),
        State::Draining {
            exit,
            was,
            give_up_at,
            ..
        } => format!(
            "draining(was {}, {:?}, give up at {give_up_at})",
            was.name(),
            exit.status
        ),
        State::Stopped { completed } => {
            if *completed {
                "stopped(completed)".into()
            } else {
                "stopped".into()
            }
        }
        State::Restarting { start_at } => format!("restarting(at {start_at})"),
        State::Failed => "failed".into(),
    }
}

/// Feed every cell; return the lines of the cells that change something.
fn table() -> String {
    let now = ms(5_000);
    let mut out = String::new();
    for (kind, behaviour) in kinds() {
        for (state_name, fixture) in states(&behaviour) {
            let only = |kind_wanted: bool| !kind_wanted;
            if state_name == "completed" && only(behaviour.is_oneshot())
                || state_name == "draining" && only(behaviour.contained)
            {
                continue;
            }
            for (input_name, goal, held_up, input) in inputs(&behaviour) {
                let mut s = Service::new(some_id(), Arc::from("s"), behaviour.clone(), 1, ms(0));
                s.state = fixture.clone();
                s.goal = goal;
                let at = match input {
                    Input::Deadline => fixture.deadline().unwrap_or(now),
                    _ => now,
                };
                let before = (s.state.clone(), s.goal);
                let mut rng = Rng::new(1);
                let mut next_run = 8;
                let mut actions = Vec::new();
                let mut cx = Cx {
                    now: at,
                    shutting_down: input_name == "shutdown",
                    deps_met: true,
                    held_up,
                    rng: &mut rng,
                    next_run: &mut next_run,
                    out: &mut actions,
                    forget: false,
                    shutdown: None,
                };
                s.step(input, &mut cx);
                let (forget, shutdown) = (cx.forget, cx.shutdown);
                let changed = (s.state.clone(), s.goal) != before;
                if !changed && actions.is_empty() && !forget && shutdown.is_none() {
                    continue;
                }
                let acts: Vec<String> = actions.iter().map(action).collect();
                let _ = writeln!(
                    out,
                    "{kind} | {} {state_name} | {input_name} -> {} {}{}{} | {}",
                    goal_name(before.1),
                    goal_name(s.goal),
                    state(&s.state),
                    if forget { " +forget" } else { "" },
                    shutdown.map_or(String::new(), |c| format!(" +shutdown({c})")),
                    acts.join(", ")
                );
            }
        }
    }
    out
}

fn goal_name(g: Goal) -> &'static str {
    match g {
        Goal::Up => "[up]",
        Goal::Needed => "[needed]",
        Goal::Down => "[down]",
        Goal::Remove => "[remove]",
    }
}

#[test]
fn every_cell_of_the_table_is_as_recorded() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/machine/table.txt");
    let got = table();
    if std::env::var_os("TEND_BLESS").is_some() {
        std::fs::write(path, &got).expect("NOTE(unwrap): the source folder is writable");
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "table.txt line {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "table.txt has a different number of rows; review and bless"
    );
}
