//! Writing JSON by hand: string escaping and a tiny writer, compact or pretty.
//!
//! Owns: the bytes tend writes as JSON outside `tend import` (which prints its
//! own ordered tree, `import::json`): control protocol replies and requests,
//! `tend status --json`, and the string escaping of the `json` log format.
//! The output is byte for byte what serde_json writes for the same values
//! (`serde_json::to_vec` and `to_string_pretty`), so the control protocol did not
//! change when its serde derives went (see `protocol::json` for why they went).
//!
//! Must not: parse JSON (`config::raw` does that), or check structure: the
//! caller opens and closes what it writes, and calls [`Writer::key`] before
//! each value of an object and [`Writer::element`] before each item of an array.
//!
//! ```
//! use tend::codec::json::Writer;
//! let mut w = Writer::compact();
//! w.begin_object();
//! w.key("ok");
//! w.bool(true);
//! w.key("names");
//! w.begin_array();
//! w.element();
//! w.string("web");
//! w.end_array();
//! w.end_object();
//! assert_eq!(w.into_bytes(), br#"{"ok":true,"names":["web"]}"#);
//! ```

/// Whether a byte must be escaped inside a JSON string.
#[inline(always)]
pub fn must_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether `line` (without its newline) needs escaping.
pub fn line_needs_escape(line: &[u8]) -> bool {
    line.iter().any(|&b| must_escape(b))
}

/// Append `bytes` (UTF-8) as the inside of a JSON string: `"` and `\` escaped,
/// control characters as `\n`, `\t`, ... or `\u00XX`; everything else as is.
/// The same escapes as serde_json, so what tend writes matches it byte for byte.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !must_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends JSON to a byte buffer. Pretty output is serde_json's
/// `to_string_pretty`: two-space indent, `": "` after keys, `[]` and `{}` for
/// empty containers.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    pretty: bool,
    depth: usize,
    /// Nothing written yet in the innermost open container.
    fresh: bool,
}

impl Writer {
    /// One line, no spaces (what the control protocol sends).
    pub fn compact() -> Writer {
        Writer::default()
    }

    /// Indented over several lines, for people.
    pub fn pretty() -> Writer {
        Writer {
            pretty: true,
            ..Writer::default()
        }
    }

    /// Append to `out` (one line after another in one buffer).
    pub fn onto(out: Vec<u8>) -> Writer {
        Writer {
            out,
            ..Writer::default()
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// Raw bytes between values, e.g. the newline after a top-level value.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The comma (unless first) and, when pretty, the line break and indent
    /// before an item of the open container.
    fn separate(&mut self) {
        if !self.fresh {
            self.out.push(b',');
        }
        self.fresh = false;
        if self.pretty {
            self.out.push(b'\n');
            self.indent();
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.extend_from_slice(b"  ");
        }
    }

    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        self.depth += 1;
        self.fresh = true;
    }

    fn close(&mut self, bracket: u8) {
        self.depth = self.depth.saturating_sub(1);
        if self.pretty && !self.fresh {
            self.out.push(b'\n');
            self.indent();
        }
        self.out.push(bracket);
        self.fresh = false;
    }

    pub fn begin_object(&mut self) {
        self.open(b'{');
    }

    pub fn end_object(&mut self) {
        self.close(b'}');
    }

    pub fn begin_array(&mut self) {
        self.open(b'[');
    }

    pub fn end_array(&mut self) {
        self.close(b']');
    }

    /// Before each item of an array.
    pub fn element(&mut self) {
        self.separate();
    }

    /// Before each value of an object.
    pub fn key(&mut self, key: &str) {
        self.separate();
        self.string(key);
        self.out.push(b':');
        if self.pretty {
            self.out.push(b' ');
        }
    }

    pub fn string(&mut self, text: &str) {
        self.out.push(b'"');
        escape_into(&mut self.out, text.as_bytes());
        self.out.push(b'"');
    }

    pub fn bool(&mut self, value: bool) {
        self.raw(if value { b"true" } else { b"false" });
    }

    pub fn null(&mut self) {
        self.raw(b"null");
    }

    pub fn u64(&mut self, value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut v = value;
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&digits[at..]);
    }

    pub fn i64(&mut self, value: i64) {
        if value < 0 {
            self.out.push(b'-');
        }
        self.u64(value.unsigned_abs());
    }

    /// An `f64` exactly as serde_json writes it: the shortest digits that read
    /// back as the same number, with `.0` on whole numbers (`1.0`), plain from
    /// 1e-5 to below 1e16 and with an exponent outside (`1e+21`, `1.5e-7`), and
    /// `null` for NaN and the infinities.
    ///
    /// Done by serde_json itself, which costs its float formatter (zmij, about
    /// 1.8 KB): core's `{:e}`, linked anyway, gives the same digits except on
    /// exact ties between two shortest candidates, which the two break
    /// differently (`1658206780088562.25` prints as `…562.3` in core and
    /// `…562.2` in serde_json), and the protocol must not change by a digit.
    pub fn f64(&mut self, value: f64) {
        if serde_json::to_writer(&mut self.out, &value).is_err() {
            self.null();
        }
    }

    /// `key: value` pairs, with `null` for None, as serde writes an `Option`.
    pub fn field_str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(s) => self.string(s),
            None => self.null(),
        }
    }

    pub fn field_bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.bool(value);
    }

    pub fn field_u64(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(n) => self.u64(n),
            None => self.null(),
        }
    }

    pub fn field_i64(&mut self, key: &str, value: Option<i64>) {
        self.key(key);
        match value {
            Some(n) => self.i64(n),
            None => self.null(),
        }
    }

    pub fn field_f64(&mut self, key: &str, value: Option<f64>) {
        self.key(key);
        match value {
            Some(x) => self.f64(x),
            None => self.null(),
        }
    }

    /// `key: ["a", "b"]`.
    pub fn field_strings(&mut self, key: &str, values: &[String]) {
        self.key(key);
        self.begin_array();
        for v in values {
            self.element();
            self.string(v);
        }
        self.end_array();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(x: f64) -> String {
        let mut w = Writer::compact();
        w.f64(x);
        String::from_utf8(w.into_bytes()).expect("utf-8")
    }

    #[test]
    fn floats_print_as_serde_json_prints_them() {
        let named = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.25, "0.25"),
            (0.5, "0.5"),
            (1234.567, "1234.567"),
            (123456.789, "123456.789"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ];
        for (x, text) in named {
            assert_eq!(float(x), text, "{x:?}");
            assert_eq!(float(x), serde_json::to_string(&x).expect("json"), "{x:?}");
        }
        // Every exponent, the edges of the plain range, and random bit patterns.
        let mut specials = vec![
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1e-5,
            9.99999e-6,
            1e15,
            1e16,
            9_999_999_999_999_998.0,
            0.1 + 0.2,
        ];
        for e in -320..=308 {
            specials.push(format!("1e{e}").parse().expect("float"));
            specials.push(format!("-3.25e{e}").parse().expect("float"));
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            specials.push(f64::from_bits(seed));
            specials.push((seed % 10_000_000) as f64 / 1000.0);
        }
        for x in specials {
            let expected = serde_json::to_string(&x).expect("json");
            assert_eq!(float(x), expected, "{x:?} ({:#x})", x.to_bits());
        }
    }

    #[test]
    fn integers_and_strings() {
        let mut w = Writer::compact();
        w.begin_array();
        for n in [0i64, 7, -7, i64::MIN, i64::MAX] {
            w.element();
            w.i64(n);
        }
        w.element();
        w.u64(u64::MAX);
        w.element();
        w.string("a\"b\\c\n\u{1}é");
        w.end_array();
        let text = String::from_utf8(w.into_bytes()).expect("utf-8");
        let expected =
            serde_json::json!([0, 7, -7, i64::MIN, i64::MAX, u64::MAX, "a\"b\\c\n\u{1}é"]);
        assert_eq!(text, expected.to_string());
    }

    #[test]
    fn pretty_matches_serde_json() {
        let mut w = Writer::pretty();
        w.begin_array();
        w.element();
        w.begin_object();
        w.field_str("a", Some("x"));
        w.field_u64("b", None);
        w.key("c");
        w.begin_array();
        w.end_array();
        w.key("d");
        w.begin_object();
        w.end_object();
        w.field_strings("e", &["1".into(), "2".into()]);
        w.key("f");
        w.begin_object();
        w.field_bool("g", true);
        w.end_object();
        w.end_object();
        w.end_array();
        let expected = serde_json::json!([
            {"a": "x", "b": null, "c": [], "d": {}, "e": ["1", "2"], "f": {"g": true}}
        ]);
        let text = String::from_utf8(w.into_bytes()).expect("utf-8");
        assert_eq!(
            text,
            serde_json::to_string_pretty(&expected).expect("pretty")
        );
        let mut empty = Writer::pretty();
        empty.begin_array();
        empty.end_array();
        assert_eq!(empty.into_bytes(), b"[]");
    }

    #[test]
    fn every_byte_escapes_to_what_serde_json_writes() {
        // Every ASCII byte, alone and between others, plus U+FFFD and other
        // non-ASCII characters, which are written as they are.
        for b in 0u8..0x80 {
            let text = format!("a{}b", b as char);
            let mut out = b"\"".to_vec();
            escape_into(&mut out, text.as_bytes());
            out.push(b'"');
            let expected = serde_json::to_string(&text).expect("json");
            assert_eq!(String::from_utf8_lossy(&out), expected, "byte {b:#x}");
            assert_eq!(must_escape(b), line_needs_escape(&[b]));
            assert!(
                !out[1..out.len() - 1].iter().any(|&c| c < 0x20),
                "byte {b:#x}"
            );
        }
        let text = "caf\u{fffd} \u{1b}[31mred\u{1b}[0m \\ \" é 日本";
        let mut out = b"\"".to_vec();
        escape_into(&mut out, text.as_bytes());
        out.push(b'"');
        assert_eq!(serde_json::from_slice::<String>(&out).expect("json"), text);
        assert_eq!(
            String::from_utf8_lossy(&out),
            serde_json::to_string(text).expect("json")
        );
    }
}
