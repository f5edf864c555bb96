//! Signals: which ones tend acts on, which it ignores, and their delivery into
//! the event loop (the self-pipe pattern).
//!
//! SIGCHLD, SIGTERM, SIGINT, SIGHUP and SIGUSR2 (`tend reexec`) are acted on:
//! each bumps a counter (an atomic, async-signal-safe) and then writes a byte
//! to a socket pair whose read end sits in the mio poll. The loop drains the
//! pipe first, then reads and clears the counters, so no signal that arrived
//! before the drain is lost; signals of one kind coalesce (SIGCHLD too, which
//! is why the reaper loops until nothing is left).
//!
//! Every other signal that would end tend (SPEC §5) is caught, noted with its
//! sender and ignored: tend ends only by SIGTERM, SIGINT, `tend shutdown` (or
//! the config's reasons) or SIGKILL. The first arrival of each is logged as a
//! warning naming the sender, later ones at debug level, so a signal storm
//! cannot flood the log. The fault signals are caught too: sent with `kill` they
//! are ignored like the rest, raised by a real fault they end tend (see
//! [`crate::sys::signal`]).
//!
//! At install, tend also undoes what its parent may have left: ignored
//! dispositions go back to default and the signal mask is cleared.
//!
//! Must not: do any work in a handler beyond counting and the byte (the handlers
//! are in [`crate::sys::signal`]).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use log::{debug, warn};
use mio::net::UnixStream;
use mio::{Interest, Registry};

use super::tokens::SIGNALS;
use crate::config::Signal;
use crate::sys::signal::{self as sys_signal, Caught};

/// The signals tend acts on, in counter order.
const HANDLED: [libc::c_int; 5] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR2,
];

/// The standard signals whose default action would end tend and that it
/// catches and ignores (besides the real-time ones and the faults).
const IGNORED: [libc::c_int; 13] = [
    libc::SIGUSR1,
    libc::SIGQUIT,
    libc::SIGALRM,
    libc::SIGPIPE,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSTKFLT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Every signal tend catches and ignores (when sent): `IGNORED`, the fault
/// signals and the real-time signals libc leaves to programs.
pub fn ignored_signals() -> Vec<libc::c_int> {
    IGNORED
        .into_iter()
        .chain(sys_signal::FAULTS)
        .chain(sys_signal::realtime())
        .collect()
}

/// What arrived since the last drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrived {
    pub child: bool,
    /// SIGTERM and SIGINT, counted (the second one means "kill now").
    pub terminate: usize,
    pub hangup: bool,
    /// SIGUSR2: re-exec (SPEC §5, §8).
    pub reexec: bool,
}

/// The installed handlers and the read end of their pipe.
pub struct Signals {
    receiver: UnixStream,
    counts: [Arc<AtomicUsize>; 5],
    /// Ignored signals already logged once (by number).
    logged: [bool; 65],
}

impl Signals {
    /// Install every handler, then reset what tend's parent left ignored and
    /// clear the signal mask. As PID 1, tend gets only the signals it has
    /// handlers for, so this runs before anything else.
    pub fn install() -> io::Result<Signals> {
        let (receiver, sender) = std::os::unix::net::UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        let receiver = UnixStream::from_std(receiver);
        let counts: [Arc<AtomicUsize>; 5] = Default::default();
        for (signal, count) in HANDLED.into_iter().zip(&counts) {
            sys_signal::count_signal(signal, Arc::clone(count))?;
            signal_hook::low_level::pipe::register(signal, sender.try_clone()?)?;
        }
        sys_signal::set_wake(sender.into());
        // Best effort: a signal the system will not let tend catch (a debugger
        // or valgrind keeps some for itself) keeps its disposition; tend still
        // runs. Only the four it acts on are required.
        for signal in ignored_signals() {
            let _ = sys_signal::catch(signal);
        }
        sys_signal::reset_ignored();
        sys_signal::unblock_all()?;
        Ok(Signals {
            receiver,
            counts,
            logged: [false; 65],
        })
    }

    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        registry.register(&mut self.receiver, SIGNALS, Interest::READABLE)
    }

    /// Empty the pipe, then take the counters (and log the ignored signals).
    pub fn drain(&mut self) -> Arrived {
        let mut buf = [0u8; 256];
        loop {
            match self.receiver.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: empty
            }
        }
        for caught in sys_signal::take_caught() {
            self.log_ignored(caught);
        }
        let take = |i: usize| self.counts[i].swap(0, Ordering::SeqCst);
        Arrived {
            child: take(0) > 0,
            terminate: take(1) + take(2),
            hangup: take(3) > 0,
            reexec: take(4) > 0,
        }
    }

    /// A warning the first time a signal is ignored, debug lines after that.
    fn log_ignored(&mut self, caught: Caught) {
        let name = signal_name(caught.signal);
        let from = match caught.sender {
            Some(pid) => format!("from pid {pid}"),
            None => "raised by the kernel".to_string(),
        };
        let times = if caught.count > 1 {
            format!(" ({} times)", caught.count)
        } else {
            String::new()
        };
        let first = self
            .logged
            .get_mut(caught.signal as usize)
            .is_some_and(|seen| !std::mem::replace(seen, true));
        if first {
            warn!(
                "ignoring {name} {from}{times}; tend ends only by SIGTERM, SIGINT, tend shutdown or SIGKILL"
            );
        } else {
            debug!("ignoring {name} {from}{times} again");
        }
    }
}

/// `SIGUSR1`, `SIGRTMIN+3`, or `signal N`.
pub fn signal_name(signal: libc::c_int) -> String {
    if let Some(name) = Signal(signal).name() {
        return format!("SIG{name}");
    }
    let realtime = sys_signal::realtime();
    if realtime.contains(&signal) {
        let offset = signal - realtime.start();
        if offset == 0 {
            return "SIGRTMIN".to_string();
        }
        return format!("SIGRTMIN+{offset}");
    }
    format!("signal {signal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_standard_and_realtime_signals() {
        assert_eq!(signal_name(libc::SIGUSR1), "SIGUSR1");
        assert_eq!(signal_name(libc::SIGRTMIN()), "SIGRTMIN");
        assert_eq!(signal_name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
        assert_eq!(signal_name(32), "signal 32");
    }

    #[test]
    fn every_signal_that_would_end_tend_is_handled_or_ignored() {
        // Default action "terminate" or "core" (signal(7)), but SIGKILL.
        let ending = [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGABRT,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGUSR1,
            libc::SIGSEGV,
            libc::SIGUSR2,
            libc::SIGPIPE,
            libc::SIGALRM,
            libc::SIGTERM,
            libc::SIGSTKFLT,
            libc::SIGXCPU,
            libc::SIGXFSZ,
            libc::SIGVTALRM,
            libc::SIGPROF,
            libc::SIGIO,
            libc::SIGPWR,
            libc::SIGSYS,
        ];
        let ignored = ignored_signals();
        for signal in ending.into_iter().chain(sys_signal::realtime()) {
            assert!(
                HANDLED.contains(&signal) || ignored.contains(&signal),
                "{}",
                signal_name(signal)
            );
        }
        assert!(ignored.iter().all(|s| !HANDLED.contains(s)));
    }
}
