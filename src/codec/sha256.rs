//! SHA-256, as specified in FIPS 180-4 (§4.1.2 functions, §4.2.2 constants,
//! §5.1.1 padding, §5.3.3 initial value, §6.2.2 computation).
//!
//! Incremental: [`Sha256::update`] takes input in any split, and the digest does
//! not depend on how it was split. Whole 64-byte blocks are compressed straight
//! from the caller's slice; only a partial block (at most 63 bytes) is copied into
//! the fixed buffer, so memory is constant whatever the input length.
//!
//! Not here: SHA-224/384/512, HMAC, or any constant-time promise beyond what the
//! algorithm's data-independent control flow gives. Messages longer than
//! 2^64 - 1 bits are out of FIPS 180-4's domain; the bit length wraps.

/// FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube
/// roots of the first 64 primes.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// FIPS 180-4 §5.3.3: the first 32 bits of the fractional parts of the square
/// roots of the first 8 primes.
const INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const BLOCK: usize = 64;

/// An incremental SHA-256 computation.
#[derive(Clone, Debug)]
pub struct Sha256 {
    state: [u32; 8],
    /// A partial block: `pending[..pending_len]` are bytes not yet compressed.
    pending: [u8; BLOCK],
    pending_len: usize,
    /// Message length in bytes so far (FIPS 180-4 counts bits; converted at the end).
    length: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    pub fn new() -> Self {
        Sha256 {
            state: INITIAL,
            pending: [0; BLOCK],
            pending_len: 0,
            length: 0,
        }
    }

    /// Adds `data` to the message.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (BLOCK - self.pending_len).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(head);
            self.pending_len += take;
            data = rest;
            if self.pending_len < BLOCK {
                return;
            }
            let block = self.pending;
            compress(&mut self.state, &block);
            self.pending_len = 0;
        }
        let (blocks, rest) = data.as_chunks::<BLOCK>();
        for block in blocks {
            compress(&mut self.state, block);
        }
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Pads the message (FIPS 180-4 §5.1.1) and returns the digest.
    pub fn finish(mut self) -> [u8; 32] {
        let bit_length = self.length.wrapping_mul(8);
        // 0x80, then zeros until 8 bytes remain in a block, then the length.
        let mut tail = [0u8; 2 * BLOCK];
        tail[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        tail[self.pending_len] = 0x80;
        let tail_len = if self.pending_len < BLOCK - 8 {
            BLOCK
        } else {
            2 * BLOCK
        };
        tail[tail_len - 8..tail_len].copy_from_slice(&bit_length.to_be_bytes());
        let (blocks, _) = tail[..tail_len].as_chunks::<BLOCK>();
        for block in blocks {
            compress(&mut self.state, block);
        }
        let mut out = [0u8; 32];
        for (bytes, word) in out.as_chunks_mut::<4>().0.iter_mut().zip(self.state) {
            *bytes = word.to_be_bytes();
        }
        out
    }
}

/// FIPS 180-4 §6.2.2, steps 1–4, for one block. Straight-line code over fixed
/// arrays: no branch depends on the data, and every index is in range by
/// construction, so the compiler drops the bounds checks.
fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    let mut w = [0u32; 64];
    for (word, bytes) in w.iter_mut().zip(block.as_chunks::<4>().0) {
        *word = u32::from_be_bytes(*bytes);
    }
    for t in 16..64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    // Eight rounds per step, each naming the working variables one place
    // further on, so no round shuffles eight registers (§6.2.2 step 3 moves
    // h = g, g = f, ... are the renaming).
    for (k, w) in K.as_chunks::<8>().0.iter().zip(w.as_chunks::<8>().0) {
        round(a, b, c, &mut d, e, f, g, &mut h, k[0], w[0]);
        round(h, a, b, &mut c, d, e, f, &mut g, k[1], w[1]);
        round(g, h, a, &mut b, c, d, e, &mut f, k[2], w[2]);
        round(f, g, h, &mut a, b, c, d, &mut e, k[3], w[3]);
        round(e, f, g, &mut h, a, b, c, &mut d, k[4], w[4]);
        round(d, e, f, &mut g, h, a, b, &mut c, k[5], w[5]);
        round(c, d, e, &mut f, g, h, a, &mut b, k[6], w[6]);
        round(b, c, d, &mut e, f, g, h, &mut a, k[7], w[7]);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// One round of §6.2.2 step 3: T1 and T2, with `d += T1` and `h = T1 + T2`
/// written in place; the caller rotates the names.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn round(a: u32, b: u32, c: u32, d: &mut u32, e: u32, f: u32, g: u32, h: &mut u32, k: u32, w: u32) {
    let big_s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
    let ch = (e & f) ^ (!e & g);
    let t1 = h
        .wrapping_add(big_s1)
        .wrapping_add(ch)
        .wrapping_add(k)
        .wrapping_add(w);
    let big_s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
    let maj = (a & b) ^ (a & c) ^ (b & c);
    *d = d.wrapping_add(t1);
    *h = t1.wrapping_add(big_s0).wrapping_add(maj);
}

/// The SHA-256 digest of `data`.
pub fn digest(data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(data);
    hasher.finish()
}

/// The digest as 64 lowercase hex digits (the form `sha256sum` prints).
pub fn to_hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses 64 hex digits (either case) into a digest; anything else is `None`.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    let (pairs, rest) = text.as_bytes().as_chunks::<2>();
    if pairs.len() != 32 || !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, [high, low]) in out.iter_mut().zip(pairs) {
        *byte = hex_value(*high)? << 4 | hex_value(*low)?;
    }
    Some(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn hex(data: &[u8]) -> String {
        to_hex(&digest(data))
    }

    /// The examples of NIST's "Cryptographic Standards and Guidelines: Examples
    /// with Intermediate Values" for SHA-256, and the long-message vectors of
    /// the NIST SHA test suite.
    #[test]
    fn nist_vectors() {
        assert_eq!(
            hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        );
        assert_eq!(
            hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn million_a_in_uneven_updates() {
        let mut hasher = Sha256::new();
        let chunk = [b'a'; 997];
        let mut left = 1_000_000;
        while left > 0 {
            let n = left.min(chunk.len());
            hasher.update(&chunk[..n]);
            left -= n;
        }
        assert_eq!(
            to_hex(&hasher.finish()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    /// Lengths around the padding boundaries (55/56/63/64 bytes) are where an
    /// off-by-one would hide; every split point of every such message must give
    /// the one-shot digest, and splitting into three parts too.
    #[test]
    fn every_split_gives_the_same_digest() {
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 200] {
            let message: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let whole = digest(&message);
            for cut in 0..=len {
                let mut hasher = Sha256::new();
                hasher.update(&message[..cut]);
                hasher.update(&message[cut..]);
                assert_eq!(hasher.finish(), whole, "len {len}, cut at {cut}");
                let second = cut + (len - cut) / 2;
                let mut hasher = Sha256::new();
                hasher.update(&message[..cut]);
                hasher.update(&[]);
                hasher.update(&message[cut..second]);
                hasher.update(&message[second..]);
                assert_eq!(
                    hasher.finish(),
                    whole,
                    "len {len}, cuts at {cut} and {second}"
                );
            }
            let mut hasher = Sha256::new();
            for byte in &message {
                hasher.update(std::slice::from_ref(byte));
            }
            assert_eq!(hasher.finish(), whole, "len {len}, byte by byte");
        }
    }

    #[test]
    fn hex_round_trip_and_rejections() {
        let d = digest(b"abc");
        let text = to_hex(&d);
        assert_eq!(from_hex(&text), Some(d));
        assert_eq!(from_hex(&text.to_uppercase()), Some(d));
        assert_eq!(from_hex(""), None);
        assert_eq!(from_hex(&text[..63]), None);
        assert_eq!(from_hex(&format!("{text}0")), None);
        assert_eq!(from_hex(&format!("{}g", &text[..63])), None);
        assert_eq!(from_hex(&format!(" {}", &text[..63])), None);
        // 64 bytes but not 64 ASCII digits: a multi-byte char must not be split.
        assert_eq!(from_hex(&format!("é{}", &text[..62])), None);
    }

    /// Random lengths and contents, compared with coreutils' `sha256sum`.
    #[test]
    fn random_data_matches_sha256sum() {
        if Command::new("sha256sum").arg("--version").output().is_err() {
            println!("SKIPPED: sha256sum is not installed");
            return;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..12 {
            let len = if round == 0 {
                3 << 20
            } else {
                (next() % 70_000) as usize
            };
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut child = Command::new("sha256sum")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("sha256sum runs");
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(&data).expect("sha256sum reads its input");
            drop(stdin);
            let output = child.wait_with_output().expect("sha256sum exits");
            let text = String::from_utf8(output.stdout).expect("sha256sum prints ASCII");
            let expected = text.split_whitespace().next().expect("a digest");
            assert_eq!(hex(&data), expected, "{len} random bytes");
        }
    }

    /// `cargo test --release --lib codec::sha256::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check; run in release mode"]
    fn throughput() {
        let data = vec![0x5a_u8; 64 << 20];
        let start = std::time::Instant::now();
        let mut result = [0u8; 32];
        for _ in 0..4 {
            result = digest(std::hint::black_box(&data));
        }
        let seconds = start.elapsed().as_secs_f64();
        let megabytes = 4.0 * data.len() as f64 / 1e6;
        println!(
            "sha256: {:.0} MB/s ({})",
            megabytes / seconds,
            to_hex(&result)
        );
    }
}
