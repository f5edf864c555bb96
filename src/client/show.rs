//! How the client shows things to people: the `tend status` table and `tend
//! logs` lines. Pure functions of their input (the time and whether to colour
//! come in as values), so they are unit-tested as text.

use std::ffi::OsString;
use std::io::IsTerminal;

use crate::codec::reindent::{Event, reindent};
use crate::protocol::{LogLine, ServiceStatus, format_age, parse_rfc3339};

/// `tend status` as a health check: every enabled longrun running, none failed.
pub fn is_healthy(services: &[ServiceStatus]) -> bool {
    services.iter().all(|s| {
        s.state != "failed" && !(s.enabled && s.service_type == "longrun" && s.state != "running")
    })
}

/// `tend status --json`: the reply's `services` array as written (compact
/// JSON), re-indented without parsing it into statuses (`codec::reindent`
/// says why), and whether they are healthy as [`is_healthy`] judges.
pub fn pretty_statuses(services: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::with_capacity(services.len() + services.len() / 2);
    let (mut healthy, mut state, mut enabled, mut longrun) = (true, None, false, false);
    let mut broken = None;
    reindent(services, &mut out, |event| match event {
        Event::Open { depth: 2 } => (state, enabled, longrun) = (None, false, false),
        Event::Member {
            depth: 2,
            key,
            value,
        } => match key {
            b"state" => state = Some(value),
            b"enabled" => enabled = value == b"true",
            b"type" => longrun = value == b"\"longrun\"",
            _ => {}
        },
        Event::Close { depth: 2 } => match state {
            Some(state) => {
                let running = state == b"\"running\"";
                if state == b"\"failed\"" || (enabled && longrun && !running) {
                    healthy = false;
                }
            }
            None => broken = Some("a service without a state".to_string()),
        },
        Event::Open { .. } | Event::Member { .. } | Event::Close { .. } => {}
    })?;
    match broken {
        Some(why) => Err(why),
        None => Ok((out, healthy)),
    }
}

/// Colour the table only for a person: stdout is a terminal and `NO_COLOR`
/// (no-color.org) is unset or empty.
pub fn use_colour(env: &dyn Fn(&str) -> Option<OsString>) -> bool {
    env("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// The ANSI colour of a state: running green, failed red, on the way yellow.
fn state_colour(state: &str) -> Option<&'static str> {
    match state {
        "running" => Some("\x1b[32m"),
        "failed" => Some("\x1b[31m"),
        "starting" | "restarting" => Some("\x1b[33m"),
        _ => None,
    }
}

/// How long the service has been in its state, from `since` (or, from a tend
/// that does not send it, the uptime of a running service).
fn state_age(s: &ServiceStatus, now_ms: u64) -> Option<String> {
    let secs = match s.since.as_deref().and_then(parse_rfc3339) {
        Some(since) => now_ms.saturating_sub(since) / 1000,
        None => s.uptime_secs? as u64,
    };
    Some(format_age(secs))
}

fn restarts(n: u64) -> String {
    if n == 1 {
        "1 restart".into()
    } else {
        format!("{n} restarts")
    }
}

/// The human table of `tend status` at `now_ms` (ms since the epoch).
pub fn table(services: &[ServiceStatus], now_ms: u64, colour: bool) -> String {
    let rows: Vec<[String; 5]> = services
        .iter()
        .map(|s| {
            let state = match state_age(s, now_ms) {
                Some(age) => format!("{} {age}", s.state),
                None => s.state.clone(),
            };
            [
                s.name.clone(),
                state,
                s.pid.map_or("-".into(), |p| p.to_string()),
                restarts(s.restarts),
                s.detail(),
            ]
        })
        .collect();
    let header = ["NAME", "STATE", "PID", "RESTARTS", "DETAIL"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let states = std::iter::once(None).chain(services.iter().map(|s| Some(s.state.as_str())));
    let mut out = String::new();
    for (row, state) in std::iter::once(&header).chain(&rows).zip(states) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            let last = i == row.len() - 1;
            match state.and_then(state_colour).filter(|_| colour && i == 1) {
                // Only the state word: the age after it stays plain.
                Some(code) => {
                    let word = state.unwrap_or_default();
                    let rest = cell.get(word.len()..).unwrap_or_default();
                    line.push_str(&format!("{code}{word}\x1b[0m{rest}"));
                }
                None => line.push_str(cell),
            }
            if !last {
                line.push_str(&pad);
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A `tend logs` line as the log's text format writes it:
/// `2026-12-02T10:00:00.123Z web | text`, stderr as `web !| text`.
pub fn format_log_line(line: &LogLine) -> String {
    let bar = if line.stream == "stderr" { "!|" } else { "|" };
    let mut out = String::with_capacity(line.line.len() + 40);
    if !line.ts.is_empty() {
        out.push_str(&line.ts);
        out.push(' ');
    }
    if !line.service.is_empty() {
        out.push_str(&line.service);
        out.push(' ');
    }
    out.push_str(bar);
    out.push(' ');
    out.push_str(&line.line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::{ProbeStatus, sample_status as status};

    const NOW: u64 = 1_795_362_473_000; // 2026-11-22T15:47:53Z

    #[test]
    fn health_needs_enabled_longruns_running_and_nothing_failed() {
        assert!(is_healthy(&[status("a", "running")]));
        assert!(!is_healthy(&[status("a", "restarting")]));
        let mut off = status("b", "stopped");
        off.enabled = false;
        assert!(is_healthy(&[status("a", "running"), off]));
        let mut job = status("j", "stopped");
        job.service_type = "oneshot".into();
        assert!(is_healthy(std::slice::from_ref(&job)));
        job.state = "failed".into();
        assert!(!is_healthy(&[job]));
    }

    /// The re-indented reply is byte for byte what writing the parsed
    /// statuses pretty gives, and its health is `is_healthy`'s, for every
    /// kind of field (probe objects, lists, escapes, floats, nulls).
    #[test]
    fn pretty_statuses_are_the_parsed_statuses_written_pretty() {
        let mut full = status("web \"1\"\n", "running");
        full.probe = Some(ProbeStatus {
            ok: false,
            at: "2026-11-22T12:35:00.000Z".into(),
            message: Some("refused \u{1}".into()),
            failures_in_row: 2,
        });
        full.waiting_for = Some("db".into());
        full.cpu_secs = Some(0.1);
        full.memory_bytes = Some(1 << 40);
        full.uptime_secs = Some(12345.678);
        full.last_exit_code = Some(-1);
        let mut job = status("job", "stopped");
        job.service_type = "oneshot".into();
        let mut off = status("off", "stopped");
        off.enabled = false;
        let lists = [
            vec![],
            vec![full.clone()],
            vec![full.clone(), job.clone(), off.clone()],
            vec![full.clone(), status("b", "starting")],
            vec![job.clone(), status("f", "failed")],
        ];
        for services in lists {
            let reply = crate::protocol::Reply {
                services: Some(services.clone()),
                ..crate::protocol::Reply::ok()
            };
            let line = reply.to_json();
            let raw = crate::codec::reindent::members(&line)
                .expect("an object")
                .into_iter()
                .find_map(|(k, v)| (k == b"services").then_some(v))
                .expect("services");
            let (text, healthy) = pretty_statuses(raw).expect("valid");
            assert_eq!(
                String::from_utf8(text).expect("utf-8"),
                crate::protocol::statuses_pretty(&services)
            );
            assert_eq!(healthy, is_healthy(&services), "{services:?}");
        }
        assert!(pretty_statuses(br#"[{"name":"x"}]"#).is_err(), "no state");
        assert!(pretty_statuses(br#"[{"state":"running"]"#).is_err());
    }

    #[test]
    fn table_is_aligned_with_ages_and_restarts() {
        let mut a = status("a", "running");
        a.since = Some("2026-11-22T12:35:00.000Z".into());
        a.restarts = 1;
        let mut b = status("backend", "restarting");
        b.next_start_in_secs = Some(1.94);
        b.last_exit_code = Some(3);
        b.restarts = 2;
        b.since = Some("2026-11-22T15:47:41.500Z".into());
        let text = table(&[a, b], NOW, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("STATE").unwrap_or(0);
        assert_eq!(lines[1].find("running 3h12m"), Some(col), "{text}");
        assert_eq!(lines[2].find("restarting 11s"), Some(col), "{text}");
        assert!(lines[1].ends_with(" 1 restart"), "{text}");
        assert!(lines[2].contains(" 2 restarts "), "{text}");
        assert!(
            lines[2].ends_with("next start in 1.9s; last exit code 3"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colour_marks_the_state_word_and_keeps_alignment() {
        let mut f = status("f", "failed");
        f.probe = Some(ProbeStatus {
            ok: false,
            at: "2026-11-22T15:47:50.000Z".into(),
            message: Some("connect 127.0.0.1:5432: connection refused".into()),
            failures_in_row: 2,
        });
        let services = [status("a", "running"), f, status("s", "stopped")];
        let text = table(&services, NOW, true);
        assert!(text.contains("\x1b[32mrunning\x1b[0m"), "{text:?}");
        assert!(text.contains("\x1b[31mfailed\x1b[0m"), "{text:?}");
        assert!(!text.contains("\x1b[0m stopped"));
        assert!(text.contains("probe: connect 127.0.0.1:5432: connection refused (2 in a row)"));
        // Without the colour codes, the same table as without colour.
        let plain = text
            .replace("\x1b[32m", "")
            .replace("\x1b[31m", "")
            .replace("\x1b[0m", "");
        assert_eq!(plain, table(&services, NOW, false));
    }

    #[test]
    fn no_color_turns_colour_off() {
        let env = |k: &str| (k == "NO_COLOR").then(|| OsString::from("1"));
        assert!(!use_colour(&env));
    }

    #[test]
    fn log_lines_look_like_the_text_log() {
        let mut line = LogLine {
            ts: "2026-12-02T10:00:00.123Z".into(),
            seq: 4,
            service: "web".into(),
            stream: "stdout".into(),
            line: "listening on :8080".into(),
        };
        assert_eq!(
            format_log_line(&line),
            "2026-12-02T10:00:00.123Z web | listening on :8080"
        );
        line.stream = "stderr".into();
        assert_eq!(
            format_log_line(&line),
            "2026-12-02T10:00:00.123Z web !| listening on :8080"
        );
    }
}
