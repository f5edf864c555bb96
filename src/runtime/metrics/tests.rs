use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use mio::{Events, Poll};

use super::*;
use crate::codec::http1::{Request, Version};
use crate::machine::behaviour::{Liveness, Readiness};
use crate::machine::tests_support::{Harness, config, oneshot, spec};
use crate::machine::{ExitStatus, Role, ServiceId};
use crate::runtime::usage::{OwnUsage, Usage};

/// web: running; db: checked readiness and liveness, ready once, then killed
/// by SIGKILL (restarting); job: a oneshot that completed.
fn fake() -> Harness {
    let mut h = Harness::start_with(
        config(vec![spec("web"), spec("db"), oneshot("job")]),
        |def| {
            if &*def.name == "db" {
                def.behaviour.readiness = Readiness::Checked {
                    interval: Duration::from_secs(1),
                };
                def.behaviour.liveness = Some(Liveness {
                    interval: Duration::from_secs(10),
                    failures: 3,
                });
            }
        },
    );
    h.at(1500);
    h.probe("db", Role::Readiness, true);
    h.at(2250);
    h.exit("job", ExitStatus::Code(0));
    h.exit("db", ExitStatus::Signal(9));
    h
}

fn golden_view(h: &Harness, render_it: impl Fn(&View<'_>) -> String) -> String {
    let web = h.id("web");
    let db = h.id("db");
    let counters = move |id: ServiceId| {
        let mut c = Counters::default();
        if id == web {
            c.add_lines(crate::runtime::output::Stream::Stdout, 3);
            c.add_lines(crate::runtime::output::Stream::Stderr, 1);
        }
        if id == db {
            c.add_probe_failure(Role::Readiness);
            c.add_probe_failure(Role::Readiness);
            c.add_probe_failure(Role::Liveness);
        }
        c
    };
    let usage: HashMap<ServiceId, Usage> = [(
        web,
        Usage {
            cpu_secs: 1.5,
            memory_bytes: 1 << 20,
        },
    )]
    .into();
    let view = View {
        sup: &h.sup,
        unix_at_start: 1_700_000_000.0,
        counters: &counters,
        usage: &usage,
        own: OwnUsage {
            cpu_secs: Some(0.25),
            resident_bytes: Some(4_096_000),
            open_fds: Some(12),
            max_fds: Some(1024),
        },
        start_time: Some(1_699_999_999.5),
    };
    render_it(&view)
}

const GOLDEN: &str = include_str!("golden.prom");

#[test]
fn exposition_of_a_small_supervisor_is_the_golden_text() {
    let h = fake();
    let text = golden_view(&h, render);
    let version = env!("CARGO_PKG_VERSION");
    let expected = GOLDEN.replace("@VERSION@", version);
    if text != expected {
        // Print a diff-friendly copy for updating golden.prom on purpose.
        println!("{}", text.replace(version, "@VERSION@"));
    }
    assert_eq!(text, expected);
}

/// `promtool check metrics` parses and lints the golden exposition (skipped,
/// visibly, without promtool).
#[test]
fn promtool_accepts_the_golden_text() {
    let h = fake();
    let text = golden_view(&h, render);
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("SKIPPED: promtool is not installed (Debian: apt-get install prometheus)");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("promtool reads");
    }
    let out = child.wait_with_output().expect("promtool exits");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        text
    );
}

fn request(method: &str, target: &str) -> Request {
    Request {
        method: method.into(),
        target: target.into(),
        version: Version::Http11,
    }
}

#[test]
fn routing() {
    assert_eq!(
        route(&request("GET", "/metrics")),
        Route::Metrics { head: false }
    );
    assert_eq!(
        route(&request("HEAD", "/metrics")),
        Route::Metrics { head: true }
    );
    assert_eq!(
        route(&request("GET", "/metrics?name[]=x")),
        Route::Metrics { head: false }
    );
    for target in [
        "/",
        "/metrics/",
        "/Metrics",
        "/metricsx",
        "*",
        "/x?/metrics",
    ] {
        assert!(
            matches!(
                route(&request("GET", target)),
                Route::Refuse { status: 404, .. }
            ),
            "{target}"
        );
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get", "PATCH"] {
        let r = route(&request(method, "/metrics"));
        assert!(
            matches!(
                r,
                Route::Refuse {
                    status: 405,
                    allow: true,
                    ..
                }
            ),
            "{method}: {r:?}"
        );
    }
}

/// Splits a response into (status, head text, body).
fn split(bytes: &[u8]) -> (u16, String, Vec<u8>) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let end = text.find("\r\n\r\n").expect("a complete head");
    let status = text[9..12].parse().expect("a status");
    (
        status,
        text[..end + 4].to_string(),
        bytes[end + 4..].to_vec(),
    )
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length")
}

#[test]
fn refusals_are_well_formed() {
    let (status, head, body) = split(&refusal(405, true, "POST is not allowed", false));
    assert_eq!(status, 405);
    assert!(
        head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nAllow: GET, HEAD\r\n\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    assert_eq!(content_length(&head), body.len());
    assert_eq!(body, b"POST is not allowed\n");
    // HEAD: the same length, no body.
    let (status, head, body) = split(&refusal(404, false, "no such page: /x", true));
    assert_eq!((status, body.len()), (404, 0));
    assert_eq!(content_length(&head), "no such page: /x\n".len());
    assert!(!head.contains("Allow"));
}

/// Plays a client and the loop in one thread: the server on a real socket,
/// events fed by hand, a fake clock.
struct Rig {
    poll: Poll,
    tokens: Tokens,
    server: MetricsServer,
    events: Events,
    now: Instant,
}

impl Rig {
    fn new() -> Rig {
        let poll = Poll::new().expect("poll");
        let mut tokens = Tokens::default();
        let address: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let server = MetricsServer::bind(address, poll.registry(), &mut tokens).expect("bind");
        Rig {
            poll,
            tokens,
            server,
            events: Events::with_capacity(1024),
            now: Instant::ZERO,
        }
    }

    fn connect(&self) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(self.server.local_addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
    }

    /// One loop turn: wait briefly for events, hand them over, answer scrapes.
    fn turn(&mut self) {
        let _ = self
            .poll
            .poll(&mut self.events, Some(Duration::from_millis(20)));
        for event in self.events.iter() {
            if self.server.owns(event.token()) {
                self.server
                    .handle_event(self.poll.registry(), &mut self.tokens, event, self.now);
            }
        }
        if self.server.has_scrapes() {
            self.server
                .answer_scrapes(self.poll.registry(), "m 1\n".to_string());
        }
        self.server
            .handle_deadlines(self.poll.registry(), &mut self.tokens, self.now);
    }

    /// Send `raw`, run turns until the server closes, return the answer.
    fn exchange(&mut self, raw: &[u8]) -> Vec<u8> {
        self.exchange_then(raw, false)
    }

    /// As `exchange`; `shut`: close our sending side after `raw`.
    fn exchange_then(&mut self, raw: &[u8], shut: bool) -> Vec<u8> {
        let mut client = self.connect();
        client.write_all(raw).expect("send");
        if shut {
            client
                .shutdown(std::net::Shutdown::Write)
                .expect("shutdown");
        }
        let mut answer = Vec::new();
        client.set_nonblocking(true).expect("non-blocking client");
        for _ in 0..1000 {
            self.turn();
            let mut buf = [0u8; 4096];
            match client.read(&mut buf) {
                Ok(0) => return answer,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        panic!("no complete answer: {:?}", String::from_utf8_lossy(&answer));
    }
}

#[test]
fn answers_get_head_404_405_and_malformed_requests() {
    let mut rig = Rig::new();
    let (status, head, body) = split(&rig.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!((status, body.as_slice()), (200, &b"m 1\n"[..]));
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (status, head, body) = split(&rig.exchange(b"HEAD /metrics HTTP/1.0\r\n\r\n"));
    assert_eq!((status, body.len(), content_length(&head)), (200, 0, 4));
    let (status, _, _) = split(&rig.exchange(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!(status, 404);
    let (status, head, _) = split(&rig.exchange(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"));
    let (status, _, _) = split(&rig.exchange(b"GET /metrics HTTP/1.1\r\n\r\n"));
    assert_eq!(status, 400, "no Host");
    let (status, _, _) = split(&rig.exchange(b"\x16\x03\x01 hello\r\n\r\n"));
    assert_eq!(status, 400, "TLS");
    let (status, _, _) = split(&rig.exchange(b"GET /metrics HTTP/2.0\r\n\r\n"));
    assert_eq!(status, 505);
    let mut huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    huge.resize(20_000, b'a');
    let (status, _, _) = split(&rig.exchange(&huge));
    assert_eq!(status, 431);
    // Each client closed after reading: the server sees that and closes too.
    for _ in 0..20 {
        if rig.server.connection_count() == 0 {
            break;
        }
        rig.turn();
    }
    assert_eq!(rig.server.connection_count(), 0);
    assert_eq!(
        rig.server.buffered, 0,
        "every reply written is accounted for"
    );
}

#[test]
fn connections_are_capped_and_timed_out() {
    let mut rig = Rig::new();
    let clients: Vec<std::net::TcpStream> =
        (0..MAX_CONNECTIONS + 20).map(|_| rig.connect()).collect();
    for _ in 0..5 {
        rig.turn();
    }
    assert_eq!(rig.server.connection_count(), MAX_CONNECTIONS);
    // Those beyond the cap were closed at once: some client sees EOF.
    let closed = clients
        .iter()
        .filter(|c| {
            c.set_nonblocking(true).expect("nb");
            let mut b = [0u8; 1];
            let mut reader: &std::net::TcpStream = c;
            matches!(reader.read(&mut b), Ok(0))
        })
        .count();
    assert_eq!(closed, 20);
    // Nobody sends a thing: all are closed once their time is up, not before.
    rig.now = Instant::ZERO.saturating_add(CONNECTION_TIMEOUT - Duration::from_millis(1));
    rig.turn();
    assert_eq!(rig.server.connection_count(), MAX_CONNECTIONS);
    assert_eq!(
        rig.server.poll_deadline(),
        Some(Instant::ZERO.saturating_add(CONNECTION_TIMEOUT))
    );
    rig.now = Instant::ZERO.saturating_add(CONNECTION_TIMEOUT);
    rig.turn();
    assert_eq!(rig.server.connection_count(), 0);
    assert_eq!(rig.server.poll_deadline(), None);
    // And there is room again.
    let (status, _, _) = split(&rig.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!(status, 200);
}

#[test]
fn a_scraper_that_does_not_read_holds_only_its_share() {
    let mut rig = Rig::new();
    let big = "x".repeat(MAX_BUFFERED - 1000);
    // Two scrapes that never read: the first reply is accepted whole, the
    // second would pass the bound and is refused with a 503.
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut c = rig.connect();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        clients.push(c);
        for _ in 0..3 {
            let _ = rig
                .poll
                .poll(&mut rig.events, Some(Duration::from_millis(100)));
            for event in rig.events.iter() {
                rig.server
                    .handle_event(rig.poll.registry(), &mut rig.tokens, event, rig.now);
            }
            if rig.server.has_scrapes() {
                rig.server.answer_scrapes(rig.poll.registry(), big.clone());
            }
        }
    }
    assert!(
        rig.server.buffered <= MAX_BUFFERED,
        "{}",
        rig.server.buffered
    );
    let mut second = Vec::new();
    clients[1].read_to_end(&mut second).expect("read");
    assert_eq!(split(&second).0, 503);
    drop(clients);
    rig.now = Instant::ZERO.saturating_add(CONNECTION_TIMEOUT);
    rig.turn();
    assert_eq!((rig.server.connection_count(), rig.server.buffered), (0, 0));
}

#[test]
fn moving_keeps_the_old_listener_when_the_new_address_is_taken() {
    let mut rig = Rig::new();
    let old = rig.server.local_addr();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr");
    let err = rig
        .server
        .move_to(busy, rig.poll.registry(), &mut rig.tokens)
        .expect_err("address in use");
    assert!(err.to_string().contains(&busy.to_string()), "{err}");
    assert_eq!(rig.server.local_addr(), old);
    let (status, _, _) = split(&rig.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!(status, 200);
}

/// Mutated requests over a real socket: every one gets a well-formed answer
/// with a 2xx or 4xx/5xx status, or (when it is cut short) a plain close;
/// nothing stays open and nothing panics.
#[test]
fn mutated_requests_get_an_answer_or_a_close() {
    let mut rig = Rig::new();
    let good = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..60 {
        let mut bytes = good.to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, next() as u8),
            }
        }
        let answer = rig.exchange_then(&bytes, true);
        if answer.is_empty() {
            continue; // cut short before a complete head: closed
        }
        let (status, head, body) = split(&answer);
        assert!(
            status == 200 || (400..600).contains(&status),
            "{status} for {:?}",
            String::from_utf8_lossy(&bytes)
        );
        if !head.contains("HEAD") {
            assert!(content_length(&head) >= body.len());
        }
    }
    for _ in 0..20 {
        if rig.server.connection_count() == 0 {
            break;
        }
        rig.turn();
    }
    assert_eq!(rig.server.connection_count(), 0);
    assert_eq!(rig.server.buffered, 0);
}
