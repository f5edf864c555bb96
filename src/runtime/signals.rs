//! Signal delivery into the event loop: the self-pipe pattern via signal-hook.
//!
//! Each handled signal bumps a counter (an atomic, async-signal-safe) and then
//! writes a byte to a socket pair whose read end sits in the mio poll. The loop
//! drains the pipe first, then reads and clears the counters, so no signal that
//! arrived before the drain is lost; signals of one kind coalesce (SIGCHLD too, which
//! is why the reaper loops until nothing is left).
//!
//! Must not: do any work in the handler beyond the counter and the byte.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mio::net::UnixStream;
use mio::{Interest, Registry};

use super::tokens::SIGNALS;

/// The signals tend handles, in counter order.
const HANDLED: [libc::c_int; 4] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// What arrived since the last drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrived {
    pub child: bool,
    /// SIGTERM and SIGINT, counted (the second one means "kill now").
    pub terminate: usize,
    pub hangup: bool,
}

/// The installed handlers and the read end of their pipe.
pub struct Signals {
    receiver: UnixStream,
    counts: Arc<[AtomicUsize; 4]>,
}

impl Signals {
    /// Install handlers for SIGCHLD, SIGTERM, SIGINT and SIGHUP. As PID 1, tend gets
    /// only the signals it has handlers for, so this runs before anything else.
    pub fn install() -> io::Result<Signals> {
        let (receiver, sender) = std::os::unix::net::UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        let receiver = UnixStream::from_std(receiver);
        let counts: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
        for (i, &signal) in HANDLED.iter().enumerate() {
            let counts = Arc::clone(&counts);
            // SAFETY: the action only touches an atomic, which is async-signal-safe.
            unsafe {
                signal_hook::low_level::register(signal, move || {
                    counts[i].fetch_add(1, Ordering::SeqCst);
                })?;
            }
            let sender = sender.try_clone()?;
            signal_hook::low_level::pipe::register(signal, sender)?;
        }
        Ok(Signals { receiver, counts })
    }

    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        registry.register(&mut self.receiver, SIGNALS, Interest::READABLE)
    }

    /// Empty the pipe, then take the counters.
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
        let take = |i: usize| self.counts[i].swap(0, Ordering::SeqCst);
        Arrived {
            child: take(0) > 0,
            terminate: take(1) + take(2),
            hangup: take(3) > 0,
        }
    }
}
