//! One control client's buffers and phase, the index of `logs -f` followers,
//! and the byte totals the server's bounds are checked against.
//!
//! A client's output buffer holds, in order: reply bytes (its reply, or a
//! follower's first reply and last line) and, for a follower, output lines.
//! `reply_left` says how many of the unwritten bytes at the front are reply
//! bytes; the rest is the follower's backlog. [`Totals`] sums both kinds over
//! all clients: the server takes a client's share out before changing its
//! buffer and puts it back after, so the sums stay exact.
//!
//! Must not: decide bounds or close connections; the server does.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::time::Instant;

use mio::Token;
use mio::net::UnixStream;

use super::{MAX_REQUEST_BYTES, parse_request, read_until_blocked};
use crate::protocol::Request;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a full request line.
    Reading,
    /// Request handed out; waiting for the reply to be queued.
    Waiting,
    /// Reply queued; close once written.
    Replying,
    /// Streaming output lines (see [`Followers`] for which).
    Following,
    /// Replied; kept open until tend exits (`tend shutdown`).
    Held,
}

/// Written bytes are dropped from the front of the buffer once they are this
/// many and at least half of it, so a follower that is always a little behind
/// does not keep everything ever sent to it.
const COMPACT_AT: usize = 64 * 1024;

pub struct Client {
    pub stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    /// Unwritten reply bytes at the front of `output[written..]`.
    reply_left: usize,
    pub phase: Phase,
    pub deadline: Option<Instant>,
    pub wants_write: bool,
}

impl Client {
    pub fn new(stream: UnixStream) -> Client {
        Client {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            reply_left: 0,
            phase: Phase::Reading,
            deadline: None,
            wants_write: false,
        }
    }

    /// A client handed over by `tend reexec`: its phase and the bytes it has
    /// not taken yet, the first `reply_left` of them reply bytes.
    pub fn resume(stream: UnixStream, phase: Phase, output: Vec<u8>, reply_left: usize) -> Client {
        let reply_left = reply_left.min(output.len());
        Client {
            output,
            reply_left,
            phase,
            ..Client::new(stream)
        }
    }

    /// The bytes not written yet, and how many of the first are reply bytes
    /// (see [`Self::resume`]).
    pub fn unwritten(&self) -> (&[u8], usize) {
        (
            self.output.get(self.written..).unwrap_or(&[]),
            self.reply_left,
        )
    }

    /// Read what the client sent (kept only while its request is incomplete).
    /// Returns whether it closed its side.
    pub fn read_input(&mut self) -> bool {
        let keep = self.phase == Phase::Reading;
        read_until_blocked(&mut self.stream, &mut self.input, keep)
    }

    /// The request, once its line is complete: up to the first newline, or
    /// everything when the client `closed` its side without one. Or why it was
    /// refused (too long).
    pub fn take_request(&mut self, closed: bool) -> Option<Result<Request, String>> {
        let end = match self.input.iter().position(|&b| b == b'\n') {
            Some(pos) => pos,
            None if self.input.len() > MAX_REQUEST_BYTES => {
                self.input = Vec::new();
                return Some(Err(format!(
                    "request too long (more than {MAX_REQUEST_BYTES} bytes)"
                )));
            }
            None if closed && !self.input.is_empty() => self.input.len(),
            None => return None,
        };
        let line = String::from_utf8_lossy(self.input.get(..end).unwrap_or(&[])).into_owned();
        self.input = Vec::new();
        Some(parse_request(&line))
    }

    /// Unwritten bytes.
    pub fn pending(&self) -> usize {
        self.output.len() - self.written
    }

    /// Unwritten output lines of a follower (0 for everyone else).
    pub fn backlog(&self) -> usize {
        self.pending() - self.reply_left
    }

    pub fn queue_reply(&mut self, line: &[u8]) {
        // A reply is only ever queued when nothing but replies is pending, so
        // it extends the reply bytes at the front.
        self.output.extend_from_slice(line);
        self.reply_left = self.pending();
    }

    pub fn queue_lines(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Forget the backlog, except the rest of a line already partly written
    /// (the client must not get half a JSON object).
    pub fn cut_backlog(&mut self) {
        let mut keep = self.written + self.reply_left;
        let mid_line = keep > 0 && self.output.get(keep - 1).is_some_and(|&b| b != b'\n');
        if mid_line {
            keep = match self
                .output
                .get(keep..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            {
                Some(pos) => keep + pos + 1,
                None => self.output.len(),
            };
        }
        self.output.truncate(keep);
        self.reply_left = self.pending();
    }

    /// Write what the socket takes now. Err when the client is gone.
    pub fn write_output(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        while self.written < self.output.len() {
            let rest = self.output.get(self.written..).unwrap_or(&[]);
            match self.stream.write(rest) {
                Ok(0) => break,
                Ok(n) => {
                    self.written += n;
                    self.reply_left = self.reply_left.saturating_sub(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    result = Err(e); // EPIPE, ECONNRESET: the client left
                    break;
                }
            }
        }
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
        } else if self.written >= COMPACT_AT && self.written * 2 >= self.output.len() {
            self.output.drain(..self.written);
            self.written = 0;
        }
        result
    }
}

/// Unwritten bytes over all clients: replies, and followers' backlogs.
#[derive(Debug, Default)]
pub struct Totals {
    pub replies: usize,
    pub follow: usize,
}

impl Totals {
    pub fn add(&mut self, c: &Client) {
        self.replies += c.reply_left;
        self.follow += c.backlog();
    }

    pub fn remove(&mut self, c: &Client) {
        self.replies = self.replies.saturating_sub(c.reply_left);
        self.follow = self.follow.saturating_sub(c.backlog());
    }
}

/// Who follows which services' output.
#[derive(Debug, Default)]
pub struct Followers {
    /// Following every service (also ones a reload adds later).
    all: BTreeSet<Token>,
    by_service: HashMap<String, BTreeSet<Token>>,
    /// What each follower follows (None: all), to undo `add`.
    names: HashMap<Token, Option<Vec<String>>>,
}

impl Followers {
    pub fn add(&mut self, token: Token, names: Option<Vec<String>>) {
        match &names {
            None => {
                self.all.insert(token);
            }
            Some(list) => {
                for name in list {
                    self.by_service
                        .entry(name.clone())
                        .or_default()
                        .insert(token);
                }
            }
        }
        self.names.insert(token, names);
    }

    pub fn remove(&mut self, token: Token) {
        match self.names.remove(&token) {
            Some(None) => {
                self.all.remove(&token);
            }
            Some(Some(list)) => {
                for name in list {
                    if let Some(set) = self.by_service.get_mut(&name) {
                        set.remove(&token);
                        if set.is_empty() {
                            self.by_service.remove(&name);
                        }
                    }
                }
            }
            None => {}
        }
    }

    /// What `token` follows: `Some(None)` every service, `Some(Some(names))`
    /// these; `None` when it is no follower.
    pub fn selection(&self, token: Token) -> Option<Option<Vec<String>>> {
        self.names.get(&token).cloned()
    }

    /// The followers of `service`'s output.
    pub fn of(&self, service: &str) -> Vec<Token> {
        if self.names.is_empty() {
            return Vec::new();
        }
        let mut tokens: Vec<Token> = self.all.iter().copied().collect();
        if let Some(set) = self.by_service.get(service) {
            tokens.extend(set.iter().copied());
        }
        tokens
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
