//! `tend logs` (SPEC §1, §7): every service's recent lines interleaved in the
//! order tend read them, with times; `-n`, `--since`; `-f` of several services.
//!
//! Services print when the test creates a marker file, and the test waits until
//! tend has a line before letting the next one be printed, so the order is
//! known without depending on timing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::*;

/// A service that prints `first`, then each further line once `$DIR/<line>.go`
/// exists, then sleeps.
fn stepper(dir: &TestDir, name: &str, lines: &[&str], to_stderr: bool) -> serde_json::Value {
    let redirect = if to_stderr { " >&2" } else { "" };
    let mut body = String::new();
    for line in lines {
        body.push_str(&format!(
            "while [ ! -e \"$DIR/{line}.go\" ]; do sleep 0.01; done; echo {line}{redirect}\n"
        ));
    }
    body.push_str("exec sleep 1000");
    json!({"name": name, "command": [dir.script(name, &body)]})
}

/// Let `line` be printed and wait until `tend logs` has it.
fn step(tend: &Tend, dir: &TestDir, line: &str) {
    std::fs::write(dir.join(&format!("{line}.go")), "").expect("marker");
    tend.wait_until(&format!("tend logs has {line}"), |t| {
        let (_, out, _) = t.client(&["logs"]);
        out.lines().any(|l| l.ends_with(&format!(" {line}")))
    });
}

/// The time at the start of a `tend logs` line, in ms since the epoch.
fn time_of(line: &str) -> u64 {
    let ts = line.split(' ').next().unwrap_or("");
    // 2026-12-02T10:00:00.123Z: check the shape, then turn it into ms.
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "a time first: {line}"
    );
    let day = |y: i64, m: i64, d: i64| {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    };
    let num = |a: usize, b: usize| ts[a..b].parse::<i64>().expect("digits");
    let days = day(num(0, 4), num(5, 7), num(8, 10));
    let secs = days * 86_400 + num(11, 13) * 3600 + num(14, 16) * 60 + num(17, 19);
    (secs * 1000 + num(20, 23)) as u64
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Each line without its time.
fn untimed(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string())
        .collect()
}

#[test]
fn logs_of_all_services_are_interleaved_in_read_order_with_times() {
    let dir = TestDir::new("logsall");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            stepper(&dir, "a", &["a1", "a2"], false),
            stepper(&dir, "b", &["b1"], true),
        ]}),
    );
    step(&tend, &dir, "a1");
    step(&tend, &dir, "b1");
    step(&tend, &dir, "a2");
    let (code, out, err) = tend.client(&["logs"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(untimed(&out), ["a | a1", "b !| b1", "a | a2"], "{out}");
    let times: Vec<u64> = out.lines().map(time_of).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{out}");
    let now = now_ms();
    assert!(
        times.iter().all(|t| *t <= now + 1000 && *t + 600_000 > now),
        "{out}"
    );
    // The newest two across services; one service; two of them.
    let (_, out, _) = tend.client(&["logs", "-n", "2"]);
    assert_eq!(untimed(&out), ["b !| b1", "a | a2"]);
    let (_, out, _) = tend.client(&["logs", "a"]);
    assert_eq!(untimed(&out), ["a | a1", "a | a2"]);
    let (_, out, _) = tend.client(&["logs", "b", "a", "-n", "5"]);
    assert_eq!(untimed(&out), ["a | a1", "b !| b1", "a | a2"]);
    let (code, _, err) = tend.client(&["logs", "a", "ghost"]);
    assert_eq!(code, 1);
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn logs_since_leaves_out_older_lines() {
    let dir = TestDir::new("logssince");
    let tend = Tend::start(
        &dir,
        json!({"services": [stepper(&dir, "a", &["old", "new"], false)]}),
    );
    step(&tend, &dir, "old");
    let (_, out, _) = tend.client(&["logs"]);
    let t_old = out.lines().next().map(time_of).expect("old line");
    // A lower bound, not a race: let two seconds pass on the clock tend stamps.
    poll_until("2 s after the old line", PATIENCE, || {
        now_ms() >= t_old + 2000
    });
    step(&tend, &dir, "new");
    let (_, out, _) = tend.client(&["logs"]);
    let t_new = out.lines().last().map(time_of).expect("new line");
    assert!(t_new >= t_old + 2000, "{out}");
    // Since halfway between the two: only the new line (a second of margin
    // either side for the time the client takes to start).
    let ago = now_ms() - (t_old + t_new) / 2;
    let (code, out, err) = tend.client(&["logs", "--since", &format!("{ago}ms")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(untimed(&out), ["a | new"], "{out}");
    let (_, out, _) = tend.client(&["logs", "--since", "1h"]);
    assert_eq!(untimed(&out), ["a | old", "a | new"]);
    let (code, _, _) = tend.client(&["logs", "--since", "yesterday"]);
    assert_eq!(code, 2);
}

#[test]
fn follow_of_two_services_gets_their_new_lines_only() {
    let dir = TestDir::new("follow2");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            stepper(&dir, "a", &["a0", "a1"], false),
            stepper(&dir, "b", &["b1"], true),
            stepper(&dir, "c", &["c1"], false),
        ]}),
    );
    step(&tend, &dir, "a0");
    let out_path = dir.join("follow.out");
    let out = std::fs::File::create(&out_path).expect("file");
    let mut follower = Command::new(TEND)
        .args(["logs", "a", "b", "-f", "-n", "1", "-s", &tend.socket])
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("follow");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    // tend answers a follower once it is registered: the recent line shows
    // that no later line can be missed. c's line comes first and must not
    // show up.
    poll_until("the recent line", PATIENCE, || {
        read(&out_path).contains(" a | a0")
    });
    step(&tend, &dir, "c1");
    step(&tend, &dir, "a1");
    step(&tend, &dir, "b1");
    poll_until("a1 and b1 followed", PATIENCE, || {
        let text = read(&out_path);
        text.contains(" a | a1") && text.contains(" b !| b1")
    });
    let _ = follower.kill();
    let _ = follower.wait();
    let text = read(&out_path);
    assert_eq!(untimed(&text), ["a | a0", "a | a1", "b !| b1"], "{text}");
}
