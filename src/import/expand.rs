//! supervisord's `%(name)s` expansions: Python's `text % {name: value}`.
//!
//! Owns: finding `%%` and `%(name)<spec>` in a value and formatting a string or a
//! number by `<spec>` (flags, width, precision, conversion) the way Python does
//! for the conversions supervisord configs use (`s`, `d`, `i`, `u`, `x`, `X`, `o`).
//! Must not: know what the names mean; the caller's `lookup` decides (see
//! [`super::supervisord`]).
//!
//! supervisord expands every option it reads this way, so a literal `%` must be
//! written `%%`; a lone `%` is a format error there, and so it is here.

/// What an expansion name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
}

/// The part after `%(name)`: `[flags][width][.precision][hlL]conversion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub flags: String,
    pub width: Option<usize>,
    pub precision: Option<usize>,
    pub conversion: char,
}

impl Spec {
    /// `%(name)s` with nothing else: the value as it is.
    pub fn is_plain(&self) -> bool {
        self.conversion == 's'
            && self.flags.is_empty()
            && self.width.is_none()
            && self.precision.is_none()
    }
}

/// Widths and precisions above this are refused: nobody pads a path to a
/// megabyte, and a fuzzed input must not make us try.
const MAX_WIDTH: usize = 1024;

/// Expand `text`, asking `lookup` for each `%(name)spec`: it returns the text to
/// put in its place, or a message saying why the name cannot be expanded.
pub fn expand(
    text: &str,
    lookup: &mut dyn FnMut(&str, &Spec) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
            continue;
        }
        let Some(inner) = after.strip_prefix('(') else {
            return Err(format!(
                "a lone % at {:?} (write %% for a literal %, or %(name)s)",
                excerpt(&rest[at..])
            ));
        };
        let (name, tail) = mapping_key(inner).ok_or_else(|| {
            format!(
                "incomplete format key at {:?} (expected %(name)s)",
                excerpt(&rest[at..])
            )
        })?;
        let (spec, tail) =
            parse_spec(tail).map_err(|e| format!("{e} in {:?}", excerpt(&rest[at..])))?;
        out.push_str(&lookup(name, &spec)?);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// At most 30 characters of `text`, for messages.
fn excerpt(text: &str) -> String {
    text.chars().take(30).collect()
}

/// The key up to the `)` that closes the opening `(`: Python counts nested parens.
fn mapping_key(inner: &str) -> Option<(&str, &str)> {
    let mut depth = 1usize;
    for (i, ch) in inner.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&inner[..i], &inner[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_spec(text: &str) -> Result<(Spec, &str), String> {
    let mut chars = text.char_indices().peekable();
    let mut flags = String::new();
    while let Some(&(_, ch)) = chars.peek() {
        if !"-+ #0".contains(ch) {
            break;
        }
        flags.push(ch);
        chars.next();
    }
    let number = |chars: &mut std::iter::Peekable<std::str::CharIndices>| {
        let mut n: Option<usize> = None;
        while let Some(&(_, ch)) = chars.peek() {
            let Some(d) = ch.to_digit(10) else { break };
            let v = n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize);
            n = Some(v);
            chars.next();
        }
        match n {
            Some(v) if v > MAX_WIDTH => Err(format!("width or precision {v} is too large")),
            other => Ok(other),
        }
    };
    if chars.peek().is_some_and(|&(_, c)| c == '*') {
        return Err("* width needs a tuple, not names".into());
    }
    let width = number(&mut chars)?;
    let mut precision = None;
    if chars.peek().is_some_and(|&(_, c)| c == '.') {
        chars.next();
        precision = Some(number(&mut chars)?.unwrap_or(0));
    }
    if chars.peek().is_some_and(|&(_, c)| "hlL".contains(c)) {
        chars.next();
    }
    let Some((i, conversion)) = chars.next() else {
        return Err("incomplete format".into());
    };
    let spec = Spec {
        flags,
        width,
        precision,
        conversion,
    };
    Ok((spec, &text[i + conversion.len_utf8()..]))
}

/// Format `value` by `spec` as Python's `%` operator does.
pub fn format(value: &Value, spec: &Spec) -> Result<String, String> {
    let left = spec.flags.contains('-');
    match (spec.conversion, value) {
        ('s', _) => {
            let text = match value {
                Value::Str(s) => s.clone(),
                Value::Int(n) => n.to_string(),
            };
            let text: String = match spec.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text,
            };
            Ok(pad(String::new(), text, spec.width, left, false))
        }
        ('d' | 'i' | 'u' | 'x' | 'X' | 'o', Value::Int(n)) => {
            let magnitude = n.unsigned_abs();
            let mut digits = match spec.conversion {
                'x' => format!("{magnitude:x}"),
                'X' => format!("{magnitude:X}"),
                'o' => format!("{magnitude:o}"),
                _ => magnitude.to_string(),
            };
            if let Some(p) = spec.precision {
                while digits.len() < p {
                    digits.insert(0, '0');
                }
            }
            let mut sign = if *n < 0 {
                "-".to_string()
            } else if spec.flags.contains('+') {
                "+".to_string()
            } else if spec.flags.contains(' ') {
                " ".to_string()
            } else {
                String::new()
            };
            if spec.flags.contains('#') {
                sign.push_str(match spec.conversion {
                    'x' => "0x",
                    'X' => "0X",
                    'o' => "0o",
                    _ => "",
                });
            }
            let zero = spec.flags.contains('0') && !left;
            Ok(pad(sign, digits, spec.width, left, zero))
        }
        ('d' | 'i' | 'u' | 'x' | 'X' | 'o', Value::Str(_)) => Err(format!(
            "%{} needs a number, and this name is a string",
            spec.conversion
        )),
        (other, _) => Err(format!(
            "unsupported format character {other:?} (use s or d)"
        )),
    }
}

/// `prefix` (a sign) and `body` padded to `width`: spaces on the left, on the
/// right (`-`), or zeros between sign and digits (`0`).
fn pad(prefix: String, body: String, width: Option<usize>, left: bool, zero: bool) -> String {
    let len = prefix.chars().count() + body.chars().count();
    let fill = width.unwrap_or(0).saturating_sub(len);
    if left {
        format!("{prefix}{body}{}", " ".repeat(fill))
    } else if zero {
        format!("{prefix}{}{body}", "0".repeat(fill))
    } else {
        format!("{}{prefix}{body}", " ".repeat(fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_with(text: &str) -> Result<String, String> {
        expand(text, &mut |name, spec| {
            let value = match name {
                "program_name" => Value::Str("web".into()),
                "here" => Value::Str("/etc/supervisor".into()),
                "process_num" => Value::Int(3),
                "neg" => Value::Int(-7),
                "a(b)" => Value::Str("nested".into()),
                other => return Err(format!("unknown name {other}")),
            };
            format(&value, spec)
        })
    }

    #[test]
    fn python_formatting() {
        // Each expected value is what Python 3 prints for the same format.
        let cases = [
            ("%(program_name)s", "web"),
            ("%(here)s/conf.d", "/etc/supervisor/conf.d"),
            ("%(program_name)s_%(process_num)02d", "web_03"),
            ("%(process_num)d", "3"),
            ("%(process_num)s", "3"),
            ("%(process_num)5d|", "    3|"),
            ("%(process_num)-5d|", "3    |"),
            ("%(process_num)+d", "+3"),
            ("%(process_num).3d", "003"),
            ("%(neg)04d", "-007"),
            ("%(process_num)x %(process_num)#o", "3 0o3"),
            ("%(program_name)5s|%(program_name)-5s|", "  web|web  |"),
            ("%(program_name).2s", "we"),
            ("%(process_num)ld", "3"),
            ("100%% done", "100% done"),
            ("%(a(b))s", "nested"),
            ("no expansions", "no expansions"),
            ("", ""),
        ];
        for (text, want) in cases {
            assert_eq!(expand_with(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn format_errors_are_errors() {
        for text in [
            "date +%s",
            "50%",
            "%(program_name",
            "%(program_name)",
            "%(program_name)d",
            "%(program_name)q",
            "%(unknown)s",
            "%(process_num)*d",
            "%(process_num)99999999999999999999d",
        ] {
            assert!(expand_with(text).is_err(), "{text}");
        }
    }

    #[test]
    fn plain_spec() {
        let mut plain = Vec::new();
        expand("%(a)s %(b)5s %(c)d", &mut |_, spec| {
            plain.push(spec.is_plain());
            Ok(String::new())
        })
        .unwrap();
        assert_eq!(plain, [true, false, false]);
    }
}
