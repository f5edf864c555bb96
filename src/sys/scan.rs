//! The newline scanner of the output hot path with SSE2 vector compares, 64
//! bytes per step. [`crate::lines`] uses it on x86_64 unless built with
//! `--cfg tend_portable_scan`, which selects its safe word-at-a-time (SWAR) twin
//! instead; the two are checked against each other by `lines`' tests, and kept
//! only while this one is measurably faster (see README "Performance").

/// Calls `f` with the index of every `\n` in `bytes`, in order, and says whether
/// all bytes are ASCII: one pass over the bytes, 64 at a time as bit masks from
/// vector compares (SSE2 is part of x86_64), instead of a search call per line
/// and a separate UTF-8 check in a flood of short lines.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(tend_portable_scan, allow(dead_code))]
pub fn for_each_newline(bytes: &[u8], mut f: impl FnMut(usize)) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128,
    };
    let mut chunks = bytes.chunks_exact(64);
    let mut base = 0;
    // SAFETY (all intrinsics here): SSE2 is in the x86_64 baseline, and every
    // unaligned load reads 16 bytes inside the 64-byte `chunk`.
    let mut high = unsafe { _mm_setzero_si128() };
    for chunk in &mut chunks {
        // SAFETY: as above.
        let mut mask = unsafe {
            let nl = _mm_set1_epi8(b'\n' as i8);
            let p: *const __m128i = chunk.as_ptr().cast();
            let (a, b) = (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)));
            let (c, d) = (_mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3)));
            high = _mm_or_si128(high, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
            let bits = |v| _mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u16 as u64;
            bits(a) | bits(b) << 16 | bits(c) << 32 | bits(d) << 48
        };
        while mask != 0 {
            f(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
        base += 64;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == b'\n' {
            f(base + i);
        }
    }
    // SAFETY: as above.
    let high = unsafe { _mm_movemask_epi8(high) };
    high == 0 && chunks.remainder().is_ascii()
}
