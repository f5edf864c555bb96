//! One service as the core sees it: its [`Behaviour`], its [`Goal`], its
//! [`State`], and the history `tend status` shows.
//!
//! Data that is valid in only one state lives in that state's variant, so it
//! cannot outlive it: a pid exists only in `starting`, `running` and
//! `stopping`, a probe schedule only while one is due, a backoff only while
//! `restarting`. The state changes only in `transition.rs`, through
//! `Service::enter`.

use std::sync::Arc;
use std::time::Duration;

use super::action::{Exit, Failure, ProbeReport};
use super::behaviour::Behaviour;
use super::event::ExitStatus;
use super::policy::RetryBudget;
use super::time::Instant;
use super::{Pid, RunId, ServiceId};
use crate::config::Condition;

/// What the service should be doing, whatever it is doing now. Commands and
/// reloads change the goal; the transition table moves the state towards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Up: enabled in the config, or started by `tend start`/`restart`.
    Up,
    /// Up because a service that depends on it was started.
    Needed,
    /// Down: disabled, `tend stop` (of it or of something it depends on), or
    /// shutdown.
    Down,
    /// Removed from the config: stop it, then forget it.
    Remove,
}

impl Goal {
    pub fn is_up(self) -> bool {
        matches!(self, Goal::Up | Goal::Needed)
    }
}

/// A service's main process: its pid and its process group (the pid it was
/// spawned as; `MAINPID=` may move the pid within the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: Pid,
    pub pgid: Pid,
}

/// The schedule of a check while it runs: when the next attempt is due (`None`
/// while one is in flight) and how many failed in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checking {
    pub next_at: Option<Instant>,
    pub failures: u32,
    /// Attempts made so far in this run (readiness ramps up its interval).
    pub attempts: u32,
}

/// What a service is doing now (SPEC §3; `Spawning` shows as `starting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting for its dependencies (or its goal says down and it is not up).
    Pending,
    /// Spawn ordered; the shell answers before anything else happens. `from`:
    /// the state it left, for the one log line of the start.
    Spawning { run: RunId, from: StateName },
    /// Spawned, not ready yet. `ready_by`: `timeout_start`; `up_by`: the end of
    /// `min_uptime`; `check`: readiness attempts. A oneshot stays here while it
    /// runs, with none of them.
    Starting {
        run: RunId,
        process: Process,
        since: Instant,
        ready_by: Option<Instant>,
        up_by: Option<Instant>,
        check: Option<Checking>,
    },
    /// Ready. `check`: liveness attempts; `watchdog_by`: the notify watchdog.
    Running {
        run: RunId,
        process: Process,
        since: Instant,
        check: Option<Checking>,
        watchdog_by: Option<Instant>,
    },
    /// Stop signal sent; SIGKILL at `kill_at` (`None` once sent). `failure`:
    /// tend stopped it because of this failure, which its exit then counts as.
    Stopping {
        run: RunId,
        process: Process,
        since: Instant,
        kill_at: Option<Instant>,
        failure: Option<Failure>,
    },
    /// The main process of `run` exited and what it left in its cgroup is
    /// being killed: the exit is acted on once the cgroup is empty (or at
    /// `give_up_at`, if something cannot be killed). Only for services in a
    /// cgroup (SPEC §10: two generations never overlap). Shown as `stopping`.
    Draining {
        run: RunId,
        exit: Exit,
        was: Ended,
        give_up_at: Instant,
    },
    /// Down on purpose; `completed` for a oneshot that finished with success.
    Stopped { completed: bool },
    /// Exited; the next start is at `start_at`.
    Restarting { start_at: Instant },
    /// Given up on until started again (see `Service::last_error`).
    Failed,
}

/// Where a run was when its main process exited (what its exit means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Starting,
    Running,
    /// Being stopped; `Some`: because of this failure, which the exit counts as.
    Stopping(Option<Failure>),
}

impl Ended {
    pub fn name(&self) -> StateName {
        match self {
            Ended::Starting => StateName::Starting,
            Ended::Running => StateName::Running,
            Ended::Stopping(_) => StateName::Stopping,
        }
    }
}

/// A state's name as SPEC §3 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateName {
    Pending,
    Starting,
    Running,
    Stopping,
    Stopped,
    Restarting,
    Failed,
}

impl StateName {
    pub const ALL: [StateName; 7] = [
        StateName::Pending,
        StateName::Starting,
        StateName::Running,
        StateName::Stopping,
        StateName::Stopped,
        StateName::Restarting,
        StateName::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Pending => "pending",
            StateName::Starting => "starting",
            StateName::Running => "running",
            StateName::Stopping => "stopping",
            StateName::Stopped => "stopped",
            StateName::Restarting => "restarting",
            StateName::Failed => "failed",
        }
    }
}

impl std::fmt::Display for StateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl State {
    pub fn name(&self) -> StateName {
        match self {
            State::Pending => StateName::Pending,
            State::Spawning { .. } | State::Starting { .. } => StateName::Starting,
            State::Running { .. } => StateName::Running,
            State::Stopping { .. } | State::Draining { .. } => StateName::Stopping,
            State::Stopped { .. } => StateName::Stopped,
            State::Restarting { .. } => StateName::Restarting,
            State::Failed => StateName::Failed,
        }
    }

    /// The live main process of this state, if any.
    pub fn process(&self) -> Option<Process> {
        match self {
            State::Starting { process, .. }
            | State::Running { process, .. }
            | State::Stopping { process, .. } => Some(*process),
            State::Pending
            | State::Draining { .. }
            | State::Spawning { .. }
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => None,
        }
    }

    pub fn pid(&self) -> Option<Pid> {
        self.process().map(|p| p.pid)
    }

    /// The current run, while there is one.
    pub fn run(&self) -> Option<RunId> {
        match self {
            State::Spawning { run, .. }
            | State::Starting { run, .. }
            | State::Running { run, .. }
            | State::Stopping { run, .. }
            | State::Draining { run, .. } => Some(*run),
            State::Pending | State::Stopped { .. } | State::Restarting { .. } | State::Failed => {
                None
            }
        }
    }

    /// When the current process started.
    pub fn since(&self) -> Option<Instant> {
        match self {
            State::Starting { since, .. }
            | State::Running { since, .. }
            | State::Stopping { since, .. } => Some(*since),
            State::Pending
            | State::Draining { .. }
            | State::Spawning { .. }
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => None,
        }
    }

    /// The earliest deadline this state waits for, if any.
    pub fn deadline(&self) -> Option<Instant> {
        let check = |c: &Option<Checking>| c.as_ref().and_then(|c| c.next_at);
        match self {
            State::Starting {
                ready_by,
                up_by,
                check: c,
                ..
            } => earliest([*ready_by, *up_by, check(c)]),
            State::Running {
                check: c,
                watchdog_by,
                ..
            } => earliest([check(c), *watchdog_by]),
            State::Stopping { kill_at, .. } => *kill_at,
            State::Draining { give_up_at, .. } => Some(*give_up_at),
            State::Restarting { start_at } => Some(*start_at),
            State::Pending | State::Spawning { .. } | State::Stopped { .. } | State::Failed => None,
        }
    }

    /// Whether a process of this service may be alive: it must stop before the
    /// services it depends on.
    pub fn is_up(&self) -> bool {
        matches!(
            self,
            State::Spawning { .. }
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Draining { .. }
        )
    }
}

fn earliest<const N: usize>(times: [Option<Instant>; N]) -> Option<Instant> {
    times.into_iter().flatten().min()
}

/// A service: what it is, where it should go, where it is, and its history.
/// (`snapshot.rs` keeps a service as data for `tend reexec`.)
#[derive(Debug, Clone)]
pub struct Service {
    pub id: ServiceId,
    pub name: Arc<str>,
    pub behaviour: Behaviour,
    /// Which definition it runs (see `reload`).
    pub revision: u64,
    pub goal: Goal,
    pub state: State,
    /// When the state last changed.
    pub changed_at: Instant,
    /// Total restarts since tend started (never decreases).
    pub restarts: u64,
    pub budget: RetryBudget,
    pub last_exit: Option<ExitStatus>,
    /// The last failure; cleared once it is `running` again. Boxed, as
    /// `last_probe`: most services have none, and a service's fields are
    /// paid once per service (10,000 services: 10,000 times).
    pub last_error: Option<Box<Failure>>,
    pub last_probe: Option<Box<ProbeReport>>,
    /// The last notify `STATUS=` of the current (or last) run.
    pub status_text: Option<String>,
    /// The newest run, once one was spawned.
    pub last_run: Option<RunId>,
    /// The run that reached readiness, if the current one did.
    pub ready_run: Option<RunId>,
    /// Resolved dependencies: (service, condition).
    pub deps: Vec<(ServiceId, Condition)>,
    /// Services that depend on this one.
    pub dependents: Vec<ServiceId>,
}

impl Service {
    pub fn new(
        id: ServiceId,
        name: Arc<str>,
        behaviour: Behaviour,
        revision: u64,
        now: Instant,
    ) -> Service {
        let goal = if behaviour.enabled {
            Goal::Up
        } else {
            Goal::Down
        };
        Service {
            id,
            name,
            state: if goal.is_up() {
                State::Pending
            } else {
                State::Stopped { completed: false }
            },
            goal,
            behaviour,
            revision,
            changed_at: now,
            restarts: 0,
            budget: RetryBudget::default(),
            last_exit: None,
            last_error: None,
            last_probe: None,
            status_text: None,
            last_run: None,
            ready_run: None,
            deps: Vec::new(),
            dependents: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_oneshot(&self) -> bool {
        self.behaviour.is_oneshot()
    }

    /// Whether the current run reached readiness.
    pub fn is_ready(&self) -> bool {
        self.ready_run.is_some() && self.ready_run == self.state.run()
    }

    /// Whether this service meets `condition` for a dependent.
    pub fn meets(&self, condition: Condition) -> bool {
        let completed = matches!(self.state, State::Stopped { completed: true });
        match condition {
            Condition::Started => match self.state {
                State::Starting { .. } | State::Running { .. } => true,
                State::Pending
                | State::Spawning { .. }
                | State::Stopping { .. }
                | State::Draining { .. }
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed => completed,
            },
            // A oneshot is ready once it has completed.
            Condition::Ready if self.is_oneshot() => completed,
            Condition::Ready => matches!(self.state, State::Running { .. }),
            Condition::Completed => completed,
        }
    }

    /// How long until the next start, while `restarting`.
    pub fn next_start_in(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Restarting { start_at } => Some(start_at.saturating_since(now)),
            State::Pending
            | State::Spawning { .. }
            | State::Starting { .. }
            | State::Running { .. }
            | State::Stopping { .. }
            | State::Draining { .. }
            | State::Stopped { .. }
            | State::Failed => None,
        }
    }
}
