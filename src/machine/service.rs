//! One service as the core sees it: its definition, its [`State`], and the history
//! that `tend status` shows (restarts, last exit, last error).
//!
//! Data that is valid in only one state lives in that state's variant, so it cannot
//! outlive it: a pid exists only in `Starting`, `Running` and `Stopping`.

use std::time::Duration;

use super::event::ExitStatus;
use super::policy::RetryBudget;
use super::time::Instant;
use super::{Pid, RunId, ServiceId};
use crate::config::{Condition, ServiceSpec, ServiceType};

/// What a service is doing now (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting for its dependencies, or for its turn to start.
    Pending,
    /// Spawn ordered (`pid: None` until the shell reports it) or spawned and
    /// waiting for readiness until `ready_by`.
    Starting {
        run: RunId,
        pid: Option<Pid>,
        since: Instant,
        ready_by: Option<Instant>,
        /// The state it started from, for the log line.
        origin: StateName,
    },
    /// Ready (a longrun that is up).
    Running {
        run: RunId,
        pid: Pid,
        since: Instant,
    },
    /// Stop signal sent; SIGKILL at `kill_at` (None once it has been sent).
    Stopping {
        run: RunId,
        pid: Pid,
        since: Instant,
        kill_at: Option<Instant>,
        then: AfterStop,
    },
    /// Down on purpose; `completed` for a oneshot that finished with success.
    Stopped { completed: bool },
    /// Exited; the next start is at `start_at`.
    Restarting { start_at: Instant },
    /// Given up on until started again (see `Service::last_error`).
    Failed,
}

/// What to do once a stopping service has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Stay `stopped`.
    Stop,
    /// Start again at once (`tend restart`, or a reload that changed it).
    Start,
    /// Count it as a failed run and apply the restart policy (readiness timeout,
    /// liveness failure).
    Fail,
    /// Removed by a reload: forget it.
    Forget,
}

/// A state's name as SPEC §3 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
            State::Starting { .. } => StateName::Starting,
            State::Running { .. } => StateName::Running,
            State::Stopping { .. } => StateName::Stopping,
            State::Stopped { .. } => StateName::Stopped,
            State::Restarting { .. } => StateName::Restarting,
            State::Failed => StateName::Failed,
        }
    }

    /// The live process of this state, if any.
    pub fn pid(&self) -> Option<Pid> {
        match self {
            State::Starting { pid, .. } => *pid,
            State::Running { pid, .. } | State::Stopping { pid, .. } => Some(*pid),
            State::Pending | State::Stopped { .. } | State::Restarting { .. } | State::Failed => {
                None
            }
        }
    }

    /// The current run, while there is one.
    pub fn run(&self) -> Option<RunId> {
        match self {
            State::Starting { run, .. }
            | State::Running { run, .. }
            | State::Stopping { run, .. } => Some(*run),
            State::Pending | State::Stopped { .. } | State::Restarting { .. } | State::Failed => {
                None
            }
        }
    }

    /// When the process started, while there is one.
    pub fn since(&self) -> Option<Instant> {
        match self {
            State::Starting { since, .. }
            | State::Running { since, .. }
            | State::Stopping { since, .. } => Some(*since),
            State::Pending | State::Stopped { .. } | State::Restarting { .. } | State::Failed => {
                None
            }
        }
    }

    /// The deadline this state is waiting for, if any.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            State::Starting { ready_by, .. } => *ready_by,
            State::Stopping { kill_at, .. } => *kill_at,
            State::Restarting { start_at } => Some(*start_at),
            State::Pending | State::Running { .. } | State::Stopped { .. } | State::Failed => None,
        }
    }

    /// Whether a process of this service may be alive (it must stop before the
    /// services it depends on).
    pub fn is_up(&self) -> bool {
        matches!(
            self,
            State::Starting { .. } | State::Running { .. } | State::Stopping { .. }
        )
    }
}

/// A service: its definition, its state, and its history.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: ServiceId,
    pub spec: ServiceSpec,
    pub state: State,
    /// Whether it should be up: set by `enabled`, `tend start`, cleared by
    /// `tend stop` and shutdown.
    pub wanted: bool,
    /// Total restarts since tend started (never decreases).
    pub restarts: u64,
    pub budget: RetryBudget,
    pub last_exit: Option<ExitStatus>,
    pub last_error: Option<String>,
    /// Set by a reload: the definition to switch to once the current run is down.
    pub replacement: Option<ServiceSpec>,
    /// Resolved dependencies: (service, condition).
    pub deps: Vec<(ServiceId, Condition)>,
    /// Services that depend on this one.
    pub dependents: Vec<ServiceId>,
    /// Removed by a reload; kept only until its process is down.
    pub removed: bool,
}

impl Service {
    pub fn new(id: ServiceId, spec: ServiceSpec) -> Service {
        let wanted = spec.enabled;
        Service {
            id,
            state: if wanted {
                State::Pending
            } else {
                State::Stopped { completed: false }
            },
            wanted,
            spec,
            restarts: 0,
            budget: RetryBudget::default(),
            last_exit: None,
            last_error: None,
            replacement: None,
            deps: Vec::new(),
            dependents: Vec::new(),
            removed: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_oneshot(&self) -> bool {
        self.spec.service_type == ServiceType::Oneshot
    }

    /// Whether this service meets `condition` for a dependent.
    pub fn meets(&self, condition: Condition) -> bool {
        let completed = matches!(self.state, State::Stopped { completed: true });
        match condition {
            Condition::Started => match self.state {
                State::Starting { pid, .. } => pid.is_some(),
                State::Running { .. } => true,
                State::Pending
                | State::Stopping { .. }
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
            | State::Starting { .. }
            | State::Running { .. }
            | State::Stopping { .. }
            | State::Stopped { .. }
            | State::Failed => None,
        }
    }
}
