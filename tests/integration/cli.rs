//! CLI manners (SPEC §1): help for every command, completion scripts that the
//! shells accept and that know every command, the status table's words, and
//! `tend shutdown` waiting until tend has exited.

use std::process::Command;

use serde_json::json;

use crate::support::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(TEND).args(args).output().expect("tend");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The commands the usage text lists (`  tend NAME ...` lines).
fn listed_commands() -> Vec<String> {
    let (code, out, _) = run(&["help"]);
    assert_eq!(code, 0);
    let names: Vec<String> = out
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("tend "))
        .filter_map(|rest| rest.split(' ').next())
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        .collect();
    assert!(names.len() >= 12, "{out}");
    names
}

#[test]
fn every_command_has_help() {
    for name in listed_commands() {
        for args in [vec!["help", name.as_str()], vec![name.as_str(), "--help"]] {
            let (code, out, err) = run(&args);
            assert_eq!(code, 0, "{args:?}: {err}");
            assert!(out.starts_with(&format!("usage: tend {name}")), "{out}");
            assert!(out.contains("--help"), "{out}");
        }
    }
    let (_, out, _) = run(&["logs", "--help"]);
    assert!(out.contains("--since DURATION") && out.contains("--follow"));
    let (code, _, err) = run(&["help", "nosuch"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn completion_scripts_parse_and_know_every_command() {
    let dir = TestDir::new("compl");
    let commands = listed_commands();
    for shell in ["bash", "zsh"] {
        let (code, script, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        for name in &commands {
            assert!(script.contains(&format!("{name})")), "{shell}: {name}");
        }
        let path = dir.write(&format!("tend.{shell}"), &script);
        match Command::new(shell).arg("-n").arg(&path).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => skip_without(&format!("{shell} is not installed ({shell} -n)")),
        }
    }
    // bash for real: what it offers after `tend st` and `tend logs --s`.
    let script = dir.join("tend.bash").display().to_string();
    let probe = format!(
        "source '{script}'; \
         COMP_WORDS=(tend st); COMP_CWORD=1; _tend; echo \"${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(tend logs --s); COMP_CWORD=2; _tend; echo \"${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(tend signal web KI); COMP_CWORD=3; _tend; echo \"${{COMPREPLY[*]}}\""
    );
    let out = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["status start stop", "--since --socket", "KILL"],
        "{text}"
    );
}

#[test]
fn status_table_counts_restarts_and_shows_the_state_age() {
    let dir = TestDir::new("table");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]}),
    );
    tend.wait_state("a", "running");
    let (code, out, _) = tend.client(&["status"]);
    assert_eq!(code, 0);
    let row = out.lines().nth(1).unwrap_or("");
    assert!(row.contains("0 restarts"), "{out}");
    // `running 3s`, `running 1m2s`: the state and how long it has been so.
    let age = row
        .split("running ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or("");
    assert!(age.ends_with('s') && age.len() >= 2, "{out}");
    assert!(
        !out.contains('\x1b'),
        "no colour without a terminal: {out:?}"
    );
    let (_, _, _) = tend.client(&["restart", "a"]);
    let (_, out, _) = tend.client(&["status"]);
    assert!(
        out.contains("1 restart\n") || out.contains("1 restart "),
        "{out}"
    );
}

#[test]
fn shutdown_returns_once_tend_has_exited() {
    let dir = TestDir::new("shutwait");
    let slow = dir.script(
        "slow",
        "trap 'sleep 1; : > \"$DIR/stopped\"; exit 0' TERM; while :; do sleep 0.05; done",
    );
    let mut tend = Tend::start(
        &dir,
        json!({"services": [{"name": "s", "command": [slow]}]}),
    );
    tend.wait_state("s", "running");
    let (code, _, err) = tend.client(&["shutdown"]);
    assert_eq!(code, 0, "{err}");
    // Checked at once, without waiting: the service had stopped, and tend is
    // gone (or at most a zombie, if we look between its close and its exit).
    assert!(
        dir.exists("stopped"),
        "shutdown returned before the service stopped"
    );
    poll_until("tend exited", PATIENCE, || is_dead(i64::from(tend.pid())));
    assert_eq!(tend.wait_exit().code(), Some(0));
}

#[test]
fn shutdown_no_wait_returns_after_the_reply() {
    let dir = TestDir::new("shutnowait");
    let mut tend = Tend::start(
        &dir,
        json!({"services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]}),
    );
    tend.wait_state("a", "running");
    let (code, _, err) = tend.client(&["shutdown", "--no-wait"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tend.wait_exit().code(), Some(0));
}

/// Output into a pipe nobody reads any more (`tend status | head -1` once
/// head has exited): the rest is dropped quietly, never a panic, and the exit
/// code is still the answer's.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = TestDir::new("epipe");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]}),
    );
    tend.wait_state("a", "running");
    let commands: [&[&str]; 5] = [
        &["status", "-s", &tend.socket],
        &["status", "--json", "-s", &tend.socket],
        &["help"],
        &["completions", "bash"],
        &["--version"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(TEND)
            .args(args)
            .stdout(writer)
            .output()
            .expect("tend");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}
