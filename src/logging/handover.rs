//! The log's unwritten output as data, for `tend reexec`: what tend's main
//! stream, the top-level `log_file` and each service's `log_file` have not
//! taken yet, formatted, and the lines each file dropped, so that the new
//! process writes them first and no line is lost or doubled by the exec.
//!
//! The old process flushes what it can without blocking, then hands the rest
//! over ([`LogSink::handover`]); should the exec fail, it takes the bytes back
//! ([`LogSink::adopt`] with `counts: false`) and goes on as before.
//!
//! Must not: block, or hand over tend's own messages unformatted (the queue's
//! layout is this binary's, the formatted bytes are what every tend writes).

use super::LogSink;
use crate::codec::wire::{Bytes, wire_struct};

/// What the log had not written yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkSnapshot {
    /// Formatted records tend's main stream has not taken.
    stderr: Bytes,
    /// Formatted records the top-level `log_file` has not taken.
    main_file: Bytes,
    /// Lines the top-level `log_file` dropped and has not reported yet.
    main_dropped: u64,
    /// Per service `log_file`: its unwritten bytes and its dropped lines.
    files: Vec<(String, Bytes, u64)>,
    /// tend's own messages dropped while the log was too slow.
    own_dropped: u64,
}

wire_struct!(SinkSnapshot {
    stderr,
    main_file,
    main_dropped,
    files,
    own_dropped,
});

impl SinkSnapshot {
    /// Bytes waiting for tend's main stream.
    pub fn backlog(&self) -> usize {
        self.stderr.0.len()
    }
}

impl LogSink {
    /// Flush what can be flushed now, then take out everything not yet
    /// written, formatted. Log nothing after this until the exec (it would go
    /// to the old process's buffers).
    pub fn handover(&mut self) -> SinkSnapshot {
        self.flush();
        if self.shared.has_pending() {
            self.merge_own();
        }
        let mut stderr = Vec::new();
        let mut main_file = Vec::new();
        loop {
            let pending = self.out.pending();
            stderr.extend_from_slice(pending.get(self.stderr_at..).unwrap_or(&[]));
            if self.main_file.is_some() {
                main_file.extend_from_slice(pending.get(self.file_at..).unwrap_or(&[]));
            }
            let done = pending.len();
            self.out.consume(done);
            self.stderr_at = 0;
            self.file_at = 0;
            if self.queue.is_empty() || self.refill() == 0 {
                break;
            }
        }
        let files = self
            .files
            .iter_mut()
            .map(|(name, f)| {
                f.write();
                let dropped = f.file.dropped();
                (name.clone(), Bytes(f.take_unwritten()), dropped)
            })
            .collect();
        SinkSnapshot {
            stderr: Bytes(stderr),
            main_file: Bytes(main_file),
            main_dropped: self.main_file.as_ref().map_or(0, |f| f.dropped()),
            files,
            own_dropped: self.own_dropped,
        }
    }

    /// Write `snapshot`'s bytes before anything else: call after
    /// [`LogSink::configure`], before the first flush. `counts`: take its
    /// dropped-line counts too (the new process; not the old one taking its
    /// own bytes back after a failed exec, which still has its counts).
    pub fn adopt(&mut self, snapshot: SinkSnapshot, counts: bool) {
        let SinkSnapshot {
            stderr,
            main_file,
            main_dropped,
            files,
            own_dropped,
        } = snapshot;
        // Nothing is in `out` yet (tend's own messages wait in `shared`), so
        // these bytes go out first.
        self.out.extend(&stderr.0);
        let why = "they were dropped before tend re-executed";
        if let Some(file) = &mut self.main_file {
            // The file takes its own bytes, not the main stream's.
            self.file_at = self.out.pending_len();
            let done = file.write(&main_file.0);
            let rest = main_file.0.get(done..).unwrap_or(&[]);
            file.drop_lines(count_lines(rest), "it could not take them at re-exec");
            if counts {
                file.drop_lines(main_dropped, why);
            }
        } else {
            self.file_at = self.out.pending_len();
        }
        for (name, bytes, dropped) in files {
            let Some(f) = self.files.get_mut(&name) else {
                continue;
            };
            f.put_back(&bytes.0);
            if counts {
                f.file.drop_lines(dropped, why);
            }
        }
        if counts {
            self.own_dropped += own_dropped;
        }
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}
