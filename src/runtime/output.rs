//! Service output pipes: non-blocking reads, bounded per wakeup, cut into lines
//! by [`crate::lines`].
//!
//! Reads are bounded per wakeup, so a flood cannot starve other services; the
//! line rules (one log line per line, split at `MAX_LINE`, invalid UTF-8
//! replaced, a last line without newline kept) live in [`crate::lines`].
//!
//! Must not: decide anything about the service; the shell feeds lines to the log,
//! the `logs` ring, followers and the `log` readiness check.

use std::io::{self, Read};

use mio::unix::pipe::Receiver;

pub use crate::lines::{LineSplitter, Lines, MAX_LINE, Stream, find_newline};
use crate::machine::{RunId, ServiceId};

/// One output pipe of one run of a service, registered in the poll.
pub struct Pipe {
    pub service: ServiceId,
    pub run: RunId,
    pub stream: Stream,
    pub receiver: Receiver,
    /// On the loop's list of pipes with data to read.
    pub queued: bool,
    splitter: LineSplitter,
}

/// How a bounded read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// Nothing more to read now; a new event will come.
    Drained,
    /// The budget ran out with data left: read again soon, without an event.
    Budget,
    /// The write end is closed everywhere; the last line has been emitted.
    Eof,
}

impl Pipe {
    pub fn new(service: ServiceId, run: RunId, stream: Stream, receiver: Receiver) -> Pipe {
        Pipe {
            service,
            run,
            stream,
            receiver,
            queued: false,
            splitter: LineSplitter::default(),
        }
    }

    /// A pipe handed over by `tend reexec`, with the unfinished line the old
    /// process had read from it.
    pub fn resume(
        service: ServiceId,
        run: RunId,
        stream: Stream,
        receiver: Receiver,
        unfinished: &[u8],
    ) -> Pipe {
        Pipe {
            splitter: LineSplitter::resume(unfinished),
            ..Pipe::new(service, run, stream, receiver)
        }
    }

    /// The unfinished last line read so far (for `tend reexec`).
    pub fn unfinished(&self) -> &[u8] {
        self.splitter.unfinished()
    }

    /// Read at most `budget` bytes (in `scratch`-sized reads), emitting lines.
    pub fn read(
        &mut self,
        budget: usize,
        scratch: &mut [u8],
        emit: &mut dyn FnMut(Lines<'_>),
    ) -> io::Result<ReadEnd> {
        let mut used = 0;
        while used < budget {
            match self.receiver.read(scratch) {
                Ok(0) => {
                    self.splitter.finish(emit);
                    return Ok(ReadEnd::Eof);
                }
                Ok(n) => {
                    used += n;
                    self.splitter.push(scratch.get(..n).unwrap_or(&[]), emit);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadEnd::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.splitter.finish(emit);
                    return Err(e);
                }
            }
        }
        Ok(ReadEnd::Budget)
    }
}
