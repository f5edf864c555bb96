//! [`Wire`] for the std types the snapshot holds: integers, floats,
//! durations, text, paths, containers, tuples and socket addresses (the
//! encoding of each is in the parent module's doc).

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Bytes, MAX_DEPTH, PREALLOC, Problem, Reader, Wire, Writer};

// ----- primitives -----------------------------------------------------------

impl Wire for u8 {
    fn put(&self, w: &mut Writer) {
        w.byte(*self);
    }
    fn get(r: &mut Reader<'_>) -> u8 {
        r.byte("u8")
    }
}

impl Wire for bool {
    fn put(&self, w: &mut Writer) {
        w.byte(u8::from(*self));
    }
    fn get(r: &mut Reader<'_>) -> bool {
        let start = r.offset();
        match r.byte("bool") {
            0 => false,
            1 => true,
            _ => {
                r.invalid("bool", start);
                false
            }
        }
    }
}

impl Wire for u64 {
    fn put(&self, w: &mut Writer) {
        w.varint(*self);
    }
    fn get(r: &mut Reader<'_>) -> u64 {
        r.varint("u64")
    }
}

/// Unsigned integers narrower than `u64` (and `usize`): a varint, refused
/// when out of the type's range.
macro_rules! narrow_unsigned {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, w: &mut Writer) {
                w.varint(*self as u64);
            }
            fn get(r: &mut Reader<'_>) -> $t {
                r.narrow(stringify!($t))
            }
        }
    )*};
}
narrow_unsigned!(u16, u32, usize);

impl Wire for i64 {
    fn put(&self, w: &mut Writer) {
        w.varint(((*self << 1) ^ (*self >> 63)) as u64);
    }
    fn get(r: &mut Reader<'_>) -> i64 {
        let n = r.varint("i64");
        (n >> 1) as i64 ^ -((n & 1) as i64)
    }
}

impl Wire for i32 {
    fn put(&self, w: &mut Writer) {
        i64::from(*self).put(w);
    }
    fn get(r: &mut Reader<'_>) -> i32 {
        let start = r.offset();
        let n = i64::get(r);
        i32::try_from(n).unwrap_or_else(|_| {
            r.invalid("i32", start);
            0
        })
    }
}

impl Wire for f64 {
    fn put(&self, w: &mut Writer) {
        for b in self.to_le_bytes() {
            w.byte(b);
        }
    }
    fn get(r: &mut Reader<'_>) -> f64 {
        f64::from_le_bytes(<[u8; 8]>::get(r))
    }
}

impl Wire for Duration {
    fn put(&self, w: &mut Writer) {
        w.varint(self.as_secs());
        w.varint(u64::from(self.subsec_nanos()));
    }
    fn get(r: &mut Reader<'_>) -> Duration {
        let secs = r.varint("duration");
        let start = r.offset();
        let nanos = r.varint("duration");
        match u32::try_from(nanos) {
            Ok(nanos) if nanos < 1_000_000_000 => Duration::new(secs, nanos),
            _ => {
                r.invalid("duration", start);
                Duration::ZERO
            }
        }
    }
}

// ----- bytes and text -------------------------------------------------------

impl Wire for Bytes {
    fn put(&self, w: &mut Writer) {
        w.bytes(&self.0);
    }
    fn get(r: &mut Reader<'_>) -> Bytes {
        Bytes(r.bytes("bytes").to_vec())
    }
}

impl Wire for String {
    fn put(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> String {
        let start = r.offset();
        let bytes = r.bytes("string");
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) => {
                r.invalid("string (not UTF-8)", start);
                String::new()
            }
        }
    }
}

impl Wire for Arc<str> {
    fn put(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Arc<str> {
        Arc::from(String::get(r))
    }
}

impl Wire for OsString {
    fn put(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> OsString {
        OsString::from_vec(r.bytes("path").to_vec())
    }
}

impl Wire for PathBuf {
    fn put(&self, w: &mut Writer) {
        w.bytes(self.as_os_str().as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> PathBuf {
        PathBuf::from(OsString::get(r))
    }
}

// ----- containers -----------------------------------------------------------

/// How many elements of `T` to reserve for a count of `n` (see [`PREALLOC`]).
pub(super) fn reserve<T>(n: usize) -> usize {
    n.min(PREALLOC / std::mem::size_of::<T>().max(1))
}

impl<T: Wire> Wire for Vec<T> {
    fn put(&self, w: &mut Writer) {
        w.varint(self.len() as u64);
        for item in self {
            item.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> Vec<T> {
        let n = r.count("list");
        let mut out = Vec::with_capacity(reserve::<T>(n));
        for _ in 0..n {
            if r.error.is_some() {
                break;
            }
            out.push(T::get(r));
        }
        out
    }
}

impl<T: Wire> Wire for VecDeque<T> {
    fn put(&self, w: &mut Writer) {
        w.varint(self.len() as u64);
        for item in self {
            item.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> VecDeque<T> {
        VecDeque::from(Vec::get(r))
    }
}

impl<K: Wire + Ord, V: Wire> Wire for BTreeMap<K, V> {
    fn put(&self, w: &mut Writer) {
        w.varint(self.len() as u64);
        for (k, v) in self {
            k.put(w);
            v.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> BTreeMap<K, V> {
        let n = r.count("map");
        let mut out = BTreeMap::new();
        for _ in 0..n {
            if r.error.is_some() {
                break;
            }
            let key = K::get(r);
            out.insert(key, V::get(r));
        }
        out
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, w: &mut Writer) {
        match self {
            None => w.byte(0),
            Some(v) => {
                w.byte(1);
                v.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Option<T> {
        r.some().then(|| T::get(r))
    }
}

impl<T: Wire> Wire for Box<T> {
    fn put(&self, w: &mut Writer) {
        (**self).put(w);
    }
    fn get(r: &mut Reader<'_>) -> Box<T> {
        if r.depth >= MAX_DEPTH {
            // What follows is a placeholder (tag 0), which holds no box.
            r.fail(r.at, Problem::TooDeep);
        }
        r.depth += 1;
        let value = T::get(r);
        r.depth -= 1;
        Box::new(value)
    }
}

impl<T: Wire, const N: usize> Wire for [T; N] {
    fn put(&self, w: &mut Writer) {
        for item in self {
            item.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> [T; N] {
        // Elements are made in order, from index 0.
        std::array::from_fn(|_| T::get(r))
    }
}

macro_rules! tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Wire),+> Wire for ($($t,)+) {
            fn put(&self, w: &mut Writer) {
                $(self.$i.put(w);)+
            }
            fn get(r: &mut Reader<'_>) -> Self {
                ($($t::get(r),)+)
            }
        }
    };
}
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);

// ----- addresses ------------------------------------------------------------

impl Wire for SocketAddr {
    fn put(&self, w: &mut Writer) {
        match self {
            SocketAddr::V4(a) => {
                w.byte(4);
                a.ip().octets().put(w);
                a.port().put(w);
            }
            SocketAddr::V6(a) => {
                w.byte(6);
                a.ip().octets().put(w);
                a.port().put(w);
                a.flowinfo().put(w);
                a.scope_id().put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> SocketAddr {
        match r.byte("SocketAddr") {
            6 => {
                let ip = Ipv6Addr::from(<[u8; 16]>::get(r));
                let port = u16::get(r);
                let (flowinfo, scope) = <(u32, u32)>::get(r);
                SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope))
            }
            tag => {
                if tag != 4 {
                    r.unknown("SocketAddr", tag);
                }
                let ip = Ipv4Addr::from(<[u8; 4]>::get(r));
                SocketAddr::V4(SocketAddrV4::new(ip, u16::get(r)))
            }
        }
    }
}

impl Wire for IpAddr {
    fn put(&self, w: &mut Writer) {
        SocketAddr::new(*self, 0).put(w);
    }
    fn get(r: &mut Reader<'_>) -> IpAddr {
        SocketAddr::get(r).ip()
    }
}
