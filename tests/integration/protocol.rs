//! The control protocol spoken raw (SPEC §5): unknown fields refused for every
//! command with nothing changed, a last request line without a newline, and a
//! connection cap that idle clients cannot use to lock `tend status` out.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Send `line` as is and read one reply line.
fn ask_raw(socket: &str, line: &[u8]) -> Value {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).ok();
    s.write_all(line).expect("write");
    let mut reply = String::new();
    let _ = BufReader::new(&mut s).read_line(&mut reply);
    serde_json::from_str(reply.trim()).unwrap_or_else(|_| panic!("a JSON reply, got {reply:?}"))
}

#[test]
fn an_unknown_field_is_refused_by_every_command_and_changes_nothing() {
    let dir = TestDir::new("unknown");
    let config = |services: Value| json!({"control_socket": dir.socket(), "services": services});
    let sleeper = |name: &str| json!({"name": name, "command": ["/bin/sleep", "1000"]});
    let mut off = sleeper("off");
    off["enabled"] = json!(false);
    let path = dir.write(
        "config.json",
        &config(json!([sleeper("a"), off.clone()])).to_string(),
    );
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_state("a", "running");
    let pid = tend.service_pid("a");
    // A reload now would add "new": it must not happen.
    dir.write(
        "config.json",
        &config(json!([sleeper("a"), off, sleeper("new")])).to_string(),
    );
    let requests = [
        json!({"cmd": "status", "names": ["a"], "verbose": true}),
        json!({"cmd": "start", "names": ["off"], "wait": false, "force": true}),
        json!({"cmd": "stop", "names": ["a"], "now": true}),
        json!({"cmd": "restart", "names": ["a"], "wiat": true}),
        json!({"cmd": "signal", "name": "a", "signal": "KILL", "group": false}),
        json!({"cmd": "reload", "path": "/etc/other.json"}),
        json!({"cmd": "shutdown", "names": ["a"]}),
        json!({"cmd": "logs", "names": ["a"], "follow": false, "grep": "x"}),
    ];
    for request in &requests {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        let reply = ask_raw(&tend.socket, &line);
        assert_eq!(reply["ok"], false, "{request}: {reply}");
        let error = reply["error"].as_str().unwrap_or("");
        assert!(error.contains("unknown field"), "{request}: {reply}");
    }
    // Nothing changed: same pid, "off" still stopped, no "new", tend alive.
    assert_eq!(tend.service_pid("a"), pid);
    assert_eq!(tend.state("a"), "running");
    assert_eq!(tend.state("off"), "stopped");
    assert!(tend.service("new").is_null());
    // The same requests without the extra field work (shutdown last).
    let reply = ask_raw(&tend.socket, b"{\"cmd\":\"status\",\"names\":[\"a\"]}\n");
    assert_eq!(reply["ok"], true, "{reply}");
}

#[test]
fn a_last_request_line_without_newline_is_answered() {
    let dir = TestDir::new("nonewline");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]}),
    );
    tend.wait_state("a", "running");
    let mut s = UnixStream::connect(&tend.socket).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).ok();
    s.write_all(br#"{"cmd":"status","names":["a"]}"#)
        .expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read to EOF");
    let reply: Value = serde_json::from_str(text.trim()).expect("one JSON reply");
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["services"][0]["name"], "a");
}

/// Raise this process's open-file limit to its hard limit: the cap test holds
/// a thousand connections.
fn raise_nofile() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain out- and in-pointers to a valid rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[test]
fn idle_connections_at_the_cap_cannot_lock_out_status() {
    /// tend's `control::MAX_CLIENTS`.
    const MAX_CLIENTS: usize = 1024;
    raise_nofile();
    let dir = TestDir::new("cap");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]}),
    );
    tend.wait_state("a", "running");
    let mut idle: Vec<UnixStream> = Vec::new();
    for _ in 0..MAX_CLIENTS + 10 {
        match UnixStream::connect(&tend.socket) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect #{}: {e}", idle.len()),
        }
    }
    // Every slot is taken by a client that sends nothing; status still answers
    // (well within its own 30 s timeout), by taking the oldest idle slot.
    let (code, out, err) = tend.client(&["status"]);
    assert_eq!(code, 0, "{out}{err}\n{}", tend.log());
    assert!(out.contains("running"), "{out}");
    let (code, _, err) = tend.client(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    // The oldest idle connections are the ones that were closed.
    let first = &mut idle[0];
    first.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = [0u8; 16];
    assert!(
        matches!(first.read(&mut buf), Ok(0)),
        "the oldest was closed"
    );
    assert!(tend.log().contains("clients connected"), "{}", tend.log());
}
