//! Compact JSON → the indented form `json::Writer::pretty` writes (serde_json's
//! `to_string_pretty`: two spaces, `"key": value`, `[]` and `{}` when empty),
//! without building values.
//!
//! Why: `tend status --json` of 10,000 services gets a 4 MB reply. Parsing it
//! into 10,000 typed statuses (some 300,000 small allocations) and writing
//! them out again took the client over 100 ms; re-indenting the bytes takes a
//! few. [`reindent`] also hands its caller each scalar member of each object
//! as it passes, so the client can judge the services' health in the same
//! pass.
//!
//! What is checked: one value, brackets balanced and matching, keys are
//! strings followed by `:`, strings closed, commas between items, scalars made
//! of the bytes a number, `true`, `false` or `null` may hold. What is not:
//! the scalars' exact grammar and the escapes inside strings, which are
//! copied as they are (the input comes from tend's own writer; a corrupt
//! reply is still refused by its structure). Depth is bounded by
//! [`MAX_DEPTH`], so hostile input costs at most its own length.

/// Deeper nesting than this is refused (tend's replies nest four deep).
pub const MAX_DEPTH: usize = 64;

/// What [`reindent`] reports as it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// An object or array begins at `depth` (the outermost value is depth 1).
    Open { depth: usize },
    /// A member of an object at `depth` whose value is a string (with its
    /// quotes and escapes as written) or another scalar.
    Member {
        depth: usize,
        key: &'a [u8],
        value: &'a [u8],
    },
    /// The object or array that began at `depth` ends.
    Close { depth: usize },
}

/// Appends `input` (one JSON value, compact or not) to `out` indented, calling
/// `on` for each [`Event`]. On an error `out` holds a prefix of the result.
pub fn reindent<'a>(
    input: &'a [u8],
    out: &mut Vec<u8>,
    mut on: impl FnMut(Event<'a>),
) -> Result<(), String> {
    let mut stack: Vec<u8> = Vec::new();
    let mut key: Option<&'a [u8]> = None;
    // What the next token must be.
    let mut want = Want::Value;
    let mut i = skip_space(input, 0);
    while i < input.len() {
        let b = input.get(i).copied().unwrap_or(b' ');
        match (want, b) {
            (Want::Value, b'{' | b'[') => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} at byte {i}"));
                }
                stack.push(b);
                key = None;
                on(Event::Open { depth: stack.len() });
                out.push(b);
                i = skip_space(input, i + 1);
                let close = if b == b'{' { b'}' } else { b']' };
                if input.get(i) == Some(&close) {
                    out.push(close);
                    on(Event::Close { depth: stack.len() });
                    stack.pop();
                    i += 1;
                    want = after_value(&stack);
                } else {
                    newline(out, stack.len());
                    want = if b == b'{' { Want::Key } else { Want::Value };
                }
            }
            (Want::CommaOrClose, b'}' | b']') => {
                let open = if b == b'}' { b'{' } else { b'[' };
                if stack.last() != Some(&open) {
                    return Err(format!("unexpected `{}` at byte {i}", b as char));
                }
                newline(out, stack.len() - 1);
                out.push(b);
                on(Event::Close { depth: stack.len() });
                stack.pop();
                want = after_value(&stack);
                i += 1;
            }
            (Want::CommaOrClose, b',') => {
                out.push(b',');
                newline(out, stack.len());
                want = if stack.last() == Some(&b'{') {
                    Want::Key
                } else {
                    Want::Value
                };
                i += 1;
            }
            (Want::Key, b'"') => {
                let end = string_end(input, i)?;
                let text = input.get(i..end).unwrap_or_default();
                out.extend_from_slice(text);
                key = text.get(1..text.len() - 1);
                i = skip_space(input, end);
                if input.get(i) != Some(&b':') {
                    return Err(format!("expected `:` at byte {i}"));
                }
                out.extend_from_slice(b": ");
                want = Want::Value;
                i += 1;
            }
            (Want::Value, _) => {
                let end = if b == b'"' {
                    string_end(input, i)?
                } else {
                    scalar_end(input, i)
                };
                if end == i {
                    return Err(format!("unexpected `{}` at byte {i}", b as char));
                }
                let value = input.get(i..end).unwrap_or_default();
                out.extend_from_slice(value);
                if let Some(key) = key.take() {
                    let depth = stack.len();
                    on(Event::Member { depth, key, value });
                }
                want = after_value(&stack);
                i = end;
            }
            (Want::Key, _) | (Want::CommaOrClose, _) | (Want::End, _) => {
                return Err(format!("unexpected `{}` at byte {i}", b as char));
            }
        }
        i = skip_space(input, i);
    }
    if want == Want::End {
        Ok(())
    } else {
        Err("the JSON text ends early".into())
    }
}

/// One member of an object: its key (without quotes) and its value as written.
pub type Member<'a> = (&'a [u8], &'a [u8]);

/// The members of the object `input` holds, as (key without its quotes, value
/// as written), in order, without looking into the values beyond finding
/// where they end: how the client takes a reply apart before re-indenting one
/// of its members.
pub fn members(input: &[u8]) -> Result<Vec<Member<'_>>, String> {
    let mut found = Vec::new();
    let mut i = skip_space(input, 0);
    if input.get(i) != Some(&b'{') {
        return Err("expected a JSON object".into());
    }
    i = skip_space(input, i + 1);
    if input.get(i) == Some(&b'}') {
        return end_of_input(input, i + 1).map(|()| found);
    }
    loop {
        if input.get(i) != Some(&b'"') {
            return Err(format!("expected a key at byte {i}"));
        }
        let end = string_end(input, i)?;
        let key = input.get(i + 1..end - 1).unwrap_or_default();
        i = skip_space(input, end);
        if input.get(i) != Some(&b':') {
            return Err(format!("expected `:` at byte {i}"));
        }
        let start = skip_space(input, i + 1);
        let end = value_end(input, start)?;
        found.push((key, input.get(start..end).unwrap_or_default()));
        i = skip_space(input, end);
        match input.get(i) {
            Some(b',') => i = skip_space(input, i + 1),
            Some(b'}') => return end_of_input(input, i + 1).map(|()| found),
            _ => return Err(format!("expected `,` or `}}` at byte {i}")),
        }
    }
}

fn end_of_input(input: &[u8], i: usize) -> Result<(), String> {
    let i = skip_space(input, i);
    if i == input.len() {
        Ok(())
    } else {
        Err(format!("unexpected bytes after the object at byte {i}"))
    }
}

/// The index after the value that starts at `start`: a scalar, a string, or
/// everything up to the bracket that closes the one at `start` (skipping
/// strings; [`reindent`] checks the structure inside).
fn value_end(input: &[u8], start: usize) -> Result<usize, String> {
    match input.get(start) {
        Some(b'"') => string_end(input, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = input.get(i) {
                match b {
                    b'"' => {
                        i = string_end(input, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(format!("the value at byte {start} is not closed"))
        }
        _ => match scalar_end(input, start) {
            end if end > start => Ok(end),
            _ => Err(format!("expected a value at byte {start}")),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Value,
    Key,
    CommaOrClose,
    End,
}

fn after_value(stack: &[u8]) -> Want {
    if stack.is_empty() {
        Want::End
    } else {
        Want::CommaOrClose
    }
}

fn newline(out: &mut Vec<u8>, depth: usize) {
    const SPACES: &[u8; 2 * MAX_DEPTH] = &[b' '; 2 * MAX_DEPTH];
    out.push(b'\n');
    out.extend_from_slice(SPACES.get(..2 * depth).unwrap_or(SPACES));
}

fn skip_space(input: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = input.get(i) {
        i += 1;
    }
    i
}

/// The index after the string that opens at `start` (its closing quote).
fn string_end(input: &[u8], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    loop {
        match input.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
            None => return Err(format!("the string at byte {start} is not closed")),
        }
    }
}

/// The index after a number, `true`, `false` or `null` that starts at `start`.
fn scalar_end(input: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(b'0'..=b'9' | b'a'..=b'z' | b'-' | b'+' | b'.' | b'E') = input.get(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(input: &str) -> Result<String, String> {
        let mut out = Vec::new();
        reindent(input.as_bytes(), &mut out, |_| {})?;
        Ok(String::from_utf8(out).expect("utf-8 in, utf-8 out"))
    }

    fn serde_pretty(input: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(input).expect("valid");
        serde_json::to_string_pretty(&value).expect("pretty")
    }

    #[test]
    fn matches_serde_json_pretty() {
        for input in [
            r#"{"a":1,"b":[true,null,{"c":"x,y]}"}],"d":{},"e":[],"f":-1500.0,"g":1e-7}"#,
            r#"[]"#,
            r#"{}"#,
            r#""just a string \" with an escape""#,
            r#"42"#,
            r#"[[[]],[{}],{"k":[1,2,3]}]"#,
            r#"{"s":"\\","t":"{[,:]}"}"#,
            " { \"a\" : [ 1 , 2 ] , \"b\" : { } } ",
        ] {
            assert_eq!(
                pretty(input).as_deref(),
                Ok(serde_pretty(input).as_str()),
                "{input}"
            );
        }
    }

    #[test]
    fn hands_over_scalar_members_with_their_depth() {
        let input = br#"[{"name":"a","ready":true,"probe":{"ok":false}},{"name":"b"}]"#;
        let mut events = Vec::new();
        let mut out = Vec::new();
        reindent(input, &mut out, |e| events.push(e)).expect("valid");
        let members: Vec<(usize, &[u8], &[u8])> = events
            .iter()
            .filter_map(|e| match *e {
                Event::Member { depth, key, value } => Some((depth, key, value)),
                _ => None,
            })
            .collect();
        assert_eq!(
            members,
            [
                (2, &b"name"[..], &br#""a""#[..]),
                (2, b"ready", b"true"),
                (3, b"ok", b"false"),
                (2, b"name", br#""b""#),
            ]
        );
        let opens = events
            .iter()
            .filter(|e| matches!(e, Event::Open { depth: 2 }))
            .count();
        let closes = events
            .iter()
            .filter(|e| matches!(e, Event::Close { depth: 2 }))
            .count();
        assert_eq!((opens, closes), (2, 2));
    }

    #[test]
    fn refuses_broken_structure() {
        for bad in [
            "",
            "[",
            "[1,]",
            "{\"a\"}",
            "{\"a\":}",
            "{1:2}",
            "[1 2]",
            "[1]]",
            "[}",
            "{]",
            "\"open",
            "[1],",
            "{\"a\":1,}",
            "[,1]",
            "nul!",
            "{\"a\":1 \"b\":2}",
        ] {
            assert!(pretty(bad).is_err(), "{bad:?} accepted");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(pretty(&deep).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(pretty(&ok).is_ok());
    }

    #[test]
    fn members_are_found_without_parsing_their_values() {
        let input = br#" {"ok": true, "services": [{"a": "]"}, []], "s": "x\"}" , "n": null} "#;
        let got = members(input).expect("valid");
        let want: [(&[u8], &[u8]); 4] = [
            (b"ok", b"true"),
            (b"services", br#"[{"a": "]"}, []]"#),
            (b"s", br#""x\"}""#),
            (b"n", b"null"),
        ];
        assert_eq!(got, want);
        assert_eq!(members(b"{}"), Ok(Vec::new()));
        for bad in [
            &b"[1]"[..],
            b"{",
            b"{\"a\"}",
            b"{\"a\":[}",
            b"{\"a\":1} x",
            b"{\"a\":1,}",
            b"{\"a\":}",
        ] {
            assert!(members(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// Random JSON documents as serde_json writes them compactly: the result
    /// is always serde_json's pretty form; and every mutation of them is
    /// either refused or re-indented without a panic.
    #[test]
    fn fuzz_against_serde_json() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        fn value(next: &mut dyn FnMut() -> u64, depth: u32) -> serde_json::Value {
            use serde_json::Value;
            match next() % if depth > 4 { 5 } else { 7 } {
                0 => Value::Null,
                1 => Value::Bool(next().is_multiple_of(2)),
                2 => Value::from(next() as i64 >> (next() % 60)),
                3 => Value::from((next() % 100_000) as f64 / 7.0),
                4 => {
                    let chars = ["a", "\"", "\\", "\n", "é", "{", "]", ",", ":", "\u{1}"];
                    let n = next() % 6;
                    Value::from(
                        (0..n)
                            .map(|_| chars[(next() % 10) as usize])
                            .collect::<String>(),
                    )
                }
                5 => Value::Array((0..next() % 4).map(|_| value(next, depth + 1)).collect()),
                _ => Value::Object(
                    (0..next() % 4)
                        .map(|k| (format!("k{k}"), value(next, depth + 1)))
                        .collect(),
                ),
            }
        }
        for _ in 0..3_000 {
            let v = value(&mut next, 0);
            let compact = serde_json::to_string(&v).expect("compact");
            let want = serde_json::to_string_pretty(&v).expect("pretty");
            assert_eq!(pretty(&compact).as_deref(), Ok(want.as_str()), "{compact}");
            let mut bytes = compact.into_bytes();
            for _ in 0..1 + next() % 3 {
                if bytes.is_empty() {
                    break;
                }
                let at = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = b"{}[],:\"\\ 1a"[(next() % 11) as usize],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            let mut out = Vec::new();
            let _ = reindent(&bytes, &mut out, |_| {});
            let _ = members(&bytes);
        }
    }
}
