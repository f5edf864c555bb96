//! Tests of the command line: every form, the table's consistency, and a
//! mutation loop that must never panic.

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
fn a_client_knows_whether_its_config_was_named() {
    let config = |words: &[&str], env: &dyn Fn(&str) -> Option<OsString>| match parse(
        words.iter().map(OsString::from).collect(),
        env,
    ) {
        Ok(Command::Client { config, .. }) => config,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        config(&["status"], &no_env),
        ConfigPath {
            path: "config.json".into(),
            named: false
        }
    );
    assert!(config(&["status", "-c", "a.json"], &no_env).named);
    let env = |k: &str| (k == "TEND_CONFIG").then(|| OsString::from("/etc/t.json"));
    assert!(config(&["status"], &env).named);
    let empty = |k: &str| (k == "TEND_CONFIG").then(|| OsString::from(""));
    assert!(!config(&["status"], &empty).named);
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
    assert_eq!(client(&["reload"]), ClientAction::Reload);
    assert_eq!(client(&["reexec"]), ClientAction::Reexec);
    assert_eq!(client(&["shutdown"]), ClientAction::Shutdown { wait: true });
    assert_eq!(
        client(&["shutdown", "--no-wait"]),
        ClientAction::Shutdown { wait: false }
    );
    // A name that starts with '-' after `--`.
    assert_eq!(
        client(&["stop", "--", "-odd"]),
        ClientAction::Stop {
            names: vec!["-odd".into()],
            wait: true
        }
    );
}

#[test]
fn logs_forms() {
    assert_eq!(
        client(&["logs"]),
        ClientAction::Logs {
            names: vec![],
            lines: None,
            since: None,
            follow: false
        }
    );
    assert_eq!(
        client(&["logs", "a", "b", "-n", "5", "-f", "--since", "1m30s"]),
        ClientAction::Logs {
            names: vec!["a".into(), "b".into()],
            lines: Some(5),
            since: Some(Duration::from_secs(90)),
            follow: true
        }
    );
    assert_eq!(
        client(&["logs", "a", "-n5", "--since=250ms"]),
        ClientAction::Logs {
            names: vec!["a".into()],
            lines: Some(5),
            since: Some(Duration::from_millis(250)),
            follow: false
        }
    );
}

#[test]
fn durations_as_the_config_takes_them() {
    for (text, ms) in [
        ("250ms", 250),
        ("2s", 2000),
        ("1.5", 1500),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("1m30s", 90_000),
        ("1h2m3s", 3_723_000),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    for bad in [
        "",
        "m",
        "5x",
        "-5m",
        "1 m",
        "1m-",
        "é",
        "1e99999h",
        "99999999999999999999h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn socket_flag_then_env() {
    let env = |k: &str| (k == "TEND_SOCKET").then(|| OsString::from("/e.sock"));
    let socket = |words: &[&str]| match parse(words.iter().map(OsString::from).collect(), &env) {
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
        &["signal", "a", "NOSUCHSIG"],
        &["signal", "a", "0"],
        &["status", "--no-wait"],
        &["reload", "x"],
        &["run", "extra"],
        &["run", "-s", "x"],
        &["check", "--json"],
        &["-c"],
        &["logs", "a", "-n", "many"],
        &["logs", "--since", "soon"],
        &["logs", "--json"],
        &["--bogus"],
        &["status", "--json=yes"],
        &["status", "-fx"],
        &["completions"],
        &["completions", "fish"],
        &["completions", "bash", "zsh"],
        &["help", "nosuch"],
        &["help", "status", "start"],
        &["shutdown", "-n", "3"],
    ] {
        assert!(parse_words(words).is_err(), "{words:?}");
    }
    let e = parse_words(&["stauts"]).expect_err("typo");
    assert!(e.0.contains("did you mean status"), "{e}");
    let e = parse_words(&["restrat"]).expect_err("typo");
    assert!(e.0.contains("did you mean restart"), "{e}");
    assert!(
        !parse_words(&["xyzzy"])
            .expect_err("far")
            .0
            .contains("did you mean")
    );
    let e = parse_words(&["start", "--json", "a"]).expect_err("option");
    assert!(e.0.contains("--json does not apply to start"), "{e}");
}

#[test]
fn help_and_version() {
    assert_eq!(
        parse_words(&["status", "--help"]),
        Ok(Command::Help {
            command: Some("status")
        })
    );
    assert_eq!(
        parse_words(&["help", "logs"]),
        Ok(Command::Help {
            command: Some("logs")
        })
    );
    assert_eq!(parse_words(&["help"]), Ok(Command::Help { command: None }));
    assert_eq!(parse_words(&["-h"]), Ok(Command::Help { command: None }));
    // Help wins over what else is wrong on the line.
    assert_eq!(
        parse_words(&["signal", "-h", "a", "NOPE"]),
        Ok(Command::Help {
            command: Some("signal")
        })
    );
    assert_eq!(parse_words(&["-V"]), Ok(Command::Version));
    assert_eq!(
        parse_words(&["completions", "zsh"]),
        Ok(Command::Completions { shell: Shell::Zsh })
    );
}

#[test]
fn the_table_is_consistent_and_drives_the_texts() {
    let text = usage();
    for (i, c) in COMMANDS.iter().enumerate() {
        assert!(
            COMMANDS.iter().skip(i + 1).all(|d| d.name != c.name),
            "{} twice",
            c.name
        );
        assert!(text.contains(&format!("tend {}", c.name)) || c.name == "run");
        assert!(text.contains(c.summary), "{}", c.name);
        let help = help(Some(c.name));
        assert!(
            help.starts_with(&format!("usage: tend {}", c.name)),
            "{help}"
        );
        assert!(help.contains("--help"));
        for flag in c.options {
            let o = option_spec(*flag).expect("every flag has a spec");
            assert!(
                help.contains(&format!("--{}", o.long)),
                "{}: {}",
                c.name,
                o.long
            );
        }
        if c.client {
            assert!(c.options.contains(&Flag::Socket) && c.options.contains(&Flag::Config));
        }
    }
    assert!(text.contains("tend [run] [-c FILE]"));
    assert!(text.contains("tend logs [NAME...] [-n LINES] [-f] [--since DURATION]"));
    assert!(text.contains("tend signal NAME SIGNAL"));
    assert!(text.contains("tend completions bash|zsh"));
    assert!(text.contains("tend help [COMMAND] | --help | --version"));
    for o in OPTIONS {
        assert!(text.contains(&format!("--{}", o.long)), "{}", o.long);
        assert!(
            COMMANDS.iter().any(|c| c.options.contains(&o.flag))
                || matches!(o.flag, Flag::Help | Flag::Version),
            "{} is used by no command",
            o.long
        );
    }
}

/// Random command lines from the table's words and some junk: parsing never
/// panics, and a line that parses as a client command keeps its words.
#[test]
fn random_command_lines_never_panic() {
    let mut pool: Vec<String> = COMMANDS.iter().map(|c| c.name.to_string()).collect();
    for o in OPTIONS {
        pool.push(format!("--{}", o.long));
        if let Some(c) = o.short {
            pool.push(format!("-{c}"));
        }
    }
    pool.extend(
        [
            "web", "5", "1m30s", "HUP", "--", "-", "--since=", "-n", "é", "=", "-s/x", "bash",
        ]
        .map(String::from),
    );
    let mut x = 0x1234_5678_9abc_def1u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 6) as usize;
        let words: Vec<OsString> = (0..n)
            .map(|i| OsString::from(&pool[((x >> (8 * i)) as usize) % pool.len()]))
            .collect();
        let _ = parse(words, &no_env);
    }
}
