//! One log file (the top-level `log_file` or a service's): appending whole
//! lines, rotating by size, reopening on SIGHUP, and going on without it when
//! it cannot be written (SPEC §7).
//!
//! Rotation: before a write would take the file past `log_max_size`, the lines
//! that still fit go in, then `FILE.(keep-1)` → `FILE.keep` ... `FILE` →
//! `FILE.1` (so `FILE.1` is the newest and the oldest is overwritten) and a new
//! `FILE` is opened; a write is cut only between lines, so every line is in
//! exactly one file. Only regular files rotate (`/dev/stdout`, a FIFO or
//! `/dev/full` are written, never renamed).
//!
//! Failure (a full disk, a removed folder, a FIFO nobody reads): reported once,
//! naming the file; the lines meant for it are dropped and counted, never kept;
//! the file is opened again at a deadline ([`LogFile::deadline`], every
//! [`RETRY`]); once a write succeeds again, a line in the file says how many
//! lines it missed. A file removed while open (its folder with it, say) is
//! noticed within a second of writing, since writes to it would vanish.
//!
//! Must not: hold lines (the caller's fixed buffer does), block on a FIFO
//! (opened `O_NONBLOCK`), or panic on any I/O error.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use log::{Level, error, info};

use super::format::{self, ClockCache, Layout};
use crate::config::Rotation;

/// How long a file that cannot be written waits before it is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How often a file being written is checked for having been removed.
const CHECK_EVERY: Duration = Duration::from_secs(1);

struct Open {
    file: File,
    size: u64,
    regular: bool,
}

/// One log file and what is known about writing it.
pub struct LogFile {
    path: PathBuf,
    rotation: Rotation,
    /// How the "lines were dropped" notice is written.
    layout: Layout,
    open: Option<Open>,
    /// Lines meant for the file and not written since it last worked.
    dropped: u64,
    /// Why it last failed (for the notice).
    reason: String,
    /// A failure was reported and no write has succeeded since.
    failing: bool,
    /// When to open it again (while closed after a failure).
    retry_at: Option<Instant>,
    /// The last byte written was not a newline (a write cut by an error).
    mid_line: bool,
    checked_at: Instant,
}

fn open_append(path: &Path) -> io::Result<Open> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    Ok(Open {
        file,
        size: meta.len(),
        regular: meta.file_type().is_file(),
    })
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// `FILE.n`
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl LogFile {
    /// Open `path` for appending; if that fails, report it and retry later.
    pub fn open(path: &Path, rotation: Rotation, layout: Layout) -> LogFile {
        let mut file = LogFile {
            path: path.to_path_buf(),
            rotation,
            layout,
            open: None,
            dropped: 0,
            reason: String::new(),
            failing: false,
            retry_at: None,
            mid_line: false,
            checked_at: Instant::now(),
        };
        match open_append(path) {
            Ok(open) => file.open = Some(open),
            Err(e) => file.fail(&e, "cannot open it"),
        }
        file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    pub fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// Lines dropped and not reported in the file yet.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether writes go anywhere now (callers skip formatting when not).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// When to try a closed file again.
    pub fn deadline(&self) -> Option<Instant> {
        self.retry_at.filter(|_| self.open.is_none())
    }

    /// Lines that could not even be handed over (the caller's buffer for the
    /// file was full): dropped and counted like those of a failed write.
    pub fn drop_lines(&mut self, lines: u64, why: &str) {
        if lines == 0 {
            return;
        }
        self.dropped += lines;
        if !self.failing {
            self.failing = true;
            self.reason = why.to_string();
            error!(
                "log file {}: {why}; its lines are dropped (and counted) until it keeps up",
                self.path.display()
            );
        }
    }

    /// Close after a failure, report it once, and try again in [`RETRY`].
    fn fail(&mut self, e: &io::Error, doing: &str) {
        self.open = None;
        self.retry_at = Some(Instant::now() + RETRY);
        self.reason = e.to_string();
        if !self.failing {
            self.failing = true;
            error!(
                "log file {}: {doing}: {e}; its lines are dropped (and counted) until it can be \
                 written again (retried every {}s)",
                self.path.display(),
                RETRY.as_secs()
            );
        }
    }

    /// At the deadline: open the file again and, if it takes the notice of
    /// what it missed, use it again.
    pub fn retry(&mut self, now: Instant) {
        if self.open.is_some() || self.retry_at.is_none_or(|at| at > now) {
            return;
        }
        self.retry_at = None;
        match open_append(&self.path) {
            Ok(open) => {
                self.open = Some(open);
                self.announce();
            }
            Err(e) => self.fail(&e, "cannot open it"),
        }
    }

    /// SIGHUP: write to whatever is at the path now (logrotate renamed ours).
    pub fn reopen(&mut self) {
        match open_append(&self.path) {
            Ok(open) => {
                self.open = Some(open);
                self.retry_at = None;
                self.mid_line = false;
                self.announce();
            }
            Err(e) => self.fail(&e, "cannot open it again"),
        }
    }

    /// If lines were dropped, write a line saying how many (first, so that it
    /// sits where they are missing).
    fn announce(&mut self) {
        if self.dropped == 0 || self.open.is_none() {
            return;
        }
        let text = format!(
            "{} lines were not written to this file ({})",
            self.dropped, self.reason
        );
        let mut record = Vec::new();
        if self.mid_line {
            record.push(b'\n');
        }
        let mut clock = ClockCache::default();
        format::message(
            &mut record,
            self.layout,
            clock.stamp(SystemTime::now()),
            Level::Warn,
            &text,
        );
        match self.write_unrotated(&record) {
            Ok(_) => {
                info!(
                    "log file {} can be written again; {} lines were dropped",
                    self.path.display(),
                    self.dropped
                );
                self.dropped = 0;
                self.failing = false;
            }
            Err(e) => self.fail(&e, "cannot write it"),
        }
    }

    /// Write `bytes` (whole lines) or drop them. Returns how many bytes are
    /// done: all of them, unless the file is a pipe that is full for now.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        if bytes.is_empty() {
            return 0;
        }
        if self.open.is_some() && self.dropped > 0 {
            self.announce();
        }
        self.check_removed();
        if self.open.is_none() {
            self.dropped += count_lines(bytes);
            return bytes.len();
        }
        match self.write_rotating(bytes) {
            Ok(n) => {
                if n > 0 && self.failing {
                    self.failing = false;
                    info!("log file {} can be written again", self.path.display());
                }
                n
            }
            Err((done, e, doing)) => {
                self.fail(&e, doing);
                self.dropped += count_lines(&bytes[done..]);
                bytes.len()
            }
        }
    }

    /// Every [`CHECK_EVERY`]: reopen a regular file that was removed (its
    /// writes would go nowhere), and learn its real size (another program may
    /// have truncated it).
    fn check_removed(&mut self) {
        let Some(open) = &mut self.open else {
            return;
        };
        if !open.regular || self.checked_at.elapsed() < CHECK_EVERY {
            return;
        }
        self.checked_at = Instant::now();
        match open.file.metadata() {
            Ok(meta) if meta.nlink() > 0 => open.size = meta.len(),
            Ok(_) => match open_append(&self.path) {
                Ok(new) => {
                    info!(
                        "log file {} was removed; writing a new one",
                        self.path.display()
                    );
                    self.open = Some(new);
                }
                Err(e) => self.fail(&e, "it was removed and cannot be created again"),
            },
            Err(e) => self.fail(&e, "cannot check it"),
        }
    }

    /// Write whole lines, rotating first where the next ones would not fit.
    /// Ok: bytes written (fewer only when a pipe is full). Err: bytes written
    /// before the error, the error, what was being done.
    fn write_rotating(
        &mut self,
        mut bytes: &[u8],
    ) -> Result<usize, (usize, io::Error, &'static str)> {
        let mut done = 0;
        while !bytes.is_empty() {
            let Some(open) = &self.open else {
                return Ok(done);
            };
            let max = self.rotation.max_size;
            let cut = if open.regular && open.size + bytes.len() as u64 > max {
                let room = max.saturating_sub(open.size).min(bytes.len() as u64) as usize;
                match bytes[..room].iter().rposition(|&b| b == b'\n') {
                    Some(p) => p + 1,
                    // Not even one line fits: into an empty file it goes whole.
                    None if open.size == 0 => bytes
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |p| p + 1),
                    None => 0,
                }
            } else {
                bytes.len()
            };
            if cut > 0 {
                let n = self
                    .write_unrotated(&bytes[..cut])
                    .map_err(|e| (done, e, "cannot write it"))?;
                done += n;
                bytes = &bytes[n..];
                if n < cut {
                    return Ok(done); // a full pipe: the rest later
                }
            }
            if !bytes.is_empty() {
                self.rotate().map_err(|e| (done, e, "cannot rotate it"))?;
            }
        }
        Ok(done)
    }

    /// Write as much of `bytes` as the file takes now.
    fn write_unrotated(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Some(open) = &mut self.open else {
            return Ok(0);
        };
        let mut done = 0;
        while done < bytes.len() {
            match open.file.write(&bytes[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    open.size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    if done > 0 {
                        self.mid_line = bytes[done - 1] != b'\n';
                    }
                    return Err(e);
                }
            }
        }
        if done > 0 {
            self.mid_line = bytes[done - 1] != b'\n';
        }
        Ok(done)
    }

    /// `FILE` → `FILE.1` → ... → `FILE.keep` (the oldest overwritten), and a
    /// new `FILE`; with `keep` 0 the file just starts over.
    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.keep;
        if keep == 0 {
            if let Some(open) = &mut self.open {
                open.file.set_len(0)?;
                open.size = 0;
            }
            return Ok(());
        }
        // Shift only the files there are (up to the first gap): a rename per
        // kept file, not `keep` of them.
        let present = (1..keep)
            .take_while(|&n| numbered(&self.path, n).exists())
            .count() as u32;
        for n in (1..=present).rev() {
            match std::fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        match std::fs::rename(&self.path, numbered(&self.path, 1)) {
            // Someone moved it already: a new one is all that is needed.
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.open = Some(open_append(&self.path)?);
        self.checked_at = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests_file.rs"]
mod tests;
