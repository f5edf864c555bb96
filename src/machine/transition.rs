//! The transition function: one exhaustive `match (state, input)` per service.
//!
//! Every row of the table in `machine/mod.rs` is one arm (or one alternative of
//! an arm) here, in the same order; there is no wildcard, so a new state or
//! input does not compile until every row is decided. The state is assigned in
//! exactly one place, [`Service::set`], which also logs the change.
//!
//! A step sees only its own service plus what the supervisor worked out for it
//! ([`Cx`]: the time, whether its dependencies are met, whether a dependent
//! still holds it up); it writes its orders into `cx.out`.

use std::time::Duration;

use super::action::{Action, Failure, Transition, Why};
use super::behaviour::Readiness;
use super::event::{ExitStatus, Notice, Role, Sender};
use super::policy::{self, Rng};
use super::reload::Definition;
use super::service::{Checking, Ended, Goal, Process, Service, State};
use super::steps::kill;
use super::time::Instant;
use super::{Pid, RunId};

/// One input to one service.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Something it depends on, or that depends on it, or its goal changed:
    /// decide again.
    Evaluate,
    /// `tend start` of it (`named`), or of a service that depends on it.
    Start {
        named: bool,
    },
    /// `tend stop` of it or of something it depends on.
    Stop,
    /// `tend restart` of it.
    Restart,
    /// A reload changed its definition (or re-added it).
    Redefine(Box<Definition>),
    /// A reload dropped it.
    Remove,
    /// tend is shutting down.
    Shutdown,
    /// Second termination signal or `shutdown_timeout`: SIGKILL now.
    Kill,
    Spawned {
        run: RunId,
        pid: Pid,
    },
    SpawnFailed {
        run: RunId,
        error: String,
    },
    Exited {
        run: RunId,
        pid: Pid,
        status: ExitStatus,
    },
    /// The cgroup of `run` is empty.
    GroupEmpty {
        run: RunId,
    },
    /// Readiness fd newline or log pattern of `run`.
    Ready {
        run: RunId,
    },
    ProbeResult {
        run: RunId,
        role: Role,
        ok: bool,
        message: String,
    },
    Notified {
        from: Sender,
        notice: Notice,
    },
    /// The state's deadline passed.
    Deadline,
}

/// What a step may know besides its own service, and where its orders go.
pub struct Cx<'a> {
    pub now: Instant,
    pub shutting_down: bool,
    /// Every dependency meets its condition (computed for `Evaluate`).
    pub deps_met: bool,
    /// A service that depends on this one, directly or through others, is up
    /// (computed for `Evaluate`).
    pub held_up: bool,
    pub rng: &'a mut Rng,
    pub next_run: &'a mut u64,
    pub out: &'a mut Vec<Action>,
    /// Set by a step: the service is down and removed; free it.
    pub forget: bool,
    /// Set by a step: a critical service failed; shut down with this code.
    pub shutdown: Option<i32>,
}

/// First readiness attempt this soon after spawn, doubling up to the interval:
/// a server that is up in 300 ms is seen then, not a whole interval later.
pub(super) const FIRST_READINESS_ATTEMPT: Duration = Duration::from_millis(50);

impl Service {
    /// Feed one input; see the table in `machine/mod.rs`.
    pub fn step(&mut self, input: Input, cx: &mut Cx<'_>) {
        let now = cx.now;
        match (self.state.clone(), input) {
            // ----- Evaluate -----
            (State::Pending, Input::Evaluate) => {
                if self.goal.is_up() && !cx.shutting_down {
                    if cx.deps_met {
                        self.spawn(cx);
                    }
                } else {
                    self.settle_down(cx);
                }
            }
            (State::Starting { .. } | State::Running { .. }, Input::Evaluate) => {
                if !self.goal.is_up() && !cx.held_up {
                    let why = self.goal_why(cx);
                    self.begin_stop(cx, None, why);
                }
            }
            (State::Restarting { .. }, Input::Evaluate) => {
                if !self.goal.is_up() || cx.shutting_down {
                    self.settle_down(cx);
                }
            }
            (State::Stopped { .. } | State::Failed, Input::Evaluate) => {
                cx.forget = self.goal == Goal::Remove;
            }
            (
                State::Spawning { .. } | State::Stopping { .. } | State::Draining { .. },
                Input::Evaluate,
            ) => {}

            // ----- commands: they set the goal; Evaluate moves the state -----
            (state, Input::Start { named }) => {
                if named {
                    self.goal = Goal::Up;
                } else if !self.goal.is_up() {
                    self.goal = Goal::Needed;
                }
                let why = if named {
                    Why::StartRequested
                } else {
                    Why::Needed
                };
                match state {
                    State::Stopped { completed } if named || !completed => {
                        self.again(cx, why);
                    }
                    State::Restarting { .. } | State::Failed => self.again(cx, why),
                    State::Stopped { .. }
                    | State::Pending
                    | State::Spawning { .. }
                    | State::Starting { .. }
                    | State::Running { .. }
                    | State::Stopping { .. }
                    | State::Draining { .. } => {}
                }
            }
            (
                State::Pending
                | State::Spawning { .. }
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Draining { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed,
                Input::Stop,
            ) => self.goal = Goal::Down,
            (State::Starting { .. } | State::Running { .. }, Input::Restart) => {
                self.goal = Goal::Up;
                self.budget.clear();
                self.begin_stop(cx, None, Why::RestartRequested);
            }
            (
                State::Pending
                | State::Spawning { .. }
                | State::Stopping { .. }
                | State::Draining { .. },
                Input::Restart,
            ) => {
                self.goal = Goal::Up;
                self.budget.clear();
            }
            (State::Stopped { .. } | State::Restarting { .. } | State::Failed, Input::Restart) => {
                self.goal = Goal::Up;
                self.again(cx, Why::RestartRequested);
            }
            (state, Input::Redefine(def)) => {
                let enabled = def.behaviour.enabled;
                self.goal = if enabled { Goal::Up } else { Goal::Down };
                self.budget.clear();
                match state {
                    // The old process stops as the old definition says; a
                    // disabled one waits for its dependents (Evaluate).
                    State::Starting { .. } | State::Running { .. } if enabled => {
                        self.begin_stop(cx, None, Why::Redefined);
                    }
                    State::Starting { .. }
                    | State::Running { .. }
                    | State::Spawning { .. }
                    | State::Stopping { .. }
                    | State::Draining { .. } => {}
                    State::Pending
                    | State::Stopped { .. }
                    | State::Restarting { .. }
                    | State::Failed => {
                        let next = if enabled {
                            State::Pending
                        } else {
                            State::Stopped { completed: false }
                        };
                        self.set(cx, next, Some(Why::Redefined));
                    }
                }
                self.behaviour = def.behaviour;
                self.revision = def.revision;
            }
            (
                State::Pending
                | State::Spawning { .. }
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Draining { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed,
                Input::Remove,
            ) => self.goal = Goal::Remove,
            (
                State::Pending
                | State::Spawning { .. }
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Draining { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed,
                Input::Shutdown,
            ) => {
                if self.goal != Goal::Remove {
                    self.goal = Goal::Down;
                }
            }
            (
                State::Starting { run, process, .. } | State::Running { run, process, .. },
                Input::Kill,
            ) => kill(cx, self, run, process),
            (mut state @ State::Stopping { run, process, .. }, Input::Kill) => {
                if let State::Stopping { kill_at, .. } = &mut state {
                    *kill_at = None;
                }
                self.set(cx, state, None);
                kill(cx, self, run, process);
            }
            (
                State::Pending
                | State::Spawning { .. }
                | State::Draining { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed,
                Input::Kill,
            ) => {}

            // ----- what the shell saw happen to processes -----
            (State::Spawning { run, .. }, Input::Spawned { run: r, pid }) if r == run => {
                self.spawned(cx, run, Process { pid, pgid: pid });
            }
            (State::Spawning { run, .. }, Input::SpawnFailed { run: r, error }) if r == run => {
                self.fail(cx, Failure::Spawn(error));
            }
            (
                State::Spawning { .. }
                | State::Pending
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Draining { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed,
                Input::Spawned { .. } | Input::SpawnFailed { .. },
            ) => {} // an old run's answer: cannot happen (a run is answered once)

            (
                State::Starting {
                    run,
                    process,
                    since,
                    ..
                },
                Input::Exited {
                    run: r,
                    pid,
                    status,
                },
            ) if r == run && pid == process.pid => {
                let exit = self.exited(cx, run, process, since, status);
                self.exit_or_drain(cx, run, Ended::Starting, exit);
            }
            (
                State::Running {
                    run,
                    process,
                    since,
                    ..
                },
                Input::Exited {
                    run: r,
                    pid,
                    status,
                },
            ) if r == run && pid == process.pid => {
                let exit = self.exited(cx, run, process, since, status);
                self.exit_or_drain(cx, run, Ended::Running, exit);
            }
            (
                State::Stopping {
                    run,
                    process,
                    since,
                    failure,
                    ..
                },
                Input::Exited {
                    run: r,
                    pid,
                    status,
                },
            ) if r == run && pid == process.pid => {
                let exit = self.exited(cx, run, process, since, status);
                self.exit_or_drain(cx, run, Ended::Stopping(failure), exit);
            }
            (State::Draining { run, exit, was, .. }, Input::GroupEmpty { run: r }) if r == run => {
                self.after_exit(cx, was, exit)
            }
            (
                State::Draining { .. }
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Pending
                | State::Spawning { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed,
                Input::GroupEmpty { .. },
            ) => {} // an old run's cgroup
            (
                State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Pending
                | State::Spawning { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Draining { .. }
                | State::Failed,
                Input::Exited { .. },
            ) => {} // an old run, or a process that is no longer the main one

            (State::Starting { run, .. }, Input::Ready { run: r })
                if r == run && self.behaviour.readiness == Readiness::Reported =>
            {
                self.become_ready(cx, run);
            }
            (
                State::Starting { .. }
                | State::Pending
                | State::Spawning { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Draining { .. }
                | State::Failed,
                Input::Ready { .. },
            ) => {}

            (
                State::Starting {
                    run,
                    check: Some(check),
                    ..
                },
                Input::ProbeResult {
                    run: r,
                    role: Role::Readiness,
                    ok,
                    message,
                },
            ) if r == run => {
                let failures = self.record_probe(cx, Role::Readiness, ok, message, check);
                if ok {
                    self.become_ready(cx, run);
                } else if let Readiness::Checked { interval } = self.behaviour.readiness {
                    let delay = (FIRST_READINESS_ATTEMPT * 2u32.saturating_pow(check.attempts))
                        .min(interval);
                    let next = Checking {
                        next_at: Some(policy::probe_time(now, delay)),
                        failures,
                        attempts: check.attempts + 1,
                    };
                    self.set_check(cx, next);
                }
            }
            (
                State::Running {
                    run,
                    check: Some(check),
                    ..
                },
                Input::ProbeResult {
                    run: r,
                    role: Role::Liveness,
                    ok,
                    message,
                },
            ) if r == run => {
                let failures = self.record_probe(cx, Role::Liveness, ok, message.clone(), check);
                let Some(liveness) = self.behaviour.liveness else {
                    return;
                };
                if failures >= liveness.failures {
                    let failure = Failure::Unhealthy { failures, message };
                    self.begin_stop(cx, Some(failure.clone()), Why::Failed(failure));
                } else {
                    let next = Checking {
                        next_at: Some(policy::probe_time(now, liveness.interval)),
                        failures,
                        attempts: check.attempts + 1,
                    };
                    self.set_check(cx, next);
                }
            }
            (
                State::Starting { .. }
                | State::Running { .. }
                | State::Pending
                | State::Spawning { .. }
                | State::Stopping { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Draining { .. }
                | State::Failed,
                Input::ProbeResult { .. },
            ) => {} // an old run's, or a check that is no longer running

            (
                state @ (State::Starting { process, .. }
                | State::Running { process, .. }
                | State::Stopping { process, .. }),
                Input::Notified { from, notice },
            ) => {
                if from.pid == process.pid || from.pgid == Some(process.pgid) {
                    self.notified(cx, state, process, notice);
                } else {
                    let note = super::action::Note::NotifyRejected {
                        service: self.id,
                        pid: from.pid,
                    };
                    cx.out.push(Action::Note(note));
                }
            }
            (
                State::Pending
                | State::Spawning { .. }
                | State::Draining { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed,
                Input::Notified { from, .. },
            ) => {
                // No process of its own: whoever it is, it is not the service.
                let note = super::action::Note::NotifyRejected {
                    service: self.id,
                    pid: from.pid,
                };
                cx.out.push(Action::Note(note));
            }

            // ----- deadlines -----
            (
                State::Starting {
                    run,
                    process,
                    ready_by,
                    up_by,
                    check,
                    since,
                },
                Input::Deadline,
            ) => {
                if ready_by.is_some_and(|at| at <= now) {
                    let failure = Failure::NotReady(self.behaviour.timeout_start);
                    self.begin_stop(cx, Some(failure.clone()), Why::Failed(failure));
                } else if up_by.is_some_and(|at| at <= now) {
                    let after = now.saturating_since(since);
                    self.enter_running(cx, run, process, since, Why::UpLongEnough { after });
                } else if let Some(c) = check
                    && c.next_at.is_some_and(|at| at <= now)
                {
                    self.set_check(cx, Checking { next_at: None, ..c });
                    let (service, role) = (self.id, Role::Readiness);
                    cx.out.push(Action::Probe { service, run, role });
                }
            }
            (
                State::Running {
                    run,
                    check,
                    watchdog_by,
                    ..
                },
                Input::Deadline,
            ) => {
                if watchdog_by.is_some_and(|at| at <= now) {
                    let failure = Failure::Watchdog(self.behaviour.watchdog.unwrap_or_default());
                    self.begin_stop(cx, Some(failure.clone()), Why::Failed(failure));
                } else if let Some(c) = check
                    && c.next_at.is_some_and(|at| at <= now)
                {
                    self.set_check(cx, Checking { next_at: None, ..c });
                    let (service, role) = (self.id, Role::Liveness);
                    cx.out.push(Action::Probe { service, run, role });
                }
            }
            (mut state @ State::Stopping { run, process, .. }, Input::Deadline) => {
                if let State::Stopping { kill_at, .. } = &mut state {
                    *kill_at = None;
                }
                self.set(cx, state, None);
                kill(cx, self, run, process);
            }
            (State::Draining { exit, was, .. }, Input::Deadline) => {
                let service = self.id;
                let note = super::action::Note::LeftBehind { service };
                cx.out.push(Action::Note(note));
                self.after_exit(cx, was, exit);
            }
            (State::Restarting { .. }, Input::Deadline) => {
                if self.goal.is_up() && !cx.shutting_down {
                    self.set(cx, State::Pending, Some(Why::BackoffOver));
                } else {
                    self.settle_down(cx);
                }
            }
            (
                State::Pending | State::Spawning { .. } | State::Stopped { .. } | State::Failed,
                Input::Deadline,
            ) => {}
        }
    }

    // ----- the one place the state changes -----

    /// Enter `next`; `why` is `Some` for a change worth a log line (a new state,
    /// or the same state for a new reason), `None` for new data in the same
    /// state (a deadline moved, a check rescheduled).
    pub(super) fn set(&mut self, cx: &mut Cx<'_>, next: State, why: Option<Why>) {
        let from = self.state.name();
        let to = next.name();
        if let Some(why) = why {
            // A start is one line: `pending -> running (pid 42)`, not two.
            let logged_from = match &self.state {
                State::Spawning { from, .. } => *from,
                State::Draining { was, .. } => was.name(),
                State::Pending
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed => from,
            };
            cx.out.push(Action::Transitioned(Transition {
                service: self.id,
                name: self.name.clone(),
                from: logged_from,
                to,
                pid: next.pid(),
                why,
            }));
        }
        if from != to {
            self.changed_at = cx.now;
        }
        self.state = next;
    }
}
