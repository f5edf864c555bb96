//! A service's own `log_file`: its lines only, in the log's format (in
//! `plain`, just the lines, as supervisord's and Horust's files are), through a
//! fixed buffer.
//!
//! Lines are formatted into the buffer as they arrive and written when it
//! fills and at every flush of the sink. A file that cannot take them (closed
//! after a failure, or a full pipe) gets its lines dropped and counted by its
//! [`LogFile`]; the buffer never grows past [`FILE_BUF`] plus one line.
//!
//! Must not: apply backpressure (only tend's main stream does, SPEC §7).

use std::path::Path;

use super::buffer::LogBuf;
use super::file::LogFile;
use super::format::{self, Layout};
use crate::config::Rotation;
use crate::lines::{Lines, Stream};

/// Formatted bytes a service's file may have waiting.
pub const FILE_BUF: usize = 256 << 10;

pub struct ServiceFile {
    pub file: LogFile,
    buf: LogBuf,
    layout: Layout,
    prefix: Vec<u8>,
    /// The clock generation and stream `prefix` was built for.
    built: Option<(u64, Stream)>,
}

impl ServiceFile {
    pub fn open(path: &Path, rotation: Rotation, layout: Layout) -> ServiceFile {
        ServiceFile {
            file: LogFile::open(path, rotation, layout),
            buf: LogBuf::default(),
            layout,
            prefix: Vec::new(),
            built: None,
        }
    }

    pub fn set_layout(&mut self, layout: Layout) {
        if layout != self.layout {
            self.layout = layout;
            self.built = None;
            self.file.set_layout(layout);
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Add a block of the service's lines, stamped `stamp` (clock generation
    /// `generation`).
    pub fn push(
        &mut self,
        stamp: &[u8; 24],
        generation: u64,
        service: &str,
        stream: Stream,
        lines: Lines<'_>,
    ) {
        let n = lines.ends.len();
        if !self.file.is_open() {
            self.file.drop_lines(n as u64, "");
            return;
        }
        if self.layout == Layout::Bare && self.buf.is_empty() {
            // Just the lines: straight from the block, no copy.
            let done = self.file.write(lines.text);
            if let Some(rest) = lines.text.get(done..).filter(|r| !r.is_empty()) {
                self.buf.extend(rest); // a full pipe: at most one read's worth
            }
            return;
        }
        if self.built != Some((generation, stream)) {
            format::service_prefix(&mut self.prefix, self.layout, stamp, service, stream);
            self.built = Some((generation, stream));
        }
        let mut from = 0;
        while from < n {
            from = if self.layout.is_json() {
                self.buf.push_json(&self.prefix, lines, from, FILE_BUF)
            } else {
                self.buf.push_text(&self.prefix, lines, from, FILE_BUF)
            };
            if from == n {
                break;
            }
            self.write();
            if self.buf.pending_len() >= FILE_BUF || !self.file.is_open() {
                let why = "it takes lines more slowly than the services write them";
                self.file.drop_lines((n - from) as u64, why);
                break;
            }
        }
    }

    /// Take the bytes not written yet (`tend reexec` hands them over).
    pub fn take_unwritten(&mut self) -> Vec<u8> {
        let bytes = self.buf.pending().to_vec();
        self.buf.consume(bytes.len());
        bytes
    }

    /// Bytes to write before the next ones (see [`Self::take_unwritten`]).
    pub fn put_back(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
    }

    /// Write what is waiting (all of it, unless the file is a full pipe).
    pub fn write(&mut self) {
        if !self.buf.is_empty() {
            let done = self.file.write(self.buf.pending());
            self.buf.consume(done);
        }
    }
}
