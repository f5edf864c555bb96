//! The command line: a hand-written parser (SPEC §1) and the usage text.
//!
//! Pure: arguments and the environment come in as values, so every form is
//! unit-tested without touching the real process environment.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

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
        config: PathBuf,
        action: ClientAction,
    },
    Help,
    Version,
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
    Shutdown,
    Logs {
        name: String,
        lines: Option<usize>,
        follow: bool,
    },
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

pub fn usage() -> &'static str {
    "tend: keep a set of services running from one JSON file

usage:
  tend [run] [-c FILE]                 supervise in the foreground (the default command)
  tend check [-c FILE]                 validate the config, print every problem, exit 0 or 2
  tend status [NAME...] [--json]       one line per service, or a JSON array
  tend start|stop|restart NAME...      act, then wait until the state settles (--no-wait: don't)
  tend signal NAME SIGNAL              send a signal to a service's process group
  tend reload                          re-read the config and apply the difference
  tend logs NAME [-n LINES] [-f]       recent output lines of a service; -f follows
  tend shutdown                        stop everything and exit, as on SIGTERM
  tend --help | --version

options:
  -c, --config FILE    config file (else $TEND_CONFIG, else ./config.json)
  -s, --socket PATH    control socket of a client command (else $TEND_SOCKET,
                       else the config's control_socket, else the default)
      --json           status: print a JSON array
      --no-wait        start/stop/restart: return once the request is accepted
  -n, --lines N        logs: how many recent lines
  -f, --follow         logs: keep printing new lines

exit codes: 0 success, 1 runtime failure, 2 usage or config error;
run exits with a failed critical service's code (128+N for signal N).
"
}

/// The control socket used when neither `-s`, `$TEND_SOCKET` nor the config
/// names one: `$XDG_RUNTIME_DIR/tend.sock`, `/run/tend.sock` for root, else
/// `/tmp/tend-<uid>.sock`.
pub fn default_control_socket(env: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    if let Some(dir) = env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("tend.sock");
    }
    let uid = crate::sys::effective_uid();
    if uid == 0 {
        PathBuf::from("/run/tend.sock")
    } else {
        PathBuf::from(format!("/tmp/tend-{uid}.sock"))
    }
}

/// Options and positional words, before they are given meaning.
#[derive(Default)]
struct Parsed {
    words: Vec<String>,
    config: Option<PathBuf>,
    socket: Option<PathBuf>,
    json: bool,
    no_wait: bool,
    follow: bool,
    lines: Option<usize>,
    help: bool,
    version: bool,
}

/// Parse `args` (without argv[0]).
pub fn parse(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Command, UsageError> {
    let p = scan(args)?;
    if p.help {
        return Ok(Command::Help);
    }
    if p.version {
        return Ok(Command::Version);
    }
    let config = p
        .config
        .clone()
        .or_else(|| {
            env("TEND_CONFIG")
                .filter(|c| !c.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("config.json"));
    let (verb, rest) = match p.words.split_first() {
        Some((verb, rest)) => (verb.as_str(), rest),
        None => ("run", &[][..]),
    };
    let client_only = p.socket.is_some() || p.json || p.no_wait || p.follow || p.lines.is_some();
    match verb {
        "run" | "check" => {
            if let Some(extra) = rest.first() {
                return Err(UsageError(format!(
                    "unexpected argument {extra:?} for {verb}"
                )));
            }
            if client_only {
                return Err(UsageError(format!("{verb} takes only -c FILE")));
            }
            Ok(if verb == "run" {
                Command::Run { config }
            } else {
                Command::Check { config }
            })
        }
        _ => {
            let action = client_action(verb, rest, &p)?;
            let socket = p.socket.clone().or_else(|| {
                env("TEND_SOCKET")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            });
            Ok(Command::Client {
                socket,
                config,
                action,
            })
        }
    }
}

fn client_action(verb: &str, rest: &[String], p: &Parsed) -> Result<ClientAction, UsageError> {
    let names = rest.to_vec();
    let needs_names = |names: &Vec<String>| {
        if names.is_empty() {
            Err(UsageError(format!(
                "{verb} needs at least one service name"
            )))
        } else {
            Ok(())
        }
    };
    let only = |allowed: &[&str]| -> Result<(), UsageError> {
        let used = [
            ("--json", p.json),
            ("--no-wait", p.no_wait),
            ("--follow", p.follow),
            ("--lines", p.lines.is_some()),
        ];
        match used
            .iter()
            .find(|(name, on)| *on && !allowed.contains(name))
        {
            Some((name, _)) => Err(UsageError(format!("{name} does not apply to {verb}"))),
            None => Ok(()),
        }
    };
    let exact = |n: usize, what: &str| {
        if rest.len() == n {
            Ok(())
        } else {
            Err(UsageError(format!("usage: tend {verb} {what}")))
        }
    };
    let wait = !p.no_wait;
    match verb {
        "status" => {
            only(&["--json"])?;
            Ok(ClientAction::Status {
                names,
                json: p.json,
            })
        }
        "start" | "stop" | "restart" => {
            only(&["--no-wait"])?;
            needs_names(&names)?;
            Ok(match verb {
                "start" => ClientAction::Start { names, wait },
                "stop" => ClientAction::Stop { names, wait },
                _ => ClientAction::Restart { names, wait },
            })
        }
        "signal" => {
            only(&[])?;
            exact(2, "NAME SIGNAL")?;
            Ok(ClientAction::Signal {
                name: rest[0].clone(),
                signal: rest[1].clone(),
            })
        }
        "reload" | "shutdown" => {
            only(&[])?;
            exact(0, "")?;
            Ok(if verb == "reload" {
                ClientAction::Reload
            } else {
                ClientAction::Shutdown
            })
        }
        "logs" => {
            only(&["--follow", "--lines"])?;
            exact(1, "NAME [-n LINES] [-f]")?;
            Ok(ClientAction::Logs {
                name: rest[0].clone(),
                lines: p.lines,
                follow: p.follow,
            })
        }
        other => Err(UsageError(format!("unknown command {other:?}"))),
    }
}

/// Split options from words. Options may come anywhere after the command.
fn scan(args: Vec<OsString>) -> Result<Parsed, UsageError> {
    let mut p = Parsed::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str().map(str::to_string) else {
            // Paths may be any bytes; only option values can be.
            return Err(UsageError(format!("argument {arg:?} is not valid UTF-8")));
        };
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            args.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => p.help = true,
            "-V" | "--version" => p.version = true,
            "--json" => p.json = true,
            "--no-wait" => p.no_wait = true,
            "-f" | "--follow" => p.follow = true,
            "-c" | "--config" => p.config = Some(PathBuf::from(value(&flag)?)),
            "-s" | "--socket" => p.socket = Some(PathBuf::from(value(&flag)?)),
            "-n" | "--lines" => {
                let v = value(&flag)?;
                let n = v
                    .parse()
                    .map_err(|_| UsageError(format!("{flag} needs a number, got {v:?}")))?;
                p.lines = Some(n);
            }
            s if s.starts_with("-c") && s.len() > 2 => p.config = Some(PathBuf::from(&s[2..])),
            s if s.starts_with("-s") && s.len() > 2 => p.socket = Some(PathBuf::from(&s[2..])),
            s if s.starts_with("-n") && s.len() > 2 => {
                let n = s[2..]
                    .parse()
                    .map_err(|_| UsageError(format!("-n needs a number, got {:?}", &s[2..])))?;
                p.lines = Some(n);
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(UsageError(format!("unknown option {s}")));
            }
            _ => p.words.push(text),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn parse_words(words: &[&str]) -> Result<Command, UsageError> {
        parse(words.iter().map(OsString::from).collect(), &no_env)
    }

    fn client(words: &[&str]) -> ClientAction {
        match parse_words(words) {
            Ok(Command::Client { action, .. }) => action,
            other => panic!("{words:?}: {other:?}"),
        }
    }

    #[test]
    fn no_command_is_run_with_the_default_config() {
        assert_eq!(
            parse_words(&[]),
            Ok(Command::Run {
                config: "config.json".into()
            })
        );
    }

    #[test]
    fn config_forms_and_env_fallback() {
        for words in [
            &["-c", "x.json"][..],
            &["run", "-c", "x.json"],
            &["-cx.json"],
            &["--config=x.json"],
            &["run", "--config", "x.json"],
        ] {
            assert_eq!(
                parse_words(words),
                Ok(Command::Run {
                    config: "x.json".into()
                }),
                "{words:?}"
            );
        }
        let env = |k: &str| (k == "TEND_CONFIG").then(|| OsString::from("/etc/t.json"));
        assert_eq!(
            parse(vec!["check".into()], &env),
            Ok(Command::Check {
                config: "/etc/t.json".into()
            })
        );
    }

    #[test]
    fn client_commands() {
        assert_eq!(
            client(&["status", "a", "b", "--json"]),
            ClientAction::Status {
                names: vec!["a".into(), "b".into()],
                json: true
            }
        );
        assert_eq!(
            client(&["restart", "--no-wait", "web"]),
            ClientAction::Restart {
                names: vec!["web".into()],
                wait: false
            }
        );
        assert_eq!(
            client(&["stop", "a"]),
            ClientAction::Stop {
                names: vec!["a".into()],
                wait: true
            }
        );
        assert_eq!(
            client(&["signal", "a", "HUP"]),
            ClientAction::Signal {
                name: "a".into(),
                signal: "HUP".into()
            }
        );
        assert_eq!(
            client(&["logs", "a", "-n", "5", "-f"]),
            ClientAction::Logs {
                name: "a".into(),
                lines: Some(5),
                follow: true
            }
        );
        assert_eq!(
            client(&["logs", "a", "-n5"]),
            ClientAction::Logs {
                name: "a".into(),
                lines: Some(5),
                follow: false
            }
        );
        assert_eq!(client(&["reload"]), ClientAction::Reload);
        assert_eq!(client(&["shutdown"]), ClientAction::Shutdown);
    }

    #[test]
    fn socket_flag_then_env() {
        let env = |k: &str| (k == "TEND_SOCKET").then(|| OsString::from("/e.sock"));
        let socket = |words: &[&str]| match parse(words.iter().map(OsString::from).collect(), &env)
        {
            Ok(Command::Client { socket, .. }) => socket,
            other => panic!("{other:?}"),
        };
        assert_eq!(socket(&["status", "-s", "/f.sock"]), Some("/f.sock".into()));
        assert_eq!(socket(&["status"]), Some("/e.sock".into()));
    }

    #[test]
    fn usage_errors() {
        for words in [
            &["frobnicate"][..],
            &["start"],
            &["signal", "a"],
            &["logs"],
            &["logs", "a", "b"],
            &["status", "--no-wait"],
            &["reload", "x"],
            &["run", "extra"],
            &["check", "--json"],
            &["-c"],
            &["logs", "a", "-n", "many"],
            &["--bogus"],
        ] {
            assert!(parse_words(words).is_err(), "{words:?}");
        }
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse_words(&["status", "--help"]), Ok(Command::Help));
        assert_eq!(parse_words(&["-V"]), Ok(Command::Version));
        assert!(usage().contains("tend logs NAME"));
    }

    #[test]
    fn default_socket_prefers_xdg_runtime_dir() {
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| OsString::from("/run/user/5"));
        assert_eq!(
            default_control_socket(&env),
            PathBuf::from("/run/user/5/tend.sock")
        );
    }
}
