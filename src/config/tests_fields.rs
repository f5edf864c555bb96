//! Tests of the fields added for the full SPEC §2: each valid form and each
//! invalid one, with the message and place an operator sees.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::tests::{assert_one, parse_test, problems, service, service_problems};
use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

fn top(fields: &str) -> Config {
    let text = format!(r#"{{"services": []{fields}}}"#);
    parse_test(&text).unwrap_or_else(|e| panic!("{fields}: {e}"))
}

fn top_problems(fields: &str) -> Vec<String> {
    problems(&format!(r#"{{"services": []{fields}}}"#))
}

// ----- top level -----

#[test]
fn log_format_and_rotation() {
    assert_eq!(top(r#", "log_format": "json""#).log_format, LogFormat::Json);
    assert_eq!(
        top(r#", "log_format": "plain""#).log_format,
        LogFormat::Plain
    );
    assert_one(
        top_problems(r#", "log_format": "jsno""#),
        "log_format: expected one of text, plain, json, got \"jsno\"; did you mean \"json\"?",
    );
    let c = top(r#", "log_max_size": "1M", "log_keep": 0"#);
    assert_eq!(
        c.log_rotation,
        Rotation {
            max_size: 1 << 20,
            keep: 0
        }
    );
    assert_one(
        top_problems(r#", "log_max_size": 0"#),
        "log_max_size: must be above 0",
    );
    assert_one(
        top_problems(r#", "log_max_size": "big""#),
        "log_max_size: expected a size",
    );
    assert_one(
        top_problems(r#", "log_keep": -1"#),
        "log_keep: expected a whole number from 0 to 1000",
    );
    assert_one(
        top_problems(r#", "log_keep": 1001"#),
        "log_keep: expected a whole number",
    );
}

#[test]
fn log_file_paths() {
    assert_eq!(
        top(r#", "log_file": "logs/tend.log""#).log_file,
        Some(PathBuf::from("/cfg/logs/tend.log")),
        "relative to the config file's folder"
    );
    assert_eq!(
        top(r#", "log_file": "/var/log/tend.log""#).log_file,
        Some(PathBuf::from("/var/log/tend.log"))
    );
    assert_one(
        top_problems(r#", "log_file": "/tmp""#),
        "log_file: /tmp is a folder",
    );
    assert_one(
        top_problems(r#", "log_file": """#),
        "log_file: must not be empty",
    );
    assert_one(
        top_problems(r#", "log_file": 3"#),
        "log_file: expected a string",
    );
    assert_one(
        top_problems(r#", "log_file": "a\u0000b""#),
        "log_file: must not contain a NUL byte",
    );
}

#[test]
fn metrics_address() {
    assert_eq!(
        top(r#", "metrics_address": "127.0.0.1:9187""#).metrics_address,
        Some(addr("127.0.0.1:9187"))
    );
    assert_eq!(
        top(r#", "metrics_address": "[::]:9187""#).metrics_address,
        Some(addr("[::]:9187"))
    );
    assert_one(
        top_problems(r#", "metrics_address": 9187"#),
        "metrics_address: expected a string",
    );
    for bad in [r#""localhost:9187""#, r#""127.0.0.1""#, r#""127.0.0.1:0""#] {
        assert_one(
            top_problems(&format!(r#", "metrics_address": {bad}"#)),
            "metrics_address: expected an IP address and port such as \"127.0.0.1:9187\"",
        );
    }
}

#[test]
fn cgroup_setting() {
    assert_eq!(
        top(r#", "cgroup": "auto""#).cgroup,
        Some(CgroupSetting::Auto)
    );
    assert_eq!(
        top(r#", "cgroup": "/sys/fs/cgroup/tend""#).cgroup,
        Some(CgroupSetting::Path("/sys/fs/cgroup/tend".into()))
    );
    assert_one(
        top_problems(r#", "cgroup": "tend""#),
        "cgroup: expected \"auto\" or an absolute",
    );
    assert_one(
        top_problems(r#", "cgroup": true"#),
        "cgroup: expected a string",
    );
}

#[test]
fn control_socket_length() {
    let ok = format!("/{}", "s".repeat(106));
    assert_eq!(
        top(&format!(r#", "control_socket": "{ok}""#)).control_socket,
        Some(ok.into())
    );
    let long = format!("/{}", "s".repeat(107));
    assert_one(
        top_problems(&format!(r#", "control_socket": "{long}""#)),
        "control_socket: is 108 bytes long; a unix socket path holds at most 107",
    );
    assert_eq!(
        top(r#", "control_socket": """#).control_socket,
        Some(PathBuf::new())
    );
}

#[test]
fn services_dir_without_services_is_a_warning() {
    let dir = PathBuf::from(format!("/tmp/config-emptydir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("not-a-service")).expect("mkdir");
    let c = parse_test(&format!(r#"{{"services_dir": "{}"}}"#, dir.display())).expect("valid");
    assert!(c.services.is_empty());
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].path, "services_dir");
    assert!(
        c.warnings[0].problem.contains("holds no service"),
        "{:?}",
        c.warnings
    );
    let _ = std::fs::remove_dir_all(&dir);
    let c = problems(r#"{"services_dir": "rel/dir"}"#);
    assert_eq!(
        c,
        ["services_dir: cannot read /cfg/rel/dir: No such file or directory (os error 2)"]
    );
}

// ----- service: basics -----

#[test]
fn min_uptime_and_multi_unit_durations() {
    assert_eq!(
        service(r#", "min_uptime": "1m30s""#).min_uptime,
        Duration::from_secs(90)
    );
    assert_eq!(
        service(r#", "min_uptime": "1.5""#).min_uptime,
        Duration::from_millis(1500)
    );
    assert_eq!(
        service(r#", "timeout_stop": "1h2m3.5s""#).timeout_stop,
        Duration::from_millis(3_723_500)
    );
    assert_one(
        service_problems(r#", "min_uptime": "1m30""#),
        "services[0] (s).min_uptime: expected a duration",
    );
    assert_one(
        service_problems(r#", "min_uptime": true"#),
        "services[0] (s).min_uptime: expected a duration",
    );
    assert_one(
        service_problems(r#", "retry_window": 1e12"#),
        "services[0] (s).retry_window: expected a duration",
    );
}

#[test]
fn relative_paths_follow_the_config_file() {
    let s = service(r#", "working_dir": "app", "env_file": "app.env", "log_file": "logs/s.log""#);
    assert_eq!(s.working_dir, Some(PathBuf::from("/cfg/app")));
    assert_eq!(s.env_file, [PathBuf::from("/cfg/app.env")]);
    assert_eq!(s.log_file, Some(PathBuf::from("/cfg/logs/s.log")));
    let s = service(r#", "env_file": ["/etc/a.env", "b.env"]"#);
    assert_eq!(
        s.env_file,
        [PathBuf::from("/etc/a.env"), PathBuf::from("/cfg/b.env")]
    );
    assert!(service(r#", "env_file": []"#).env_file.is_empty());
    assert_one(
        service_problems(r#", "env_file": 1"#),
        "services[0] (s).env_file: expected a path or an array of paths",
    );
    assert_one(
        service_problems(r#", "env_file": ["a", 2]"#),
        "services[0] (s).env_file[1]: expected a string",
    );
    assert_one(
        service_problems(r#", "working_dir": """#),
        "services[0] (s).working_dir: must not be empty",
    );
}

#[test]
fn service_log_rotation_inherits() {
    let c = parse_test(
        r#"{"log_max_size": "2M", "log_keep": 9, "services": [
            {"name": "a", "command": ["x"], "log_file": "/tmp/a.log", "log_keep": 2},
            {"name": "b", "command": ["x"], "log_max_size": 4096}]}"#,
    )
    .expect("valid");
    assert_eq!(
        c.rotation_of(&c.services[0]),
        Rotation {
            max_size: 2 << 20,
            keep: 2
        }
    );
    assert_eq!(
        c.rotation_of(&c.services[1]),
        Rotation {
            max_size: 4096,
            keep: 9
        }
    );
    assert_eq!(c.services[0].log_max_size, None, "inherited, not copied");
    assert_one(
        service_problems(r#", "log_file": "/""#),
        "services[0] (s).log_file: / is a folder",
    );
    assert_one(
        service_problems(r#", "log_keep": "5""#),
        "services[0] (s).log_keep: expected a whole number",
    );
}

#[test]
fn nul_bytes_are_refused() {
    assert_one(
        problems(r#"{"services": [{"name": "s", "command": ["/bin/a\u0000b"]}]}"#),
        "services[0] (s).command[0]: must not contain a NUL byte",
    );
    assert_one(
        problems(r#"{"services": [{"name": "s", "command": ["/bin/true", "x\u0000"]}]}"#),
        "services[0] (s).command[1]: must not contain a NUL byte",
    );
    assert_one(
        service_problems(r#", "environment": {"A": "\u0000"}"#),
        "services[0] (s).environment.A: must not contain a NUL byte",
    );
}

#[test]
fn environment_interpolation() {
    let s = service(
        r#", "environment": {"A": "${HOME}/x", "B": "${NOPE:-d}", "C": "$$5", "D": "${PORT}${EMPTY:-e}"}"#,
    );
    assert_eq!(s.environment["A"], "/home/me/x");
    assert_eq!(s.environment["B"], "d");
    assert_eq!(s.environment["C"], "$5");
    assert_eq!(s.environment["D"], "8080e");
    assert_one(
        service_problems(r#", "environment": {"A": "ok", "B": "x${HOME"}"#),
        "services[0] (s).environment.B: \"${\" at character 2 is never closed",
    );
    assert_one(
        service_problems(r#", "environment": {"A": "${1}"}"#),
        "services[0] (s).environment.A: \"${1}\" at character 1: expected ${NAME}",
    );
    let c = parse_test(
        r#"{"services": [{"name": "s", "command": ["x"], "environment": {"U": "${UNSET_ONE}"}}]}"#,
    )
    .expect("an unset variable is valid");
    assert_eq!(c.services[0].environment["U"], "");
    assert_eq!(
        c.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        [
            "services[0] (s).environment.U: ${UNSET_ONE} is not set in tend's environment; it expands to \"\""
        ]
    );
}

#[test]
fn stderr_level_says_what_replaced_it() {
    assert_eq!(
        service_problems(r#", "stderr_level": "warn""#),
        [
            "services[0] (s).stderr_level: stderr_level was removed: service output is never filtered by log_level; stderr lines are marked as stderr in every log_format"
        ]
    );
}

#[test]
fn suggestions_for_fields_and_values() {
    assert_eq!(
        service_problems(r#", "restart_polcy": "always""#),
        [
            "services[0] (s).restart_polcy: unknown field \"restart_polcy\"; did you mean \"restart_policy\"?"
        ]
    );
    assert_eq!(
        service_problems(r#", "restart_policy": "on_failure""#),
        [
            "services[0] (s).restart_policy: expected one of always, on-failure, never, got \"on_failure\"; did you mean \"on-failure\"?"
        ]
    );
    assert_one(
        service_problems(
            r#", "readiness": {"type": "tcp", "adress": "127.0.0.1:1", "address": "127.0.0.1:1"}"#,
        ),
        "services[0] (s).readiness.adress: unknown field \"adress\"; did you mean \"address\"?",
    );
    assert_one(
        service_problems(r#", "readiness": {"type": "htpp", "url": "http://127.0.0.1/"}"#),
        "services[0] (s).readiness.type: expected one of notify, fd, exec, tcp, http, grpc, log, got \"htpp\"; did you mean \"http\"?",
    );
    assert_one(
        problems(r#"{"servics": []}"#).into_iter().take(1).collect(),
        "servics: unknown field \"servics\"; did you mean \"services\"?",
    );
}

// ----- service: process -----

#[test]
fn cgroup_limits() {
    let text = |limits: &str| {
        format!(
            r#"{{"cgroup": "auto", "services": [{{"name": "s", "command": ["x"], "cgroup_limits": {limits}}}]}}"#
        )
    };
    let c = parse_test(&text(
        r#"{"memory_max": "512M", "cpu_max": "50%", "pids_max": 100}"#,
    ))
    .expect("valid");
    let l = c.services[0].process.cgroup_limits;
    assert_eq!(l.memory_max, Some(512 << 20));
    assert_eq!(
        l.cpu_max,
        Some(CpuMax {
            quota_us: 50_000,
            period_us: 100_000
        })
    );
    assert_eq!(l.pids_max, Some(100));
    let c = parse_test(&text(
        r#"{"memory_max": "max", "cpu_max": "max", "pids_max": "max"}"#,
    ))
    .expect("valid");
    assert!(!c.services[0].process.cgroup_limits.any());
    for (limits, expected) in [
        (
            r#"{"memory_max": 0}"#,
            "services[0] (s).cgroup_limits.memory_max: must be above 0",
        ),
        (
            r#"{"memory_max": "lots"}"#,
            "services[0] (s).cgroup_limits.memory_max: expected a size",
        ),
        (
            r#"{"cpu_max": "0.1%"}"#,
            "services[0] (s).cgroup_limits.cpu_max: expected a share of a CPU",
        ),
        (
            r#"{"cpu_max": 50}"#,
            "services[0] (s).cgroup_limits.cpu_max: expected a share of a CPU",
        ),
        (
            r#"{"pids_max": 0}"#,
            "services[0] (s).cgroup_limits.pids_max: expected a whole number from 1",
        ),
        (
            r#"{"memory": "1G"}"#,
            "services[0] (s).cgroup_limits.memory: unknown field \"memory\"; did you mean \"memory_max\"?",
        ),
    ] {
        assert_one(problems(&text(limits)), expected);
    }
    assert_one(
        service_problems(r#", "cgroup_limits": {"pids_max": 5}"#),
        "services[0] (s).cgroup_limits: needs the top-level \"cgroup\"",
    );
}

#[test]
fn isolate() {
    let s = service(
        r#", "isolate": {"network": true, "tmp": true, "ipc": false, "hostname": "box-1"}"#,
    );
    assert_eq!(
        s.process.isolate,
        Isolate {
            network: true,
            tmp: true,
            ipc: false,
            hostname: Some("box-1".into())
        }
    );
    assert!(!service(r#", "isolate": {}"#).process.isolate.any());
    assert_one(
        service_problems(r#", "isolate": {"network": 1}"#),
        "services[0] (s).isolate.network: expected true or false",
    );
    assert_one(
        service_problems(r#", "isolate": {"hostname": "a b"}"#),
        "services[0] (s).isolate.hostname: \"a b\" is not a valid host name",
    );
    assert_one(
        service_problems(r#", "isolate": {"pid": true}"#),
        "services[0] (s).isolate.pid: unknown field",
    );
}

#[test]
fn scheduling() {
    let s = service(
        r#", "nice": -20, "oom_score_adj": 1000, "cpu_affinity": [0, 3, 1023], "io_priority": {"class": "idle"}"#,
    );
    assert_eq!(
        (s.process.nice, s.process.oom_score_adj),
        (Some(-20), Some(1000))
    );
    assert_eq!(s.process.cpu_affinity, Some(vec![0, 3, 1023]));
    assert_eq!(
        s.process.io_priority,
        Some(IoPriority {
            class: IoClass::Idle,
            level: 4
        })
    );
    let s = service(
        r#", "nice": 19, "oom_score_adj": -1000, "io_priority": {"class": "realtime", "level": 0}"#,
    );
    assert_eq!(
        (s.process.nice, s.process.oom_score_adj),
        (Some(19), Some(-1000))
    );
    assert_eq!(
        s.process.io_priority,
        Some(IoPriority {
            class: IoClass::Realtime,
            level: 0
        })
    );
    assert_eq!(
        service(r#", "io_priority": {"level": 7}"#)
            .process
            .io_priority,
        Some(IoPriority {
            class: IoClass::BestEffort,
            level: 7
        })
    );
    for (fields, expected) in [
        (
            r#", "nice": 20"#,
            "services[0] (s).nice: expected a whole number from -20 to 19, got 20",
        ),
        (
            r#", "nice": -21"#,
            "services[0] (s).nice: expected a whole number from -20 to 19",
        ),
        (
            r#", "oom_score_adj": 1001"#,
            "services[0] (s).oom_score_adj: expected a whole number from -1000 to 1000",
        ),
        (
            r#", "io_priority": {"class": "best_effort"}"#,
            "services[0] (s).io_priority.class: expected one of best-effort, idle, realtime, got \"best_effort\"; did you mean \"best-effort\"?",
        ),
        (
            r#", "io_priority": {"class": "idle", "level": 8}"#,
            "services[0] (s).io_priority.level: expected a whole number from 0 to 7",
        ),
        (
            r#", "io_priority": 4"#,
            "services[0] (s).io_priority: expected an object",
        ),
        (
            r#", "cpu_affinity": []"#,
            "services[0] (s).cpu_affinity: must not be empty",
        ),
        (
            r#", "cpu_affinity": [0, 1, 0]"#,
            "services[0] (s).cpu_affinity[2]: CPU 0 is listed twice",
        ),
        (
            r#", "cpu_affinity": [1024]"#,
            "services[0] (s).cpu_affinity[0]: expected a whole number from 0 to 1023",
        ),
        (
            r#", "cpu_affinity": [-1]"#,
            "services[0] (s).cpu_affinity[0]: expected a whole number",
        ),
        (
            r#", "cpu_affinity": "0-3""#,
            "services[0] (s).cpu_affinity: expected an array of CPU numbers",
        ),
    ] {
        assert_one(service_problems(fields), expected);
    }
}

#[test]
fn sha256() {
    let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    let s = service(&format!(r#", "sha256": "{hex}""#));
    assert_eq!(s.process.sha256.map(|h| (h[0], h[31])), Some((0xe3, 0x55)));
    assert_one(
        service_problems(r#", "sha256": "abc""#),
        "services[0] (s).sha256: expected 64 hexadecimal digits (sha256sum's output): has 3 characters, not 64",
    );
    assert_one(
        service_problems(&format!(r#", "sha256": "{}x""#, &hex[1..])),
        "services[0] (s).sha256: expected 64 hexadecimal digits",
    );
    assert_one(
        service_problems(r#", "sha256": 1"#),
        "services[0] (s).sha256: expected a string",
    );
}
