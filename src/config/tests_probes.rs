//! Tests of `readiness` and `liveness` (every type, each invalid form) and of
//! JSON with comments, with the message and place an operator sees.

use std::net::SocketAddr;
use std::time::Duration;

use super::tests::{assert_one, parse_test, problems, service, service_problems};
use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

// ----- service: readiness and liveness -----

#[test]
fn readiness_types() {
    let r = |fields: &str| {
        service(&format!(r#", "readiness": {fields}"#))
            .readiness
            .map(|r| *r)
    };
    assert_eq!(
        r(r#"{"type": "notify"}"#),
        Some(Readiness::Notify { watchdog: None })
    );
    assert_eq!(
        r(r#"{"type": "notify", "watchdog": "30s"}"#),
        Some(Readiness::Notify {
            watchdog: Some(Duration::from_secs(30))
        })
    );
    assert_eq!(
        r(r#"{"type": "fd", "fd": 3}"#),
        Some(Readiness::Fd { fd: 3 })
    );
    assert_eq!(
        r(r#"{"type": "log", "pattern": "up"}"#),
        Some(Readiness::Log {
            pattern: "up".into()
        })
    );
    let check = |kind, interval: u64, timeout: u64| {
        Some(Readiness::Check(Check {
            kind,
            interval: Duration::from_millis(interval),
            timeout: Duration::from_millis(timeout),
        }))
    };
    assert_eq!(
        r(r#"{"type": "tcp", "address": "db:5432"}"#),
        check(
            CheckKind::Tcp {
                address: addr("10.1.2.3:5432")
            },
            1000,
            1000
        )
    );
    assert_eq!(
        r(r#"{"type": "exec", "command": ["pg_isready"], "interval": "250ms"}"#),
        check(
            CheckKind::Exec {
                command: vec!["pg_isready".into()]
            },
            250,
            250
        )
    );
    assert_eq!(
        r(r#"{"type": "http", "url": "http://localhost:8080/healthz", "interval": "30s"}"#),
        check(
            CheckKind::Http {
                address: addr("127.0.0.1:8080"),
                host: "localhost:8080".into(),
                path: "/healthz".into()
            },
            30_000,
            5_000
        ),
        "timeout: the interval, at most 5s"
    );
    assert_eq!(
        r(r#"{"type": "grpc", "address": "[::1]:50051", "timeout": "2s", "interval": 1}"#),
        check(
            CheckKind::Grpc {
                address: addr("[::1]:50051"),
                service: String::new()
            },
            1000,
            2000
        )
    );
    assert_eq!(
        r(r#"{"type": "grpc", "address": "127.0.0.1:50051", "service": "api.v1"}"#),
        check(
            CheckKind::Grpc {
                address: addr("127.0.0.1:50051"),
                service: "api.v1".into()
            },
            1000,
            1000
        )
    );
}

#[test]
fn bad_readiness() {
    for (fields, expected) in [
        (
            r#"{"type": "fd", "fd": 2}"#,
            "readiness.fd: expected a whole number from 3 to 1023, got 2",
        ),
        (r#"{"type": "fd"}"#, "readiness.fd: missing"),
        (
            r#"{"type": "notify", "watchdog": 0}"#,
            "readiness.watchdog: must be at least 1ms",
        ),
        (
            r#"{"type": "log", "pattern": ""}"#,
            "readiness.pattern: must not be empty",
        ),
        (
            r#"{"type": "tcp", "address": "127.0.0.1:5432", "interval": 0}"#,
            "readiness.interval: must be at least 1ms",
        ),
        (
            r#"{"type": "tcp", "address": "127.0.0.1:5432", "timeout": "0s"}"#,
            "readiness.timeout: must be at least 1ms",
        ),
        (
            r#"{"type": "tcp", "address": "example.com:80"}"#,
            "readiness.address: \"example.com\" is not an IP address, \"localhost\" or a name in /etc/hosts; tend does not use DNS",
        ),
        (
            r#"{"type": "tcp", "address": "127.0.0.1"}"#,
            "readiness.address: expected HOST:PORT",
        ),
        (
            r#"{"type": "http", "url": "https://127.0.0.1/"}"#,
            "readiness.url: \"https://127.0.0.1/\": https is not supported",
        ),
        (
            r#"{"type": "http", "url": "http://nowhere.example/"}"#,
            "readiness.url: \"nowhere.example\" is not an IP address",
        ),
        (r#"{"type": "grpc"}"#, "readiness.address: missing"),
        (
            r#"{"type": "exec", "command": []}"#,
            "readiness.command: must not be empty",
        ),
        (
            r#"{"type": "log", "pattern": "x", "interval": 1}"#,
            "readiness.interval: unknown field",
        ),
        (
            r#"{"address": "127.0.0.1:1"}"#,
            "readiness.type: missing; one of notify, fd, exec, tcp, http, grpc, log",
        ),
        ("\"tcp\"", "readiness: expected an object with a \"type\""),
    ] {
        assert_one(
            service_problems(&format!(r#", "readiness": {fields}"#)),
            &format!("services[0] (s).{expected}"),
        );
    }
}

#[test]
fn liveness() {
    let l = service(r#", "liveness": {"type": "tcp", "address": "127.0.0.1:1"}"#)
        .liveness
        .expect("liveness");
    assert_eq!(l.failures, 3);
    assert_eq!(
        (l.check.interval, l.check.timeout),
        (Duration::from_secs(10), Duration::from_secs(5))
    );
    let l = service(
        r#", "liveness": {"type": "grpc", "address": "db:1", "failures": 1, "interval": "2s"}"#,
    )
    .liveness
    .expect("liveness");
    assert_eq!((l.failures, l.check.timeout), (1, Duration::from_secs(2)));
    for (fields, expected) in [
        (
            r#"{"type": "notify"}"#,
            "liveness.type: \"notify\" is not a liveness type: the notify watchdog is part of readiness",
        ),
        (
            r#"{"type": "log", "pattern": "x"}"#,
            "liveness.type: \"log\" is readiness only; liveness is one of exec, tcp, http, grpc",
        ),
        (
            r#"{"type": "fd", "fd": 3}"#,
            "liveness.type: \"fd\" is readiness only",
        ),
        (
            r#"{"type": "tcp", "address": "127.0.0.1:1", "failures": 0}"#,
            "liveness.failures: expected a whole number from 1",
        ),
        (
            r#"{"type": "exec", "command": ["x"], "watchdog": 1}"#,
            "liveness.watchdog: unknown field",
        ),
    ] {
        assert_one(
            service_problems(&format!(r#", "liveness": {fields}"#)),
            &format!("services[0] (s).{expected}"),
        );
    }
    assert_one(
        service_problems(
            r#", "readiness": {"type": "tcp", "address": "127.0.0.1:1", "failures": 3}"#,
        ),
        "services[0] (s).readiness.failures: unknown field",
    );
}

// ----- JSON with comments -----

#[test]
fn comments_and_trailing_commas() {
    let c = parse_test(
        "// tend config\n{\n  /* the services */\n  \"services\": [\n    {\"name\": \"a\", \"command\": [\"x\",],}, // a\n  ],\n}\n",
    )
    .expect("valid");
    assert_eq!(c.services[0].command, ["x"]);
    assert_eq!(
        problems(
            "// one\n{\n  \"services\": [\n    /* two */ {\"name\": \"a\" \"command\": []}\n  ]\n}"
        ),
        ["line 4, column 28: invalid JSON: expected `,` or `}`"]
    );
    assert_eq!(
        problems("{\"services\": [] /* never closed\n}"),
        ["line 1, column 17: invalid JSON: a /* comment is never closed with */"]
    );
}

#[test]
fn every_problem_of_a_service_names_it() {
    let found = problems(
        r#"{"services": [{"name": "web", "command": ["x"], "timeout_stop": "x", "nice": 99,
                          "readiness": {"type": "tcp", "address": "nope:1"}},
                         {"command": ["y"], "colour": 1}]}"#,
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found[..3]
            .iter()
            .all(|p| p.starts_with("services[0] (web).")),
        "{found:#?}"
    );
    assert!(
        found[3..].iter().all(|p| p.starts_with("services[1].")),
        "{found:#?}"
    );
}
