//! The log across `tend reexec` (`handover.rs`): a sink whose main stream is
//! stalled hands its unwritten output to a new sink, and what the old one
//! wrote followed by what the new one writes is every record once, in order,
//! in every destination.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use log::Level;

use super::*;
use crate::config::ServiceSpec;

fn dir(name: &str) -> PathBuf {
    let path = PathBuf::from(format!("/tmp/logs-handover-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("mkdir");
    path
}

fn config(format: LogFormat, main: &Path, web: &Path) -> Config {
    let mut s = ServiceSpec::new("web", vec!["/bin/true".into()]);
    s.log_file = Some(web.to_path_buf());
    let mut c = Config::new(vec![s]);
    c.log_format = format;
    c.log_file = Some(main.to_path_buf());
    c
}

/// Lines `from..to` of `web` as one block.
fn push(sink: &mut LogSink, from: u64, to: u64) {
    let mut text = Vec::new();
    let mut ends = Vec::new();
    for n in from..to {
        text.extend_from_slice(format!("line {n}\n").as_bytes());
        ends.push(text.len() as u32);
    }
    sink.refresh_clock();
    sink.service_lines(
        "web",
        Stream::Stdout,
        Lines {
            text: &text,
            ends: &ends,
        },
    );
}

/// The numbers of `web`'s lines in `text`, and tend's own messages, in order.
fn records(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            if let Some((_, n)) = l.split_once("web | line ") {
                Some(n.to_string())
            } else if let Some(rest) = l.strip_prefix("line ") {
                Some(rest.to_string()) // the service file, plain
            } else {
                l.split_once("tend INFO ").map(|(_, m)| m.to_string())
            }
        })
        .collect()
}

fn expected(total: u64, own_at: u64) -> Vec<String> {
    let mut all: Vec<String> = (0..total).map(|n| n.to_string()).collect();
    all.insert(own_at as usize, "between the blocks".to_string());
    all
}

#[test]
fn a_stalled_sink_hands_over_every_record_once_and_in_order() {
    for format in [LogFormat::Text, LogFormat::Plain] {
        let path = dir(&format!("{format:?}"));
        let (main, web) = (path.join("all.log"), path.join("web.log"));
        let (r, w) = crate::sys::pipe().expect("pipe");
        let mut reader = std::fs::File::from(r);
        let mut old = LogSink::new(Output::to(w), format);
        old.configure(&config(format, &main, &web));
        // More than the pipe and the sink's output buffer hold: the rest
        // waits in the queue, unformatted, when the handover comes.
        let mut n = 0;
        let mut own_at = 0;
        for block in 0..20 {
            push(&mut old, n, n + 5000);
            n += 5000;
            if block == 10 {
                old.shared.push(Level::Info, "between the blocks".into());
                own_at = n;
            }
            old.flush();
        }
        assert!(old.backlog() > OUT_LIMIT, "the queue is in use");
        let snapshot = old.handover();
        assert_eq!(old.backlog(), 0);
        let bytes = crate::codec::wire::encode(&snapshot);
        let snapshot: SinkSnapshot = crate::codec::wire::decode(&bytes).expect("decode");
        // The new process: its main stream is the same pipe's reader side
        // drained first (what the old one wrote), then a file.
        let mut written = Vec::new();
        drop(old);
        reader.read_to_end(&mut written).expect("read the pipe");
        let stderr = std::fs::File::create(path.join("stderr")).expect("file");
        let mut new = LogSink::new(Output::to(OwnedFd::from(stderr)), format);
        new.configure(&config(format, &main, &web));
        new.adopt(snapshot, true);
        new.shared.push(Level::Info, "after the exec".into());
        assert!(new.flush());
        let mut all = String::from_utf8_lossy(&written).into_owned();
        all.push_str(&std::fs::read_to_string(path.join("stderr")).expect("stderr"));
        let mut want = expected(n, own_at);
        want.push("after the exec".to_string());
        assert_eq!(records(&all), want, "{format:?}: main stream");
        let main_text = std::fs::read_to_string(&main).expect("main file");
        assert_eq!(records(&main_text), want, "{format:?}: log_file");
        let web_text = std::fs::read_to_string(&web).expect("web file");
        let lines: Vec<String> = (0..n).map(|n| n.to_string()).collect();
        assert_eq!(records(&web_text), lines, "{format:?}: the service's file");
        let _ = std::fs::remove_dir_all(&path);
    }
}

#[test]
fn a_failed_exec_gives_the_bytes_back_without_counting_twice() {
    let path = dir("back");
    let (main, web) = (path.join("all.log"), path.join("web.log"));
    let (r, w) = crate::sys::pipe().expect("pipe");
    let reader = std::fs::File::from(r);
    let mut sink = LogSink::new(Output::to(w), LogFormat::Plain);
    sink.configure(&config(LogFormat::Plain, &main, &web));
    for block in 0..20 {
        push(&mut sink, block * 5000, (block + 1) * 5000);
        sink.flush();
    }
    sink.own_dropped = 3;
    let snapshot = sink.handover();
    sink.adopt(snapshot, false);
    assert_eq!(sink.own_dropped, 3);
    // Read until the sink is idle and the pipe empty (never blocking).
    let mut reader = mio::unix::pipe::Receiver::from(OwnedFd::from(reader));
    reader.set_nonblocking(true).expect("nonblocking");
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let idle = sink.flush();
        match reader.read(&mut chunk) {
            Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ if idle => break,
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(&got);
    let want: Vec<String> = (0..100_000).map(|n: u64| n.to_string()).collect();
    assert_eq!(records(&text), want);
    let _ = std::fs::remove_dir_all(&path);
}
