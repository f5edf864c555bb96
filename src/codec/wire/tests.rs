//! The encoding's own tests: known bytes for varints and zigzag, round trips
//! of every generic impl and of the macros, and every way an input can be
//! wrong (truncated, an unknown tag, a length past the end, too deep, bytes
//! left over), each refused with where and what.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::std_types::reserve;
use super::*;

fn round_trip<T: Wire + PartialEq + Debug>(value: T) -> Vec<u8> {
    let bytes = encode(&value);
    assert_eq!(decode::<T>(&bytes), Ok(value), "{bytes:?}");
    // Every shorter input is refused (never a panic, never a shorter value).
    for cut in 0..bytes.len() {
        assert!(decode::<T>(&bytes[..cut]).is_err(), "{cut} of {bytes:?}");
    }
    bytes
}

fn error<T: Wire + Debug>(bytes: &[u8]) -> String {
    match decode::<T>(bytes) {
        Ok(v) => panic!("{bytes:?} decoded as {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn varints_are_leb128_and_signed_ones_zigzag() {
    let cases: [(u64, &[u8]); 6] = [
        (0, &[0]),
        (1, &[1]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (300, &[0xac, 0x02]),
        (
            u64::MAX,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
    ];
    for (n, bytes) in cases {
        assert_eq!(round_trip(n), bytes, "{n}");
    }
    let signed: [(i64, &[u8]); 5] = [(0, &[0]), (-1, &[1]), (1, &[2]), (-2, &[3]), (-64, &[0x7f])];
    for (n, bytes) in signed {
        assert_eq!(round_trip(n), bytes, "{n}");
    }
    for n in [i64::MIN, i64::MAX, -1_000_000, 1 << 40] {
        round_trip(n);
    }
    for n in [i32::MIN, i32::MAX, 0, -7] {
        round_trip(n);
    }
    for n in [0u32, u32::MAX] {
        round_trip(n);
    }
    round_trip(usize::MAX);
    round_trip(u16::MAX);
    round_trip(0xa5u8);
}

#[test]
fn a_varint_past_64_bits_or_a_type_is_refused() {
    let mut eleven = vec![0x80; 10];
    eleven.push(0);
    assert_eq!(error::<u64>(&eleven), "invalid u64 at byte 0");
    let mut top = vec![0xff; 9];
    top.push(0x02);
    assert_eq!(error::<u64>(&top), "invalid u64 at byte 0");
    assert_eq!(error::<u64>(&[0x80]), "truncated u64 at byte 1");
    assert_eq!(
        error::<u32>(&encode(&(1u64 << 32))),
        "invalid u32 at byte 0"
    );
    assert_eq!(error::<u16>(&encode(&65536u64)), "invalid u16 at byte 0");
    let big = encode(&(i64::from(i32::MAX) + 1));
    assert_eq!(error::<i32>(&big), "invalid i32 at byte 0");
    assert_eq!(error::<bool>(&[2]), "invalid bool at byte 0");
    assert_eq!(error::<u8>(&[]), "truncated u8 at byte 0");
}

#[test]
fn floats_durations_and_text_come_back() {
    for x in [
        0.0,
        -0.0,
        1.5,
        f64::MAX,
        f64::MIN_POSITIVE,
        1_700_000_000.123,
    ] {
        let bytes = round_trip(x);
        assert_eq!(bytes, x.to_le_bytes());
    }
    assert!(decode::<f64>(&encode(&f64::NAN)).is_ok_and(f64::is_nan));
    for d in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(1500),
        Duration::MAX,
    ] {
        round_trip(d);
    }
    let mut bad = encode(&5u64);
    bad.extend(encode(&1_000_000_000u64));
    assert_eq!(error::<Duration>(&bad), "invalid duration at byte 1");
    round_trip(true);
    round_trip(false);
    round_trip(String::new());
    assert_eq!(round_trip("héllo".to_string()), b"\x06h\xc3\xa9llo");
    round_trip(Arc::<str>::from("web"));
    round_trip(PathBuf::from("/var/log/\u{2713}"));
    round_trip(OsString::from_vec(b"not \xff utf-8".to_vec()));
    round_trip(Bytes(b"half a li\xc3".to_vec()));
    round_trip(Bytes(Vec::new()));
    assert_eq!(
        error::<String>(b"\x02\xc3\x28"),
        "invalid string (not UTF-8) at byte 0"
    );
    assert_eq!(
        error::<String>(b"\x05abc"),
        "string of length 5 at byte 0 is longer than the input"
    );
}

#[test]
fn containers_and_addresses_come_back() {
    round_trip(vec![1u64, 2, 300]);
    round_trip(Vec::<String>::new());
    round_trip(VecDeque::from(vec![Duration::from_secs(1), Duration::MAX]));
    let map: BTreeMap<String, String> = [("A".into(), "1".into()), ("B".into(), String::new())]
        .into_iter()
        .collect();
    round_trip(map);
    round_trip(Some(Some(3u32)));
    round_trip(Some(None::<u32>));
    round_trip(None::<String>);
    round_trip(Box::new(7i32));
    round_trip([7u8; 32]);
    round_trip([u64::MAX, 0]);
    round_trip((1u64, "x".to_string()));
    round_trip((1u64, 2u64, 3u32));
    round_trip((1i32, 2u64, -1.5f64, 4u64));
    round_trip(vec![(Some("a".to_string()), Bytes(vec![0, 1]), 9u64)]);
    for addr in [
        "127.0.0.1:8080",
        "0.0.0.0:0",
        "[::1]:443",
        "[fe80::1%3]:9000",
    ] {
        let addr: SocketAddr = addr.parse().expect("address");
        round_trip(addr);
        round_trip(addr.ip());
    }
    assert_eq!(
        error::<SocketAddr>(&[5]),
        "unknown SocketAddr tag 5 at byte 0"
    );
    assert_eq!(error::<Option<u8>>(&[2]), "unknown Option tag 2 at byte 0");
}

#[test]
fn a_count_past_the_end_is_refused_before_anything_is_allocated() {
    // A list claiming u64::MAX elements, and one a byte too long.
    let huge = encode(&u64::MAX);
    assert!(error::<Vec<u64>>(&huge).starts_with("list of length 18446744073709551615"));
    assert!(error::<Bytes>(&huge).contains("longer than the input"));
    let mut one_short = encode(&3u64);
    one_short.extend([1, 2]);
    assert_eq!(
        error::<Vec<u8>>(&one_short),
        "list of length 3 at byte 0 is longer than the input"
    );
    let mut map = encode(&1000u64);
    map.push(0);
    assert!(error::<BTreeMap<u8, u8>>(&map).starts_with("map of length 1000"));
    // A count the input could hold reserves at most PREALLOC bytes of big
    // elements; the rest grows only as elements are really read.
    assert_eq!(reserve::<[u64; 64]>(1 << 20), PREALLOC / 512);
    assert_eq!(reserve::<u8>(10), 10);
}

#[test]
fn bytes_left_over_are_refused() {
    let mut bytes = encode(&"x".to_string());
    bytes.push(0);
    assert_eq!(error::<String>(&bytes), "1 bytes left over at byte 2");
}

// ----- the macros ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Point {
    x: i32,
    label: String,
    at: Option<Duration>,
}
wire_struct!(Point { x, label, at });

#[derive(Debug, Clone, Copy, PartialEq)]
struct Id(u64);
wire_struct!(Id(0));

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Empty,
    Dot(Point),
    Line(Point, Point),
    Named { id: Id, sides: u32 },
}
wire_enum!(Shape {
    0 => Empty,
    1 => Dot(p),
    2 => Line(a, b),
    3 => Named { id, sides },
});

#[derive(Debug, Clone, PartialEq)]
enum Chain {
    End,
    Link(Box<Chain>),
}
wire_enum!(Chain {
    0 => End,
    1 => Link(next),
});

fn point(x: i32) -> Point {
    Point {
        x,
        label: format!("p{x}"),
        at: (x > 0).then(|| Duration::from_millis(x as u64)),
    }
}

#[test]
fn macro_types_are_their_fields_in_order_after_a_tag() {
    assert_eq!(round_trip(point(-3)), b"\x05\x03p-3\x00");
    assert_eq!(round_trip(Id(300)), [0xac, 0x02]);
    assert_eq!(round_trip(Shape::Empty), [0]);
    round_trip(Shape::Dot(point(1)));
    round_trip(Shape::Line(point(2), point(-2)));
    assert_eq!(
        round_trip(Shape::Named {
            id: Id(1),
            sides: 4
        }),
        [3, 1, 4]
    );
    round_trip(vec![Shape::Empty, Shape::Dot(point(0))]);
    assert_eq!(error::<Shape>(&[9]), "unknown Shape tag 9 at byte 0");
    assert_eq!(error::<Shape>(&[4]), "unknown Shape tag 4 at byte 0");
    assert_eq!(
        error::<Vec<Shape>>(&[2, 0, 200]),
        "unknown Shape tag 200 at byte 2"
    );
}

#[test]
fn nesting_is_bounded_and_never_overflows_the_stack() {
    let chain = |depth: u32| {
        let mut c = Chain::End;
        for _ in 0..depth {
            c = Chain::Link(Box::new(c));
        }
        c
    };
    round_trip(chain(MAX_DEPTH));
    let deep = encode(&chain(MAX_DEPTH + 1));
    assert_eq!(
        error::<Chain>(&deep),
        format!("values nested too deeply at byte {}", MAX_DEPTH + 1)
    );
    // A million links of hostile input: refused at the bound.
    let mut hostile = vec![1u8; 1_000_000];
    hostile.push(0);
    assert!(error::<Chain>(&hostile).starts_with("values nested too deeply"));
}

/// A small xorshift generator (no crates).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn mutated_inputs_decode_or_are_refused_never_panic() {
    let value = vec![
        Shape::Line(point(5), point(-5)),
        Shape::Named {
            id: Id(u64::MAX),
            sides: 3,
        },
        Shape::Dot(point(0)),
    ];
    let good = encode(&value);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() % bytes.len() as u64) as usize;
            match rng.next() % 3 {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes[at] ^= 1 << (rng.next() % 8),
                _ => bytes.truncate(at),
            }
            if bytes.is_empty() {
                break;
            }
        }
        match decode::<Vec<Shape>>(&bytes) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(ok > 100 && refused > 100, "{ok} decoded, {refused} refused");
}
