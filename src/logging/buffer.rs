//! The bytes of the log not yet written out, and the hot path that fills it
//! with service lines.
//!
//! A flood of output is millions of ~100-byte lines, each needing its prefix and
//! its text copied once. musl's `memcpy` (`rep movsq` after a byte loop) costs
//! more per call than such a line is worth, and `writev` with an iovec per line
//! costs the kernel even more per segment; so lines are copied here in 16-byte
//! pieces the compiler turns into vector moves, into memory that stays
//! initialized between flushes (no zero-fill, and safe code only).

use crate::lines::Lines;

/// Above this size an emptied buffer gives memory back, so one burst of a slow
/// log destination does not hold megabytes for the rest of the run.
const KEEP: usize = 2 << 20;

/// Log bytes waiting to be written: `mem[..len]`. `mem` beyond `len` is
/// initialized scratch that later lines are copied into.
#[derive(Debug, Default)]
pub struct LogBuf {
    mem: Vec<u8>,
    len: usize,
}

impl LogBuf {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.mem[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
        if self.mem.len() > KEEP {
            self.mem.truncate(KEEP);
            self.mem.shrink_to_fit();
        }
    }

    /// The free part of the buffer, at least `extra` bytes long.
    fn room(&mut self, extra: usize) -> &mut [u8] {
        let need = self.len + extra;
        if self.mem.len() < need {
            // Doubling: a flood reaches its working size in a few steps, while a
            // quiet tend (a few lines per event) keeps a few KiB.
            self.mem.resize(need.max(self.mem.len() * 2).max(4096), 0);
        }
        &mut self.mem[self.len..]
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Append every line of `lines` (each already ending in `\n`) behind `prefix`.
    pub fn push_lines(&mut self, prefix: &[u8], lines: Lines<'_>) {
        let need = lines.text.len() + lines.ends.len() * prefix.len();
        let room = self.room(need);
        let mut at = 0;
        for line in lines.with_newlines() {
            copy(&mut room[at..at + prefix.len()], prefix);
            at += prefix.len();
            copy(&mut room[at..at + line.len()], line);
            at += line.len();
        }
        self.len += at;
    }
}

/// `dst.copy_from_slice(src)` for short slices without a `memcpy` call: whole
/// 16-byte pieces, then one last piece overlapping the previous one.
///
/// Not inlined on purpose: inlined into the line loop, LLVM recognizes the
/// piece loop as a copy idiom and turns it back into a `memcpy` call (measured:
/// a 200 MB flood took three times as long).
#[inline(never)]
fn copy(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n > 512 || dst.len() != n {
        dst.copy_from_slice(src); // long enough for memcpy to pay off (or a bug: panic)
    } else if n >= 16 {
        for (d, s) in dst.chunks_exact_mut(16).zip(src.chunks_exact(16)) {
            d.copy_from_slice(s);
        }
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = b"one\ntwo\n\nthree\n";
        let ends = [4, 8, 9, 15];
        let mut buf = LogBuf::default();
        buf.extend(b"[own]\n");
        buf.push_lines(b"P: ", Lines { text, ends: &ends });
        assert_eq!(buf.as_slice(), b"[own]\nP: one\nP: two\nP: \nP: three\n");
        let capacity = buf.mem.len();
        buf.clear();
        assert!(buf.is_empty());
        buf.push_lines(
            b"Q: ",
            Lines {
                text,
                ends: &ends[..1],
            },
        );
        assert_eq!(buf.as_slice(), b"Q: one\n");
        assert_eq!(buf.mem.len(), capacity);
    }

    #[test]
    fn a_large_buffer_shrinks_once_emptied() {
        let mut buf = LogBuf::default();
        buf.extend(&vec![b'x'; 3 * KEEP]);
        buf.clear();
        assert!(buf.mem.len() <= KEEP);
    }
}
