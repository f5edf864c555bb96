//! The control socket server, driven by the event loop: accept, read one request
//! line per client, queue replies, stream `logs -f` lines.
//!
//! Wire protocol: one JSON request line from the client, one JSON reply line from
//! tend (`protocol.rs`); a follower then gets one `LogLine` JSON per output line.
//!
//! Nothing here blocks or grows without bound: the socket is non-blocking and
//! edge-triggered, so accepts and reads go until `WouldBlock`; a request longer than
//! `MAX_REQUEST_BYTES` gets an error and is closed; a client must send its request
//! within `REQUEST_TIMEOUT` and take its reply within the same time; a follower
//! that falls `MAX_OUTPUT` behind is dropped; at most `MAX_CLIENTS` connections
//! are kept (more are accepted and closed at once, so the backlog never fills).
//! `EMFILE` on accept arms a short retry deadline, as no new event would come for
//! the connections still queued.
//!
//! Must not: interpret requests; `runtime::requests` answers them.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::tokens::Tokens;
use crate::protocol::{LogLine, MAX_REQUEST_BYTES, Reply, Request};

/// A client connection, named by its token.
pub type ClientId = Token;

const MAX_CLIENTS: usize = 1024;
const MAX_OUTPUT: usize = 4 << 20;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Why the control socket could not be set up.
#[derive(Debug)]
pub enum ControlError {
    /// Another tend answers on this socket.
    AlreadyRunning(PathBuf),
    /// Something that is not a socket is in the way.
    NotASocket(PathBuf),
    Bind(PathBuf, io::Error),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::AlreadyRunning(p) => write!(
                f,
                "another tend is already running on control socket {}",
                p.display()
            ),
            ControlError::NotASocket(p) => write!(
                f,
                "unable to bind control socket {}: the path exists and is not a socket",
                p.display()
            ),
            ControlError::Bind(p, e) => {
                write!(f, "unable to bind control socket {}: {e}", p.display())
            }
        }
    }
}

impl std::error::Error for ControlError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for a full request line.
    Reading,
    /// Request handed out; waiting for the reply to be queued.
    Waiting,
    /// Reply queued; close once written.
    Replying,
    /// Streaming the output lines of a service.
    Following(String),
}

struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    phase: Phase,
    deadline: Option<Instant>,
    wants_write: bool,
}

/// The listening socket and its clients.
pub struct ControlServer {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    listener: UnixListener,
    listener_token: Token,
    clients: HashMap<Token, Client>,
    accept_retry: Option<Instant>,
    followers: usize,
}

impl ControlServer {
    /// Bind `path` with mode 0600. A live tend on it is refused; a stale socket
    /// file (connection refused) is replaced.
    pub fn bind(
        path: &Path,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<ControlServer, ControlError> {
        clear_stale(path)?;
        // Tighten the umask around bind so the socket is never briefly open to others.
        let old = crate::sys::set_umask(0o177);
        let bound = bind_in_place(path);
        crate::sys::set_umask(old);
        let mut listener = bound.map_err(|e| ControlError::Bind(path.to_path_buf(), e))?;
        let listener_token = tokens.next();
        registry
            .register(&mut listener, listener_token, Interest::READABLE)
            .map_err(|e| ControlError::Bind(path.to_path_buf(), e))?;
        let identity = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        Ok(ControlServer {
            path: path.to_path_buf(),
            identity,
            listener,
            listener_token,
            clients: HashMap::new(),
            accept_retry: None,
            followers: 0,
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
        self.followers > 0
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
                    if self.clients.len() >= MAX_CLIENTS {
                        log::warn!("control socket: too many clients; closing a new connection");
                        continue; // dropped: closed at once
                    }
                    let token = tokens.next();
                    if registry
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    self.clients.insert(
                        token,
                        Client {
                            stream,
                            input: Vec::new(),
                            output: Vec::new(),
                            written: 0,
                            phase: Phase::Reading,
                            deadline: Some(now + REQUEST_TIMEOUT),
                            wants_write: false,
                        },
                    );
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

    /// Read what the client sent; a complete first line is its request.
    fn read(&mut self, registry: &Registry, token: Token) -> Option<Result<Request, String>> {
        let client = self.clients.get_mut(&token)?;
        let mut buf = [0u8; 4096];
        let mut closed = false;
        loop {
            match client.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    if client.phase == Phase::Reading {
                        client.input.extend_from_slice(&buf[..n]);
                        if client.input.len() > MAX_REQUEST_BYTES + 1 {
                            break;
                        }
                    } // anything after the request is ignored
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if client.phase == Phase::Reading {
            if let Some(pos) = client.input.iter().position(|&b| b == b'\n') {
                client.phase = Phase::Waiting;
                client.deadline = None;
                let line = String::from_utf8_lossy(&client.input[..pos]).into_owned();
                client.input = Vec::new();
                return Some(parse_request(&line));
            }
            if client.input.len() > MAX_REQUEST_BYTES {
                client.phase = Phase::Waiting;
                client.input = Vec::new();
                return Some(Err(format!(
                    "request too long (more than {MAX_REQUEST_BYTES} bytes)"
                )));
            }
        }
        let done = match &client.phase {
            // A follower or a client still owed a reply stays until written.
            Phase::Following(_) => closed,
            Phase::Reading => closed,
            Phase::Waiting | Phase::Replying => false,
        };
        if done {
            self.close(registry, token);
        }
        None
    }

    /// Queue `reply` for `client`; the connection closes once it is written,
    /// unless `follow` was called for it.
    pub fn reply(&mut self, registry: &Registry, client: ClientId, reply: &Reply) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        let line = serde_json::to_vec(reply).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        c.output.extend_from_slice(&line);
        c.output.push(b'\n');
        if c.phase == Phase::Waiting {
            c.phase = Phase::Replying;
            c.deadline = Some(Instant::now() + REQUEST_TIMEOUT);
        }
        self.flush(registry, client);
    }

    /// Keep `client` open after its reply and stream `service`'s lines to it.
    pub fn follow(&mut self, client: ClientId, service: &str) {
        if let Some(c) = self.clients.get_mut(&client) {
            if !matches!(c.phase, Phase::Following(_)) {
                self.followers += 1;
            }
            c.phase = Phase::Following(service.to_string());
            c.deadline = None;
        }
    }

    /// A new output line of `service`, for its followers.
    pub fn push_line(&mut self, registry: &Registry, service: &str, line: &LogLine) {
        if self.followers == 0 {
            return;
        }
        let tokens: Vec<Token> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(&c.phase, Phase::Following(s) if s == service))
            .map(|(t, _)| *t)
            .collect();
        if tokens.is_empty() {
            return;
        }
        let mut bytes = serde_json::to_vec(line).unwrap_or_default();
        bytes.push(b'\n');
        for token in tokens {
            let too_slow = match self.clients.get_mut(&token) {
                Some(c) => {
                    c.output.extend_from_slice(&bytes);
                    c.output.len() - c.written > MAX_OUTPUT
                }
                None => false,
            };
            if too_slow {
                log::warn!("control socket: dropping a `logs -f` client that fell behind");
                self.close(registry, token);
            } else {
                self.flush(registry, token);
            }
        }
    }

    /// Write what the socket takes; close when a reply is fully written.
    fn flush(&mut self, registry: &Registry, token: Token) {
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        let mut failed = false;
        while c.written < c.output.len() {
            match c.stream.write(&c.output[c.written..]) {
                Ok(0) => break,
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true; // EPIPE, ECONNRESET: the client left
                    break;
                }
            }
        }
        let drained = c.written == c.output.len();
        if drained {
            c.output.clear();
            c.written = 0;
        }
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
            if matches!(c.phase, Phase::Following(_)) {
                self.followers = self.followers.saturating_sub(1);
            }
            let _ = registry.deregister(&mut c.stream);
        }
    }

    /// The earliest client deadline or accept retry.
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(|c| c.deadline)
            .chain(self.accept_retry)
            .min()
    }

    /// Drop clients that were too slow; retry a failed accept.
    pub fn handle_deadlines(&mut self, registry: &Registry, tokens: &mut Tokens, now: Instant) {
        let expired: Vec<Token> = self
            .clients
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
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
        let same = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()))
            == self.identity;
        if same {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Bind and listen under a temporary name beside `path`, then rename it into
/// place: the path appears only once it accepts connections, so a client or a
/// health check that sees it can connect, and another tend's stale check never
/// finds it between `bind` and `listen` (when connecting is refused).
fn bind_in_place(path: &Path) -> io::Result<UnixListener> {
    let tmp = path.with_file_name(format!(".tend-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    match UnixListener::bind(&tmp) {
        Ok(listener) => match std::fs::rename(&tmp, path) {
            Ok(()) => Ok(listener),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        },
        // E.g. the temporary name does not fit in `sun_path` where `path` does.
        Err(_) => UnixListener::bind(path),
    }
}

/// Remove a stale socket at `path`; refuse if a live tend answers there.
fn clear_stale(path: &Path) -> Result<(), ControlError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(()); // nothing there
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ControlError::AlreadyRunning(path.to_path_buf())),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ControlError::Bind(path.to_path_buf(), e)),
    }
}

/// One request line → a request, or a message saying what is wrong with it.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(
            parse_request(r#"{"cmd": "status"}"#),
            Ok(Request::Status { names: vec![] })
        );
        assert_eq!(
            parse_request(r#"{"cmd":"logs","name":"a","lines":3,"follow":true}"#),
            Ok(Request::Logs {
                name: "a".into(),
                lines: Some(3),
                follow: true
            })
        );
        assert_eq!(parse_request(r#"{"cmd":"reload"}"#), Ok(Request::Reload));
    }

    #[test]
    fn malformed_requests_are_errors_never_panics() {
        let bad = [
            "",
            "{",
            "null",
            "[]",
            r#"{"cmd": "explode"}"#,
            r#"{"cmd": "start"}"#,
            r#"{"cmd": "status", "names": "a"}"#,
            r#"{"cmd": "status", "extra": 1}"#,
            r#"{"cmd": "logs", "name": "a", "lines": -1}"#,
            "\u{0}\u{1}garbage",
        ];
        for line in bad {
            assert!(parse_request(line).is_err(), "{line:?}");
        }
        // A crude fuzz: every prefix of a valid request.
        let good = r#"{"cmd":"signal","name":"web","signal":"HUP"}"#;
        for i in 0..good.len() {
            let _ = parse_request(&good[..i]);
        }
    }

    fn temp_socket(tag: &str) -> PathBuf {
        PathBuf::from(format!("/tmp/tctl-{}-{tag}.sock", std::process::id()))
    }

    #[test]
    fn binds_0600_refuses_a_live_socket_and_replaces_a_stale_one() {
        let poll = mio::Poll::new().expect("poll");
        let mut tokens = Tokens::default();
        let path = temp_socket("bind");
        let _ = std::fs::remove_file(&path);
        {
            let _stale = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        }
        let server =
            ControlServer::bind(&path, poll.registry(), &mut tokens).expect("replaces stale");
        let mode = std::fs::metadata(&path).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Bound under a temporary name and renamed: nothing of it is left over.
        let tmp = path.with_file_name(format!(".tend-{}.sock", std::process::id()));
        assert!(!tmp.exists());
        let second = ControlServer::bind(&path, poll.registry(), &mut tokens);
        assert!(matches!(second, Err(ControlError::AlreadyRunning(_))));
        drop(server);
        assert!(!path.exists(), "removed on drop");
        std::fs::write(&path, "x").expect("file");
        let blocked = ControlServer::bind(&path, poll.registry(), &mut tokens);
        assert!(matches!(blocked, Err(ControlError::NotASocket(_))));
        let _ = std::fs::remove_file(&path);
    }
}
