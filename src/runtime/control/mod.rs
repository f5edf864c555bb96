//! The control socket server, driven by the event loop: accept, read one request
//! line per client, queue replies, stream `logs -f` lines.
//!
//! Wire protocol: one JSON request line from the client (a last line without a
//! newline counts when the client then closes its side), one JSON reply line
//! from tend (`protocol/`); a follower then gets one `LogLine` JSON per output
//! line; a `shutdown` client is held open until tend exits.
//!
//! Nothing here blocks or grows without bound; every bound is a constant below.
//! The socket is non-blocking and edge-triggered, so accepts and reads go until
//! `WouldBlock`. Deadlines live in one ordered set, so a turn costs the same
//! however many clients wait. When [`MAX_CLIENTS`] are connected, the oldest
//! one still sending its request is closed to make room, so idle connections
//! cannot lock `tend status` out; followers are capped lower
//! ([`MAX_FOLLOWERS`]) and everyone else has a deadline. `EMFILE` on accept arms
//! a short retry deadline, as no new event would come for the connections still
//! queued.
//!
//! Read first: [`ControlServer::handle_event`], then `clients.rs` (the per
//! client buffers and the byte totals). The socket file itself: `socket.rs`.
//!
//! Must not: interpret requests; `runtime::requests` answers them.

mod clients;
mod handover;
mod socket;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::{Interest, Registry, Token};

use super::output::{Lines, Stream};
use super::tokens::Tokens;
use crate::codec::json::Writer;
use crate::protocol::{MAX_REQUEST_BYTES, Reply, Request};
use clients::{Client, Followers, Phase, Totals};
pub use handover::ControlSnapshot;
pub use socket::ControlError;

/// A client connection, named by its token.
pub type ClientId = Token;

/// Most connections kept at once. When full, the oldest connection still
/// sending its request is closed to make room (if none is, the new one is).
pub const MAX_CLIENTS: usize = 1024;
/// Most `logs -f` followers at once; one more gets an error reply. Followers
/// have no deadline, so without this they could hold every slot.
pub const MAX_FOLLOWERS: usize = 256;
/// Largest reply queued for one client; a larger one (a `status` of some
/// ten thousand services) is replaced by an error reply saying so.
pub const MAX_REPLY_BYTES: usize = 16 << 20;
/// Most reply bytes waiting to be taken, across all clients; a reply beyond it
/// gets an error asking to try again (the others drain within their deadline).
pub const MAX_PENDING_REPLIES: usize = 64 << 20;
/// Most output lines waiting for one follower (beyond its first reply); a
/// follower that falls further behind is dropped with a last line saying so.
pub const MAX_FOLLOWER_BACKLOG: usize = 1 << 20;
/// Most output lines waiting across all followers; past it, a follower that is
/// behind (has lines waiting) is dropped as above.
pub const MAX_FOLLOWERS_BACKLOG: usize = 16 << 20;
/// Time a client has to send its request line, and to take its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (EMFILE), try again this soon.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The listening socket and its clients.
pub struct ControlServer {
    path: PathBuf,
    identity: socket::Identity,
    listener: UnixListener,
    listener_token: Token,
    clients: HashMap<Token, Client>,
    /// Clients still sending their request, oldest (lowest token) first.
    reading: BTreeSet<Token>,
    /// Every client deadline, earliest first.
    deadlines: BTreeSet<(Instant, Token)>,
    followers: Followers,
    totals: Totals,
    accept_retry: Option<Instant>,
    /// Whether the "too many clients" warning was logged since the last time
    /// there was room (once per episode, not once per connection).
    warned_full: bool,
}

impl ControlServer {
    /// Bind `path` with mode 0600 (checking the private folder of the default
    /// path first). A live tend on it is refused; a stale socket file
    /// (connection refused) is replaced.
    pub fn bind(
        path: &Path,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<ControlServer, ControlError> {
        let (mut listener, identity) = socket::bind(path)?;
        let listener_token = tokens.next();
        if let Err(e) = registry.register(&mut listener, listener_token, Interest::READABLE) {
            socket::remove_if_ours(path, identity);
            return Err(ControlError::Bind(path.to_path_buf(), e));
        }
        Ok(ControlServer {
            path: path.to_path_buf(),
            identity,
            listener,
            listener_token,
            clients: HashMap::new(),
            reading: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            followers: Followers::default(),
            totals: Totals::default(),
            accept_retry: None,
            warned_full: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Listen on `path` instead (a reload changed `control_socket`), keeping the
    /// connected clients: the one that asked for the reload still gets its reply.
    /// On failure nothing changes.
    pub fn move_to(
        &mut self,
        path: &Path,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<(), ControlError> {
        let mut old = ControlServer::bind(path, registry, tokens)?;
        std::mem::swap(&mut self.path, &mut old.path);
        std::mem::swap(&mut self.identity, &mut old.identity);
        std::mem::swap(&mut self.listener, &mut old.listener);
        std::mem::swap(&mut self.listener_token, &mut old.listener_token);
        let _ = registry.deregister(&mut old.listener);
        drop(old); // closes the old listener and unlinks its path
        Ok(())
    }

    pub fn owns(&self, token: Token) -> bool {
        token == self.listener_token || self.clients.contains_key(&token)
    }

    /// Whether anyone follows output (so the loop can skip building lines).
    pub fn has_followers(&self) -> bool {
        !self.followers.is_empty()
    }

    /// Handle readiness of one of our tokens; returns complete requests (or why a
    /// request could not be read), which must each get a `reply`.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        tokens: &mut Tokens,
        event: &mio::event::Event,
        now: Instant,
    ) -> Vec<(ClientId, Result<Request, String>)> {
        let token = event.token();
        if token == self.listener_token {
            self.accept(registry, tokens, now);
            return Vec::new();
        }
        let mut requests = Vec::new();
        if (event.is_readable() || event.is_read_closed())
            && let Some(request) = self.read(registry, token)
        {
            requests.push((token, request));
        }
        if event.is_writable() {
            self.flush(registry, token);
        }
        requests
    }

    fn accept(&mut self, registry: &Registry, tokens: &mut Tokens, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS && !self.make_room(registry) {
                        continue; // dropped: closed at once
                    }
                    let token = tokens.next();
                    if registry
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    self.clients.insert(token, Client::new(stream));
                    self.reading.insert(token);
                    self.set_deadline(token, Some(now + REQUEST_TIMEOUT));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE: the connection stays queued and no new edge
                    // will come for it; try again shortly.
                    log::warn!("control socket: accept failed: {e}");
                    self.accept_retry = Some(now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// At the cap: close the oldest connection still sending its request.
    /// False when every connection is past that (the new one is refused).
    fn make_room(&mut self, registry: &Registry) -> bool {
        let oldest = self.reading.first().copied();
        if !self.warned_full {
            self.warned_full = true;
            log::warn!(
                "control socket: {MAX_CLIENTS} clients connected; {}",
                if oldest.is_some() {
                    "closing the oldest idle ones to make room"
                } else {
                    "refusing new ones"
                }
            );
        }
        match oldest {
            Some(token) => {
                self.close(registry, token);
                true
            }
            None => false,
        }
    }

    /// Read what the client sent; a complete first line is its request.
    fn read(&mut self, registry: &Registry, token: Token) -> Option<Result<Request, String>> {
        let client = self.clients.get_mut(&token)?;
        let closed = client.read_input();
        if client.phase == Phase::Reading {
            let request = match client.take_request(closed) {
                Some(request) => request,
                None if closed => {
                    self.close(registry, token);
                    return None;
                }
                None => return None,
            };
            client.phase = Phase::Waiting;
            self.reading.remove(&token);
            self.set_deadline(token, None);
            return Some(request);
        }
        // A client owed a reply stays until it is written, even if it closed
        // its side after the request; the others leave when the client does.
        let stays = matches!(client.phase, Phase::Waiting | Phase::Replying);
        if closed && !stays {
            self.close(registry, token);
        }
        None
    }

    /// Queue `reply` for `client`; the connection closes once it is written,
    /// unless `follow` or `hold_until_exit` was called for it.
    pub fn reply(&mut self, registry: &Registry, client: ClientId, reply: &Reply) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        let mut line = reply.to_json();
        let refusal = if line.len() > MAX_REPLY_BYTES {
            Some(format!(
                "the reply would be {} bytes, more than the limit of {MAX_REPLY_BYTES}; \
                 ask for fewer services or lines",
                line.len()
            ))
        } else if self.totals.replies + line.len() > MAX_PENDING_REPLIES {
            Some("tend is busy sending other large replies; try again".to_string())
        } else {
            None
        };
        if let Some(why) = refusal {
            line = Reply::error(why).to_json();
        }
        line.push(b'\n');
        self.totals.remove(c);
        c.queue_reply(&line);
        self.totals.add(c);
        if c.phase == Phase::Waiting {
            c.phase = Phase::Replying;
            self.set_deadline(client, Some(Instant::now() + REQUEST_TIMEOUT));
        }
        self.flush(registry, client);
    }

    /// Keep `client` open after its reply and stream the output lines of the
    /// named services to it (of every service, also later ones, when `names` is
    /// None). Err when [`MAX_FOLLOWERS`] already follow.
    pub fn follow(&mut self, client: ClientId, names: Option<Vec<String>>) -> Result<(), String> {
        let Some(c) = self.clients.get_mut(&client) else {
            return Ok(());
        };
        if c.phase != Phase::Waiting {
            return Ok(());
        }
        if self.followers.len() >= MAX_FOLLOWERS {
            return Err(format!(
                "too many clients follow logs already ({MAX_FOLLOWERS}); try again later"
            ));
        }
        self.totals.remove(c);
        c.phase = Phase::Following;
        self.totals.add(c);
        self.followers.add(client, names);
        Ok(())
    }

    /// Keep `client` open after its reply until tend exits (`tend shutdown`
    /// waits for that): the connection is closed by the exit itself.
    pub fn hold_until_exit(&mut self, client: ClientId) {
        if let Some(c) = self.clients.get_mut(&client)
            && c.phase == Phase::Waiting
        {
            c.phase = Phase::Held;
        }
    }

    /// New output lines of `service` (a block read at `ms`, numbered from
    /// `first_seq`; see `ring`), for its followers.
    pub fn push_lines(
        &mut self,
        registry: &Registry,
        service: &str,
        stream: Stream,
        block: Lines<'_>,
        first_seq: u64,
        ms: u64,
    ) {
        let targets = self.followers.of(service);
        if targets.is_empty() {
            return;
        }
        let mut w = Writer::onto(Vec::with_capacity(
            block.text.len() + 128 * block.ends.len(),
        ));
        for line in super::ring::block_lines(service, stream, block, first_seq, ms) {
            line.write_json(&mut w);
            w.raw(b"\n");
        }
        let bytes = w.into_bytes();
        let now = Instant::now();
        for token in targets {
            let Some(c) = self.clients.get_mut(&token) else {
                continue;
            };
            let behind = c.backlog() > 0;
            self.totals.remove(c);
            c.queue_lines(&bytes);
            self.totals.add(c);
            let too_slow = c.backlog() > MAX_FOLLOWER_BACKLOG
                || (behind && self.totals.follow > MAX_FOLLOWERS_BACKLOG);
            if too_slow {
                self.drop_follower(registry, token, now);
            } else {
                self.flush(registry, token);
            }
        }
    }

    /// A follower fell too far behind: forget its backlog (after the line being
    /// written), queue one last error line, and close once that is written.
    fn drop_follower(&mut self, registry: &Registry, token: Token, now: Instant) {
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        log::warn!("control socket: dropping a `logs -f` client that fell behind");
        let last = Reply::error(format!(
            "tend dropped this `logs -f`: it fell more than {MAX_FOLLOWER_BACKLOG} bytes \
             behind (lines were left out); run it again to resume"
        ));
        let mut line = last.to_json();
        line.push(b'\n');
        self.totals.remove(c);
        c.cut_backlog();
        c.phase = Phase::Replying;
        c.queue_reply(&line);
        self.totals.add(c);
        self.followers.remove(token);
        self.set_deadline(token, Some(now + REQUEST_TIMEOUT));
        self.flush(registry, token);
    }

    /// Write what the socket takes; close when a reply is fully written.
    fn flush(&mut self, registry: &Registry, token: Token) {
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        self.totals.remove(c);
        let failed = c.write_output().is_err();
        self.totals.add(c);
        let drained = c.pending() == 0;
        if failed || (drained && c.phase == Phase::Replying) {
            return self.close(registry, token);
        }
        if drained == c.wants_write {
            // Toggle WRITABLE interest: only while output is pending.
            c.wants_write = !drained;
            let interest = if c.wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = registry.reregister(&mut c.stream, token, interest);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut c) = self.clients.remove(&token) {
            self.totals.remove(&c);
            self.followers.remove(token);
            self.reading.remove(&token);
            if let Some(at) = c.deadline {
                self.deadlines.remove(&(at, token));
            }
            let _ = registry.deregister(&mut c.stream);
        }
        if self.clients.len() < MAX_CLIENTS {
            self.warned_full = false;
        }
    }

    fn set_deadline(&mut self, token: Token, at: Option<Instant>) {
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        if let Some(old) = c.deadline.take() {
            self.deadlines.remove(&(old, token));
        }
        if let Some(at) = at {
            self.deadlines.insert((at, token));
        }
        c.deadline = at;
    }

    /// The earliest client deadline or accept retry.
    pub fn poll_deadline(&self) -> Option<Instant> {
        let first = self.deadlines.first().map(|&(at, _)| at);
        match (first, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drop clients that were too slow; retry a failed accept.
    pub fn handle_deadlines(&mut self, registry: &Registry, tokens: &mut Tokens, now: Instant) {
        while let Some(&(at, token)) = self.deadlines.first()
            && at <= now
        {
            self.deadlines.pop_first();
            if let Some(c) = self.clients.get_mut(&token) {
                c.deadline = None;
            }
            self.close(registry, token);
        }
        if self.accept_retry.is_some_and(|at| at <= now) {
            self.accept_retry = None;
            self.accept(registry, tokens, now);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // Only remove the socket if it is still ours (not replaced by someone).
        socket::remove_if_ours(&self.path, self.identity);
        // A held `tend shutdown` client learns that tend has exited when the
        // exit itself closes its connection, not before.
        for (_, c) in self.clients.drain() {
            if c.phase == Phase::Held {
                std::mem::forget(c.stream);
            }
        }
    }
}

/// One request line → a request, or a message saying what is wrong with it.
pub fn parse_request(line: &str) -> Result<Request, String> {
    Request::parse(line.trim()).map_err(|e| format!("bad request: {e}"))
}

/// Most bytes read from one client per event: a client that keeps sending
/// after its request cannot keep the loop busy. (What it sent beyond a request
/// is ignored anyway.)
const READ_BUDGET: usize = MAX_REQUEST_BYTES + 64 * 1024;

/// Read from `stream` until it would block (or [`READ_BUDGET`] is spent); with
/// `keep`, the bytes go to `input` while it holds no more than a request may
/// (beyond that the request is refused anyway). Returns whether the peer
/// closed its side.
fn read_until_blocked(stream: &mut impl Read, input: &mut Vec<u8>, keep: bool) -> bool {
    let mut buf = [0u8; 4096];
    let mut budget = READ_BUDGET;
    while budget > 0 {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                budget = budget.saturating_sub(n);
                if keep && input.len() <= MAX_REQUEST_BYTES {
                    input.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}
