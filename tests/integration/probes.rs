//! Readiness and liveness checks run for real (SPEC §4), against programs
//! nobody here wrote: Python's `http.server` and small Python servers here;
//! nginx, redis and grpcio's health server in `probes/peers.rs`.
//!
//! Servers are held back by a file the test creates (never by a sleep), so
//! "before" and "after" are decided by the test, and times are compared only
//! with generous bounds.

mod peers;

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::*;

/// A port nothing listens on right now (the kernel's pick; released at once).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

/// A service that writes the time it started into `DIR/<name>.started`, then sleeps.
pub fn marker_service(dir: &TestDir, name: &str, depends_on: &str) -> Value {
    let script = dir.script(
        &format!("{name}.sh"),
        &format!("date +%s.%N > \"$DIR/{name}.started\"\nexec sleep 1000"),
    );
    json!({"name": name, "command": [script], "dependencies": [depends_on]})
}

/// Seconds since the epoch written by `date +%s.%N` into a file.
pub fn marker_time(dir: &TestDir, name: &str) -> f64 {
    dir.read(name).trim().parse().unwrap_or(0.0)
}

pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The service's `probe.message` (empty when none).
pub fn probe_message(s: &Value) -> String {
    s["probe"]["message"].as_str().unwrap_or("").to_string()
}

/// A shell script that waits for `DIR/go`, notes the time, then execs `server`.
fn held_back(dir: &TestDir, server: &str) -> String {
    dir.script(
        "server.sh",
        &format!(
            "while [ ! -e \"$DIR/go\" ]; do sleep 0.05; done\n\
             date +%s.%N > \"$DIR/server.exec\"\nexec {server}"
        ),
    )
}

/// `python3 -m http.server`, opened late, as tcp or http readiness: the
/// dependent starts only after the server is up.
fn late_http_server(kind: &str) {
    let dir = TestDir::new(&format!("late-{kind}"));
    let port = free_port();
    let server = held_back(
        &dir,
        &format!("python3 -m http.server {port} --bind 127.0.0.1 --directory \"$DIR\""),
    );
    let readiness = match kind {
        "tcp" => json!({"type": "tcp", "address": format!("127.0.0.1:{port}")}),
        _ => json!({"type": "http", "url": format!("http://127.0.0.1:{port}/")}),
    };
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "web", "command": [server], "readiness": readiness},
            marker_service(&dir, "client", "web"),
        ]}),
    );
    // Not up yet: the probe fails with the refusal, and the dependent waits.
    let s = tend.wait_for("a refused attempt", |t| {
        let s = t.service("web");
        (s["probe"]["ok"] == false).then_some(s)
    });
    let message = probe_message(&s);
    assert!(
        message.starts_with(&format!("connect 127.0.0.1:{port}: ")) && message.contains("refused"),
        "{s}"
    );
    assert_eq!(s["state"], "starting");
    assert!(
        s["probe"]["failures_in_row"].as_u64().unwrap_or(0) >= 1,
        "{s}"
    );
    assert!(
        s["probe"]["at"].as_str().unwrap_or("").ends_with('Z'),
        "{s}"
    );
    let client = tend.service("client");
    assert_eq!(client["state"], "pending");
    assert_eq!(client["waiting_for"], "web");
    assert!(!dir.exists("client.started"));

    let go = wall_now();
    dir.write("go", "");
    let s = tend.wait_state("web", "running");
    assert_eq!(s["ready"], true);
    assert_eq!(s["probe"]["ok"], true, "{s}");
    assert_eq!(s["probe"]["failures_in_row"], 0);
    let expected = match kind {
        "tcp" => format!("connected to 127.0.0.1:{port}"),
        _ => "HTTP 200 OK".to_string(),
    };
    assert_eq!(probe_message(&s), expected);
    tend.wait_state("client", "running");
    tend.wait_until("client marker", |_| dir.exists("client.started"));
    let (server_at, client_at) = (
        marker_time(&dir, "server.exec"),
        marker_time(&dir, "client.started"),
    );
    assert!(server_at >= go - 1.0, "server {server_at} go {go}");
    assert!(
        client_at > server_at,
        "client {client_at} server {server_at}"
    );
    assert!(
        client_at < server_at + 30.0,
        "client {client_at} server {server_at}"
    );
}

#[test]
fn tcp_readiness_waits_for_a_late_http_server() {
    late_http_server("tcp");
}

#[test]
fn http_readiness_waits_for_a_late_http_server() {
    late_http_server("http");
}

/// 500 until `DIR/healthy` exists, then 200.
const SICK_THEN_HEALTHY: &str = r#"
import http.server, os, sys
port, folder = int(sys.argv[1]), sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        healthy = os.path.exists(os.path.join(folder, "healthy"))
        body = b"ok\n" if healthy else b"warming up\n"
        self.send_response(200 if healthy else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

#[test]
fn http_readiness_passes_only_after_a_200() {
    let dir = TestDir::new("http-500");
    let port = free_port();
    let server = dir.write("server.py", SICK_THEN_HEALTHY);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "web", "command": ["python3", server, port.to_string(), dir.path],
             "readiness": {"type": "http", "url": url, "interval": "200ms"}},
            marker_service(&dir, "client", "web"),
        ]}),
    );
    let s = tend.wait_for("a 500 answer", |t| {
        let s = t.service("web");
        probe_message(&s).contains("HTTP 500").then_some(s)
    });
    assert_eq!(
        probe_message(&s),
        format!("GET {url}: HTTP 500 Internal Server Error")
    );
    assert_eq!(s["state"], "starting");
    assert_eq!(tend.state("client"), "pending");
    assert!(!dir.exists("client.started"));
    dir.write("healthy", "");
    let s = tend.wait_state("web", "running");
    assert_eq!(probe_message(&s), "HTTP 200 OK");
    tend.wait_state("client", "running");
    assert!(tend.log().contains("web: starting -> running"));
}

/// Accepts connections and never answers.
const SILENT: &str = r#"
import socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(64)
held = []
while True:
    held.append(listener.accept()[0])
"#;

#[test]
fn a_server_that_never_answers_times_out_and_status_answers_throughout() {
    let dir = TestDir::new("silent");
    let port = free_port();
    let server = dir.write("silent.py", SILENT);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "web", "command": ["python3", server, port.to_string()],
             "readiness": {"type": "http", "url": url, "interval": "3s", "timeout": "3s"}},
        ]}),
    );
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut seen = None;
    while started.elapsed() < PATIENCE {
        let asked = Instant::now();
        let s = tend.service("web");
        slowest = slowest.max(asked.elapsed());
        if probe_message(&s).contains("connected, but no answer") {
            seen = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = seen.unwrap_or_else(|| panic!("no timeout seen\n{}", tend.log()));
    assert_eq!(
        probe_message(&s),
        format!("GET {url}: connected, but no answer within 3s")
    );
    assert_eq!(s["probe"]["ok"], false);
    assert_eq!(s["state"], "starting");
    // A blocking probe would hold a status request up to its 3 s timeout.
    assert!(slowest < Duration::from_millis(1500), "{slowest:?}");
}

#[test]
fn timeout_start_passing_fails_the_start_until_the_budget_is_gone() {
    let dir = TestDir::new("timeout-start");
    let port = free_port();
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "db", "command": ["/bin/sleep", "1000"],
             "readiness": {"type": "tcp", "address": format!("127.0.0.1:{port}")},
             "timeout_start": "1s", "max_retries": 1, "retry_delay": "100ms"},
        ]}),
    );
    let s = tend.wait_state("db", "failed");
    assert_eq!(s["restarts"], 1);
    let error = s["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains("not ready within timeout_start (1.0s)"),
        "{s}"
    );
    assert!(error.contains("giving up after 1 restarts"), "{s}");
    assert!(probe_message(&s).contains("refused"), "{s}");
    let log = tend.log();
    assert!(log.contains("db: starting -> stopping"), "{log}");
    assert!(log.contains("db: stopping -> restarting"), "{log}");
}

#[test]
fn liveness_failing_in_a_row_restarts_and_counts_against_the_budget() {
    let dir = TestDir::new("liveness");
    dir.write("healthy", "");
    let healthy = dir.join("healthy").display().to_string();
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "app", "command": ["/bin/sleep", "1000"],
             "liveness": {"type": "exec", "command": ["/bin/sh", "-c", format!("test -e {healthy}")],
                          "interval": "200ms", "failures": 2},
             "max_retries": 1, "retry_delay": "100ms"},
        ]}),
    );
    let s = tend.wait_for("a passing liveness check", |t| {
        let s = t.service("app");
        (s["probe"]["ok"] == true).then_some(s)
    });
    assert_eq!(probe_message(&s), "sh exited with code 0");
    assert_eq!(s["state"], "running");
    assert_eq!(s["restarts"], 0);
    let first = s["pid"].as_i64().expect("pid");
    fs::remove_file(&healthy).expect("remove the health file");
    let s = tend.wait_for("a restart", |t| {
        let s = t.service("app");
        (s["restarts"] == 1 && s["state"] == "running" && s["pid"].as_i64() != Some(first))
            .then_some(s)
    });
    assert!(is_dead(first), "the unhealthy run was stopped");
    let _ = s;
    let s = tend.wait_state("app", "failed");
    assert_eq!(s["restarts"], 1);
    let error = s["last_error"].as_str().unwrap_or("");
    assert!(
        error.starts_with("liveness check failed 2 times in a row: sh exited with code 1"),
        "{s}"
    );
    assert!(error.contains("giving up after 1 restarts"), "{s}");
}

/// Every live process whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let path = entry.path().join("cmdline");
        if let Ok(bytes) = fs::read(&path) {
            let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if line.contains(needle) {
                found.push(format!("{}: {line}", entry.path().display()));
            }
        }
    }
    found
}

/// Zombie children of `parent`.
fn zombies_of(parent: i32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            found.push(stat);
        }
    }
    found
}

#[test]
fn a_hanging_probe_command_is_killed_with_its_group_and_leaves_nothing() {
    let dir = TestDir::new("hanging");
    // A sleep of its own length, to find it among every other test's processes.
    let length = format!(
        "1000.{}{}",
        std::process::id(),
        dir.path.display().to_string().len()
    );
    let command = format!("sleep {length} & exec sleep {length}");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "app", "command": ["/bin/sleep", "1000"],
             "liveness": {"type": "exec", "command": ["/bin/sh", "-c", command],
                          "interval": "500ms", "timeout": "300ms", "failures": 1000}},
        ]}),
    );
    let s = tend.wait_for("three timeouts in a row", |t| {
        let s = t.service("app");
        (s["probe"]["failures_in_row"].as_u64().unwrap_or(0) >= 3).then_some(s)
    });
    assert_eq!(
        probe_message(&s),
        "sh timed out after 300ms; its process group was killed"
    );
    assert_eq!(s["state"], "running");
    // The search sees the probe's sleeps (else "none left" would prove nothing).
    poll_until("an attempt in flight", PATIENCE, || {
        !processes_with(&length).is_empty()
    });
    // At most the attempt in flight (two sleeps) and one being torn down.
    for _ in 0..10 {
        let alive = processes_with(&length);
        assert!(alive.len() <= 4, "{alive:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = tend.client(&["stop", "app"]);
    assert_eq!(code, 0, "{err}");
    tend.wait_state("app", "stopped");
    poll_until("every probe process is gone", PATIENCE, || {
        processes_with(&length).is_empty()
    });
    poll_until("no zombie is left", PATIENCE, || {
        zombies_of(tend.pid()).is_empty()
    });
}

/// Accepts connections and closes them.
const ACCEPT_AND_CLOSE: &str = r#"
import socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(256)
print("listening", flush=True)
while True:
    listener.accept()[0].close()
"#;

/// `voluntary_ctxt_switches` of a process: how often it went to sleep.
fn voluntary_switches(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn idle_probes_wake_tend_only_when_attempts_are_due() {
    let dir = TestDir::new("wakeups");
    let port = free_port();
    let server = dir.write("server.py", ACCEPT_AND_CLOSE);
    let mut services = vec![
        json!({"name": "server", "command": ["python3", server, port.to_string()],
        "readiness": {"type": "log", "pattern": "listening"}}),
    ];
    for i in 0..10 {
        services.push(
            json!({"name": format!("s{i}"), "command": ["/bin/sleep", "1000"],
            "dependencies": ["server"],
            "liveness": {"type": "tcp", "address": format!("127.0.0.1:{port}"), "interval": "1s"}}),
        );
    }
    let tend = Tend::start(&dir, json!({ "services": services }));
    tend.wait_until("every probe passed once", |t| {
        let all = t.status();
        all.len() == 11 && all.iter().skip(1).all(|s| s["probe"]["ok"] == true)
    });
    // 10 services × 1 attempt/s over 5 s = 50 attempts, in about 5 wakeups
    // when they coalesce; allow a lot for a busy machine, not a busy loop.
    let last_attempt = |t: &Tend| t.service("s0")["probe"]["at"].clone();
    let at_first = last_attempt(&tend);
    let before = voluntary_switches(tend.pid());
    std::thread::sleep(Duration::from_secs(5));
    let woke = voluntary_switches(tend.pid()) - before;
    eprintln!("{woke} wakeups for 50 attempts");
    assert!(woke <= 60, "{woke} wakeups for 50 attempts");
    assert_ne!(last_attempt(&tend), at_first, "the probes ran meanwhile");
}
