//! Output forwarding: every line, in order, whole, including the last ones before
//! an exit; long lines split; invalid UTF-8 replaced; floods bounded.

use serde_json::json;

use crate::support::*;

/// The text of `name`'s lines (stdout and stderr) in tend's log, in order.
fn lines_of(log: &str, name: &str) -> Vec<String> {
    let (out, err) = (format!(" {name} | "), format!(" {name} !| "));
    log.lines()
        .filter_map(|l| {
            l.split_once(&out)
                .or_else(|| l.split_once(&err))
                .map(|(_, text)| text.to_string())
        })
        .collect()
}

#[test]
fn lines_printed_just_before_exit_are_all_forwarded_in_order() {
    let dir = TestDir::new("5000lines");
    let burst = dir.script(
        "burst",
        "i=1; while [ $i -le 5000 ]; do echo \"line $i\"; i=$((i+1)); done; printf 'no newline'; exit 3",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "b", "command": [burst], "restart_policy": "never"}]}),
    );
    tend.wait_state("b", "failed");
    let log = tend.log();
    // Only the service's own lines (tend's lines about `b` share the prefix).
    let lines: Vec<String> = lines_of(&log, "b")
        .into_iter()
        .filter(|l| l.starts_with("line ") || l == "no newline")
        .collect();
    let expected: Vec<String> = (1..=5000)
        .map(|i| format!("line {i}"))
        .chain(["no newline".to_string()])
        .collect();
    assert_eq!(lines.len(), expected.len());
    assert!(lines == expected, "lines out of order or changed");
    // The last line comes before the exit is reported.
    let last = log.find("b | no newline").expect("last line");
    let exit = log
        .find("b: starting -> failed")
        .or_else(|| log.find("b: running -> failed"));
    assert!(exit.is_some_and(|e| last < e), "{log}");
}

#[test]
fn stdout_and_stderr_lines_are_both_logged() {
    let dir = TestDir::new("levels");
    let both = dir.script("both", "echo to-out; echo to-err >&2; exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "x", "command": [both]}]}),
    );
    tend.wait_log("x !| to-err");
    tend.wait_log("x | to-out");
}

#[test]
fn a_200_kib_line_is_split_not_lost() {
    let dir = TestDir::new("longline");
    let long = dir.script(
        "long",
        "head -c 204800 /dev/zero | tr '\\0' 'x'; echo; echo after; exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "l", "command": [long]}]}),
    );
    tend.wait_log("l | after");
    let lines = lines_of(&tend.log(), "l");
    let xs: Vec<&String> = lines.iter().filter(|l| l.starts_with('x')).collect();
    assert_eq!(xs.iter().map(|l| l.len()).sum::<usize>(), 204_800);
    assert!(xs.iter().all(|l| l.len() <= 64 * 1024));
    assert_eq!(xs.len(), 4, "200 KiB in 64 KiB pieces");
    assert_eq!(lines.last().map(String::as_str), Some("after"));
}

#[test]
fn invalid_utf8_is_replaced_not_dropped() {
    let dir = TestDir::new("utf8");
    let bad = dir.script("bad", "printf 'caf\\351 ok\\n'; exec sleep 1000");
    let tend = Tend::start(&dir, json!({"services": [{"name": "u", "command": [bad]}]}));
    tend.wait_log("u | caf\u{fffd} ok");
}

#[test]
fn output_null_and_inherit_are_not_logged() {
    let dir = TestDir::new("outmodes");
    let talk = dir.script("talk", "echo hello-from-$1; exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "n", "command": [talk.clone(), "null"], "output": "null"},
            {"name": "i", "command": [talk.clone(), "inherit"], "output": "inherit"},
            {"name": "l", "command": [talk, "log"]},
        ]}),
    );
    tend.wait_log("l | hello-from-log");
    // inherit writes straight to tend's stdout (the same file here), unprefixed.
    tend.wait_until("inherited line", |t| {
        t.log().lines().any(|l| l == "hello-from-inherit")
    });
    let log = tend.log();
    assert!(!log.contains("hello-from-null"), "{log}");
    assert!(!log.contains("i | hello-from-inherit"), "{log}");
}

#[test]
fn a_burst_arrives_whole_and_in_order_and_logs_keeps_its_tail() {
    // Big writes (many lines per read) mixed with the rare cases: a line that is
    // not UTF-8 and one over 64 KiB, in the middle of the burst.
    let dir = TestDir::new("burst");
    let burst = dir.script(
        "burst",
        "seq 1 100000 | sed 's/^/n /'; printf 'bad \\377 byte\\n'; \
         head -c 70000 /dev/zero | tr '\\0' x; echo; \
         seq 100001 101500 | sed 's/^/n /'; exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "b", "command": [burst]}]}),
    );
    tend.wait_log("b | n 101500");
    let lines = lines_of(&tend.log(), "b");
    let numbered: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("n ").and_then(|n| n.parse().ok()))
        .collect();
    assert_eq!(numbered.len(), 101_500, "lines lost or repeated");
    assert!(
        numbered.iter().zip(1..).all(|(&n, i)| n == i),
        "lines out of order"
    );
    assert!(lines.iter().any(|l| l == "bad \u{fffd} byte"));
    let xs: Vec<usize> = lines
        .iter()
        .filter(|l| l.starts_with("xxx"))
        .map(|l| l.len())
        .collect();
    assert_eq!(xs, [65_536, 70_000 - 65_536]);
    // The ring holds the last 1000 lines, in order.
    let (code, out, _) = tend.client(&["logs", "b", "-n", "1000"]);
    assert_eq!(code, 0);
    // Each line is `<time> b | <text>`.
    let tail: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_once(" b | ").map(|(_, text)| text.to_string()))
        .collect();
    let expected: Vec<String> = (100_501..=101_500).map(|i| format!("n {i}")).collect();
    assert!(
        tail == expected,
        "logs -n 1000 gave {} lines, first {:?}",
        tail.len(),
        tail.first()
    );
}

#[test]
fn a_flooding_service_does_not_stall_others() {
    let dir = TestDir::new("flood");
    let flood = dir.script("flood", "exec yes 'flood flood flood flood flood flood'");
    let tick = dir.script(
        "tick",
        "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done",
    );
    let tend = Tend::start(
        &dir,
        json!({"log_level": "warn", "services": [
            {"name": "flood", "command": [flood]},
            {"name": "tick", "command": [tick]},
        ]}),
    );
    // While flood writes as fast as it can, tick's lines keep coming through
    // (20 more of them, one every 50 ms) and status keeps answering.
    tend.wait_state("tick", "running");
    let pid = tend.pid();
    let last_tick = |t: &Tend| -> Option<u64> {
        let (_, out, _) = t.client(&["logs", "tick", "-n", "1"]);
        // `TIME tick | tick N`
        let text = out.trim().rsplit(" | ").next()?;
        text.strip_prefix("tick ")?.parse().ok()
    };
    let first = tend.wait_for("tick's first line", last_tick);
    tend.wait_for("20 more ticks during the flood", |t| {
        last_tick(t).filter(|&n| n >= first + 20)
    });
    assert_eq!(tend.state("tick"), "running");
    assert_eq!(tend.state("flood"), "running");
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    assert!(rss_kib < 64 * 1024, "tend RSS {rss_kib} KiB under a flood");
}

#[test]
fn a_stalled_log_reader_does_not_stall_supervision() {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    let dir = TestDir::new("stalledlog");
    let flood = dir.script(
        "flood",
        "i=0; while [ $i -lt 200000 ]; do echo \"n $i\"; i=$((i+1)); done; echo done; exec sleep 1000",
    );
    let mut config = json!({"services": [{"name": "f", "command": [flood]},
                                          {"name": "other", "command": ["/bin/sleep", "1000"]}]});
    config["control_socket"] = json!(dir.socket());
    let path = dir.write("config.json", &config.to_string());
    // tend's stderr is a pipe that nobody reads for a while.
    let mut child = Command::new(TEND)
        .args(["run", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn tend");
    let guard = KillGroupOnDrop(child.id() as i32);
    poll_until("socket", PATIENCE, || dir.join("s.sock").exists());
    let client = |args: &[&str]| {
        Command::new(TEND)
            .args(args)
            .args(["-s", &dir.socket()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let _watch = watch(&dir.join("stderr-is-a-pipe"), Some(&dir.socket()));
    let stderr = child.stderr.take().expect("stderr");
    // The log pipe fills up and tend stops reading f's output: f's shell ends up
    // blocked writing to its pipe. Yet status keeps answering and `other` runs.
    let flood_pid: i64 = poll_until("f's pid", PATIENCE, || {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&client(&["status", "--json"])).unwrap_or_default();
        list.iter().find(|s| s["name"] == "f")?["pid"].as_i64()
    });
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stderr);
    poll_until(
        "f blocked writing its output (backpressure)",
        PATIENCE,
        || {
            let wchan =
                std::fs::read_to_string(format!("/proc/{flood_pid}/wchan")).unwrap_or_default();
            let mut queued: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int for a pipe we own.
            unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) };
            // Where the kernel hides wchan ("0"), a log pipe holding data is all we can see.
            wchan.contains("pipe_write") || (wchan == "0" && queued > 0)
        },
    );
    for _ in 0..10 {
        let status = client(&["status", "--json"]);
        assert!(status.contains("\"other\""), "status answered: {status}");
    }
    // Now read: every line arrives, in order.
    let reader = PipeReader::new(stderr);
    let mut seen = 0u64;
    poll_until("all 200000 lines of f in tend's log", PATIENCE, || {
        for line in reader.take_lines() {
            if let Some((_, text)) = line.trim_end().split_once(" f | n ") {
                assert_eq!(text, seen.to_string(), "line order");
                seen += 1;
            }
        }
        assert!(!reader.ended(), "log ended early after {seen} lines");
        seen == 200_000
    });
    drop(guard);
    let _ = child.wait();
}
