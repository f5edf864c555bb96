//! Actions: orders from the core to the shell, in the imperative, and the typed
//! reasons that come with them.
//!
//! Plain data, so tests compare them with `assert_eq!`. Every reason, failure
//! and answer is an enum the shell renders into words (`runtime::render`); the
//! core never formats a message.

use std::sync::Arc;
use std::time::Duration;

use super::event::{ExitStatus, Role};
use super::reload::ReloadPlan;
use super::{Pid, Process, RequestId, RunId, ServiceId, StateName};
use crate::config::Signal;

/// An order for the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Spawn `run` of `service` from its newest definition; answer with
    /// `Event::Spawned` or `Event::SpawnFailed`, exactly once. Usually that is
    /// before the core gets any other event (spawns in a row may be carried
    /// out together; their answers then come in the same order). A service
    /// with a `sha256` whose file must first be hashed is answered later,
    /// after other events; the run stays `Spawning` (shown as `starting`)
    /// meanwhile, and a stop or shutdown only sets its goal (the shell may
    /// answer `SpawnFailed` then instead of spawning).
    Spawn { service: ServiceId, run: RunId },
    /// Send `signal` to the process group of `process`, whose pid has not been
    /// reaped (the core orders this only while it knows the pid is unreaped).
    Signal {
        service: ServiceId,
        run: RunId,
        process: Process,
        signal: Signal,
    },
    /// The main process of `run` exited (not reaped yet): SIGKILL whatever is
    /// left in its process group, so nothing of this run outlives it.
    ClearGroup {
        service: ServiceId,
        run: RunId,
        process: Process,
    },
    /// Readiness: start watching for it (log pattern), or run one check attempt
    /// now (exec, tcp, http, grpc; answer with `Event::ProbeResult`). Liveness:
    /// run one attempt now.
    Probe {
        service: ServiceId,
        run: RunId,
        role: Role,
    },
    /// Stop watching, and abandon an attempt in flight (kill a probe command).
    CancelProbe { service: ServiceId, role: Role },
    /// `MAINPID=`: report the exit of `pid` as an exit of `run`.
    Track {
        service: ServiceId,
        run: RunId,
        pid: Pid,
    },
    /// A service changed state: the shell logs it.
    Transitioned(Transition),
    /// Something else worth a log line.
    Note(Note),
    /// The answer to a client's command.
    Answer { request: RequestId, answer: Answer },
    /// A service removed by a reload is down and gone: free what the shell
    /// holds for it. Its id is not handed out again within the same call.
    Forget { service: ServiceId },
    /// Tell tend's own supervisor (its `NOTIFY_SOCKET`) about tend.
    Upward(Upward),
    /// Everything is down after a shutdown (or idle with `exit_when_idle`): exit
    /// with this code.
    Exit { code: i32 },
}

/// One state change, with what its log line needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub service: ServiceId,
    pub name: Arc<str>,
    pub from: StateName,
    pub to: StateName,
    pub pid: Option<Pid>,
    pub why: Why,
}

/// How a run ended: the wait status and how long it had been up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub status: ExitStatus,
    pub after: Duration,
}

/// Why a state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    StartRequested,
    /// A service that depends on it was started.
    Needed,
    RestartRequested,
    StopRequested,
    ShuttingDown,
    Removed,
    /// A reload changed its definition (or enabled/disabled it).
    Redefined,
    BackoffOver,
    Spawned,
    Ready {
        after: Duration,
    },
    /// Without readiness, up for `min_uptime`.
    UpLongEnough {
        after: Duration,
    },
    /// A oneshot finished with success.
    Completed(Exit),
    /// A run ended and the policy does not restart it (or it was being stopped).
    Exited(Exit),
    /// A run ended; the next one starts after `delay`.
    Restarting {
        ended: Box<Why>,
        delay: Duration,
        /// This is restart `attempt` of at most `max` within `window`.
        attempt: usize,
        max: u32,
        window: Duration,
    },
    Failed(Failure),
}

/// Why a run (or a service) failed; `last_error` in `tend status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The command could not be spawned.
    Spawn(String),
    /// It exited with a failure.
    Exit(Exit),
    /// It exited, with any status, before it was ready (or up `min_uptime`).
    EarlyExit(Exit),
    /// No readiness within `timeout_start`.
    NotReady(Duration),
    /// The liveness check failed `failures` times in a row; the last said `message`.
    Unhealthy { failures: u32, message: String },
    /// No `WATCHDOG=1` for this long.
    Watchdog(Duration),
    /// tend stopped the run because of `cause`; it then ended so.
    Stopped { cause: Box<Failure>, exit: Exit },
    /// The retry budget is spent: `restarts` restarts within `window`.
    GaveUp {
        cause: Box<Failure>,
        restarts: usize,
        window: Duration,
    },
}

/// Log-worthy things that are not state changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A notify message from a process outside the service was ignored.
    NotifyRejected { service: ServiceId, pid: Pid },
    /// The service said `STOPPING=1`.
    NotifyStopping { service: ServiceId },
    /// `MAINPID=` accepted: `pid` is now the service's main process.
    MainPid { service: ServiceId, pid: Pid },
    /// `MAINPID=` named a process outside the service's process group.
    MainPidRejected { service: ServiceId, pid: Pid },
    /// Something of a run's cgroup could not be killed within `timeout_stop`;
    /// its exit is acted on anyway.
    LeftBehind { service: ServiceId },
    /// A reload was applied.
    Reloaded(ReloadPlan),
    /// A termination signal arrived; `again`: it was the second.
    Terminating { again: bool },
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Done (or, without `wait`, accepted).
    Done,
    /// `service` ended up `state` instead of where the command meant it to go.
    NotSettled {
        service: ServiceId,
        state: StateName,
    },
    /// `service` was removed by a reload meanwhile.
    Removed {
        name: Arc<str>,
    },
    /// Not settled within the waiting limit.
    TimedOut {
        after: Duration,
    },
    /// `tend signal` to a service with no process.
    NoProcess {
        service: ServiceId,
    },
    /// Nothing is started during a shutdown.
    ShuttingDown,
    Reloaded(ReloadPlan),
}

/// What tend tells its own supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upward {
    /// Every enabled service reached the state it should be in.
    Ready,
    /// tend is shutting down.
    Stopping,
}

/// What `tend status` shows about the last check attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub role: Role,
    pub ok: bool,
    pub at: super::Instant,
    pub message: String,
    pub failures_in_row: u32,
}
