//! Config tests: one per validation rule of the older fields, defaults, several
//! problems at once, discovery, the golden files. The newer fields are in
//! `tests_fields.rs`, the mangled-input loop in `tests_fuzz.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// The environment tests see: a few fixed variables, nothing from the machine.
pub(super) fn fake_env(key: &str) -> Option<String> {
    match key {
        "HOME" => Some("/home/me".into()),
        "PORT" => Some("8080".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// The hosts file tests see.
pub(super) const FAKE_HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n10.1.2.3 db db.internal\n";

/// Parse with the fake environment and hosts, relative paths against `/cfg`.
pub(super) fn parse_test(text: &str) -> Result<Config, ConfigErrors> {
    parse_with(
        text,
        &Inputs {
            base: Some(Path::new("/cfg")),
            hosts: FAKE_HOSTS,
            env: &fake_env,
        },
    )
}

pub(super) fn problems(text: &str) -> Vec<String> {
    match parse_test(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

/// The problems of one service object named `s` (inside a minimal valid config).
pub(super) fn service_problems(fields: &str) -> Vec<String> {
    problems(&format!(
        r#"{{"services": [{{"name": "s", "command": ["/bin/true"]{fields}}}]}}"#
    ))
}

/// The one service of a config made of `fields`, which must be valid.
pub(super) fn service(fields: &str) -> ServiceSpec {
    let text = format!(r#"{{"services": [{{"name": "s", "command": ["/bin/true"]{fields}}}]}}"#);
    match parse_test(&text) {
        Ok(mut c) => c.services.remove(0),
        Err(e) => panic!("{fields}: {e}"),
    }
}

pub(super) fn assert_one(found: Vec<String>, expected_start: &str) {
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with(expected_start), "{found:#?}");
}

#[test]
fn defaults_follow_the_spec() {
    let c = parse_test(r#"{"services": [{"name": "s", "command": ["x"]}, {"name": "o", "type": "oneshot", "command": ["y"]}]}"#)
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
    assert_eq!(s.min_uptime, Duration::ZERO);
    assert_eq!(
        (s.log_file.as_ref(), s.log_max_size, s.log_keep),
        (None, None, None)
    );
    assert!(s.env_file.is_empty() && s.environment.is_empty());
    assert_eq!(s.readiness, None);
    assert_eq!(s.liveness, None);
    assert!(!s.process.cgroup_limits.any() && !s.process.isolate.any());
    assert_eq!(
        (
            s.process.nice,
            s.process.io_priority,
            s.process.oom_score_adj
        ),
        (None, None, None)
    );
    assert_eq!(
        (s.process.cpu_affinity.as_ref(), s.process.sha256),
        (None, None)
    );
    assert_eq!(c.services[1].restart_policy, RestartPolicy::OnFailure);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(
        c.log_rotation,
        Rotation {
            max_size: 10 << 20,
            keep: 5
        }
    );
    assert_eq!(c.rotation_of(s), c.log_rotation);
    assert_eq!((c.metrics_address, c.cgroup.as_ref()), (None, None));
    assert!(c.warnings.is_empty());
    assert_eq!(c.places, ["services[0] (s)", "services[1] (o)"]);
    // The constructors the rest of tend uses hold the same defaults.
    let mut built = Config::new(vec![
        ServiceSpec::new("s", vec!["x".into()]),
        ServiceSpec::oneshot("o", vec!["y".into()]),
    ]);
    built.places = c.places.clone();
    assert_eq!(built, c);
}

/// Every service's definition is kept for tend's life: the process fields
/// cost one that sets none of them no box (`sparse.rs`), and a `"max"` limit
/// (the same as leaving it out) none either.
#[test]
fn process_fields_are_boxed_only_when_set() {
    let c = parse_test(
        r#"{"cgroup": "auto", "services": [{"name": "a", "command": ["x"]},
        {"name": "b", "command": ["x"], "nice": 5},
        {"name": "c", "command": ["x"], "cgroup_limits": {"memory_max": "max"}}]}"#,
    )
    .expect("valid");
    assert!(!c.services[0].process.is_boxed());
    assert!(c.services[1].process.is_boxed());
    assert_eq!(c.services[1].process.nice, Some(5));
    assert!(!c.services[2].process.is_boxed());
    assert!(std::mem::size_of::<ServiceSpec>() < 600);
}

#[test]
fn every_field_parses() {
    let c = parse_test(
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
             "user": "www", "group": 33,
             "limits": {"nofile": 4096, "nproc": 256, "core": 0, "memory": "512M", "cpu": "1.5s", "fsize": "1G"},
             "critical": true}]}"#,
    )
    .expect("valid");
    assert_eq!(c.control_socket, Some(PathBuf::new()));
    assert_eq!(c.shutdown_timeout, Duration::from_millis(2500));
    let w = &c.services[2];
    assert!(!w.enabled && !w.inherit_environment && w.critical);
    assert_eq!(w.process.group.as_deref(), Some("33"));
    assert_eq!(w.stop_signal, Signal(libc::SIGINT));
    assert_eq!(w.process.limits.memory, Some(512 << 20));
    assert_eq!(w.process.limits.cpu, Some(2), "cpu seconds round up");
    assert_eq!(w.dependencies[0].condition, Condition::Completed);
    assert_eq!(c.services[1].dependencies[0].condition, Condition::Ready);
    let Some(Liveness {
        failures,
        check:
            Check {
                kind: CheckKind::Exec { .. },
                interval,
                timeout,
            },
    }) = w.liveness.as_deref()
    else {
        panic!("liveness {:?}", w.liveness)
    };
    assert_eq!(
        (*failures, *interval, *timeout),
        (5, Duration::from_secs(10), Duration::from_secs(5))
    );
}

#[test]
fn unknown_field() {
    assert_one(
        service_problems(r#", "colour": 1"#),
        "services[0] (s).colour: unknown field \"colour\"; expected one of name, command,",
    );
    assert_one(
        problems(r#"{"services": [], "extra": 1}"#),
        "extra: unknown field \"extra\"; expected one of log_level,",
    );
}

#[test]
fn duplicate_key() {
    assert_one(
        service_problems(r#", "name": "t""#),
        "services[0] (s).name: duplicate field",
    );
}

#[test]
fn wrong_types() {
    assert_one(
        service_problems(r#", "enabled": "yes""#),
        "services[0] (s).enabled: expected true or false",
    );
    assert_one(
        service_problems(r#", "max_retries": 1.5"#),
        "services[0] (s).max_retries: expected a whole number",
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
        "services[0] (x).command: missing",
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
        ["services[1] (a).name: duplicate service name \"a\" (also services[0] (a))"]
    );
}

#[test]
fn empty_command() {
    assert_one(
        problems(r#"{"services": [{"name": "a", "command": []}]}"#),
        "services[0] (a).command: must not be empty",
    );
    assert_one(
        problems(r#"{"services": [{"name": "a", "command": [""]}]}"#),
        "services[0] (a).command[0]: must not be empty",
    );
    assert_one(
        problems(r#"{"services": [{"name": "a", "command": ["x", 1]}]}"#),
        "services[0] (a).command[1]: expected a string",
    );
}

#[test]
fn bad_units() {
    assert_one(
        service_problems(r#", "timeout_stop": "ten""#),
        "services[0] (s).timeout_stop: expected a duration",
    );
    assert_one(
        service_problems(r#", "retry_delay": -1"#),
        "services[0] (s).retry_delay: expected a duration",
    );
    assert_one(
        service_problems(r#", "stop_signal": "SIGNOPE""#),
        "services[0] (s).stop_signal: expected a signal",
    );
    assert_one(
        service_problems(r#", "stop_signal": 99"#),
        "services[0] (s).stop_signal: expected a signal",
    );
    assert_one(
        service_problems(r#", "limits": {"memory": "1T"}"#),
        "services[0] (s).limits.memory: expected a size",
    );
}

#[test]
fn bad_enums() {
    assert_one(
        service_problems(r#", "type": "daemon""#),
        "services[0] (s).type: expected one of longrun, oneshot",
    );
    assert_one(
        service_problems(r#", "output": "file""#),
        "services[0] (s).output: expected one of log, inherit, null",
    );
    assert_one(
        service_problems(r#", "stderr_level": "loud""#),
        "services[0] (s).stderr_level: stderr_level was removed: service output is never filtered by log_level",
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
        "services[0] (s).dependencies[0]: unknown service \"db\"",
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
        ["services[0] (a).dependencies: dependency cycle: a -> b -> a"]
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
        "services[1] (b).dependencies[0]: condition \"completed\" needs a oneshot",
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
    let dir = PathBuf::from(format!("/tmp/config-disc-{}", std::process::id()));
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
    let c = parse_test(&text).expect("valid");
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

/// What a client reads: the top level in full, the services for syntax only.
#[test]
fn the_top_level_alone() {
    let top = |text: &str| {
        validate::validate_top(
            text,
            &Inputs {
                base: Some(Path::new("/cfg")),
                hosts: FAKE_HOSTS,
                env: &fake_env,
            },
        )
        .map_err(|e| e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    };
    // Problems inside services do not stop it, and none is kept.
    let text = r#"{"control_socket": "t.sock", /* c */ "services": [{"name": "a", "bogus": 1},],}"#;
    let config = top(text).expect("the top level is valid");
    assert_eq!(config.control_socket, Some(PathBuf::from("t.sock")));
    assert!(config.services.is_empty());
    assert!(!problems(text).is_empty(), "the whole config is not");
    // Top-level problems are the full validation's, suggestions included.
    let text = r#"{"control_sockt": "/x", "services": []}"#;
    assert_eq!(top(text).expect_err("misspelt"), problems(text));
    assert!(
        problems(text)[0].contains("did you mean \"control_socket\"?"),
        "{:?}",
        problems(text)
    );
    for text in [
        r#"{"services": 3}"#,
        r#"{"log_level": "loud", "services": []}"#,
        r#"{}"#,
        &format!(
            r#"{{"control_socket": "/{}", "services": []}}"#,
            "s".repeat(200)
        ),
    ] {
        assert_eq!(top(text).expect_err(text), problems(text), "{text}");
    }
    // Broken JSON anywhere is still an error, at its place.
    let text = "{\"services\": [\n  {\"name\": \"a\"},\n  {\"name\" 1}\n]}";
    assert_eq!(top(text).expect_err("syntax"), problems(text));
    assert!(
        problems(text)[0].starts_with("line 3, column"),
        "{:?}",
        problems(text)
    );
}
