//! The recent output lines of one service, for `tend logs`: a ring bounded in
//! lines and bytes. Lines are kept as one byte queue plus their lengths, so a
//! block of lines read together is stored with one copy, and a flood neither
//! allocates nor copies per line.

use std::collections::VecDeque;

use super::output::{Lines, Stream};
use crate::protocol::LogLine;

/// Lines kept per service.
pub const RING_LINES: usize = 1000;
/// Bytes kept per service (a few long lines must not hold megabytes).
pub const RING_BYTES: usize = 256 * 1024;

#[derive(Debug, Default)]
pub struct LogRing {
    /// The kept lines' text, each with its newline, oldest first.
    bytes: VecDeque<u8>,
    /// Each kept line's stream and length (newline included), oldest first.
    lines: VecDeque<(Stream, u32)>,
}

impl LogRing {
    /// Keep the lines of a block, dropping the oldest beyond the bounds. Only the
    /// block's last lines that can survive are copied.
    pub fn push(&mut self, stream: Stream, block: Lines<'_>) {
        let (first, start) = surviving_tail(block);
        let incoming = block.text.len() - start;
        let count = block.ends.len() - first;
        // Evict the oldest lines that no longer fit, then their bytes at once: in
        // a flood a block replaces the whole ring, and a drain per line was the
        // ring's main cost.
        let (mut evict, mut kept_bytes) = (0, self.bytes.len());
        for &(_, len) in &self.lines {
            if self.lines.len() - evict + count <= RING_LINES && kept_bytes + incoming <= RING_BYTES
            {
                break;
            }
            evict += 1;
            kept_bytes -= len as usize;
        }
        self.lines.drain(..evict);
        self.bytes.drain(..self.bytes.len() - kept_bytes);
        self.bytes.extend(&block.text[start..]);
        let mut at = start;
        for &end in &block.ends[first..] {
            self.lines.push_back((stream, end - at as u32));
            at = end as usize;
        }
    }

    /// The last `n` lines (all with `None`), oldest first.
    pub fn last(&self, n: Option<usize>) -> Vec<LogLine> {
        let n = n.unwrap_or(self.lines.len()).min(self.lines.len());
        let skip = self.lines.len() - n;
        let mut at: usize = self.lines.iter().take(skip).map(|&(_, l)| l as usize).sum();
        self.lines
            .iter()
            .skip(skip)
            .map(|&(stream, len)| {
                let len = len as usize;
                let bytes: Vec<u8> = self.bytes.range(at..at + len - 1).copied().collect();
                at += len;
                LogLine {
                    stream: stream.as_str().to_string(),
                    line: String::from_utf8_lossy(&bytes).into_owned(),
                }
            })
            .collect()
    }
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
mod tests {
    use super::*;

    /// A block of `lines`, as the splitter hands it over.
    fn push_all(ring: &mut LogRing, stream: Stream, lines: &[String]) {
        let mut text = String::new();
        let mut ends = Vec::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
            ends.push(text.len() as u32);
        }
        ring.push(
            stream,
            Lines {
                text: text.as_bytes(),
                ends: &ends,
            },
        );
    }

    fn texts(ring: &LogRing, n: Option<usize>) -> Vec<String> {
        ring.last(n).into_iter().map(|l| l.line).collect()
    }

    #[test]
    fn keeps_the_last_lines_in_order() {
        let mut r = LogRing::default();
        for i in 0..RING_LINES + 5 {
            push_all(&mut r, Stream::Stdout, &[i.to_string()]);
        }
        assert_eq!(
            texts(&r, Some(2)),
            [(RING_LINES + 3).to_string(), (RING_LINES + 4).to_string()]
        );
        assert_eq!(r.last(None).len(), RING_LINES);
    }

    #[test]
    fn a_big_block_keeps_only_its_tail() {
        let mut r = LogRing::default();
        push_all(&mut r, Stream::Stderr, &["old".to_string()]);
        let many: Vec<String> = (0..3 * RING_LINES).map(|i| i.to_string()).collect();
        push_all(&mut r, Stream::Stdout, &many);
        let kept = r.last(None);
        assert_eq!(kept.len(), RING_LINES);
        assert_eq!(kept[0].line, (2 * RING_LINES).to_string());
        assert_eq!(kept[0].stream, "stdout");
        assert_eq!(kept[RING_LINES - 1].line, (3 * RING_LINES - 1).to_string());
        // A later small block pushes out the oldest of those.
        push_all(&mut r, Stream::Stderr, &["a".into(), "b".into()]);
        let kept = texts(&r, Some(3));
        assert_eq!(
            kept,
            [(3 * RING_LINES - 1).to_string(), "a".into(), "b".into()]
        );
        assert_eq!(r.last(None)[0].line, (2 * RING_LINES + 2).to_string());
    }

    #[test]
    fn bounded_in_bytes() {
        let mut r = LogRing::default();
        let big = "x".repeat(60 * 1024);
        for _ in 0..10 {
            push_all(&mut r, Stream::Stderr, std::slice::from_ref(&big));
        }
        assert!(r.bytes.len() <= RING_BYTES);
        assert_eq!(r.last(None).len(), 4);
        let block: Vec<String> = (0..10).map(|i| format!("{i}{big}")).collect();
        push_all(&mut r, Stream::Stderr, &block);
        assert!(r.bytes.len() <= RING_BYTES);
        let kept = r.last(None);
        assert_eq!(kept.len(), 4);
        assert!(kept[0].line.starts_with('6') && kept[3].line.starts_with('9'));
    }
}
