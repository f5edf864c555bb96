//! Service output: non-blocking pipe reads split into lines.
//!
//! Every line becomes exactly one log line, in order: a line longer than
//! [`MAX_LINE`] is split (on a UTF-8 boundary when the bytes allow), bytes that
//! are not UTF-8 are shown replaced (never dropped silently), and a last line
//! without a newline is emitted at EOF. Reads are bounded per wakeup, so a flood
//! cannot starve other services; memory per pipe is bounded by `MAX_LINE`.
//!
//! Must not: decide anything about the service; the shell feeds lines to the log,
//! the `logs` ring, followers and the `log` readiness check.

use std::borrow::Cow;
use std::io::{self, Read};

use mio::unix::pipe::Receiver;

use crate::machine::{RunId, ServiceId};

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

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feed bytes; `emit` gets every complete line (without its newline).
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(&str)) {
        // Finish the line the last read left unfinished, then the fast path.
        if !self.partial.is_empty()
            && let Some(pos) = find_newline(bytes)
        {
            self.partial.extend_from_slice(&bytes[..pos]);
            let whole = std::mem::take(&mut self.partial);
            emit_split(&whole, emit);
            self.partial = whole;
            self.partial.clear();
            bytes = &bytes[pos + 1..];
        }
        if self.partial.is_empty() {
            bytes = emit_valid_lines(bytes, emit);
        }
        while let Some(pos) = find_newline(bytes) {
            let (line, rest) = bytes.split_at(pos);
            if self.partial.is_empty() {
                emit_split(line, emit);
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                emit_split(&whole, emit);
                self.partial = whole;
                self.partial.clear();
            }
            bytes = rest.get(1..).unwrap_or(&[]);
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= MAX_LINE {
            let cut = cut_point(&self.partial);
            emit(&lossy(&self.partial[..cut]));
            self.partial.drain(..cut);
        }
    }

    /// At EOF: emit the last line if it had no newline.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            emit_split(&rest, emit);
        }
    }
}

/// The fast path for the common case: the complete lines of `bytes` are valid
/// UTF-8, checked at once instead of line by line, then split as text. Returns
/// what is left for the byte-wise path (the last, unfinished line; or
/// everything, if some line is not UTF-8).
fn emit_valid_lines<'a>(bytes: &'a [u8], emit: &mut dyn FnMut(&str)) -> &'a [u8] {
    let Some(last) = bytes.iter().rposition(|&b| b == b'\n') else {
        return bytes;
    };
    let Ok(text) = std::str::from_utf8(&bytes[..last]) else {
        return bytes;
    };
    for line in text.split('\n') {
        let mut line = line;
        while line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            let (head, tail) = line.split_at(cut);
            emit(head);
            line = tail;
        }
        emit(line);
    }
    &bytes[last + 1..]
}

/// Emit `line` as pieces of at most `MAX_LINE` bytes.
fn emit_split(mut line: &[u8], emit: &mut dyn FnMut(&str)) {
    while line.len() > MAX_LINE {
        let cut = cut_point(line);
        emit(&lossy(&line[..cut]));
        line = &line[cut..];
    }
    emit(&lossy(line));
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

/// The text of a line: borrowed when it is valid UTF-8 (the fast, common case),
/// with U+FFFD replacements otherwise.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
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

/// One output pipe of one run of a service, registered in the poll.
pub struct Pipe {
    pub service: ServiceId,
    pub run: RunId,
    pub stream: Stream,
    pub receiver: Receiver,
    splitter: LineSplitter,
}

/// How a bounded read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// Nothing more to read now; a new event will come.
    Drained,
    /// The budget ran out with data left: read again soon, without an event.
    Budget,
    /// The write end is closed everywhere; the last line has been emitted.
    Eof,
}

impl Pipe {
    pub fn new(service: ServiceId, run: RunId, stream: Stream, receiver: Receiver) -> Pipe {
        Pipe {
            service,
            run,
            stream,
            receiver,
            splitter: LineSplitter::default(),
        }
    }

    /// Read at most `budget` bytes (in `scratch`-sized reads), emitting lines.
    pub fn read(
        &mut self,
        budget: usize,
        scratch: &mut [u8],
        emit: &mut dyn FnMut(&str),
    ) -> io::Result<ReadEnd> {
        let mut used = 0;
        while used < budget {
            match self.receiver.read(scratch) {
                Ok(0) => {
                    self.splitter.finish(emit);
                    return Ok(ReadEnd::Eof);
                }
                Ok(n) => {
                    used += n;
                    self.splitter.push(scratch.get(..n).unwrap_or(&[]), emit);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadEnd::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.splitter.finish(emit);
                    return Err(e);
                }
            }
        }
        Ok(ReadEnd::Budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l.to_string()));
        }
        s.finish(&mut |l| out.push(l.to_string()));
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
