//! The metrics endpoint (SPEC §9) against the real binary: every family,
//! `promtool check metrics`, a real Prometheus scraping it, routing, hostile
//! clients, bind errors and reloads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Every family a scrape has, in order.
const FAMILIES: [&str; 17] = [
    "tend_service_up",
    "tend_service_ready",
    "tend_service_state",
    "tend_service_restarts_total",
    "tend_service_last_exit_code",
    "tend_service_last_exit_signal",
    "tend_service_state_since_seconds",
    "tend_probe_failures_total",
    "tend_log_lines_total",
    "tend_service_cpu_seconds_total",
    "tend_service_memory_bytes",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "tend_build_info",
];

/// A port free right now (the kernel's pick; released for tend to bind).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

fn address(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Send `raw`, read until the server closes: (status, head, body). `None` if
/// the connection fails or closes without an answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(PATIENCE)).ok()?;
    s.write_all(raw).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end + 4]).into_owned();
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head, answer[end + 4..].to_vec()))
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String, Vec<u8>)> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    exchange(addr, raw.as_bytes())
}

/// The exposition, or empty on any failure (callers wait on it).
fn scrape(addr: SocketAddr) -> String {
    match get(addr, "/metrics") {
        Some((200, _, body)) => String::from_utf8_lossy(&body).into_owned(),
        _ => String::new(),
    }
}

/// The value of the sample line starting `series ` in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn with_metrics(dir: &TestDir, port: u16, services: Value) -> Tend {
    Tend::start(
        dir,
        json!({"metrics_address": format!("127.0.0.1:{port}"), "services": services}),
    )
}

fn services() -> Value {
    json!([
        {"name": "web", "command": ["/bin/sh", "-c",
            "echo one; echo two; echo oops >&2; exec sleep 1000"]},
        {"name": "job", "type": "oneshot", "command": ["/bin/true"]},
        {"name": "bad", "command": ["/bin/sh", "-c", "exit 3"], "restart_policy": "never"},
    ])
}

#[test]
fn a_scrape_has_every_family_and_promtool_accepts_it() {
    let dir = TestDir::new("mscrape");
    let port = free_port();
    let addr = address(port);
    let started = unix_now();
    let tend = with_metrics(&dir, port, services());
    tend.wait_log(&format!("metrics at http://{addr}/metrics"));
    tend.wait_state("web", "running");
    tend.wait_state("bad", "failed");
    let text = tend.wait_for("web's lines counted", |_| {
        let text = scrape(addr);
        let out = value(
            &text,
            r#"tend_log_lines_total{service="web",stream="stdout"}"#,
        );
        (out == Some(2.0)).then_some(text)
    });
    for family in FAMILIES {
        assert!(
            text.contains(&format!("# HELP {family} "))
                && text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    let v = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(v(r#"tend_service_up{service="web"}"#), 1.0);
    assert_eq!(v(r#"tend_service_up{service="bad"}"#), 0.0);
    assert_eq!(v(r#"tend_service_ready{service="web"}"#), 1.0);
    assert_eq!(
        v(r#"tend_service_state{service="web",state="running"}"#),
        1.0
    );
    assert_eq!(
        v(r#"tend_service_state{service="web",state="failed"}"#),
        0.0
    );
    assert_eq!(
        v(r#"tend_service_state{service="bad",state="failed"}"#),
        1.0
    );
    assert_eq!(
        v(r#"tend_service_state{service="job",state="stopped"}"#),
        1.0
    );
    assert_eq!(v(r#"tend_service_last_exit_code{service="bad"}"#), 3.0);
    assert_eq!(v(r#"tend_service_last_exit_code{service="job"}"#), 0.0);
    assert_eq!(
        value(&text, r#"tend_service_last_exit_code{service="web"}"#),
        None
    );
    assert_eq!(
        v(r#"tend_log_lines_total{service="web",stream="stderr"}"#),
        1.0
    );
    assert_eq!(v(r#"tend_service_restarts_total{service="bad"}"#), 0.0);
    // Each service in exactly one state.
    for name in ["web", "job", "bad"] {
        let ones = text
            .lines()
            .filter(|l| l.starts_with(&format!("tend_service_state{{service=\"{name}\",")))
            .filter(|l| l.ends_with(" 1"))
            .count();
        assert_eq!(ones, 1, "{name}:\n{text}");
    }
    let now = unix_now();
    let since = v(r#"tend_service_state_since_seconds{service="bad"}"#);
    assert!(
        since >= started - 1.0 && since <= now + 1.0,
        "{since} not in {started}..{now}"
    );
    let start = v("process_start_time_seconds");
    assert!(
        start >= started - 2.0 && start <= now + 1.0,
        "{start} not in {started}..{now}"
    );
    // Resource use: of the one service that is up, and of tend.
    assert!(v(r#"tend_service_memory_bytes{service="web"}"#) > 0.0);
    assert!(v(r#"tend_service_cpu_seconds_total{service="web"}"#) >= 0.0);
    assert_eq!(
        value(&text, r#"tend_service_memory_bytes{service="bad"}"#),
        None
    );
    assert!(v("process_resident_memory_bytes") > 0.0);
    assert!(v("process_open_fds") >= 3.0);
    assert!(v("process_max_fds") >= v("process_open_fds"));
    promtool_check(&text);
}

/// `promtool check metrics` on `text`; skipped (said so) without promtool.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        skip_without("promtool is not installed (Debian: prometheus)");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("promtool reads");
    }
    let out = child.wait_with_output().expect("promtool exits");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wrong_paths_methods_and_requests_are_refused() {
    let dir = TestDir::new("mroute");
    let port = free_port();
    let addr = address(port);
    let tend = with_metrics(&dir, port, json!([]));
    tend.wait_log("metrics at http://");
    let (status, _, body) = get(addr, "/nope").expect("an answer");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("/metrics"));
    let post = format!("POST /metrics HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    let (status, head, _) = exchange(addr, post.as_bytes()).expect("an answer");
    assert_eq!(status, 405);
    assert!(head.contains("\r\nAllow: GET, HEAD\r\n"), "{head}");
    let (status, _, _) = exchange(addr, b"hello there\r\n\r\n").expect("an answer");
    assert_eq!(status, 400);
    let head_only = format!("HEAD /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (status, head, body) = exchange(addr, head_only.as_bytes()).expect("an answer");
    assert_eq!((status, body.len()), (200, 0));
    assert!(head.contains("Content-Length: "), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    let (status, head, body) = get(addr, "/metrics?x=1").expect("an answer");
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("process_open_fds "));
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Raise this process's soft fd limit (the test holds hundreds of sockets,
/// alongside other tests).
fn raise_own_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointers to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[test]
fn five_hundred_idle_connections_neither_block_status_nor_grow_fds() {
    raise_own_fd_limit();
    let dir = TestDir::new("mhostile");
    let port = free_port();
    let addr = address(port);
    let tend = with_metrics(
        &dir,
        port,
        json!([{"name": "a", "command": ["/bin/sleep", "1000"]}]),
    );
    tend.wait_state("a", "running");
    assert!(!scrape(addr).is_empty());
    let baseline = open_fds(tend.pid());
    let idle: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect();
    assert!(idle.len() >= 400, "only {} connections", idle.len());
    let (code, out, err) = tend.client(&["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("running"), "{out}");
    // Nothing is held beyond the cap (a little slack for the status client).
    let cap = 64;
    for _ in 0..20 {
        let now = open_fds(tend.pid());
        assert!(now <= baseline + cap + 4, "{now} fds, baseline {baseline}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(idle);
    // Once they are gone, scrapes are answered again.
    tend.wait_until("a scrape after the flood", |_| !scrape(addr).is_empty());
    tend.wait_until("fds back near the baseline", |t| {
        open_fds(t.pid()) <= baseline + 2
    });
}

#[test]
fn a_taken_address_fails_tend_run() {
    let dir = TestDir::new("mtaken");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut tend = with_metrics(&dir, port, json!([]));
    let status = tend.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", tend.log());
    let log = tend.log();
    assert!(
        log.contains(&format!("unable to serve metrics on 127.0.0.1:{port}")),
        "{log}"
    );
    assert!(!dir.exists("s.sock"), "the control socket is removed again");
}

#[test]
fn reload_moves_the_listener_and_keeps_it_when_the_new_address_is_taken() {
    let dir = TestDir::new("mreload");
    let (first, second) = (free_port(), free_port());
    let write = |metrics: Option<u16>| {
        let mut config = json!({"control_socket": dir.socket(), "services": []});
        if let Some(port) = metrics {
            config["metrics_address"] = json!(format!("127.0.0.1:{port}"));
        }
        dir.write("config.json", &config.to_string())
    };
    let path = write(Some(first));
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_until("first address", |_| !scrape(address(first)).is_empty());
    write(Some(second));
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_until("second address", |_| !scrape(address(second)).is_empty());
    tend.wait_until("first address closed", |_| {
        TcpStream::connect(address(first)).is_err()
    });
    // A taken address: an error, and the current one serves on.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    write(Some(busy));
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_log(&format!("unable to serve metrics on 127.0.0.1:{busy}"));
    assert!(!scrape(address(second)).is_empty());
    // No address: the endpoint closes.
    write(None);
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_until("endpoint closed", |_| {
        TcpStream::connect(address(second)).is_err()
    });
}

/// A Prometheus server, killed (and reaped) on drop.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(prometheus: SocketAddr, expr: &str) -> Option<Value> {
    match get(prometheus, &format!("/api/v1/query?query={expr}"))? {
        (200, _, body) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

#[test]
fn a_real_prometheus_scrapes_every_service() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_without("prometheus is not installed (Debian: apt-get install prometheus)");
        return;
    }
    let dir = TestDir::new("mprom");
    let port = free_port();
    let tend = with_metrics(&dir, port, services());
    tend.wait_state("web", "running");
    let web_port = free_port();
    let config = dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: tend\n    static_configs:\n      \
             - targets: ['127.0.0.1:{port}']\n"
        ),
    );
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let _prometheus = Prometheus(child);
    let web = address(web_port);
    let prometheus_log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let names = |v: &Value| -> Vec<String> {
        let mut names: Vec<String> = v["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|s| s["metric"]["service"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let deadline = std::time::Instant::now() + PATIENCE * 2;
    let result = loop {
        if let Some(v) = query(web, "tend_service_up")
            && names(&v) == ["bad", "job", "web"]
        {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never had tend_service_up for every service\n--- prometheus ---\n{}\n--- tend ---\n{}",
            prometheus_log(),
            tend.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let up: Vec<(String, String)> = result["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["metric"]["service"].as_str().unwrap_or("").to_string(),
                s["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(up.contains(&("web".into(), "1".into())), "{up:?}");
    assert!(up.contains(&("bad".into(), "0".into())), "{up:?}");
    // The scrape itself was healthy: `up` of the target is 1.
    let target = query(web, "up").expect("query up");
    assert_eq!(
        target["data"]["result"][0]["value"][1].as_str(),
        Some("1"),
        "{target}"
    );
}
