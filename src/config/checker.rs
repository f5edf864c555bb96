//! The [`Checker`]: collects problems (and warnings) with their place while the
//! config is walked, and the checks of single values every field builds on
//! (objects with known keys, strings, numbers, durations, sizes, signals,
//! choices, argv, paths).
//!
//! Each check records what is wrong and returns `None`, so the caller keeps its
//! default and goes on: one bad field never hides the next.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::EnvLookup;
use super::raw::Value;
use super::units::{self, Signal};
use super::{ConfigError, suggest};

/// Fields that existed once, with what replaced them.
const REMOVED: &[(&str, &str)] = &[(
    "stderr_level",
    "stderr_level was removed: service output is never filtered by log_level; \
     stderr lines are marked as stderr in every log_format",
)];

/// What a config is checked against besides its text.
pub struct Inputs<'a> {
    /// The folder relative paths are resolved against (the config file's).
    pub base: Option<&'a Path>,
    /// The text of the hosts file (`/etc/hosts`), for probe host names.
    pub hosts: &'a str,
    /// tend's environment, for `${VAR}` in `environment`.
    pub env: EnvLookup<'a>,
}

/// Collects problems while the config is walked.
pub struct Checker<'a> {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
    pub inputs: &'a Inputs<'a>,
}

/// The fields of one JSON object, with its path.
pub struct Fields<'a> {
    path: String,
    entries: &'a [(String, Value)],
}

impl<'a> Fields<'a> {
    /// The first value of `key`, if present (and not null).
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| **v != Value::Null)
    }

    /// The path of `key` in this object, for messages.
    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// `prefix.key`, or `key` at the top level.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl<'a> Checker<'a> {
    pub fn new(inputs: &'a Inputs<'a>) -> Checker<'a> {
        Checker {
            errors: Vec::new(),
            warnings: Vec::new(),
            inputs,
        }
    }

    pub fn error(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        let path = path.into();
        self.errors.push(ConfigError {
            path: if path.is_empty() {
                "(top level)".into()
            } else {
                path
            },
            problem: problem.into(),
        });
    }

    pub fn warn(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.warnings.push(ConfigError {
            path: path.into(),
            problem: problem.into(),
        });
    }

    pub fn expected(&mut self, path: &str, what: &str, got: &Value) {
        self.error(path, format!("expected {what}, got {}", got.show()));
    }

    /// An object whose keys are all in `allowed`, each at most once. An unknown
    /// key gets the closest allowed one as a suggestion, or the list.
    pub fn object<'v>(
        &mut self,
        path: &str,
        value: &'v Value,
        allowed: &[&str],
    ) -> Option<Fields<'v>> {
        let Value::Object(entries) = value else {
            self.expected(
                if path.is_empty() { "(top level)" } else { path },
                "an object",
                value,
            );
            return None;
        };
        for (i, (key, _)) in entries.iter().enumerate() {
            if let Some((_, why)) = REMOVED.iter().find(|(k, _)| k == key) {
                self.error(join(path, key), *why);
            } else if !allowed.contains(&key.as_str()) {
                let problem = match suggest::closest(key, allowed) {
                    Some(c) => format!("unknown field {key:?}; did you mean {c:?}?"),
                    None => format!(
                        "unknown field {key:?}; expected one of {}",
                        allowed.join(", ")
                    ),
                };
                self.error(join(path, key), problem);
            } else if entries[..i].iter().any(|(k, _)| k == key) {
                self.error(join(path, key), "duplicate field");
            }
        }
        Some(Fields {
            path: path.to_string(),
            entries,
        })
    }

    pub fn string(&mut self, path: &str, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                self.expected(path, "a string", other);
                None
            }
        }
    }

    /// A string that can be a C string: no NUL byte.
    pub fn c_string(&mut self, path: &str, value: &Value) -> Option<String> {
        let s = self.string(path, value)?;
        if s.contains('\0') {
            self.error(path, "must not contain a NUL byte");
            return None;
        }
        Some(s)
    }

    pub fn boolean(&mut self, path: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.expected(path, "true or false", other);
                None
            }
        }
    }

    pub fn integer(&mut self, path: &str, value: &Value, min: i64, max: i64) -> Option<i64> {
        let n = match value {
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.expected(path, &format!("a whole number from {min} to {max}"), value);
                None
            }
        }
    }

    pub fn duration(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let parsed = match value {
            Value::Number(n) => units::seconds(n.as_f64()),
            Value::String(s) => units::parse_duration(s),
            _ => Err(String::new()),
        };
        parsed
            .map_err(|_| {
                self.expected(
                    path,
                    "a duration such as 10, \"250ms\", \"2s\", \"1m30s\" or \"1h\"",
                    value,
                )
            })
            .ok()
    }

    /// A duration above zero (an interval of 0 would spin the loop).
    pub fn positive_duration(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let d = self.duration(path, value)?;
        if d < Duration::from_millis(1) {
            self.error(path, "must be at least 1ms");
            return None;
        }
        Some(d)
    }

    pub fn size(&mut self, path: &str, value: &Value) -> Option<u64> {
        let parsed = match value {
            Value::Number(n) => n.as_i64().and_then(|n| u64::try_from(n).ok()).ok_or(()),
            Value::String(s) => units::parse_size(s).map_err(|_| ()),
            _ => Err(()),
        };
        parsed
            .map_err(|()| {
                self.expected(
                    path,
                    "a size such as 4096, \"512K\", \"64M\" or \"1G\"",
                    value,
                )
            })
            .ok()
    }

    pub fn signal(&mut self, path: &str, value: &Value) -> Option<Signal> {
        let parsed = match value {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(String::new)
                .and_then(Signal::from_number),
            Value::String(s) => Signal::parse(s),
            _ => Err(String::new()),
        };
        parsed
            .map_err(|_| self.expected(path, "a signal such as \"SIGTERM\", \"HUP\" or 15", value))
            .ok()
    }

    /// One of `choices`; a near miss gets a suggestion.
    pub fn choice(
        &mut self,
        path: &str,
        value: &Value,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        if let Value::String(s) = value {
            if let Some(c) = choices.iter().find(|c| **c == s.as_str()) {
                return Some(c);
            }
            let hint = suggest::hint(s, choices);
            let list = choices.join(", ");
            self.error(
                path,
                format!("expected one of {list}, got {}{hint}", value.show()),
            );
            return None;
        }
        let list = choices.join(", ");
        self.expected(path, &format!("one of {list}"), value);
        None
    }

    /// An argv: a non-empty array of strings without NUL bytes, the first not empty.
    pub fn argv(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
        let Value::Array(items) = value else {
            self.expected(
                path,
                "an array of strings such as [\"/bin/app\", \"--flag\"]",
                value,
            );
            return None;
        };
        if items.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        let mut argv = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.c_string(&format!("{path}[{i}]"), item) {
                Some(s) => argv.push(s),
                None => ok = false,
            }
        }
        if argv.first().is_some_and(|a| a.is_empty()) && ok {
            self.error(format!("{path}[0]"), "must not be empty");
            return None;
        }
        ok.then_some(argv)
    }

    /// A path: a non-empty string without NUL, relative ones resolved against
    /// `base` (the config file's folder, or a discovered service's).
    pub fn path(&mut self, path: &str, value: &Value, base: Option<&Path>) -> Option<PathBuf> {
        let s = self.c_string(path, value)?;
        if s.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        Some(resolve(base, &s))
    }
}

/// `path` against `base` when relative (and `base` is a real folder).
pub fn resolve(base: Option<&Path>, path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    match base {
        Some(base) if path.is_relative() && !base.as_os_str().is_empty() => base.join(path),
        _ => path,
    }
}
