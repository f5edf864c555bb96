//! JSON with comments: `//` and `/* */` comments and trailing commas become
//! spaces, byte for byte, so the strict JSON parser that runs next reports a
//! syntax error at the same line and column as in the file.
//!
//! Pure; walks the bytes once, knowing strings (and their escapes) so a `//` in
//! `"http://x"` stays. An unterminated `/*` is reported at its start.

use super::ConfigError;

/// `text` with comments, trailing commas and a leading BOM blanked out.
pub fn strip(text: &str) -> Result<String, ConfigError> {
    let mut out = text.as_bytes().to_vec();
    let n = out.len();
    if out.starts_with(b"\xEF\xBB\xBF") {
        out[..3].fill(b' ');
    }
    // The last significant byte before here, to tell `[1,]` (a trailing comma)
    // from `[,]` (an error the parser must still see).
    let mut last: u8 = 0;
    // Position of a comma that may turn out to be trailing.
    let mut comma: Option<usize> = None;
    let mut i = 0;
    while i < n {
        match out[i] {
            b'"' => {
                i = skip_string(&out, i);
                last = b'"';
                comma = None;
                continue;
            }
            b'/' if out.get(i + 1) == Some(&b'/') => {
                while i < n && out[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
                continue;
            }
            b'/' if out.get(i + 1) == Some(&b'*') => {
                let start = i;
                let Some(len) = out[i + 2..].windows(2).position(|w| w == b"*/") else {
                    let (line, column) = line_column(&out, start);
                    return Err(ConfigError {
                        path: format!("line {line}, column {column}"),
                        problem: "invalid JSON: a /* comment is never closed with */".into(),
                    });
                };
                let end = i + 2 + len + 2;
                for b in &mut out[start..end] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
                i = end;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b',' => {
                // A comma right after `[`, `{`, `:` or another comma is not
                // trailing: leave it for the parser to report.
                comma = (!matches!(last, 0 | b'[' | b'{' | b',' | b':')).then_some(i);
                last = b',';
            }
            b @ (b']' | b'}') => {
                if let Some(at) = comma.take() {
                    out[at] = b' ';
                }
                last = b;
            }
            b => {
                last = b;
                comma = None;
            }
        }
        i += 1;
    }
    // Only whole comments (which end before ASCII bytes) and ASCII commas were
    // replaced, so the bytes are still UTF-8.
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// The index just after the string starting at `start` (a `"`), or the end.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// 1-based line and column (in bytes, as serde_json counts) of `at`.
fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    (line, at - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripped(text: &str) -> String {
        strip(text).expect("strips")
    }

    #[test]
    fn comments_become_spaces_of_the_same_length() {
        let text = "{ // note\n \"a\": /* x\ny */ 1 }";
        let out = stripped(text);
        assert_eq!(out.len(), text.len());
        assert_eq!(out, "{        \n \"a\":     \n     1 }");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["a"], 1);
    }

    #[test]
    fn strings_keep_their_slashes() {
        let text = r#"{"url": "http://x/*y*/", "q": "a\"//b"}"#;
        assert_eq!(stripped(text), text);
    }

    #[test]
    fn trailing_commas_go_other_commas_stay() {
        assert_eq!(stripped("[1, 2,]"), "[1, 2 ]");
        assert_eq!(stripped("{\"a\": 1,\n}"), "{\"a\": 1 \n}");
        assert_eq!(stripped("[1, /* c */ ]"), format!("[1{}]", " ".repeat(10)));
        assert_eq!(stripped("[1, // c\n]"), "[1      \n]");
        assert_eq!(
            stripped("[,]"),
            "[,]",
            "not trailing: the parser reports it"
        );
        assert_eq!(
            stripped("[1,,]"),
            "[1,,]",
            "not trailing: the parser reports it"
        );
        assert_eq!(stripped("{\"a\":,}"), "{\"a\":,}");
        assert_eq!(stripped("[\"x\",]"), "[\"x\" ]");
    }

    #[test]
    fn unterminated_block_comment_is_placed() {
        let e = strip("{\n  \"a\": 1 /* oops\n}").expect_err("unterminated");
        assert_eq!(e.path, "line 2, column 10");
        assert!(e.problem.contains("never closed"), "{}", e.problem);
    }

    #[test]
    fn non_ascii_in_comments_and_bom() {
        let out = stripped("\u{feff}{/* héllo → */\"a\": 1}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{out}"
        );
        assert_eq!(out.len(), "\u{feff}{/* héllo → */\"a\": 1}".len());
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for text in [
            "", "/", "/*", "*/", "\"", "\"\\", "//", ",", "]", "/*/", "\"\\\"",
        ] {
            let _ = strip(text);
        }
    }
}
