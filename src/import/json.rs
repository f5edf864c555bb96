//! A JSON tree that keeps key order, and its pretty printer.
//!
//! Owns: the output text of `tend import`. serde_json's `Value` sorts object keys
//! (its `preserve_order` feature would need another crate), and a config whose
//! services start with `"command"` and end with `"name"` is hard to read; so the
//! importer builds this tree in the order SPEC §2 lists the fields, prints it, and
//! converts it to a `serde_json::Value` for callers.
//! Must not: parse JSON (the config loader does that).

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

/// A container printed on one line must fit in this many columns.
const WIDTH: usize = 88;

impl Json {
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(n) => Value::from(*n),
            Json::Str(s) => Value::String(s.clone()),
            Json::Arr(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Obj(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// Two-space indented JSON, ending with a newline. Arrays and objects of plain
    /// values (and arrays of such objects) stay on one line when they fit.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0, 0);
        out.push('\n');
        out
    }

    /// Write at `indent`; `column` is where the value starts on its line.
    fn write(&self, out: &mut String, indent: usize, column: usize) {
        if self.is_flat() {
            let line = self.inline();
            if column + line.len() <= WIDTH {
                out.push_str(&line);
                return;
            }
        }
        let pad = "  ".repeat(indent + 1);
        match self {
            Json::Arr(items) if !items.is_empty() => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push('\n');
                    out.push_str(&pad);
                    item.write(out, indent + 1, pad.len());
                    if i + 1 < items.len() {
                        out.push(',');
                    }
                }
                let _ = write!(out, "\n{}]", "  ".repeat(indent));
            }
            Json::Obj(entries) if !entries.is_empty() => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    let key = quote(key);
                    let _ = write!(out, "\n{pad}{key}: ");
                    value.write(out, indent + 1, pad.len() + key.len() + 2);
                    if i + 1 < entries.len() {
                        out.push(',');
                    }
                }
                let _ = write!(out, "\n{}}}", "  ".repeat(indent));
            }
            _ => out.push_str(&self.inline()),
        }
    }

    /// Scalars, and containers of scalars (an array may also hold such objects).
    fn is_flat(&self) -> bool {
        match self {
            Json::Arr(items) => items.iter().all(|i| match i {
                Json::Obj(_) => i.is_flat(),
                other => other.is_scalar(),
            }),
            Json::Obj(entries) => entries.iter().all(|(_, v)| v.is_scalar()),
            _ => true,
        }
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Json::Arr(_) | Json::Obj(_))
    }

    fn inline(&self) -> String {
        match self {
            Json::Bool(b) => b.to_string(),
            Json::Int(n) => n.to_string(),
            Json::Str(s) => quote(s),
            Json::Arr(items) => {
                let parts: Vec<String> = items.iter().map(Json::inline).collect();
                format!("[{}]", parts.join(", "))
            }
            Json::Obj(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", quote(k), v.inline()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
        }
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(entries: Vec<(&str, Json)>) -> Json {
        Json::Obj(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    #[test]
    fn keeps_order_and_folds_short_flat_containers() {
        let tree = obj(vec![(
            "services",
            Json::Arr(vec![obj(vec![
                ("name", Json::str("web")),
                (
                    "command",
                    Json::Arr(vec![Json::str("/bin/sh"), Json::str("-c")]),
                ),
                ("environment", obj(vec![("PORT", Json::str("5000"))])),
                ("enabled", Json::Bool(false)),
                ("max_retries", Json::Int(3)),
                ("empty", Json::Arr(vec![])),
            ])]),
        )]);
        let want = r#"{
  "services": [
    {
      "name": "web",
      "command": ["/bin/sh", "-c"],
      "environment": {"PORT": "5000"},
      "enabled": false,
      "max_retries": 3,
      "empty": []
    }
  ]
}
"#;
        assert_eq!(tree.pretty(), want);
        let parsed: serde_json::Value = serde_json::from_str(&tree.pretty()).unwrap();
        assert_eq!(parsed, tree.to_value());
    }

    #[test]
    fn long_containers_break_and_strings_escape() {
        let long: Vec<Json> = (0..30).map(|i| Json::str(format!("arg{i}"))).collect();
        let tree = obj(vec![
            ("command", Json::Arr(long)),
            ("s", Json::str("q\"b\\n\n\t\u{1}é")),
        ]);
        let text = tree.pretty();
        assert!(text.contains("\n    \"arg0\",\n"), "{text}");
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, tree.to_value());
    }
}
