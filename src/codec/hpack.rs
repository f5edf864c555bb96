//! HPACK, HTTP/2 header compression (RFC 7541): a complete decoder and the small
//! encoder our one request needs.
//!
//! Read first: RFC 7541 §2.3 (the index space: static table 1..=61, then the
//! dynamic table, newest first), §4 (table size and eviction), §5 (integers and
//! string literals), §6 (the five representations).
//!
//! Decoder: static table (Appendix A), dynamic table with size updates (§6.3) and
//! eviction (§4.4), Huffman strings ([`super::huffman`]). Bounds, all checked
//! before allocating:
//! - the dynamic table never exceeds the limit we advertise in
//!   SETTINGS_HEADER_TABLE_SIZE (`table_limit`); a size update above it is an error;
//! - a decoded header list never exceeds `max_list_size`, counted as RFC 9113
//!   §6.5.2 counts SETTINGS_MAX_HEADER_LIST_SIZE (name + value + 32 per field);
//!   string literals are decoded against the remaining budget, so neither an
//!   indexed field repeated thousands of times nor a Huffman string can blow up;
//! - integers above `u32::MAX` (or with more than 5 continuation bytes) are errors;
//! - a string literal longer than the rest of the block is an error.
//!
//! A size update is accepted only at the start of a header block (§4.2). Any error
//! leaves the dynamic table unusable: the caller must treat it as a connection
//! error (COMPRESSION_ERROR) and stop.
//!
//! Encoder: indexed static entries and literals without indexing (§6.1, §6.2.2),
//! Huffman-coded when that is shorter. It never adds to the peer's dynamic table,
//! so the peer's SETTINGS_HEADER_TABLE_SIZE never matters to us.

use std::collections::VecDeque;
use std::fmt;

use super::huffman::{self, HuffmanError};

/// RFC 7541 Appendix A. Index `i` (1-based on the wire) is `STATIC_TABLE[i - 1]`.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// What §4.1 adds to name and value lengths for an entry's size; RFC 9113 uses the
/// same overhead for SETTINGS_MAX_HEADER_LIST_SIZE.
pub const ENTRY_OVERHEAD: usize = 32;

/// Static-table indexes our encoder uses.
pub mod index {
    pub const AUTHORITY: usize = 1;
    pub const METHOD_POST: usize = 3;
    pub const PATH: usize = 4;
    pub const SCHEME_HTTP: usize = 6;
    pub const CONTENT_TYPE: usize = 31;
    pub const USER_AGENT: usize = 58;
}

/// One decoded header field. Bytes, not strings: HPACK carries octets, and the
/// caller decides which values must be text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl Header {
    /// The size §4.1 and RFC 9113 §6.5.2 count for this field.
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

/// Why a header block could not be decoded (all are COMPRESSION_ERROR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpackError {
    /// The block ended inside a representation.
    Truncated,
    /// An integer above `u32::MAX` or with too many continuation bytes.
    IntegerOverflow,
    /// Index 0, or an index past the end of the static and dynamic tables.
    BadIndex(usize),
    /// A dynamic table size update above the limit we advertised.
    TableSizeTooLarge { requested: usize, limit: usize },
    /// A dynamic table size update after a header field (§4.2).
    MisplacedSizeUpdate,
    /// A Huffman string failed to decode.
    Huffman(HuffmanError),
    /// The decoded header list exceeds the limit.
    ListTooLarge { limit: usize },
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => write!(f, "header block ends inside a field"),
            HpackError::IntegerOverflow => write!(f, "header block integer too large"),
            HpackError::BadIndex(index) => write!(f, "header index {index} is not in the tables"),
            HpackError::TableSizeTooLarge { requested, limit } => write!(
                f,
                "dynamic table size update to {requested} exceeds our limit {limit}"
            ),
            HpackError::MisplacedSizeUpdate => {
                write!(f, "dynamic table size update after a header field")
            }
            HpackError::Huffman(error) => error.fmt(f),
            HpackError::ListTooLarge { limit } => {
                write!(f, "header list larger than {limit} bytes")
            }
        }
    }
}

/// The decoding side of one HTTP/2 connection (one per connection: the dynamic
/// table is connection state).
#[derive(Debug)]
pub struct Decoder {
    /// Newest entry first, as §2.3.3 numbers them.
    table: VecDeque<Header>,
    /// Sum of the entries' sizes (§4.1).
    table_size: usize,
    /// The current maximum, changed by size updates (§6.3).
    table_max: usize,
    /// The most we allow (our SETTINGS_HEADER_TABLE_SIZE).
    table_limit: usize,
    max_list_size: usize,
    huffman_strings: u64,
}

impl Decoder {
    /// A decoder whose dynamic table starts at, and may never exceed,
    /// `table_limit` bytes, and whose header lists may not exceed `max_list_size`.
    pub fn new(table_limit: usize, max_list_size: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            table_size: 0,
            table_max: table_limit,
            table_limit,
            max_list_size,
            huffman_strings: 0,
        }
    }

    /// Decode one complete header block (HEADERS plus its CONTINUATIONs).
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Header>, HpackError> {
        let mut input = Input { block, pos: 0 };
        let mut list = Vec::new();
        let mut list_size = 0usize;
        while let Some(first) = input.peek() {
            if first & 0xe0 == 0x20 {
                // §6.3 dynamic table size update: only before the first field.
                if !list.is_empty() {
                    return Err(HpackError::MisplacedSizeUpdate);
                }
                let requested = input.integer(5)?;
                if requested > self.table_limit {
                    return Err(HpackError::TableSizeTooLarge {
                        requested,
                        limit: self.table_limit,
                    });
                }
                self.table_max = requested;
                self.evict_to(requested);
                continue;
            }
            let budget = self
                .max_list_size
                .checked_sub(list_size + ENTRY_OVERHEAD)
                .ok_or(HpackError::ListTooLarge {
                    limit: self.max_list_size,
                })?;
            let header = if first & 0x80 != 0 {
                // §6.1 indexed field.
                let (name, value) = self.entry(input.integer(7)?)?;
                if name.len() + value.len() > budget {
                    return Err(HpackError::ListTooLarge {
                        limit: self.max_list_size,
                    });
                }
                Header {
                    name: name.to_vec(),
                    value: value.to_vec(),
                }
            } else {
                // §6.2.1 with incremental indexing (01), §6.2.2 without (0000),
                // §6.2.3 never indexed (0001).
                let indexing = first & 0x40 != 0;
                let prefix = if indexing { 6 } else { 4 };
                let header = self.literal(&mut input, prefix, budget)?;
                if indexing {
                    self.insert(header.clone());
                }
                header
            };
            list_size += header.size();
            list.push(header);
        }
        Ok(list)
    }

    /// The current dynamic table size in bytes (§4.1).
    pub fn table_size(&self) -> usize {
        self.table_size
    }

    /// Dynamic table entries, newest first (index 62 on the wire is entry 0).
    pub fn table(&self) -> impl Iterator<Item = &Header> {
        self.table.iter()
    }

    /// How many Huffman-coded strings this decoder has decoded (for tests that
    /// want to know whether a real peer used them).
    pub fn huffman_strings(&self) -> u64 {
        self.huffman_strings
    }

    /// A literal field whose name is indexed (index in the first byte's prefix)
    /// or literal (index 0), and whose value is literal.
    fn literal(
        &mut self,
        input: &mut Input<'_>,
        prefix: u8,
        budget: usize,
    ) -> Result<Header, HpackError> {
        let name_index = input.integer(prefix)?;
        let name = if name_index == 0 {
            self.string(input, budget)?
        } else {
            let (name, _) = self.entry(name_index)?;
            if name.len() > budget {
                return Err(HpackError::ListTooLarge {
                    limit: self.max_list_size,
                });
            }
            name.to_vec()
        };
        let value = self.string(input, budget - name.len())?;
        Ok(Header { name, value })
    }

    /// A §5.2 string literal of at most `budget` decoded bytes.
    fn string(&mut self, input: &mut Input<'_>, budget: usize) -> Result<Vec<u8>, HpackError> {
        let huffman = input.peek().ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = input.integer(7)?;
        let raw = input.take(len)?;
        let too_large = HpackError::ListTooLarge {
            limit: self.max_list_size,
        };
        if huffman {
            self.huffman_strings += 1;
            let mut out = Vec::new();
            huffman::decode(raw, &mut out, budget).map_err(|error| match error {
                HuffmanError::TooLong { .. } => too_large,
                other => HpackError::Huffman(other),
            })?;
            Ok(out)
        } else if raw.len() > budget {
            Err(too_large)
        } else {
            Ok(raw.to_vec())
        }
    }

    /// The (name, value) at a §2.3.3 index.
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        if index == 0 {
            return Err(HpackError::BadIndex(index));
        }
        if let Some((name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((name.as_bytes(), value.as_bytes()));
        }
        self.table
            .get(index - 1 - STATIC_TABLE.len())
            .map(|h| (h.name.as_slice(), h.value.as_slice()))
            .ok_or(HpackError::BadIndex(index))
    }

    /// §4.4: evict until the entry fits, then add it; an entry larger than the
    /// whole table empties the table and is not added (not an error).
    fn insert(&mut self, header: Header) {
        let size = header.size();
        if size > self.table_max {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.table_max - size);
        self.table_size += size;
        self.table.push_front(header);
    }

    fn evict_to(&mut self, max: usize) {
        while self.table_size > max {
            match self.table.pop_back() {
                Some(old) => self.table_size -= old.size(),
                None => self.table_size = 0,
            }
        }
    }
}

/// A header block being read front to back.
struct Input<'a> {
    block: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn peek(&self) -> Option<u8> {
        self.block.get(self.pos).copied()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], HpackError> {
        let end = self.pos.checked_add(len).ok_or(HpackError::Truncated)?;
        let bytes = self.block.get(self.pos..end).ok_or(HpackError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// §5.1: an integer in the low `prefix` bits of the current byte, continued
    /// in 7-bit groups while the top bit is set.
    fn integer(&mut self, prefix: u8) -> Result<usize, HpackError> {
        let mask = ((1u16 << prefix) - 1) as u8;
        let first = self.peek().ok_or(HpackError::Truncated)? & mask;
        self.pos += 1;
        if first < mask {
            return Ok(usize::from(first));
        }
        let mut value = u64::from(mask);
        let mut shift = 0u32;
        loop {
            let byte = self.peek().ok_or(HpackError::Truncated)?;
            self.pos += 1;
            value += u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return Err(HpackError::IntegerOverflow);
            }
        }
        let value = u32::try_from(value).map_err(|_| HpackError::IntegerOverflow)?;
        usize::try_from(value).map_err(|_| HpackError::IntegerOverflow)
    }
}

/// §5.1: append `value` with `flags` in the bits above a `prefix`-bit prefix.
pub fn encode_integer(out: &mut Vec<u8>, flags: u8, prefix: u8, value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// §5.2: append a string literal, Huffman-coded if `huffman` and that is shorter.
pub fn encode_string(out: &mut Vec<u8>, text: &[u8], huffman: bool) {
    let coded_len = huffman::encoded_len(text);
    if huffman && coded_len < text.len() {
        encode_integer(out, 0x80, 7, coded_len);
        huffman::encode(text, out);
    } else {
        encode_integer(out, 0x00, 7, text.len());
        out.extend_from_slice(text);
    }
}

/// §6.1: a field taken whole from the static table.
pub fn encode_indexed(out: &mut Vec<u8>, index: usize) {
    encode_integer(out, 0x80, 7, index);
}

/// The name of a literal field: a static-table index, or the name itself.
#[derive(Debug, Clone, Copy)]
pub enum Name<'a> {
    Indexed(usize),
    Literal(&'a [u8]),
}

/// §6.2.2: a literal field the peer must not add to its dynamic table.
pub fn encode_literal(out: &mut Vec<u8>, name: Name<'_>, value: &[u8], huffman: bool) {
    match name {
        Name::Indexed(index) => encode_integer(out, 0x00, 4, index),
        Name::Literal(name) => {
            out.push(0x00);
            encode_string(out, name, huffman);
        }
    }
    encode_string(out, value, huffman);
}

#[cfg(test)]
mod tests;
