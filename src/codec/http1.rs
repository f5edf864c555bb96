//! HTTP/1.1 message heads (RFC 9112), both ways round: the client side of the
//! `http` readiness/liveness probe (SPEC §4) and the server side of the metrics
//! endpoint (SPEC §9).
//!
//! Client: [`get_request`] builds the probe's request; [`ResponseParser`] reads
//! the status line (§4) and header section (§5) of the answer, skipping interim
//! 1xx responses (RFC 9110 §15.2), and reports the final status. The body is
//! never read: the probe only needs the status, and the request says
//! `Connection: close`. What it accepts, beyond the strict grammar:
//! - a bare LF as line end (RFC 9112 §2.2 allows it);
//! - a status line without the space before an empty reason (`HTTP/1.1 200`);
//! - any `HTTP/1.x` version; obsolete line folding; whitespace before a header
//!   colon (removed, as a proxy must); any field value bytes but NUL and CR.
//!
//! It rejects, each with a short message: a first byte of a TLS record (an
//! https port), a first line not starting `HTTP/` (SSH banners, HTTP/0.9,
//! garbage), any other major version, a status code outside 100–599, NUL
//! bytes, a bare CR (§2.2), a header line without a colon or with an invalid
//! name, a head over [`MAX_RESPONSE_HEAD`] bytes (all interim heads count),
//! and EOF before the head is complete.
//!
//! Server: [`RequestParser`] reads one request head (request line §3, fields §5)
//! strictly, as a server must: single spaces in the request line, `HTTP/1.0` or
//! `1.1` (`1.x` is read as 1.1; other majors are 505), no whitespace before a
//! colon, no obsolete folding, `Host` required once in 1.1 (§3.2), no bare CR,
//! no control characters, at most [`MAX_REQUEST_HEAD`] bytes. Empty lines
//! before the request line are skipped (§2.2). It takes no body: a non-zero
//! `Content-Length` is 413 and any `Transfer-Encoding` is 501, so there is no
//! chunked decoding and no request smuggling to get wrong. Bytes after the head
//! (pipelined requests) are ignored: every response closes the connection.
//! [`response`] builds the answer, with `Content-Length` and `Connection: close`
//! (no `Date`: the codec has no clock).
//!
//! Both parsers are incremental: [`ResponseParser::feed`] and
//! [`RequestParser::feed`] take bytes in any split and the outcome does not
//! depend on the split (only the excerpt quoted in an error message may).
//! They hold at most one partial line, never more than their head bound, and
//! answer [`Progress::NeedMore`], [`Progress::Done`] or [`Progress::Failed`];
//! after that last answer they keep giving it.

use std::fmt;

/// The longest response head read (status line, fields and every interim head).
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The longest request head accepted (leading empty lines, request line, fields).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The probe's `User-Agent`.
pub const USER_AGENT: &str = concat!("tend/", env!("CARGO_PKG_VERSION"));

/// What a parser says after each piece of input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress<T, E> {
    /// The head is not complete yet: feed more bytes (or [`ResponseParser::finish`] at EOF).
    NeedMore,
    /// The head is complete; later input is ignored.
    Done(T),
    /// The input is not an acceptable message; later input is ignored.
    Failed(E),
}

/// The final status of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// 100–599. A 101 (Switching Protocols) is final: no HTTP follows it.
    pub code: u16,
    /// The reason phrase as sent (lossy UTF-8), possibly empty; for logs only.
    pub reason: String,
}

/// Whether a probe's status means healthy: any 2xx. Redirects are failures
/// (SPEC §4): a health endpoint that redirects is misconfigured.
pub fn is_success(code: u16) -> bool {
    (200..300).contains(&code)
}

/// The probe's request: `GET path HTTP/1.1` with `Host`, `User-Agent`,
/// `Accept` and `Connection: close`.
///
/// `host` is the URL's authority as it should appear in `Host` (`127.0.0.1:8080`,
/// `[::1]:80`, `localhost`); `path` is the URL's path and query (`/healthz?full=1`),
/// empty meaning `/`. Both are checked by config validation; here, defensively,
/// bytes that would break the request are dropped from `host` and
/// percent-encoded in `path`, so no input can inject a header line.
pub fn get_request(host: &str, path: &str) -> Vec<u8> {
    debug_assert!(host.bytes().all(is_visible), "host {host:?}");
    let mut out = Vec::with_capacity(96 + host.len() + path.len());
    out.extend_from_slice(b"GET ");
    if !path.starts_with('/') {
        out.push(b'/');
    }
    for byte in path.bytes() {
        if is_visible(byte) && byte != b'#' {
            out.push(byte);
        } else {
            out.extend_from_slice(format!("%{byte:02X}").as_bytes());
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend(host.bytes().filter(|&b| is_visible(b)));
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    out
}

/// Why a response was not accepted. `Display` gives the message for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The first byte was a TLS record type: the port speaks https.
    Tls,
    /// The first line does not start with `HTTP/`; holds an excerpt of it.
    NotHttp(String),
    /// The status line starts `HTTP/` but is malformed: (excerpt, what is wrong).
    BadStatusLine(String, &'static str),
    /// A header line is malformed: (excerpt, what is wrong).
    BadHeader(String, &'static str),
    /// A NUL byte in the head.
    NulByte,
    /// The head is longer than [`MAX_RESPONSE_HEAD`].
    HeadTooLong,
    /// EOF before any byte.
    ClosedBeforeResponse,
    /// EOF after some of the head but before its end.
    ClosedInHead,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Tls => {
                f.write_str("not an HTTP response: the server answered with TLS (an https port?)")
            }
            ResponseError::NotHttp(start) => {
                write!(f, "not an HTTP response: it starts with {start}")
            }
            ResponseError::BadStatusLine(line, why) => write!(f, "bad status line {line}: {why}"),
            ResponseError::BadHeader(line, why) => write!(f, "bad response header {line}: {why}"),
            ResponseError::NulByte => f.write_str("bad response: NUL byte in the head"),
            ResponseError::HeadTooLong => {
                write!(f, "response head longer than {MAX_RESPONSE_HEAD} bytes")
            }
            ResponseError::ClosedBeforeResponse => {
                f.write_str("connection closed before a response")
            }
            ResponseError::ClosedInHead => {
                f.write_str("connection closed in the middle of the response head")
            }
        }
    }
}

impl std::error::Error for ResponseError {}

/// Reads a response head incrementally. One parser per connection.
#[derive(Debug)]
pub struct ResponseParser {
    head: HeadParser<ResponseLines>,
}

/// The response grammar, told one line at a time.
#[derive(Debug, Default)]
struct ResponseLines {
    /// The current head's status, once its status line is read.
    status: Option<Status>,
    /// Any status line read, interim ones included (for the EOF message).
    seen_status_line: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    pub fn new() -> Self {
        ResponseParser {
            head: HeadParser::new(MAX_RESPONSE_HEAD, ResponseLines::default()),
        }
    }

    /// Takes the next bytes read from the connection (any amount, any split).
    pub fn feed(&mut self, bytes: &[u8]) -> Progress<Status, ResponseError> {
        self.head.feed(bytes)
    }

    /// The connection reached EOF. A complete head was already reported by
    /// [`feed`](Self::feed); anything else is now an error.
    pub fn finish(&mut self) -> Progress<Status, ResponseError> {
        let head = &mut self.head;
        if head.outcome.is_none() {
            let error = if head.grammar.seen_status_line || !head.lines.line.is_empty() {
                ResponseError::ClosedInHead
            } else {
                ResponseError::ClosedBeforeResponse
            };
            head.outcome = Some(Progress::Failed(error));
        }
        head.progress()
    }
}

impl Grammar for ResponseLines {
    type Done = Status;
    type Error = ResponseError;
    const NUL_BYTE: ResponseError = ResponseError::NulByte;
    const TOO_LONG: ResponseError = ResponseError::HeadTooLong;

    fn partial(&self, line: &[u8]) -> Result<(), ResponseError> {
        match self.status {
            None => check_response_start(line),
            Some(_) => Ok(()),
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<Status>, ResponseError> {
        let Some(status) = &self.status else {
            self.status = Some(parse_status_line(line)?);
            self.seen_status_line = true;
            return Ok(None);
        };
        if line.is_empty() {
            // The end of this head. An interim 1xx is followed by another head.
            let done = (status.code >= 200 || status.code == 101).then(|| status.clone());
            self.status = None;
            return Ok(done);
        }
        let bad = |why| Err(ResponseError::BadHeader(excerpt(line), why));
        if line.contains(&b'\r') {
            return bad("carriage return inside the line");
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            return Ok(None); // obs-fold: a continuation of the previous value, ignored
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return bad("expected \"name: value\"");
        };
        let name = trim_end_whitespace(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return bad("invalid field name");
        }
        Ok(None)
    }
}

/// The earliest checks on a status line, run as soon as its first bytes
/// arrive, so a TLS alert or an SSH banner fails at once rather than when the
/// probe times out.
fn check_response_start(line: &[u8]) -> Result<(), ResponseError> {
    match line.first() {
        // TLS record content types: 21 alert, 22 handshake.
        Some(0x15 | 0x16) => Err(ResponseError::Tls),
        _ if !b"HTTP/".starts_with(&line[..line.len().min(5)]) => {
            Err(ResponseError::NotHttp(excerpt(line)))
        }
        _ => Ok(()),
    }
}

/// `HTTP/1.x SP 3DIGIT [SP reason-phrase]` (RFC 9112 §4), line end removed.
fn parse_status_line(line: &[u8]) -> Result<Status, ResponseError> {
    check_response_start(line)?;
    let bad = |why| ResponseError::BadStatusLine(excerpt(line), why);
    let Some(rest) = line.strip_prefix(b"HTTP/") else {
        return Err(ResponseError::NotHttp(excerpt(line)));
    };
    let (major, rest) = match rest {
        [major @ b'0'..=b'9', b'.', b'0'..=b'9', rest @ ..] => (*major, rest),
        _ => return Err(bad("expected a version such as HTTP/1.1")),
    };
    if major != b'1' {
        return Err(bad("only HTTP/1.x is spoken here"));
    }
    let (code, rest) = match rest {
        [
            b' ',
            h @ b'0'..=b'9',
            t @ b'0'..=b'9',
            u @ b'0'..=b'9',
            rest @ ..,
        ] => {
            let digit = |d: &u8| u16::from(d - b'0');
            (digit(h) * 100 + digit(t) * 10 + digit(u), rest)
        }
        _ => return Err(bad("expected a three-digit status code after the version")),
    };
    if !(100..=599).contains(&code) {
        return Err(bad("status code outside 100-599"));
    }
    let reason = match rest {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(bad("expected a space after the status code")),
    };
    if reason
        .iter()
        .any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
    {
        return Err(bad("control character in the reason phrase"));
    }
    Ok(Status {
        code,
        reason: String::from_utf8_lossy(reason).into_owned(),
    })
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// A token, case-sensitive as sent (`GET`, `HEAD`, ...).
    pub method: String,
    /// The request-target as sent: visible ASCII only, not decoded.
    pub target: String,
    pub version: Version,
}

/// The request's protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    /// HTTP/1.1, and any later 1.x (answered as 1.1, RFC 9110 §6.2).
    Http11,
}

/// Why a request was refused. [`status`](Self::status) is the code to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    BadRequestLine(&'static str),
    BadHeader(&'static str),
    NulByte,
    /// A version other than 1.x (505).
    UnsupportedVersion,
    /// HTTP/1.1 without `Host`, or more than one `Host`.
    BadHost(&'static str),
    /// A `Content-Length` that is not a number.
    BadContentLength,
    /// A non-zero `Content-Length` (413).
    BodyNotAccepted,
    /// Any `Transfer-Encoding` (501).
    TransferEncoding,
    /// More than [`MAX_REQUEST_HEAD`] bytes (431).
    HeadTooLong,
}

impl RequestError {
    /// The response status for this refusal.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::BadRequestLine(_)
            | RequestError::BadHeader(_)
            | RequestError::NulByte
            | RequestError::BadHost(_)
            | RequestError::BadContentLength => 400,
            RequestError::BodyNotAccepted => 413,
            RequestError::HeadTooLong => 431,
            RequestError::TransferEncoding => 501,
            RequestError::UnsupportedVersion => 505,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::BadRequestLine(why) => write!(f, "bad request line: {why}"),
            RequestError::BadHeader(why) => write!(f, "bad request header: {why}"),
            RequestError::NulByte => f.write_str("NUL byte in the request head"),
            RequestError::UnsupportedVersion => f.write_str("only HTTP/1.x is spoken here"),
            RequestError::BadHost(why) => f.write_str(why),
            RequestError::BadContentLength => f.write_str("Content-Length is not a number"),
            RequestError::BodyNotAccepted => f.write_str("request bodies are not accepted"),
            RequestError::TransferEncoding => {
                f.write_str("Transfer-Encoding is not accepted (requests take no body)")
            }
            RequestError::HeadTooLong => {
                write!(f, "request head longer than {MAX_REQUEST_HEAD} bytes")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// Reads one request head incrementally. One parser per connection.
#[derive(Debug)]
pub struct RequestParser {
    head: HeadParser<RequestLines>,
}

/// The request grammar, told one line at a time.
#[derive(Debug, Default)]
struct RequestLines {
    request: Option<Request>,
    hosts: usize,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    pub fn new() -> Self {
        RequestParser {
            head: HeadParser::new(MAX_REQUEST_HEAD, RequestLines::default()),
        }
    }

    /// Takes the next bytes read from the connection (any amount, any split).
    pub fn feed(&mut self, bytes: &[u8]) -> Progress<Request, RequestError> {
        self.head.feed(bytes)
    }
}

impl Grammar for RequestLines {
    type Done = Request;
    type Error = RequestError;
    const NUL_BYTE: RequestError = RequestError::NulByte;
    const TOO_LONG: RequestError = RequestError::HeadTooLong;

    fn line(&mut self, line: &[u8]) -> Result<Option<Request>, RequestError> {
        let Some(request) = &self.request else {
            if !line.is_empty() {
                self.request = Some(parse_request_line(line)?);
            }
            return Ok(None);
        };
        if line.is_empty() {
            if request.version == Version::Http11 && self.hosts == 0 {
                return Err(RequestError::BadHost(
                    "HTTP/1.1 request without a Host header",
                ));
            }
            return Ok(Some(request.clone()));
        }
        let bad = |why| Err(RequestError::BadHeader(why));
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            return bad("obsolete line folding is not accepted");
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return bad("expected \"name: value\"");
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return bad("invalid field name (or whitespace before the colon)");
        }
        if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
            return bad("control character in a field value");
        }
        let value = trim_end_whitespace(trim_start_whitespace(value));
        if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
            if self.hosts > 1 {
                return Err(RequestError::BadHost("more than one Host header"));
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(RequestError::TransferEncoding);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(RequestError::BadContentLength);
            }
            if value.iter().any(|&b| b != b'0') {
                return Err(RequestError::BodyNotAccepted);
            }
        }
        Ok(None)
    }
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3), line end removed.
fn parse_request_line(line: &[u8]) -> Result<Request, RequestError> {
    let bad = RequestError::BadRequestLine;
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(
            "expected \"METHOD target HTTP/1.1\" with single spaces",
        ));
    };
    if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
        return Err(bad("invalid method"));
    }
    if target.is_empty() || !target.iter().all(|&b| is_visible(b)) {
        return Err(bad("invalid request target"));
    }
    let version = match version {
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0'..=b'9'] => Version::Http11,
        [b'H', b'T', b'T', b'P', b'/', b'0'..=b'9', b'.', b'0'..=b'9'] => {
            return Err(RequestError::UnsupportedVersion);
        }
        _ => return Err(bad("invalid HTTP version")),
    };
    Ok(Request {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        version,
    })
}

/// A whole response: status line, `Content-Type`, `Content-Length`,
/// `Connection: close`, then `body`.
pub fn response(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = response_head(status, reason, content_type, body.len());
    out.extend_from_slice(body);
    out
}

/// The head alone, for answering `HEAD` (same `Content-Length`, no body).
/// A status outside 100–599 becomes 500; characters that could end a line are
/// dropped from `reason` and `content_type` (both come from tend's code).
pub fn response_head(
    status: u16,
    reason: &str,
    content_type: &str,
    content_length: usize,
) -> Vec<u8> {
    debug_assert!((100..=599).contains(&status), "status {status}");
    debug_assert!(
        reason.bytes().chain(content_type.bytes()).all(is_text),
        "{reason:?} {content_type:?}"
    );
    let status = if (100..=599).contains(&status) {
        status
    } else {
        500
    };
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(format!("HTTP/1.1 {status} ").as_bytes());
    out.extend(reason.bytes().filter(|&b| is_text(b)));
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend(content_type.bytes().filter(|&b| is_text(b)));
    out.extend_from_slice(
        format!("\r\nContent-Length: {content_length}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    out
}

/// The standard reason phrase of the codes tend's endpoint answers with
/// (RFC 9110 §15); empty for others, which is valid.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// One side's grammar: checks each line of a head and says when it ended.
trait Grammar {
    type Done: Clone;
    type Error: Clone;
    const NUL_BYTE: Self::Error;
    const TOO_LONG: Self::Error;

    /// Checks the current line's bytes so far, before its end has arrived.
    fn partial(&self, _line: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }

    /// One complete line, line end removed; `Some` once the head is complete.
    fn line(&mut self, line: &[u8]) -> Result<Option<Self::Done>, Self::Error>;
}

/// The split-independent driver both parsers share. Every check looks only
/// at the bytes of the current line in order (the partial check, then NUL,
/// then the line's grammar at its end, then the bound), so any split of the
/// same input reaches the same outcome.
#[derive(Debug)]
struct HeadParser<G: Grammar> {
    lines: LineBuffer,
    grammar: G,
    outcome: Option<Progress<G::Done, G::Error>>,
}

impl<G: Grammar> HeadParser<G> {
    fn new(limit: usize, grammar: G) -> Self {
        HeadParser {
            lines: LineBuffer {
                line: Vec::new(),
                total: 0,
                limit,
            },
            grammar,
            outcome: None,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Progress<G::Done, G::Error> {
        while self.outcome.is_none() && !bytes.is_empty() {
            let (fitted, complete, rest) = self.lines.append(bytes);
            bytes = rest;
            self.outcome = match self.step(fitted, complete, rest.is_empty()) {
                Ok(None) => None,
                Ok(Some(done)) => Some(Progress::Done(done)),
                Err(error) => Some(Progress::Failed(error)),
            };
        }
        self.progress()
    }

    fn step(
        &mut self,
        fitted: &[u8],
        complete: bool,
        all_taken: bool,
    ) -> Result<Option<G::Done>, G::Error> {
        self.grammar.partial(&self.lines.line)?;
        if fitted.contains(&0) {
            return Err(G::NUL_BYTE);
        }
        if complete {
            let line = self.lines.take_line();
            let result = self.grammar.line(&line);
            self.lines.give_back(line);
            return result;
        }
        if !all_taken || self.lines.total >= self.lines.limit {
            return Err(G::TOO_LONG);
        }
        Ok(None)
    }

    fn progress(&self) -> Progress<G::Done, G::Error> {
        self.outcome.clone().unwrap_or(Progress::NeedMore)
    }
}

/// The current partial line of a head, and the byte count of the whole head so
/// far, which never passes `limit`: bytes beyond it are not stored.
#[derive(Debug)]
struct LineBuffer {
    line: Vec<u8>,
    total: usize,
    limit: usize,
}

impl LineBuffer {
    /// Appends `bytes` up to and including the first LF, and at most up to the
    /// limit. Returns (the bytes appended, whether they ended a line, the
    /// bytes not taken).
    fn append<'a>(&mut self, bytes: &'a [u8]) -> (&'a [u8], bool, &'a [u8]) {
        let room = self.limit - self.total;
        let (end, complete) = match bytes.iter().take(room).position(|&b| b == b'\n') {
            Some(lf) => (lf + 1, true),
            None => (bytes.len().min(room), false),
        };
        let (fitted, rest) = bytes.split_at(end);
        let needed = self.line.len() + fitted.len();
        if needed > self.line.capacity() {
            // Grow geometrically but never past the limit.
            let target = needed
                .max(self.line.capacity() * 2)
                .max(128)
                .min(self.limit);
            self.line.reserve_exact(target - self.line.len());
        }
        self.line.extend_from_slice(fitted);
        self.total += fitted.len();
        (fitted, complete, rest)
    }

    /// Takes the completed line without its LF and an optional CR before it;
    /// hand the buffer back with [`give_back`](Self::give_back).
    fn take_line(&mut self) -> Vec<u8> {
        let mut line = std::mem::take(&mut self.line);
        line.pop(); // the LF
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        line
    }

    fn give_back(&mut self, mut line: Vec<u8>) {
        line.clear();
        self.line = line;
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `VCHAR`: visible ASCII.
fn is_visible(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// What tend's own header values may contain: VCHAR, SP, HTAB.
fn is_text(b: u8) -> bool {
    is_visible(b) || b == b' ' || b == b'\t'
}

fn trim_start_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn trim_end_whitespace(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// A quoted, escaped excerpt of at most 40 characters (line end left out),
/// for error messages.
fn excerpt(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        if i == 40 {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
