//! tend's log: where its own lines and every service's output lines go.
//!
//! tend's own lines are formatted by simplelog; service output lines, which can
//! come by the million, are formatted here in the same shape
//! (`2026-11-22T15:37:53.123Z [INFO] web: listening`) without going through the
//! `log` machinery. Both land in one in-memory buffer, in order.
//!
//! The event loop flushes that buffer to stderr with non-blocking writes and never
//! blocks on it. When stderr is slower than the services (a stalled `docker logs`
//! reader, a slow terminal), the buffer passes [`HIGH_WATER`], [`LogSink::is_congested`]
//! turns true, and the loop stops reading service pipes until it drains: their
//! writes block, as with any pipe, but supervision goes on and no line is dropped.
//! Only tend's own lines can still be added then; past [`HARD_CAP`] they are counted
//! and dropped, with a note once the buffer drains.
//!
//! Must not: block the loop (except [`LogSink::flush_blocking`] at exit), or set
//! `O_NONBLOCK` on the inherited fd 2, which the parent shell shares.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter};
use simplelog::{ConfigBuilder, LevelPadding, WriteLogger};

use crate::lines::Lines;
use crate::sys::{self, FileKind};

mod buffer;
use buffer::LogBuf;

/// Above this many unwritten bytes, the loop stops reading service output.
pub const HIGH_WATER: usize = 1 << 20;
/// Above this many, even tend's own lines are dropped (and counted).
pub const HARD_CAP: usize = 16 << 20;

/// The log level in force: `$TEND_LOG` if set to a valid level, else the config's.
pub fn effective_level(config_level: LevelFilter) -> LevelFilter {
    std::env::var("TEND_LOG")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(config_level)
}

/// tend's own lines, written by simplelog (possibly from any thread in theory,
/// hence the mutex), waiting to be merged into the sink in order.
#[derive(Default)]
struct Own {
    data: Vec<u8>,
    dropped: u64,
    clock: ClockCache,
}

#[derive(Default)]
struct Shared {
    own: Mutex<Own>,
    /// Set when `own` has bytes: checked (cheaply) before every service line, so
    /// that tend's line about a service never overtakes that service's output.
    own_pending: AtomicBool,
}

/// The `Write` that simplelog writes into. It puts the timestamp in front of
/// every line itself (simplelog's own would need the `time` crate's macros), so
/// tend's lines and service lines carry the same one.
struct OwnWriter {
    shared: Arc<Shared>,
    at_line_start: bool,
}

impl Write for OwnWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Ok(mut own) = self.shared.own.lock() else {
            return Ok(bytes.len());
        };
        if own.data.len() + bytes.len() > HARD_CAP {
            own.dropped += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            return Ok(bytes.len());
        }
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                let stamp = own.clock.stamp(SystemTime::now());
                let stamp = *stamp;
                own.data.extend_from_slice(&stamp);
                own.data.push(b' ');
            }
            own.data.extend_from_slice(piece);
            self.at_line_start = piece.ends_with(b"\n");
        }
        self.shared.own_pending.store(true, Ordering::Release);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the log goes and what is still to be written there.
pub struct LogSink {
    shared: Arc<Shared>,
    /// Log bytes in order; `data[written..]` is not on stderr yet and
    /// `data[filed..]` not in the log file yet.
    data: LogBuf,
    written: usize,
    filed: usize,
    out: Output,
    file: Option<File>,
    /// The timestamp of service lines, refreshed once per read (lines read
    /// together arrived together).
    clock: ClockCache,
    /// `<stamp> [LEVEL] <service>: ` of the last service line, reused while the
    /// clock, level and service stay the same (a flood of one service's lines).
    prefix: Vec<u8>,
    prefix_level: Option<Level>,
    prefix_service_at: usize,
}

/// How stderr is written: directly (a regular file), through a non-blocking
/// reopened description (a pipe or terminal), or with `send(MSG_DONTWAIT)`.
struct Output {
    fd: RawFd,
    _owned: Option<OwnedFd>,
    socket: bool,
    nonblocking: bool,
    broken: bool,
}

impl Output {
    fn stderr() -> Output {
        let fd = 2;
        match sys::file_kind(fd) {
            FileKind::Regular => Output::plain(fd, false, false),
            FileKind::Socket => Output::plain(fd, true, true),
            FileKind::Other => match sys::reopen_nonblocking(fd) {
                Ok(new) => Output {
                    fd: new.as_raw_fd(),
                    _owned: Some(new),
                    socket: false,
                    nonblocking: true,
                    broken: false,
                },
                Err(_) => Output::plain(fd, false, false),
            },
        }
    }

    fn plain(fd: RawFd, socket: bool, nonblocking: bool) -> Output {
        Output {
            fd,
            _owned: None,
            socket,
            nonblocking,
            broken: false,
        }
    }
}

impl LogSink {
    /// Install simplelog (tend's own lines) into a fresh sink; `level` is applied
    /// through `log::set_max_level`, so a reload can change it.
    pub fn install(level: LevelFilter) -> LogSink {
        let shared = Arc::new(Shared::default());
        let config = ConfigBuilder::new()
            .set_time_level(LevelFilter::Off)
            .set_level_padding(LevelPadding::Off)
            .set_target_level(LevelFilter::Off)
            .set_thread_level(LevelFilter::Off)
            .set_location_level(LevelFilter::Off)
            .build();
        let writer = OwnWriter {
            shared: Arc::clone(&shared),
            at_line_start: true,
        };
        let logger = WriteLogger::new(LevelFilter::Trace, config, writer);
        // A second install (tests) keeps the first logger; that is fine.
        let _ = log::set_boxed_logger(logger);
        log::set_max_level(level);
        LogSink {
            shared,
            data: LogBuf::default(),
            written: 0,
            filed: 0,
            out: Output::stderr(),
            file: None,
            clock: ClockCache::default(),
            prefix: Vec::new(),
            prefix_level: None,
            prefix_service_at: 0,
        }
    }

    /// Also write the log to `path` (appending), or stop doing so with `None`.
    pub fn set_file(&mut self, path: Option<&Path>) -> io::Result<()> {
        self.file = match path {
            Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
            None => None,
        };
        self.filed = self.data.len();
        Ok(())
    }

    /// The fd to watch for WRITABLE while output is pending, if writes can block.
    pub fn watch_fd(&self) -> Option<RawFd> {
        self.out.nonblocking.then_some(self.out.fd)
    }

    /// Take the time for the service lines that follow.
    pub fn refresh_clock(&mut self) {
        self.clock.stamp(SystemTime::now());
        self.prefix_level = None;
    }

    /// Add a block of one service's output lines, if their level passes the log
    /// level.
    pub fn service_lines(&mut self, level: Level, service: &str, lines: Lines<'_>) {
        if level > log::max_level() {
            return;
        }
        if self.shared.own_pending.load(Ordering::Acquire) {
            self.merge_own();
        }
        self.set_prefix(level, service);
        self.data.push_lines(&self.prefix, lines);
    }

    /// `<stamp> [LEVEL] <service>: `, rebuilt only when the clock, the level or
    /// the service changed since the last line.
    fn set_prefix(&mut self, level: Level, service: &str) {
        let same = self.prefix_level == Some(level)
            && self
                .prefix
                .get(self.prefix_service_at..self.prefix.len().saturating_sub(2))
                == Some(service.as_bytes());
        if !same {
            self.prefix.clear();
            self.prefix.extend_from_slice(self.clock.current());
            self.prefix.extend_from_slice(b" [");
            self.prefix.extend_from_slice(level.as_str().as_bytes());
            self.prefix.extend_from_slice(b"] ");
            self.prefix_service_at = self.prefix.len();
            self.prefix.extend_from_slice(service.as_bytes());
            self.prefix.extend_from_slice(b": ");
            self.prefix_level = Some(level);
        }
    }

    /// Move tend's own lines into the sink, after everything already there.
    fn merge_own(&mut self) {
        let (bytes, dropped) = match self.shared.own.lock() {
            Ok(mut own) => {
                self.shared.own_pending.store(false, Ordering::Release);
                (
                    std::mem::take(&mut own.data),
                    std::mem::take(&mut own.dropped),
                )
            }
            Err(_) => return,
        };
        self.data.extend(&bytes);
        if dropped > 0 {
            log::warn!("log output was too slow: {dropped} of tend's own log lines were dropped");
        }
    }

    /// Bytes not yet written to stderr.
    pub fn backlog(&self) -> usize {
        self.data.len() - self.written
    }

    /// Whether service output should wait until the log drains.
    pub fn is_congested(&self) -> bool {
        self.backlog() > HIGH_WATER
    }

    /// Write what can be written without blocking. Returns true when nothing is
    /// left pending.
    pub fn flush(&mut self) -> bool {
        if self.shared.own_pending.load(Ordering::Acquire) {
            self.merge_own();
        }
        if self.data.is_empty() {
            return true;
        }
        if let Some(file) = &mut self.file
            && file.write_all(&self.data.as_slice()[self.filed..]).is_err()
        {
            self.file = None; // a full disk must not stop supervision
        }
        self.filed = self.data.len();
        while self.written < self.data.len() {
            if self.out.broken {
                self.written = self.data.len();
                break;
            }
            match sys::write_some(
                self.out.fd,
                &self.data.as_slice()[self.written..],
                self.out.socket,
            ) {
                Ok(0) => break,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // EPIPE and friends: nobody reads stderr any more; keep supervising.
                Err(_) => self.out.broken = true,
            }
        }
        if self.written == self.data.len() {
            self.data.clear();
            self.written = 0;
            self.filed = 0;
            true
        } else {
            false
        }
    }

    /// At exit: write everything, waiting at most `limit` for a slow reader.
    pub fn flush_blocking(&mut self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while !self.flush() && std::time::Instant::now() < deadline {
            // A short wait bounds each round.
            sys::wait_writable(self.out.fd, Duration::from_millis(50));
        }
    }
}

impl AsRawFd for LogSink {
    fn as_raw_fd(&self) -> RawFd {
        self.out.fd
    }
}

/// Caches the formatted `YYYY-MM-DDTHH:MM:SS` of the current second, since a
/// flood of lines would otherwise format the same date over and over.
#[derive(Default)]
struct ClockCache {
    second: u64,
    text: [u8; 24],
}

impl ClockCache {
    fn stamp(&mut self, now: SystemTime) -> &[u8; 24] {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        if secs != self.second || self.text[0] == 0 {
            self.second = secs;
            let date = civil_time(secs);
            self.text[..20].copy_from_slice(date.as_bytes().get(..20).unwrap_or(&[b'0'; 20]));
        }
        let ms = since.subsec_millis();
        self.text[19] = b'.';
        self.text[20] = b'0' + (ms / 100) as u8;
        self.text[21] = b'0' + (ms / 10 % 10) as u8;
        self.text[22] = b'0' + (ms % 10) as u8;
        self.text[23] = b'Z';
        &self.text
    }

    /// The last stamp taken (the epoch if none was).
    fn current(&mut self) -> &[u8; 24] {
        if self.text[0] == 0 {
            self.stamp(UNIX_EPOCH);
        }
        &self.text
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` in UTC for seconds since the epoch (Howard Hinnant's
/// days-to-civil algorithm).
fn civil_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_matches_known_dates() {
        assert_eq!(civil_time(0), "1970-01-01T00:00:00.");
        assert_eq!(civil_time(951_782_400), "2000-02-29T00:00:00.");
        assert_eq!(civil_time(1_795_362_473), "2026-11-22T15:47:53.");
    }

    #[test]
    fn stamp_has_milliseconds() {
        let mut c = ClockCache::default();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_362_473_045);
        assert_eq!(c.stamp(t), b"2026-11-22T15:47:53.045Z");
    }
}
