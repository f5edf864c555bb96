//! The recent output lines of one service, for `tend logs`: a ring bounded in
//! lines and bytes, reusing its strings so a flood does not allocate per line.

use std::collections::VecDeque;

use super::output::Stream;
use crate::protocol::LogLine;

/// Lines kept per service.
pub const RING_LINES: usize = 1000;
/// Bytes kept per service (a few long lines must not hold megabytes).
pub const RING_BYTES: usize = 256 * 1024;

#[derive(Debug, Default)]
pub struct LogRing {
    lines: VecDeque<(Stream, String)>,
    bytes: usize,
}

impl LogRing {
    pub fn push(&mut self, stream: Stream, text: &str) {
        let mut slot = None;
        while self.lines.len() >= RING_LINES || self.bytes + text.len() > RING_BYTES {
            let Some((_, old)) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            slot = Some(old);
        }
        let mut line = slot.unwrap_or_default();
        line.clear();
        // A single line longer than the ring keeps its tail.
        let mut start = text.len().saturating_sub(RING_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        line.push_str(&text[start..]);
        self.bytes += line.len();
        self.lines.push_back((stream, line));
    }

    /// The last `n` lines (all with `None`), oldest first.
    pub fn last(&self, n: Option<usize>) -> Vec<LogLine> {
        let n = n.unwrap_or(self.lines.len()).min(self.lines.len());
        self.lines
            .iter()
            .skip(self.lines.len() - n)
            .map(|(stream, line)| LogLine {
                stream: stream.as_str().to_string(),
                line: line.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_in_order() {
        let mut r = LogRing::default();
        for i in 0..RING_LINES + 5 {
            r.push(Stream::Stdout, &i.to_string());
        }
        let last = r.last(Some(2));
        assert_eq!(last[0].line, (RING_LINES + 3).to_string());
        assert_eq!(last[1].line, (RING_LINES + 4).to_string());
        assert_eq!(r.last(None).len(), RING_LINES);
    }

    #[test]
    fn bounded_in_bytes() {
        let mut r = LogRing::default();
        let big = "x".repeat(100 * 1024);
        for _ in 0..10 {
            r.push(Stream::Stderr, &big);
        }
        assert!(r.bytes <= RING_BYTES);
        assert_eq!(r.last(None).len(), 2);
        r.push(Stream::Stderr, &"é".repeat(RING_BYTES));
        assert!(r.bytes <= RING_BYTES);
    }
}
