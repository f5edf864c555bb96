//! The receiving side of the health check: connection and stream 1 state, fed one
//! whole frame at a time by [`super::HealthCheck::feed`], deciding the outcome.
//!
//! Read first: gRPC's PROTOCOL-HTTP2.md ("Responses"), RFC 9113 §3.4 (the
//! server's preface is SETTINGS), §6.10 (CONTINUATION), §8.1 (interim 1xx
//! responses, trailers). Everything here only records facts and sets
//! `outcome` once; it never sends anything but ACKs into `send`.

use super::protobuf::health_status;
use super::{
    FIRST_BYTES, Failure, HEADER_TABLE_SIZE, MAX_HEADER_BLOCK, MAX_HEADER_LIST_SIZE,
    MAX_MESSAGE_SIZE, Outcome, STREAM, not_http2,
};
use crate::codec::hpack::{Decoder, Header};
use crate::codec::http2::{DEFAULT_WINDOW, Frame, FrameError, FrameHeader, error_code, frame_type};

/// A header block waiting for its CONTINUATION frames.
#[derive(Debug)]
pub(super) struct PendingBlock {
    end_stream: bool,
    pub(super) block: Vec<u8>,
}

/// Connection and stream 1 state, everything but the frame reader.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) decoder: Decoder,
    /// The server's first bytes, kept to describe a peer that is not HTTP/2.
    pub(super) first_bytes: Vec<u8>,
    /// The server's preface SETTINGS has arrived.
    pub(super) settings_seen: bool,
    /// The peer is not HTTP/2 and sends text: collecting its first line (up to
    /// a newline, 64 bytes or EOF) so the message shows it whole.
    pub(super) awaiting_line: bool,
    /// Final response headers arrived; DATA and trailers may follow.
    pub(super) body_started: bool,
    pub(super) pending: Option<PendingBlock>,
    /// The length-prefixed response message, as received.
    pub(super) body: Vec<u8>,
    /// DATA bytes (padding included) received, against the initial window.
    pub(super) received: usize,
    /// A GOAWAY that still lets stream 1 finish arrived.
    pub(super) goaway: bool,
    pub(super) send: Vec<u8>,
    pub(super) outcome: Option<Outcome>,
}

impl Exchange {
    pub(super) fn new() -> Exchange {
        Exchange {
            decoder: Decoder::new(HEADER_TABLE_SIZE, MAX_HEADER_LIST_SIZE),
            first_bytes: Vec::new(),
            settings_seen: false,
            awaiting_line: false,
            body_started: false,
            pending: None,
            body: Vec::new(),
            received: 0,
            goaway: false,
            send: Vec::new(),
            outcome: None,
        }
    }

    pub(super) fn fail(&mut self, failure: Failure) {
        if self.outcome.is_none() {
            self.outcome = Some(Outcome::Failed(failure));
        }
    }

    fn protocol(&mut self, what: impl Into<String>) {
        self.fail(Failure::Protocol(what.into()));
    }

    pub(super) fn remember(&mut self, input: &[u8]) {
        if !self.settings_seen {
            let room = FIRST_BYTES - self.first_bytes.len();
            self.first_bytes
                .extend_from_slice(&input[..room.min(input.len())]);
        }
    }

    /// The peer's first frame was invalid or not SETTINGS: it is not HTTP/2.
    /// A text answer (HTTP/1, a banner) gets its whole first line into the
    /// message, however the bytes were split; binary is reported at once.
    fn not_http2(&mut self) {
        self.awaiting_line = self
            .first_bytes
            .iter()
            .all(|&b| b.is_ascii_graphic() || b" \t\r\n".contains(&b));
        self.check_line();
    }

    pub(super) fn check_line(&mut self) {
        let complete = self.first_bytes.contains(&b'\n') || self.first_bytes.len() == FIRST_BYTES;
        if complete || !self.awaiting_line {
            self.fail(not_http2(&self.first_bytes));
        }
    }

    /// A frame that is not valid HTTP/2: a protocol error from an HTTP/2 peer
    /// (past its SETTINGS, or failing inside what is shaped as SETTINGS), else
    /// a sign that the peer speaks something else.
    pub(super) fn frame_error(&mut self, error: FrameError) {
        let settings_shaped = self.first_bytes.get(3) == Some(&frame_type::SETTINGS);
        if self.settings_seen || settings_shaped {
            self.protocol(error.to_string());
        } else {
            self.not_http2();
        }
    }

    pub(super) fn on_frame(&mut self, header: &FrameHeader, payload: &[u8]) {
        let frame = match Frame::parse(header, payload) {
            Ok(frame) => frame,
            Err(error) => return self.frame_error(error),
        };
        if !self.settings_seen && !matches!(frame, Frame::Settings { ack: false, .. }) {
            if matches!(frame, Frame::Unknown { .. }) {
                return self.not_http2();
            }
            return self.protocol(format!(
                "the server's first frame is type {}, not SETTINGS",
                header.kind
            ));
        }
        if self.pending.is_some() {
            return self.on_continuation(frame);
        }
        match frame {
            Frame::Settings { ack: false, .. } => {
                self.settings_seen = true;
                Frame::Settings {
                    ack: true,
                    params: &[],
                }
                .write(&mut self.send);
            }
            Frame::Ping {
                ack: false,
                payload,
            } => {
                Frame::Ping { ack: true, payload }.write(&mut self.send);
            }
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
                ..
            } => {
                if stream != STREAM {
                    return self.protocol(format!("HEADERS on stream {stream}, not ours"));
                }
                if end_headers {
                    self.on_header_block(block, end_stream);
                } else {
                    self.pending = Some(PendingBlock {
                        end_stream,
                        block: block.to_vec(),
                    });
                }
            }
            Frame::Continuation { .. } => self.protocol("CONTINUATION without HEADERS"),
            Frame::Data {
                stream,
                end_stream,
                data,
                ..
            } => self.on_data(stream, header.length, data, end_stream),
            Frame::RstStream { stream, code } if stream == STREAM => {
                self.fail(Failure::Reset { code });
            }
            Frame::RstStream { stream, .. } => {
                self.protocol(format!("RST_STREAM on stream {stream}, not ours"));
            }
            Frame::GoAway {
                last_stream,
                code,
                debug,
            } => {
                if code != error_code::NO_ERROR || last_stream < STREAM {
                    let debug = String::from_utf8_lossy(&debug[..debug.len().min(200)]);
                    self.fail(Failure::GoAway {
                        code,
                        debug: debug.escape_debug().to_string(),
                    });
                }
                self.goaway = true;
            }
            Frame::PushPromise { .. } => self.protocol("PUSH_PROMISE although push is disabled"),
            Frame::Settings { ack: true, .. }
            | Frame::Ping { ack: true, .. }
            | Frame::WindowUpdate { .. }
            | Frame::Priority { .. }
            | Frame::Unknown { .. } => {}
        }
    }

    /// §6.10: while a header block is open, only its CONTINUATIONs may come.
    fn on_continuation(&mut self, frame: Frame<'_>) {
        let Frame::Continuation {
            stream: STREAM,
            end_headers,
            block,
        } = frame
        else {
            return self.protocol("a header block interrupted before END_HEADERS");
        };
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        if pending.block.len() + block.len() > MAX_HEADER_BLOCK {
            return self.protocol(format!("header block larger than {MAX_HEADER_BLOCK} bytes"));
        }
        pending.block.extend_from_slice(block);
        if end_headers {
            self.on_header_block(&pending.block, pending.end_stream);
        } else {
            self.pending = Some(pending);
        }
    }

    fn on_header_block(&mut self, block: &[u8], end_stream: bool) {
        let list = match self.decoder.decode(block) {
            Ok(list) => list,
            Err(error) => return self.protocol(format!("{error} (COMPRESSION_ERROR)")),
        };
        if self.body_started {
            if !end_stream {
                return self.protocol("trailers without END_STREAM");
            }
            if list.iter().any(|h| h.name.starts_with(b":")) {
                return self.protocol("pseudo-header in trailers");
            }
            return self.on_trailers(&list);
        }
        let Some(status) = find(&list, ":status") else {
            return self.protocol("response headers without :status");
        };
        let status = match (status.len(), parse_decimal(status)) {
            (3, Some(status @ 100..=999)) => status as u16,
            _ => {
                let shown = String::from_utf8_lossy(status).escape_debug().to_string();
                return self.protocol(format!(":status {shown:?} is not a status code"));
            }
        };
        if (100..200).contains(&status) {
            if end_stream {
                self.protocol("an informational response ends the stream");
            }
            return;
        }
        if status != 200 {
            return self.fail(Failure::HttpStatus(status));
        }
        match find(&list, "content-type") {
            Some(ct) if is_grpc_content_type(ct) => {}
            None if end_stream => {}
            other => {
                let shown = other.map_or("none".into(), |ct| shorten(ct, 64));
                return self.fail(Failure::NotGrpc {
                    content_type: shown,
                });
            }
        }
        self.body_started = true;
        if end_stream {
            self.on_trailers(&list);
        }
    }

    fn on_data(&mut self, stream: u32, frame_len: usize, data: &[u8], end_stream: bool) {
        if stream != STREAM {
            return self.protocol(format!("DATA on stream {stream}, not ours"));
        }
        if !self.body_started {
            return self.protocol("DATA before the response headers");
        }
        self.received += frame_len;
        if self.received > DEFAULT_WINDOW as usize {
            return self.protocol("more DATA than the flow-control window (FLOW_CONTROL_ERROR)");
        }
        if self.body.len() + data.len() > 5 + MAX_MESSAGE_SIZE {
            return self.protocol(format!(
                "response message larger than {MAX_MESSAGE_SIZE} bytes"
            ));
        }
        self.body.extend_from_slice(data);
        if let &[compressed, a, b, c, d, ..] = self.body.as_slice() {
            let len = u32::from_be_bytes([a, b, c, d]) as usize;
            if compressed != 0 {
                return self.protocol("compressed response message (none was offered)");
            }
            if len > MAX_MESSAGE_SIZE {
                return self.protocol(format!("response message of {len} bytes"));
            }
            if self.body.len() > 5 + len {
                return self.protocol("more than one response message");
            }
        }
        if end_stream {
            self.protocol("the response ended without trailers (no grpc-status)");
        }
    }

    fn on_trailers(&mut self, list: &[Header]) {
        let Some(code) = find(list, "grpc-status") else {
            return self.protocol("the response ended without grpc-status");
        };
        let Some(code) = parse_decimal(code).and_then(|c| u32::try_from(c).ok()) else {
            return self.protocol("grpc-status is not a number");
        };
        if code != 0 {
            let message = find(list, "grpc-message").map_or(String::new(), percent_decode);
            return self.fail(Failure::GrpcStatus { code, message });
        }
        let message = match self.body.as_slice() {
            [] => return self.protocol("grpc-status 0 without a response message"),
            [0, a, b, c, d, rest @ ..]
                if u32::from_be_bytes([*a, *b, *c, *d]) as usize == rest.len() =>
            {
                rest
            }
            _ => return self.protocol("the response message is cut short"),
        };
        let outcome = match health_status(message) {
            Ok(1) => Outcome::Serving,
            Ok(0) => Outcome::Failed(Failure::StatusUnknown),
            Ok(2) => Outcome::Failed(Failure::NotServing),
            Ok(3) => Outcome::Failed(Failure::ServiceUnknown),
            Ok(other) => Outcome::Failed(Failure::UnrecognizedStatus(other)),
            Err(what) => Outcome::Failed(Failure::Protocol(format!(
                "malformed HealthCheckResponse: {what}"
            ))),
        };
        self.outcome = Some(outcome);
    }
}

fn find<'h>(list: &'h [Header], name: &str) -> Option<&'h [u8]> {
    list.iter()
        .find(|h| h.name == name.as_bytes())
        .map(|h| h.value.as_slice())
}

/// ASCII digits only (no sign, no spaces), at most 10 of them.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// `application/grpc`, optionally followed by `+format` or `;parameters`.
fn is_grpc_content_type(value: &[u8]) -> bool {
    let rest = value.strip_prefix(b"application/grpc");
    matches!(rest, Some([] | [b'+' | b';', ..]))
}

/// Lossy UTF-8, control characters escaped, at most `max` characters.
fn shorten(bytes: &[u8], max: usize) -> String {
    let text: String = String::from_utf8_lossy(bytes).chars().take(max).collect();
    text.escape_debug().to_string()
}

/// `grpc-message` is percent-encoded UTF-8 (gRPC PROTOCOL-HTTP2.md); a `%` not
/// followed by two hex digits stays as it is.
pub(super) fn percent_decode(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&byte) = value.get(i) {
        let hex = value
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    shorten(&out, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%20b"), "a b");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%4"), "%4");
        assert_eq!(percent_decode(b"%C3%A9"), "é");
        assert_eq!(percent_decode(b"%FF"), "\u{fffd}");
        assert_eq!(percent_decode(b"tab%09"), "tab\\t");
        assert_eq!(percent_decode(&[b'x'; 500]).len(), 200);
    }
}
