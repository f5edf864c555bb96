//! Lines of service output: a byte stream cut into lines, and the blocks of
//! lines handed downstream.
//!
//! Every line becomes exactly one log line, in order: a line longer than
//! [`MAX_LINE`] is split (on a UTF-8 boundary when the bytes allow), bytes that
//! are not UTF-8 are shown replaced (never dropped silently), and a last line
//! without a newline is emitted at EOF. Memory per stream is bounded by
//! `MAX_LINE`.
//!
//! A leaf: it imports nothing of the crate but the SSE2 newline scanner in
//! [`crate::sys::scan`], so the log (`logging`), the `logs` ring and the pipes
//! (`runtime`) can all use it without depending on each other.
//!
//! Must not: read, write or decide anything; bytes in, lines out.
//!
//! Read first: [`LineSplitter::push`] and [`Lines`].

use std::borrow::Cow;

/// The longest line emitted as one; longer ones are split.
pub const MAX_LINE: usize = 64 * 1024;

/// Which of a service's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Complete lines read together, handed downstream in one piece so that the log,
/// the ring and the checks work on a block instead of line by line: `text` holds
/// the lines, each ending in `\n` and at most [`MAX_LINE`] bytes before it, and
/// `ends[i]` is the offset just past line `i`'s newline (found once, here).
///
/// `text` is valid UTF-8 (the splitter checked it, or replaced what was not);
/// it stays bytes so that the hot path needs no unchecked conversion to say so.
#[derive(Debug, Clone, Copy)]
pub struct Lines<'a> {
    pub text: &'a [u8],
    pub ends: &'a [u32],
}

impl<'a> Lines<'a> {
    /// Each line, without its newline.
    pub fn iter(&self) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.with_newlines()
            .map(|line| String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)))
    }

    /// Each line with its newline, as the bytes to write out.
    pub fn with_newlines(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let text = self.text;
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let end = end as usize;
            let line = text.get(start..end).unwrap_or(&[]);
            start = end;
            line
        })
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// The unfinished last line of what was read so far.
    partial: Vec<u8>,
    /// Line ends of the block being emitted (reused, so a flood does not allocate).
    ends: Vec<u32>,
    /// A single line being emitted on the slow path, with its newline.
    one: String,
}

impl LineSplitter {
    /// Feed bytes; `emit` gets every complete line, in blocks (see [`Lines`]).
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(Lines<'_>)) {
        // Finish the line the last read left unfinished.
        if !self.partial.is_empty() {
            let Some(pos) = find_newline(bytes) else {
                self.partial.extend_from_slice(bytes);
                self.emit_overlong_partial(emit);
                return;
            };
            self.partial.extend_from_slice(&bytes[..pos]);
            let whole = std::mem::take(&mut self.partial);
            self.emit_one(&whole, emit);
            self.partial = whole;
            self.partial.clear();
            bytes = &bytes[pos + 1..];
        }
        loop {
            bytes = self.emit_valid_lines(bytes, emit);
            // What is left starts with a line that is not UTF-8, or is unfinished.
            let Some(pos) = find_newline(bytes) else {
                break;
            };
            self.emit_one(&bytes[..pos], emit);
            bytes = &bytes[pos + 1..];
        }
        self.partial.extend_from_slice(bytes);
        self.emit_overlong_partial(emit);
    }

    /// The unfinished last line read so far (handed to the next tend image by
    /// `tend reexec`, so that a line cut by the exec comes out whole).
    pub fn unfinished(&self) -> &[u8] {
        &self.partial
    }

    /// A splitter that goes on from `unfinished` (see [`Self::unfinished`]).
    pub fn resume(unfinished: &[u8]) -> LineSplitter {
        LineSplitter {
            partial: unfinished.to_vec(),
            ..LineSplitter::default()
        }
    }

    /// At EOF: emit the last line if it had no newline.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Lines<'_>)) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit_one(&rest, emit);
        }
    }

    /// The fast path for the common case: the complete lines at the start of
    /// `bytes` that are valid UTF-8 (checked at once, not line by line) go out as
    /// one block. Returns the rest: an unfinished line, or from the first line
    /// that is not UTF-8 on.
    fn emit_valid_lines<'b>(
        &mut self,
        bytes: &'b [u8],
        emit: &mut dyn FnMut(Lines<'_>),
    ) -> &'b [u8] {
        let Some(last) = bytes.iter().rposition(|&b| b == b'\n') else {
            return bytes;
        };
        // Index the lines in one pass that also tells whether all is ASCII; in
        // the common case that is all the checking there is, and one block.
        let text = &bytes[..=last];
        self.ends.clear();
        let ends = &mut self.ends;
        let (mut prev, mut long) = (0, false);
        let ascii = for_each_newline(text, |pos| {
            long |= pos - prev > MAX_LINE;
            ends.push((pos + 1) as u32);
            prev = pos + 1;
        });
        if !long && (ascii || std::str::from_utf8(text).is_ok()) {
            self.emit_block(text, emit);
            return &bytes[last + 1..];
        }
        // Rare: up to the first line that is not UTF-8, block by block around
        // the over-long lines, which are cut.
        let valid = match std::str::from_utf8(text) {
            Ok(valid) => valid.as_bytes(),
            Err(e) => &text[..e.valid_up_to()],
        };
        let Some(end) = valid.iter().rposition(|&b| b == b'\n').map(|p| p + 1) else {
            return bytes;
        };
        let text = &valid[..end];
        self.ends.clear();
        let (mut start, mut block_start) = (0, 0);
        while let Some(pos) = find_newline(&text[start..]) {
            let line_end = start + pos;
            if line_end - start > MAX_LINE {
                self.emit_block(&text[block_start..start], emit);
                self.emit_long(&text[start..line_end], emit);
                block_start = line_end + 1;
            } else {
                self.ends.push((line_end + 1 - block_start) as u32);
            }
            start = line_end + 1;
        }
        self.emit_block(&text[block_start..], emit);
        &bytes[end..]
    }

    /// Emit `self.ends` (relative to `block`), if there are any.
    fn emit_block(&mut self, block: &[u8], emit: &mut dyn FnMut(Lines<'_>)) {
        if !self.ends.is_empty() {
            emit(Lines {
                text: block,
                ends: &self.ends,
            });
            self.ends.clear();
        }
    }

    /// Emit one line given without its newline: cut if over-long, with U+FFFD
    /// for bytes that are not UTF-8.
    fn emit_one(&mut self, line: &[u8], emit: &mut dyn FnMut(Lines<'_>)) {
        if line.len() > MAX_LINE {
            return self.emit_long(line, emit);
        }
        self.one.clear();
        self.one.push_str(&String::from_utf8_lossy(line));
        self.one.push('\n');
        let ends = [self.one.len() as u32];
        emit(Lines {
            text: self.one.as_bytes(),
            ends: &ends,
        });
    }

    /// Emit a line longer than [`MAX_LINE`] as pieces of at most that size.
    fn emit_long(&mut self, mut line: &[u8], emit: &mut dyn FnMut(Lines<'_>)) {
        while line.len() > MAX_LINE {
            let cut = cut_point(line);
            self.emit_one(&line[..cut], emit);
            line = &line[cut..];
        }
        self.emit_one(line, emit);
    }

    /// An unfinished line that already exceeds [`MAX_LINE`] goes out in pieces,
    /// so memory per pipe stays bounded.
    fn emit_overlong_partial(&mut self, emit: &mut dyn FnMut(Lines<'_>)) {
        if self.partial.len() < MAX_LINE {
            return;
        }
        let mut partial = std::mem::take(&mut self.partial);
        let mut start = 0;
        while partial.len() - start >= MAX_LINE {
            let cut = cut_point(&partial[start..]);
            self.emit_one(&partial[start..start + cut], emit);
            start += cut;
        }
        partial.drain(..start);
        self.partial = partial;
    }
}

/// Where to split an over-long line: at `MAX_LINE`, moved back to the start of a
/// UTF-8 character if it would cut one in two.
fn cut_point(bytes: &[u8]) -> usize {
    let mut cut = MAX_LINE.min(bytes.len());
    for _ in 0..3 {
        match bytes.get(cut) {
            Some(b) if b & 0b1100_0000 == 0b1000_0000 && cut > 1 => cut -= 1,
            _ => break,
        }
    }
    cut
}

/// Calls `f` with the index of every `\n` in `bytes`, in order, and says whether
/// all bytes are ASCII, in one pass: the SSE2 scanner of [`crate::sys::scan`] on
/// x86_64, unless built with `--cfg tend_portable_scan`.
#[cfg(all(target_arch = "x86_64", not(tend_portable_scan)))]
fn for_each_newline(bytes: &[u8], f: impl FnMut(usize)) -> bool {
    crate::sys::scan::for_each_newline(bytes, f)
}

/// Calls `f` with the index of every `\n` in `bytes`, in order, and says whether
/// all bytes are ASCII, in one pass: [`for_each_newline_swar`] here.
#[cfg(not(all(target_arch = "x86_64", not(tend_portable_scan))))]
fn for_each_newline(bytes: &[u8], f: impl FnMut(usize)) -> bool {
    for_each_newline_swar(bytes, f)
}

/// [`for_each_newline`] in safe, portable Rust: SWAR (SIMD within a register),
/// eight bytes per `u64`, 32 bytes per step. For each word, the high bit of a
/// byte of `!(((x & 0x7f..) + 0x7f..) | x | 0x7f..)` is set exactly where that
/// byte of `x` is zero (no carry crosses a byte), and `x` is the word XOR
/// `0x0a..`: zero where a newline is.
#[cfg_attr(
    all(target_arch = "x86_64", not(tend_portable_scan), not(test)),
    allow(dead_code)
)]
fn for_each_newline_swar(bytes: &[u8], mut f: impl FnMut(usize)) -> bool {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let newlines = |word: u64| {
        let x = word ^ NEWLINES;
        !(((x & LOW7) + LOW7) | x | LOW7)
    };
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    let mut emit = |base: usize, mut mask: u64| {
        while mask != 0 {
            f(base + (mask.trailing_zeros() / 8) as usize);
            mask &= mask - 1;
        }
    };
    let mut any_high = 0u64;
    let mut base = 0;
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let (a, b) = (word(&block[..8]), word(&block[8..16]));
        let (c, d) = (word(&block[16..24]), word(&block[24..]));
        any_high |= a | b | c | d;
        let masks = [newlines(a), newlines(b), newlines(c), newlines(d)];
        if masks != [0; 4] {
            for (i, mask) in masks.into_iter().enumerate() {
                emit(base + 8 * i, mask);
            }
        }
        base += 32;
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for chunk in &mut words {
        let w = word(chunk);
        any_high |= w;
        emit(base, newlines(w));
        base += 8;
    }
    let tail = words.remainder();
    for (i, &b) in tail.iter().enumerate() {
        if b == b'\n' {
            f(base + i);
        }
    }
    any_high & HIGH == 0 && tail.is_ascii()
}

/// The first `\n`, eight bytes at a time (no memchr dependency).
pub fn find_newline(bytes: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ NL;
        if (x.wrapping_sub(LO) & !x & HI) != 0 {
            return chunk.iter().position(|&b| b == b'\n').map(|p| offset + p);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| offset + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let mut take = |lines: Lines<'_>| {
            assert!(lines.text.ends_with(b"\n"));
            assert_eq!(
                lines.ends.last().map(|&e| e as usize),
                Some(lines.text.len())
            );
            out.extend(lines.iter().map(|l| l.into_owned()));
        };
        for c in chunks {
            s.push(c, &mut take);
        }
        s.finish(&mut take);
        out
    }

    #[test]
    fn lines_across_chunks_stay_whole() {
        assert_eq!(split(&[b"ab", b"c\nd", b"e\n"]), ["abc", "de"]);
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        assert_eq!(split(&[b"one\ntwo"]), ["one", "two"]);
    }

    #[test]
    fn empty_lines_are_lines() {
        assert_eq!(split(&[b"\n\nx\n"]), ["", "", "x"]);
    }

    #[test]
    fn long_line_is_split_at_max_line() {
        let long = vec![b'x'; MAX_LINE * 3 + 10];
        let mut input = long.clone();
        input.push(b'\n');
        let out = split(&[&input[..1000], &input[1000..]]);
        assert_eq!(out.len(), 4);
        assert!(out[..3].iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(out[3].len(), 10);
    }

    #[test]
    fn an_unfinished_line_is_cut_while_it_grows() {
        // No newline for 3.5 MAX_LINE bytes, fed in pieces that do not line up
        // with the cuts: each full piece goes out as soon as it is there.
        let mut input: Vec<u8> = (0..MAX_LINE * 7 / 2)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        input.push(b'\n');
        let chunks: Vec<&[u8]> = input.chunks(50_000).collect();
        let out = split(&chunks);
        assert_eq!(out.len(), 4);
        assert!(out[..3].iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(out.concat().as_bytes(), &input[..input.len() - 1]);
    }

    #[test]
    fn split_never_cuts_a_utf8_character() {
        let mut input = vec![b'x'; MAX_LINE - 1];
        input.extend_from_slice("é".as_bytes()); // straddles the cut
        input.extend_from_slice(b"tail\n");
        let out = split(&[&input]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE - 1);
        assert_eq!(out[1], "étail");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(split(&[b"a\xffb\n"]), ["a\u{fffd}b"]);
    }

    #[test]
    fn fast_and_slow_paths_agree_across_chunk_boundaries() {
        // A character cut by the chunk boundary, valid lines, an invalid one, and
        // an over-long one: every way of cutting the input gives the same lines.
        let mut input = "héllo\nwörld\n".as_bytes().to_vec();
        input.extend_from_slice(b"bad \xff byte\nok\n");
        input.extend_from_slice("é".repeat(MAX_LINE / 2 + 3).as_bytes());
        input.extend_from_slice(b"\nend");
        let whole = split(&[&input]);
        assert_eq!(whole[0], "héllo");
        assert_eq!(whole[2], "bad \u{fffd} byte");
        assert_eq!(whole.last().map(String::as_str), Some("end"));
        for cut in [1, 2, 3, 7, 13, 20, 100, MAX_LINE, input.len() - 2] {
            assert_eq!(
                split(&[&input[..cut], &input[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn valid_lines_go_out_as_one_block_and_bad_ones_alone() {
        let mut s = LineSplitter::default();
        let mut blocks: Vec<Vec<String>> = Vec::new();
        s.push(b"a\nb\n\xff\nc\nd\npart", &mut |l| {
            blocks.push(l.iter().map(|l| l.into_owned()).collect())
        });
        assert_eq!(blocks, [vec!["a", "b"], vec!["\u{fffd}"], vec!["c", "d"]]);
        let mut with_nl = Vec::new();
        s.push(b"ial\nx\n", &mut |l| {
            with_nl.extend(l.with_newlines().map(<[u8]>::to_vec))
        });
        assert_eq!(with_nl, [b"partial\n".to_vec(), b"x\n".to_vec()]);
    }

    type Scanner = fn(&[u8], &mut dyn FnMut(usize)) -> bool;

    /// Every newline scanner of this build: the one in use, the SWAR one, and
    /// on x86_64 the SSE2 one (whichever of them `tend_portable_scan` selects).
    fn scanners() -> Vec<(&'static str, Scanner)> {
        let mut all: Vec<(&'static str, Scanner)> = vec![
            ("selected", |b, f| for_each_newline(b, f)),
            ("swar", |b, f| for_each_newline_swar(b, f)),
        ];
        #[cfg(target_arch = "x86_64")]
        all.push(("sse2", |b, f| crate::sys::scan::for_each_newline(b, f)));
        all
    }

    /// What every scanner must say: each newline's index, and whether all is ASCII.
    fn reference(bytes: &[u8]) -> (Vec<usize>, bool) {
        let found = (0..bytes.len()).filter(|&i| bytes[i] == b'\n').collect();
        (found, bytes.is_ascii())
    }

    fn scan(scanner: Scanner, bytes: &[u8]) -> (Vec<usize>, bool) {
        let mut found = Vec::new();
        let ascii = scanner(bytes, &mut |p| found.push(p));
        (found, ascii)
    }

    #[test]
    fn for_each_newline_finds_every_one() {
        // Newlines in every 16-byte lane of two 64-byte pieces and the remainder.
        let mut data = [b'a'; 140];
        for p in [
            0, 1, 7, 8, 15, 16, 17, 31, 32, 47, 48, 63, 64, 79, 95, 112, 127, 128, 139,
        ] {
            data[p] = b'\n';
        }
        for (name, scanner) in scanners() {
            for len in 0..=data.len() {
                let bytes = &data[..len];
                assert_eq!(
                    scan(scanner, bytes),
                    reference(bytes),
                    "{name}, length {len}"
                );
            }
            // One byte above 0x7f anywhere, in a whole piece or the remainder.
            for at in [
                0, 7, 8, 15, 16, 31, 32, 40, 50, 63, 64, 100, 127, 128, 136, 139,
            ] {
                let mut bytes = data;
                bytes[at] = 0xc3;
                assert!(!scanner(&bytes, &mut |_| {}), "{name}: high byte at {at}");
            }
        }
    }

    #[test]
    fn scanners_agree_on_random_bytes() {
        // Deterministic xorshift; bytes drawn mostly from near the newline
        // (0x09..0x0b: a borrow or carry across bytes would show) and 0x7f..0x81
        // (the ASCII edge), at every length and alignment up to 300.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const PALETTE: [u8; 10] = [
            b'\n',
            b'\n',
            0x09,
            0x0b,
            0x0a ^ 0x80,
            0x7f,
            0x80,
            0x81,
            b'a',
            0,
        ];
        let mut buf = vec![0u8; 320];
        for round in 0..4000 {
            let len = (next() % 300) as usize;
            let offset = (next() % 16) as usize;
            let ascii_only = round % 2 == 0;
            for b in &mut buf[offset..offset + len] {
                *b = PALETTE[(next() % 10) as usize];
                if ascii_only && *b >= 0x80 {
                    *b = b'b';
                }
            }
            let bytes = &buf[offset..offset + len];
            let want = reference(bytes);
            for (name, scanner) in scanners() {
                assert_eq!(scan(scanner, bytes), want, "{name}, round {round}");
            }
        }
    }

    #[test]
    fn find_newline_agrees_with_position() {
        let mut data = vec![b'a'; 100];
        for p in [0, 7, 8, 9, 63, 99] {
            data[p] = b'\n';
            assert_eq!(find_newline(&data), data.iter().position(|&b| b == b'\n'));
            data[p] = b'a';
        }
        assert_eq!(find_newline(&data), None);
        assert_eq!(find_newline(b"\x0b\x09\x8a"), None);
    }
}
