//! tend's log (SPEC §7): every record — tend's own messages and services'
//! output lines — to tend's main stream (stderr), the top-level `log_file`,
//! and each service's `log_file`, in the `log_format` in force.
//!
//! Service lines are records, not levels: they carry their service and stream
//! and are never filtered by `log_level`, which is for tend's own messages
//! (queued by the `log` logger in `own.rs` and merged here in order).
//!
//! The main stream is written without ever blocking the loop. Records are
//! formatted into `out` (at most [`OUT_LIMIT`] bytes waiting); when the stream
//! is slower than that, further records wait unformatted in `queue` (the
//! bytes the services wrote, not the 20-fold that 2-byte lines make in a
//! format). Past [`HIGH_WATER`] bytes in both, [`LogSink::is_congested`] turns
//! true, the loop stops reading service pipes until they drain (their writes
//! block, as with any pipe; said once per episode), and no line is dropped.
//! Memory is bounded: `out` holds at most `OUT_LIMIT` plus one formatted line,
//! `queue` at most `HIGH_WATER` plus one read budget and 256 KiB of tend's own
//! messages (plus what services that just exited left in their pipes), each
//! service file [`FILE_BUF`] plus one line.
//!
//! Log files never apply backpressure: each write is bounded (a buffer's
//! worth), and a file that cannot be written drops its lines and counts them
//! (`file.rs`).
//!
//! Read first: [`LogSink::service_lines`], [`LogSink::flush`], then
//! `buffer.rs` (the hot path) and `file.rs`.
//!
//! Must not: block the loop (except [`LogSink::flush_blocking`] at exit), set
//! `O_NONBLOCK` on the inherited fd 2, or drop a line meant for the main stream.

mod buffer;
mod file;
mod format;
mod handover;
mod own;
mod queue;
mod service_file;
mod stderr;

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use log::{LevelFilter, info, warn};

use crate::config::{Config, LogFormat, Rotation};
use crate::lines::{Lines, Stream, find_newline};
use buffer::LogBuf;
use file::LogFile;
use format::{ClockCache, Layout};
pub use handover::SinkSnapshot;
use own::Shared;
use queue::{Entry, Queue};
pub use service_file::FILE_BUF;
use service_file::ServiceFile;
use stderr::Output;

/// Above this many bytes waiting for the main stream, the loop stops reading
/// service output.
pub const HIGH_WATER: usize = 1 << 20;
/// Formatted bytes waiting for the main stream; further records are queued.
pub const OUT_LIMIT: usize = 512 << 10;
/// tend's own messages still queued past `HIGH_WATER`; beyond, they are
/// counted and dropped (with a note once the log drains).
const OWN_EXTRA: usize = 256 << 10;
/// Bytes one flush writes to the main stream before the loop gets a turn.
const FLUSH_BUDGET: usize = 4 << 20;

/// The log level in force: `$TEND_LOG` if set to a valid level, else the config's.
pub fn effective_level(config_level: LevelFilter) -> LevelFilter {
    std::env::var("TEND_LOG")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(config_level)
}

/// Where the log goes and what is still to be written there.
pub struct LogSink {
    shared: Arc<Shared>,
    layout: Layout,
    /// Formatted records for the main stream and the top-level file; the first
    /// `stderr_at` / `file_at` bytes of `out.pending()` are written there.
    out: LogBuf,
    stderr_at: usize,
    file_at: usize,
    queue: Queue,
    stderr: Output,
    main_file: Option<LogFile>,
    files: HashMap<String, ServiceFile>,
    /// The timestamp of service lines, taken once per read (lines read
    /// together arrived together).
    clock: ClockCache,
    /// The prefix of the last block's lines, for (generation, service, stream).
    prefix: Vec<u8>,
    prefix_for: Option<(u64, Stream)>,
    prefix_service: String,
    /// Scratch for records formatted from the queue.
    scratch: Vec<u8>,
    ends: Vec<u32>,
    /// The last flush stopped at its budget with more to write.
    more: bool,
    /// Since when the main stream is congested, if it is (one episode: until
    /// everything is written).
    episode: Option<Instant>,
    own_dropped: u64,
}

impl LogSink {
    /// Make this sink the destination of tend's own messages (`log` macros)
    /// at `level`, writing to stderr in `format`.
    pub fn install(level: LevelFilter, format: LogFormat) -> LogSink {
        let sink = LogSink::new(Output::stderr(), format);
        own::install(Arc::clone(&sink.shared), level);
        sink
    }

    fn new(stderr: Output, format: LogFormat) -> LogSink {
        LogSink {
            shared: Arc::new(Shared::default()),
            layout: Layout::Named(format),
            out: LogBuf::default(),
            stderr_at: 0,
            file_at: 0,
            queue: Queue::default(),
            stderr,
            main_file: None,
            files: HashMap::new(),
            clock: ClockCache::default(),
            prefix: Vec::new(),
            prefix_for: None,
            prefix_service: String::new(),
            scratch: Vec::new(),
            ends: Vec::new(),
            more: false,
            episode: None,
            own_dropped: 0,
        }
    }

    /// Apply the log settings of `config`: the format, the top-level
    /// `log_file` and every service's `log_file` (an unchanged file stays
    /// open; one no longer named is written out and closed). At start and at
    /// every reload, after the services are (re)defined.
    pub fn configure(&mut self, config: &Config) {
        self.flush();
        let format = config.log_format;
        if self.layout != Layout::Named(format) {
            self.layout = Layout::Named(format);
            self.prefix_for = None;
        }
        let main = config.log_file.as_ref().map(|p| (p, config.log_rotation));
        let same = |f: &LogFile, (path, rotation): (&PathBuf, Rotation)| {
            f.path() == path && f.rotation() == rotation
        };
        match (&mut self.main_file, main) {
            (Some(f), Some(want)) if same(f, want) => f.set_layout(self.layout),
            (_, want) => {
                self.main_file = want.map(|(p, r)| LogFile::open(p, r, self.layout));
                self.file_at = self.stderr_at;
            }
        }
        let service_layout = match format {
            LogFormat::Plain => Layout::Bare,
            LogFormat::Text | LogFormat::Json => Layout::Named(format),
        };
        let mut old = std::mem::take(&mut self.files);
        for spec in &config.services {
            let Some(path) = &spec.log_file else {
                continue;
            };
            let rotation = config.rotation_of(spec);
            let file = match old.remove(&spec.name) {
                Some(mut f) if same(&f.file, (path, rotation)) => {
                    f.set_layout(service_layout);
                    f
                }
                Some(mut f) => {
                    f.write();
                    ServiceFile::open(path, rotation, service_layout)
                }
                None => ServiceFile::open(path, rotation, service_layout),
            };
            self.files.insert(spec.name.clone(), file);
        }
        for f in old.values_mut() {
            f.write();
        }
    }

    /// The fd to watch for WRITABLE while output is pending, if writes can block.
    pub fn watch_fd(&self) -> Option<RawFd> {
        self.stderr.can_block().then_some(self.stderr.fd())
    }

    /// Take the time for the service lines that follow.
    pub fn refresh_clock(&mut self) {
        self.clock.stamp(SystemTime::now());
    }

    /// A block of one service's output lines from one stream: to the main
    /// stream (and top-level file) and to the service's own file. Never
    /// filtered; never dropped on the main stream.
    pub fn service_lines(&mut self, service: &str, stream: Stream, lines: Lines<'_>) {
        let n = lines.ends.len();
        if n == 0 {
            return;
        }
        if self.shared.has_pending() {
            self.merge_own();
        }
        let mut from = 0;
        if self.queue.is_empty() {
            if self.prefix_for != Some((self.clock.generation(), stream))
                || self.prefix_service != service
            {
                let stamp = self.clock.current();
                format::service_prefix(&mut self.prefix, self.layout, stamp, service, stream);
                self.prefix_for = Some((self.clock.generation(), stream));
                self.prefix_service.clear();
                self.prefix_service.push_str(service);
            }
            from = self.push_out(lines, 0);
            if from < n {
                // Full: a fast stream takes it now, and the rest goes straight in.
                self.write_out();
                from = self.push_out(lines, from);
            }
        }
        if from < n {
            let start = lines
                .ends
                .get(from.wrapping_sub(1))
                .map_or(0, |&e| e as usize);
            let text = lines.text.get(start..).unwrap_or(&[]);
            let stamp = *self.clock.current();
            self.queue.push_lines(&stamp, service, stream, text);
        }
        if !self.files.is_empty()
            && let Some(file) = self.files.get_mut(service)
        {
            let generation = self.clock.generation();
            file.push(self.clock.current(), generation, service, stream, lines);
        }
        self.note_congestion();
    }

    fn push_out(&mut self, lines: Lines<'_>, from: usize) -> usize {
        if self.layout.is_json() {
            self.out.push_json(&self.prefix, lines, from, OUT_LIMIT)
        } else {
            self.out.push_text(&self.prefix, lines, from, OUT_LIMIT)
        }
    }

    /// Move tend's own messages into the log, after everything already there.
    fn merge_own(&mut self) {
        let (records, dropped) = self.shared.take();
        self.own_dropped += dropped;
        for r in records {
            if self.queue.is_empty() && self.out.pending_len() < OUT_LIMIT {
                self.scratch.clear();
                format::message(&mut self.scratch, self.layout, &r.stamp, r.level, &r.text);
                self.out.extend(&self.scratch);
            } else if self.queue.len() < HIGH_WATER + OWN_EXTRA {
                self.queue.push_message(&r.stamp, r.level, &r.text);
            } else {
                self.own_dropped += 1;
            }
        }
    }

    /// Bytes waiting for the main stream (formatted, and raw in the queue).
    pub fn backlog(&self) -> usize {
        self.out.pending_len() - self.stderr_at + self.queue.len()
    }

    /// Memory the sink's buffers hold (bounded: see the module doc).
    pub fn held_bytes(&self) -> usize {
        self.out.capacity()
            + self.queue.capacity()
            + self
                .files
                .values()
                .map(ServiceFile::capacity)
                .sum::<usize>()
    }

    /// Whether service output should wait until the log drains.
    pub fn is_congested(&self) -> bool {
        self.backlog() > HIGH_WATER
    }

    /// Whether the loop should flush before reading more output.
    pub fn wants_flush(&self) -> bool {
        self.out.pending_len() >= OUT_LIMIT / 2 || !self.queue.is_empty()
    }

    /// Whether the last flush stopped with the stream still writable (the loop
    /// must come round without waiting for an event).
    pub fn has_more(&self) -> bool {
        self.more
    }

    fn note_congestion(&mut self) {
        if self.episode.is_none() && self.is_congested() {
            self.episode = Some(Instant::now());
            warn!("log output is slower than the services; pausing reads of their output");
        }
    }

    /// Write `out` to the top-level file and to stderr; drop what both have.
    /// Returns whether stderr is full.
    fn write_out(&mut self) -> bool {
        let pending = self.out.pending();
        match &mut self.main_file {
            Some(file) if self.file_at < pending.len() => {
                self.file_at += file.write(&pending[self.file_at..]);
                // A pipe as log_file must not hold the main stream back.
                if self.file_at < self.stderr_at && pending.len() >= OUT_LIMIT {
                    let lag = &pending[self.file_at..self.stderr_at];
                    let lines = lag.iter().filter(|&&b| b == b'\n').count() as u64;
                    file.drop_lines(lines, "it takes lines more slowly than tend's stderr");
                    self.file_at = self.stderr_at;
                }
            }
            Some(_) => {}
            None => self.file_at = pending.len(),
        }
        let (n, full) = self.stderr.write(&pending[self.stderr_at..]);
        self.stderr_at += n;
        let done = self.stderr_at.min(self.file_at);
        self.out.consume(done);
        self.stderr_at -= done;
        self.file_at -= done;
        full
    }

    /// Format queued records into `out` while it has room.
    fn refill(&mut self) -> usize {
        let before = self.out.pending_len();
        while self.out.pending_len() < OUT_LIMIT {
            let taken = match self.queue.front() {
                None => break,
                Some(Entry::Message { stamp, level, text }) => {
                    self.scratch.clear();
                    let message = String::from_utf8_lossy(text);
                    format::message(&mut self.scratch, self.layout, &stamp, level, &message);
                    self.out.extend(&self.scratch);
                    text.len().max(1) // an empty message is taken too
                }
                Some(Entry::Lines {
                    stamp,
                    service,
                    stream,
                    text,
                }) => {
                    self.prefix_for = None;
                    format::service_prefix(&mut self.prefix, self.layout, &stamp, service, stream);
                    self.ends.clear();
                    let mut at = 0;
                    while let Some(p) = text.get(at..).and_then(find_newline) {
                        at += p + 1;
                        self.ends.push(at as u32);
                    }
                    if at < text.len() {
                        self.ends.push(text.len() as u32); // cannot happen: blocks end in `\n`
                    }
                    let lines = Lines {
                        text,
                        ends: &self.ends,
                    };
                    let k = if self.layout.is_json() {
                        self.out.push_json(&self.prefix, lines, 0, OUT_LIMIT)
                    } else {
                        self.out.push_text(&self.prefix, lines, 0, OUT_LIMIT)
                    };
                    k.checked_sub(1)
                        .and_then(|i| self.ends.get(i))
                        .map_or(0, |&e| e as usize)
                }
            };
            if taken == 0 {
                break;
            }
            self.queue.take(taken);
        }
        self.out.pending_len() - before
    }

    /// Write what can be written without blocking, at most [`FLUSH_BUDGET`]
    /// to the main stream, and every service file's buffer. Returns true when
    /// nothing is left for the main stream (a service file that is a full pipe
    /// may still hold its buffer).
    pub fn flush(&mut self) -> bool {
        if self.shared.has_pending() {
            self.merge_own();
        }
        self.more = false;
        let mut budget = FLUSH_BUDGET;
        loop {
            let full = self.write_out();
            if full || self.queue.is_empty() {
                break;
            }
            if budget == 0 {
                self.more = true;
                break;
            }
            let added = self.refill();
            if added == 0 {
                self.more = true; // `out` is held by a lagging log_file: next turn
                break;
            }
            budget = budget.saturating_sub(added);
        }
        for file in self.files.values_mut() {
            file.write();
        }
        let idle = self.out.is_empty() && self.queue.is_empty();
        if idle {
            if let Some(since) = self.episode.take() {
                info!(
                    "log output caught up after {:.1}s; reading services' output again",
                    since.elapsed().as_secs_f64()
                );
            }
            if self.own_dropped > 0 {
                let n = std::mem::take(&mut self.own_dropped);
                warn!("log output was too slow: {n} of tend's own log lines were dropped");
            }
        } else {
            self.note_congestion();
        }
        idle && !self.shared.has_pending()
    }

    /// At exit: write everything, waiting at most `limit` for a slow reader.
    pub fn flush_blocking(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.flush() && Instant::now() < deadline {
            if !self.more {
                crate::sys::wait_writable(self.stderr.fd(), Duration::from_millis(50));
            }
        }
    }

    /// SIGHUP: write what is waiting, then reopen every log file at its path
    /// (logrotate has renamed them), so that nothing is lost or doubled.
    pub fn reopen(&mut self) {
        self.flush();
        if let Some(file) = &mut self.main_file {
            let pending = self.out.pending();
            if self.file_at < pending.len() {
                self.file_at += file.write(&pending[self.file_at..]);
            }
            file.reopen();
        }
        for f in self.files.values_mut() {
            f.write();
            f.file.reopen();
        }
    }

    /// When a log file that could not be written is to be tried again.
    pub fn poll_deadline(&self) -> Option<Instant> {
        let main = self.main_file.as_ref().and_then(LogFile::deadline);
        let services = self.files.values().filter_map(|f| f.file.deadline());
        main.into_iter().chain(services).min()
    }

    /// Try again the log files whose deadline has come.
    pub fn handle_deadlines(&mut self, now: Instant) {
        if let Some(file) = &mut self.main_file {
            file.retry(now);
        }
        for f in self.files.values_mut() {
            f.file.retry(now);
        }
    }
}

#[cfg(test)]
#[path = "tests_sink.rs"]
mod tests;
#[cfg(test)]
#[path = "tests_handover.rs"]
mod tests_handover;
