//! The serde layer: JSON text → an ordered value tree that keeps every key.
//!
//! serde_json's own `Value` keeps only the last of duplicate keys (serde-rs/json#762),
//! so objects here are `Vec<(key, value)>`: the validator can then report duplicate
//! and unknown fields with their place.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ConfigError;

/// A JSON value with objects in file order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// A JSON number, as exact as it came.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Unsigned(n) => n as f64,
            Number::Signed(n) => n as f64,
            Number::Float(f) => f,
        }
    }

    /// The number if it is a whole number (`3` or `3.0`).
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Number::Unsigned(n) => i64::try_from(n).ok(),
            Number::Signed(n) => Some(n),
            Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            Number::Float(_) => None,
        }
    }
}

impl Value {
    /// What kind of value this is, for "expected X, got Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// A short rendering of the value for messages.
    pub fn show(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match n {
                Number::Unsigned(n) => n.to_string(),
                Number::Signed(n) => n.to_string(),
                Number::Float(f) => f.to_string(),
            },
            Value::String(s) => {
                let short: String = s.chars().take(40).collect();
                format!("{short:?}")
            }
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
        }
    }
}

/// Parse JSON text (comments and trailing commas allowed, see [`super::jsonc`]);
/// a syntax error is reported with its line and column in `text`.
pub fn parse(text: &str) -> Result<Value, ConfigError> {
    let text = super::jsonc::strip(text)?;
    serde_json::from_str(&text).map_err(syntax_error)
}

/// Like [`parse`], but the items of the top-level `services` array are only
/// checked for syntax, not kept (the array comes back empty): what a client
/// needs to find its tend (the top-level fields), at a small part of the
/// time and memory for a config of 10,000 services.
pub fn parse_top(text: &str) -> Result<Value, ConfigError> {
    let text = super::jsonc::strip(text)?;
    let mut de = serde_json::Deserializer::from_str(&text);
    Seed(Mode::Top)
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(syntax_error)
}

fn syntax_error(e: serde_json::Error) -> ConfigError {
    let message = e.to_string();
    // serde_json appends " at line L column C"; we put the place first.
    let problem = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    ConfigError {
        path: format!("line {}, column {}", e.line(), e.column()),
        problem: format!("invalid JSON: {problem}"),
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        Seed(Mode::Keep).deserialize(deserializer)
    }
}

/// What is kept of a value.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Everything.
    Keep,
    /// The document of [`parse_top`]: its `services` is read in `SkipItems`.
    Top,
    /// An array's items are checked for syntax only.
    SkipItems,
}

struct Seed(Mode);

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor(self.0))
    }
}

struct ValueVisitor(Mode);

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(Number::Signed(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(Number::Unsigned(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(Number::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        if self.0 == Mode::SkipItems {
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            return Ok(Value::Array(items));
        }
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let mode = if self.0 == Mode::Top && key == "services" {
                Mode::SkipItems
            } else {
                Mode::Keep
            };
            let value = map.next_value_seed(Seed(mode))?;
            entries.push((key, value));
        }
        Ok(Value::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicate_keys_in_order() {
        let v = parse(r#"{"a": 1, "b": [true, null], "a": "x"}"#).expect("valid");
        let Value::Object(entries) = v else {
            panic!("object")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "a"]);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse("{\n  \"a\": 1,\n  \"b\" 2\n}").expect_err("invalid");
        assert_eq!(e.path, "line 3, column 7");
        assert!(
            e.problem.starts_with("invalid JSON: expected `:`"),
            "{}",
            e.problem
        );
    }

    #[test]
    fn comments_and_trailing_commas_keep_error_places() {
        let text = "{\n  // a comment, with \"quotes\"\n  \"a\": [1, 2,], /* x */\n  \"b\" 2\n}";
        let e = parse(text).expect_err("invalid");
        assert_eq!(e.path, "line 4, column 7");
        let ok = parse("{\"a\": [1, 2,], /* x */ \"b\": {\"c\": 1,},}").expect("valid");
        let Value::Object(entries) = ok else {
            panic!("object")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(parse("-3"), Ok(Value::Number(Number::Signed(-3))));
        assert_eq!(parse("3"), Ok(Value::Number(Number::Unsigned(3))));
        assert_eq!(Number::Float(2.0).as_i64(), Some(2));
        assert_eq!(Number::Float(2.5).as_i64(), None);
    }
}
