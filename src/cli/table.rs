//! The tables of [`super`]: every option once ([`OPTIONS`]), every command
//! once ([`COMMANDS`]), with its operands, options, help text and the function
//! that builds its [`Command`]. Parsing, help and completions read them.
//!
//! Must not: hold logic beyond building a command from checked words.

use super::{ClientAction, Command, CommandSpec, Flag, Operands, OptionSpec, Shell};
use super::{UsageError, find_command, unknown_command};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        flag: Flag::Config,
        short: Some('c'),
        long: "config",
        value: Some("FILE"),
        help: "config file (else $TEND_CONFIG, else ./config.json)",
    },
    OptionSpec {
        flag: Flag::Socket,
        short: Some('s'),
        long: "socket",
        value: Some("PATH"),
        help: "control socket (else $TEND_SOCKET, config, default)",
    },
    OptionSpec {
        flag: Flag::Json,
        short: None,
        long: "json",
        value: None,
        help: "print a JSON array",
    },
    OptionSpec {
        flag: Flag::NoWait,
        short: None,
        long: "no-wait",
        value: None,
        help: "return once tend has accepted the request",
    },
    OptionSpec {
        flag: Flag::Lines,
        short: Some('n'),
        long: "lines",
        value: Some("LINES"),
        help: "show at most this many recent lines",
    },
    OptionSpec {
        flag: Flag::Follow,
        short: Some('f'),
        long: "follow",
        value: None,
        help: "keep printing new lines",
    },
    OptionSpec {
        flag: Flag::Since,
        short: None,
        long: "since",
        value: Some("DURATION"),
        help: "only lines from the last DURATION (250ms, 5m, 1m30s, 2h)",
    },
    OptionSpec {
        flag: Flag::Help,
        short: Some('h'),
        long: "help",
        value: None,
        help: "show help",
    },
    OptionSpec {
        flag: Flag::Version,
        short: Some('V'),
        long: "version",
        value: None,
        help: "show the version",
    },
];

/// The options every client command takes.
pub const CLIENT: [Flag; 2] = [Flag::Socket, Flag::Config];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "run",
        operands: Operands::None,
        options: &[Flag::Config],
        summary: "supervise in the foreground (the default)",
        help: "Start every enabled service and keep them running until SIGTERM, SIGINT or\n\
               `tend shutdown`. Exits 1 if the control socket is taken (or its folder is\n\
               not private), 2 on a bad config, or a failed critical service's code.",
        client: false,
        build: |p| {
            Ok(Command::Run {
                config: p.config.path,
            })
        },
    },
    CommandSpec {
        name: "check",
        operands: Operands::None,
        options: &[Flag::Config],
        summary: "validate the config, print every problem",
        help: "Validate the config without starting anything and print every problem,\n\
               each with where it is. Exits 0 when valid, 2 when not.",
        client: false,
        build: |p| {
            Ok(Command::Check {
                config: p.config.path,
            })
        },
    },
    CommandSpec {
        name: "status",
        operands: Operands::Names(0),
        options: &[Flag::Json, Flag::Socket, Flag::Config],
        summary: "one line per service, or a JSON array",
        help: "Show the named services (all when none is named): state and its age, pid,\n\
               restarts, and why a service is where it is. Exits 0 only if every enabled\n\
               longrun service is running and none has failed: a health check as it is.",
        client: true,
        build: |p| {
            let (names, json) = (p.words.clone(), p.json);
            p.client(ClientAction::Status { names, json })
        },
    },
    CommandSpec {
        name: "start",
        operands: Operands::Names(1),
        options: &[Flag::NoWait, Flag::Socket, Flag::Config],
        summary: "start services, wait until they run",
        help: "Start the named services and wait until each is running (or, for a oneshot,\n\
               completed). Exits 1 if one fails instead.",
        client: true,
        build: |p| {
            let (names, wait) = (p.words.clone(), !p.no_wait);
            p.client(ClientAction::Start { names, wait })
        },
    },
    CommandSpec {
        name: "stop",
        operands: Operands::Names(1),
        options: &[Flag::NoWait, Flag::Socket, Flag::Config],
        summary: "stop services, wait until they are down",
        help: "Stop the named services (stop_signal, then SIGKILL after timeout_stop) and\n\
               wait until their processes are gone. They stay stopped until started.",
        client: true,
        build: |p| {
            let (names, wait) = (p.words.clone(), !p.no_wait);
            p.client(ClientAction::Stop { names, wait })
        },
    },
    CommandSpec {
        name: "restart",
        operands: Operands::Names(1),
        options: &[Flag::NoWait, Flag::Socket, Flag::Config],
        summary: "restart services, wait until they run",
        help: "Stop, then start the named services, and wait until each runs again with a\n\
               new process. Exits 1 if one fails instead.",
        client: true,
        build: |p| {
            let (names, wait) = (p.words.clone(), !p.no_wait);
            p.client(ClientAction::Restart { names, wait })
        },
    },
    CommandSpec {
        name: "signal",
        operands: Operands::Exact(&["NAME", "SIGNAL"]),
        options: &CLIENT,
        summary: "signal a service's process group",
        help: "Send SIGNAL (HUP, SIGHUP or a number) to the process group of the named\n\
               service. An unknown signal is a usage error (exit 2).",
        client: true,
        build: |p| {
            let (name, signal) = match p.words.as_slice() {
                [name, signal] => (name.clone(), signal.clone()),
                _ => return Err(UsageError("usage: tend signal NAME SIGNAL".into())),
            };
            crate::config::Signal::parse(&signal).map_err(|e| {
                UsageError(format!(
                    "{e}: use a name such as HUP or TERM, or a number 1-64"
                ))
            })?;
            p.client(ClientAction::Signal { name, signal })
        },
    },
    CommandSpec {
        name: "reload",
        operands: Operands::None,
        options: &CLIENT,
        summary: "re-read the config, apply the difference",
        help: "Re-read the config file tend was started with. Services no longer defined\n\
               stop, new ones start, changed ones restart, the rest are not touched. An\n\
               invalid file changes nothing, and its problems are printed (exit 1).",
        client: true,
        build: |p| p.client(ClientAction::Reload),
    },
    CommandSpec {
        name: "logs",
        operands: Operands::Names(0),
        options: &[
            Flag::Lines,
            Flag::Follow,
            Flag::Since,
            Flag::Socket,
            Flag::Config,
        ],
        summary: "recent output lines (of all by default)",
        help: "Print the output lines tend keeps of the named services (all when none is\n\
               named; the last 1000 lines or 256 KiB per service), in the order they were\n\
               read, each with its time, service and stream (`web |` stdout, `web !|`\n\
               stderr). With -f, keep printing new lines until interrupted.",
        client: true,
        build: |p| {
            let action = ClientAction::Logs {
                names: p.words.clone(),
                lines: p.lines,
                since: p.since,
                follow: p.follow,
            };
            p.client(action)
        },
    },
    CommandSpec {
        name: "shutdown",
        operands: Operands::None,
        options: &[Flag::NoWait, Flag::Socket, Flag::Config],
        summary: "stop everything, wait until tend exits",
        help: "Stop every service in dependency order and make tend exit, as SIGTERM does.\n\
               Waits until tend has exited; with --no-wait, returns once it has accepted.",
        client: true,
        build: |p| {
            let wait = !p.no_wait;
            p.client(ClientAction::Shutdown { wait })
        },
    },
    CommandSpec {
        name: "top",
        operands: Operands::None,
        options: &CLIENT,
        summary: "CPU and memory of every service, every second",
        help: "Show each service's state, pid, CPU use over the last second and memory\n\
               (of its process group, or its cgroup), refreshed every second until\n\
               SIGINT or SIGTERM, or `q` on a terminal. Without a terminal, print a\n\
               plain table every second.",
        client: true,
        build: |p| p.client(ClientAction::Top),
    },
    CommandSpec {
        name: "reexec",
        operands: Operands::None,
        options: &CLIENT,
        summary: "exec the binary at tend's path, keeping every service",
        help: "Exec the binary now at the path tend was started from (an upgraded tend, or\n\
               the same), handing over the whole state: every service keeps running with\n\
               its pid, output, restart count and backoff; no output line is lost. The\n\
               answer comes from the new tend. If the new binary cannot take the state,\n\
               tend goes on unchanged and this says why (exit 1). SIGUSR2 does the same.",
        client: true,
        build: |p| p.client(ClientAction::Reexec),
    },
    CommandSpec {
        name: "import",
        operands: Operands::Exact(&["FILE"]),
        options: &[],
        summary: "print a tend config made from a Procfile or supervisord.conf",
        help: "Read a Procfile (`name: command` lines) or a supervisord config\n\
               (`[program:x]` sections) and print an equivalent tend config as JSON on\n\
               stdout. Everything that has no equivalent is listed on stderr, one\n\
               warning per line. Exits 2 when the file cannot be read or imported.",
        client: false,
        build: |p| {
            let file = p.words.first().cloned().unwrap_or_default();
            Ok(Command::Import { file: file.into() })
        },
    },
    CommandSpec {
        name: "completions",
        operands: Operands::OneOf(&["bash", "zsh"]),
        options: &[],
        summary: "print a shell completion script",
        help: "Print a completion script for bash or zsh. For example:\n\
               \x20 tend completions bash > /etc/bash_completion.d/tend\n\
               \x20 tend completions zsh > \"${fpath[1]}/_tend\"",
        client: false,
        build: |p| match p.words.first().map(String::as_str) {
            Some("zsh") => Ok(Command::Completions { shell: Shell::Zsh }),
            _ => Ok(Command::Completions { shell: Shell::Bash }),
        },
    },
    CommandSpec {
        name: "help",
        operands: Operands::Optional("COMMAND"),
        options: &[],
        summary: "this text, or help on COMMAND",
        help: "Show the usage of tend, or of one command.",
        client: false,
        build: |p| match p.words.first() {
            None => Ok(Command::Help { command: None }),
            Some(word) => match find_command(word) {
                Some(spec) => Ok(Command::Help {
                    command: Some(spec.name),
                }),
                None => Err(unknown_command(word)),
            },
        },
    },
];
