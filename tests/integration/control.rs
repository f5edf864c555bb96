//! The control socket and the client commands: status, start, stop, restart,
//! signal, logs, reload, shutdown; socket safety; service discovery.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

fn sleeper(name: &str) -> Value {
    json!({"name": name, "command": ["/bin/sleep", "1000"]})
}

#[test]
fn socket_is_private_and_a_second_tend_is_refused() {
    let dir = TestDir::new("sock");
    let tend = Tend::start(&dir, json!({"services": [sleeper("a")]}));
    let mode = std::fs::metadata(&tend.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = Command::new(TEND)
        .args(["run", "-c"])
        .arg(&tend.config)
        .output()
        .expect("second tend");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"));
    // The first one is unharmed.
    tend.wait_state("a", "running");
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = TestDir::new("stale");
    {
        // A socket nobody listens on any more.
        let _l = std::os::unix::net::UnixListener::bind(dir.socket()).expect("bind");
    }
    assert!(dir.join("s.sock").exists());
    let tend = Tend::start(&dir, json!({"services": [sleeper("a")]}));
    tend.wait_state("a", "running");
}

#[test]
fn garbage_huge_and_idle_clients_do_not_stop_status() {
    let dir = TestDir::new("abuse");
    let tend = Tend::start(&dir, json!({"services": [sleeper("a")]}));
    tend.wait_state("a", "running");
    // 200 idle connections, held open.
    let idle: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(&tend.socket).ok())
        .collect();
    assert!(idle.len() >= 150);
    // Garbage gets an error reply.
    let mut g = UnixStream::connect(&tend.socket).expect("connect");
    g.write_all(b"this is not json\n").expect("write");
    g.set_read_timeout(Some(PATIENCE)).ok();
    let mut reply = String::new();
    let _ = g.read_to_string(&mut reply);
    let v: Value = serde_json::from_str(reply.trim()).expect("a JSON error reply");
    assert_eq!(v["ok"], false);
    // A 10 MB line is refused without hurting anyone.
    let mut big = UnixStream::connect(&tend.socket).expect("connect");
    big.set_write_timeout(Some(Duration::from_secs(5))).ok();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..10 {
        if big.write_all(&chunk).is_err() {
            break; // tend closed it: fine
        }
    }
    let (code, out, _) = tend.client(&["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("running"));
    drop(idle);
}

#[test]
fn status_table_and_health_check_exit_codes() {
    let dir = TestDir::new("health");
    let tend = Tend::start(
        &dir,
        json!({"services": [sleeper("a"), {"name": "off", "command": ["/bin/true"], "enabled": false}]}),
    );
    tend.wait_state("a", "running");
    let (code, out, _) = tend.client(&["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().next().unwrap_or("").contains("NAME"), "{out}");
    let (code, out, _) = tend.client(&["status", "a", "--json"]);
    assert_eq!(code, 0);
    let v: Vec<Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(v.len(), 1);
    for key in [
        "name",
        "state",
        "enabled",
        "pid",
        "uptime_secs",
        "restarts",
        "last_exit_code",
        "last_signal",
        "last_error",
        "completed",
        "next_start_in_secs",
        "waiting_for",
        "status_text",
    ] {
        assert!(v[0].get(key).is_some(), "missing {key}: {out}");
    }
    let (code, _, err) = tend.client(&["status", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
    // Stopping the longrun makes the health check fail.
    let (code, _, _) = tend.client(&["stop", "a"]);
    assert_eq!(code, 0);
    let (code, _, _) = tend.client(&["status"]);
    assert_eq!(code, 1);
}

#[test]
fn stop_waits_until_the_process_is_gone_and_start_brings_it_back() {
    let dir = TestDir::new("stopstart");
    let slow = dir.script(
        "slow",
        "trap 'sleep 0.3; exit 0' TERM; echo $$ > \"$DIR/pid\"; while :; do sleep 0.05; done",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "s", "command": [slow]}]}),
    );
    tend.wait_state("s", "running");
    let pid = dir.wait_pid("pid");
    let (code, _, err) = tend.client(&["stop", "s"]);
    assert_eq!(code, 0, "{err}");
    // When stop returns, the process is gone and the state is stopped.
    assert!(is_dead(pid));
    assert_eq!(tend.state("s"), "stopped");
    let (code, _, err) = tend.client(&["start", "s"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tend.state("s"), "running");
}

#[test]
fn start_of_a_service_that_fails_exits_1_and_says_why() {
    let dir = TestDir::new("startfail");
    let tend = Tend::start(
        &dir,
        // Not ready before it exits, so the start cannot count as done.
        json!({"services": [{"name": "bad", "command": ["/bin/sh", "-c", "exit 3"],
                             "enabled": false, "restart_policy": "never",
                             "readiness": {"type": "log", "pattern": "never printed"}}]}),
    );
    tend.wait_state("bad", "stopped");
    let (code, _, err) = tend.client(&["start", "bad"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad is failed"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
}

#[test]
fn restart_gives_a_new_pid_and_no_wait_returns_at_once() {
    let dir = TestDir::new("restart");
    let tend = Tend::start(&dir, json!({"services": [sleeper("a")]}));
    tend.wait_state("a", "running");
    let before = tend.service_pid("a");
    let (code, _, err) = tend.client(&["restart", "a"]);
    assert_eq!(code, 0, "{err}");
    let after = tend.service_pid("a");
    assert!(after.is_some() && after != before);
    assert_eq!(tend.state("a"), "running");
    let (code, _, _) = tend.client(&["restart", "--no-wait", "a"]);
    assert_eq!(code, 0);
    tend.wait_until("a restarted again", |t| {
        t.state("a") == "running" && t.service_pid("a") != after
    });
    let (code, _, err) = tend.client(&["restart", "ghost"]);
    assert_eq!(code, 1);
    assert!(err.contains("ghost"));
}

#[test]
fn signal_reaches_the_service() {
    let dir = TestDir::new("signal");
    let svc = dir.script(
        "svc",
        "trap 'echo hup >> \"$DIR/hups\"' HUP; : > \"$DIR/up\"; while :; do sleep 0.05; done",
    );
    let tend = Tend::start(&dir, json!({"services": [{"name": "s", "command": [svc]}]}));
    poll_until("trap set", PATIENCE, || dir.exists("up"));
    let (code, _, err) = tend.client(&["signal", "s", "HUP"]);
    assert_eq!(code, 0, "{err}");
    poll_until("HUP handled", PATIENCE, || dir.read("hups").contains("hup"));
    let (code, _, err) = tend.client(&["signal", "s", "SIGNOPE"]);
    assert_eq!(code, 2, "an unknown signal is a usage error: {err}");
}

#[test]
fn logs_returns_recent_lines_and_follows() {
    let dir = TestDir::new("logs");
    let talk = dir.script(
        "talk",
        "for i in 1 2 3 4 5; do echo line$i; done; exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "t", "command": [talk]}]}),
    );
    tend.wait_log("t | line5");
    let (code, out, _) = tend.client(&["logs", "t", "-n", "2"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].ends_with(" t | line4") && lines[1].ends_with(" t | line5"),
        "{out}"
    );
    // -f first prints the recent lines: once they are out, the follower is
    // registered, and every line from then on must follow.
    let mut follow = Command::new(TEND)
        .args(["logs", "t", "-n", "2", "-f", "-s", &tend.socket])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("follow");
    // (If the test fails, the follower ends when tend's guard stops tend.)
    let out = PipeReader::new(follow.stdout.take().expect("stdout"));
    poll_until("the follower printed the recent lines", PATIENCE, || {
        out.text().lines().count() >= 2
    });
    // Each line is `TIME t | TEXT`: keep the text.
    let texts = || -> Vec<String> {
        out.text()
            .lines()
            .map(|l| l.rsplit(" | ").next().unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(texts(), ["line4", "line5"]);
    let (code, _, _) = tend.client(&["restart", "t"]);
    assert_eq!(code, 0);
    poll_until("the follower printed the new run's lines", PATIENCE, || {
        out.text().lines().count() >= 7
    });
    assert_eq!(
        texts(),
        [
            "line4", "line5", "line1", "line2", "line3", "line4", "line5"
        ]
    );
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn reload_applies_the_four_cases_and_keeps_unchanged_pids() {
    let dir = TestDir::new("reload");
    let config = |services: Value| json!({"control_socket": dir.socket(), "services": services});
    let path = dir.write(
        "config.json",
        &config(json!([sleeper("keep"), sleeper("change"), sleeper("drop")])).to_string(),
    );
    let tend = Tend::start_with(&dir, &path, &[]);
    for n in ["keep", "change", "drop"] {
        tend.wait_state(n, "running");
    }
    let keep = tend.service_pid("keep");
    let change = tend.service_pid("change");
    let drop_pid = tend.service_pid("drop").expect("drop pid");
    dir.write(
        "config.json",
        &config(json!([sleeper("keep"),
                       {"name": "change", "command": ["/bin/sleep", "2000"]},
                       sleeper("add")]))
        .to_string(),
    );
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_state("add", "running");
    tend.wait_until("change restarted", |t| {
        t.state("change") == "running" && t.service_pid("change") != change
    });
    poll_until("drop's process gone", PATIENCE, || is_dead(drop_pid));
    tend.wait_until("drop forgotten", |t| t.service("drop").is_null());
    assert_eq!(tend.service_pid("keep"), keep);
    assert_eq!(tend.service("keep")["restarts"], 0);
    // An invalid file changes nothing and the client hears every problem.
    dir.write(
        "config.json",
        r#"{"services": [{"name": "keep", "command": []}, {"nme": 1}]}"#,
    );
    let (code, _, err) = tend.client(&["reload"]);
    assert_eq!(code, 1);
    assert!(err.contains("services[0] (keep).command"), "{err}");
    assert!(err.contains("services[1]"), "{err}");
    assert_eq!(tend.service_pid("keep"), keep);
    assert_eq!(tend.state("add"), "running");
}

#[test]
fn sighup_reloads() {
    let dir = TestDir::new("sighup");
    let path = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "services": [sleeper("a")]}).to_string(),
    );
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_state("a", "running");
    dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "services": [sleeper("a"), sleeper("b")]})
            .to_string(),
    );
    tend.signal(libc::SIGHUP);
    tend.wait_state("b", "running");
}

#[test]
fn reload_applies_top_level_changes_and_moves_the_socket() {
    let dir = TestDir::new("reloadtop");
    let path = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "log_level": "warn", "services": [sleeper("a")]})
            .to_string(),
    );
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_state("a", "running");
    let pid = tend.service_pid("a");
    let moved = dir.join("moved.sock").display().to_string();
    dir.write(
        "config.json",
        &json!({"control_socket": moved, "log_level": "info", "services": [sleeper("a"),
            {"name": "talker", "command": ["/bin/sh", "-c", "echo hello >&2; exec sleep 1000"]}]})
        .to_string(),
    );
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    poll_until("old socket removed", PATIENCE, || !dir.exists("s.sock"));
    let status = std::process::Command::new(TEND)
        .args(["status", "a", "-s", &moved])
        .output()
        .expect("client");
    assert!(status.status.success(), "{}", tend.log());
    assert!(String::from_utf8_lossy(&status.stdout).contains("running"));
    // log_level info took effect: tend's info lines (hidden under warn) show;
    // a service's stderr line shows at any level, as a line of its stream.
    poll_until(
        "tend's info line and talker's stderr line",
        PATIENCE,
        || {
            let log = tend.log();
            log.contains("tend INFO control socket moved to") && log.contains("talker !| hello")
        },
    );
    let s = std::process::Command::new(TEND)
        .args(["status", "--json", "-s", &moved])
        .output()
        .expect("client");
    let list: Vec<Value> = serde_json::from_slice(&s.stdout).unwrap_or_default();
    assert_eq!(list.first().and_then(|v| v["pid"].as_i64()), pid);
}

#[test]
fn shutdown_command_stops_everything() {
    let dir = TestDir::new("shutdowncmd");
    let mut tend = Tend::start(&dir, json!({"services": [sleeper("a")]}));
    tend.wait_state("a", "running");
    let (code, _, _) = tend.client(&["shutdown"]);
    assert_eq!(code, 0);
    assert_eq!(tend.wait_exit().code(), Some(0));
}

#[test]
fn client_without_a_running_tend_exits_1() {
    let dir = TestDir::new("nobody");
    let out = Command::new(TEND)
        .args(["status", "-s"])
        .arg(dir.join("none.sock"))
        .output()
        .expect("client");
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn services_dir_discovers_services_and_reload_rescans() {
    let dir = TestDir::new("discover");
    let sd = dir.join("services");
    let make = |name: &str, body: &str| {
        let folder = sd.join(name);
        std::fs::create_dir_all(&folder).expect("mkdir");
        let exe = folder.join(name);
        std::fs::write(&exe, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    make("alpha", "echo alpha-in-$(pwd); exec sleep 1000");
    make("beta", "exec sleep 1000");
    std::fs::write(
        sd.join("beta").join("service.json"),
        r#"{"enabled": false}"#,
    )
    .expect("json");
    let path = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "services_dir": sd.display().to_string(),
                "services": []})
        .to_string(),
    );
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_state("alpha", "running");
    tend.wait_log(&format!("alpha-in-{}", sd.join("alpha").display()));
    assert_eq!(tend.state("beta"), "stopped");
    make("gamma", "exec sleep 1000");
    let (code, _, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{err}");
    tend.wait_state("gamma", "running");
}

/// `cpu_secs` and `memory_bytes` (SPEC §3) measure the whole process group:
/// a busy child of the main process counts, and a new run starts afresh.
#[test]
fn status_shows_the_cpu_and_memory_of_the_process_group() {
    let dir = TestDir::new("usage");
    // The main process waits; its child burns CPU.
    let busy = dir.script("busy", "sh -c 'while :; do :; done' & wait");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "b", "command": [busy]}, sleeper("idle")]}),
    );
    let first = tend.wait_state("b", "running");
    let burnt = tend.wait_for("CPU of the busy child", |t| {
        let s = t.service("b");
        s["cpu_secs"].as_f64().filter(|&cpu| cpu >= 0.3).map(|_| s)
    });
    assert!(
        burnt["memory_bytes"].as_u64().is_some_and(|m| m > 0),
        "{burnt}"
    );
    assert_eq!(burnt["pid"], first["pid"]);
    // An idle service is measured too, at (nearly) no CPU.
    let idle = tend.wait_for("idle measured", |t| {
        let s = t.service("idle");
        s["memory_bytes"].as_u64().map(|_| s)
    });
    assert!(idle["cpu_secs"].as_f64().is_some_and(|c| c < 0.3), "{idle}");
    // After a restart the figures are the new group's, once measured.
    let (code, out, err) = tend.client(&["restart", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_for("new run measured", |t| {
        let s = t.service("b");
        (s["pid"] != first["pid"] && s["cpu_secs"].is_number()).then_some(s)
    });
    // A stopped service has none.
    let (code, out, err) = tend.client(&["stop", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tend.service("b")["cpu_secs"], Value::Null);
    assert_eq!(tend.service("b")["memory_bytes"], Value::Null);
    assert_eq!(tend.service("b")["usage_at"], Value::Null);
}
