//! What one log record looks like in each `log_format` (SPEC §7): the prefix
//! put before a service's lines, tend's own messages, and the timestamp (JSON
//! string escaping is `codec::json`'s, shared with the control protocol).
//!
//! ```text
//! text   2026-12-02T10:00:00.123Z web | listening on :8080
//!        2026-12-02T10:00:00.123Z web !| a line the service wrote on stderr
//!        2026-12-02T10:00:00.125Z tend INFO web: running (pid 42)
//! plain  web | listening on :8080            (text without the timestamp)
//! json   {"ts":"2026-12-02T10:00:00.123Z","service":"web","stream":"stdout","line":"listening on :8080"}
//!        {"ts":"2026-12-02T10:00:00.125Z","level":"info","message":"web: running (pid 42)"}
//! bare   listening on :8080                  (a service's own file in `plain`)
//! ```
//!
//! A service's lines in one block share one timestamp, service and stream, so
//! their prefix is built once here and copied before each line by
//! `buffer.rs`; in JSON every line is followed by [`JSON_SUFFIX`].
//!
//! Must not: allocate per line, or write anything that is not valid UTF-8 (a
//! JSON line must parse whatever bytes a service wrote; the splitter already
//! replaced what was not UTF-8).

use std::time::{SystemTime, UNIX_EPOCH};

use log::Level;

use crate::codec::json::{escape_into, must_escape};
use crate::config::LogFormat;
use crate::lines::Stream;

/// How a destination shows records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One of the three `log_format`s, naming the service on each line.
    Named(LogFormat),
    /// Just the line (a service's own file in `plain`: the service is the file).
    Bare,
}

impl Layout {
    pub fn is_json(self) -> bool {
        self == Layout::Named(LogFormat::Json)
    }
}

/// What ends a service line in JSON: the closing quote of `line`, the object, the line.
pub const JSON_SUFFIX: &[u8; 3] = b"\"}\n";

/// The marks between a service's name and its line: a person must tell stderr
/// from stdout at a glance, and a service's line from tend's (`tend INFO`).
fn mark(stream: Stream) -> &'static [u8] {
    match stream {
        Stream::Stdout => b" | ",
        Stream::Stderr => b" !| ",
    }
}

/// Build into `out` (cleared first) what comes before each of a service's lines.
pub fn service_prefix(
    out: &mut Vec<u8>,
    layout: Layout,
    stamp: &[u8; 24],
    service: &str,
    stream: Stream,
) {
    out.clear();
    match layout {
        Layout::Bare => {}
        Layout::Named(LogFormat::Text) => {
            out.extend_from_slice(stamp);
            out.push(b' ');
            out.extend_from_slice(service.as_bytes());
            out.extend_from_slice(mark(stream));
        }
        Layout::Named(LogFormat::Plain) => {
            out.extend_from_slice(service.as_bytes());
            out.extend_from_slice(mark(stream));
        }
        Layout::Named(LogFormat::Json) => {
            out.extend_from_slice(b"{\"ts\":\"");
            out.extend_from_slice(stamp);
            out.extend_from_slice(b"\",\"service\":\"");
            escape_into(out, service.as_bytes());
            out.extend_from_slice(b"\",\"stream\":\"");
            out.extend_from_slice(stream.as_str().as_bytes());
            out.extend_from_slice(b"\",\"line\":\"");
        }
    }
}

/// Append one of tend's own messages as one record (a line ending in `\n`).
/// In text, a message of several lines keeps its line breaks, each following
/// line indented, so it still reads as one record.
pub fn message(out: &mut Vec<u8>, layout: Layout, stamp: &[u8; 24], level: Level, text: &str) {
    match layout {
        Layout::Named(LogFormat::Json) => {
            out.extend_from_slice(b"{\"ts\":\"");
            out.extend_from_slice(stamp);
            out.extend_from_slice(b"\",\"level\":\"");
            out.extend_from_slice(level_lower(level).as_bytes());
            out.extend_from_slice(b"\",\"message\":\"");
            escape_into(out, text.as_bytes());
            out.extend_from_slice(b"\"}\n");
        }
        Layout::Named(LogFormat::Text) | Layout::Named(LogFormat::Plain) | Layout::Bare => {
            if layout == Layout::Named(LogFormat::Text) {
                out.extend_from_slice(stamp);
                out.push(b' ');
            }
            out.extend_from_slice(b"tend ");
            out.extend_from_slice(level.as_str().as_bytes());
            out.push(b' ');
            let text = text.strip_suffix('\n').unwrap_or(text);
            for (i, line) in text.split('\n').enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"\n    ");
                }
                out.extend_from_slice(line.as_bytes());
            }
            out.push(b'\n');
        }
    }
}

fn level_lower(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// Whether any line of `text` (lines ending in `\n`) holds a byte that must be
/// escaped in JSON; the newlines that end the lines do not count.
///
/// One pass over the block, eight bytes at a time as a `u64` (the release
/// profile optimizes for size, which leaves loops unvectorized, and a byte
/// loop cost 3 cycles a byte, more than the copy): for the common block
/// (nothing to escape) this is all the JSON format costs beyond the copy.
pub fn block_needs_escape(text: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each byte of the result is set exactly where that byte
    // of `x` is zero (no carry crosses a byte: 0x7f + 0x7f < 0x100).
    let zero = |x: u64| !(((x & LOW7) + LOW7) | x) & HI;
    let mut words = text.chunks_exact(8);
    let mut hits = 0u64;
    for (i, word) in (&mut words).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes);
        // Newlines become 0x2a, which needs nothing.
        let x = x | (zero(x ^ (LO * u64::from(b'\n'))) >> 2);
        // Bytes below 0x20: (b & 0x7f) + 0x60 reaches 0x80 exactly from 0x20 on.
        let control = !(((x & LOW7) + LO * 0x60) | x) & HI;
        hits |= control | zero(x ^ (LO * u64::from(b'"'))) | zero(x ^ (LO * u64::from(b'\\')));
        if i % 8 == 7 && hits != 0 {
            return true;
        }
    }
    hits != 0
        || words
            .remainder()
            .iter()
            .any(|&b| b != b'\n' && must_escape(b))
}

/// Caches the formatted `YYYY-MM-DDTHH:MM:SS` of the current second, since a
/// flood of lines would otherwise format the same date over and over.
/// `generation` changes with every new stamp, so a cached prefix knows when it
/// is stale without comparing bytes.
#[derive(Debug, Default)]
pub struct ClockCache {
    second: u64,
    text: [u8; 24],
    generation: u64,
}

impl ClockCache {
    /// Take the time `now` as the current stamp.
    pub fn stamp(&mut self, now: SystemTime) -> &[u8; 24] {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        if secs != self.second || self.text[0] == 0 {
            self.second = secs;
            self.text[..20].copy_from_slice(&civil_time(secs));
        }
        let ms = since.subsec_millis();
        self.text[19] = b'.';
        self.text[20] = b'0' + (ms / 100) as u8;
        self.text[21] = b'0' + (ms / 10 % 10) as u8;
        self.text[22] = b'0' + (ms % 10) as u8;
        self.text[23] = b'Z';
        self.generation += 1;
        &self.text
    }

    /// The last stamp taken (the epoch if none was).
    pub fn current(&mut self) -> &[u8; 24] {
        if self.text[0] == 0 {
            self.stamp(UNIX_EPOCH);
        }
        &self.text
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` in UTC for seconds since the epoch.
fn civil_time(secs: u64) -> [u8; 20] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = crate::calendar::civil_from_days(days);
    let year = year.clamp(0, 9999);
    let mut out = *b"0000-00-00T00:00:00.";
    let digits = |out: &mut [u8], value: i64| {
        let mut v = value;
        for d in out.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut out[0..4], year);
    digits(&mut out[5..7], month);
    digits(&mut out[8..10], day);
    digits(&mut out[11..13], (rem / 3600) as i64);
    digits(&mut out[14..16], (rem / 60 % 60) as i64);
    digits(&mut out[17..19], (rem % 60) as i64);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const STAMP: &[u8; 24] = b"2026-12-02T10:00:00.123Z";

    fn prefix(layout: Layout, stream: Stream) -> String {
        let mut out = Vec::new();
        service_prefix(&mut out, layout, STAMP, "web", stream);
        String::from_utf8(out).unwrap()
    }

    fn msg(layout: Layout, text: &str) -> String {
        let mut out = Vec::new();
        message(&mut out, layout, STAMP, Level::Info, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn civil_time_matches_known_dates() {
        assert_eq!(&civil_time(0), b"1970-01-01T00:00:00.");
        assert_eq!(&civil_time(951_782_400), b"2000-02-29T00:00:00.");
        assert_eq!(&civil_time(1_795_362_473), b"2026-11-22T15:47:53.");
        assert_eq!(&civil_time(253_402_300_799), b"9999-12-31T23:59:59.");
    }

    #[test]
    fn stamp_has_milliseconds_and_a_new_generation() {
        let mut c = ClockCache::default();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_362_473_045);
        assert_eq!(c.stamp(t), b"2026-11-22T15:47:53.045Z");
        let g = c.generation();
        c.stamp(t + Duration::from_millis(1001));
        assert_eq!(c.current(), b"2026-11-22T15:47:54.046Z");
        assert_ne!(c.generation(), g);
    }

    #[test]
    fn text_and_plain_tell_streams_and_tend_apart() {
        use LogFormat::*;
        assert_eq!(
            prefix(Layout::Named(Text), Stream::Stdout),
            "2026-12-02T10:00:00.123Z web | "
        );
        assert_eq!(
            prefix(Layout::Named(Text), Stream::Stderr),
            "2026-12-02T10:00:00.123Z web !| "
        );
        assert_eq!(prefix(Layout::Named(Plain), Stream::Stdout), "web | ");
        assert_eq!(prefix(Layout::Named(Plain), Stream::Stderr), "web !| ");
        assert_eq!(prefix(Layout::Bare, Stream::Stderr), "");
        assert_eq!(
            msg(Layout::Named(Text), "web: running (pid 42)"),
            "2026-12-02T10:00:00.123Z tend INFO web: running (pid 42)\n"
        );
        assert_eq!(msg(Layout::Named(Plain), "hi"), "tend INFO hi\n");
        assert_eq!(
            msg(Layout::Named(Plain), "two\nlines\n"),
            "tend INFO two\n    lines\n"
        );
    }

    #[test]
    fn json_records_parse_back() {
        let mut line = prefix(Layout::Named(LogFormat::Json), Stream::Stderr).into_bytes();
        line.extend_from_slice(b"hello");
        line.extend_from_slice(JSON_SUFFIX);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ts": "2026-12-02T10:00:00.123Z", "service": "web",
                               "stream": "stderr", "line": "hello"})
        );
        let m = msg(Layout::Named(LogFormat::Json), "a \"quoted\"\nmessage");
        assert!(m.ends_with("}\n") && m.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["message"], "a \"quoted\"\nmessage");
        assert_eq!(v["ts"], "2026-12-02T10:00:00.123Z");
    }

    #[test]
    fn block_check_agrees_with_a_byte_loop_on_random_blocks() {
        let reference = |t: &[u8]| t.iter().any(|&b| b != b'\n' && must_escape(b));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let len = (next() % 150) as usize;
            // Mostly harmless bytes (any value from 0x20 up, newlines), now
            // and then one that must be escaped.
            let text: Vec<u8> = (0..len)
                .map(|_| match next() % 64 {
                    0 => (next() % 0x20) as u8,
                    1 => b'"',
                    2 => b'\\',
                    3..=8 => b'\n',
                    _ => 0x20 + (next() % 0xe0) as u8,
                })
                .collect();
            assert_eq!(
                block_needs_escape(&text),
                reference(&text),
                "round {round}: {text:?}"
            );
        }
    }

    #[test]
    fn block_check_finds_every_byte_to_escape_anywhere() {
        // Every length up to three pieces, the byte in every position; newlines
        // never count.
        for len in 1..100 {
            let mut text = vec![b'x'; len];
            for nl in (7..len).step_by(13) {
                text[nl] = b'\n';
            }
            assert!(!block_needs_escape(&text), "clean, length {len}");
            for at in 0..len {
                if text[at] == b'\n' {
                    continue;
                }
                for bad in [0u8, 0x1b, b'\t', b'\r', b'"', b'\\', 0x1f] {
                    let mut t = text.clone();
                    t[at] = bad;
                    assert!(block_needs_escape(&t), "{bad:#x} at {at} of {len}");
                }
                let mut t = text.clone();
                t[at] = 0x7f;
                assert!(!block_needs_escape(&t), "DEL needs no escape");
            }
        }
    }
}
