//! Readiness by `notify` (sd_notify) and `fd` (s6), the notify watchdog, and
//! tend speaking sd_notify to its own supervisor (SPEC §4).
//!
//! The notifying programs are real ones: Debian's `systemd-notify` (which
//! sends from a child of the service, accepted through the process group),
//! Python's socket module writing to `$NOTIFY_SOCKET` as sd_notify(3) does,
//! and plain `sh` writing a newline to its readiness fd.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Whether `program` is on `PATH`; tests that need it say so and pass without.
fn have(program: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip_without(&format!("{program} is not installed"));
    }
    found
}

/// A marker file's number (a `date +%s%N` time), 0 if absent.
fn time_in(dir: &TestDir, name: &str) -> u128 {
    dir.read(name).trim().parse().unwrap_or(0)
}

#[test]
fn systemd_notify_from_a_script_makes_the_service_ready() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TestDir::new("sdnotify");
    let n = dir.script(
        "n",
        "sleep 1; date +%s%N > \"$DIR/n-before\"\n\
         systemd-notify --ready --status=\"hello\"\n\
         exec sleep 1000",
    );
    let dep = dir.script("dep", "date +%s%N > \"$DIR/dep\"; exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "n", "command": [n], "readiness": {"type": "notify"}},
            {"name": "dep", "command": [dep], "dependencies": ["n"]},
        ]}),
    );
    let s = tend.wait_state("n", "running");
    assert_eq!(s["ready"], true);
    assert_eq!(s["status_text"], "hello");
    tend.wait_state("dep", "running");
    poll_until("dep wrote its time", PATIENCE, || time_in(&dir, "dep") > 0);
    assert!(
        time_in(&dir, "dep") >= time_in(&dir, "n-before"),
        "the dependent started before READY=1"
    );
    assert_eq!(tend.service("n")["restarts"], 0);
    // The table shows it too.
    let (_, table, _) = tend.client(&["status", "n"]);
    assert!(table.contains("running"), "{table}");
}

#[test]
fn a_python_service_writes_to_its_socket_itself() {
    if !have("python3") {
        return;
    }
    let dir = TestDir::new("python");
    let code = "import os, socket, time\n\
        addr = os.environ['NOTIFY_SOCKET']\n\
        with open(os.environ['DIR'] + '/env.tmp', 'w') as f:\n    \
            f.write(addr + '|' + os.environ.get('WATCHDOG_USEC', 'none'))\n\
        os.rename(os.environ['DIR'] + '/env.tmp', os.environ['DIR'] + '/env')\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        s.sendto(b'STATUS=warming up', addr)\n\
        time.sleep(0.5)\n\
        s.sendto(b'READY=1\\nSTATUS=serving requests', addr)\n\
        time.sleep(1000)\n";
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "py", "command": ["python3", "-c", code],
            "readiness": {"type": "notify"},
            "environment": {"DIR": dir.path.display().to_string()}}]}),
    );
    let s = tend.wait_state("py", "running");
    assert_eq!(s["status_text"], "serving requests");
    let env = dir.read("env");
    let (socket, watchdog) = env.split_once('|').expect("socket|watchdog");
    assert!(socket.ends_with("/py.sock"), "{env}");
    assert_eq!(watchdog, "none", "no watchdog configured");
    // The folder lets others reach the socket by name, never list or write it.
    let folder = Path::new(socket).parent().expect("folder");
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(folder).ok(), Some(0o711), "{}", folder.display());
    assert_eq!(mode(Path::new(socket)).ok(), Some(0o666));
    drop(tend);
    assert!(!Path::new(socket).exists(), "the socket is removed at exit");
    assert!(!folder.exists(), "and its folder");
}

#[test]
fn a_missing_watchdog_ping_restarts_the_service() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TestDir::new("watchdog");
    // Pings for 2.4 s, past the 1 s watchdog, then goes quiet.
    let w = dir.script(
        "w",
        "echo \"$WATCHDOG_USEC\" > \"$DIR/usec\"\n\
         systemd-notify --ready\n\
         i=0; while [ $i -lt 8 ]; do sleep 0.3; systemd-notify WATCHDOG=1; i=$((i+1)); done\n\
         [ -e \"$DIR/quiet\" ] || touch \"$DIR/quiet\"\n\
         exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "w", "command": [w], "retry_delay": "10s",
            "readiness": {"type": "notify", "watchdog": "1s"}}]}),
    );
    tend.wait_state("w", "running");
    poll_until("w stopped pinging", PATIENCE, || dir.exists("quiet"));
    let s = tend.service("w");
    assert_eq!(s["restarts"], 0, "pinged in time: {s}");
    assert_eq!(dir.read("usec").trim(), "1000000");
    let s = tend.wait_state("w", "restarting");
    let error = s["last_error"].as_str().unwrap_or("");
    assert!(error.contains("WATCHDOG"), "{error}");
    assert_eq!(s["restarts"], 1);
}

#[test]
fn extend_timeout_keeps_a_slow_start_alive() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TestDir::new("extend");
    let slow = dir.script(
        "slow",
        "systemd-notify EXTEND_TIMEOUT_USEC=20000000\n\
         sleep 2.5\n\
         systemd-notify --ready\n\
         exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "slow", "command": [slow], "timeout_start": "1s",
            "readiness": {"type": "notify"}}]}),
    );
    let s = tend.wait_state("slow", "running");
    assert_eq!(s["restarts"], 0, "{s}");
    assert_eq!(s["last_error"], Value::Null);
}

#[test]
fn mainpid_hands_the_service_to_a_forked_daemon() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TestDir::new("mainpid");
    // The classic forking daemon: the script starts the daemon, names it, and
    // exits; the service is up as long as the daemon is.
    let d = dir.script(
        "d",
        "sleep 1000 &\n\
         echo $! > \"$DIR/daemon\"\n\
         systemd-notify --ready \"MAINPID=$!\"\n\
         exit 0",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "d", "command": [d], "retry_delay": "10s",
            "readiness": {"type": "notify"}}]}),
    );
    poll_until("the daemon's pid", PATIENCE, || {
        !dir.read("daemon").trim().is_empty()
    });
    let daemon: i64 = dir.read("daemon").trim().parse().expect("a pid");
    tend.wait_until("d runs as the daemon", |t| {
        let s = t.service("d");
        s["state"] == "running" && s["pid"] == daemon
    });
    tend.wait_log("main process is now pid");
    // The script's own exit changed nothing: still running, no restart.
    let s = tend.service("d");
    assert_eq!(s["restarts"], 0, "{s}");
    // The daemon's death is the service's.
    // SAFETY: a process the test's service started, alive as tend reported.
    unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
    let s = tend.wait_state("d", "restarting");
    assert_eq!(s["last_signal"], "SIGKILL", "{s}");
}

#[test]
fn a_stranger_is_ignored_and_logged_once() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TestDir::new("stranger");
    let n = dir.script(
        "n",
        "echo \"$NOTIFY_SOCKET\" > \"$DIR/sock.tmp\"; mv \"$DIR/sock.tmp\" \"$DIR/sock\"\n\
         while [ ! -e \"$DIR/go\" ]; do sleep 0.05; done\n\
         systemd-notify --ready\n\
         exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "n", "command": [n],
            "readiness": {"type": "notify"}}]}),
    );
    poll_until("the socket's path", PATIENCE, || dir.exists("sock"));
    let path = dir.read("sock").trim().to_string();
    // The test process is no part of the service: READY=1 from it, many
    // times, changes nothing and is logged once.
    let stranger = UnixDatagram::unbound().expect("socket");
    for _ in 0..500 {
        let _ = stranger.send_to(b"READY=1\nSTATUS=forged", &path);
    }
    tend.wait_log(&format!(
        "ignored a notify message from pid {}",
        std::process::id()
    ));
    let s = tend.service("n");
    assert_eq!(s["state"], "starting", "{s}");
    assert_eq!(s["status_text"], Value::Null);
    std::fs::write(dir.join("go"), "").expect("go");
    tend.wait_state("n", "running");
    let log = tend.log();
    assert_eq!(
        log.matches("ignored a notify message").count(),
        1,
        "one line, then a count a minute later:\n{log}"
    );
}

#[test]
fn an_fd_newline_makes_the_service_ready_and_its_dependent_waits() {
    let dir = TestDir::new("fd");
    let three = dir.script(
        "three",
        "sleep 1; date +%s%N > \"$DIR/three\"; echo >&3; exec sleep 1000",
    );
    // Fd 7, with garbage before the newline and a pause in between.
    let seven = dir.script(
        "seven",
        "sleep 1; printf 'not yet' >&7; sleep 0.5\n\
         date +%s%N > \"$DIR/seven\"; echo ' now' >&7; exec sleep 1000",
    );
    let dep = dir.script("dep", "date +%s%N > \"$DIR/dep\"; exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "three", "command": [three], "readiness": {"type": "fd", "fd": 3}},
            {"name": "seven", "command": [seven], "readiness": {"type": "fd", "fd": 7}},
            {"name": "dep", "command": [dep], "dependencies": ["three", "seven"]},
        ]}),
    );
    for name in ["three", "seven"] {
        let s = tend.wait_state(name, "running");
        assert_eq!(s["ready"], true);
    }
    tend.wait_state("dep", "running");
    poll_until("dep wrote its time", PATIENCE, || time_in(&dir, "dep") > 0);
    let dep = time_in(&dir, "dep");
    assert!(
        dep >= time_in(&dir, "three"),
        "dep started before three's newline"
    );
    assert!(
        dep >= time_in(&dir, "seven"),
        "dep started before seven's newline"
    );
}

#[test]
fn an_fd_closed_without_a_newline_is_not_readiness() {
    let dir = TestDir::new("fdeof");
    let quiet = dir.script("quiet", "exec 3>&-; touch \"$DIR/closed\"; exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "quiet", "command": [quiet], "timeout_start": "2s",
            "retry_delay": "10s", "readiness": {"type": "fd", "fd": 3}}]}),
    );
    poll_until("fd closed", PATIENCE, || dir.exists("closed"));
    let s = tend.wait_state("quiet", "restarting");
    let error = s["last_error"].as_str().unwrap_or("");
    assert!(error.contains("not ready within timeout_start"), "{error}");
}

/// Datagrams that arrive at `socket` within `limit`, until `done` says so.
fn collect(
    socket: &UnixDatagram,
    limit: Duration,
    mut done: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    while Instant::now() < deadline && !done(&got) {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[test]
fn tend_speaks_sd_notify_upward() {
    let dir = TestDir::new("upward");
    let manager_path = dir.join("manager.sock");
    let manager = UnixDatagram::bind(&manager_path).expect("bind");
    let slow = dir.script(
        "slow",
        "env > \"$DIR/env.tmp\"; mv \"$DIR/env.tmp\" \"$DIR/env\"\n\
         sleep 1; echo >&3; exec sleep 1000",
    );
    let config = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "services": [
            {"name": "slow", "command": [slow], "readiness": {"type": "fd", "fd": 3}},
            {"name": "plain", "command": ["sleep", "1000"]},
        ]})
        .to_string(),
    );
    let manager_str = manager_path.display().to_string();
    let mut tend = Tend::start_with(
        &dir,
        &config,
        &[("NOTIFY_SOCKET", &manager_str), ("WATCHDOG_USEC", "400000")],
    );
    let got = collect(&manager, PATIENCE, |got| {
        got.iter().any(|m| m.starts_with("READY=1"))
    });
    let ready = got
        .iter()
        .find(|m| m.starts_with("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {got:?}\n{}", tend.log()));
    assert_eq!(ready, "READY=1\nSTATUS=2 running, 0 starting, 0 failed");
    assert_eq!(
        tend.state("slow"),
        "running",
        "READY=1 only once everything is up"
    );
    assert!(
        got.iter()
            .any(|m| m.starts_with("STATUS=") && m.contains("1 starting")),
        "a STATUS line while slow was starting: {got:?}"
    );
    // Pings every 200 ms (half of WATCHDOG_USEC).
    let pings = collect(&manager, PATIENCE, |got| {
        got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3
    });
    assert!(
        pings.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3,
        "{pings:?}"
    );
    // The service saw none of tend's own variables.
    let env = dir.read("env");
    assert!(!env.contains(&manager_str), "{env}");
    assert!(!env.contains("WATCHDOG_USEC"), "{env}");
    tend.signal(libc::SIGTERM);
    let stopping = collect(&manager, PATIENCE, |got| {
        got.iter().any(|m| m.starts_with("STOPPING=1"))
    });
    assert!(
        stopping.iter().any(|m| m.starts_with("STOPPING=1")),
        "{stopping:?}"
    );
    assert!(tend.wait_exit().success());
}

#[test]
fn tend_notifies_an_abstract_socket_and_survives_a_missing_one() {
    use std::os::linux::net::SocketAddrExt;
    let dir = TestDir::new("abstract");
    let name = format!("tend-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
    let manager = UnixDatagram::bind_addr(&addr).expect("bind");
    let config = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "services": [
            {"name": "plain", "command": ["sleep", "1000"]}]})
        .to_string(),
    );
    let tend = Tend::start_with(&dir, &config, &[("NOTIFY_SOCKET", &format!("@{name}"))]);
    let got = collect(&manager, PATIENCE, |got| {
        got.iter().any(|m| m.starts_with("READY=1"))
    });
    assert!(got.iter().any(|m| m.starts_with("READY=1")), "{got:?}");
    drop(tend);
    // Nobody listening: logged once, and tend runs as ever.
    let dir = TestDir::new("nomanager");
    let config = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(), "services": [
            {"name": "plain", "command": ["sleep", "1000"]}]})
        .to_string(),
    );
    let missing = dir.join("nobody.sock").display().to_string();
    let tend = Tend::start_with(&dir, &config, &[("NOTIFY_SOCKET", &missing)]);
    tend.wait_state("plain", "running");
    tend.wait_log("cannot notify the service manager");
    assert_eq!(
        tend.log()
            .matches("cannot notify the service manager")
            .count(),
        1
    );
}

#[test]
fn reload_opens_and_removes_notify_sockets() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TestDir::new("reload");
    let n = dir.script(
        "n",
        "echo \"$NOTIFY_SOCKET\" > \"$DIR/$1.tmp\"; mv \"$DIR/$1.tmp\" \"$DIR/$1\"\n\
         systemd-notify --ready --status=\"$1 up\"\n\
         exec sleep 1000",
    );
    let config =
        |services: Value| json!({"control_socket": dir.socket(), "services": services}).to_string();
    let path = dir.write(
        "config.json",
        &config(json!([{"name": "plain", "command": ["sleep", "1000"]}])),
    );
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_state("plain", "running");
    // A service added by a reload has its socket before its first spawn.
    let notified = |name: &str| {
        json!({"name": name, "command": [&n, name],
        "readiness": {"type": "notify"}})
    };
    dir.write(
        "config.json",
        &config(json!([{"name": "plain", "command": ["sleep", "1000"]}, notified("added")])),
    );
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let s = tend.wait_state("added", "running");
    assert_eq!(s["status_text"], "added up");
    let socket = dir.read("added").trim().to_string();
    assert!(Path::new(&socket).exists(), "{socket}");
    // Removed: its socket goes once it is down and forgotten.
    dir.write(
        "config.json",
        &config(json!([{"name": "plain", "command": ["sleep", "1000"]}])),
    );
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_until("added forgotten", |t| t.service("added").is_null());
    poll_until("its socket removed", PATIENCE, || {
        !Path::new(&socket).exists()
    });
}

#[test]
fn a_service_running_as_another_user_reaches_its_socket() {
    if !is_root() || !have("systemd-notify") {
        println!("SKIPPED: needs root and systemd-notify");
        return;
    }
    let dir = TestDir::new("nobody");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let n = dir.script(
        "n",
        "systemd-notify --ready --status=\"as $(id -u)\"; exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "n", "command": [n], "user": "65534", "group": "65534",
            "readiness": {"type": "notify"}}]}),
    );
    let s = tend.wait_state("n", "running");
    assert_eq!(s["status_text"], "as 65534");
}
