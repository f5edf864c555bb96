//! `tend reexec` and SIGUSR2 (SPEC §8): tend execs the binary at its path and
//! hands its state over; every service keeps its pid, output, restart count,
//! backoff and stop deadline, and no output line is lost or doubled. A binary
//! that refuses the state, or an exec that fails, leaves tend as it was.
//!
//! tend is started from a copy of the binary in the test's folder, so that a
//! test can put something else at that path: a script that answers
//! `reexec-check` with another snapshot version, or one that does something
//! during the exec before it execs the real binary.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::*;

/// A copy of tend at `DIR/bin/tend` (what tests then replace), and one at
/// `DIR/bin/tend.real` to put back or exec from a script.
fn copy_tend(dir: &TestDir) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("bin");
    let real = bin.join("tend.real");
    install(Path::new(TEND), &real);
    let path = bin.join("tend");
    install(&real, &path);
    path
}

/// Copy `from` to `to` as an executable, by rename (the running binary at
/// `to` cannot be written, but it can be replaced). `cp` writes it, not this
/// process: a child another test forks meanwhile would inherit our write fd
/// and make exec'ing the file fail with "text file busy".
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    let copied = Command::new("cp").arg(from).arg(&tmp).status().expect("cp");
    assert!(copied.success());
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::rename(&tmp, to).expect("rename");
}

/// Put a script with `text` at `path` (see [`install`]).
fn put_script(path: &Path, text: &str) {
    let source = path.with_extension("src");
    fs::write(&source, text).expect("write");
    install(&source, path);
}

/// The snapshot version the binary at `exe` writes, from its
/// `reexec-check` answer (`snapshot N tend RELEASE`).
fn snapshot_version(exe: &Path) -> u32 {
    let out = Command::new(exe)
        .arg("reexec-check")
        .output()
        .expect("reexec-check");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("reexec-check answered {text:?}"))
}

fn start(dir: &TestDir, exe: &Path, mut config: Value) -> Tend {
    config["control_socket"] = Value::String(dir.socket());
    let path = dir.write("config.json", &config.to_string());
    Tend::start_binary(dir, exe, &path, |_| {})
}

fn reexecs(tend: &Tend) -> usize {
    tend.log().matches("re-executed: tend").count()
}

/// `tend reexec`, which must succeed, with the new process's answer.
#[track_caller]
fn reexec(tend: &Tend) {
    let before = reexecs(tend);
    let (code, out, err) = tend.client(&["reexec"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("re-executed: tend "), "{out}");
    assert!(out.contains(&format!("(pid {})", tend.pid())), "{out}");
    tend.wait_until("the new process's first line", |t| reexecs(t) > before);
    assert_eq!(reexecs(tend), before + 1);
}

/// SIGUSR2, and wait until the new process says it took over.
#[track_caller]
fn usr2(tend: &Tend) {
    let before = reexecs(tend);
    tend.signal(libc::SIGUSR2);
    tend.wait_until("the re-exec after SIGUSR2", |t| reexecs(t) > before);
}

/// Each service's (state, pid, restarts).
fn states(tend: &Tend) -> HashMap<String, (String, Option<i64>, u64)> {
    tend.status()
        .into_iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap_or("").to_string();
            let state = s["state"].as_str().unwrap_or("").to_string();
            (
                name,
                (
                    state,
                    s["pid"].as_i64(),
                    s["restarts"].as_u64().unwrap_or(99),
                ),
            )
        })
        .collect()
}

/// The time of a log line or a `since` (`2026-12-02T10:00:00.123Z ...`), in
/// ms of the day (the tests here run well within a day).
fn time_of(line: &str) -> i64 {
    let ts = line.get(11..23).unwrap_or("");
    let num = |a: usize, b: usize| ts.get(a..b).and_then(|n| n.parse::<i64>().ok());
    let parts = (num(0, 2), num(3, 5), num(6, 8), num(9, 12));
    match parts {
        (Some(h), Some(m), Some(s), Some(ms)) => ((h * 60 + m) * 60 + s) * 1000 + ms,
        _ => panic!("no time in {line:?}"),
    }
}

/// The first line of `log` containing `needle`, and its index.
fn line_with<'a>(log: &'a str, needle: &str) -> (usize, &'a str) {
    log.lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{log}"))
}

fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `pid`'s fd count once it holds still: a client's connection may be
/// open a moment after the client got its answer (tend writes, then closes).
fn settled_fd_count(pid: i32) -> usize {
    let mut last = (fd_count(pid), 0);
    poll_until("tend's fds hold still", PATIENCE, || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = fd_count(pid);
        last = if now == last.0 {
            (now, last.1 + 1)
        } else {
            (now, 0)
        };
        (last.1 >= 3).then_some(now)
    })
}

/// Each open fd of `pid` and what it is (for a failure's message).
fn fds_of(pid: i32) -> Vec<String> {
    let mut fds: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let target = fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    fds.sort();
    fds
}

/// The counter's numbers in tend's log, in the order they came.
fn counted(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split_once("counter | ").and_then(|(_, n)| n.parse().ok()))
        .collect()
}

#[track_caller]
fn assert_consecutive(numbers: &[u64], what: &str) {
    let first = numbers.first().copied().unwrap_or(0);
    for (i, n) in numbers.iter().enumerate() {
        assert_eq!(
            *n,
            first + i as u64,
            "{what}: line {i} of {}",
            numbers.len()
        );
    }
}

#[test]
fn fifty_services_go_through_twenty_reexecs_unharmed() {
    let dir = TestDir::new("reexec50");
    let exe = copy_tend(&dir);
    let mut services = vec![
        json!({"name": "counter", "command": ["sh", "-c",
            "i=0; while :; do echo $i; i=$((i+1)); sleep 0.001; done"]}),
        json!({"name": "backoff", "command": ["sh", "-c", "exit 1"],
            "retry_delay": "60s", "max_retry_delay": "60s"}),
        json!({"name": "stubborn", "command": ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
            "timeout_stop": "5s"}),
        json!({"name": "oneshot", "type": "oneshot", "enabled": false,
            "command": ["sh", "-c", "sleep 3; echo done"]}),
        json!({"name": "checked", "command": ["sleep", "100000"],
            "liveness": {"type": "exec", "command": ["true"], "interval": "200ms"}}),
    ];
    for i in 0..45 {
        services.push(json!({"name": format!("f{i:02}"), "command": ["sleep", "100000"]}));
    }
    let tend = start(&dir, &exe, json!({"services": services}));
    tend.wait_until("everything up", |t| {
        let s = states(t);
        s.len() == 50
            && s.iter().all(|(name, (state, _, _))| match name.as_str() {
                "backoff" => state == "restarting",
                "oneshot" => state == "stopped",
                _ => state == "running",
            })
    });
    let socket_inode = fs::metadata(&tend.socket).expect("socket").ino();
    let (code, _, err) = tend.client(&["start", "--no-wait", "oneshot"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tend.client(&["stop", "--no-wait", "stubborn"]);
    assert_eq!(code, 0, "{err}");
    let stopping = tend.wait_state("stubborn", "stopping");
    let backoff_then = tend.service("backoff")["next_start_in_secs"]
        .as_f64()
        .expect("a backoff");
    let since = Instant::now();
    let before = states(&tend);
    let up = |s: &HashMap<String, (String, Option<i64>, u64)>, name: &str| {
        !matches!(name, "backoff" | "oneshot" | "stubborn") && s[name].0 == "running"
    };
    for i in 0..20 {
        if i % 4 == 3 {
            usr2(&tend);
        } else {
            reexec(&tend);
        }
        if i == 10 {
            // A binary that reads another snapshot version: refused, and the
            // old process goes on.
            let ours = snapshot_version(&dir.join("bin/tend.real"));
            put_script(&exe, &format!("#!/bin/sh\necho snapshot {}\n", ours + 1));
            let (code, out, err) = tend.client(&["reexec"]);
            assert_eq!(code, 1, "{out}{err}");
            let want = format!(
                "the binary at {} accepts snapshot version {}, this tend writes {ours}: not re-executing",
                exe.display(),
                ours + 1
            );
            assert!(err.contains(&want), "{err}");
            tend.wait_log(&want);
            install(&dir.join("bin/tend.real"), &exe);
        }
        let now = states(&tend);
        for (name, (state, pid, restarts)) in &before {
            if up(&before, name) {
                assert_eq!(
                    now.get(name),
                    Some(&(state.clone(), *pid, *restarts)),
                    "{name} after re-exec {i}"
                );
            }
        }
    }
    assert_eq!(reexecs(&tend), 20);
    // The backoff went on counting down across the execs.
    let backoff = tend.service("backoff");
    assert_eq!(backoff["restarts"], 1, "{backoff}");
    let left = backoff["next_start_in_secs"].as_f64().expect("a backoff");
    let passed = since.elapsed().as_secs_f64();
    assert!(
        (left - (backoff_then - passed)).abs() < 1.5,
        "{backoff_then}s left, {passed:.1}s passed, {left}s left now"
    );
    // The stop deadline of `stubborn` held: SIGKILL 5 s after the stop (as
    // the core's times in `since` say), however many execs came between.
    let stopped = tend.wait_state("stubborn", "stopped");
    let since = |s: &Value| time_of(s["since"].as_str().unwrap_or(""));
    let took = since(&stopped) - since(&stopping);
    assert!(
        (5000..5500).contains(&took),
        "SIGKILL {took} ms after the stop"
    );
    let log = tend.log();
    let (stop_at, _) = line_with(&log, "stubborn: running -> stopping");
    let (kill_at, _) = line_with(&log, "stubborn: sending SIGKILL");
    let execs_between = log.lines().skip(stop_at).take(kill_at - stop_at);
    assert!(execs_between.filter(|l| l.contains("re-executed")).count() >= 1);
    // The oneshot completed, and some process in between saw it run.
    tend.wait_until("the oneshot completed", |t| {
        t.service("oneshot")["completed"] == true
    });
    let log = tend.log();
    let (started, _) = line_with(&log, "oneshot: pending -> starting");
    let (done, _) = line_with(&log, "oneshot: starting -> stopped");
    let between = log.lines().skip(started).take(done - started);
    assert!(between.filter(|l| l.contains("re-executed")).count() >= 1);
    // Every counter line once and in order, in the log and in `tend logs`.
    let numbers = counted(&log);
    assert!(numbers.len() > 100, "{} counter lines", numbers.len());
    assert_consecutive(&numbers, "tend's log");
    let (_, out, _) = tend.client(&["logs", "counter", "-n", "1000"]);
    let ring: Vec<u64> = out
        .lines()
        .filter_map(|l| l.rsplit_once(" | ").and_then(|(_, n)| n.parse().ok()))
        .collect();
    // The ring keeps the last 1000 (or all, if there were fewer yet).
    assert!(ring.len() == 1000 || ring.first() == Some(&0), "{out}");
    assert!(ring.last() >= numbers.last(), "{out}");
    assert_consecutive(&ring, "tend logs");
    // The same control socket, no zombie, no fd gained over more execs.
    assert_eq!(
        fs::metadata(&tend.socket).expect("socket").ino(),
        socket_inode
    );
    poll_until("no zombie of tend", PATIENCE, || {
        zombies_of(tend.pid()).is_empty()
    });
    let fds = settled_fd_count(tend.pid());
    for _ in 0..3 {
        reexec(&tend);
    }
    // (A client's connection may be on its way out: wait for it.)
    tend.wait_until("as many fds as before", |t| fd_count(t.pid()) == fds);
    let restarts: Vec<u64> = states(&tend).values().map(|s| s.2).collect();
    assert_eq!(restarts.iter().sum::<u64>(), 1, "only backoff restarted");
}

#[test]
fn a_service_that_exits_during_the_exec_is_handled_by_the_new_process() {
    let dir = TestDir::new("reexecexit");
    let exe = copy_tend(&dir);
    let victim = dir.script("victim", "echo $$ > \"$DIR/victim.pid\"\nexec sleep 100000");
    let tend = start(
        &dir,
        &exe,
        json!({"services": [{"name": "victim", "command": [victim], "retry_delay": "100ms"}]}),
    );
    tend.wait_state("victim", "running");
    let old = dir.wait_pid("victim.pid");
    // In the new image, before tend: kill the victim and wait for its
    // zombie. Builtins only: a shell that ran a command would wait for any
    // child, and reap the victim itself.
    let wrapper = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = run ]; then\n\
           kill -9 {old}\n\
           state=\n\
           while [ \"$state\" != Z ]; do\n\
             while read -r key value rest; do\n\
               [ \"$key\" = State: ] && state=$value && break\n\
             done < /proc/{old}/status\n\
           done\n\
         fi\n\
         exec '{}' \"$@\"\n",
        dir.join("bin/tend.real").display()
    );
    put_script(&exe, &wrapper);
    reexec(&tend);
    let s = tend.wait_for("victim restarted by policy", |t| {
        let s = t.service("victim");
        (s["state"] == "running" && s["pid"].as_i64() != Some(old)).then_some(s)
    });
    assert_eq!(s["restarts"], 1, "{s}");
    assert!(
        tend.log()
            .contains("victim: running -> restarting: killed by SIGKILL"),
        "{}",
        tend.log()
    );
    poll_until("the old victim reaped", PATIENCE, || is_reaped(old));
}

#[test]
fn clients_waiting_across_the_exec_get_their_answers_and_lines() {
    let dir = TestDir::new("reexecwait");
    let exe = copy_tend(&dir);
    let tend = start(
        &dir,
        &exe,
        json!({"services": [
            {"name": "slow", "command": ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
             "timeout_stop": "3s"},
            {"name": "chatty", "command": ["sh", "-c",
                "i=0; while :; do echo $i; i=$((i+1)); sleep 0.005; done"]}
        ]}),
    );
    tend.wait_state("slow", "running");
    tend.wait_state("chatty", "running");
    let mut follower = Command::new(TEND)
        .args(["logs", "-f", "chatty", "-n", "0", "-s", &tend.socket])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("logs -f");
    let _kill_follower = KillOnDrop(follower.id() as i32);
    let lines = PipeReader::new(follower.stdout.take().expect("stdout"));
    poll_until("the follower gets lines", PATIENCE, || {
        lines.text().lines().count() > 10
    });
    let socket = tend.socket.clone();
    let stopper = std::thread::spawn(move || {
        Command::new(TEND)
            .args(["stop", "slow", "-s", &socket])
            .output()
    });
    tend.wait_state("slow", "stopping");
    reexec(&tend);
    reexec(&tend);
    // The stop's answer comes from the tend that is there when it settles.
    let out = stopper.join().expect("thread").expect("tend stop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tend.state("slow"), "stopped");
    // The follower went on: every number, once, in order, across both execs.
    let at_exec = reexecs(&tend);
    assert_eq!(at_exec, 2);
    poll_until("more lines after the execs", PATIENCE, || {
        lines.text().lines().count() > 300
    });
    let numbers: Vec<u64> = lines
        .take_lines()
        .iter()
        .filter_map(|l| l.rsplit_once(" | ").and_then(|(_, n)| n.parse().ok()))
        .collect();
    assert_consecutive(&numbers, "logs -f");
    assert!(
        follower.try_wait().expect("try_wait").is_none(),
        "still following"
    );
}

#[test]
fn readiness_under_way_is_seen_by_the_new_process() {
    let dir = TestDir::new("reexecready");
    let exe = copy_tend(&dir);
    let wait = |marker: &str| format!("while [ ! -e \"$DIR/{marker}\" ]; do sleep 0.01; done");
    let fd = dir.script(
        "fd",
        &format!("{}\necho >&3\nexec sleep 100000", wait("go-fd")),
    );
    let log = dir.script(
        "log",
        &format!("{}\necho listening\nexec sleep 100000", wait("go-log")),
    );
    let mut services = vec![
        json!({"name": "viafd", "command": [fd], "readiness": {"type": "fd", "fd": 3}}),
        json!({"name": "vialog", "command": [log],
            "readiness": {"type": "log", "pattern": "listening"}}),
        json!({"name": "viaexec", "command": ["sleep", "100000"],
            "readiness": {"type": "exec", "interval": "100ms",
                "command": ["test", "-e", dir.join("go-exec").display().to_string()]}}),
    ];
    let python = Command::new("python3").arg("-c").arg("pass").status();
    let notify = python.is_ok_and(|s| s.success());
    if notify {
        let code = format!(
            "import os, socket, time\n\
             while not os.path.exists('{}'): time.sleep(0.01)\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n\
             time.sleep(100000)\n",
            dir.join("go-notify").display()
        );
        services.push(
            json!({"name": "vianotify", "command": ["python3", "-c", code],
            "readiness": {"type": "notify"}}),
        );
    } else {
        skip_without("python3 is not installed (notify readiness part)");
    }
    let tend = start(&dir, &exe, json!({"services": services}));
    let names: Vec<String> = states(&tend).into_keys().collect();
    tend.wait_until("all starting", |t| {
        states(t).values().all(|s| s.0 == "starting")
    });
    // Let the exec check fail a few times first: its failures in a row and
    // schedule go across too.
    tend.wait_until("a failed readiness attempt", |t| {
        t.service("viaexec")["probe"]["failures_in_row"].as_u64() > Some(1)
    });
    let before = states(&tend);
    reexec(&tend);
    reexec(&tend);
    for marker in ["go-fd", "go-log", "go-exec", "go-notify"] {
        fs::write(dir.join(marker), "").expect("marker");
    }
    for name in &names {
        let s = tend.wait_state(name, "running");
        assert_eq!(s["ready"], true, "{s}");
        assert_eq!(s["pid"].as_i64(), before[name].1, "{name}");
        assert_eq!(s["restarts"], 0, "{s}");
    }
}

/// SIGKILLs one process (not a group) when dropped.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill with a pid this test spawned.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[test]
fn a_failed_exec_leaves_tend_as_it_was() {
    let dir = TestDir::new("reexecfail");
    let exe = copy_tend(&dir);
    let tend = start(
        &dir,
        &exe,
        json!({"services": [{"name": "s", "command": ["sleep", "100000"]}]}),
    );
    tend.wait_state("s", "running");
    let pid = tend.service_pid("s");
    let fds = settled_fd_count(tend.pid());
    let before = fds_of(tend.pid());
    // It answers the check, then removes itself: the exec finds nothing.
    let vanishing = format!(
        "#!/bin/sh\nrm -f '{}'\nexec '{}' \"$@\"\n",
        exe.display(),
        dir.join("bin/tend.real").display()
    );
    put_script(&exe, &vanishing);
    let (code, out, err) = tend.client(&["reexec"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("exec {} failed", exe.display())),
        "{err}"
    );
    assert!(
        err.contains("not re-executing; tend goes on as before"),
        "{err}"
    );
    // Nothing changed: the same service, fds, signal mask, and it still works.
    assert_eq!(tend.service_pid("s"), pid);
    let settled = poll_for(PATIENCE, || fd_count(tend.pid()) == fds);
    assert!(settled.is_some(), "{before:?}\n{:?}", fds_of(tend.pid()));
    let status = fs::read_to_string(format!("/proc/{}/status", tend.pid())).expect("status");
    let blocked = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .expect("SigBlk");
    let reserved: u64 = (32..libc::SIGRTMIN()).map(|s| 1u64 << (s - 1)).sum();
    assert_eq!(
        blocked, reserved,
        "only libc's reserved signals stay blocked"
    );
    let (code, _, _) = tend.client(&["restart", "s"]);
    assert_eq!(code, 0);
    assert_ne!(tend.service_pid("s"), pid);
    assert_eq!(reexecs(&tend), 0);
}

#[test]
fn a_binary_that_does_not_answer_the_check_is_given_up_on() {
    let dir = TestDir::new("reexechang");
    let exe = copy_tend(&dir);
    let tend = start(
        &dir,
        &exe,
        json!({"services": [{"name": "s", "command": ["sleep", "100000"]}]}),
    );
    let pid = tend.wait_state("s", "running")["pid"].as_i64();
    put_script(&exe, "#!/bin/sh\nexec sleep 100000\n");
    let (code, out, err) = tend.client(&["reexec"]);
    assert_eq!(code, 1, "{out}{err}");
    let want = format!(
        "`{} reexec-check` did not answer within 5s: not re-executing",
        exe.display()
    );
    assert!(err.contains(&want), "{err}");
    assert_eq!(tend.service_pid("s"), pid);
    // The check was killed, and reaped.
    poll_until("no zombie of tend", PATIENCE, || {
        zombies_of(tend.pid()).is_empty()
    });
    let children =
        fs::read_to_string(format!("/proc/{0}/task/{0}/children", tend.pid())).unwrap_or_default();
    assert_eq!(
        children.split_whitespace().count(),
        1,
        "only the service: {children}"
    );
}

#[test]
fn no_reexec_during_a_shutdown() {
    let dir = TestDir::new("reexecdown");
    let exe = copy_tend(&dir);
    let mut tend = start(
        &dir,
        &exe,
        json!({"services": [{"name": "slow",
            "command": ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
            "timeout_stop": "3s"}]}),
    );
    tend.wait_state("slow", "running");
    let (code, _, _) = tend.client(&["shutdown", "--no-wait"]);
    assert_eq!(code, 0);
    tend.wait_state("slow", "stopping");
    let (code, out, err) = tend.client(&["reexec"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("tend is shutting down: not re-executing"),
        "{err}"
    );
    assert_eq!(tend.wait_exit().code(), Some(0));
    assert_eq!(reexecs(&tend), 0);
}

/// A run waiting for its program's `sha256` (a large file, hashed in slices)
/// when tend re-execs: the hash goes with the old process, and the new one
/// hashes again and starts the service.
#[test]
fn a_start_waiting_for_its_sha256_is_started_by_the_new_process() {
    let dir = TestDir::new("reexecsha");
    let exe = copy_tend(&dir);
    let app = dir.join("big");
    let mut data = fs::read("/bin/sleep").expect("read /bin/sleep");
    data.resize(data.len() + (64 << 20), 0);
    let source = dir.join("big.src");
    fs::write(&source, &data).expect("write");
    install(&source, &app);
    let out = Command::new("sha256sum")
        .arg(&app)
        .output()
        .expect("sha256sum");
    let digest = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let tend = start(
        &dir,
        &exe,
        json!({"services": [{"name": "big", "command": [&app, "1000"], "sha256": digest}]}),
    );
    tend.wait_log("big: checking the sha256");
    reexec(&tend);
    let big = tend.wait_state("big", "running");
    assert!(big["pid"].as_i64().is_some(), "{big}");
    assert_eq!(big["restarts"], 0, "started, not failed: {big}");
}
