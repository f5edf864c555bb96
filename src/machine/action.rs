//! Actions: orders from the core to the shell, in the imperative.
//!
//! Plain data, so tests compare them with `assert_eq!`.

use super::{Pid, RunId, ServiceId, StateName};
use crate::config::Signal;

/// An order for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn `run` of `service`; answer with `Event::Spawned` or `Event::SpawnFailed`
    /// before handing the core any other event. (Spawns in a row may be carried
    /// out together; their answers then come in the same order.)
    Spawn { service: ServiceId, run: RunId },
    /// Send `signal` to the process group `pgid` of `run`. The core only orders this
    /// while the run's pid has not been reaped.
    Signal {
        service: ServiceId,
        run: RunId,
        pgid: Pid,
        signal: Signal,
    },
    /// A service changed state: the shell logs it (one info line).
    Transitioned(Transition),
    /// A service removed by a reload is down: the shell forgets it.
    Forget { service: ServiceId },
    /// Everything is down after a shutdown (or idle with `exit_when_idle`): exit
    /// with this code.
    Exit { code: i32 },
}

/// One state change, with what the log line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub service: ServiceId,
    pub name: String,
    pub from: StateName,
    pub to: StateName,
    pub pid: Option<Pid>,
    /// Why, in words: `exited with code 3 after 2.1s; restarting in 1.9s (restart 2 of 10 in 1m0s)`.
    pub why: String,
}
