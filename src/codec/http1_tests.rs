//! Tests of [`super`]: every split of valid and invalid heads, exact messages,
//! bounds, and fuzz loops over mutated messages.

use super::*;
use std::mem::discriminant;

type ResponseProgress = Progress<Status, ResponseError>;
type RequestProgress = Progress<Request, RequestError>;

/// A small deterministic xorshift64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Cut points splitting `len` bytes into random chunks (sorted, inside 0..len).
    fn cuts(&mut self, len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = (0..self.below(8)).map(|_| self.below(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }
}

fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        out.push(&input[start..cut]);
        start = cut;
    }
    out
}

/// Feeds `input` cut at `cuts`, then EOF if `eof`. Checks on the way that a
/// final answer sticks and the bounds hold.
fn respond(input: &[u8], cuts: &[usize], eof: bool) -> ResponseProgress {
    let mut parser = ResponseParser::new();
    let mut last = Progress::NeedMore;
    for piece in pieces(input, cuts) {
        let now = parser.feed(piece);
        if last != Progress::NeedMore {
            assert_eq!(now, last, "a final answer must not change");
        }
        assert!(parser.head.lines.line.len() <= MAX_RESPONSE_HEAD);
        assert!(parser.head.lines.line.capacity() <= MAX_RESPONSE_HEAD);
        assert!(parser.head.lines.total <= MAX_RESPONSE_HEAD);
        last = now;
    }
    if eof {
        let now = parser.finish();
        if last != Progress::NeedMore {
            assert_eq!(now, last, "EOF must not change a final answer");
        }
        last = now;
    }
    last
}

fn request(input: &[u8], cuts: &[usize]) -> RequestProgress {
    let mut parser = RequestParser::new();
    let mut last = Progress::NeedMore;
    for piece in pieces(input, cuts) {
        let now = parser.feed(piece);
        if last != Progress::NeedMore {
            assert_eq!(now, last, "a final answer must not change");
        }
        assert!(parser.head.lines.line.len() <= MAX_REQUEST_HEAD);
        assert!(parser.head.lines.line.capacity() <= MAX_REQUEST_HEAD);
        assert!(parser.head.lines.total <= MAX_REQUEST_HEAD);
        last = now;
    }
    last
}

/// Same outcome kind whatever the split; equal outcomes where no excerpt of
/// the input is quoted (an excerpt shows what had arrived when it failed).
fn same_outcome<T: PartialEq + std::fmt::Debug, E: PartialEq + std::fmt::Debug>(
    a: &Progress<T, E>,
    b: &Progress<T, E>,
    what: &str,
) {
    match (a, b) {
        (Progress::Failed(x), Progress::Failed(y)) => {
            assert_eq!(discriminant(x), discriminant(y), "{what}: {x:?} vs {y:?}")
        }
        _ => assert_eq!(a, b, "{what}"),
    }
}

/// Every cut of a short message into two; for a long one (the bound tests),
/// every cut near either end and every 251st in between, to keep debug builds quick.
fn cut_points(len: usize) -> Vec<usize> {
    if len <= 1024 {
        return (0..=len).collect();
    }
    (0..128)
        .chain((128..len - 128).step_by(251))
        .chain(len - 128..=len)
        .collect()
}

/// One piece, every cut into two, byte by byte, and random chunks: all agree.
fn every_split_of_response(input: &[u8], eof: bool) -> ResponseProgress {
    let whole = respond(input, &[], eof);
    for cut in cut_points(input.len()) {
        same_outcome(
            &respond(input, &[cut], eof),
            &whole,
            &format!("cut at {cut}"),
        );
    }
    let byte_by_byte: Vec<usize> = (1..input.len()).collect();
    same_outcome(&respond(input, &byte_by_byte, eof), &whole, "byte by byte");
    let mut rng = Rng(input.len() as u64 + 0x9e37_79b9);
    for _ in 0..50 {
        let cuts = rng.cuts(input.len());
        same_outcome(
            &respond(input, &cuts, eof),
            &whole,
            &format!("cuts {cuts:?}"),
        );
    }
    whole
}

fn every_split_of_request(input: &[u8]) -> RequestProgress {
    let whole = request(input, &[]);
    for cut in cut_points(input.len()) {
        same_outcome(&request(input, &[cut]), &whole, &format!("cut at {cut}"));
    }
    let byte_by_byte: Vec<usize> = (1..input.len()).collect();
    same_outcome(&request(input, &byte_by_byte), &whole, "byte by byte");
    whole
}

/// `start`, then `v`s, then `end`: `len` bytes in all.
fn padded(start: &str, end: &str, len: usize) -> String {
    format!("{start}{}{end}", "v".repeat(len - start.len() - end.len()))
}

fn status(code: u16, reason: &str) -> ResponseProgress {
    Progress::Done(Status {
        code,
        reason: reason.into(),
    })
}

#[test]
fn probe_request() {
    assert_eq!(
        String::from_utf8(get_request("127.0.0.1:8080", "/healthz?full=1")).unwrap(),
        format!(
            "GET /healthz?full=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: tend/{}\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let text = String::from_utf8(get_request("[::1]:80", "")).unwrap();
    assert!(
        text.starts_with("GET / HTTP/1.1\r\nHost: [::1]:80\r\n"),
        "{text}"
    );
    // What the server side reads back.
    let Progress::Done(r) = request(&get_request("localhost", "/m"), &[]) else {
        panic!()
    };
    assert_eq!(
        (r.method.as_str(), r.target.as_str(), r.version),
        ("GET", "/m", Version::Http11)
    );
}

#[test]
#[cfg(not(debug_assertions))]
fn probe_request_cannot_be_injected() {
    let text = String::from_utf8(get_request("h\r\nX: y", "a b\r\nX: y#f\u{e9}")).unwrap();
    assert!(
        text.starts_with("GET /a%20b%0D%0AX:%20y%23f%C3%A9 HTTP/1.1\r\nHost: hX:y\r\n"),
        "{text}"
    );
}

#[test]
fn probe_request_path_is_encoded() {
    let text = String::from_utf8(get_request("h", "/a b#f\u{e9}")).unwrap();
    assert!(
        text.starts_with("GET /a%20b%23f%C3%A9 HTTP/1.1\r\n"),
        "{text}"
    );
}

#[test]
fn valid_responses_in_every_split() {
    let long_value = padded("HTTP/1.1 200 OK\r\nX: ", "\r\n\r\n", MAX_RESPONSE_HEAD);
    assert_eq!(long_value.len(), MAX_RESPONSE_HEAD);
    let cases: Vec<(&[u8], ResponseProgress)> = vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
            status(200, "OK"),
        ),
        (b"HTTP/1.0 404 Not Found\r\n\r\n", status(404, "Not Found")),
        (b"HTTP/1.1 204 No Content\n\n", status(204, "No Content")),
        (b"HTTP/1.1 200\r\n\r\n", status(200, "")),
        (b"HTTP/1.1 200 \r\n\r\n", status(200, "")),
        (
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n\r\n",
            status(301, "Moved Permanently"),
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            status(200, "OK"),
        ),
        (
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
              HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n",
            status(503, "Service Unavailable"),
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            status(101, "Switching Protocols"),
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\r\n  folded\r\n\tmore\r\n\r\n",
            status(200, "OK"),
        ),
        (
            b"HTTP/1.1 200 OK\r\nX-Sloppy : a\r\n\r\n",
            status(200, "OK"),
        ),
        (
            b"HTTP/1.1 299 \xe9t\xc3\xa9 \tok\r\n\r\n",
            status(299, "\u{fffd}t\u{e9} \tok"),
        ),
        (
            b"HTTP/1.9 599 x\r\n\r\nbody \0 \xff ignored",
            status(599, "x"),
        ),
        (long_value.as_bytes(), status(200, "OK")),
    ];
    for (input, expected) in cases {
        let shown = String::from_utf8_lossy(&input[..input.len().min(60)]).into_owned();
        assert_eq!(every_split_of_response(input, false), expected, "{shown}");
        assert_eq!(
            every_split_of_response(input, true),
            expected,
            "{shown} then EOF"
        );
    }
}

#[test]
fn response_errors_in_every_split() {
    let too_long = padded("HTTP/1.1 200 OK\r\nX: ", "\r\n\r\n", MAX_RESPONSE_HEAD + 1);
    let continues = "HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_RESPONSE_HEAD / 25 + 1);
    let tls_alert: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];
    let cases: Vec<(&[u8], bool, &str)> = vec![
        (b"", true, "connection closed before a response"),
        (
            b"HTT",
            true,
            "connection closed in the middle of the response head",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: y\r\n",
            true,
            "connection closed in the middle of the response head",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\n",
            true,
            "connection closed in the middle of the response head",
        ),
        (
            tls_alert,
            false,
            "not an HTTP response: the server answered with TLS (an https port?)",
        ),
        (
            b"\x16\x03\x01\x02\x00\x01",
            false,
            "not an HTTP response: the server answered with TLS (an https port?)",
        ),
        (
            b"SSH-2.0-OpenSSH_9.2p1\r\n",
            false,
            "not an HTTP response: it starts with \"SSH-2.0-OpenSSH_9.2p1\"",
        ),
        (
            b"<html>",
            false,
            "not an HTTP response: it starts with \"<html>\"",
        ),
        (
            b"http/1.1 200 OK\r\n\r\n",
            false,
            "not an HTTP response: it starts with \"http/1.1 200 OK\"",
        ),
        (
            b"\r\nHTTP/1.1 200 OK\r\n\r\n",
            false,
            "not an HTTP response: it starts with \"\"",
        ),
        (
            b"HTTP\n",
            false,
            "not an HTTP response: it starts with \"HTTP\"",
        ),
        (
            b"HTTP/2 200\r\n\r\n",
            false,
            "bad status line \"HTTP/2 200\": expected a version such as HTTP/1.1",
        ),
        (
            b"HTTP/2.0 200 OK\r\n\r\n",
            false,
            "bad status line \"HTTP/2.0 200 OK\": only HTTP/1.x is spoken here",
        ),
        (
            b"HTTP/1.1 20 OK\r\n",
            false,
            "bad status line \"HTTP/1.1 20 OK\": expected a three-digit status code after the version",
        ),
        (
            b"HTTP/1.1  200 OK\r\n",
            false,
            "bad status line \"HTTP/1.1  200 OK\": expected a three-digit status code after the version",
        ),
        (
            b"HTTP/1.1 2000 OK\r\n",
            false,
            "bad status line \"HTTP/1.1 2000 OK\": expected a space after the status code",
        ),
        (
            b"HTTP/1.1 200OK\r\n",
            false,
            "bad status line \"HTTP/1.1 200OK\": expected a space after the status code",
        ),
        (
            b"HTTP/1.1 099 x\r\n",
            false,
            "bad status line \"HTTP/1.1 099 x\": status code outside 100-599",
        ),
        (
            b"HTTP/1.1 600 x\r\n",
            false,
            "bad status line \"HTTP/1.1 600 x\": status code outside 100-599",
        ),
        (
            b"HTTP/1.1 200 O\rK\r\n",
            false,
            "bad status line \"HTTP/1.1 200 O\\rK\": control character in the reason phrase",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
            false,
            "bad response: NUL byte in the head",
        ),
        (
            b"HT\0TP",
            false,
            "not an HTTP response: it starts with \"HT\\0TP\"",
        ),
        (
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            false,
            "bad response header \"no colon\": expected \"name: value\"",
        ),
        (
            b"HTTP/1.1 200 OK\r\n: x\r\n\r\n",
            false,
            "bad response header \": x\": invalid field name",
        ),
        (
            b"HTTP/1.1 200 OK\r\nA B: x\r\n\r\n",
            false,
            "bad response header \"A B: x\": invalid field name",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            false,
            "bad response header \"X: a\\rb\": carriage return inside the line",
        ),
        (
            too_long.as_bytes(),
            false,
            "response head longer than 16384 bytes",
        ),
        (
            continues.as_bytes(),
            false,
            "response head longer than 16384 bytes",
        ),
    ];
    for (input, eof, message) in cases {
        let shown = String::from_utf8_lossy(&input[..input.len().min(60)]).into_owned();
        let Progress::Failed(error) = every_split_of_response(input, eof) else {
            panic!("{shown}: accepted");
        };
        assert_eq!(error.to_string(), message, "{shown}");
    }
    // A head that just fits with its last LF, but one more byte does not.
    let at_limit = padded("HTTP/1.1 200 OK\r\nX: ", "\r\n", MAX_RESPONSE_HEAD);
    assert_eq!(at_limit.len(), MAX_RESPONSE_HEAD);
    assert_eq!(respond(at_limit.as_bytes(), &[], false), Progress::NeedMore);
    assert_eq!(
        respond(at_limit.as_bytes(), &[], true),
        Progress::Failed(ResponseError::ClosedInHead)
    );
    // The limit reached inside a line: no later byte could end the head.
    let unended = padded("HTTP/1.1 200 OK\r\nX: ", "", MAX_RESPONSE_HEAD);
    assert_eq!(
        every_split_of_response(unended.as_bytes(), false),
        Progress::Failed(ResponseError::HeadTooLong)
    );
    let over = format!("{at_limit}\r\n");
    assert_eq!(
        every_split_of_response(over.as_bytes(), false),
        Progress::Failed(ResponseError::HeadTooLong)
    );
}

#[test]
fn excerpts_are_short() {
    let banner = format!("SSH-2.0-{}\r\n", "x".repeat(500));
    let Progress::Failed(error) = respond(banner.as_bytes(), &[], false) else {
        panic!()
    };
    assert_eq!(
        error.to_string(),
        format!(
            "not an HTTP response: it starts with \"SSH-2.0-{}...\"",
            "x".repeat(32)
        )
    );
}

#[test]
fn success_is_2xx_only() {
    for (code, ok) in [
        (199, false),
        (200, true),
        (204, true),
        (299, true),
        (300, false),
        (301, false),
        (404, false),
        (101, false),
    ] {
        assert_eq!(is_success(code), ok, "{code}");
    }
}

fn get(target: &str, version: Version) -> RequestProgress {
    Progress::Done(Request {
        method: "GET".into(),
        target: target.into(),
        version,
    })
}

#[test]
fn valid_requests_in_every_split() {
    let long = padded(
        "GET /metrics HTTP/1.1\r\nHost: h\r\nX: ",
        "\r\n\r\n",
        MAX_REQUEST_HEAD,
    );
    assert_eq!(long.len(), MAX_REQUEST_HEAD);
    let cases: Vec<(&[u8], RequestProgress)> = vec![
        (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9187\r\n\r\n", get("/metrics", Version::Http11)),
        (
            b"GET /metrics HTTP/1.1\r\nHost: h\r\nUser-Agent: Prometheus/2.42.0\r\n\
              Accept: application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\
              Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
            get("/metrics", Version::Http11),
        ),
        (b"GET / HTTP/1.0\r\n\r\n", get("/", Version::Http10)),
        (b"GET /x?y=1 HTTP/1.1\nhost:h\n\n", get("/x?y=1", Version::Http11)),
        (b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", get("/", Version::Http11)),
        (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", get("/", Version::Http11)),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nX: \t a \xe9 \t\r\n\r\nGET /next", get("/", Version::Http11)),
        (b"GET http://h/m HTTP/1.1\r\nHost: h\r\n\r\n", get("http://h/m", Version::Http11)),
        (long.as_bytes(), get("/metrics", Version::Http11)),
    ];
    for (input, expected) in cases {
        assert_eq!(
            every_split_of_request(input),
            expected,
            "{}",
            String::from_utf8_lossy(&input[..input.len().min(60)])
        );
    }
    let Progress::Done(head) = request(b"HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &[]) else {
        panic!()
    };
    assert_eq!(head.method, "HEAD");
}

#[test]
fn request_errors_in_every_split() {
    let too_long = padded(
        "GET /metrics HTTP/1.1\r\nHost: h\r\nX: ",
        "\r\n\r\n",
        MAX_REQUEST_HEAD + 1,
    );
    let cases: Vec<(&[u8], u16, &str)> = vec![
        (
            b"GET  / HTTP/1.1\r\n",
            400,
            "bad request line: expected \"METHOD target HTTP/1.1\" with single spaces",
        ),
        (
            b"GET /\r\n",
            400,
            "bad request line: expected \"METHOD target HTTP/1.1\" with single spaces",
        ),
        (
            b"GET / HTTP/1.1 x\r\n",
            400,
            "bad request line: expected \"METHOD target HTTP/1.1\" with single spaces",
        ),
        (
            b"G(T / HTTP/1.1\r\n",
            400,
            "bad request line: invalid method",
        ),
        (
            b"GET /\xe9 HTTP/1.1\r\n",
            400,
            "bad request line: invalid request target",
        ),
        (
            b"GET /a\rb HTTP/1.1\r\n",
            400,
            "bad request line: invalid request target",
        ),
        (
            b"GET / http/1.1\r\n",
            400,
            "bad request line: invalid HTTP version",
        ),
        (
            b"GET / HTTP/1.10\r\n",
            400,
            "bad request line: invalid HTTP version",
        ),
        (b"GET / HTTP/2.0\r\n", 505, "only HTTP/1.x is spoken here"),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            400,
            "HTTP/1.1 request without a Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
            400,
            "more than one Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            413,
            "request bodies are not accepted",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
            400,
            "Content-Length is not a number",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
            400,
            "Content-Length is not a number",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            501,
            "Transfer-Encoding is not accepted (requests take no body)",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
            400,
            "bad request header: obsolete line folding is not accepted",
        ),
        (
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            400,
            "bad request header: invalid field name (or whitespace before the colon)",
        ),
        (
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            400,
            "bad request header: expected \"name: value\"",
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            400,
            "bad request header: control character in a field value",
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            400,
            "bad request header: control character in a field value",
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            400,
            "NUL byte in the request head",
        ),
        (
            too_long.as_bytes(),
            431,
            "request head longer than 8192 bytes",
        ),
    ];
    for (input, code, message) in cases {
        let shown = String::from_utf8_lossy(&input[..input.len().min(60)]).into_owned();
        let Progress::Failed(error) = every_split_of_request(input) else {
            panic!("{shown}: accepted");
        };
        assert_eq!(
            (error.status(), error.to_string().as_str()),
            (code, message),
            "{shown}"
        );
    }
    let unended = padded("GET / HTTP/1.1\r\nX: ", "", MAX_REQUEST_HEAD);
    assert_eq!(
        every_split_of_request(unended.as_bytes()),
        Progress::Failed(RequestError::HeadTooLong)
    );
    let endless = vec![b'\n'; MAX_REQUEST_HEAD + 1];
    assert_eq!(
        request(&endless, &[]),
        Progress::Failed(RequestError::HeadTooLong)
    );
}

#[test]
fn responses_from_the_server() {
    assert_eq!(
        response(
            200,
            "OK",
            "text/plain; version=0.0.4; charset=utf-8",
            b"a 1\n"
        ),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
          Content-Length: 4\r\nConnection: close\r\n\r\na 1\n"
    );
    assert_eq!(
        response_head(405, reason_phrase(405), "text/plain", 1000),
        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n\
          Content-Length: 1000\r\nConnection: close\r\n\r\n"
    );
    // What the probe side reads back.
    let answer = response(503, reason_phrase(503), "text/plain", b"\0binary");
    assert_eq!(
        every_split_of_response(&answer, true),
        status(503, "Service Unavailable")
    );
    assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    assert_eq!(reason_phrase(299), "");
}

#[test]
#[cfg(not(debug_assertions))]
fn server_response_cannot_be_injected() {
    let answer = response(1000, "OK\r\nSet-Cookie: x", "text/plain\r\n", b"");
    assert_eq!(answer, b"HTTP/1.1 500 OKSet-Cookie: x\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// Mutations of valid messages: insert, delete, replace, duplicate a span,
/// with bytes that matter to the grammar.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8] =
        b"\r\n \t:\0\x15\x16HTP/1.0239GETHostContent-Length: Transfer-Encoding\xff";
    let mut message = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(message.len() + 1);
        match rng.below(5) {
            0 => message.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            1 if at < message.len() => {
                message.remove(at);
            }
            2 if at < message.len() => message[at] = rng.next() as u8,
            3 => {
                let copy = message[at..].to_vec();
                let len = rng.below(copy.len() + 1);
                message.extend_from_slice(&copy[..len]);
            }
            _ => {
                let n = if rng.below(50) == 0 {
                    rng.below(20_000)
                } else {
                    rng.below(64)
                };
                let byte = ALPHABET[rng.below(ALPHABET.len())];
                message.splice(at..at, std::iter::repeat_n(byte, n));
            }
        }
    }
    message
}

/// 100 000 mutated or random responses, each fed whole and in random chunks:
/// never a panic, never past the bound, and the same outcome either way.
#[test]
fn fuzz_response_parser() {
    let seeds: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 503 Service Unavailable\r\nX: a\r\n b\r\n\r\n",
        b"HTTP/1.1 204\n\n",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
    ];
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let (mut done, mut too_long) = (0, 0);
    for i in 0..100_000 {
        let input = if i % 10 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        let eof = rng.below(2) == 0;
        let whole = respond(&input, &[], eof);
        let cuts = rng.cuts(input.len());
        same_outcome(
            &respond(&input, &cuts, eof),
            &whole,
            &String::from_utf8_lossy(&input),
        );
        if let Progress::Done(status) = &whole {
            assert!((100..=599).contains(&status.code));
            done += 1;
        }
        too_long += usize::from(whole == Progress::Failed(ResponseError::HeadTooLong));
        if eof {
            assert_ne!(whole, Progress::NeedMore, "EOF always decides");
        }
    }
    assert!(
        done > 10_000,
        "the mutations should leave many valid responses, got {done}"
    );
    assert!(
        too_long > 50,
        "the bound should be reached often, got {too_long}"
    );
}

#[test]
fn fuzz_request_parser() {
    let seeds: [&[u8]; 3] = [
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9187\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: */*\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"\r\nHEAD /m HTTP/1.1\nHost: h\nContent-Length: 0\n\n",
    ];
    let mut rng = Rng(0xfedc_ba98_7654_3210);
    let (mut done, mut too_long) = (0, 0);
    for i in 0..100_000 {
        let input = if i % 10 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        let whole = request(&input, &[]);
        let cuts = rng.cuts(input.len());
        same_outcome(
            &request(&input, &cuts),
            &whole,
            &String::from_utf8_lossy(&input),
        );
        if let Progress::Done(r) = &whole {
            assert!(r.target.bytes().all(is_visible) && r.method.bytes().all(is_token));
            done += 1;
        }
        too_long += usize::from(whole == Progress::Failed(RequestError::HeadTooLong));
    }
    assert!(
        done > 10_000,
        "the mutations should leave many valid requests, got {done}"
    );
    assert!(
        too_long > 50,
        "the bound should be reached often, got {too_long}"
    );
}
