//! `tend reexec` and SIGUSR2 (SPEC §8): replace the running tend by the binary
//! at its path, handing over the whole state, so that every service keeps
//! its pid, pipes, restart count, retry budget, backoff, stop deadline,
//! readiness and probe state, and the `tend logs` ring, and no output line is
//! lost or doubled.
//!
//! In the old process, inside the loop and never blocking:
//! 1. a request (`{"cmd": "reexec"}`, or SIGUSR2) checks the binary at tend's
//!    path (the one tend was first started from): it must exist and be
//!    executable, and `<path> reexec-check` (`check.rs`) must say it reads
//!    the snapshot version this tend writes. Nothing happens during a
//!    shutdown. Any failure is logged and answered, and tend goes on as it
//!    was.
//! 2. at the end of the turn in which the check passed, the state is taken
//!    (`handover.rs`: a [`Snapshot`] in a memfd), the fds it lists lose
//!    `FD_CLOEXEC`, signals are blocked (they stay pending across the exec)
//!    and tend execs `<path> run -c CONFIG --resume FD`. Should the exec
//!    fail, all of that is undone and tend goes on.
//!
//! In the new process (`restore.rs`): the snapshot is read and checked and
//! its fds taken over first thing, the signal handlers installed, the runtime
//! rebuilt without binding or spawning anything, every child that exited
//! during the exec reaped and handled by policy, and the waiting `reexec`
//! clients answered by it. A snapshot it cannot use cannot be given back:
//! that is what `reexec-check` is for; the new process then fails loudly.
//!
//! Read first: [`Runtime::request_reexec`], `handover.rs`, `restore.rs`.

pub mod check;
mod handover;
mod restore;
pub mod snapshot;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

use log::{debug, error, info};

use super::Runtime;
use super::control::ClientId;
use crate::machine::ExitStatus;
use crate::protocol::Reply;
use check::{CHECK_TIMEOUT, Check};
pub use restore::{Resumed, load};
pub use snapshot::{Snapshot, VERSION};

/// Where a re-exec stands.
enum Phase {
    Idle,
    /// `reexec-check` runs; the exec is due when it passes.
    Checking {
        check: Check,
        deadline: Instant,
    },
    /// Checked: exec at the end of this turn.
    Due,
}

/// tend's own binary, and a re-exec under way with the clients that wait
/// for it.
pub struct ReExec {
    /// The binary at the path tend was first started from, or why it is
    /// not known.
    exe: Result<PathBuf, String>,
    argv0: OsString,
    phase: Phase,
    requesters: Vec<ClientId>,
    /// Checks killed at their timeout, not reaped yet: reaped quietly.
    abandoned: Vec<i32>,
    /// In a re-executed tend: how long the exec took (for its first line).
    took: Option<std::time::Duration>,
}

impl ReExec {
    /// For a tend started now: its binary as `/proc/self/exe` names it.
    pub fn new() -> ReExec {
        let exe = std::env::current_exe()
            .map_err(|e| format!("tend cannot tell which binary it runs (/proc/self/exe: {e})"));
        let argv0 = std::env::args_os().next().unwrap_or_else(|| "tend".into());
        ReExec::resumed(exe, argv0)
    }

    /// For a tend re-executed from `exe`.
    fn resumed(exe: Result<PathBuf, String>, argv0: OsString) -> ReExec {
        ReExec {
            exe,
            argv0,
            phase: Phase::Idle,
            requesters: Vec::new(),
            abandoned: Vec::new(),
            took: None,
        }
    }

    /// When the check under way times out.
    pub fn poll_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Checking { deadline, .. } => Some(*deadline),
            Phase::Idle | Phase::Due => None,
        }
    }
}

impl Default for ReExec {
    fn default() -> ReExec {
        ReExec::new()
    }
}

impl Runtime {
    /// `tend reexec` (`client`) or SIGUSR2 (`None`): check the binary, and
    /// exec it once the check passes. A request during one under way joins it.
    pub(super) fn request_reexec(&mut self, client: Option<ClientId>) {
        let by = match client {
            Some(_) => "tend reexec",
            None => "SIGUSR2",
        };
        self.reexec.requesters.extend(client);
        if !matches!(self.reexec.phase, Phase::Idle) {
            return; // the one under way answers it too
        }
        if self.sup.is_shutting_down() || self.exit.is_some() {
            return self.reexec_failed("tend is shutting down: not re-executing".into());
        }
        let exe = match &self.reexec.exe {
            Ok(exe) => exe.clone(),
            Err(why) => return self.reexec_failed(format!("{why}: not re-executing")),
        };
        if let Err(e) = crate::sys::access_executable(&cstring(&exe)) {
            return self.reexec_failed(format!(
                "the binary at {} cannot be executed ({e}): not re-executing",
                exe.display()
            ));
        }
        match Check::spawn(&exe, environment()) {
            Ok(check) => {
                info!(
                    "{by}: checking that {} can take over (`reexec-check`, pid {})",
                    exe.display(),
                    check.pid
                );
                let deadline = self.clock.std_now + CHECK_TIMEOUT;
                self.reexec.phase = Phase::Checking { check, deadline };
            }
            Err(e) => self.reexec_failed(format!(
                "cannot run `{} reexec-check` ({e}): not re-executing",
                exe.display()
            )),
        }
    }

    /// A child exited: if it was a `reexec-check`, judge its answer. Returns
    /// whether it was one.
    pub(super) fn reexec_exited(&mut self, pid: i32, status: ExitStatus) -> bool {
        if let Some(at) = self.reexec.abandoned.iter().position(|p| *p == pid) {
            self.reexec.abandoned.swap_remove(at);
            return true;
        }
        let Phase::Checking { check, .. } = &self.reexec.phase else {
            return false;
        };
        if check.pid != pid {
            return false;
        }
        let Phase::Checking { check, .. } = std::mem::replace(&mut self.reexec.phase, Phase::Idle)
        else {
            return false;
        };
        let exe = self.reexec.exe.clone().unwrap_or_default();
        match check.verdict(&exe, status) {
            Ok(release) => {
                debug!(
                    "{} is tend {release}, which reads this snapshot",
                    exe.display()
                );
                self.reexec.phase = Phase::Due;
            }
            Err(why) => self.reexec_failed(why),
        }
        true
    }

    /// Once per turn: give up on a check that did not answer in time.
    pub(super) fn reexec_deadlines(&mut self) {
        let due = matches!(&self.reexec.phase,
            Phase::Checking { deadline, .. } if *deadline <= self.clock.std_now);
        if !due {
            return;
        }
        if let Phase::Checking { check, .. } =
            std::mem::replace(&mut self.reexec.phase, Phase::Idle)
        {
            let _ = crate::sys::cgroup::kill_process(check.pid, libc::SIGKILL);
            self.reexec.abandoned.push(check.pid);
        }
        let exe = self.reexec.exe.clone().unwrap_or_default();
        self.reexec_failed(format!(
            "`{} reexec-check` did not answer within {}s: not re-executing",
            exe.display(),
            CHECK_TIMEOUT.as_secs()
        ));
    }

    /// At the end of a turn: exec, if a check passed. Returns only if the
    /// exec could not be done (and then everything is as it was).
    pub(super) fn reexec_if_due(&mut self) {
        if !matches!(self.reexec.phase, Phase::Due) {
            return;
        }
        self.reexec.phase = Phase::Idle;
        if self.sup.is_shutting_down() || self.exit.is_some() {
            return self.reexec_failed("tend began shutting down: not re-executing".into());
        }
        let why = self.exec_self();
        self.reexec_failed(why);
    }

    /// Log why tend does not re-exec and tell whoever asked.
    fn reexec_failed(&mut self, why: String) {
        error!("{why}");
        let requesters = std::mem::take(&mut self.reexec.requesters);
        let reply = Reply::error(why);
        for client in requesters {
            if let Some(control) = &mut self.control {
                control.reply(self.poll.registry(), client, &reply);
            }
        }
    }
}

/// tend's environment as `NAME=value` strings, for the check and the exec.
fn environment() -> Vec<std::ffi::CString> {
    use std::os::unix::ffi::OsStringExt;
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let mut pair = name.into_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_encoded_bytes());
            std::ffi::CString::new(pair).ok()
        })
        .collect()
}

/// `path` as a C string (a path from `/proc/self/exe` has no NUL byte; one
/// that had would fail the access check).
fn cstring(path: &std::path::Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}
