//! Checks against real servers: nginx (http), redis (tcp) and grpcio's health
//! server (grpc), each skipped with a printed reason when it is not installed
//! (scripts/install-peers.sh installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use super::{free_port, marker_service, marker_time, probe_message};
use crate::support::*;

/// `name` on `PATH` or in the usual sbin folders.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn python_has_grpc() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc, grpc_health.v1.health"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn nginx_with_http_readiness_and_liveness() {
    let Some(nginx) = find_program("nginx") else {
        skip_without("nginx is not installed (apt-get install -y nginx-light)");
        return;
    };
    let dir = TestDir::new("nginx");
    let port = free_port();
    let d = dir.path.display();
    // Root's workers would switch to a user that may not exist; elsewhere the
    // directive is ignored with a warning.
    let user = if is_root() { "user root root;" } else { "" };
    let conf = dir.write(
        "nginx.conf",
        &format!(
            "daemon off;\nworker_processes 1;\n{user}\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
             server {{\n  listen 127.0.0.1:{port};\n\
             location = /healthz {{ return 200 \"ok\\n\"; }}\n }}\n}}\n"
        ),
    );
    let url = format!("http://127.0.0.1:{port}/healthz");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "nginx", "command": [nginx, "-p", dir.path, "-c", conf,
                                          "-e", dir.join("error.log")],
             "stop_signal": "SIGQUIT",
             "readiness": {"type": "http", "url": url, "interval": "500ms"},
             "liveness": {"type": "http", "url": url, "interval": "300ms"}},
            marker_service(&dir, "client", "nginx"),
        ]}),
    );
    let s = tend.wait_state("nginx", "running");
    assert_eq!(s["ready"], true);
    tend.wait_state("client", "running");
    // Liveness runs on: its attempts pass with nginx's answer.
    let s = tend.wait_for("a passing liveness attempt", |t| {
        let s = t.service("nginx");
        (s["probe"]["ok"] == true && probe_message(&s) == "HTTP 200 OK").then_some(s)
    });
    assert_eq!(s["restarts"], 0);
    assert!(marker_time(&dir, "client.started") > 0.0);
    let errors = dir.read("error.log");
    assert!(!errors.contains("[error]"), "{errors}");
}

#[test]
fn redis_with_tcp_readiness() {
    let Some(redis) = find_program("redis-server") else {
        skip_without("redis-server is not installed (apt-get install -y redis-server)");
        return;
    };
    let dir = TestDir::new("redis");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "redis", "command": [redis, "--port", port.to_string(), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no", "--dir", dir.path],
             "readiness": {"type": "tcp", "address": address}},
            marker_service(&dir, "client", "redis"),
        ]}),
    );
    let s = tend.wait_state("redis", "running");
    assert_eq!(probe_message(&s), format!("connected to {address}"));
    tend.wait_state("client", "running");
    tend.wait_until("client marker", |_| dir.exists("client.started"));
}

/// grpcio's health server; `serve` mode: SERVING only while `DIR/flag`
/// exists; `sicken` mode: NOT_SERVING only while it exists.
const HEALTH_SERVER: &str = r#"
import os, sys, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
port, folder, mode = sys.argv[1], sys.argv[2], sys.argv[3]
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port("127.0.0.1:" + port)
server.start()
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
while True:
    flag = os.path.exists(os.path.join(folder, "flag"))
    serving = flag if mode == "serve" else not flag
    servicer.set("", SERVING if serving else NOT_SERVING)
    time.sleep(0.05)
"#;

#[test]
fn grpc_readiness_waits_for_serving() {
    if !python_has_grpc() {
        skip_without("python3 cannot import grpc (pip install grpcio grpcio-health-checking)");
        return;
    }
    let dir = TestDir::new("grpc-ready");
    let port = free_port();
    let server = dir.write("health.py", HEALTH_SERVER);
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "api", "command": ["python3", server, port.to_string(), dir.path, "serve"],
             "readiness": {"type": "grpc", "address": format!("127.0.0.1:{port}"),
                           "interval": "300ms"}},
            marker_service(&dir, "client", "api"),
        ]}),
    );
    let s = tend.wait_for("NOT_SERVING", |t| {
        let s = t.service("api");
        probe_message(&s).contains("NOT_SERVING").then_some(s)
    });
    assert_eq!(
        probe_message(&s),
        format!("grpc 127.0.0.1:{port}: the service is NOT_SERVING")
    );
    assert_eq!(s["state"], "starting");
    assert_eq!(tend.state("client"), "pending");
    assert!(!dir.exists("client.started"));
    dir.write("flag", "");
    let s = tend.wait_state("api", "running");
    assert_eq!(probe_message(&s), "SERVING");
    tend.wait_state("client", "running");
}

#[test]
fn grpc_liveness_not_serving_restarts_the_service() {
    if !python_has_grpc() {
        skip_without("python3 cannot import grpc (pip install grpcio grpcio-health-checking)");
        return;
    }
    let dir = TestDir::new("grpc-live");
    let port = free_port();
    let server = dir.write("health.py", HEALTH_SERVER);
    let address = format!("127.0.0.1:{port}");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "api", "command": ["python3", server, port.to_string(), dir.path, "sicken"],
             "readiness": {"type": "grpc", "address": address, "interval": "300ms"},
             "liveness": {"type": "grpc", "address": address, "interval": "300ms",
                          "failures": 2},
             "retry_delay": "100ms"},
        ]}),
    );
    let s = tend.wait_state("api", "running");
    let first = s["pid"].as_i64().expect("pid");
    tend.wait_for("a passing liveness attempt", |t| {
        let s = t.service("api");
        (s["state"] == "running" && s["probe"]["ok"] == true).then_some(())
    });
    dir.write("flag", "");
    let s = tend.wait_for("a restart", |t| {
        let s = t.service("api");
        (s["restarts"].as_u64().unwrap_or(0) >= 1).then_some(s)
    });
    let error = s["last_error"].as_str().unwrap_or("");
    assert!(
        error.starts_with("liveness check failed 2 times in a row: grpc ")
            && error.contains("NOT_SERVING"),
        "{s}"
    );
    poll_until("the unhealthy run is gone", PATIENCE, || is_dead(first));
}
