//! A service's launch plan is resolved once: a crash-looping service costs no
//! user/group lookup (`/etc/passwd`, `/etc/group`) and no `access()` per
//! restart. Watched from outside with `strace -f` on the real binary.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn have_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `tend status --json` of the service `name`, or Null.
fn service(socket: &str, name: &str) -> Value {
    let out = Command::new(TEND)
        .args(["status", "--json", "-s", socket])
        .output()
        .expect("run client");
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .unwrap_or_default()
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or(Value::Null)
}

/// The pid and the rest of one `strace -f -o` line (`PID syscall(...`).
fn split_line(line: &str) -> Option<(i32, &str)> {
    let (pid, rest) = line.trim_start().split_once(' ')?;
    Some((pid.parse().ok()?, rest.trim_start()))
}

fn is_lookup(call: &str) -> bool {
    ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf"]
        .iter()
        .any(|file| call.contains(&format!("\"{file}\"")))
        && (call.starts_with("open") || call.starts_with("<... open"))
}

fn is_access(call: &str) -> bool {
    ["access(", "faccessat(", "faccessat2("]
        .iter()
        .any(|name| call.starts_with(name))
}

fn is_clone(call: &str) -> bool {
    call.starts_with("clone(") || call.starts_with("clone3(")
}

#[test]
fn a_crash_loop_makes_no_lookup_and_no_access_per_restart() {
    if !have_strace() {
        skip_without("strace is not installed (scripts/install-peers.sh installs it)");
        return;
    }
    let dir = TestDir::new("launch");
    let mut crash = json!({"name": "crash", "command": ["true"],
        "retry_delay": "10ms", "max_retry_delay": "10ms", "max_retries": 1000});
    if is_root() {
        // A user makes every spawn of the old code look it up; as root, `root`
        // exists everywhere and switching to it needs nothing.
        crash["user"] = json!("root");
    } else {
        println!("not root: checking access() only, without a user to look up");
    }
    let socket = dir.socket();
    let config = dir.write(
        "config.json",
        &json!({"control_socket": socket, "services": [crash]}).to_string(),
    );
    let trace = dir.join("trace");
    let log = fs::File::create(dir.join("tend.log")).expect("log");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=%file,clone,clone3", "-o"])
        .arg(&trace)
        .arg(TEND)
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("spawn strace");
    let _cleanup = KillGroupOnDrop(strace.id() as i32);
    let deadline = Instant::now() + PATIENCE * 2;
    while service(&socket, "crash")["restarts"].as_u64().unwrap_or(0) < 20 {
        assert!(
            Instant::now() < deadline,
            "no 20 restarts\n{}",
            fs::read_to_string(dir.join("tend.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = fs::read_to_string(&trace).expect("trace");
    let tend_pid = text.lines().find_map(split_line).map(|(pid, _)| pid);
    let tend_pid = tend_pid.expect("a traced tend");
    // SAFETY: SIGTERM to the tend this test started (under strace).
    unsafe { libc::kill(tend_pid, libc::SIGTERM) };
    let _ = strace.wait();
    let text = fs::read_to_string(&trace).expect("trace");
    let calls: Vec<&str> = text
        .lines()
        .filter_map(split_line)
        .filter(|(pid, _)| *pid == tend_pid)
        .map(|(_, call)| call)
        .collect();
    let first_spawn = calls
        .iter()
        .position(|c| is_clone(c))
        .expect("tend spawned");
    let (before, after) = calls.split_at(first_spawn);
    let spawns = after.iter().filter(|c| is_clone(c)).count();
    assert!(spawns >= 20, "{spawns} spawns traced");
    // The test sees what it looks for: the first resolution does both.
    assert!(before.iter().any(|c| is_access(c)), "no access() at load?");
    if is_root() {
        assert!(before.iter().any(|c| is_lookup(c)), "no lookup at load?");
    }
    let offending: Vec<&&str> = after
        .iter()
        .filter(|c| is_lookup(c) || is_access(c))
        .collect();
    assert!(
        offending.is_empty(),
        "after the first spawn:\n{offending:#?}\n(trace in {})",
        Path::new(&trace).display()
    );
}
