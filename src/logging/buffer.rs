//! Formatted log bytes waiting to be written, and the hot path that fills them
//! with service lines.
//!
//! A flood of output is millions of ~100-byte lines, each needing its prefix and
//! its text copied once. musl's `memcpy` (`rep movsq` after a byte loop) costs
//! more per call than such a line is worth, and `writev` with an iovec per line
//! costs the kernel even more per segment; so lines are copied here in 16-byte
//! pieces the compiler turns into vector moves, into memory that stays
//! initialized between flushes (no zero-fill, and in safe code).
//!
//! Memory: the caller says how many pending bytes it allows (`limit`), and a
//! block of lines is cut at the last line that fits (at least one line goes in
//! while the buffer is under its limit). The bytes already written are dropped
//! by moving the rest to the front before the buffer would grow, so its
//! memory stays at its limit plus one formatted line (rounded up to 64 KiB).

use super::format::{self, JSON_SUFFIX};
use crate::codec::json;
use crate::lines::Lines;

/// Above this size an emptied buffer gives memory back, so one burst does not
/// hold megabytes for the rest of the run.
const KEEP: usize = 1 << 20;

/// Log bytes waiting to be written: `mem[head..len]`. `mem` beyond `len` is
/// initialized scratch that later lines are copied into.
#[derive(Debug, Default)]
pub struct LogBuf {
    mem: Vec<u8>,
    head: usize,
    len: usize,
}

/// Lines `from..to` of a block, as byte offsets into its text.
fn span(lines: &Lines<'_>, from: usize, to: usize) -> (usize, usize) {
    let at = |i: usize| match i.checked_sub(1) {
        Some(j) => lines.ends.get(j).map_or(0, |&e| e as usize),
        None => 0,
    };
    (at(from), at(to))
}

impl LogBuf {
    /// Bytes not yet consumed.
    pub fn pending(&self) -> &[u8] {
        &self.mem[self.head..self.len]
    }

    pub fn pending_len(&self) -> usize {
        self.len - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.len
    }

    /// Memory held (for the bound tests).
    pub fn capacity(&self) -> usize {
        self.mem.len()
    }

    /// The first `n` pending bytes are done (written, or dropped).
    pub fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.len);
        if self.head == self.len {
            self.head = 0;
            self.len = 0;
            if self.mem.len() > KEEP {
                self.mem.truncate(KEEP);
                self.mem.shrink_to_fit();
            }
        }
    }

    /// The free part of the buffer, at least `extra` bytes long. Consumed bytes
    /// are dropped (the rest moved to the front) before the buffer grows.
    fn room(&mut self, extra: usize) -> &mut [u8] {
        if self.len + extra > self.mem.len() && self.head > 0 {
            self.mem.copy_within(self.head..self.len, 0);
            self.len -= self.head;
            self.head = 0;
        }
        let need = self.len + extra;
        if self.mem.len() < need {
            // Doubling while small: a quiet tend keeps a few KiB, a flood
            // reaches its working size in a few steps without overshooting it.
            let grown = if need <= 2 * self.mem.len() && self.mem.len() < (256 << 10) {
                2 * self.mem.len()
            } else {
                need.next_multiple_of(64 << 10)
            };
            self.mem.resize(grown.max(4096), 0);
        }
        &mut self.mem[self.len..]
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// How many of lines `from..` fit, each taking `extra` bytes besides its
    /// own (newline included), with at most `limit` bytes pending afterwards;
    /// at least one while under the limit.
    fn fitting(&self, lines: &Lines<'_>, from: usize, extra: usize, limit: usize) -> usize {
        let n = lines.ends.len().saturating_sub(from);
        let pending = self.pending_len();
        if pending >= limit || n == 0 {
            return 0;
        }
        let room = limit - pending;
        let size = |k: usize| {
            let (start, end) = span(lines, from, from + k);
            end - start + k * extra
        };
        if size(n) <= room {
            return n;
        }
        // size(k) grows with k: the largest k with size(k) <= room.
        let (mut lo, mut hi) = (1, n);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if size(mid) <= room {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    /// Append lines `from..` of `lines` behind `prefix` (text, plain, or bare
    /// with an empty prefix), as many as fit under `limit`. Returns the index
    /// after the last line appended.
    pub fn push_text(
        &mut self,
        prefix: &[u8],
        lines: Lines<'_>,
        from: usize,
        limit: usize,
    ) -> usize {
        let k = self.fitting(&lines, from, prefix.len(), limit);
        if k == 0 {
            return from;
        }
        let (start, end) = span(&lines, from, from + k);
        let Some(text) = lines.text.get(start..end) else {
            return from;
        };
        if prefix.is_empty() {
            self.extend(text);
            return from + k;
        }
        let room = self.room(text.len() + k * prefix.len());
        let mut at = 0;
        let mut line_start = start;
        for &line_end in &lines.ends[from..from + k] {
            let line = &lines.text[line_start..line_end as usize];
            line_start = line_end as usize;
            copy(&mut room[at..at + prefix.len()], prefix);
            at += prefix.len();
            copy(&mut room[at..at + line.len()], line);
            at += line.len();
        }
        self.len += at;
        from + k
    }

    /// Append lines `from..` as JSON records: `prefix` (which opens the object
    /// and its `line` string), the line escaped, [`JSON_SUFFIX`]. A block with
    /// nothing to escape (the common case, found in one pass) is copied like
    /// text; otherwise each line is checked, and escaped only if it must be.
    pub fn push_json(
        &mut self,
        prefix: &[u8],
        lines: Lines<'_>,
        from: usize,
        limit: usize,
    ) -> usize {
        let (start, end) = span(&lines, from, lines.ends.len());
        let clean = !format::block_needs_escape(lines.text.get(start..end).unwrap_or(&[]));
        // Per line: the prefix, the line without its newline, the suffix.
        let extra = prefix.len() + JSON_SUFFIX.len() - 1;
        if clean {
            let k = self.fitting(&lines, from, extra, limit);
            if k == 0 {
                return from;
            }
            let (start, end) = span(&lines, from, from + k);
            let room = self.room(end - start + k * extra);
            let mut at = 0;
            let mut line_start = start;
            for &line_end in &lines.ends[from..from + k] {
                let line = &lines.text[line_start..line_end as usize - 1];
                line_start = line_end as usize;
                copy(&mut room[at..at + prefix.len()], prefix);
                at += prefix.len();
                copy(&mut room[at..at + line.len()], line);
                at += line.len();
                copy(&mut room[at..at + JSON_SUFFIX.len()], JSON_SUFFIX);
                at += JSON_SUFFIX.len();
            }
            self.len += at;
            return from + k;
        }
        let mut i = from;
        let mut scratch = Vec::new();
        while i < lines.ends.len() && self.pending_len() < limit {
            let (start, end) = span(&lines, i, i + 1);
            let line = lines.text.get(start..end.saturating_sub(1)).unwrap_or(&[]);
            self.extend(prefix);
            if json::line_needs_escape(line) {
                scratch.clear();
                json::escape_into(&mut scratch, line);
                self.extend(&scratch);
            } else {
                self.extend(line);
            }
            self.extend(JSON_SUFFIX);
            i += 1;
        }
        i
    }
}

/// `dst.copy_from_slice(src)` for short slices without a `memcpy` call: whole
/// 16-byte pieces, then one last piece overlapping the previous one.
///
/// Why: lines are short (a prefix of ~30 bytes, a line of ~100), and musl's
/// `memcpy` starts every copy with `rep movsq`, whose start-up cost dwarfs
/// such a copy: as calls, these copies were a third of tend's CPU in a
/// 200 MB flood. Each piece is a copy of a `[u8; N]` value, which compiles
/// to plain loads and stores at any opt-level (`copy_from_slice` is not
/// inlined at `opt-level = "z"` and becomes a call). `black_box` on the
/// offset keeps LLVM from recognizing the piece loop as a copy idiom and
/// turning it back into one `memcpy` call (measured: three times slower).
#[inline(never)]
fn copy(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n > 512 || dst.len() != n {
        dst.copy_from_slice(src); // long enough for memcpy to pay off (or a bug: panic)
    } else if n >= 16 {
        let mut at = 0;
        while at + 16 < n {
            piece::<16>(dst, src, at);
            at = std::hint::black_box(at + 16);
        }
        piece::<16>(dst, src, n - 16);
    } else if n >= 8 {
        piece::<8>(dst, src, 0);
        piece::<8>(dst, src, n - 8);
    } else if n >= 4 {
        piece::<4>(dst, src, 0);
        piece::<4>(dst, src, n - 4);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// `N` bytes of `src` at `at` to `dst` at `at`, as one `[u8; N]` value.
#[inline(always)]
fn piece<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    let s = src.get(at..).and_then(<[u8]>::first_chunk::<N>);
    let d = dst.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<N>);
    if let (Some(d), Some(s)) = (d, s) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"one\ntwo\n\nthree\n";
    const ENDS: [u32; 4] = [4, 8, 9, 15];

    fn lines() -> Lines<'static> {
        Lines {
            text: TEXT,
            ends: &ENDS,
        }
    }

    #[test]
    fn copy_is_exact_for_every_short_length() {
        let src: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
        for n in 0..600 {
            let mut dst = vec![0xAA; n + 3];
            copy(&mut dst[1..1 + n], &src[..n]);
            assert_eq!(&dst[1..1 + n], &src[..n], "length {n}");
            assert_eq!(
                (dst[0], dst[n + 1]),
                (0xAA, 0xAA),
                "length {n} wrote outside"
            );
        }
    }

    #[test]
    fn lines_get_their_prefix_and_memory_is_reused() {
        let mut buf = LogBuf::default();
        buf.extend(b"[own]\n");
        assert_eq!(buf.push_text(b"P: ", lines(), 0, usize::MAX), 4);
        assert_eq!(buf.pending(), b"[own]\nP: one\nP: two\nP: \nP: three\n");
        let capacity = buf.capacity();
        buf.consume(buf.pending_len());
        assert!(buf.is_empty());
        assert_eq!(buf.push_text(b"", lines(), 1, usize::MAX), 4);
        assert_eq!(buf.pending(), b"two\n\nthree\n");
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn a_block_is_cut_at_the_last_line_that_fits() {
        let mut buf = LogBuf::default();
        // "P: one\n" is 7 bytes, "P: two\n" 7, "P: \n" 4, "P: three\n" 9.
        assert_eq!(buf.push_text(b"P: ", lines(), 0, 15), 2);
        assert_eq!(buf.pending(), b"P: one\nP: two\n");
        // Over the limit already: nothing.
        assert_eq!(buf.push_text(b"P: ", lines(), 2, 14), 2);
        // Under it: at least one line, even if it passes the limit.
        assert_eq!(buf.push_text(b"P: ", lines(), 3, 15), 4);
        assert_eq!(buf.pending(), b"P: one\nP: two\nP: three\n");
    }

    #[test]
    fn json_lines_are_escaped_only_when_needed() {
        let text = b"plain\nq\"uote\n\x1b[1m\n";
        let ends = [6, 13, 18];
        let l = Lines { text, ends: &ends };
        let mut buf = LogBuf::default();
        assert_eq!(buf.push_json(b"{\"line\":\"", l, 0, usize::MAX), 3);
        let out = String::from_utf8(buf.pending().to_vec()).unwrap();
        let back: Vec<String> = out
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["line"].to_string())
            .collect();
        assert_eq!(back, ["\"plain\"", "\"q\\\"uote\"", "\"\\u001b[1m\""]);
        // The clean fast path cuts blocks like text does.
        let mut buf = LogBuf::default();
        assert_eq!(buf.push_json(b"{\"l\":\"", lines(), 0, 25), 2);
        assert_eq!(buf.pending(), b"{\"l\":\"one\"}\n{\"l\":\"two\"}\n");
    }

    #[test]
    fn written_bytes_make_room_before_the_buffer_grows() {
        let mut buf = LogBuf::default();
        buf.extend(&[b'a'; 3000]);
        let capacity = buf.capacity();
        for round in 0..100 {
            buf.consume(2000);
            buf.extend(&[b'b'; 2000]);
            assert_eq!(buf.pending_len(), 3000, "round {round}");
            assert_eq!(buf.capacity(), capacity, "round {round}");
        }
        assert!(buf.pending().ends_with(&[b'b'; 2000]));
    }

    #[test]
    fn a_large_buffer_shrinks_once_emptied() {
        let mut buf = LogBuf::default();
        buf.extend(&vec![b'x'; 3 * KEEP]);
        buf.consume(usize::MAX);
        assert!(buf.capacity() <= KEEP);
    }
}
