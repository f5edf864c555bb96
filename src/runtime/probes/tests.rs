//! The probe runner against real loopback sockets, driven by a real `mio::Poll`
//! in the test's own thread (the listener's side is done by hand between
//! polls, so nothing races). Exec probes need the reap loop: they are covered
//! by `tests/integration/probes.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll};

use super::exec::{TAIL, Tail, program};
use super::*;
use crate::machine::tests_support::spec;

struct Rig {
    poll: Poll,
    tokens: Tokens,
    probes: Probes,
    spec: Arc<ServiceSpec>,
    service: ServiceId,
}

impl Rig {
    fn new() -> Rig {
        let sup = crate::machine::Supervisor::new(
            vec![crate::machine::Definition {
                name: "web".into(),
                revision: 1,
                behaviour: crate::machine::Behaviour::of(&spec("web")),
            }],
            crate::machine::Settings {
                shutdown_timeout: Duration::from_secs(1),
                exit_when_idle: false,
            },
            1,
        );
        let service = sup.find("web").expect("service");
        Rig {
            poll: Poll::new().expect("poll"),
            tokens: Tokens::default(),
            probes: Probes::new(None).expect("probes"),
            spec: Arc::new(spec("web")),
            service,
        }
    }

    fn start(&mut self, kind: CheckKind, role: Role, run: u64) {
        let check = Check::new(kind, Duration::from_secs(1));
        let order = Order {
            service: self.service,
            run: RunId(run),
            role,
            spec: &self.spec,
            check: &check,
        };
        let registry = self.poll.registry();
        self.probes
            .start(registry, &mut self.tokens, Instant::ZERO, order);
    }

    /// Poll once (up to 50 ms) and hand every event to the runner.
    fn turn(&mut self) {
        let mut events = Events::with_capacity(16);
        let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
        for event in events.iter() {
            let registry = self.poll.registry();
            if self.probes.owns(event.token()) {
                self.probes
                    .handle_event(registry, &mut self.tokens, event.token());
            }
        }
    }

    /// Turn until a result comes (10 s at most); `(run, ok, message)`.
    fn result(&mut self) -> (u64, bool, String) {
        for _ in 0..200 {
            if let Some(result) = self.take_one() {
                return result;
            }
            self.turn();
        }
        panic!("no probe result");
    }

    fn take_one(&mut self) -> Option<(u64, bool, String)> {
        let mut results = self.probes.take_results();
        assert!(results.len() <= 1, "one result per attempt: {results:?}");
        match results.pop()? {
            Event::ProbeResult {
                run, ok, message, ..
            } => Some((run.0, ok, message)),
            other => panic!("not a probe result: {other:?}"),
        }
    }

    /// Turn a few times and check nothing was reported.
    fn assert_quiet(&mut self) {
        for _ in 0..4 {
            self.turn();
            assert!(self.take_one().is_none());
        }
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr)
}

/// Accept the probe's connection and read its request head.
fn accept(l: &TcpListener) -> (TcpStream, String) {
    let (mut conn, _) = l.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut buf).expect("read request");
        assert!(n > 0, "request ended early: {head:?}");
        head.extend_from_slice(&buf[..n]);
    }
    (conn, String::from_utf8_lossy(&head).into_owned())
}

fn http(addr: SocketAddr) -> CheckKind {
    CheckKind::Http {
        address: addr,
        host: addr.to_string(),
        path: "/healthz".into(),
    }
}

#[test]
fn tcp_passes_on_a_listening_port_and_names_the_refusal_otherwise() {
    let mut rig = Rig::new();
    let (l, addr) = listener();
    rig.start(CheckKind::Tcp { address: addr }, Role::Readiness, 1);
    assert_eq!(rig.result(), (1, true, format!("connected to {addr}")));
    drop(l);
    rig.start(CheckKind::Tcp { address: addr }, Role::Liveness, 2);
    let (run, ok, message) = rig.result();
    assert!(run == 2 && !ok);
    assert!(
        message.starts_with(&format!("connect {addr}: ")) && message.contains("refused"),
        "{message}"
    );
    let failures: Vec<_> = rig.probes.failures().collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].1, 1);
    assert_eq!(failures[0].0.role, Role::Liveness);
}

#[test]
fn http_reads_an_answer_split_into_many_writes() {
    let mut rig = Rig::new();
    let (l, addr) = listener();
    rig.start(http(addr), Role::Readiness, 7);
    let (mut conn, head) = accept(&l);
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("Host: {addr}\r\n")), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    let answer = b"HTTP/1.1 204 No Content\r\nServer: t\r\n\r\n";
    let pieces: Vec<&[u8]> = answer.chunks(3).collect();
    for (i, piece) in pieces.iter().enumerate() {
        conn.write_all(piece).expect("write");
        if i + 1 < pieces.len() {
            rig.turn();
            assert!(rig.take_one().is_none(), "decided before the head's end");
        }
    }
    assert_eq!(rig.result(), (7, true, "HTTP 204 No Content".to_string()));
}

#[test]
fn http_failures_say_what_came() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"HTTP/1.1 500 Internal Server Error\r\n\r\n",
            "HTTP 500 Internal Server Error",
        ),
        (
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n\r\n",
            "HTTP 301 Moved Permanently (a redirect",
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "not an HTTP response"),
        (b"", "connection closed before a response"),
        (b"HTTP/1.1 200 OK\r\nX: ", "connection closed in the middle"),
    ];
    for (answer, expected) in cases {
        let mut rig = Rig::new();
        let (l, addr) = listener();
        rig.start(http(addr), Role::Liveness, 1);
        let (mut conn, _) = accept(&l);
        conn.write_all(answer).expect("write");
        drop(conn);
        let (_, ok, message) = rig.result();
        assert!(!ok, "{answer:?}");
        assert!(
            message.starts_with(&format!("GET http://{addr}/healthz: ")),
            "{message}"
        );
        assert!(message.contains(expected), "{message} vs {expected}");
    }
}

#[test]
fn a_server_that_accepts_and_never_answers_times_out_with_a_message() {
    let mut rig = Rig::new();
    let (l, addr) = listener();
    rig.start(http(addr), Role::Liveness, 3);
    let (_conn, _) = accept(&l);
    rig.assert_quiet();
    rig.probes.handle_deadlines(Instant::from_millis(999));
    assert!(rig.take_one().is_none(), "not before its timeout");
    assert_eq!(rig.probes.poll_deadline(), Some(Instant::from_millis(1000)));
    rig.probes.handle_deadlines(Instant::from_millis(1000));
    let (run, ok, message) = rig.take_one().expect("a timeout result");
    assert!(run == 3 && !ok);
    assert_eq!(
        message,
        format!("GET http://{addr}/healthz: connected, but no answer within 1s")
    );
    assert_eq!(rig.probes.poll_deadline(), None, "nothing left armed");
    assert!(rig.probes.attempts.is_empty() && rig.probes.by_token.is_empty());
}

#[test]
fn a_cancelled_attempt_reports_nothing_and_a_new_one_replaces_the_old() {
    let mut rig = Rig::new();
    let (l, addr) = listener();
    rig.start(http(addr), Role::Liveness, 1);
    let (_first, _) = accept(&l);
    rig.probes.cancel(rig.service, Role::Liveness);
    rig.assert_quiet();
    assert_eq!(rig.probes.poll_deadline(), None);

    rig.start(http(addr), Role::Liveness, 2);
    let (_second, _) = accept(&l);
    rig.start(http(addr), Role::Liveness, 3);
    let (mut third, _) = accept(&l);
    third
        .write_all(b"HTTP/1.0 200 OK\r\n\r\nbody")
        .expect("write");
    drop(third);
    assert_eq!(rig.result(), (3, true, "HTTP 200 OK".to_string()));
    rig.assert_quiet();
    assert_eq!(rig.probes.attempts.len(), 0);
}

#[test]
fn after_the_head_the_body_is_read_to_eof_before_closing() {
    let mut rig = Rig::new();
    let (l, addr) = listener();
    rig.start(http(addr), Role::Liveness, 1);
    let (mut conn, _) = accept(&l);
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        .expect("write");
    assert_eq!(rig.result(), (1, true, "HTTP 200 OK".to_string()));
    // Reported, still open: the server finishes its body, then closes first.
    assert_eq!(rig.probes.attempts.len(), 1);
    assert!(
        rig.probes.by_key.is_empty(),
        "no longer the attempt in flight"
    );
    conn.write_all(b"67890").expect("write the rest");
    drop(conn);
    for _ in 0..100 {
        rig.turn();
        if rig.probes.attempts.is_empty() {
            break;
        }
    }
    assert!(rig.probes.attempts.is_empty(), "closed at EOF");
    assert!(rig.take_one().is_none(), "one result only");
}

#[test]
fn grpc_talks_http2_and_reports_what_a_non_http2_server_sent() {
    let mut rig = Rig::new();
    let (l, addr) = listener();
    let kind = CheckKind::Grpc {
        address: addr,
        service: "api".into(),
    };
    rig.start(kind, Role::Readiness, 1);
    let (mut conn, _) = l.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut preface = [0u8; 24];
    conn.read_exact(&mut preface).expect("preface");
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        .expect("write");
    drop(conn);
    let (_, ok, message) = rig.result();
    assert!(!ok);
    assert!(
        message.starts_with(&format!("grpc {addr} service \"api\": ")),
        "{message}"
    );
    assert!(message.contains("HTTP/1"), "{message}");
}

#[test]
fn a_forgotten_service_leaves_nothing() {
    let mut rig = Rig::new();
    let (l, addr) = listener();
    rig.start(http(addr), Role::Readiness, 1);
    let (_conn, _) = accept(&l);
    rig.probes.forget(rig.service);
    rig.assert_quiet();
    assert!(rig.probes.attempts.is_empty() && rig.probes.deadlines.is_empty());
}

#[test]
fn the_tail_keeps_the_last_bytes_whatever_the_split() {
    let text: Vec<u8> = (0..3000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        let mut tail = Tail::default();
        let mut rest = &text[..];
        while !rest.is_empty() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state % 700) as usize + 1;
            let (chunk, after) = rest.split_at(n.min(rest.len()));
            tail.push(chunk);
            rest = after;
            assert!(tail.bytes.len() <= TAIL);
        }
        assert_eq!(tail.bytes, text[text.len() - TAIL..]);
        assert_eq!(tail.last_line().as_deref(), Some("line 2999"));
    }
}

#[test]
fn the_last_line_is_the_last_non_empty_one_and_shows_a_cut() {
    let mut tail = Tail::default();
    assert_eq!(tail.last_line(), None);
    tail.push(b"starting\nerror: db down\r\n\n  \n");
    assert_eq!(tail.last_line().as_deref(), Some("error: db down"));
    let mut long = Tail::default();
    long.push(&[b'x'; 2000]);
    let line = long.last_line().expect("a line");
    assert!(line.starts_with('…') && line.len() == TAIL + '…'.len_utf8());
    let mut odd = Tail::default();
    odd.push(b"bad \xff\x1b[31m byte");
    assert_eq!(odd.last_line().as_deref(), Some("bad \u{fffd} [31m byte"));
}

#[test]
fn messages_name_the_program_and_the_timeout_plainly() {
    assert_eq!(
        program(&["/usr/bin/pg_isready".into(), "-q".into()]),
        "pg_isready"
    );
    assert_eq!(program(&[]), "");
    assert_eq!(span(Duration::from_secs(1)), "1s");
    assert_eq!(span(Duration::from_millis(300)), "300ms");
    assert_eq!(span(Duration::from_millis(2500)), "2.5s");
    let mut tail = Tail::default();
    tail.push(b"no\n");
    let (ok, message) = exec::verdict(&["check".into()], ExitStatus::Code(3), &tail);
    assert!(!ok);
    assert_eq!(message, "check exited with code 3: no");
    let (ok, _) = exec::verdict(&["check".into()], ExitStatus::Code(0), &tail);
    assert!(ok);
    let timeout = Duration::from_millis(300);
    assert_eq!(
        exec::overran(&["/bin/check".into()], timeout, &tail),
        "check timed out after 300ms; its process group was killed; its last output: no"
    );
    assert_eq!(
        exec::overran(&["/bin/check".into()], timeout, &Tail::default()),
        "check timed out after 300ms; its process group was killed"
    );
}
