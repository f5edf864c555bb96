//! The command line (SPEC §1): one table of commands ([`COMMANDS`]) and one of
//! options ([`OPTIONS`]) drive the parser, the usage text, `tend help COMMAND`
//! and the shell completions (`completions.rs`), so they cannot disagree.
//!
//! A new command is one row of [`COMMANDS`] (its operands, options, help and
//! the function that builds its [`Command`] from the parsed words) plus its
//! arm in `main`.
//!
//! Pure: arguments and the environment come in as values, so every form is
//! unit-tested without touching the real process environment.
//!
//! Must not: read files or connect anywhere; `client` and `main` do.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

mod help;
mod hidden;
mod table;

pub use help::{command_help, help, usage};
pub use table::{COMMANDS, OPTIONS};

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run {
        config: PathBuf,
    },
    Check {
        config: PathBuf,
    },
    Client {
        socket: Option<PathBuf>,
        config: ConfigPath,
        action: ClientAction,
    },
    /// The usage text, or one command's help.
    Help {
        command: Option<&'static str>,
    },
    Completions {
        shell: Shell,
    },
    /// `tend import FILE`: print a tend config made from a Procfile or a
    /// supervisord config (SPEC §11).
    Import {
        file: PathBuf,
    },
    Version,
    /// `tend reexec-check` (hidden): print the snapshot version this binary
    /// reads (the old tend asks before it execs this one).
    ReexecCheck,
    /// `tend run -c FILE --resume FD` (hidden): go on from the state an old
    /// tend handed over in the snapshot on `fd`.
    Resume {
        config: PathBuf,
        fd: String,
    },
}

/// The config file and whether the user named it (`-c` or `$TEND_CONFIG`): a
/// client must not fall back to another socket when a named config is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPath {
    pub path: PathBuf,
    pub named: bool,
}

/// A client command, sent to a running tend over its control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    Status {
        names: Vec<String>,
        json: bool,
    },
    Start {
        names: Vec<String>,
        wait: bool,
    },
    Stop {
        names: Vec<String>,
        wait: bool,
    },
    Restart {
        names: Vec<String>,
        wait: bool,
    },
    Signal {
        name: String,
        signal: String,
    },
    Reload,
    Shutdown {
        wait: bool,
    },
    Reexec,
    Logs {
        /// Empty: every service.
        names: Vec<String>,
        lines: Option<usize>,
        since: Option<Duration>,
        follow: bool,
    },
    /// CPU and memory of every service, every second, until interrupted.
    Top,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
}

/// A usage error: main prints it with a hint and exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The options, each named once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Config,
    Socket,
    Json,
    NoWait,
    Lines,
    Follow,
    Since,
    Help,
    Version,
}

/// An option as the user spells it.
#[derive(Debug)]
pub struct OptionSpec {
    pub flag: Flag,
    pub short: Option<char>,
    pub long: &'static str,
    /// The name of its value (`FILE`), or None for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// What follows a command's name. The words name what they are (`NAME`,
/// `SIGNAL`, `FILE`, `COMMAND`), which is also how they are completed.
#[derive(Debug)]
pub enum Operands {
    None,
    /// Service names, at least this many (`NAME...` or `[NAME...]`).
    Names(usize),
    /// Exactly these.
    Exact(&'static [&'static str]),
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// Nothing or one word of this kind.
    Optional(&'static str),
}

/// One command: the row that drives parsing, help and completion.
pub struct CommandSpec {
    pub name: &'static str,
    pub operands: Operands,
    /// The options it takes besides `-h`; `-V` is taken everywhere.
    pub options: &'static [Flag],
    /// One line for the usage list.
    pub summary: &'static str,
    /// What `tend help NAME` says below the usage line.
    pub help: &'static str,
    /// Talks to a running tend (so `-s` and `-c` choose which).
    pub client: bool,
    pub build: fn(Parsed) -> Result<Command, UsageError>,
}

/// The command named `name`.
pub fn find_command(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

pub fn option_spec(flag: Flag) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.flag == flag)
}

/// The words and options of one command line, env fallbacks applied; what a
/// [`CommandSpec::build`] gets.
#[derive(Debug)]
pub struct Parsed {
    /// The operands (the command's name not included).
    pub words: Vec<String>,
    pub config: ConfigPath,
    pub socket: Option<PathBuf>,
    pub json: bool,
    pub no_wait: bool,
    pub follow: bool,
    pub lines: Option<usize>,
    pub since: Option<Duration>,
}

impl Parsed {
    fn client(self, action: ClientAction) -> Result<Command, UsageError> {
        Ok(Command::Client {
            socket: self.socket,
            config: self.config,
            action,
        })
    }
}

/// Options and words as given, before they are checked against a command.
#[derive(Default)]
struct Scan {
    words: Vec<String>,
    /// Each option given, as spelled, with its value.
    used: Vec<(Flag, String, Option<String>)>,
}

impl Scan {
    fn value(&self, flag: Flag) -> Option<(&str, &str)> {
        self.used
            .iter()
            .rev()
            .find(|(f, _, _)| *f == flag)
            .and_then(|(_, spelled, v)| Some((spelled.as_str(), v.as_deref()?)))
    }

    fn has(&self, flag: Flag) -> bool {
        self.used.iter().any(|(f, _, _)| *f == flag)
    }
}

/// Parse `args` (without argv[0]).
pub fn parse(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Command, UsageError> {
    if let Some(command) = hidden::parse(&args) {
        return Ok(command);
    }
    let scan = scan(args)?;
    if scan.has(Flag::Version) {
        return Ok(Command::Version);
    }
    let (spec, operands) = match scan.words.split_first() {
        Some((verb, rest)) => match find_command(verb) {
            Some(spec) => (spec, rest.to_vec()),
            None if scan.has(Flag::Help) => return Ok(Command::Help { command: None }),
            None => return Err(unknown_command(verb)),
        },
        None if scan.has(Flag::Help) => return Ok(Command::Help { command: None }),
        None => (&COMMANDS[0], Vec::new()),
    };
    if scan.has(Flag::Help) {
        return Ok(Command::Help {
            command: Some(spec.name),
        });
    }
    for (flag, spelled, _) in &scan.used {
        if !spec.options.contains(flag) {
            return Err(UsageError(format!(
                "{spelled} does not apply to {}; see 'tend help {}'",
                spec.name, spec.name
            )));
        }
    }
    check_operands(spec, &operands)?;
    let config = match scan.value(Flag::Config) {
        Some((_, path)) => ConfigPath {
            path: path.into(),
            named: true,
        },
        None => match env("TEND_CONFIG").filter(|c| !c.is_empty()) {
            Some(path) => ConfigPath {
                path: path.into(),
                named: true,
            },
            None => ConfigPath {
                path: "config.json".into(),
                named: false,
            },
        },
    };
    let socket = match scan.value(Flag::Socket) {
        Some((_, path)) => Some(PathBuf::from(path)),
        None => env("TEND_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    };
    let lines = match scan.value(Flag::Lines) {
        Some((spelled, v)) => Some(
            v.parse()
                .map_err(|_| UsageError(format!("{spelled} needs a whole number, got {v:?}")))?,
        ),
        None => None,
    };
    let since = match scan.value(Flag::Since) {
        Some((spelled, v)) => Some(parse_duration(v).map_err(|e| {
            UsageError(format!(
                "{spelled} needs a duration such as 5m, 1m30s or 250ms, got {v:?} ({e})"
            ))
        })?),
        None => None,
    };
    (spec.build)(Parsed {
        words: operands,
        config,
        socket,
        json: scan.has(Flag::Json),
        no_wait: scan.has(Flag::NoWait),
        follow: scan.has(Flag::Follow),
        lines,
        since,
    })
}

fn check_operands(spec: &CommandSpec, words: &[String]) -> Result<(), UsageError> {
    let name = spec.name;
    let problem = match &spec.operands {
        Operands::Names(min) if words.len() < *min => {
            format!("{name} needs at least one service name")
        }
        Operands::Exact(list) if words.len() != list.len() => {
            format!("usage: tend {name} {}", list.join(" "))
        }
        Operands::OneOf(choices) if words.len() != 1 || !choices.contains(&words[0].as_str()) => {
            format!("usage: tend {name} {}", choices.join("|"))
        }
        Operands::None if !words.is_empty() => {
            format!("unexpected argument {:?} for {name}", words[0])
        }
        Operands::Optional(what) if words.len() > 1 => {
            format!("usage: tend {name} [{what}]")
        }
        _ => return Ok(()),
    };
    Err(UsageError(problem))
}

fn unknown_command(word: &str) -> UsageError {
    let close = COMMANDS
        .iter()
        .map(|c| (edit_distance(word, c.name), c.name))
        .min()
        .filter(|(d, _)| *d <= 2);
    match close {
        Some((_, name)) => UsageError(format!("unknown command {word:?}; did you mean {name}?")),
        None => UsageError(format!("unknown command {word:?}")),
    }
}

/// Edit distance counting a swap of neighbours as one edit (optimal string
/// alignment), for "did you mean": `stauts` is one edit from `status`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

/// Split options from words. Options may come anywhere; `--` ends them.
fn scan(args: Vec<OsString>) -> Result<Scan, UsageError> {
    let mut s = Scan::default();
    let mut args = args.into_iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str().map(str::to_string) else {
            return Err(UsageError(format!("argument {arg:?} is not valid UTF-8")));
        };
        if options_done || text == "-" || !text.starts_with('-') {
            s.words.push(text);
            continue;
        }
        if text == "--" {
            options_done = true;
            continue;
        }
        let (spec, spelled, inline) = match text.strip_prefix("--") {
            Some(long) => {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let spec = OPTIONS.iter().find(|o| o.long == name);
                (spec, format!("--{name}"), inline)
            }
            None => {
                let mut chars = text.chars().skip(1);
                let c = chars.next();
                let rest: String = chars.collect();
                let spec = OPTIONS.iter().find(|o| o.short.is_some() && o.short == c);
                let inline = (!rest.is_empty()).then_some(rest);
                (spec, format!("-{}", c.unwrap_or('-')), inline)
            }
        };
        let Some(spec) = spec else {
            return Err(UsageError(format!("unknown option {text}")));
        };
        let value = match (spec.value, inline) {
            (Some(_), Some(v)) => Some(v),
            (Some(what), None) => match args.next().map(OsString::into_string) {
                Some(Ok(v)) => Some(v),
                Some(Err(v)) => {
                    return Err(UsageError(format!(
                        "{spelled} value {v:?} is not valid UTF-8"
                    )));
                }
                None => return Err(UsageError(format!("{spelled} needs a value ({what})"))),
            },
            (None, Some(_)) if text.starts_with("--") => {
                return Err(UsageError(format!("{spelled} takes no value")));
            }
            (None, Some(_)) => return Err(UsageError(format!("unknown option {text}"))),
            (None, None) => None,
        };
        s.used.push((spec.flag, spelled, value));
    }
    Ok(s)
}

/// A duration as the config spells it: seconds (`1.5`), or numbers with units
/// `ms`, `s`, `m`, `h`, one after another (`250ms`, `5m`, `1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit = rest[number..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .map_or(rest.len(), |n| number + n);
        if number == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let part = crate::config::units::parse_duration(&rest[..unit])?;
        total = total.checked_add(part).ok_or("too large")?;
        rest = &rest[unit..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
