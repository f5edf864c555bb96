//! The recent output lines of one service, for `tend logs`: a ring bounded in
//! lines ([`RING_LINES`]) and bytes ([`RING_BYTES`]), and [`merge`], which
//! interleaves the rings of several services in the order tend read the lines.
//!
//! Lines are kept as one byte queue plus a small record per line (stream,
//! length, sequence number, time), so a block of lines read together is stored
//! with one copy, and a flood neither allocates nor copies per line. The record
//! costs 24 bytes, so a full ring holds at most `RING_BYTES + 24 * RING_LINES`
//! bytes (about 280 KiB).
//!
//! Every line read gets the next number of one counter shared by all services
//! ([`LineCounter`]), including lines a ring has no room for: merging by it
//! gives one order across services without comparing clocks.
//!
//! Must not: format lines for people (the client does) or know about sockets.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::output::{Lines, Stream};
use crate::protocol::{LogLine, rfc3339_ms};

mod handover;
pub use handover::RingSnapshot;

/// Lines kept per service.
pub const RING_LINES: usize = 1000;
/// Bytes kept per service (a few long lines must not hold megabytes).
pub const RING_BYTES: usize = 256 * 1024;
/// Most a `logs` reply carries, counting each line's text plus
/// [`LINE_OVERHEAD`]: with many services the rings hold far more than one
/// reply should. The newest lines win; the reply says when older ones were
/// left out.
pub const MAX_REPLY_COST: usize = 8 << 20;
/// Roughly the JSON around one line of a reply (time, seq, service, stream).
pub const LINE_OVERHEAD: usize = 128;

/// Hands out the sequence numbers of output lines, across all services.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineCounter(u64);

impl LineCounter {
    /// The counter's next number (`tend reexec` hands it over), and one that
    /// goes on from it.
    pub fn next(self) -> u64 {
        self.0
    }

    pub fn starting_at(next: u64) -> LineCounter {
        LineCounter(next)
    }

    /// Numbers for `n` lines read together: the first of `n` consecutive ones.
    pub fn take(&mut self, n: usize) -> u64 {
        let first = self.0;
        self.0 = self.0.wrapping_add(n as u64);
        first
    }
}

/// Now, in ms since the Unix epoch (0 if the clock is before it): the time
/// stamped on a block of lines.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One kept line's record; its text is in `LogRing::bytes`.
#[derive(Debug, Clone, Copy)]
struct Record {
    seq: u64,
    /// When it was read, in ms since the Unix epoch.
    ms: u64,
    /// Its length with the newline.
    len: u32,
    stream: Stream,
}

#[derive(Debug, Default)]
pub struct LogRing {
    /// The kept lines' text, each with its newline, oldest first.
    bytes: VecDeque<u8>,
    /// Each kept line's record, oldest first.
    lines: VecDeque<Record>,
}

impl LogRing {
    /// Keep the lines of a block read at `ms` (ms since the epoch), numbered from
    /// `first_seq` on, dropping the oldest beyond the bounds. Only the block's
    /// last lines that can survive are copied.
    pub fn push(&mut self, stream: Stream, block: Lines<'_>, first_seq: u64, ms: u64) {
        let (first, start) = surviving_tail(block);
        let incoming = block.text.len() - start;
        let count = block.ends.len() - first;
        // Evict the oldest lines that no longer fit, then their bytes at once: in
        // a flood a block replaces the whole ring, and a drain per line was the
        // ring's main cost.
        let (mut evict, mut kept_bytes) = (0, self.bytes.len());
        for record in &self.lines {
            if self.lines.len() - evict + count <= RING_LINES && kept_bytes + incoming <= RING_BYTES
            {
                break;
            }
            evict += 1;
            kept_bytes -= record.len as usize;
        }
        self.lines.drain(..evict);
        self.bytes.drain(..self.bytes.len() - kept_bytes);
        self.bytes.extend(&block.text[start..]);
        let mut at = start;
        let mut seq = first_seq.wrapping_add(first as u64);
        for &end in &block.ends[first..] {
            self.lines.push_back(Record {
                seq,
                ms,
                len: end - at as u32,
                stream,
            });
            at = end as usize;
            seq = seq.wrapping_add(1);
        }
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The text (without its newline) of a line of `len` bytes ending at `end`.
    fn text(&self, len: usize, end: usize) -> String {
        // Clamped, although the records and bytes always agree: never a panic.
        let stop = end.saturating_sub(1).min(self.bytes.len());
        let start = end.saturating_sub(len).min(stop);
        let bytes: Vec<u8> = self.bytes.range(start..stop).copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// What [`merge`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Oldest first, in the order tend read them.
    pub lines: Vec<LogLine>,
    /// Lines that matched were left out to keep the reply within
    /// [`MAX_REPLY_COST`].
    pub truncated: bool,
}

/// The newest lines of `rings` (each with its service's name), at most `limit`
/// of them (all when None), only those read at or after `since_ms`, interleaved
/// by sequence number: a k-way merge from the newest end, so only the lines
/// returned (and the ones skipped by `since_ms`) are looked at.
pub fn merge(rings: &[(&str, &LogRing)], limit: Option<usize>, since_ms: Option<u64>) -> Merged {
    // Per ring: how many of its lines are not taken yet, and where they end.
    let mut cursors: Vec<(usize, usize)> = rings
        .iter()
        .map(|(_, r)| (r.lines.len(), r.bytes.len()))
        .collect();
    let mut heap: BinaryHeap<(u64, Reverse<usize>)> = rings
        .iter()
        .enumerate()
        .filter_map(|(i, (_, r))| r.lines.back().map(|rec| (rec.seq, Reverse(i))))
        .collect();
    let limit = limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut cost = 0usize;
    let mut truncated = false;
    while out.len() < limit {
        let Some((_, Reverse(i))) = heap.pop() else {
            break;
        };
        let (Some((name, ring)), Some(cursor)) = (rings.get(i), cursors.get_mut(i)) else {
            continue;
        };
        let (left, end) = *cursor;
        let Some(index) = left.checked_sub(1) else {
            continue;
        };
        let Some(record) = ring.lines.get(index).copied() else {
            continue;
        };
        let start = end.saturating_sub(record.len as usize);
        *cursor = (index, start);
        if let Some(prev) = index.checked_sub(1).and_then(|p| ring.lines.get(p)) {
            heap.push((prev.seq, Reverse(i)));
        }
        if since_ms.is_some_and(|since| record.ms < since) {
            continue;
        }
        cost += record.len as usize + LINE_OVERHEAD;
        if cost > MAX_REPLY_COST {
            truncated = true;
            break;
        }
        let line = ring.text(record.len as usize, end);
        out.push(LogLine {
            ts: rfc3339_ms(record.ms),
            seq: record.seq,
            service: (*name).to_string(),
            stream: record.stream.as_str().to_string(),
            line,
        });
    }
    out.reverse();
    Merged {
        lines: out,
        truncated,
    }
}

/// The lines of a block as followers get them (see [`LogRing::push`] for the
/// numbering).
pub fn block_lines<'a>(
    service: &'a str,
    stream: Stream,
    block: Lines<'a>,
    first_seq: u64,
    ms: u64,
) -> impl Iterator<Item = LogLine> + 'a {
    let ts = rfc3339_ms(ms);
    let Lines { text, ends } = block;
    let mut start = 0usize;
    ends.iter().enumerate().map(move |(i, &end)| {
        let end = end as usize;
        let bytes = text.get(start..end).unwrap_or(&[]);
        start = end;
        LogLine {
            ts: ts.clone(),
            seq: first_seq.wrapping_add(i as u64),
            service: service.to_string(),
            stream: stream.as_str().to_string(),
            line: String::from_utf8_lossy(bytes.strip_suffix(b"\n").unwrap_or(bytes)).into_owned(),
        }
    })
}

/// The index of the block's first line that fits in the ring together with the
/// lines after it, and that line's byte offset. Lines are at most
/// `output::MAX_LINE` bytes, below `RING_BYTES`, so the last line always fits.
fn surviving_tail(block: Lines<'_>) -> (usize, usize) {
    let total = block.text.len();
    let mut first = block.ends.len();
    let mut start = total;
    while first > 0 && block.ends.len() - first < RING_LINES {
        let begin = if first >= 2 {
            block.ends[first - 2] as usize
        } else {
            0
        };
        if total - begin > RING_BYTES {
            break;
        }
        first -= 1;
        start = begin;
    }
    (first, start)
}

#[cfg(test)]
mod tests;
