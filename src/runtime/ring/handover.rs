//! A `tend logs` ring as data, for `tend reexec`: its kept text and one
//! record per line, so that the new process shows the same lines with the
//! same numbers and times.
//!
//! Must not: keep more than a ring may hold; a snapshot whose ring breaks
//! its bounds or whose records do not add up to its text is refused.

use std::collections::VecDeque;

use super::{LogRing, RING_BYTES, RING_LINES, Record};
use crate::codec::wire::{Bytes, wire_struct};
use crate::lines::Stream;

/// One service's ring: its text, and per line (sequence number, time in ms
/// since the epoch, length with the newline, stream).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RingSnapshot {
    text: Bytes,
    lines: Vec<(u64, u64, u32, Stream)>,
}

wire_struct!(RingSnapshot { text, lines });

impl RingSnapshot {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

impl LogRing {
    pub fn snapshot(&self) -> RingSnapshot {
        RingSnapshot {
            text: Bytes(self.bytes.iter().copied().collect()),
            lines: self
                .lines
                .iter()
                .map(|r| (r.seq, r.ms, r.len, r.stream))
                .collect(),
        }
    }

    pub fn restore(snapshot: RingSnapshot) -> Result<LogRing, String> {
        let RingSnapshot { text, lines } = snapshot;
        if lines.len() > RING_LINES || text.0.len() > RING_BYTES {
            return Err(format!(
                "a log ring of {} lines and {} bytes is larger than a ring holds",
                lines.len(),
                text.0.len()
            ));
        }
        let total: u64 = lines.iter().map(|l| u64::from(l.2)).sum();
        if total != text.0.len() as u64 || lines.iter().any(|l| l.2 == 0) {
            return Err("a log ring's lines do not add up to its text".to_string());
        }
        Ok(LogRing {
            bytes: VecDeque::from(text.0),
            lines: lines
                .into_iter()
                .map(|(seq, ms, len, stream)| Record {
                    seq,
                    ms,
                    len,
                    stream,
                })
                .collect(),
        })
    }
}
