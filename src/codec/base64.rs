//! Base64 (RFC 4648 §4, the standard alphabet, with `=` padding), and
//! [`Bytes`]: a byte string that serializes as base64 text.
//!
//! Used by `tend reexec`'s snapshot (a JSON document) for bytes that need not
//! be UTF-8: a line cut in the middle of a character, log output written up
//! to the middle of one.
//!
//! Leaves out: other alphabets, line breaks, and lenient decoding (whitespace,
//! missing padding): what it decodes is only ever what it encoded.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as base64 text.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let symbols = [n >> 18, n >> 12, n >> 6, n].map(|i| ALPHABET[(i & 63) as usize]);
        let kept = chunk.len() + 1;
        out.extend_from_slice(&symbols[..kept]);
        out.extend(std::iter::repeat_n(b'=', 4 - kept));
    }
    // Only ASCII from the alphabet and `=` went in.
    String::from_utf8(out).unwrap_or_default()
}

/// The value of one symbol of the alphabet.
fn value(symbol: u8) -> Option<u32> {
    let v = match symbol {
        b'A'..=b'Z' => symbol - b'A',
        b'a'..=b'z' => symbol - b'a' + 26,
        b'0'..=b'9' => symbol - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// The bytes of base64 `text`; `Err` says what is wrong with it.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return Err(format!(
            "base64 of {} characters, not a multiple of 4",
            text.len()
        ));
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (i, group) in text.chunks(4).enumerate() {
        let pad = group.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != groups) {
            return Err(format!("misplaced padding in base64 group {i}"));
        }
        let mut n = 0u32;
        for &c in &group[..4 - pad] {
            let v = value(c).ok_or_else(|| format!("{:?} is not a base64 character", c as char))?;
            n = n << 6 | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// Bytes that serialize as base64 text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).map(Bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).as_deref(), Ok(plain.as_bytes()));
        }
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn every_byte_string_round_trips_and_mutations_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let len = (next() % 70) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let text = encode(&bytes);
            assert_eq!(decode(&text), Ok(bytes));
            // A mutated text decodes to something or is refused, never panics.
            let mut mutated = text.into_bytes();
            if !mutated.is_empty() {
                let at = (next() as usize) % mutated.len();
                mutated[at] = next() as u8;
            }
            let _ = decode(&String::from_utf8_lossy(&mutated));
        }
        for bad in ["A", "AB=C", "A===", "Zg==Zg==", "Z\u{e9}==", "ab c"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bytes_are_base64_in_json() {
        let json = serde_json::to_string(&Bytes(b"\xff\x00a".to_vec())).expect("json");
        assert_eq!(json, "\"/wBh\"");
        let back: Bytes = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.0, b"\xff\x00a");
        assert!(serde_json::from_str::<Bytes>("\"@@@@\"").is_err());
    }
}
