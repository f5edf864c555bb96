//! The server driven by a real `mio::Poll` and real socket pairs: requests
//! without a newline, the connection cap, deadlines, followers that fall behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream as StdStream;

use super::*;
use crate::protocol::LogLine;

struct Harness {
    poll: mio::Poll,
    tokens: Tokens,
    server: ControlServer,
    path: PathBuf,
}

impl Harness {
    fn new(tag: &str) -> Harness {
        let poll = mio::Poll::new().expect("poll");
        let mut tokens = Tokens::default();
        let path = PathBuf::from(format!(
            "/tmp/control-srv-{}-{tag}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let server = ControlServer::bind(&path, poll.registry(), &mut tokens).expect("bind");
        Harness {
            poll,
            tokens,
            server,
            path,
        }
    }

    fn connect(&self) -> StdStream {
        let s = StdStream::connect(&self.path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s
    }

    /// Run the events of one short poll; the requests they completed.
    fn turn(&mut self) -> Vec<(ClientId, Result<Request, String>)> {
        let mut events = mio::Events::with_capacity(1024);
        let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
        let mut requests = Vec::new();
        for event in events.iter() {
            requests.extend(self.server.handle_event(
                self.poll.registry(),
                &mut self.tokens,
                event,
                Instant::now(),
            ));
        }
        requests
    }

    /// One turn without waiting.
    fn turn_now(&mut self) {
        let mut events = mio::Events::with_capacity(1024);
        let _ = self.poll.poll(&mut events, Some(Duration::ZERO));
        for event in events.iter() {
            self.server.handle_event(
                self.poll.registry(),
                &mut self.tokens,
                event,
                Instant::now(),
            );
        }
    }

    /// Turns until a request comes (at most a few seconds).
    fn request(&mut self) -> (ClientId, Result<Request, String>) {
        for _ in 0..100 {
            if let Some(r) = self.turn().into_iter().next() {
                return r;
            }
        }
        panic!("no request arrived");
    }

    fn accept_all(&mut self) {
        for _ in 0..5 {
            self.turn();
        }
    }
}

fn read_line(stream: &mut StdStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    line
}

/// EOF (or an error) within the read timeout.
fn is_closed(stream: &mut StdStream) -> bool {
    let mut buf = [0u8; 64];
    !matches!(stream.read(&mut buf), Ok(n) if n > 0)
}

#[test]
fn a_request_without_newline_is_answered_at_eof() {
    let mut h = Harness::new("eof");
    let mut c = h.connect();
    c.write_all(br#"{"cmd":"status"}"#).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let (id, request) = h.request();
    assert_eq!(request, Ok(Request::Status { names: vec![] }));
    h.server.reply(h.poll.registry(), id, &Reply::ok());
    assert_eq!(read_line(&mut c).trim(), r#"{"ok":true}"#);
    assert!(is_closed(&mut c));
    // EOF without any request: just closed.
    let mut empty = h.connect();
    empty.shutdown(std::net::Shutdown::Write).expect("shutdown");
    h.accept_all();
    assert!(is_closed(&mut empty));
    assert!(h.server.clients.is_empty());
}

#[test]
fn an_unknown_field_is_an_error_for_the_server_too() {
    let mut h = Harness::new("unknown");
    let mut c = h.connect();
    c.write_all(b"{\"cmd\":\"shutdown\",\"names\":[\"x\"]}\n")
        .expect("write");
    let (_, request) = h.request();
    let problem = request.expect_err("refused");
    assert!(problem.contains("unknown field"), "{problem}");
}

#[test]
fn idle_clients_expire_by_their_deadline_in_order() {
    let mut h = Harness::new("deadline");
    let mut first = h.connect();
    h.accept_all();
    let mut second = h.connect();
    h.accept_all();
    assert_eq!(h.server.clients.len(), 2);
    let (first_at, _) = *h.server.deadlines.first().expect("deadline");
    assert_eq!(h.server.poll_deadline(), Some(first_at));
    // Just the first one's deadline: the first goes, the second stays.
    h.server
        .handle_deadlines(h.poll.registry(), &mut h.tokens, first_at);
    assert_eq!(h.server.clients.len(), 1);
    assert!(is_closed(&mut first));
    let later = Instant::now() + REQUEST_TIMEOUT + Duration::from_secs(1);
    h.server
        .handle_deadlines(h.poll.registry(), &mut h.tokens, later);
    assert!(h.server.clients.is_empty());
    assert!(h.server.deadlines.is_empty() && h.server.reading.is_empty());
    assert!(is_closed(&mut second));
}

#[test]
fn when_full_the_oldest_idle_connection_makes_room() {
    crate::sys::raise_nofile();
    let mut h = Harness::new("cap");
    let mut idle: Vec<StdStream> = Vec::new();
    for _ in 0..MAX_CLIENTS {
        idle.push(h.connect());
        if idle.len().is_multiple_of(64) {
            h.accept_all();
        }
    }
    h.accept_all();
    assert_eq!(h.server.clients.len(), MAX_CLIENTS);
    let mut late = h.connect();
    late.write_all(b"{\"cmd\":\"status\"}\n").expect("write");
    let (id, request) = h.request();
    assert!(request.is_ok());
    h.server.reply(h.poll.registry(), id, &Reply::ok());
    assert_eq!(read_line(&mut late).trim(), r#"{"ok":true}"#);
    // The oldest idle one was closed for it, the newest is still there.
    assert!(is_closed(&mut idle[0]));
    assert!(h.server.clients.len() <= MAX_CLIENTS);
}

fn follower(h: &mut Harness, names: Option<Vec<String>>) -> StdStream {
    let mut c = h.connect();
    c.write_all(b"{\"cmd\":\"logs\",\"follow\":true}\n")
        .expect("write");
    let (id, request) = h.request();
    assert!(request.is_ok());
    h.server.follow(id, names).expect("follow");
    h.server.reply(h.poll.registry(), id, &Reply::ok());
    assert_eq!(read_line(&mut c).trim(), r#"{"ok":true}"#);
    c
}

fn push(h: &mut Harness, service: &str, text: &str, seq: u64) {
    let line = format!("{text}\n");
    let ends = [line.len() as u32];
    let block = Lines {
        text: line.as_bytes(),
        ends: &ends,
    };
    h.server.push_lines(
        h.poll.registry(),
        service,
        Stream::Stdout,
        block,
        seq,
        1_000,
    );
}

#[test]
fn followers_get_the_lines_of_what_they_follow() {
    let mut h = Harness::new("follow");
    let mut web = follower(&mut h, Some(vec!["web".into()]));
    let mut all = follower(&mut h, None);
    push(&mut h, "db", "from db", 0);
    push(&mut h, "web", "from web", 1);
    let line = LogLine::parse(&read_line(&mut web)).expect("line");
    assert_eq!(
        (line.service.as_str(), line.line.as_str(), line.seq),
        ("web", "from web", 1)
    );
    let mut reader = BufReader::new(&mut all);
    for want in ["from db", "from web"] {
        let mut text = String::new();
        reader.read_line(&mut text).expect("read");
        let line = LogLine::parse(&text).expect("line");
        assert_eq!(line.line, want);
        assert_eq!(line.ts, "1970-01-01T00:00:01.000Z");
    }
    drop(reader);
    drop(web);
    h.accept_all(); // sees the follower leave
    assert_eq!(h.server.followers.len(), 1);
}

#[test]
fn a_follower_that_falls_behind_is_dropped_with_a_last_line() {
    let mut h = Harness::new("slow");
    let mut slow = follower(&mut h, None);
    let text = "z".repeat(1000);
    let mut seq = 0;
    // Never read: the socket buffer fills, then the backlog passes its bound.
    while h.server.has_followers() {
        push(&mut h, "web", &text, seq);
        seq += 1;
        assert!(seq < 100_000, "never dropped");
    }
    assert!(h.server.totals.follow == 0);
    // Read everything, letting the server write the rest as room comes.
    slow.set_nonblocking(true).expect("nonblocking");
    let mut data = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        h.turn_now();
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Nothing to read: let the server wait for room, as the loop does.
                h.turn();
            }
            Err(e) => panic!("{e}"),
        }
    }
    let text = String::from_utf8(data).expect("utf-8");
    let all: Vec<&str> = text.lines().collect();
    let (last, lines) = all.split_last().expect("some lines");
    assert!(!lines.is_empty());
    for l in lines {
        let line = LogLine::parse(l).expect("only whole lines before the last");
        assert_eq!(line.line.len(), 1000);
    }
    let reply = Reply::parse(last).expect("a whole JSON reply line last");
    assert!(!reply.ok);
    assert!(reply.error.unwrap_or_default().contains("fell"), "{last}");
    assert!(h.server.clients.is_empty());
}

#[test]
fn too_many_followers_is_an_error() {
    let mut h = Harness::new("maxfollow");
    let mut kept = Vec::new();
    for _ in 0..MAX_FOLLOWERS {
        kept.push(follower(&mut h, None));
    }
    let mut c = h.connect();
    c.write_all(b"{\"cmd\":\"logs\",\"follow\":true}\n")
        .expect("write");
    let (id, _) = h.request();
    assert!(h.server.follow(id, None).is_err());
}
