//! Config tests: one per validation rule, defaults, several problems at once,
//! discovery, the golden files, and no panic on mangled input.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn problems(text: &str) -> Vec<String> {
    match parse(text, None) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

/// The problems of one service object (inside a minimal valid config).
fn service_problems(fields: &str) -> Vec<String> {
    problems(&format!(
        r#"{{"services": [{{"name": "s", "command": ["/bin/true"]{fields}}}]}}"#
    ))
}

fn assert_one(found: Vec<String>, expected_start: &str) {
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with(expected_start), "{found:#?}");
}

#[test]
fn defaults_follow_the_spec() {
    let c = parse(r#"{"services": [{"name": "s", "command": ["x"]}, {"name": "o", "type": "oneshot", "command": ["y"]}]}"#, None)
        .expect("valid");
    assert_eq!(c.log_level, log::LevelFilter::Info);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.control_socket, None);
    assert!(!c.exit_when_idle);
    let s = &c.services[0];
    assert_eq!(s.service_type, ServiceType::Longrun);
    assert!(s.enabled && s.inherit_environment && !s.critical);
    assert_eq!(s.restart_policy, RestartPolicy::Always);
    assert_eq!(s.success_exit_codes, [0]);
    assert_eq!(s.max_retries, 10);
    assert_eq!(s.retry_window, Duration::from_secs(60));
    assert_eq!(s.retry_delay, Duration::from_secs(1));
    assert_eq!(s.max_retry_delay, Duration::from_secs(30));
    assert_eq!(s.timeout_start, Duration::from_secs(60));
    assert_eq!(s.timeout_stop, Duration::from_secs(10));
    assert_eq!(s.stop_signal, Signal::TERM);
    assert_eq!(s.output, OutputMode::Log);
    assert_eq!(s.stderr_level, log::Level::Error);
    assert_eq!(c.services[1].restart_policy, RestartPolicy::OnFailure);
}

#[test]
fn every_field_parses() {
    let c = parse(
        r#"{"log_level": "debug", "log_file": "/tmp/t.log", "control_socket": "", "shutdown_timeout": 2.5,
            "exit_when_idle": true, "services": [
            {"name": "db", "command": ["pg"], "readiness": {"type": "tcp", "address": "127.0.0.1:5432"}},
            {"name": "m", "type": "oneshot", "command": ["m"], "dependencies": ["db"]},
            {"name": "web", "command": ["w", "--x"], "enabled": false, "working_dir": "/srv",
             "environment": {"A": "1"}, "inherit_environment": false, "restart_policy": "never",
             "success_exit_codes": [0, 2], "max_retries": 3, "retry_window": "5m", "retry_delay": "250ms",
             "max_retry_delay": "1h", "dependencies": [{"service": "m", "condition": "completed"}],
             "readiness": {"type": "http", "url": "http://127.0.0.1:8080/healthz"},
             "liveness": {"type": "exec", "command": ["check"], "failures": 5},
             "timeout_start": "1m", "stop_signal": "INT", "timeout_stop": 3, "output": "inherit",
             "stderr_level": "warn", "user": "www", "group": 33,
             "limits": {"nofile": 4096, "nproc": 256, "core": 0, "memory": "512M", "cpu": "1.5s", "fsize": "1G"},
             "critical": true}]}"#,
        None,
    )
    .expect("valid");
    assert_eq!(c.control_socket, Some(PathBuf::new()));
    assert_eq!(c.shutdown_timeout, Duration::from_millis(2500));
    let w = &c.services[2];
    assert!(!w.enabled && !w.inherit_environment && w.critical);
    assert_eq!(w.group.as_deref(), Some("33"));
    assert_eq!(w.stop_signal, Signal(libc::SIGINT));
    assert_eq!(w.limits.memory, Some(512 << 20));
    assert_eq!(w.limits.cpu, Some(2), "cpu seconds round up");
    assert_eq!(w.dependencies[0].condition, Condition::Completed);
    assert_eq!(c.services[1].dependencies[0].condition, Condition::Ready);
    let Some(Liveness {
        failures,
        probe: Probe::Exec { interval, .. },
    }) = &w.liveness
    else {
        panic!("liveness {:?}", w.liveness)
    };
    assert_eq!((*failures, *interval), (5, Duration::from_secs(10)));
}

#[test]
fn unknown_field() {
    assert_one(
        service_problems(r#", "colour": 1"#),
        "services[0].colour: unknown field",
    );
    assert_one(
        problems(r#"{"services": [], "extra": 1}"#),
        "extra: unknown field",
    );
}

#[test]
fn duplicate_key() {
    assert_one(
        service_problems(r#", "name": "t""#),
        "services[0].name: duplicate field",
    );
}

#[test]
fn wrong_types() {
    assert_one(
        service_problems(r#", "enabled": "yes""#),
        "services[0].enabled: expected true or false",
    );
    assert_one(
        service_problems(r#", "max_retries": 1.5"#),
        "services[0].max_retries: expected a whole number",
    );
    assert_one(
        problems(r#"{"services": {}}"#),
        "services: expected an array",
    );
    assert_one(problems("[]"), "(top level): expected an object");
}

#[test]
fn missing_name_and_command() {
    assert_one(
        problems(r#"{"services": [{"command": ["x"]}]}"#),
        "services[0].name: missing",
    );
    assert_one(
        problems(r#"{"services": [{"name": "x"}]}"#),
        "services[0].command: missing",
    );
    assert_one(problems("{}"), "services: missing");
}

#[test]
fn bad_names() {
    for bad in ["", "a b", "x/y", &"n".repeat(65)] {
        let found = problems(&format!(
            r#"{{"services": [{{"name": "{bad}", "command": ["x"]}}]}}"#
        ));
        assert_one(found, "services[0].name:");
    }
}

#[test]
fn duplicate_names() {
    let found = problems(
        r#"{"services": [{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]}"#,
    );
    assert_eq!(
        found,
        ["services[1].name: duplicate service name \"a\" (also services[0])"]
    );
}

#[test]
fn empty_command() {
    assert_one(
        problems(r#"{"services": [{"name": "a", "command": []}]}"#),
        "services[0].command: must not be empty",
    );
    assert_one(
        problems(r#"{"services": [{"name": "a", "command": [""]}]}"#),
        "services[0].command[0]: must not be empty",
    );
    assert_one(
        problems(r#"{"services": [{"name": "a", "command": ["x", 1]}]}"#),
        "services[0].command[1]: expected a string",
    );
}

#[test]
fn bad_units() {
    assert_one(
        service_problems(r#", "timeout_stop": "ten""#),
        "services[0].timeout_stop: expected a duration",
    );
    assert_one(
        service_problems(r#", "retry_delay": -1"#),
        "services[0].retry_delay: expected a duration",
    );
    assert_one(
        service_problems(r#", "stop_signal": "SIGNOPE""#),
        "services[0].stop_signal: expected a signal",
    );
    assert_one(
        service_problems(r#", "stop_signal": 99"#),
        "services[0].stop_signal: expected a signal",
    );
    assert_one(
        service_problems(r#", "limits": {"memory": "1T"}"#),
        "services[0].limits.memory: expected a size",
    );
}

#[test]
fn bad_enums() {
    assert_one(
        service_problems(r#", "type": "daemon""#),
        "services[0].type: expected one of longrun, oneshot",
    );
    assert_one(
        service_problems(r#", "output": "file""#),
        "services[0].output: expected one of log, inherit, null",
    );
    assert_one(
        service_problems(r#", "stderr_level": "loud""#),
        "services[0].stderr_level: expected one of",
    );
    assert_one(
        problems(r#"{"log_level": "x", "services": []}"#),
        "log_level: expected one of",
    );
}

#[test]
fn unknown_dependency() {
    assert_one(
        service_problems(r#", "dependencies": ["db"]"#),
        "services[0].dependencies[0]: unknown service \"db\"",
    );
}

#[test]
fn dependency_cycle_is_named() {
    let found = problems(
        r#"{"services": [{"name": "a", "command": ["x"], "dependencies": ["b"]},
                         {"name": "b", "command": ["x"], "dependencies": ["a"]}]}"#,
    );
    assert_eq!(
        found,
        ["services[0].dependencies: dependency cycle: a -> b -> a"]
    );
}

#[test]
fn completed_needs_a_oneshot() {
    let found = problems(
        r#"{"services": [{"name": "a", "command": ["x"]},
                         {"name": "b", "command": ["x"], "dependencies": [{"service": "a", "condition": "completed"}]}]}"#,
    );
    assert_one(
        found,
        "services[1].dependencies[0]: condition \"completed\" needs a oneshot",
    );
}

#[test]
fn many_problems_at_once() {
    let found = problems(
        r#"{"services": [{"name": "a", "command": [], "timeout_stop": "x", "colour": 1},
                         {"name": "a", "command": ["y"], "dependencies": ["zz"]}]}"#,
    );
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn json_syntax_error_has_line_and_column() {
    assert_one(
        problems("{\n\"services\": [,]}"),
        "line 2, column 14: invalid JSON",
    );
}

#[test]
fn missing_services_dir_is_an_error() {
    assert_one(
        problems(r#"{"services_dir": "/nonexistent/tend-test"}"#),
        "services_dir: cannot read /nonexistent/tend-test",
    );
}

#[test]
fn discovery_finds_services_and_applies_service_json() {
    let dir = PathBuf::from(format!("/tmp/tend-disc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let make = |name: &str, exec: bool| {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).expect("mkdir");
        let file = folder.join(name);
        std::fs::write(&file, "#!/bin/sh\n").expect("write");
        let mode = if exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    make("alpha", true);
    make("beta", true);
    make("notexec", false);
    make("listed", true);
    std::fs::create_dir_all(dir.join("empty")).expect("mkdir");
    std::fs::write(
        dir.join("beta/service.json"),
        r#"{"enabled": false, "timeout_stop": 2}"#,
    )
    .expect("json");
    let text = format!(
        r#"{{"services_dir": "{}", "services": [{{"name": "listed", "command": ["/bin/true"]}}]}}"#,
        dir.display()
    );
    let c = parse(&text, None).expect("valid");
    let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["listed", "alpha", "beta"]);
    assert_eq!(c.services[0].command, ["/bin/true"], "listed wins");
    assert_eq!(
        c.services[1].command,
        [dir.join("alpha/alpha").display().to_string()]
    );
    assert_eq!(
        c.services[1].working_dir.as_deref(),
        Some(dir.join("alpha").as_path())
    );
    assert!(!c.services[2].enabled);
    assert_eq!(c.services[2].timeout_stop, Duration::from_secs(2));
    std::fs::write(dir.join("beta/service.json"), r#"{"timeout_stop": "x"}"#).expect("json");
    let found = problems(&text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("services_dir/beta/service.json.timeout_stop"),
        "{found:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn golden_files_match() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/check");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("golden dir").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let expected =
            std::fs::read_to_string(path.with_extension("expected")).expect("expected file");
        let got = match load(&path) {
            Ok(_) => String::from("(valid)\n"),
            Err(e) => format!("{e}\n"),
        };
        if got != expected {
            let mut diff = String::new();
            for (i, (g, w)) in got.lines().zip(expected.lines()).enumerate() {
                if g != w {
                    diff.push_str(&format!("line {}:\n  got:  {g}\n  want: {w}\n", i + 1));
                }
            }
            panic!(
                "{} differs ({} vs {} lines):\n{diff}",
                path.display(),
                got.lines().count(),
                expected.lines().count()
            );
        }
        checked += 1;
    }
    assert!(checked >= 3);
}

#[test]
fn mangled_input_never_panics() {
    let valid = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.json"))
        .expect("demo config");
    let bytes = valid.as_bytes();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let tokens: [&[u8]; 12] = [
        b"{", b"}", b"[", b"]", b"\"", b",", b":", b"-1", b"1e999", b"null", b"\"x\"", b"\\u0000",
    ];
    for _ in 0..600 {
        let mut text = bytes.to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % (text.len() + 1);
            match next() % 3 {
                0 => text.truncate(at),
                1 => {
                    let t = tokens[(next() as usize) % tokens.len()];
                    text.splice(at..at, t.iter().copied());
                }
                _ => {
                    if at < text.len() {
                        text.remove(at);
                    }
                }
            }
        }
        let _ = parse(&String::from_utf8_lossy(&text), None);
    }
}
