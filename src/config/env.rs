//! The environment a config adds: `env_file` files (Docker `--env-file` syntax)
//! and `${VAR}` / `${VAR:-default}` / `$$` in `environment` values.
//!
//! The parsers are pure: tend's environment comes in as a function, so tests
//! control it. [`read_env_files`] is the one function here that touches the
//! machine (it reads the files); the shell calls it at load and reload, and a
//! failure there fails that one service's start.

use std::io::Read;
use std::path::Path;

use super::ServiceSpec;

/// The largest env file read (a runaway file must not fill tend's memory).
pub const MAX_ENV_FILE: u64 = 1 << 20;

/// A lookup in tend's environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// tend's own environment (a non-UTF-8 value counts as unset).
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// Parse an env file: `KEY=VALUE` lines, `#` comment lines and blank lines
/// ignored, the value taken as is (an `=` in it included) except for one pair of
/// matching `'` or `"` around all of it, which is removed. A bare `KEY` takes
/// its value from `env` and is left out when unset there. Every bad line is
/// reported: `line 3: ...; line 7: ...`.
pub fn parse_env_file(text: &str, env: EnvLookup) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line.trim_end(), None),
        };
        if let Err(why) = check_key(key) {
            errors.push(format!("line {}: {why}", i + 1));
            continue;
        }
        match value {
            Some(value) if value.contains('\0') => {
                errors.push(format!("line {}: the value holds a NUL byte", i + 1));
            }
            Some(value) => pairs.push((key.to_string(), unquote(value).to_string())),
            None => pairs.extend(env(key).map(|v| (key.to_string(), v))),
        }
    }
    if errors.is_empty() {
        Ok(pairs)
    } else {
        Err(errors.join("; "))
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        Err("a variable name is missing before \"=\"".into())
    } else if key.chars().any(|c| c.is_whitespace()) {
        Err(format!("variable name {key:?} contains whitespace"))
    } else if key.contains('\0') {
        Err("the variable name holds a NUL byte".into())
    } else {
        Ok(())
    }
}

/// The value without one pair of matching quotes around all of it.
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2
            && let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q))
        {
            return inner;
        }
    }
    value
}

/// Read and parse every `env_file` of `spec`, in order (a later pair overrides
/// an earlier one of the same key when applied in order). An error names the
/// file: `env_file /srv/app.env: line 3: ...` or `... cannot read: ...`.
pub fn read_env_files(spec: &ServiceSpec) -> Result<Vec<(String, String)>, String> {
    read_env_files_with(spec, &process_env)
}

/// [`read_env_files`] with the environment bare `KEY` lines read from.
pub fn read_env_files_with(
    spec: &ServiceSpec,
    env: EnvLookup,
) -> Result<Vec<(String, String)>, String> {
    let mut all = Vec::new();
    for path in &spec.env_file {
        let text = read_small(path).map_err(|e| format!("env_file {}: {e}", path.display()))?;
        let pairs =
            parse_env_file(&text, env).map_err(|e| format!("env_file {}: {e}", path.display()))?;
        all.extend(pairs);
    }
    Ok(all)
}

/// A regular file of at most [`MAX_ENV_FILE`] bytes, as text. Not a FIFO or a
/// device: reading one could block tend's loop.
fn read_small(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("cannot read: not a regular file".into());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_ENV_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_ENV_FILE {
        return Err(format!("larger than {MAX_ENV_FILE} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
}

/// What [`interpolate`] made of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub value: String,
    /// Variables named without a default that are unset (they expand to "").
    pub unset: Vec<String>,
}

/// Expand `${VAR}` (unset: empty), `${VAR:-default}` (the default when VAR is
/// unset or empty) and `$$` (one `$`) in `text`. Any other `$` stays as it is.
/// A malformed `${` is an error naming its character position (from 1).
pub fn interpolate(text: &str, env: EnvLookup) -> Result<Expanded, String> {
    let mut value = String::with_capacity(text.len());
    let mut unset = Vec::new();
    let mut rest = text;
    let mut at = 0; // chars consumed before `rest`, for messages
    while let Some(i) = rest.find('$') {
        value.push_str(&rest[..i]);
        at += rest[..i].chars().count();
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            value.push('$');
            rest = tail;
            at += 2;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let place = at + 1;
            let Some(close) = body_start.find('}') else {
                return Err(format!(
                    "\"${{\" at character {place} is never closed with \"}}\""
                ));
            };
            let body = &body_start[..close];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if !is_var_name(name) {
                return Err(format!(
                    "\"${{{body}}}\" at character {place}: expected ${{NAME}} or ${{NAME:-default}} \
                     with NAME of A-Z a-z 0-9 _ not starting with a digit (write $$ for a literal $)"
                ));
            }
            match (
                env(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(v), _) => value.push_str(&v),
                (None, Some(d)) => value.push_str(d),
                (None, None) => unset.push(name.to_string()),
            }
            at += 2 + body.chars().count() + 1;
            rest = &body_start[close + 1..];
        } else {
            value.push('$');
            rest = after;
            at += 1;
        }
    }
    value.push_str(rest);
    Ok(Expanded { value, unset })
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(key: &str) -> Option<String> {
        match key {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            "PASS" => Some("p=$x".into()),
            _ => None,
        }
    }

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_env_file(text, &fake).expect("valid env file")
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn env_file_basics() {
        let text = "# comment\n\nA=1\n  B=two words  \nC=x=y=z\nD=\nE=\"quoted # not a comment\"\n\
                    F='single'\nG=\"mismatched'\nH=\"\n  # indented comment\r\nI=crlf\r\n";
        assert_eq!(
            pairs(text),
            [
                kv("A", "1"),
                kv("B", "two words  "),
                kv("C", "x=y=z"),
                kv("D", ""),
                kv("E", "quoted # not a comment"),
                kv("F", "single"),
                kv("G", "\"mismatched'"),
                kv("H", "\""),
                kv("I", "crlf"),
            ]
        );
    }

    #[test]
    fn bare_keys_come_from_the_environment() {
        assert_eq!(
            pairs("HOME\nNOPE\nEMPTY\n"),
            [kv("HOME", "/home/me"), kv("EMPTY", "")]
        );
        assert_eq!(pairs("A=\"\"\nB=''"), [kv("A", ""), kv("B", "")]);
    }

    #[test]
    fn bad_env_file_lines_are_all_reported() {
        let e = parse_env_file("=x\nOK=1\nA B=2\nC D\n", &fake).expect_err("bad");
        assert_eq!(
            e,
            "line 1: a variable name is missing before \"=\"; \
             line 3: variable name \"A B\" contains whitespace; \
             line 4: variable name \"C D\" contains whitespace"
        );
        assert!(parse_env_file("A=x\0y", &fake).is_err());
    }

    fn expand(text: &str) -> Result<Expanded, String> {
        interpolate(text, &fake)
    }

    fn value(text: &str) -> String {
        expand(text).expect("valid").value
    }

    #[test]
    fn interpolation() {
        assert_eq!(value("${HOME}/data"), "/home/me/data");
        assert_eq!(value("a${HOME}b${HOME}"), "a/home/meb/home/me");
        assert_eq!(value("${NOPE:-fallback}"), "fallback");
        assert_eq!(
            value("${EMPTY:-fallback}"),
            "fallback",
            ":- also covers empty"
        );
        assert_eq!(value("${EMPTY}"), "");
        assert_eq!(value("${HOME:-x}"), "/home/me");
        assert_eq!(value("${NOPE:-}"), "");
        assert_eq!(value("${NOPE:-a:-b}"), "a:-b");
        assert_eq!(value("cost: $$5"), "cost: $5");
        assert_eq!(value("$$$$"), "$$");
        assert_eq!(value("$$${HOME}"), "$/home/me");
        assert_eq!(value("$HOME and $ alone$"), "$HOME and $ alone$");
        assert_eq!(value("${PASS}"), "p=$x", "values are not expanded twice");
        assert_eq!(value("héllo ${HOME}"), "héllo /home/me");
        assert_eq!(value(""), "");
    }

    #[test]
    fn unset_variables_are_listed() {
        let e = expand("${NOPE}-${HOME}-${ALSO_NOPE}").expect("valid");
        assert_eq!(e.value, "-/home/me-");
        assert_eq!(e.unset, ["NOPE", "ALSO_NOPE"]);
        assert!(expand("${NOPE:-d}").expect("valid").unset.is_empty());
    }

    #[test]
    fn malformed_interpolation_is_placed() {
        let e = expand("abc${HOME").expect_err("unclosed");
        assert!(
            e.contains("at character 4") && e.contains("never closed"),
            "{e}"
        );
        let e = expand("é${}").expect_err("empty");
        assert!(e.contains("\"${}\" at character 2"), "{e}");
        for bad in [
            "${1A}", "${A B}", "${A-b}", "${A:b}", "${", "x${-}", "${A:=b}",
        ] {
            assert!(expand(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reading_files() {
        let dir = std::path::PathBuf::from(format!("/tmp/config-envfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let a = dir.join("a.env");
        let b = dir.join("b.env");
        std::fs::write(&a, "X=1\nY=2\n").expect("write");
        std::fs::write(&b, "X=3\n").expect("write");
        let mut spec = ServiceSpec::new("s", vec!["x".into()]);
        spec.env_file = vec![a.clone(), b.clone()];
        assert_eq!(
            read_env_files_with(&spec, &fake),
            Ok(vec![kv("X", "1"), kv("Y", "2"), kv("X", "3")])
        );
        spec.env_file = vec![dir.join("missing.env")];
        let e = read_env_files_with(&spec, &fake).expect_err("missing");
        assert!(e.contains("missing.env: cannot read"), "{e}");
        spec.env_file = vec![dir.clone()];
        assert!(read_env_files_with(&spec, &fake).is_err(), "a folder");
        std::fs::write(&b, "bad line\n").expect("write");
        spec.env_file = vec![b];
        let e = read_env_files_with(&spec, &fake).expect_err("bad");
        assert!(e.contains("b.env: line 1:"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
