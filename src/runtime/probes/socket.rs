//! One `tcp`, `http` or `grpc` check attempt over a non-blocking socket: the
//! connect, the request, the answer fed into its codec, and the words of the
//! outcome.
//!
//! A [`Conversation`] never waits: [`Conversation::drive`] does every read and
//! write the socket allows right now and says whether the check is decided or
//! waiting for the socket; the caller registers the socket (edge-triggered) and
//! drives again on each event, and owns the attempt's deadline
//! ([`Conversation::timed_out`] words it). On loopback a connect usually
//! completes inside the `connect` call, so a `tcp` check is often decided by
//! the first drive, before any registration.
//!
//! After an `http` answer's head is read the check is decided, but the socket is
//! kept and read to EOF ([`Conversation::drain`], at most [`MAX_DRAIN`] bytes)
//! so the server, which was asked for `Connection: close`, closes first: a
//! probe that closed on a server still writing its body would make the server
//! log a reset or a broken pipe for every check.
//!
//! Must not: block, resolve names (addresses are `SocketAddr`s from the
//! config), or decide what a result means for the service.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;

use super::span;
use crate::codec::grpc::{HealthCheck, Outcome};
use crate::codec::http1::{self, Progress, ResponseParser, Status};

/// The most response body bytes read (and thrown away) after an http head.
pub const MAX_DRAIN: usize = 64 * 1024;

/// Longest reason phrase quoted in a message (the head may hold 16 KiB).
const MAX_REASON: usize = 100;

/// What is spoken once connected.
enum Speech {
    /// Nothing: connecting is the check.
    Tcp,
    /// `GET`, then a status line and headers.
    Http { parser: ResponseParser },
    /// gRPC health `Check` over h2c (boxed: its frame reader and HPACK
    /// state would make every attempt as large).
    Grpc { check: Box<HealthCheck> },
}

/// Where a conversation stands after [`Conversation::drive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Waiting for the socket: register it (or keep it registered).
    Waiting,
    /// The check is decided. `drain`: keep reading to EOF before closing.
    Decided {
        ok: bool,
        message: String,
        drain: bool,
    },
}

impl Turn {
    fn fail(message: String) -> Turn {
        Turn::Decided {
            ok: false,
            message,
            drain: false,
        }
    }
}

/// One check attempt on one fresh connection.
pub struct Conversation {
    stream: TcpStream,
    address: SocketAddr,
    /// What the messages call the exchange: `GET http://host/path`, `grpc ADDR`.
    name: String,
    speech: Speech,
    connected: bool,
    /// Bytes to send, and how many of them are sent.
    out: Vec<u8>,
    written: usize,
    /// Answer bytes read so far (for the timeout message), or drained.
    received: usize,
}

impl Conversation {
    /// Connect for a `tcp` check.
    pub fn tcp(address: SocketAddr) -> Result<Conversation, String> {
        Conversation::open(address, String::new(), Speech::Tcp, Vec::new())
    }

    /// Connect for an `http` check of `http://host/path`.
    pub fn http(address: SocketAddr, host: &str, path: &str) -> Result<Conversation, String> {
        let slash = if path.starts_with('/') { "" } else { "/" };
        let name = format!("GET http://{host}{slash}{path}");
        let out = http1::get_request(host, path);
        let parser = ResponseParser::new();
        Conversation::open(address, name, Speech::Http { parser }, out)
    }

    /// Connect for a `grpc` health check of `service` ("": the whole server).
    pub fn grpc(address: SocketAddr, service: &str) -> Result<Conversation, String> {
        let name = if service.is_empty() {
            format!("grpc {address}")
        } else {
            format!("grpc {address} service {service:?}")
        };
        let check = Box::new(HealthCheck::new(&address.to_string(), service));
        let out = check.initial_bytes();
        Conversation::open(address, name, Speech::Grpc { check }, out)
    }

    fn open(
        address: SocketAddr,
        name: String,
        speech: Speech,
        out: Vec<u8>,
    ) -> Result<Conversation, String> {
        let stream = TcpStream::connect(address).map_err(|e| connect_failed(address, &e))?;
        Ok(Conversation {
            stream,
            address,
            name,
            speech,
            connected: false,
            out,
            written: 0,
            received: 0,
        })
    }

    /// The socket, to register with the poll.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Do every read and write possible now; `scratch` is a read buffer.
    pub fn drive(&mut self, scratch: &mut [u8]) -> Turn {
        if !self.connected {
            match self.check_connected() {
                Ok(true) => self.connected = true,
                Ok(false) => return Turn::Waiting,
                Err(e) => return Turn::fail(connect_failed(self.address, &e)),
            }
            if let Speech::Tcp = self.speech {
                return Turn::Decided {
                    ok: true,
                    message: format!("connected to {}", self.address),
                    drain: false,
                };
            }
        }
        if let Err(e) = self.flush() {
            return Turn::fail(format!("{}: sending the request: {e}", self.name));
        }
        loop {
            let n = match self.stream.read(scratch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Turn::Waiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Turn::fail(format!("{}: reading the answer: {e}", self.name)),
            };
            if n == 0 {
                return self.at_eof();
            }
            self.received = self.received.saturating_add(n);
            if let Some(turn) = self.hear(scratch.get(..n).unwrap_or_default()) {
                return turn;
            }
            if let Err(e) = self.flush() {
                return Turn::fail(format!("{}: sending: {e}", self.name));
            }
        }
    }

    /// After an http answer: read and throw away what is left, to EOF. True
    /// once done (EOF, an error, or [`MAX_DRAIN`] bytes): then close.
    pub fn drain(&mut self, scratch: &mut [u8]) -> bool {
        self.received = 0;
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return true,
                Ok(n) => {
                    self.received = self.received.saturating_add(n);
                    if self.received > MAX_DRAIN {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }

    /// The failure message of an attempt cut off after `timeout`: whether it
    /// got as far as a connection, and whether anything came back.
    pub fn timed_out(&self, timeout: Duration) -> String {
        let after = span(timeout);
        if !self.connected {
            format!("connect {}: timed out after {after}", self.address)
        } else if self.received == 0 {
            format!("{}: connected, but no answer within {after}", self.name)
        } else {
            format!(
                "{}: answer incomplete after {after} ({} bytes came)",
                self.name, self.received
            )
        }
    }

    /// `Ok(true)` once connected, `Ok(false)` while connecting. A peer
    /// address means connected (the usual case on loopback: one system call);
    /// only without one does the pending error say whether it failed.
    fn check_connected(&self) -> io::Result<bool> {
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e)
                if e.kind() == io::ErrorKind::NotConnected
                    || e.raw_os_error() == Some(libc::EINPROGRESS) =>
            {
                match self.stream.take_error()? {
                    Some(e) => Err(e),
                    None => Ok(false),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Write what is queued, as far as the socket takes it.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(rest) = self.out.get(self.written..).filter(|r| !r.is_empty()) {
            match self.stream.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Feed answer bytes to the codec; `Some` once decided.
    fn hear(&mut self, bytes: &[u8]) -> Option<Turn> {
        match &mut self.speech {
            Speech::Tcp => None,
            Speech::Http { parser } => http_turn(&self.name, parser.feed(bytes)),
            Speech::Grpc { check } => {
                let step = check.feed(bytes);
                self.out.extend_from_slice(&step.send);
                step.outcome.map(|o| grpc_turn(&self.name, &o))
            }
        }
    }

    fn at_eof(&mut self) -> Turn {
        match &mut self.speech {
            Speech::Tcp => Turn::fail(format!("{}: connection closed", self.address)),
            Speech::Http { parser } => http_turn(&self.name, parser.finish())
                .unwrap_or_else(|| Turn::fail(format!("{}: connection closed", self.name))),
            Speech::Grpc { check } => grpc_turn(&self.name, &check.finish()),
        }
    }
}

/// `connect 127.0.0.1:5432: Connection refused (os error 111)`.
fn connect_failed(address: SocketAddr, e: &io::Error) -> String {
    format!("connect {address}: {e}")
}

fn http_turn(name: &str, progress: Progress<Status, http1::ResponseError>) -> Option<Turn> {
    match progress {
        Progress::NeedMore => None,
        Progress::Done(status) => {
            let ok = http1::is_success(status.code);
            let mut said = format!("HTTP {}", status.code);
            let reason = bounded(status.reason.trim(), MAX_REASON);
            if !reason.is_empty() {
                said.push(' ');
                said.push_str(reason);
            }
            let message = if ok {
                said
            } else if (300..400).contains(&status.code) {
                format!("{name}: {said} (a redirect; the probe does not follow it)")
            } else {
                format!("{name}: {said}")
            };
            Some(Turn::Decided {
                ok,
                message,
                drain: true,
            })
        }
        Progress::Failed(error) => Some(Turn::fail(format!("{name}: {error}"))),
    }
}

fn grpc_turn(name: &str, outcome: &Outcome) -> Turn {
    match outcome {
        Outcome::Serving => Turn::Decided {
            ok: true,
            message: "SERVING".to_string(),
            drain: false,
        },
        Outcome::Failed(failure) => Turn::fail(format!("{name}: {failure}")),
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn bounded(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}
