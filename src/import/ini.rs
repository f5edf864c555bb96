//! supervisord's INI dialect: Python's `RawConfigParser` as supervisord sets it up.
//!
//! Owns: lines → sections of `key = value` options, with the line each came from.
//! Must not: expand `%(...)s` or give values meaning (that is [`super::expand`] and
//! [`super::supervisord`]).
//!
//! The rules are Python 3's `configparser._read` with supervisord's settings
//! (`inline_comment_prefixes=(';', '#')`, `strict=False`):
//! - a line whose first non-blank character is `;` or `#` is a comment;
//! - `;` or `#` starts an inline comment only when preceded by whitespace, so
//!   `a=b;c` keeps `b;c` (supervisord's sample config warns about this);
//! - a line indented deeper than its option line continues that value (joined with
//!   `\n`), an empty line inside a value is kept, trailing empty lines are dropped;
//! - `=` or `:` separates a key from its value; keys are lowercased, section names
//!   are not;
//! - a repeated section or option merges into the first (the later value wins);
//! - `[DEFAULT]` options are seen by every section.

use super::ImportError;

/// One `key = value` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub key: String,
    pub value: String,
    /// 1-based line of the `key =` line.
    pub line: usize,
}

/// One `[name]` section and its options, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub options: Vec<Opt>,
}

/// A parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    pub sections: Vec<Section>,
    /// The `[DEFAULT]` section's options.
    pub defaults: Vec<Opt>,
}

impl Ini {
    /// The options `section` sees: its own, then `[DEFAULT]`'s it does not override.
    pub fn options(&self, section: &Section) -> Vec<Opt> {
        let mut all = section.options.clone();
        for d in &self.defaults {
            if !all.iter().any(|o| o.key == d.key) {
                all.push(d.clone());
            }
        }
        all
    }
}

/// Where a value is being collected: a section index (`None`: `[DEFAULT]`) and
/// the option index in it.
type Cursor = (Option<usize>, usize);

/// Parse INI text as supervisord does.
pub fn parse(text: &str) -> Result<Ini, ImportError> {
    let mut ini = Ini::default();
    // The section options go to: None before any header, Some(None) for DEFAULT.
    let mut current: Option<Option<usize>> = None;
    // The option a continuation line would extend, and its values so far.
    let mut open: Option<Cursor> = None;
    let mut pieces: Vec<String> = Vec::new();
    let mut indent_level = usize::MAX;
    for (i, line) in split_lines(text).enumerate() {
        let number = i + 1;
        let comment_start = comment_start(line);
        let value = line[..comment_start.unwrap_or(line.len())].trim();
        if value.is_empty() {
            // An empty line inside a value is kept, but not a comment line.
            if comment_start.is_none() && open.is_some() {
                pieces.push(String::new());
            }
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if open.is_some() && indent > indent_level {
            pieces.push(value.to_string());
            continue;
        }
        indent_level = indent;
        if let Some(name) = section_header(value) {
            close(&mut ini, &mut open, &mut pieces);
            current = Some(open_section(&mut ini, name, number));
            continue;
        }
        let Some(section) = current else {
            return Err(ImportError::at(
                number,
                "expected a [section] header before the first option",
            ));
        };
        let Some((key, val)) = split_option(value) else {
            return Err(ImportError::at(
                number,
                format!("expected `key = value` or a [section] header, got {value:?}"),
            ));
        };
        close(&mut ini, &mut open, &mut pieces);
        let options = match section {
            Some(s) => &mut ini.sections[s].options,
            None => &mut ini.defaults,
        };
        let key = key.to_lowercase();
        let index = match options.iter().position(|o| o.key == key) {
            Some(j) => {
                options[j].line = number;
                j
            }
            None => {
                options.push(Opt {
                    key,
                    value: String::new(),
                    line: number,
                });
                options.len() - 1
            }
        };
        open = Some((section, index));
        pieces.push(val.to_string());
    }
    close(&mut ini, &mut open, &mut pieces);
    Ok(ini)
}

/// Lines as Python's text mode reads them: `\n`, `\r\n` and `\r` all end a line.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let mut next = end;
        if rest[end..].starts_with("\r\n") {
            next += 2;
        } else if end < rest.len() {
            next += 1;
        }
        rest = &rest[next..];
        Some(line)
    })
}

/// Byte index where a comment starts: a whole-line `;`/`#` comment (0), or an
/// inline one, which needs whitespace (or the line start) before it.
///
/// This is `configparser`'s own search, quirk included: each round looks at the
/// next `;` and the next `#`, and the first round that finds a valid start wins.
/// So in `a "x;y" ;b #c` the comment starts at `#c` (the round that reaches ` #`
/// sees `;` only inside `"x;y"`), and `;b` stays in the value, as in supervisord.
fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim();
    if trimmed.starts_with(';') || trimmed.starts_with('#') {
        return Some(0);
    }
    // The next position to search from, per prefix; None once it has no more.
    let mut from = [Some(0usize), Some(0usize)];
    loop {
        let mut found: Option<usize> = None;
        for (prefix, start) in [';', '#'].into_iter().zip(from.iter_mut()) {
            let Some(at) = start.and_then(|s| line.get(s..)?.find(prefix).map(|i| s + i)) else {
                *start = None;
                continue;
            };
            *start = Some(at + 1);
            let before = line[..at].chars().next_back();
            if before.is_none_or(char::is_whitespace) {
                found = Some(found.map_or(at, |f| f.min(at)));
            }
        }
        if found.is_some() || from.iter().all(Option::is_none) {
            return found;
        }
    }
}

/// `[name]` (Python's `\[(?P<header>.+)\]` matched at the start: the name runs to
/// the last `]`, and anything after it is ignored).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// `key = value` or `key: value`, split at the first `=` or `:`. `None` when there
/// is no separator or no key.
fn split_option(value: &str) -> Option<(&str, &str)> {
    let at = value.find(['=', ':'])?;
    let key = value[..at].trim_end();
    if key.is_empty() {
        return None;
    }
    Some((key, value[at + 1..].trim()))
}

fn open_section(ini: &mut Ini, name: &str, line: usize) -> Option<usize> {
    if name == "DEFAULT" {
        return None;
    }
    if let Some(i) = ini.sections.iter().position(|s| s.name == name) {
        return Some(i);
    }
    ini.sections.push(Section {
        name: name.to_string(),
        line,
        options: Vec::new(),
    });
    Some(ini.sections.len() - 1)
}

/// Store the collected pieces of the open option: joined by newlines, trailing
/// empty lines dropped (Python's `'\n'.join(val).rstrip()`).
fn close(ini: &mut Ini, open: &mut Option<Cursor>, pieces: &mut Vec<String>) {
    if let Some((section, index)) = open.take() {
        let options = match section {
            Some(s) => ini.sections.get_mut(s).map(|s| &mut s.options),
            None => Some(&mut ini.defaults),
        };
        if let Some(opt) = options.and_then(|o| o.get_mut(index)) {
            opt.value = pieces.join("\n").trim_end().to_string();
        }
    }
    pieces.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(ini: &Ini, section: &str, key: &str) -> Option<String> {
        let s = ini.sections.iter().find(|s| s.name == section)?;
        ini.options(s)
            .into_iter()
            .find(|o| o.key == key)
            .map(|o| o.value)
    }

    #[test]
    fn sections_options_and_both_separators() {
        let ini = parse("[program:a]\ncommand = /bin/cat\nUser: nobody\n[x]\nk=v\n").unwrap();
        assert_eq!(ini.sections.len(), 2);
        assert_eq!(value(&ini, "program:a", "command").unwrap(), "/bin/cat");
        assert_eq!(value(&ini, "program:a", "user").unwrap(), "nobody");
        assert_eq!(ini.sections[0].options[1].line, 3);
        assert_eq!(value(&ini, "x", "k").unwrap(), "v");
    }

    #[test]
    fn comments_whole_line_and_inline() {
        let text = "; top\n# also\n[s]\n  ; indented comment\na=b ;comment\nc=d;not a comment\n\
                    e=f\t# tab comment\ng=h#kept\nurl=http://x/#frag\n";
        let ini = parse(text).unwrap();
        assert_eq!(value(&ini, "s", "a").unwrap(), "b");
        assert_eq!(value(&ini, "s", "c").unwrap(), "d;not a comment");
        assert_eq!(value(&ini, "s", "e").unwrap(), "f");
        assert_eq!(value(&ini, "s", "g").unwrap(), "h#kept");
        assert_eq!(value(&ini, "s", "url").unwrap(), "http://x/#frag");
    }

    #[test]
    fn inline_comment_truncates_a_quoted_command_as_supervisord_does() {
        // The example of supervisord's own sample config.
        let ini = parse("[p]\ncommand=bash -c 'foo ; bar'\n").unwrap();
        assert_eq!(value(&ini, "p", "command").unwrap(), "bash -c 'foo");
        // configparser's search quirk (checked against Python 3.11): the round that
        // finds ` #c` has seen only the `;` inside the quotes.
        let ini = parse("[p]\na=x \"q;r\" ;c  #c a\nb=x ;c #d\nc=x;y #z ;w\n").unwrap();
        assert_eq!(value(&ini, "p", "a").unwrap(), "x \"q;r\" ;c");
        assert_eq!(value(&ini, "p", "b").unwrap(), "x");
        assert_eq!(value(&ini, "p", "c").unwrap(), "x;y");
    }

    #[test]
    fn continuation_lines_and_blank_lines_inside_values() {
        let text = "[s]\nfiles = a.conf\n   b.conf\n\n  c.conf\n\n\nnext = 1\n";
        let ini = parse(text).unwrap();
        assert_eq!(
            value(&ini, "s", "files").unwrap(),
            "a.conf\nb.conf\n\nc.conf"
        );
        assert_eq!(value(&ini, "s", "next").unwrap(), "1");
        // A comment line inside a value adds nothing, an indented header continues.
        let ini = parse("[s]\na = 1\n  ; note\n  2\n  [t]\n").unwrap();
        assert_eq!(value(&ini, "s", "a").unwrap(), "1\n2\n[t]");
        assert_eq!(ini.sections.len(), 1);
    }

    #[test]
    fn indented_option_after_a_header_is_an_option() {
        let ini = parse("[s]\n  a = 1\n  b = 2\n").unwrap();
        assert_eq!(value(&ini, "s", "a").unwrap(), "1");
        assert_eq!(value(&ini, "s", "b").unwrap(), "2");
    }

    #[test]
    fn repeats_merge_and_defaults_apply() {
        let text = "[DEFAULT]\nautostart=false\n[s]\na=1\n[t]\n[s]\na=2\nautostart=true\n";
        let ini = parse(text).unwrap();
        assert_eq!(ini.sections.len(), 2);
        assert_eq!(value(&ini, "s", "a").unwrap(), "2");
        assert_eq!(value(&ini, "s", "autostart").unwrap(), "true");
        assert_eq!(value(&ini, "t", "autostart").unwrap(), "false");
    }

    #[test]
    fn headers_keep_case_and_run_to_the_last_bracket() {
        let ini = parse("[Program:A]\n[a]b] trailing\nK=v\n").unwrap();
        assert_eq!(ini.sections[0].name, "Program:A");
        assert_eq!(ini.sections[1].name, "a]b");
        assert_eq!(ini.sections[1].options[0].key, "k");
    }

    #[test]
    fn line_endings_and_bom() {
        let ini = parse("\u{feff}[s]\r\na=1\r\nb=2\rc=3").unwrap();
        assert_eq!(value(&ini, "s", "a").unwrap(), "1");
        assert_eq!(value(&ini, "s", "b").unwrap(), "2");
        assert_eq!(value(&ini, "s", "c").unwrap(), "3");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a=1\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = parse("[s]\nok=1\njust words\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = parse("[s]\n=value\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(parse("[]\n").is_err());
    }
}
