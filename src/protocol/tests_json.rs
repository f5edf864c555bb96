//! The hand-written JSON of `json.rs` against the serde derives it replaced.
//!
//! `old` (`tests_serde.rs`) is a copy of the five types as they were derived
//! (attributes and all). Every line is read by both; they must agree on whether it is valid
//! and, when it is, serde writing the old value must give exactly the bytes
//! `json.rs` writes for the new one. Golden strings pin the format itself.

use serde_json::json;

use crate::codec::json::Writer;

use super::tests_serde as old;
use super::*;

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8")
}

fn every_request() -> Vec<Request> {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        Request::Status { names: vec![] },
        Request::Status {
            names: names(&["a", "b c"]),
        },
        Request::Start {
            names: names(&["a"]),
            wait: true,
        },
        Request::Stop {
            names: names(&["a", "é\"\\"]),
            wait: false,
        },
        Request::Restart {
            names: vec![],
            wait: true,
        },
        Request::Signal {
            name: "a".into(),
            signal: "HUP".into(),
        },
        Request::Reload {},
        Request::Shutdown {},
        Request::Reexec {},
        Request::Logs {
            names: vec![],
            name: None,
            lines: None,
            since_ms: None,
            follow: false,
        },
        Request::Logs {
            names: names(&["a", "b"]),
            name: Some("c".into()),
            lines: Some(3),
            since_ms: Some(1_700_000_000_000),
            follow: true,
        },
    ]
}

/// A reply with every field used: statuses with and without probes and
/// floats, lines with characters that must be escaped.
fn full_reply() -> Reply {
    let mut up = sample_status("web", "running");
    up.uptime_secs = Some(1234.567);
    up.restarts = 3;
    up.since = Some("2026-11-22T15:47:53.045Z".into());
    up.probe = Some(ProbeStatus {
        ok: false,
        at: "2026-11-22T15:47:54.000Z".into(),
        message: Some("connect 127.0.0.1:5432: connection refused".into()),
        failures_in_row: 2,
    });
    up.cpu_secs = Some(0.25);
    up.memory_bytes = Some(3 << 20);
    up.usage_at = Some("2026-11-22T15:47:55.000Z".into());
    up.cgroup = Some("/sys/fs/cgroup/tend/web".into());
    let mut down = sample_status("db \"main\"", "failed");
    down.service_type = "oneshot".into();
    down.enabled = false;
    down.last_exit_code = Some(-1);
    down.last_signal = Some("KILL".into());
    down.last_error = Some("exited\nbadly\t\u{1}".into());
    down.completed = true;
    down.next_start_in_secs = Some(1.0);
    down.waiting_for = Some("web".into());
    down.status_text = Some("almost".into());
    down.probe = Some(ProbeStatus {
        ok: true,
        at: "t".into(),
        message: None,
        failures_in_row: 0,
    });
    Reply {
        ok: false,
        error: Some("it \"failed\"".into()),
        message: Some("note".into()),
        problems: vec!["p1".into(), "p2 \\".into()],
        services: Some(vec![up, down, sample_status("idle", "stopped")]),
        lines: Some(vec![
            LogLine {
                ts: "2026-11-22T15:47:53.045Z".into(),
                seq: 7,
                service: "web".into(),
                stream: "stdout".into(),
                line: "hello \u{1b}[31mred\u{1b}[0m \"q\" \\ é".into(),
            },
            LogLine {
                ts: String::new(),
                seq: 0,
                service: String::new(),
                stream: "stderr".into(),
                line: String::new(),
            },
        ]),
    }
}

#[test]
fn every_request_round_trips_and_writes_what_serde_wrote() {
    for r in every_request() {
        let line = text(r.to_json());
        assert_eq!(Request::parse(&line).as_ref(), Ok(&r), "{line}");
        let old: old::Request = serde_json::from_str(&line).expect(&line);
        assert_eq!(serde_json::to_string(&old).expect("json"), line);
    }
}

#[test]
fn a_full_reply_round_trips_and_writes_what_serde_wrote() {
    for reply in [full_reply(), Reply::ok(), Reply::error("no")] {
        let line = text(reply.to_json());
        assert_eq!(Reply::parse(&line).as_ref(), Ok(&reply), "{line}");
        let old: old::Reply = serde_json::from_str(&line).expect(&line);
        assert_eq!(serde_json::to_string(&old).expect("json"), line);
    }
    // `tend status --json`, compared byte for byte with serde's pretty form.
    let services = full_reply().services.unwrap_or_default();
    let old: Vec<old::ServiceStatus> = serde_json::from_slice(&full_reply().to_json()).map_or_else(
        |e| panic!("{e}"),
        |r: old::Reply| r.services.unwrap_or_default(),
    );
    assert_eq!(
        statuses_pretty(&services),
        serde_json::to_string_pretty(&old).expect("pretty")
    );
    assert_eq!(statuses_pretty(&[]), "[]");
}

#[test]
fn golden_lines() {
    let golden = [
        (
            Request::Start {
                names: vec!["web".into()],
                wait: true,
            }
            .to_json(),
            r#"{"cmd":"start","names":["web"],"wait":true}"#,
        ),
        (
            Request::Status { names: vec![] }.to_json(),
            r#"{"cmd":"status","names":[]}"#,
        ),
        (
            Request::Logs {
                names: vec![],
                name: Some("a".into()),
                lines: None,
                since_ms: Some(5),
                follow: false,
            }
            .to_json(),
            r#"{"cmd":"logs","name":"a","since_ms":5,"follow":false}"#,
        ),
        (Reply::ok().to_json(), r#"{"ok":true}"#),
        (
            Reply::error("bad \"x\"\n").to_json(),
            r#"{"ok":false,"error":"bad \"x\"\n"}"#,
        ),
        (
            Reply {
                services: Some(vec![sample_status("a", "running")]),
                ..Reply::ok()
            }
            .to_json(),
            concat!(
                r#"{"ok":true,"services":[{"name":"a","state":"running","type":"longrun","#,
                r#""enabled":true,"pid":10,"uptime_secs":null,"restarts":0,"#,
                r#""last_exit_code":null,"last_signal":null,"last_error":null,"#,
                r#""completed":false,"next_start_in_secs":null,"waiting_for":null,"#,
                r#""status_text":null,"since":null,"ready":true,"probe":null,"#,
                r#""cpu_secs":null,"memory_bytes":null,"usage_at":null,"cgroup":null}]}"#
            ),
        ),
    ];
    for (bytes, expected) in golden {
        assert_eq!(text(bytes), expected);
    }
    // The full reply, compared as a value with one written out by hand.
    let value: serde_json::Value = serde_json::from_slice(&full_reply().to_json()).expect("json");
    let probe = json!({"ok": false, "at": "2026-11-22T15:47:54.000Z",
        "message": "connect 127.0.0.1:5432: connection refused", "failures_in_row": 2});
    assert_eq!(value["services"][0]["probe"], probe);
    assert_eq!(value["services"][0]["uptime_secs"], json!(1234.567));
    assert_eq!(value["services"][1]["type"], "oneshot");
    assert_eq!(value["services"][1]["last_exit_code"], -1);
    assert_eq!(value["services"][1]["probe"]["message"], json!(null));
    assert_eq!(value["problems"], json!(["p1", "p2 \\"]));
    assert_eq!(
        value["lines"][1],
        json!({"ts": "", "seq": 0, "service": "", "stream": "stderr", "line": ""})
    );
}

#[test]
fn floats_in_statuses_print_as_serde_json_prints_them() {
    for (x, expected) in [
        (0.0, "0.0"),
        (1.0, "1.0"),
        (0.25, "0.25"),
        (1e21, "1e+21"),
        (123456.789, "123456.789"),
        (f64::NAN, "null"),
    ] {
        let mut s = sample_status("a", "running");
        s.uptime_secs = Some(x);
        let mine = text(
            Reply {
                services: Some(vec![s]),
                ..Reply::ok()
            }
            .to_json(),
        );
        assert!(
            mine.contains(&format!("\"uptime_secs\":{expected},")),
            "{mine}"
        );
        assert_eq!(serde_json::to_string(&x).expect("json"), expected);
    }
}

#[test]
fn messages_say_what_was_wrong() {
    let cases = [
        (
            r#"{"cmd":"shutdown","names":["x"]}"#,
            "unknown field `names`",
        ),
        (
            r#"{"cmd":"status","nmes":[]}"#,
            "unknown field `nmes`: `status` takes names",
        ),
        (r#"{"cmd":"start"}"#, "missing field `names`"),
        (r#"{"names":[]}"#, "missing field `cmd`"),
        (r#"{"cmd":"frobnicate"}"#, "unknown command \"frobnicate\""),
        (r#"{"cmd":3}"#, "`cmd` must be a string, got 3"),
        (
            r#"{"cmd":"start","names":"web"}"#,
            "`names` must be a list of strings",
        ),
        (
            r#"{"cmd":"stop","names":[],"wait":1}"#,
            "`wait` must be true or false, got 1",
        ),
        (
            r#"{"cmd":"logs","lines":-1}"#,
            "`lines` must be a whole number",
        ),
        (
            r#"{"cmd":"logs","lines":2.5}"#,
            "`lines` must be a whole number",
        ),
        (
            r#"{"cmd":"status","names":[],"names":[]}"#,
            "duplicate field `names`",
        ),
        (r#"["status"]"#, "expected a JSON object, got an array"),
        (r#"{"cmd":"status""#, "EOF while parsing"),
    ];
    for (line, expected) in cases {
        let e = Request::parse(line).expect_err(line);
        assert!(e.contains(expected), "{line}: {e}");
    }
    let e = Reply::parse(r#"{"ok":true,"services":[{"name":"a"}]}"#).expect_err("bad");
    assert!(e.starts_with("services[0]: missing field `state`"), "{e}");
    // Null is "absent" only for fields that may be null.
    assert!(Request::parse(r#"{"cmd":"logs","name":null,"lines":null}"#).is_ok());
    assert!(Request::parse(r#"{"cmd":"status","names":null}"#).is_err());
    // A newer tend's reply with fields this one does not know still parses.
    let reply = Reply::parse(
        r#"{"ok":true,"future":{"x":[1]},"lines":[{"stream":"stdout","line":"x","color":"red"}]}"#,
    );
    assert_eq!(reply.map(|r| r.lines.map(|l| l.len())), Ok(Some(1)));
}

/// A small deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `line` changed in one place (a quarter of the time two): bytes replaced,
/// inserted (JSON's own characters, pieces of field names and values),
/// removed, cut off or copied elsewhere, or (to reach the parser beyond the
/// syntax) a field added in front or a word swapped for another.
fn mutate(rng: &mut Rng, line: &str) -> String {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        " ",
        "\\",
        "0",
        "1",
        "-",
        ".",
        "e",
        "null",
        "true",
        "false",
        "\"names\"",
        "\"x\"",
        "3.5",
        "\"\\u00e9\"",
        "\"\\ud800\"",
        "é",
        "\u{0}",
    ];
    const KEYS: &[&str] = &[
        "cmd",
        "names",
        "name",
        "wait",
        "signal",
        "lines",
        "since_ms",
        "follow",
        "ok",
        "error",
        "message",
        "problems",
        "services",
        "probe",
        "type",
        "pid",
        "restarts",
        "ready",
        "seq",
        "stream",
        "line",
        "ts",
        "failures_in_row",
        "at",
        "x",
    ];
    const VALUES: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "3",
        "-7",
        "2.5",
        "1e3",
        "2147483648",
        "18446744073709551616",
        "\"x\"",
        "\"logs\"",
        "[]",
        "[\"a\"]",
        "[1]",
        "{}",
    ];
    const SWAPS: &[(&str, &str)] = &[
        ("true", "false"),
        ("false", "null"),
        ("true", "1"),
        ("[]", "null"),
        ("[\"", "[3,\""),
        ("\"a\"", "7"),
        ("3", "-3"),
        ("3", "3.0"),
        ("0", "4294967296"),
        ("status", "stop"),
        ("start", "restart"),
        ("logs", "status"),
        ("reload", "reexec"),
        ("names", "name"),
        ("wait", "follow"),
        ("null", "\"x\""),
        ("null", "{}"),
    ];
    let mut text = line.to_string();
    let times = if rng.below(4) == 0 { 2 } else { 1 };
    for _ in 0..times {
        if rng.below(2) == 0 {
            let mut bytes = text.into_bytes();
            let at = rng.below(bytes.len() + 1);
            match rng.below(5) {
                0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())].as_bytes();
                    bytes.splice(at..at, piece.iter().copied());
                }
                2 if at < bytes.len() => {
                    let end = (at + 1 + rng.below(8)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => bytes.truncate(at),
                _ if at < bytes.len() => {
                    // Copy a piece of the line elsewhere (duplicate keys, nesting).
                    let end = (at + 1 + rng.below(24)).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    let to = rng.below(bytes.len() + 1);
                    bytes.splice(to..to, piece);
                }
                _ => {}
            }
            text = String::from_utf8_lossy(&bytes).into_owned();
        } else if rng.below(2) == 0 {
            // A field in front of an object's first: `{"key":value,...`.
            let braces: Vec<usize> = text.match_indices('{').map(|(i, _)| i + 1).collect();
            let Some(&at) = braces.get(rng.below(braces.len())) else {
                continue;
            };
            let key = KEYS[rng.below(KEYS.len())];
            let value = VALUES[rng.below(VALUES.len())];
            let comma = if text[at..].starts_with('}') { "" } else { "," };
            text.insert_str(at, &format!("\"{key}\":{value}{comma}"));
        } else {
            let (from, to) = SWAPS[rng.below(SWAPS.len())];
            let places: Vec<usize> = text.match_indices(from).map(|(i, _)| i).collect();
            if !places.is_empty() {
                let at = places[rng.below(places.len())];
                text.replace_range(at..at + from.len(), to);
            }
        }
    }
    text
}

#[test]
fn mutated_requests_never_panic_and_agree_with_serde() {
    let seeds: Vec<String> = every_request()
        .iter()
        .map(|r| text(r.to_json()))
        .chain([r#"{"cmd":"logs","name":"a","lines":3,"follow":true}"#.to_string()])
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..20_000 {
        let line = mutate(&mut rng, &seeds[round % seeds.len()]);
        let mine = Request::parse(&line);
        let theirs = serde_json::from_str::<old::Request>(&line);
        match (&mine, &theirs) {
            (Ok(r), Ok(old)) => {
                valid += 1;
                let again = serde_json::to_string(old).expect("json");
                assert_eq!(text(r.to_json()), again, "{line}");
            }
            (Err(_), Err(_)) => invalid += 1,
            _ => panic!("round {round}: {line}\nmine: {mine:?}\nserde: {theirs:?}"),
        }
    }
    // The mutations must reach both sides of the parser.
    assert!(
        valid > 1000 && invalid > 1000,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn mutated_replies_never_panic_and_agree_with_serde() {
    let seeds = [
        text(full_reply().to_json()),
        text(Reply::error("x").to_json()),
        r#"{"stream":"stdout","line":"x","seq":3}"#.to_string(),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..6_000 {
        let line = mutate(&mut rng, &seeds[round % seeds.len()]);
        if round % seeds.len() == 2 {
            let mine = LogLine::parse(&line);
            let theirs = serde_json::from_str::<old::LogLine>(&line);
            assert_eq!(mine.is_ok(), theirs.is_ok(), "{line}: {mine:?} {theirs:?}");
            if let (Ok(mine), Ok(theirs)) = (mine, theirs) {
                let mut w = Writer::compact();
                mine.write_json(&mut w);
                let again = serde_json::to_string(&theirs).expect("json");
                assert_eq!(text(w.into_bytes()), again, "{line}");
            }
            continue;
        }
        let mine = Reply::parse(&line);
        let theirs = serde_json::from_str::<old::Reply>(&line);
        match (&mine, &theirs) {
            (Ok(r), Ok(old)) => {
                valid += 1;
                let again = serde_json::to_string(old).expect("json");
                assert_eq!(text(r.to_json()), again, "{line}");
            }
            (Err(_), Err(_)) => invalid += 1,
            _ => panic!("round {round}: {line}\nmine: {mine:?}\nserde: {theirs:?}"),
        }
    }
    assert!(
        valid > 1000 && invalid > 1000,
        "{valid} valid, {invalid} invalid"
    );
}
