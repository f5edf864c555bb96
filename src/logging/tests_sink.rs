//! The sink end to end: each format in every destination, JSON that parses
//! back whatever a service wrote, service files, and the bound on memory when
//! the main stream is a pipe nobody reads (nothing lost or reordered once it
//! is read).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use log::Level;

use super::*;
use crate::config::ServiceSpec;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = PathBuf::from(format!("/tmp/logs-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap_or_default()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A sink whose main stream is the file `stderr` in `dir`.
fn sink_to_file(dir: &Dir, format: LogFormat) -> LogSink {
    let file = std::fs::File::create(dir.0.join("stderr")).unwrap();
    LogSink::new(Output::to(OwnedFd::from(file)), format)
}

/// Lines as the splitter hands them over.
fn block(lines: &[&str]) -> (Vec<u8>, Vec<u32>) {
    let mut text = Vec::new();
    let mut ends = Vec::new();
    for l in lines {
        text.extend_from_slice(l.as_bytes());
        text.push(b'\n');
        ends.push(text.len() as u32);
    }
    (text, ends)
}

fn push(sink: &mut LogSink, service: &str, stream: Stream, lines: &[&str]) {
    let (text, ends) = block(lines);
    sink.service_lines(
        service,
        stream,
        Lines {
            text: &text,
            ends: &ends,
        },
    );
}

fn config(format: LogFormat, main: Option<&Path>, files: &[(&str, &Path)]) -> Config {
    let services = files
        .iter()
        .map(|(name, path)| {
            let mut s = ServiceSpec::new(name, vec!["/bin/true".into()]);
            s.log_file = Some(path.to_path_buf());
            s
        })
        .collect();
    let mut c = Config::new(services);
    c.log_format = format;
    c.log_file = main.map(Path::to_path_buf);
    c
}

/// Drop the timestamp: `2026-12-02T10:00:00.123Z web | x` → `web | x`.
fn unstamped(line: &str) -> &str {
    assert_eq!(line.as_bytes().get(23), Some(&b'Z'), "{line}");
    &line[25..]
}

#[test]
fn text_and_plain_tell_stdout_stderr_and_tend_apart_in_every_destination() {
    for format in [LogFormat::Text, LogFormat::Plain] {
        let dir = Dir::new(&format!("fmt-{format:?}"));
        let mut sink = sink_to_file(&dir, format);
        let (main, web) = (dir.0.join("all.log"), dir.0.join("web.log"));
        sink.configure(&config(format, Some(&main), &[("web", &web)]));
        sink.refresh_clock();
        push(&mut sink, "web", Stream::Stdout, &["listening on :8080"]);
        sink.shared
            .push(Level::Info, "web: running (pid 42)".into());
        push(&mut sink, "web", Stream::Stderr, &["oops", ""]);
        push(&mut sink, "db", Stream::Stdout, &["ready"]);
        assert!(sink.flush());
        let stderr = dir.read("stderr");
        let lines: Vec<&str> = match format {
            LogFormat::Text => stderr.lines().map(unstamped).collect(),
            _ => stderr.lines().collect(),
        };
        assert_eq!(
            lines,
            [
                "web | listening on :8080",
                "tend INFO web: running (pid 42)",
                "web !| oops",
                "web !| ",
                "db | ready"
            ]
        );
        assert_eq!(dir.read("all.log"), stderr, "{format:?}: top-level file");
        let own = dir.read("web.log");
        match format {
            LogFormat::Plain => assert_eq!(own, "listening on :8080\noops\n\n"),
            _ => {
                let want: Vec<&str> = stderr.lines().filter(|l| l.contains(" web ")).collect();
                assert_eq!(own.lines().collect::<Vec<_>>(), want);
            }
        }
    }
}

#[test]
fn json_records_parse_back_for_every_byte_a_service_can_write() {
    let dir = Dir::new("json");
    let mut sink = sink_to_file(&dir, LogFormat::Json);
    let web = dir.0.join("web.log");
    sink.configure(&config(LogFormat::Json, None, &[("web", &web)]));
    // Every control byte but the newline that ends a line, alone and inside
    // text; quotes, backslashes, U+FFFD (what the splitter makes of bytes that
    // are not UTF-8), other non-ASCII; a block that is all clean.
    let mut odd: Vec<String> = (0u8..0x20)
        .filter(|&b| b != b'\n')
        .map(|b| format!("a{}b", b as char))
        .collect();
    odd.extend(
        [
            "\"quoted\"",
            "back\\slash",
            "caf\u{fffd}",
            "\u{1b}[31mred\u{1b}[0m",
            "日本",
            "",
        ]
        .map(String::from),
    );
    let odd_refs: Vec<&str> = odd.iter().map(String::as_str).collect();
    sink.refresh_clock();
    push(&mut sink, "web", Stream::Stderr, &odd_refs);
    push(&mut sink, "web", Stream::Stdout, &["clean 1", "clean 2"]);
    sink.shared
        .push(Level::Warn, "tend's \"own\"\nmessage".into());
    assert!(sink.flush());
    let stderr = dir.read("stderr");
    let records: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(records.len(), odd.len() + 3);
    for (r, want) in records.iter().zip(&odd) {
        assert_eq!(r["line"], want.as_str());
        assert_eq!(
            (&r["service"], &r["stream"]),
            (&"web".into(), &"stderr".into())
        );
        assert_eq!(r["ts"].as_str().map(str::len), Some(24));
    }
    assert_eq!(records[odd.len() + 1]["line"], "clean 2");
    assert_eq!(records[odd.len() + 1]["stream"], "stdout");
    let own = &records[odd.len() + 2];
    assert_eq!(
        (&own["level"], &own["message"]),
        (&"warn".into(), &"tend's \"own\"\nmessage".into())
    );
    assert!(own.get("service").is_none());
    // The service's own file holds the same records but tend's.
    let lines: Vec<&str> = stderr.lines().take(odd.len() + 2).collect();
    assert_eq!(dir.read("web.log").lines().collect::<Vec<_>>(), lines);
}

/// A main stream that is a pipe: the sink, and the read end (blocking: the
/// test reads only after a flush has put something in).
fn sink_to_pipe(format: LogFormat) -> (LogSink, std::fs::File) {
    let (r, w) = crate::sys::pipe().unwrap();
    (LogSink::new(Output::to(w), format), std::fs::File::from(r))
}

#[test]
fn a_stalled_main_stream_bounds_memory_and_loses_nothing() {
    for format in [LogFormat::Text, LogFormat::Json] {
        let (mut sink, mut reader) = sink_to_pipe(format);
        // `yes`-like: 256 KiB reads of short numbered lines, read while the
        // sink is not congested, and one more (a read already under way).
        let mut next = 0u64;
        let mut reads = 0;
        let make = |next: &mut u64| {
            let mut text = Vec::with_capacity(256 << 10);
            let mut ends = Vec::new();
            while text.len() < (256 << 10) - 16 {
                text.extend_from_slice(format!("{next}\n").as_bytes());
                ends.push(text.len() as u32);
                *next += 1;
            }
            (text, ends)
        };
        loop {
            let congested = sink.is_congested();
            sink.refresh_clock();
            let (text, ends) = make(&mut next);
            sink.service_lines(
                "yes",
                Stream::Stdout,
                Lines {
                    text: &text,
                    ends: &ends,
                },
            );
            sink.flush();
            reads += 1;
            if congested {
                break;
            }
        }
        assert!(reads >= 3, "{format:?}: congested after {reads} reads");
        let held = sink.held_bytes();
        assert!(
            held <= OUT_LIMIT + HIGH_WATER + (1 << 20),
            "{format:?}: {held} bytes held for {} lines",
            next
        );
        // Now read it all: every number once, in order.
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        let mut seen = 0u64;
        while seen < next {
            sink.flush();
            let n = reader.read(&mut chunk).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&chunk[..n]);
            let last = got.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            for line in got[..last].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let line = std::str::from_utf8(line).unwrap();
                let number = match format {
                    LogFormat::Json => {
                        let v: serde_json::Value = serde_json::from_str(line).unwrap();
                        if v.get("service").is_none() {
                            continue; // tend's own
                        }
                        v["line"].as_str().unwrap().to_string()
                    }
                    _ => match line.split_once("yes | ") {
                        Some((_, n)) => n.to_string(),
                        None => continue,
                    },
                };
                assert_eq!(number, seen.to_string(), "{format:?}");
                seen += 1;
            }
            got.drain(..last);
        }
        assert!(sink.flush());
        assert!(sink.out.capacity() <= buffer_keep(), "memory given back");
    }
}

fn buffer_keep() -> usize {
    1 << 20
}

#[test]
fn reconfiguring_keeps_unchanged_files_and_moves_changed_ones() {
    let dir = Dir::new("reconf");
    let mut sink = sink_to_file(&dir, LogFormat::Plain);
    let (a, b) = (dir.0.join("a.log"), dir.0.join("b.log"));
    sink.configure(&config(LogFormat::Plain, None, &[("web", &a)]));
    push(&mut sink, "web", Stream::Stdout, &["one"]);
    sink.configure(&config(LogFormat::Plain, None, &[("web", &a)]));
    push(&mut sink, "web", Stream::Stdout, &["two"]);
    sink.configure(&config(LogFormat::Plain, None, &[("web", &b)]));
    push(&mut sink, "web", Stream::Stdout, &["three"]);
    sink.configure(&config(LogFormat::Plain, None, &[]));
    push(&mut sink, "web", Stream::Stdout, &["four"]);
    sink.flush();
    assert_eq!(dir.read("a.log"), "one\ntwo\n");
    assert_eq!(dir.read("b.log"), "three\n");
    assert_eq!(
        dir.read("stderr"),
        "web | one\nweb | two\nweb | three\nweb | four\n"
    );
}

#[test]
fn a_service_file_that_fails_does_not_touch_the_main_stream() {
    let dir = Dir::new("devfull");
    let mut sink = sink_to_file(&dir, LogFormat::Plain);
    sink.configure(&config(
        LogFormat::Plain,
        None,
        &[("web", Path::new("/dev/full"))],
    ));
    for i in 0..100 {
        push(&mut sink, "web", Stream::Stdout, &[&format!("line {i}")]);
        sink.flush();
    }
    assert_eq!(dir.read("stderr").lines().count(), 100);
    let deadline = sink.poll_deadline().expect("a retry is due");
    sink.handle_deadlines(deadline);
    assert!(sink.poll_deadline().is_some_and(|d| d > deadline));
}
