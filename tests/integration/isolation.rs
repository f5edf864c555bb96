//! `isolate` (namespaces: root only), `nice`, `io_priority`, `oom_score_adj`,
//! `cpu_affinity`, `sha256`, and `tend top`: each observed from outside,
//! through /proc, the service's own output and `tend status`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// The lines service `name` wrote, from tend's log (`... name | line`).
fn lines_of(tend: &Tend, name: &str) -> Vec<String> {
    let marker = format!(" {name} | ");
    tend.log()
        .lines()
        .filter_map(|l| l.split_once(&marker).map(|(_, rest)| rest.to_string()))
        .collect()
}

/// Wait until service `name` has written a line `last`; all its lines.
#[track_caller]
fn wait_lines(tend: &Tend, name: &str, last: &str) -> Vec<String> {
    tend.wait_for(&format!("{name} to print {last:?}"), |t| {
        let lines = lines_of(t, name);
        lines.iter().any(|l| l == last).then_some(lines)
    })
}

/// `/proc/PID/ns/KIND`, as a string such as `net:[4026531840]`.
fn ns(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
}

#[track_caller]
fn running_pid(tend: &Tend, name: &str) -> i64 {
    tend.wait_state(name, "running")["pid"]
        .as_i64()
        .expect("a pid")
}

#[test]
#[ignore = "needs root"]
fn each_namespace_is_new_only_when_asked_for() {
    require_root();
    let dir = TestDir::new("ns");
    let sleep = |name: &str, isolate: Value| json!({"name": name, "command": ["/bin/sleep", "1000"], "isolate": isolate});
    let all = json!({"network": true, "tmp": true, "ipc": true, "hostname": "all"});
    let tend = Tend::start(
        &dir,
        json!({"services": [
            sleep("net", json!({"network": true})),
            sleep("tmp", json!({"tmp": true})),
            sleep("ipc", json!({"ipc": true})),
            sleep("uts", json!({"hostname": "uts"})),
            sleep("all", all),
            sleep("none", json!({})),
        ]}),
    );
    let kinds = [
        ("net", "net"),
        ("mnt", "tmp"),
        ("ipc", "ipc"),
        ("uts", "uts"),
    ];
    for service in ["net", "tmp", "ipc", "uts", "all", "none"] {
        let pid = running_pid(&tend, service);
        for (kind, asked_by) in kinds {
            let new = service == asked_by || service == "all";
            let (own, tends) = (ns(pid, kind), ns(tend.pid().into(), kind));
            assert_eq!(
                own != tends,
                new,
                "{service}: {kind} is {own}, tend's {tends}"
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn a_file_in_an_isolated_tmp_is_not_seen_outside_and_each_run_starts_empty() {
    require_root();
    let dir = TestDir::new("tmp");
    let name = format!("tend-isolate-{}", std::process::id());
    // Not a script in the test folder: that is under /tmp, which it hides.
    let script = format!(
        "echo \"found $(ls -A /tmp /var/tmp | grep -c {name})\"; \
         echo secret > /tmp/{name}; echo secret > /var/tmp/{name}; \
         stat -c 'mode %a' /tmp /var/tmp; echo written; exec sleep 1000"
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "t", "command": ["/bin/sh", "-c", script],
                             "isolate": {"tmp": true}}]}),
    );
    let lines = wait_lines(&tend, "t", "written");
    assert_eq!(
        lines,
        ["found 0", "mode 1777", "mode 1777", "written"],
        "{lines:?}"
    );
    for folder in ["/tmp", "/var/tmp"] {
        let path = Path::new(folder).join(&name);
        assert!(!path.exists(), "{} is visible outside", path.display());
    }
    // A restart gets a fresh /tmp: the last run's file is gone.
    let (code, _, err) = tend.client(&["restart", "t"]);
    assert_eq!(code, 0, "{err}");
    tend.wait_until("the second run printed", |t| {
        lines_of(t, "t").iter().filter(|l| *l == "written").count() == 2
    });
    let second: Vec<String> = lines_of(&tend, "t").into_iter().skip(4).collect();
    assert_eq!(second.first().map(String::as_str), Some("found 0"));
}

/// `ip` of iproute2, which the network test runs inside the namespace.
fn ip() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("this test needs iproute2's ip")
}

#[test]
#[ignore = "needs root"]
fn an_isolated_network_has_only_loopback_and_it_is_up() {
    require_root();
    let dir = TestDir::new("net");
    let script = format!("{} -o link; echo listed; exec sleep 1000", ip());
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "n", "command": ["/bin/sh", "-c", script],
                             "isolate": {"network": true}}]}),
    );
    let lines = wait_lines(&tend, "n", "listed");
    assert_eq!(lines.len(), 2, "one interface, then the marker: {lines:?}");
    let lo = &lines[0];
    assert!(lo.starts_with("1: lo: <"), "{lo}");
    let flags = lo.split(['<', '>']).nth(1).unwrap_or_default();
    assert!(flags.split(',').any(|f| f == "UP"), "lo is not up: {lo}");
}

#[test]
#[ignore = "needs root"]
fn the_hostname_is_the_one_asked_for() {
    require_root();
    let dir = TestDir::new("uts");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "h",
            "command": ["/bin/sh", "-c", "hostname; uname -n; echo done; exec sleep 1000"],
            "isolate": {"hostname": "tend-box.example"}}]}),
    );
    let lines = wait_lines(&tend, "h", "done");
    assert_eq!(lines, ["tend-box.example", "tend-box.example", "done"]);
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        "tend-box.example",
        "the host's name must not change"
    );
}

/// `nice` (field 19 of /proc/PID/stat), `ionice -p`, `oom_score_adj` and
/// `Cpus_allowed_list` of a running process.
fn scheduling_of(pid: i64) -> (i64, String, String, String) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_comm = stat.rsplit(')').next().unwrap_or_default();
    // Fields from 3 (state) on: nice is field 19, so index 16 here.
    let nice = after_comm
        .split_whitespace()
        .nth(16)
        .and_then(|n| n.parse().ok())
        .expect("nice");
    let out = Command::new("ionice")
        .args(["-p", &pid.to_string()])
        .output()
        .expect("ionice");
    let ionice = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let oom = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .expect("oom_score_adj")
        .trim()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let cpus = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default()
        .trim()
        .to_string();
    (nice, ionice, oom, cpus)
}

#[test]
fn priorities_are_set_before_exec() {
    let dir = TestDir::new("prio");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "p", "command": ["/bin/sleep", "1000"], "nice": 5,
             "io_priority": {"class": "best-effort", "level": 6}, "oom_score_adj": 500,
             "cpu_affinity": [0]},
            {"name": "idle", "command": ["/bin/sleep", "1000"],
             "io_priority": {"class": "idle"}},
        ]}),
    );
    let pid = running_pid(&tend, "p");
    assert_eq!(
        scheduling_of(pid),
        (5, "best-effort: prio 6".into(), "500".into(), "0".into())
    );
    let pid = running_pid(&tend, "idle");
    assert_eq!(scheduling_of(pid).1, "idle");
}

/// Whether this process has capability `bit` (`CapEff` of /proc/self/status).
fn has_capability(bit: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

const CAP_SYS_RESOURCE: u32 = 24;

#[test]
#[ignore = "needs root"]
fn lower_priorities_need_root_and_get_it() {
    require_root();
    let dir = TestDir::new("prio-root");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "p", "command": ["/bin/sleep", "1000"], "nice": -5,
             "io_priority": {"class": "realtime", "level": 3}},
            {"name": "oom", "command": ["/bin/sleep", "1000"], "oom_score_adj": -500},
        ]}),
    );
    let pid = running_pid(&tend, "p");
    let (nice, ionice, _, _) = scheduling_of(pid);
    assert_eq!((nice, ionice.as_str()), (-5, "realtime: prio 3"));
    // Some sandboxes drop CAP_SYS_RESOURCE even for root: then the refusal is
    // a spawn error at its own stage.
    if has_capability(CAP_SYS_RESOURCE) {
        let pid = running_pid(&tend, "oom");
        assert_eq!(scheduling_of(pid).2, "-500");
    } else {
        let status = tend.wait_state("oom", "failed");
        assert_eq!(
            status["last_error"],
            "spawn failed: oom_score_adj: Permission denied (os error 13)"
        );
    }
}

const NOBODY: u32 = 65534;

/// A client command run as `nobody` (the client trusts only root and its own
/// uid, and this tend runs as nobody).
fn client_as_nobody(tend: &Tend, args: &[&str]) -> String {
    let out = Command::new(TEND)
        .args(args)
        .args(["-s", &tend.socket])
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root"]
fn a_refused_namespace_fails_the_spawn_with_its_stage_and_check_warns() {
    // tend as nobody stands for a container that refuses namespaces: the same
    // EPERM from unshare.
    require_root();
    let dir = TestDir::new("refused");
    std::os::unix::fs::chown(&dir.path, Some(NOBODY), Some(NOBODY)).expect("chown");
    let config = json!({"control_socket": dir.socket(), "services": [
        {"name": "iso", "command": ["/bin/sleep", "1000"], "isolate": {"network": true}},
        {"name": "plain", "command": ["/bin/sleep", "1000"]},
    ]});
    let path = dir.write("config.json", &config.to_string());
    let check = Command::new(TEND)
        .args(["check", "-c"])
        .arg(&path)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("check");
    let warning = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{warning}");
    assert!(
        warning.contains("services[0] (iso).isolate: new namespaces need root")
            && warning.contains("uid 65534"),
        "{warning}"
    );
    let tend = Tend::start_customized(&dir, &path, |c| {
        c.uid(NOBODY).gid(NOBODY);
    });
    let status: Vec<Value> = poll_until("iso failed", PATIENCE, || {
        let text = client_as_nobody(&tend, &["status", "--json"]);
        let all: Vec<Value> = serde_json::from_str(&text).ok()?;
        let failed = all
            .iter()
            .any(|s| s["name"] == "iso" && s["state"] == "failed");
        let running = all
            .iter()
            .any(|s| s["name"] == "plain" && s["state"] == "running");
        (failed && running).then_some(all)
    });
    assert_eq!(
        status[0]["last_error"],
        "spawn failed: isolate network: Operation not permitted (os error 1)"
    );
}

/// The SHA-256 of a file, from `sha256sum`.
fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A copy of `/bin/sleep` at `path`, with `extra` zero bytes after it (an ELF
/// file runs the same with data after its segments).
fn sleep_binary(path: &Path, extra: usize) {
    let mut data = std::fs::read("/bin/sleep").expect("read /bin/sleep");
    data.resize(data.len() + extra, 0);
    write_executable(path, &data);
}

fn write_executable(path: &Path, data: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).expect("write");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn a_binary_runs_only_with_its_sha256_and_runs_again_once_put_back() {
    let dir = TestDir::new("sha");
    let app = dir.join("app");
    sleep_binary(&app, 0);
    let good = sha256_of(&app);
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "app", "command": [&app, "1000"], "sha256": good,
                             "restart_policy": "never"}]}),
    );
    let pid = running_pid(&tend, "app");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert_eq!(exe, app, "the verified file is what runs");
    // Replaced (renamed over, as installers do): the next start fails.
    let other = dir.join("other");
    sleep_binary(&other, 1);
    let bad = sha256_of(&other);
    std::fs::rename(&other, &app).expect("replace");
    let (code, _, _) = tend.client(&["restart", "app"]);
    assert_eq!(code, 1, "a restart into a mismatch fails");
    let status = tend.wait_state("app", "failed");
    assert_eq!(
        status["last_error"],
        format!(
            "spawn failed: {}: sha256 mismatch: expected {good}, found {bad}",
            app.display()
        )
    );
    // Put back in place (same inode, new content): `tend start` checks again.
    std::fs::copy("/bin/sleep", &app).expect("copy back");
    let (code, _, err) = tend.client(&["start", "app"]);
    assert_eq!(code, 0, "{err}");
    running_pid(&tend, "app");
    // One hash per version of the file, none for the failed restart's retry.
    let checks = tend.log().matches("app: checking the sha256").count();
    assert_eq!(checks, 3, "{}", tend.log());
}

/// One `status` request straight over the socket; how long it took.
fn status_round_trip(socket: &str) -> (Duration, Vec<Value>) {
    let started = Instant::now();
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.write_all(b"{\"cmd\": \"status\"}\n").expect("send");
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).expect("reply");
    let took = started.elapsed();
    let reply: Value = serde_json::from_str(&line).expect("json");
    let services = reply["services"].as_array().cloned().unwrap_or_default();
    (took, services)
}

#[test]
fn hashing_a_large_binary_does_not_stall_the_loop() {
    let dir = TestDir::new("sha-big");
    let app = dir.join("big");
    sleep_binary(&app, 200 << 20);
    let digest = sha256_of(&app);
    // Alone: while it is hashed nothing is up, so a status answer costs no
    // /proc scan and its time is the loop's.
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "big", "command": [&app, "1000"], "sha256": digest}]}),
    );
    let mut while_hashing = Vec::new();
    let end = Instant::now() + Duration::from_secs(300);
    loop {
        let (took, services) = status_round_trip(&tend.socket);
        let big = services.iter().find(|s| s["name"] == "big").cloned();
        match big.as_ref().and_then(|s| s["state"].as_str()) {
            Some("starting") => while_hashing.push(took),
            Some("running") => break,
            other => panic!("big is {other:?}: {big:?}\n{}", tend.log()),
        }
        assert!(Instant::now() < end, "the hash never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    while_hashing.sort();
    let n = while_hashing.len();
    assert!(n >= 5, "only {n} status answers during the hash");
    let median = while_hashing[n / 2];
    let worst = while_hashing[n - 1];
    eprintln!("status during a 200 MB hash: {n} answers, median {median:?}, worst {worst:?}");
    assert!(median < Duration::from_millis(100), "median {median:?}");
    // The whole hash takes seconds: a stall would show as one of them.
    assert!(worst < Duration::from_secs(1), "worst {worst:?}");
}

#[test]
fn stop_during_the_hash_stops_after_the_start_and_shutdown_does_not_wait() {
    let dir = TestDir::new("sha-stop");
    let app = dir.join("app");
    sleep_binary(&app, 40 << 20);
    let digest = sha256_of(&app);
    let service = |name: &str| json!({"name": name, "command": [&app, "1000"], "sha256": digest});
    let mut tend = Tend::start(&dir, json!({"services": [service("a"), service("b")]}));
    // `a` stops once it has started: `tend stop` ends in `stopped`.
    let (code, _, err) = tend.client(&["stop", "a"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tend.state("a"), "stopped");
    // `b` is running (the same file, one hash); a restart needs no hash.
    running_pid(&tend, "b");
    let (code, _, err) = tend.client(&["restart", "b"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tend.log().matches("checking the sha256").count(), 2);
    // A new file: shutdown while it is hashed answers at once.
    sleep_binary(&app, (40 << 20) + 1);
    tend.client(&["restart", "--no-wait", "b"]);
    tend.wait_until("b's second hash", |t| {
        t.log().matches("b: checking the sha256").count() == 2
    });
    tend.signal(libc::SIGTERM);
    let status = tend.wait_exit();
    assert_eq!(status.code(), Some(0));
    assert!(
        tend.log().contains("b: stopped while verifying its sha256"),
        "{}",
        tend.log()
    );
}

#[test]
fn top_without_a_terminal_prints_a_table_each_second_until_sigterm() {
    let dir = TestDir::new("top");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "spin", "command": ["/bin/sh", "-c", "while :; do :; done"]}]}),
    );
    tend.wait_state("spin", "running");
    let mut top = Command::new(TEND)
        .args(["top", "-s", &tend.socket])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tend top");
    let _group = KillOnDrop(top.id() as i32);
    let out = PipeReader::new(top.stdout.take().expect("stdout"));
    let started = Instant::now();
    let text = poll_until("two tables", PATIENCE, || {
        let text = out.text();
        (text.matches("NAME").count() >= 2).then_some(text)
    });
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}: {text}");
    let tables: Vec<&str> = text.split("\n\n").filter(|t| !t.is_empty()).collect();
    assert!(tables[0].starts_with("NAME"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no escape codes without a terminal: {text:?}"
    );
    // A later table has a CPU figure for the spinning service (tend measures
    // in sweeps: the first tables may share one and show none yet).
    let cpu_of = |table: &str| -> Option<f64> {
        let spin = table.lines().find(|l| l.starts_with("spin"))?;
        spin.split_whitespace().nth(3)?.parse().ok()
    };
    let cpu = poll_until("a CPU figure", PATIENCE, || {
        let text = out.text();
        let tables: Vec<&str> = text.split("\n\n").filter(|t| !t.is_empty()).collect();
        tables.iter().skip(1).find_map(|t| cpu_of(t))
    });
    assert!(cpu > 5.0, "a spinning service uses CPU: {cpu}");
    // SAFETY: signalling the child we spawned and have not reaped.
    unsafe { libc::kill(top.id() as i32, libc::SIGTERM) };
    let status = poll_until("top to exit", PATIENCE, || top.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(0));
}

/// SIGKILLs a process when dropped (a failed test leaves nothing behind).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling a process the test spawned.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}
