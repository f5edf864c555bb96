//! The `grpc` probe (SPEC §4): one `grpc.health.v1.Health/Check` call over
//! cleartext HTTP/2 with prior knowledge (h2c, no Upgrade, no TLS), as a sans-IO
//! client: [`HealthCheck::initial_bytes`] to write after connecting,
//! [`HealthCheck::feed`] with whatever the socket reads, [`HealthCheck::finish`]
//! at EOF. No socket, no clock: the runtime owns both, and the probe's timeout.
//!
//! Read first: gRPC's PROTOCOL-HTTP2.md (request and response shapes,
//! Trailers-Only), `grpc/health/v1/health.proto`, then RFC 9113 §3.4 (preface),
//! §5.1 (stream states), §6.9 (flow control). The frames are [`super::http2`],
//! the headers [`super::hpack`]; here: the public API and the request;
//! `exchange`: the receiving state machine; `protobuf`: the two messages.
//!
//! The conversation: we send the preface, our SETTINGS, HEADERS for
//! `POST /grpc.health.v1.Health/Check` on stream 1 and one DATA frame with the
//! length-prefixed `HealthCheckRequest { service }`, ending the stream. The server
//! must start with SETTINGS (anything else is "not an HTTP/2 server"); we ACK its
//! SETTINGS and PINGs. The answer is response HEADERS (`:status` 200,
//! `content-type: application/grpc...`), one message, trailers with
//! `grpc-status`; or Trailers-Only (one HEADERS with END_STREAM). 1xx interim
//! headers are skipped. The outcome is decided when stream 1 ends, or at the
//! first thing that makes success impossible (RST_STREAM, a GOAWAY that excludes
//! stream 1 or carries an error, a non-200 status, a protocol error).
//!
//! Bounds (nothing grows with input): one frame buffered (9 + 16384 bytes);
//! a header block of at most [`MAX_HEADER_BLOCK`] bytes across CONTINUATIONs,
//! decoding to at most [`MAX_HEADER_LIST_SIZE`] (advertised); an HPACK table of
//! [`HEADER_TABLE_SIZE`] (advertised); one response message of at most
//! [`MAX_MESSAGE_SIZE`]; 64 bytes kept to describe a non-HTTP/2 peer; in total,
//! the bytes to send are never more than the bytes fed (an ACK answers each
//! SETTINGS or PING, and is no longer than it).
//!
//! Flow control: we never send WINDOW_UPDATE. A compliant server cannot send more
//! than the initial 65535-byte windows without one, our answer fits easily, and
//! more DATA than that is reported as a FLOW_CONTROL_ERROR. Our own request is
//! sent at once against the default windows (the body is the service name plus
//! at most 10 bytes), so a service name must stay well under 64 KiB; config
//! validation should bound it (a longer one only makes the server fail the call).
//! Deliberately not implemented: server push (disabled by SETTINGS_ENABLE_PUSH=0;
//! PUSH_PROMISE is a protocol error), priorities (ignored), compression of the
//! message (we send no `grpc-accept-encoding`, so a compressed answer is an
//! error), a polite GOAWAY before closing (the caller just closes).

use std::fmt;

use super::hpack::{self, Name, index};
use super::http2::{
    DEFAULT_MAX_FRAME_SIZE, Frame, FrameReader, PREFACE, error_code, setting, settings_payload,
};
use exchange::Exchange;
use protobuf::request_message;

/// The HPACK table limit we advertise (also the RFC default).
pub const HEADER_TABLE_SIZE: usize = 4096;
/// The header list limit we advertise and enforce.
pub const MAX_HEADER_LIST_SIZE: usize = 16_384;
/// The most header block bytes (HEADERS + CONTINUATIONs) we collect.
pub const MAX_HEADER_BLOCK: usize = 32_768;
/// The largest response message accepted (a real `HealthCheckResponse` is 2 bytes).
pub const MAX_MESSAGE_SIZE: usize = 4096;
/// The method path of the standard health check.
pub const PATH: &str = "/grpc.health.v1.Health/Check";

/// Our one stream.
const STREAM: u32 = 1;
/// How many of the peer's first bytes are kept to describe a non-HTTP/2 answer.
const FIRST_BYTES: usize = 64;

/// What the health check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `HealthCheckResponse.status` is SERVING.
    Serving,
    Failed(Failure),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Serving => write!(f, "SERVING"),
            Outcome::Failed(failure) => failure.fmt(f),
        }
    }
}

/// Why the check did not answer SERVING; `Display` gives the message for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotServing,
    ServiceUnknown,
    /// Status UNKNOWN (0), which is also what an empty response means.
    StatusUnknown,
    /// A status number health.proto does not define.
    UnrecognizedStatus(i32),
    /// A `grpc-status` other than 0 (OK), with the decoded `grpc-message`.
    GrpcStatus {
        code: u32,
        message: String,
    },
    /// An HTTP `:status` other than 200.
    HttpStatus(u16),
    /// Status 200 but a `content-type` that is not gRPC.
    NotGrpc {
        content_type: String,
    },
    /// GOAWAY with an error, or one that says stream 1 will not be processed.
    GoAway {
        code: u32,
        debug: String,
    },
    /// RST_STREAM on stream 1.
    Reset {
        code: u32,
    },
    /// A malformed frame, header block, message or sequence; says what.
    Protocol(String),
    /// The peer does not speak HTTP/2: the first line it sent (at most 64
    /// bytes, without the line end).
    NotHttp2 {
        first_bytes: Vec<u8>,
    },
    /// EOF before the answer: where we were, and whether a GOAWAY came first.
    Closed {
        before: &'static str,
        after_goaway: bool,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotServing => write!(f, "the service is NOT_SERVING"),
            Failure::ServiceUnknown => write!(f, "the server reports SERVICE_UNKNOWN"),
            Failure::StatusUnknown => write!(f, "the service reports status UNKNOWN"),
            Failure::UnrecognizedStatus(n) => write!(f, "the service reports unknown status {n}"),
            Failure::GrpcStatus { code, message } => {
                write!(f, "grpc-status {code} ({})", status_name(*code))?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                // What these mean for Health/Check (health.proto).
                match code {
                    5 => write!(f, " (the server does not know this service)")?,
                    12 => write!(f, " (the server has no grpc.health.v1.Health service)")?,
                    _ => {}
                }
                Ok(())
            }
            Failure::HttpStatus(status) => write!(f, "HTTP status {status}, expected 200"),
            Failure::NotGrpc { content_type } => {
                write!(f, "not a gRPC response: content-type {content_type:?}")
            }
            Failure::GoAway { code, debug } => {
                write!(f, "the server sent GOAWAY ({})", error_code::name(*code))?;
                if !debug.is_empty() {
                    write!(f, ": {debug}")?;
                }
                Ok(())
            }
            Failure::Reset { code } => {
                write!(f, "the server reset the call ({})", error_code::name(*code))
            }
            Failure::Protocol(what) => write!(f, "HTTP/2 protocol error: {what}"),
            Failure::NotHttp2 { first_bytes } => describe_not_http2(f, first_bytes),
            Failure::Closed {
                before,
                after_goaway,
            } => {
                write!(f, "the connection closed before {before}")?;
                if *after_goaway {
                    write!(f, " (after GOAWAY)")?;
                }
                Ok(())
            }
        }
    }
}

/// The failure for a peer whose first bytes are not HTTP/2: keeps their first line.
fn not_http2(first_bytes: &[u8]) -> Failure {
    let line = first_bytes
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Failure::NotHttp2 {
        first_bytes: line.to_vec(),
    }
}

fn describe_not_http2(f: &mut fmt::Formatter<'_>, line: &[u8]) -> fmt::Result {
    if let [0x15 | 0x16, 0x03, ..] = line {
        return write!(
            f,
            "the server speaks TLS; the grpc probe uses cleartext HTTP/2 (h2c)"
        );
    }
    if line.starts_with(b"HTTP/") {
        write!(
            f,
            "the server answered in HTTP/1, not HTTP/2: \"{}\"",
            line.escape_ascii()
        )
    } else {
        write!(
            f,
            "not an HTTP/2 server: it sent \"{}\"",
            line.escape_ascii()
        )
    }
}

/// The gRPC status code names (gRPC's statuscodes.md).
fn status_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown code")
}

/// What one [`HealthCheck::feed`] produced: bytes to write (ACKs), and the
/// outcome once known. After an outcome the check is over: close the socket
/// (writing `send` first is polite but not required).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    pub send: Vec<u8>,
    pub outcome: Option<Outcome>,
}

/// One health check on one fresh connection.
#[derive(Debug)]
pub struct HealthCheck {
    authority: String,
    service: String,
    reader: FrameReader,
    exchange: Exchange,
}

impl HealthCheck {
    /// A check of `service` ("" asks about the server as a whole), sent with
    /// `:authority` set to `authority` (the probe's `host:port`).
    pub fn new(authority: &str, service: &str) -> HealthCheck {
        HealthCheck {
            authority: authority.to_string(),
            service: service.to_string(),
            reader: FrameReader::new(DEFAULT_MAX_FRAME_SIZE),
            exchange: Exchange::new(),
        }
    }

    /// Everything the client sends, to write once connected: the preface, our
    /// SETTINGS, the request HEADERS (+CONTINUATION if long) and DATA.
    pub fn initial_bytes(&self) -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        let settings = settings_payload(&[
            (setting::HEADER_TABLE_SIZE, HEADER_TABLE_SIZE as u32),
            (setting::ENABLE_PUSH, 0),
            (setting::MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_SIZE as u32),
        ]);
        Frame::Settings {
            ack: false,
            params: &settings,
        }
        .write(&mut out);
        let block = request_headers(&self.authority);
        let mut chunks = block.chunks(DEFAULT_MAX_FRAME_SIZE).peekable();
        let first = chunks.next().unwrap_or_default();
        Frame::Headers {
            stream: STREAM,
            end_stream: false,
            end_headers: chunks.peek().is_none(),
            priority: None,
            block: first,
            padding: None,
        }
        .write(&mut out);
        while let Some(block) = chunks.next() {
            let end_headers = chunks.peek().is_none();
            Frame::Continuation {
                stream: STREAM,
                end_headers,
                block,
            }
            .write(&mut out);
        }
        let message = request_message(&self.service);
        let mut chunks = message.chunks(DEFAULT_MAX_FRAME_SIZE).peekable();
        while let Some(data) = chunks.next() {
            let end_stream = chunks.peek().is_none();
            Frame::Data {
                stream: STREAM,
                end_stream,
                data,
                padding: None,
            }
            .write(&mut out);
        }
        out
    }

    /// Bytes read from the server, in any split. Returns ACKs to write and, once
    /// known, the outcome (returned again by every later call).
    pub fn feed(&mut self, mut input: &[u8]) -> Step {
        let exchange = &mut self.exchange;
        if exchange.outcome.is_none() {
            exchange.remember(input);
            if exchange.awaiting_line {
                exchange.check_line();
            }
        }
        while exchange.outcome.is_none() && !exchange.awaiting_line && !input.is_empty() {
            match self.reader.fill(input) {
                Ok(taken) => input = &input[taken..],
                Err(error) => {
                    exchange.frame_error(error);
                    break;
                }
            }
            if let Some((header, payload)) = self.reader.frame() {
                exchange.on_frame(&header, payload);
                self.reader.clear();
            }
        }
        Step {
            send: std::mem::take(&mut exchange.send),
            outcome: exchange.outcome.clone(),
        }
    }

    /// The server closed the connection (EOF): the outcome, which is a failure
    /// unless the answer was already complete.
    pub fn finish(&mut self) -> Outcome {
        let exchange = &mut self.exchange;
        if let Some(outcome) = &exchange.outcome {
            return outcome.clone();
        }
        // An HTTP/2 server's first byte is 0 (a SETTINGS frame is short).
        let failure =
            if exchange.awaiting_line || exchange.first_bytes.first().is_some_and(|&b| b != 0) {
                not_http2(&exchange.first_bytes)
            } else {
                let before = if exchange.first_bytes.is_empty() {
                    "the server sent anything"
                } else if !exchange.settings_seen {
                    "the server's SETTINGS"
                } else if exchange.body_started {
                    "the response trailers"
                } else {
                    "the response headers"
                };
                Failure::Closed {
                    before,
                    after_goaway: exchange.goaway,
                }
            };
        let outcome = Outcome::Failed(failure);
        exchange.outcome = Some(outcome.clone());
        outcome
    }

    /// Bytes held now, for the bound checks in tests.
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        let e = &self.exchange;
        self.reader.buffered()
            + e.pending.as_ref().map_or(0, |p| p.block.len())
            + e.body.len()
            + e.first_bytes.len()
            + e.decoder.table_size()
            + e.send.len()
    }
}

/// The request header block: POST and http from the static table, the rest as
/// literals the server must not index (they are sent once per connection).
fn request_headers(authority: &str) -> Vec<u8> {
    let user_agent = concat!("tend/", env!("CARGO_PKG_VERSION"));
    let mut block = Vec::new();
    hpack::encode_indexed(&mut block, index::METHOD_POST);
    hpack::encode_indexed(&mut block, index::SCHEME_HTTP);
    hpack::encode_literal(
        &mut block,
        Name::Indexed(index::PATH),
        PATH.as_bytes(),
        true,
    );
    hpack::encode_literal(
        &mut block,
        Name::Indexed(index::AUTHORITY),
        authority.as_bytes(),
        true,
    );
    hpack::encode_literal(
        &mut block,
        Name::Indexed(index::CONTENT_TYPE),
        b"application/grpc",
        true,
    );
    hpack::encode_literal(&mut block, Name::Literal(b"te"), b"trailers", true);
    hpack::encode_literal(
        &mut block,
        Name::Indexed(index::USER_AGENT),
        user_agent.as_bytes(),
        true,
    );
    block
}

mod exchange;
mod protobuf;

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod tests;
