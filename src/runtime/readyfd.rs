//! Readiness pipes (SPEC §4 `fd`, s6's `notification-fd`): the read ends of
//! the pipes whose write ends the services got on the fd they asked for.
//!
//! A newline on the pipe means the run is ready (`Event::Ready`); the pipe is
//! then closed, as s6-supervise does. EOF closes it too (the service closed
//! its end without a word). Whatever else comes is read and thrown away, at
//! most [`READ_BUDGET`] bytes a turn (a pipe with more left stays on the
//! `ready` list): a service that writes garbage forever costs no memory and
//! cannot stall the loop. A new run's pipe replaces the old run's.
//!
//! Must not: decide anything (the core ignores a newline of a run that is not
//! starting), or block.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use log::{debug, warn};
use mio::unix::pipe::Receiver;
use mio::{Interest, Registry, Token};

use super::tokens::Tokens;
use crate::machine::{Event, RunId, ServiceId};

mod handover;
pub use handover::ReadinessSnapshot;

/// Bytes read from one pipe per turn before others get theirs.
pub const READ_BUDGET: usize = 64 * 1024;

/// Each read: small, since only a newline matters.
const CHUNK: usize = 4096;

struct Pipe {
    service: ServiceId,
    run: RunId,
    receiver: Receiver,
    /// On the `ready` list.
    queued: bool,
}

/// How one read of a pipe ended.
enum Outcome {
    /// Nothing more now; a new event will come.
    Drained,
    /// The budget ran out with data left.
    Budget,
    /// The newline (ready) or EOF: the pipe is done.
    Done { ready: bool },
}

/// Every open readiness pipe.
#[derive(Default)]
pub struct ReadinessPipes {
    pipes: HashMap<Token, Pipe>,
    ready: VecDeque<Token>,
}

impl ReadinessPipes {
    /// Watch the read end of `run`'s readiness pipe; the pipes of the
    /// service's earlier runs are closed (their newline no longer counts).
    pub fn add(
        &mut self,
        registry: &Registry,
        tokens: &mut Tokens,
        service: ServiceId,
        run: RunId,
        fd: OwnedFd,
    ) {
        self.close_service(registry, service);
        let mut receiver = Receiver::from(fd);
        if let Err(e) = receiver.set_nonblocking(true) {
            warn!("cannot make a readiness pipe non-blocking: {e}");
            return;
        }
        let token = tokens.next();
        if let Err(e) = registry.register(&mut receiver, token, Interest::READABLE) {
            warn!("cannot watch a readiness pipe: {e}");
            return;
        }
        let pipe = Pipe {
            service,
            run,
            receiver,
            queued: false,
        };
        self.pipes.insert(token, pipe);
    }

    pub fn owns(&self, token: Token) -> bool {
        self.pipes.contains_key(&token)
    }

    /// A readiness event: read it this turn.
    pub fn readable(&mut self, token: Token) {
        if let Some(pipe) = self.pipes.get_mut(&token)
            && !pipe.queued
        {
            pipe.queued = true;
            self.ready.push_back(token);
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Close the pipes of `service` (any run).
    pub fn close_service(&mut self, registry: &Registry, service: ServiceId) {
        let tokens: Vec<Token> = self
            .pipes
            .iter()
            .filter(|(_, p)| p.service == service)
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            self.close(registry, token);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut pipe) = self.pipes.remove(&token) {
            let _ = registry.deregister(&mut pipe.receiver);
        }
        // A stale token on `ready` is skipped: tokens are never reused.
    }

    /// Read the pipes on the `ready` list, each up to its budget.
    pub fn pump(&mut self, registry: &Registry, scratch: &mut [u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            if let Some(pipe) = self.pipes.get_mut(&token) {
                pipe.queued = false;
            }
            if let Some(event) = self.read(registry, token, scratch) {
                events.push(event);
            }
        }
        events
    }

    /// Read what `service`'s pipes hold now (before its exit is reported).
    pub fn drain_service(
        &mut self,
        registry: &Registry,
        service: ServiceId,
        scratch: &mut [u8],
    ) -> Vec<Event> {
        let tokens: Vec<Token> = self
            .pipes
            .iter()
            .filter(|(_, p)| p.service == service)
            .map(|(t, _)| *t)
            .collect();
        let reads = tokens.into_iter().map(|t| self.read(registry, t, scratch));
        reads.collect::<Vec<_>>().into_iter().flatten().collect()
    }

    /// Read one pipe up to its budget; the event of its newline, if it came.
    fn read(&mut self, registry: &Registry, token: Token, scratch: &mut [u8]) -> Option<Event> {
        let pipe = self.pipes.get_mut(&token)?;
        let (service, run) = (pipe.service, pipe.run);
        match read_until_newline(&mut pipe.receiver, scratch, READ_BUDGET) {
            Ok(Outcome::Drained) => None,
            Ok(Outcome::Budget) => {
                self.readable(token);
                None
            }
            Ok(Outcome::Done { ready }) => {
                self.close(registry, token);
                ready.then_some(Event::Ready { service, run })
            }
            Err(e) => {
                debug!("readiness pipe: {e}");
                self.close(registry, token);
                None
            }
        }
    }
}

/// Read `source` in small chunks until a newline, EOF, `WouldBlock` or
/// `budget` bytes; what is read is discarded.
fn read_until_newline(
    source: &mut impl Read,
    scratch: &mut [u8],
    budget: usize,
) -> io::Result<Outcome> {
    let len = scratch.len().min(CHUNK);
    let Some(buf) = scratch.get_mut(..len) else {
        return Ok(Outcome::Drained);
    };
    let mut used = 0;
    while used < budget {
        match source.read(buf) {
            Ok(0) => return Ok(Outcome::Done { ready: false }),
            Ok(n) => {
                if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) {
                    return Ok(Outcome::Done { ready: true });
                }
                used += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Outcome::Drained),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Outcome::Budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that yields `chunks`, then `WouldBlock` (or EOF with `eof`).
    struct Script {
        chunks: VecDeque<Vec<u8>>,
        eof: bool,
        reads: usize,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            match self.chunks.pop_front() {
                Some(chunk) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    Ok(n)
                }
                None if self.eof => Ok(0),
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    fn script(chunks: &[&[u8]], eof: bool) -> Script {
        Script {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            eof,
            reads: 0,
        }
    }

    fn outcome(r: io::Result<Outcome>) -> &'static str {
        match r {
            Ok(Outcome::Drained) => "drained",
            Ok(Outcome::Budget) => "budget",
            Ok(Outcome::Done { ready: true }) => "ready",
            Ok(Outcome::Done { ready: false }) => "eof",
            Err(_) => "error",
        }
    }

    #[test]
    fn a_newline_anywhere_means_ready() {
        let mut scratch = [0u8; 8192];
        let cases: [&[&[u8]]; 3] = [&[b"\n"], &[b"abc", b"de\nf"], &[b"x", b"y", b"z"]];
        for chunks in cases {
            let mut s = script(chunks, false);
            let got = outcome(read_until_newline(&mut s, &mut scratch, READ_BUDGET));
            let want = if chunks.iter().any(|c| c.contains(&b'\n')) {
                "ready"
            } else {
                "drained"
            };
            assert_eq!(got, want, "{chunks:?}");
        }
        let mut s = script(&[b"no newline"], true);
        assert_eq!(
            outcome(read_until_newline(&mut s, &mut scratch, READ_BUDGET)),
            "eof"
        );
    }

    #[test]
    fn garbage_is_bounded_per_turn() {
        // Endless garbage: the read stops at the budget, having held no more
        // than one chunk at a time.
        let mut s = script(&[], false);
        s.chunks = std::iter::repeat_n(vec![b'x'; CHUNK], 1000).collect();
        let mut scratch = [0u8; 256 * 1024];
        let got = outcome(read_until_newline(&mut s, &mut scratch, READ_BUDGET));
        assert_eq!(got, "budget");
        assert_eq!(s.reads, READ_BUDGET / CHUNK);
    }

    #[test]
    fn a_real_pipe_reports_its_newline() {
        let (rx, tx) = crate::sys::pipe().expect("pipe");
        let mut receiver = Receiver::from(rx);
        receiver.set_nonblocking(true).expect("nonblocking");
        let mut scratch = [0u8; 8192];
        let r = read_until_newline(&mut receiver, &mut scratch, READ_BUDGET);
        assert_eq!(outcome(r), "drained");
        let mut writer = std::fs::File::from(tx);
        std::io::Write::write_all(&mut writer, b"ready\n").expect("write");
        let r = read_until_newline(&mut receiver, &mut scratch, READ_BUDGET);
        assert_eq!(outcome(r), "ready");
    }
}
