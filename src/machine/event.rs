//! Events: facts and requests the shell hands to the core, in the past tense.
//!
//! Each event about a process names the run it belongs to (and, for exits, the
//! pid), so a late event from a previous incarnation (a slow exit, a probe
//! result, a notify message) is recognised and ignored.

use std::time::Duration;

use super::reload::Definition;
use super::{Pid, RequestId, RunId, ServiceId};
use crate::config::Signal;

/// How a process ended, as `waitpid` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

/// Which check a probe event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Readiness,
    Liveness,
}

/// The sender of a notify message, as the kernel vouches for it
/// (`SO_PASSCRED`), with the process group the shell looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    pub pid: Pid,
    /// `None` when the sender was gone before its group could be read.
    pub pgid: Option<Pid>,
}

/// What a notify message says (sd_notify keys the core acts on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    /// `READY=1`.
    pub ready: bool,
    /// `STATUS=...`.
    pub status: Option<String>,
    /// `WATCHDOG=1`.
    pub watchdog: bool,
    /// `MAINPID=N`, with N's process group as the shell found it.
    pub main_pid: Option<(Pid, Option<Pid>)>,
    /// `STOPPING=1`.
    pub stopping: bool,
    /// `EXTEND_TIMEOUT_USEC=N`.
    pub extend_timeout: Option<Duration>,
}

/// A fact or request for the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The shell spawned `run` of `service` as `pid` (its process group id too).
    Spawned {
        service: ServiceId,
        run: RunId,
        pid: Pid,
    },
    /// The shell could not spawn `run`; `error` says why.
    SpawnFailed {
        service: ServiceId,
        run: RunId,
        error: String,
    },
    /// `pid`, a process of `run` that the shell was told to watch, exited. It
    /// is not reaped until the actions of this event have been carried out, so
    /// its process group can still be signalled safely.
    Exited {
        service: ServiceId,
        run: RunId,
        pid: Pid,
        status: ExitStatus,
    },
    /// The cgroup of `run` (after its main process exited and what was left
    /// was killed) is empty.
    GroupEmpty { service: ServiceId, run: RunId },
    /// A passive readiness signal of `run`: notify `READY=1` is reported as a
    /// `Notified`, this is the readiness fd's newline or the log pattern.
    Ready { service: ServiceId, run: RunId },
    /// One check attempt of `run` ended.
    ProbeResult {
        service: ServiceId,
        run: RunId,
        role: Role,
        ok: bool,
        message: String,
    },
    /// A notify message arrived on `service`'s socket.
    Notified {
        service: ServiceId,
        from: Sender,
        notice: Notice,
    },
    /// A client's command. Commands with a `request` get an `Action::Answer`.
    Command {
        request: Option<RequestId>,
        command: Command,
    },
    /// SIGTERM or SIGINT: the first starts a shutdown, the second SIGKILLs
    /// what is left at once.
    Terminate,
}

/// What a client (or tend itself, on SIGHUP) asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start these and what they depend on; with `wait`, answer once settled.
    Start {
        services: Vec<ServiceId>,
        wait: bool,
    },
    /// Stop these and, first, what depends on them.
    Stop {
        services: Vec<ServiceId>,
        wait: bool,
    },
    /// Stop these if up, then start them again.
    Restart {
        services: Vec<ServiceId>,
        wait: bool,
    },
    /// Send `signal` to the service's process group, if it has one.
    Signal { service: ServiceId, signal: Signal },
    /// Apply a new, valid config.
    Reload(Box<Reload>),
    /// Stop everything, then exit 0.
    Shutdown,
}

/// A new config, as the core sees it: every service's definition and the
/// top-level settings it decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct Reload {
    pub services: Vec<Definition>,
    pub settings: super::Settings,
}
