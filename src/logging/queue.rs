//! Records that arrived while tend's main stream was behind, kept unformatted.
//!
//! A record is kept as it arrived (a block of one service's lines, or one of
//! tend's messages) behind a 30-byte header, so memory counts the bytes the
//! services wrote, not what a format makes of them: `yes` writes 2-byte lines
//! that become 40-byte text records or 80-byte JSON ones. The sink formats from
//! the front as its output buffer drains.
//!
//! Must not: format, or decide how much to keep (the sink's congestion check
//! does).

use log::Level;

use super::buffer::LogBuf;
use crate::lines::Stream;

/// kind (1), name length (1), text length (4, little-endian), stamp (24).
const HEADER: usize = 30;

/// The front record: what is left of its text, and what it is.
pub enum Entry<'a> {
    Lines {
        stamp: [u8; 24],
        service: &'a str,
        stream: Stream,
        /// Whole lines, each ending in `\n`.
        text: &'a [u8],
    },
    Message {
        stamp: [u8; 24],
        level: Level,
        text: &'a [u8],
    },
}

#[derive(Debug, Default)]
pub struct Queue {
    buf: LogBuf,
    /// Bytes of the front record's text already formatted.
    taken: usize,
}

fn kind_of(stream: Stream) -> u8 {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn level_kind(level: Level) -> u8 {
    1 + level as u8 // Error = 2 .. Trace = 6, after the two streams
}

fn kind_level(kind: u8) -> Option<Level> {
    [
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ]
    .get(usize::from(kind).checked_sub(2)?)
    .copied()
}

impl Queue {
    /// Bytes held (headers included).
    pub fn len(&self) -> usize {
        self.buf.pending_len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn push(&mut self, kind: u8, stamp: &[u8; 24], name: &str, text: &[u8]) {
        let name = name.as_bytes().get(..name.len().min(255)).unwrap_or(b"?");
        let Ok(text_len) = u32::try_from(text.len()) else {
            return; // 4 GiB in one record cannot come from one read
        };
        let mut header = [0u8; HEADER];
        header[0] = kind;
        header[1] = name.len() as u8;
        header[2..6].copy_from_slice(&text_len.to_le_bytes());
        header[6..].copy_from_slice(stamp);
        self.buf.extend(&header);
        self.buf.extend(name);
        self.buf.extend(text);
    }

    /// Keep whole lines (each ending in `\n`) of `service`'s `stream`.
    pub fn push_lines(&mut self, stamp: &[u8; 24], service: &str, stream: Stream, text: &[u8]) {
        if !text.is_empty() {
            self.push(kind_of(stream), stamp, service, text);
        }
    }

    /// Keep one of tend's own messages.
    pub fn push_message(&mut self, stamp: &[u8; 24], level: Level, text: &str) {
        self.push(level_kind(level), stamp, "", text.as_bytes());
    }

    /// The front record, without the part already taken.
    pub fn front(&self) -> Option<Entry<'_>> {
        let bytes = self.buf.pending();
        let header = bytes.get(..HEADER)?;
        let name_len = usize::from(header[1]);
        let mut text_len = [0u8; 4];
        text_len.copy_from_slice(&header[2..6]);
        let text_len = u32::from_le_bytes(text_len) as usize;
        let mut stamp = [0u8; 24];
        stamp.copy_from_slice(&header[6..]);
        let name = bytes.get(HEADER..HEADER + name_len)?;
        let body = HEADER + name_len;
        let text = bytes.get(body + self.taken..body + text_len)?;
        Some(match header[0] {
            0 | 1 => Entry::Lines {
                stamp,
                service: std::str::from_utf8(name).unwrap_or("?"),
                stream: if header[0] == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                },
                text,
            },
            kind => Entry::Message {
                stamp,
                level: kind_level(kind).unwrap_or(Level::Error),
                text,
            },
        })
    }

    /// `n` more bytes of the front record's text are formatted; the record goes
    /// once all of it is.
    pub fn take(&mut self, n: usize) {
        let bytes = self.buf.pending();
        let Some(header) = bytes.get(..HEADER) else {
            return;
        };
        let mut text_len = [0u8; 4];
        text_len.copy_from_slice(&header[2..6]);
        let text_len = u32::from_le_bytes(text_len) as usize;
        self.taken += n;
        if self.taken >= text_len {
            let whole = HEADER + usize::from(header[1]) + text_len;
            self.buf.consume(whole);
            self.taken = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: &[u8; 24] = b"2026-12-02T10:00:00.123Z";

    #[test]
    fn records_come_back_in_order_and_partly_taken() {
        let mut q = Queue::default();
        q.push_lines(STAMP, "web", Stream::Stderr, b"a\nbb\n");
        q.push_message(STAMP, Level::Warn, "careful");
        q.push_lines(STAMP, "db", Stream::Stdout, b"");
        assert_eq!(q.len(), 2 * HEADER + 3 + 5 + 7);
        match q.front() {
            Some(Entry::Lines {
                service,
                stream,
                text,
                stamp,
            }) => {
                assert_eq!(
                    (service, stream, text),
                    ("web", Stream::Stderr, &b"a\nbb\n"[..])
                );
                assert_eq!(&stamp, STAMP);
            }
            _ => panic!("lines first"),
        }
        q.take(2);
        assert!(matches!(
            q.front(),
            Some(Entry::Lines { text: b"bb\n", .. })
        ));
        q.take(3);
        assert!(matches!(
            q.front(),
            Some(Entry::Message {
                level: Level::Warn,
                text: b"careful",
                ..
            })
        ));
        q.take(7);
        assert!(q.is_empty() && q.front().is_none());
    }

    #[test]
    fn every_level_round_trips() {
        for level in [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
        ] {
            assert_eq!(kind_level(level_kind(level)), Some(level));
        }
        assert_eq!(kind_level(0), None);
        assert_eq!(kind_level(1), None);
    }
}
