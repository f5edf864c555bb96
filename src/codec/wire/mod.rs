//! A compact binary encoding for `tend reexec`'s snapshot: [`Writer`] puts
//! values, [`Reader`] takes them back, and [`Wire`] says how each type does.
//!
//! Why not serde: the snapshot was JSON through serde's derives, and the
//! derived `Deserialize` code of some sixty types cost a third of a megabyte
//! of the shipped binary (which must stay under 1 MiB). The snapshot is read
//! only by the tend that a tend execs, which checks the version first
//! (`reexec-check`), so it needs no field names, no optional fields and no
//! tolerance of other layouts: each type writes its fields in order, and the
//! [`wire_struct!`] and [`wire_enum!`] macros keep that to one line a type.
//!
//! The encoding, all of it:
//! - unsigned integers: LEB128 varints (7 bits a byte, low first); signed
//!   ones zigzag-mapped first; `u8` is one raw byte; `bool` a byte 0 or 1;
//! - `f64`: its 8 bytes, little-endian;
//! - bytes, strings and paths: a varint length, then the bytes (UTF-8 for a
//!   `String`);
//! - `Vec`, `VecDeque` and maps: a varint count, then each element;
//! - `Option`: a byte 0 (none) or 1 then the value; an enum: a tag byte then
//!   the variant's fields; a struct or tuple: its fields in order; arrays:
//!   their elements (no count);
//! - `Duration`: seconds and nanoseconds, two varints.
//!
//! Every value takes at least one byte, so a count larger than the bytes
//! left is refused before anything is allocated. Because the layout has no
//! field names, any change of it must change the snapshot's `VERSION`.
//!
//! Errors are sticky, not returned by each read: [`Wire::get`] gives a value
//! whatever happens, and the first problem is kept in the [`Reader`] (where
//! and what), which then reads as if the input had ended (zeros), so every
//! value after it is a placeholder: empty, `None`, the variant of tag 0.
//! [`decode`] returns that first problem instead of the value. Why: with a
//! `Result` from every read, each `?` in a struct of twenty fields needs its
//! own path that drops the fields read so far, and those paths were most of
//! the decoder's code (the shipped binary must stay under 1 MiB); this way a
//! struct's `get` is its fields' calls in a row.
//!
//! Must not: do I/O, panic on any input, allocate more than the input could
//! hold (see [`PREALLOC`]), or recurse without bound ([`MAX_DEPTH`]).

use std::fmt;

/// The most bytes' worth of elements a list reserves before it has read
/// them: a count is only a claim, so a larger list grows as it is read.
pub const PREALLOC: usize = 64 * 1024;

/// How deeply boxed values may nest (a `Failure` holds its cause): a
/// corrupt snapshot must not overflow the stack.
pub const MAX_DEPTH: u32 = 32;

/// A value that goes through the encoding (see the module doc).
pub trait Wire: Sized {
    fn put(&self, w: &mut Writer);
    /// The next value; a placeholder once `r` has failed (see the module
    /// doc), which [`decode`] never returns.
    fn get(r: &mut Reader<'_>) -> Self;
}

/// Bytes that are not text (a line cut mid-character, log output): put as
/// one length-prefixed run instead of byte by byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

/// Where encoded values go.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
}

// The primitives of both sides are never inlined: they are called from every
// field of every type, and a call is a few bytes where a `Vec` push is dozens.
impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    #[inline(never)]
    pub fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    #[inline(never)]
    pub fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    /// A length, then `bytes`.
    #[inline(never)]
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }
}

/// Reads values back from a byte slice, never past its end, keeping the
/// first problem (see the module doc).
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    at: usize,
    depth: u32,
    error: Option<WireError>,
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Reader<'a> {
        Reader {
            input,
            at: 0,
            depth: 0,
            error: None,
        }
    }

    /// Where the next byte is read.
    pub fn offset(&self) -> usize {
        self.at
    }

    pub fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.at)
    }

    /// The first problem met, if any.
    pub fn error(&self) -> Option<&WireError> {
        self.error.as_ref()
    }

    /// Keep `problem` (at byte `at`) unless one came first, and read nothing
    /// more.
    pub fn fail(&mut self, at: usize, problem: Problem) {
        if self.error.is_none() {
            self.error = Some(WireError { at, problem });
        }
        self.at = self.input.len();
    }

    /// A byte; 0 past the end.
    #[inline(never)]
    pub fn byte(&mut self, what: &'static str) -> u8 {
        match self.input.get(self.at) {
            Some(&b) => {
                self.at += 1;
                b
            }
            None => {
                self.fail(self.at, Problem::Truncated(what));
                0
            }
        }
    }

    /// An enum's tag: below `count` (the enum's variants, tagged 0, 1, ..
    /// in order), else recorded as unknown and 0 (the placeholder's).
    #[inline(never)]
    pub fn tag(&mut self, what: &'static str, count: usize) -> u8 {
        let tag = self.byte(what);
        if usize::from(tag) < count {
            return tag;
        }
        self.unknown(what, tag);
        0
    }

    /// `Option`'s tag: whether a value follows.
    #[inline(never)]
    pub fn some(&mut self) -> bool {
        self.tag("Option", 2) == 1
    }

    /// Record that the tag just read names no variant of `what`.
    pub fn unknown(&mut self, what: &'static str, tag: u8) {
        self.fail(self.at.saturating_sub(1), Problem::UnknownTag(what, tag));
    }

    /// Record that the value of `what` that began at `start` is not valid
    /// (out of range, not UTF-8).
    pub fn invalid(&mut self, what: &'static str, start: usize) {
        self.fail(start, Problem::Invalid(what));
    }

    #[inline(never)]
    pub fn varint(&mut self, what: &'static str) -> u64 {
        let start = self.at;
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte(what);
            let bits = u64::from(b & 0x7f);
            // The tenth byte holds the top bit only, and ends the varint.
            if shift == 63 && (bits > 1 || b & 0x80 != 0) {
                self.invalid(what, start);
                return 0;
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }

    /// A varint that must fit `T` (0 if it does not).
    fn narrow<T: TryFrom<u64> + Default>(&mut self, what: &'static str) -> T {
        let start = self.at;
        let n = self.varint(what);
        T::try_from(n).unwrap_or_else(|_| {
            self.invalid(what, start);
            T::default()
        })
    }

    /// A count of elements that take at least a byte each: no more than
    /// the bytes left.
    #[inline(never)]
    pub fn count(&mut self, what: &'static str) -> usize {
        let start = self.at;
        let n = self.varint(what);
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => n,
            _ => {
                self.fail(start, Problem::TooLong(what, n));
                0
            }
        }
    }

    /// A length, then that many bytes (none after a problem).
    #[inline(never)]
    pub fn bytes(&mut self, what: &'static str) -> &'a [u8] {
        let n = self.count(what);
        let bytes = self.input.get(self.at..self.at + n).unwrap_or(&[]);
        self.at += bytes.len();
        bytes
    }
}

/// What went wrong, and at which byte of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub at: usize,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The input ended inside a value of this.
    Truncated(&'static str),
    /// A tag that names no variant of this enum.
    UnknownTag(&'static str, u8),
    /// A length or count larger than the bytes left.
    TooLong(&'static str, u64),
    /// Read, but not a value of this (out of range, not UTF-8).
    Invalid(&'static str),
    /// Boxed values nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes left over after the value.
    Trailing(usize),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at;
        match &self.problem {
            Problem::Truncated(what) => write!(f, "truncated {what} at byte {at}"),
            Problem::UnknownTag(what, tag) => write!(f, "unknown {what} tag {tag} at byte {at}"),
            Problem::TooLong(what, n) => {
                write!(
                    f,
                    "{what} of length {n} at byte {at} is longer than the input"
                )
            }
            Problem::Invalid(what) => write!(f, "invalid {what} at byte {at}"),
            Problem::TooDeep => write!(f, "values nested too deeply at byte {at}"),
            Problem::Trailing(n) => write!(f, "{n} bytes left over at byte {at}"),
        }
    }
}

impl std::error::Error for WireError {}

/// `value` encoded.
pub fn encode<T: Wire>(value: &T) -> Vec<u8> {
    let mut w = Writer::new();
    value.put(&mut w);
    w.into_bytes()
}

/// The value `input` holds, all of it, or the first problem in it.
pub fn decode<T: Wire>(input: &[u8]) -> Result<T, WireError> {
    let mut r = Reader::new(input);
    let value = T::get(&mut r);
    if r.error.is_none() && r.remaining() > 0 {
        r.fail(r.at, Problem::Trailing(r.remaining()));
    }
    match r.error {
        None => Ok(value),
        Some(e) => Err(e),
    }
}

mod std_types;

// ----- the macros for tend's own types --------------------------------------

/// `impl Wire` for a struct: its fields in the order listed. Every field
/// must be listed (the struct literal of `get` does not compile otherwise).
/// `wire_struct!(Pid(0))` for a one-field tuple struct.
macro_rules! wire_struct {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::codec::wire::Wire for $ty {
            fn put(&self, w: &mut $crate::codec::wire::Writer) {
                $($crate::codec::wire::Wire::put(&self.$field, w);)+
            }
            fn get(r: &mut $crate::codec::wire::Reader<'_>) -> Self {
                Self { $($field: $crate::codec::wire::Wire::get(r)),+ }
            }
        }
    };
    ($ty:ident(0)) => {
        impl $crate::codec::wire::Wire for $ty {
            fn put(&self, w: &mut $crate::codec::wire::Writer) {
                $crate::codec::wire::Wire::put(&self.0, w);
            }
            fn get(r: &mut $crate::codec::wire::Reader<'_>) -> Self {
                Self($crate::codec::wire::Wire::get(r))
            }
        }
    };
}
pub(crate) use wire_struct;

/// `impl Wire` for an enum: a tag byte, then the variant's fields.
///
/// ```text
/// wire_enum!(Failure {
///     0 => Spawn(message),
///     1 => Unhealthy { failures, message },
///     2 => Plain,
/// });
/// ```
///
/// Every variant must be listed (the `match` of `put` is exhaustive), with
/// every field of a struct variant; the names of a tuple variant's fields
/// are only bindings. Tags are 0, 1, 2.. in order (checked when it
/// compiles). The first, tag 0, is the placeholder after a problem, so it
/// must not hold the enum itself (a placeholder would then never end). Tags
/// are the format: a variant added at the end takes the next one, and any
/// change of them changes the snapshot's `VERSION`.
macro_rules! wire_enum {
    // A tuple variant's field (its name is only a binding of `put`).
    (@get $r:ident $t:ident) => {
        $crate::codec::wire::Wire::get($r)
    };
    // The value of one variant, its fields read from `r`.
    (@value $r:ident $variant:ident $(($($t:ident),+))? $({ $($f:ident),+ })?) => {
        Self::$variant
            $(($($crate::codec::wire::wire_enum!(@get $r $t)),+))?
            $({ $($f: $crate::codec::wire::Wire::get($r)),+ })?
    };
    ($ty:ident {
        0 => $first:ident $(($($t0:ident),+))? $({ $($f0:ident),+ })?
        $(, $tag:literal => $variant:ident $(($($t:ident),+))? $({ $($f:ident),+ })?)* $(,)?
    }) => {
        impl $crate::codec::wire::Wire for $ty {
            fn put(&self, w: &mut $crate::codec::wire::Writer) {
                match self {
                    Self::$first $(($($t0),+))? $({ $($f0),+ })? => {
                        w.byte(0);
                        $($($crate::codec::wire::Wire::put($t0, w);)+)?
                        $($($crate::codec::wire::Wire::put($f0, w);)+)?
                    }
                    $(Self::$variant $(($($t),+))? $({ $($f),+ })? => {
                        w.byte($tag);
                        $($($crate::codec::wire::Wire::put($t, w);)+)?
                        $($($crate::codec::wire::Wire::put($f, w);)+)?
                    })*
                }
            }
            fn get(r: &mut $crate::codec::wire::Reader<'_>) -> Self {
                const TAGS: &[u8] = &[0 $(, $tag)*];
                const _: () = {
                    let mut i = 0;
                    while i < TAGS.len() {
                        assert!(TAGS[i] as usize == i, "tags must be 0, 1, 2.. in order");
                        i += 1;
                    }
                };
                match r.tag(stringify!($ty), TAGS.len()) {
                    $($tag => $crate::codec::wire::wire_enum!(
                        @value r $variant $(($($t),+))? $({ $($f),+ })?
                    ),)*
                    _ => $crate::codec::wire::wire_enum!(
                        @value r $first $(($($t0),+))? $({ $($f0),+ })?
                    ),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests;
