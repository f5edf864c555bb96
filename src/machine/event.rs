//! Events: facts the shell reports to the core, in the past tense.
//!
//! Each event about a process names the run it belongs to, so a late event from a
//! previous incarnation (a slow exit, a probe result) is recognised and ignored.

use super::{Pid, RunId, ServiceId};

/// How a process ended, as `waitpid` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

/// A fact for the core.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The main process of `run` was reaped.
    Exited {
        service: ServiceId,
        run: RunId,
        status: ExitStatus,
    },
    /// The readiness check of `run` passed.
    BecameReady { service: ServiceId, run: RunId },
    /// The liveness check of `run` failed too often; restart it as a failure.
    LivenessFailed {
        service: ServiceId,
        run: RunId,
        why: String,
    },
    /// `tend start NAME`: start it and what it depends on; clears `failed`.
    StartRequested { service: ServiceId },
    /// `tend stop NAME`: stop it and, first, whatever depends on it.
    StopRequested { service: ServiceId },
    /// `tend restart NAME`: stop it if up, then start it at once.
    RestartRequested { service: ServiceId },
    /// `tend shutdown`: stop everything, then exit.
    ShutdownRequested,
    /// SIGTERM or SIGINT arrived: the first starts a shutdown, the second
    /// SIGKILLs what is left at once.
    TerminationSignaled,
}
