//! tend as PID 1 of a fresh PID namespace (`unshare --pid --fork`): it handles
//! SIGTERM (a PID 1 only gets signals it has handlers for) and reaps orphans.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::*;

#[test]
#[ignore = "needs root"]
fn as_pid1_reaps_orphans_and_stops_on_sigterm() {
    require_root();
    assert!(
        Command::new("unshare").arg("--version").output().is_ok(),
        "this test needs unshare (util-linux)"
    );
    let dir = TestDir::new("pid1");
    let svc = dir.script(
        "svc",
        "echo $$ > \"$DIR/mypid\"\n(setsid sh -c 'sleep 0.2' &)\nexec sleep 1000",
    );
    let config = json!({"control_socket": "", "log_level": "debug",
                        "services": [{"name": "s", "command": [svc]}]});
    let path = dir.write("config.json", &config.to_string());
    let log = std::fs::File::create(dir.join("tend.log")).expect("log");
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(TEND)
        .args(["run", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("unshare");
    let _guard = KillGroupOnDrop(child.id() as i32);
    let _watch = watch(&dir.join("tend.log"), None);
    dir.wait_pid("mypid");
    // Inside the namespace, tend is pid 1 and the service is its child.
    let logtext = || std::fs::read_to_string(dir.join("tend.log")).unwrap_or_default();
    poll_until("orphan reaped by tend as pid 1", PATIENCE, || {
        logtext().contains("reaped orphan")
    });
    // unshare forwards nothing; signal tend (pid 1 inside) through its host pid.
    let host_pid = find_child_pid(child.id() as i32);
    // SAFETY: SIGTERM to the tend we started (via unshare).
    unsafe { libc::kill(host_pid, libc::SIGTERM) };
    let status = poll_until("tend (pid 1) to exit", PATIENCE, || {
        child.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0), "{}", logtext());
    assert!(logtext().contains("tend exiting with code 0"));
}

/// The pid of the single child of `parent`, from /proc.
fn find_child_pid(parent: i32) -> i32 {
    poll_until("tend forked by unshare", PATIENCE, || {
        std::fs::read_dir("/proc").ok().and_then(|entries| {
            entries.flatten().find_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                let ppid: i32 = stat
                    .rsplit(')')
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                (ppid == parent).then_some(pid)
            })
        })
    })
}
