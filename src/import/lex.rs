//! The two ways supervisord cuts a value into words, and shell quoting for output.
//!
//! Owns: [`split_command`] (Python's `shlex.split`, POSIX mode: how supervisord turns
//! `command=` into argv, without any shell), [`env_pairs`] (supervisord's
//! `dict_of_key_value_pairs`: a non-POSIX `shlex` over `KEY="val",KEY2=val2`), and
//! [`sh_quote`] for the `/bin/sh -c` scripts the importer writes.
//! Must not: expand anything; `%(...)s` is gone before these run.

/// Python's `shlex.split(text)`: whitespace separates words; `'...'` is literal;
/// in `"..."` a backslash escapes only `"` and `\`; outside quotes it escapes any
/// character. No comments, no variables, no operators: `>` or `|` are words.
pub fn split_command(text: &str) -> Result<Vec<String>, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Space,
        Word,
        Single,
        Double,
    }
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Space;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match state {
            State::Space | State::Word => {
                if is_space(c) {
                    if state == State::Word {
                        words.push(std::mem::take(&mut word));
                    }
                    state = State::Space;
                    continue;
                }
                state = State::Word;
                match c {
                    '\'' => state = State::Single,
                    '"' => state = State::Double,
                    '\\' => word.push(chars.next().ok_or("No escaped character")?),
                    _ => word.push(c),
                }
            }
            State::Single => match c {
                '\'' => state = State::Word,
                _ => word.push(c),
            },
            State::Double => match c {
                '"' => state = State::Word,
                '\\' => {
                    let next = chars.next().ok_or("No escaped character")?;
                    if next != '"' && next != '\\' {
                        word.push('\\');
                    }
                    word.push(next);
                }
                _ => word.push(c),
            },
        }
    }
    match state {
        State::Single | State::Double => Err("No closing quotation".into()),
        State::Word => {
            words.push(word);
            Ok(words)
        }
        State::Space => Ok(words),
    }
}

/// Characters of a word for Python's non-POSIX `shlex`, plus the ones supervisord
/// adds (`/.+-():`), plus the two private-use characters the importer uses to mark
/// an `%(ENV_X)s` it keeps for later (see `supervisord::Refs`).
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "_/.+-():\u{e000}\u{e001}".contains(c)
        || "ßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ".contains(c)
}

/// Python's non-POSIX `shlex` tokens: words, quoted strings (quotes kept), and
/// any other character alone; `#` starts a comment to the end of the line.
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let skip_line = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        for c in chars.by_ref() {
            if c == '\n' {
                break;
            }
        }
    };
    while let Some(c) = chars.next() {
        if is_space(c) {
            continue;
        }
        if c == '#' {
            skip_line(&mut chars);
        } else if c == '"' || c == '\'' {
            let mut token = String::from(c);
            loop {
                let next = chars.next().ok_or("No closing quotation")?;
                token.push(next);
                if next == c {
                    break;
                }
            }
            out.push(token);
        } else if is_word_char(c) {
            let mut token = String::from(c);
            while let Some(&next) = chars.peek() {
                if next == '#' {
                    // Non-POSIX shlex drops the rest of the line and goes on
                    // with the same word.
                    skip_line(&mut chars);
                } else if is_word_char(next) || next == '"' || next == '\'' {
                    token.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(token);
        } else {
            out.push(c.to_string());
        }
    }
    Ok(out)
}

/// One `KEY=value` pair of an `environment=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: String,
    /// The token after the pair where supervisord expects a comma, when it is
    /// something else: supervisord skips it without a word (`A=x y` sets `A=x`).
    pub skipped: Option<String>,
}

/// supervisord's `dict_of_key_value_pairs`: tokens in threes (`KEY`, `=`, value),
/// the fourth skipped as the separator, quotes stripped from the value's ends.
pub fn env_pairs(text: &str) -> Result<Vec<Pair>, String> {
    let tokens = tokens(text)?;
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (Some(key), Some(eq), Some(value)) =
            (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2))
        else {
            return Err(format!(
                "unexpected end of KEY=value pairs after {:?}",
                tokens[i..].join(" ")
            ));
        };
        if eq != "=" {
            return Err(format!("expected = after {key:?}, got {eq:?}"));
        }
        let skipped = tokens.get(i + 3).filter(|t| *t != ",").cloned();
        pairs.push(Pair {
            key: key.clone(),
            value: value.trim_matches(['\'', '"']).to_string(),
            skipped,
        });
        i += 4;
    }
    Ok(pairs)
}

/// `word` as one `/bin/sh` word: bare when it is plainly safe, else single-quoted.
pub fn sh_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        split_command(text).unwrap()
    }

    #[test]
    fn shlex_split_posix() {
        // Expected values are what Python 3's shlex.split returns.
        assert_eq!(split("/bin/cat"), ["/bin/cat"]);
        assert_eq!(split("  a   b\tc\n d "), ["a", "b", "c", "d"]);
        assert_eq!(split("a 'b c' \"d e\""), ["a", "b c", "d e"]);
        assert_eq!(split("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(split("'' \"\""), ["", ""]);
        assert_eq!(
            split(r#""a\"b" "c\\d" "e\$f" 'g\h'"#),
            ["a\"b", "c\\d", "e\\$f", "g\\h"]
        );
        assert_eq!(split(r"a\ b \'c"), ["a b", "'c"]);
        assert_eq!(
            split("x > /tmp/log 2>&1 | y"),
            ["x", ">", "/tmp/log", "2>&1", "|", "y"]
        );
        assert_eq!(
            split("echo $HOME # not a comment"),
            ["echo", "$HOME", "#", "not", "a", "comment"]
        );
        assert!(split("").is_empty());
        assert_eq!(
            split_command("bash -c 'foo"),
            Err("No closing quotation".into())
        );
        assert_eq!(split_command("a\\"), Err("No escaped character".into()));
        assert!(split_command("\"a\\").is_err());
    }

    fn pairs(text: &str) -> Vec<(String, String)> {
        env_pairs(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn supervisord_environment_syntax() {
        // Expected values are what supervisor.datatypes.dict_of_key_value_pairs
        // returns for the same text.
        assert_eq!(pairs(r#"A="1",B="2""#), kv(&[("A", "1"), ("B", "2")]));
        assert_eq!(
            pairs("KEY=val,KEY2=val2"),
            kv(&[("KEY", "val"), ("KEY2", "val2")])
        );
        assert_eq!(
            pairs(r#"A="x,y",B='it''s'"#),
            kv(&[("A", "x,y"), ("B", "it")])
        );
        assert_eq!(
            pairs("PATH=/usr/local/bin:/usr/bin, URL=http://h:80/x-y.z"),
            kv(&[
                ("PATH", "/usr/local/bin:/usr/bin"),
                ("URL", "http://h:80/x-y.z")
            ])
        );
        assert_eq!(
            pairs(r#"A="a b" , B = "c""#),
            kv(&[("A", "a b"), ("B", "c")])
        );
        assert_eq!(pairs("A=1,\nB=2"), kv(&[("A", "1"), ("B", "2")]));
        assert_eq!(pairs(r#"A="",B=x"#), kv(&[("A", ""), ("B", "x")]));
        assert_eq!(pairs(r#"A=x"y""#), kv(&[("A", "x\"y")]));
        assert_eq!(pairs(""), kv(&[]));
        // A word where the comma belongs is skipped, and reported.
        let p = env_pairs("A=x y").unwrap();
        assert_eq!(p[0].value, "x");
        assert_eq!(p[0].skipped.as_deref(), Some("y"));
        assert_eq!(p.len(), 1, "{p:?}");
        // $ is not a word character: supervisord keeps only "$".
        assert_eq!(pairs("A=$HOME"), kv(&[("A", "$")]));
        // Comments.
        assert_eq!(pairs("A=1 # note\n,B=2"), kv(&[("A", "1"), ("B", "2")]));
    }

    #[test]
    fn environment_errors() {
        for text in [
            "A",
            "A=",
            "A=b=c",
            r#"A="open"#,
            "A:1",
            "A=1,B",
            "A=x y,B=1",
        ] {
            assert!(env_pairs(text).is_err(), "{text}");
        }
    }

    #[test]
    fn quoting_round_trips_through_split() {
        for word in [
            "plain", "", "a b", "it's", "$HOME", "a\"b", "*", "x\\y", "é",
        ] {
            let quoted = sh_quote(word);
            assert_eq!(split(&quoted), [word], "{quoted}");
        }
        assert_eq!(sh_quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }
}
