//! The log (SPEC §7): service lines as records in every format, log files with
//! rotation, logrotate and SIGHUP, a log file that cannot be written, and
//! tend's memory and responsiveness when its stderr is read slowly.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Lines `N` (numbers only) in the files, in order.
fn numbers_in(paths: &[PathBuf], strip: &dyn Fn(&str) -> Option<String>) -> Vec<u64> {
    paths
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| strip(l)?.strip_prefix("n ")?.parse().ok())
                .collect::<Vec<u64>>()
        })
        .collect()
}

fn plain_line(l: &str) -> Option<String> {
    Some(l.to_string())
}

/// `FILE.N` ... `FILE.1`, `FILE`: oldest first, the ones that exist.
fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..100)
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .filter(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    files
}

#[test]
fn a_python_service_logging_on_stderr_is_a_normal_line() {
    let dir = TestDir::new("pystderr");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "py", "command": ["/usr/bin/python3", "-c",
            "import logging, sys, time\n\
             logging.basicConfig(stream=sys.stderr, level=logging.INFO)\n\
             logging.info('hello from python')\n\
             time.sleep(1000)"]}]}),
    );
    tend.wait_log("py !| INFO:root:hello from python");
    let log = tend.log();
    let line = log
        .lines()
        .find(|l| l.contains("hello from python"))
        .unwrap_or_default();
    assert!(!line.contains("ERROR") && !line.contains("tend "), "{line}");
    // text: a timestamp, the service, its stream mark, the line.
    assert_eq!(line.as_bytes().get(23), Some(&b'Z'), "{line}");
    assert!(
        line.ends_with(" py !| INFO:root:hello from python"),
        "{line}"
    );
}

#[test]
fn log_level_error_still_shows_every_service_line() {
    let dir = TestDir::new("levelerror");
    let talk = dir.script("talk", "echo out-line; echo err-line >&2; exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"log_level": "error", "services": [{"name": "t", "command": [talk]}]}),
    );
    tend.wait_log("t | out-line");
    tend.wait_log("t !| err-line");
    assert!(!tend.log().contains("tend INFO"), "{}", tend.log());
}

/// A service writing a plain line, one with ESC, one that is not UTF-8, one
/// with quotes and a backslash, on both streams; then `done`.
fn odd_writer(dir: &TestDir) -> String {
    dir.script(
        "odd",
        "printf 'plain line\\n'; printf 'esc \\033[31mred\\033[0m\\n'; \
         printf 'bad \\377\\376 bytes\\n' >&2; printf 'q \"x\" \\\\ y\\n'; \
         echo done; exec sleep 1000",
    )
}

#[test]
fn every_format_parses_back() {
    for format in ["text", "plain", "json"] {
        let dir = TestDir::new(&format!("fmt{format}"));
        let odd = odd_writer(&dir);
        let main = dir.join("all.log");
        let own = dir.join("odd.log");
        let tend = Tend::start(
            &dir,
            json!({"log_format": format, "log_file": main, "services": [
                {"name": "odd", "command": [odd], "log_file": own}]}),
        );
        tend.wait_until("the last line in both files", |_| {
            let done = |p: &Path| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .contains("done")
            };
            done(&main) && done(&own)
        });
        let log = std::fs::read_to_string(&main).unwrap_or_default();
        let expected = [
            ("stdout", "plain line"),
            ("stdout", "esc \u{1b}[31mred\u{1b}[0m"),
            ("stderr", "bad \u{fffd}\u{fffd} bytes"),
            ("stdout", "q \"x\" \\ y"),
            ("stdout", "done"),
        ];
        let service_lines: Vec<(String, String)> = match format {
            "json" => {
                // Every line is a JSON document (python's own parser agrees).
                let check = Command::new("/usr/bin/python3")
                    .args(["-m", "json.tool", "--json-lines"])
                    .arg(&main)
                    .output()
                    .expect("python3");
                assert!(
                    check.status.success(),
                    "{}\n{log}",
                    String::from_utf8_lossy(&check.stderr)
                );
                let records: Vec<Value> = log
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                    .collect();
                assert!(records.iter().any(|r| {
                    r["level"] == "info"
                        && r["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with("odd: "))
                }));
                records
                    .iter()
                    .filter(|r| r["service"] == "odd")
                    .map(|r| {
                        (
                            r["stream"].as_str().unwrap_or("").into(),
                            r["line"].as_str().unwrap_or("").into(),
                        )
                    })
                    .collect()
            }
            _ => {
                let lines: Vec<&str> = if format == "text" {
                    log.lines()
                        .map(|l| {
                            assert_eq!(l.as_bytes().get(23), Some(&b'Z'), "{l}");
                            &l[25..]
                        })
                        .collect()
                } else {
                    log.lines().collect()
                };
                assert!(
                    lines.iter().any(|l| l.starts_with("tend INFO odd: ")),
                    "{log}"
                );
                lines
                    .iter()
                    .filter_map(|l| {
                        let (stream, rest) = match l.split_once("odd | ") {
                            Some((_, rest)) => ("stdout", rest),
                            None => ("stderr", l.split_once("odd !| ")?.1),
                        };
                        Some((stream.to_string(), rest.to_string()))
                    })
                    .collect()
            }
        };
        // Each stream in order (the two pipes are read in either order).
        for stream in ["stdout", "stderr"] {
            let got: Vec<&str> = service_lines
                .iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, l)| l.as_str())
                .collect();
            let want: Vec<&str> = expected
                .iter()
                .filter(|(s, _)| *s == stream)
                .map(|(_, l)| *l)
                .collect();
            assert_eq!(got, want, "{format} {stream}");
        }
        // The service's own file: in plain just its lines; else the same
        // records as the whole log, only the service's; in the same order.
        let own_text = std::fs::read_to_string(&own).unwrap_or_default();
        if format == "plain" {
            let lines: Vec<&str> = service_lines.iter().map(|(_, l)| l.as_str()).collect();
            assert_eq!(own_text.lines().collect::<Vec<_>>(), lines);
        } else {
            let mine: Vec<&str> = log
                .lines()
                .filter(|l| {
                    l.contains("odd | ")
                        || l.contains("odd !| ")
                        || l.contains("\"service\":\"odd\"")
                })
                .collect();
            assert_eq!(own_text.lines().collect::<Vec<_>>(), mine, "{format}");
        }
        // tend's stderr is the same log as the file.
        let stderr = tend.log();
        assert!(
            stderr.contains(log.lines().next().unwrap_or("?")),
            "{format}"
        );
    }
}

#[test]
fn rotation_at_1k_keeps_log_keep_files_each_line_once() {
    let dir = TestDir::new("rotate1k");
    let count = dir.script(
        "count",
        "i=1; while [ $i -le 2000 ]; do echo \"n $i\"; i=$((i+1)); done; echo finished; exec sleep 1000",
    );
    let own = dir.join("c.log");
    let main = dir.join("all.log");
    let tend = Tend::start(
        &dir,
        json!({"log_format": "plain", "log_file": main, "log_max_size": "4K", "log_keep": 2,
               "services": [{"name": "c", "command": [count], "log_file": own,
                             "log_max_size": "1K", "log_keep": 3}]}),
    );
    tend.wait_log("c | finished");
    tend.wait_until("the own file has the last line", |_| {
        std::fs::read_to_string(&own)
            .unwrap_or_default()
            .contains("finished")
    });
    for (path, max, keep) in [(&own, 1024, 3), (&main, 4096, 2)] {
        let files = rotated(path);
        assert_eq!(files.len(), keep + 1, "{}: {files:?}", path.display());
        for f in &files {
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            assert!(size <= max, "{} is {size} bytes", f.display());
        }
        let strip: &dyn Fn(&str) -> Option<String> = if path == &own {
            &plain_line
        } else {
            &|l: &str| l.strip_prefix("c | ").map(str::to_string)
        };
        let got = numbers_in(&files, strip);
        let first = *got.first().expect("some lines");
        assert!(first > 1, "old lines should be gone");
        assert_eq!(
            got,
            (first..=2000).collect::<Vec<_>>(),
            "{}",
            path.display()
        );
    }
    // The main stream has every line.
    let all = numbers_in(&[tend.dir_path.join("tend.log")], &|l: &str| {
        l.split_once("c | ").map(|(_, t)| t.to_string())
    });
    assert_eq!(all, (1..=2000).collect::<Vec<_>>());
}

#[test]
fn logrotate_then_sighup_loses_nothing() {
    let dir = TestDir::new("logrotate");
    let own = dir.join("svc.log");
    let main = dir.join("all.log");
    // Writes until told to stop, so that the rotations below all happen while
    // it writes, however slow the machine.
    let writer = dir.script(
        "writer",
        "i=1; while [ ! -e \"$DIR/stop\" ]; do echo \"n $i\"; i=$((i+1)); \
         [ $((i % 50)) -eq 0 ] && sleep 0.01; done; echo finished; exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"log_format": "plain", "log_file": main, "services": [
            {"name": "w", "command": [writer], "log_file": own}]}),
    );
    let conf = dir.write(
        "logrotate.conf",
        &format!(
            "{} {} {{\n  rotate 100\n  missingok\n  nocompress\n  create 0644\n  sharedscripts\n  \
             postrotate\n    kill -HUP {}\n  endscript\n}}\n",
            own.display(),
            main.display(),
            tend.pid()
        ),
    );
    let state = dir.join("logrotate.state");
    let written = |t: &Tend| t.log().matches("w | n ").count();
    for _ in 0..5 {
        let before = written(&tend);
        tend.wait_until("more lines", |t| written(t) > before + 100);
        let out = Command::new("logrotate")
            .args(["-f", "-s"])
            .arg(&state)
            .arg(&conf)
            .output()
            .expect("logrotate (scripts/install-peers.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = written(&tend);
    tend.wait_until("more lines after the last rotation", |t| {
        written(t) > before + 100
    });
    dir.write("stop", "");
    tend.wait_log("w | finished");
    let last = written(&tend) as u64;
    tend.wait_until("the last line in both files", |_| {
        let has = |p: &Path| {
            rotated(p).iter().any(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .contains("finished")
            })
        };
        has(&own) && has(&main)
    });
    let own_files = rotated(&own);
    assert_eq!(own_files.len(), 6, "{own_files:?}");
    assert_eq!(
        numbers_in(&own_files, &plain_line),
        (1..=last).collect::<Vec<_>>()
    );
    let in_main = numbers_in(&rotated(&main), &|l: &str| {
        l.strip_prefix("w | ").map(str::to_string)
    });
    assert_eq!(in_main, (1..=last).collect::<Vec<_>>());
}

#[test]
fn a_log_file_in_a_removed_folder_is_reported_once_and_supervision_goes_on() {
    let dir = TestDir::new("rmfolder");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let own = sub.join("t.log");
    let tick = dir.script(
        "tick",
        "i=0; while :; do i=$((i+1)); echo \"n $i\"; sleep 0.02; done",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "t", "command": [tick], "log_file": own},
                            {"name": "other", "command": ["/bin/sleep", "1000"]}]}),
    );
    tend.wait_until("lines in the file", |_| own.exists());
    std::fs::remove_dir_all(&sub).expect("rm -r");
    let said = format!("log file {}", own.display());
    tend.wait_log(&said);
    // Keep going for several retries (one a second), then count the reports.
    let lines_now = tend.log().matches(" t | n ").count();
    tend.wait_until("three seconds' worth of lines", |t| {
        t.log().matches(" t | n ").count() > lines_now + 150
    });
    let (code, _, err) = tend.client(&["restart", "other"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tend.state("t"), "running");
    let log = tend.log();
    let reports = log
        .lines()
        .filter(|l| l.contains(&said) && l.contains("ERROR"))
        .count();
    assert_eq!(reports, 1, "{log}");
    // Back: the file says how many lines it missed, then goes on.
    std::fs::create_dir(&sub).expect("mkdir again");
    tend.wait_until("the file again", |_| {
        let text = std::fs::read_to_string(&own).unwrap_or_default();
        text.contains("lines were not written to this file") && text.lines().count() > 3
    });
    let text = std::fs::read_to_string(&own).unwrap_or_default();
    let first = text.lines().next().unwrap_or_default();
    let dropped: u64 = first
        .split_once(" WARN ")
        .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(dropped >= 100, "{first}");
    tend.wait_log(&format!("{said} can be written again"));
}

/// /proc/PID/status VmRSS in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn a_slow_stderr_reader_bounds_memory_and_keeps_status_answering() {
    const LINES: u64 = 3_000_000;
    let dir = TestDir::new("slowreader");
    let flood = dir.script(
        "flood",
        &format!("seq 1 {LINES} | sed 's/^/n /'; echo done; exec sleep 1000"),
    );
    let config = json!({"control_socket": dir.socket(), "services": [
        {"name": "f", "command": [flood]},
        {"name": "other", "command": ["/bin/sleep", "1000"]}]});
    let path = dir.write("config.json", &config.to_string());
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
    let pid = child.id() as i32;
    poll_until("socket", PATIENCE, || dir.join("s.sock").exists());
    let status = || {
        let t0 = Instant::now();
        let out = Command::new(TEND)
            .args(["status", "--json", "-s", &dir.socket()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        (out, t0.elapsed())
    };
    // Nobody reads tend's stderr: it fills, tend pauses reading the flood,
    // memory stays put, status answers.
    let (mut worst, mut max_rss) = (Duration::ZERO, 0);
    for _ in 0..20 {
        let (out, took) = status();
        assert!(out.contains("\"other\""), "status answered: {out}");
        worst = worst.max(took);
        max_rss = max_rss.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Now read slowly at first, then all: every line, in order.
    let mut stderr = child.stderr.take().expect("stderr");
    let (mut seen, mut buf, mut chunk) = (0u64, Vec::new(), vec![0u8; 1 << 16]);
    let mut log_lines: Vec<String> = Vec::new();
    let mut reads = 0u64;
    while seen < LINES {
        let n = stderr.read(&mut chunk).unwrap_or(0);
        assert!(n > 0, "log ended early after {seen} lines");
        reads += 1;
        if reads.is_multiple_of(200) {
            max_rss = max_rss.max(rss_kib(pid));
            if reads < 2000 {
                let (out, took) = status();
                assert!(out.contains("\"other\""), "status answered: {out}");
                worst = worst.max(took);
                std::thread::sleep(Duration::from_millis(10)); // a slow reader
            }
        }
        buf.extend_from_slice(&chunk[..n]);
        let last = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        for line in String::from_utf8_lossy(&buf[..last]).lines() {
            match line.split_once(" f | n ") {
                Some((_, text)) => {
                    assert_eq!(text, (seen + 1).to_string(), "line order");
                    seen += 1;
                }
                None if line.contains(" tend ") => log_lines.push(line.to_string()),
                None => {}
            }
        }
        buf.drain(..last);
    }
    eprintln!("slow reader: max RSS {max_rss} KiB, slowest status {worst:?}");
    assert!(
        max_rss < 24 * 1024,
        "tend RSS {max_rss} KiB while its stderr was slow"
    );
    assert!(worst < Duration::from_secs(3), "status took {worst:?}");
    // Backpressure is said once per episode: a pause, then its end, in turn.
    let marks: Vec<bool> = log_lines
        .iter()
        .filter_map(|l| {
            if l.contains("pausing reads of their output") {
                Some(true)
            } else if l.contains("log output caught up") {
                Some(false)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(marks.first(), Some(&true), "{log_lines:?}");
    assert!(marks.windows(2).all(|w| w[0] != w[1]), "{log_lines:?}");
    drop(guard);
    let _ = child.wait();
}
