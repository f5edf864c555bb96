//! The metrics endpoint (SPEC §9): `GET /metrics` in the Prometheus text
//! format, served from tend's own loop, and the counters only the shell sees
//! (output lines, failed probes).
//!
//! The listener and every connection are non-blocking and edge-triggered:
//! accepts, reads and writes go until `WouldBlock`. A scrape is read with the
//! HTTP/1.1 codec (`codec::http1`, at most 8 KiB of head), answered once and
//! closed (`Connection: close`); the exposition is built only when a scrape
//! asks for it, once per loop turn however many scrapers asked in it
//! (`families.rs`).
//!
//! Nothing a client does can block or grow tend: at most [`MAX_CONNECTIONS`]
//! connections are kept (more are accepted and closed at once, so the backlog
//! never fills); each has [`CONNECTION_TIMEOUT`] from its accept to send its
//! request, take the whole answer and close (after the answer tend shuts its
//! side and reads until the client closes, so a reply is never lost to a
//! reset; at most [`DRAIN_LIMIT`] bytes), kept in an ordered deadline set
//! (`machine::Deadlines`, never a scan of every connection); a reply is written
//! only as fast as the client takes it (WRITABLE interest only while output is
//! pending); and replies in flight hold at most [`MAX_BUFFERED`] bytes (a
//! scrape beyond that gets a 503).
//!
//! Must not: block, decide anything about services, or read the clock (the
//! loop passes its turn's time). Read first: [`MetricsServer::handle_event`],
//! then `driver.rs`, which is how the loop drives it.

mod driver;
mod families;
mod handover;
mod routes;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use log::{debug, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::tokens::Tokens;
use crate::codec::http1::{self, Progress, RequestParser};
use crate::codec::prometheus::CONTENT_TYPE;
use crate::machine::{Deadlines, Instant, Role};

pub use families::{View, render};
pub use handover::MetricsSnapshot;
pub use routes::{Route, refusal, route};

/// Connections kept open at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// From accept to the last byte of the answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of replies in flight across all connections; a scrape that would
/// pass it gets a 503 (one scrape is always answered).
pub const MAX_BUFFERED: usize = 16 << 20;
/// After `EMFILE` on accept, or a spent accept budget, try again this soon.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Connections accepted per turn, so a connection flood cannot hold the loop.
const ACCEPTS_PER_TURN: usize = 256;
/// Bytes read and dropped after a reply while waiting for the client to close.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Counts per service that only the shell sees, kept with its I/O state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Output lines, by stream: `[stdout, stderr]`.
    pub log_lines: [u64; 2],
    /// Failed probe results, by role: `[readiness, liveness]`.
    pub probe_failures: [u64; 2],
}

impl Counters {
    pub fn add_lines(&mut self, stream: super::output::Stream, lines: usize) {
        let i = match stream {
            super::output::Stream::Stdout => 0,
            super::output::Stream::Stderr => 1,
        };
        self.log_lines[i] = self.log_lines[i].saturating_add(lines as u64);
    }

    pub fn add_probe_failure(&mut self, role: Role) {
        let i = role_index(role);
        self.probe_failures[i] = self.probe_failures[i].saturating_add(1);
    }
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Readiness => 0,
        Role::Liveness => 1,
    }
}

/// Why the metrics listener could not be set up.
#[derive(Debug)]
pub struct BindError {
    pub address: SocketAddr,
    pub error: io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unable to serve metrics on {} (metrics_address): {}",
            self.address, self.error
        )
    }
}

impl std::error::Error for BindError {}

/// An answer being written: a head of its own, a body shared by every scrape
/// answered in the same turn.
struct Reply {
    head: Vec<u8>,
    body: Option<Rc<[u8]>>,
    written: usize,
}

impl Reply {
    fn len(&self) -> usize {
        self.head.len() + self.body.as_ref().map_or(0, |b| b.len())
    }

    /// The bytes not yet written, up to the end of the head or of the body.
    fn rest(&self) -> &[u8] {
        match self.head.get(self.written..) {
            Some(rest) if !rest.is_empty() => rest,
            _ => {
                let at = self.written.saturating_sub(self.head.len());
                self.body
                    .as_deref()
                    .and_then(|b| b.get(at..))
                    .unwrap_or(&[])
            }
        }
    }
}

enum Phase {
    Reading(Box<RequestParser>),
    /// Waiting (within this turn) for the exposition.
    Scrape {
        head: bool,
    },
    Replying(Reply),
    /// Reply written and our side shut: read and drop what the client still
    /// sends until it closes, so closing never resets a connection with the
    /// reply unread (a "lingering close"). `left`: bytes still accepted.
    Draining {
        left: usize,
    },
}

struct Connection {
    stream: TcpStream,
    phase: Phase,
    /// WRITABLE interest is registered (only while a reply is pending).
    writable: bool,
}

/// The listening socket and its connections.
pub struct MetricsServer {
    /// As configured (compared at reload).
    address: SocketAddr,
    listener: TcpListener,
    listener_token: Token,
    connections: HashMap<Token, Connection>,
    deadlines: Deadlines<Token>,
    accept_retry: Option<Instant>,
    /// Connections waiting for this turn's exposition.
    scrapes: Vec<Token>,
    /// Bytes of replies not yet written.
    buffered: usize,
    /// A full house was logged; quiet until there is room again.
    refusing: bool,
    /// When tend started (Unix seconds), read once.
    pub start_time: Option<f64>,
}

impl MetricsServer {
    /// Listen on `address`.
    pub fn bind(
        address: SocketAddr,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<MetricsServer, BindError> {
        let (listener, listener_token) = listen(address, registry, tokens)?;
        Ok(MetricsServer {
            address,
            listener,
            listener_token,
            connections: HashMap::new(),
            deadlines: Deadlines::default(),
            accept_retry: None,
            scrapes: Vec::new(),
            buffered: 0,
            refusing: false,
            start_time: super::usage::own_start_time(),
        })
    }

    /// The address as configured.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address actually bound (differs from the configured one in port 0
    /// only, which the config does not allow).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.address)
    }

    /// Listen on `address` instead (a reload changed it). Connections in
    /// flight finish; on failure nothing changes.
    pub fn move_to(
        &mut self,
        address: SocketAddr,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<(), BindError> {
        let (mut listener, token) = listen(address, registry, tokens)?;
        std::mem::swap(&mut self.listener, &mut listener);
        self.listener_token = token;
        self.address = address;
        self.accept_retry = None;
        let _ = registry.deregister(&mut listener);
        Ok(()) // the old listener closes here
    }

    pub fn owns(&self, token: Token) -> bool {
        token == self.listener_token || self.connections.contains_key(&token)
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Readiness of one of our tokens. Scrapes whose request is complete wait
    /// for [`answer_scrapes`](Self::answer_scrapes) (see [`has_scrapes`](Self::has_scrapes)).
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        tokens: &mut Tokens,
        event: &mio::event::Event,
        now: Instant,
    ) {
        let token = event.token();
        if token == self.listener_token {
            return self.accept(registry, tokens, now);
        }
        match self.connections.get(&token).map(|c| &c.phase) {
            Some(Phase::Reading(_)) => self.read(registry, token),
            Some(Phase::Replying(_)) => self.flush(registry, token),
            Some(Phase::Draining { .. }) => self.drain(registry, token),
            Some(Phase::Scrape { .. }) | None => {}
        }
    }

    /// Whether a scrape waits for the exposition.
    pub fn has_scrapes(&self) -> bool {
        !self.scrapes.is_empty()
    }

    /// Answer every waiting scrape with `body` (one exposition, shared).
    pub fn answer_scrapes(&mut self, registry: &Registry, body: String) {
        let body: Rc<[u8]> = Rc::from(body.into_bytes().into_boxed_slice());
        let head = |length| http1::response_head(200, "OK", CONTENT_TYPE, length);
        for token in std::mem::take(&mut self.scrapes) {
            let Some(Phase::Scrape { head: head_only }) =
                self.connections.get(&token).map(|c| &c.phase)
            else {
                continue;
            };
            let head_only = *head_only;
            let reply = Reply {
                head: head(body.len()),
                body: (!head_only).then(|| body.clone()),
                written: 0,
            };
            // One reply always goes out; beyond that, the bound holds.
            if self.buffered > 0 && self.buffered + reply.len() > MAX_BUFFERED {
                warn!("metrics: too many scrapes in flight; answering 503");
                let message = "too many scrapes in flight; try again";
                self.start_reply(registry, token, refusal(503, false, message, head_only));
                continue;
            }
            self.buffered += reply.len();
            self.begin(registry, token, reply);
        }
    }

    /// The earliest connection deadline or accept retry.
    pub fn poll_deadline(&self) -> Option<Instant> {
        match (self.deadlines.next(), self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Close the connections whose time is up; retry a pending accept.
    pub fn handle_deadlines(&mut self, registry: &Registry, tokens: &mut Tokens, now: Instant) {
        while let Some(token) = self.deadlines.pop_due(now) {
            debug!("metrics: closing a connection that took longer than {CONNECTION_TIMEOUT:?}");
            self.close(registry, token);
        }
        if self.accept_retry.is_some_and(|at| at <= now) {
            self.accept_retry = None;
            self.accept(registry, tokens, now);
        }
    }

    fn accept(&mut self, registry: &Registry, tokens: &mut Tokens, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE: the connection stays queued and no new
                    // edge will come for it; try again shortly.
                    warn!("metrics: accept failed: {e}");
                    self.accept_retry = Some(now.saturating_add(ACCEPT_RETRY));
                    return;
                }
            };
            if self.connections.len() >= MAX_CONNECTIONS {
                if !self.refusing {
                    warn!("metrics: {MAX_CONNECTIONS} connections open; closing new ones");
                    self.refusing = true;
                }
                continue; // dropped: closed at once
            }
            let token = tokens.next();
            if registry
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            let parser = Box::new(RequestParser::new());
            let connection = Connection {
                stream,
                phase: Phase::Reading(parser),
                writable: false,
            };
            self.connections.insert(token, connection);
            self.deadlines
                .set(token, Some(now.saturating_add(CONNECTION_TIMEOUT)));
        }
        // Budget spent with connections possibly left: go on next turn.
        self.accept_retry = Some(now);
    }

    /// Read the request until it is complete, malformed, or `WouldBlock`.
    fn read(&mut self, registry: &Registry, token: Token) {
        let Some(c) = self.connections.get_mut(&token) else {
            return;
        };
        let Phase::Reading(parser) = &mut c.phase else {
            return;
        };
        let mut buf = [0u8; 4096];
        let outcome = loop {
            match c.stream.read(&mut buf) {
                Ok(0) => break None, // gone before a whole request
                Ok(n) => match parser.feed(&buf[..n]) {
                    Progress::NeedMore => continue,
                    Progress::Done(request) => break Some(Ok(request)),
                    Progress::Failed(e) => break Some(Err(e)),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break None,
            }
        };
        match outcome {
            None => self.close(registry, token),
            Some(Ok(request)) => match route(&request) {
                Route::Metrics { head } => {
                    c.phase = Phase::Scrape { head };
                    self.scrapes.push(token);
                }
                Route::Refuse {
                    status,
                    allow,
                    message,
                    head,
                } => {
                    let reply = refusal(status, allow, &message, head);
                    self.start_reply(registry, token, reply);
                }
            },
            Some(Err(e)) => {
                let reply = refusal(e.status(), false, &e.to_string(), false);
                self.start_reply(registry, token, reply);
            }
        }
    }

    fn start_reply(&mut self, registry: &Registry, token: Token, bytes: Vec<u8>) {
        self.buffered += bytes.len();
        let reply = Reply {
            head: bytes,
            body: None,
            written: 0,
        };
        self.begin(registry, token, reply);
    }

    fn begin(&mut self, registry: &Registry, token: Token, reply: Reply) {
        match self.connections.get_mut(&token) {
            Some(c) => c.phase = Phase::Replying(reply),
            None => self.buffered = self.buffered.saturating_sub(reply.len()),
        }
        self.flush(registry, token);
    }

    /// Write what the socket takes; close once the reply is out.
    fn flush(&mut self, registry: &Registry, token: Token) {
        let Some(c) = self.connections.get_mut(&token) else {
            return;
        };
        let Phase::Replying(reply) = &mut c.phase else {
            return;
        };
        let before = reply.written;
        let mut failed = false;
        while reply.written < reply.len() {
            match c.stream.write(reply.rest()) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => reply.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true; // EPIPE, ECONNRESET: the client left
                    break;
                }
            }
        }
        self.buffered = self.buffered.saturating_sub(reply.written - before);
        if failed {
            return self.close(registry, token);
        }
        if reply.written >= reply.len() {
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
            c.phase = Phase::Draining { left: DRAIN_LIMIT };
            if c.writable {
                c.writable = false;
                let _ = registry.reregister(&mut c.stream, token, Interest::READABLE);
            }
            return self.drain(registry, token);
        }
        if !c.writable {
            c.writable = true;
            let _ = registry.reregister(&mut c.stream, token, Interest::WRITABLE);
        }
    }

    /// Read and drop until the client closes, sends too much, or `WouldBlock`.
    fn drain(&mut self, registry: &Registry, token: Token) {
        let Some(c) = self.connections.get_mut(&token) else {
            return;
        };
        let Phase::Draining { left } = &mut c.phase else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match c.stream.read(&mut buf) {
                Ok(n) if n > 0 && n < *left => *left -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EOF, an error, or more than a client of ours would send.
                Ok(_) | Err(_) => return self.close(registry, token),
            }
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut c) = self.connections.remove(&token) {
            if let Phase::Replying(reply) = &c.phase {
                let left = reply.len() - reply.written.min(reply.len());
                self.buffered = self.buffered.saturating_sub(left);
            }
            let _ = registry.deregister(&mut c.stream);
        }
        self.deadlines.set(token, None);
        if self.connections.len() < MAX_CONNECTIONS {
            self.refusing = false;
        }
    }
}

fn listen(
    address: SocketAddr,
    registry: &Registry,
    tokens: &mut Tokens,
) -> Result<(TcpListener, Token), BindError> {
    let fail = |error| BindError { address, error };
    let mut listener = TcpListener::bind(address).map_err(fail)?;
    let token = tokens.next();
    registry
        .register(&mut listener, token, Interest::READABLE)
        .map_err(fail)?;
    Ok((listener, token))
}

#[cfg(test)]
mod tests;
