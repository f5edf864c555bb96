//! The control socket's wire protocol: one JSON object per line each way.
//!
//! A client sends one request line; tend answers with one reply line. `logs` with
//! `follow: true` is the exception: after the reply, tend keeps writing one
//! [`LogLine`] object per output line until the client disconnects (or, when the
//! client falls too far behind, one last [`Reply`] with `ok: false` saying so).
//! `shutdown` is answered at once, and the connection is closed when tend exits.
//! `reexec` is answered by the tend that comes out of the exec.
//!
//! The protocol changes only compatibly: new fields are optional, old ones stay
//! accepted (`logs` still takes `name`). A request with a field tend does not
//! know is an error and changes nothing, so a typo never does something else.
//!
//! Shared by the server (`runtime::control`) and the client (`client`), so the two
//! cannot drift apart. The types are here; `json.rs` reads and writes them (by
//! hand, not with serde derives: its doc says why).

mod json;
#[cfg(test)]
mod tests_json;
#[cfg(test)]
mod tests_serde;

pub use json::statuses_pretty;

use crate::calendar::{civil_from_days, days_from_civil};

/// How long tend holds the reply of a `wait`ing start/stop/restart before it
/// answers that the services did not settle.
pub const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Largest request line tend accepts; a longer one gets an error and the
/// connection is closed. Requests are a few names long; this is generous.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A request from a client: `{"cmd": "status", ...}`, the command's name in
/// lowercase and its fields beside it. Fields marked "default" may be left out.
///
/// Any field a command does not take is refused: `{"cmd": "shutdown",
/// "names": ["web"]}` is an error, not a shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Status of the named services, or of all when `names` is empty
    /// (default).
    Status {
        names: Vec<String>,
    },
    /// With `wait`, the reply comes once every named service has settled (or
    /// failed to, or [`SETTLE_TIMEOUT`] passed); without (default false), at
    /// once. `names` is required.
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
    /// Send `signal` (a name such as `"HUP"` or a number as a string) to the
    /// service's process group.
    Signal {
        name: String,
        signal: String,
    },
    Reload {},
    /// Answered at once; the connection then stays open until tend has exited.
    Shutdown {},
    /// Replace the running tend by the binary at its path, keeping every
    /// service (SPEC §8). Answered by the new process once it has taken over
    /// (`message` names it), or by the old one with why it did not.
    Reexec {},
    /// Recent output lines of the named services (all when none is named),
    /// merged in the order tend read them; with `follow`, keep streaming.
    /// Every field is optional and left out of the JSON when empty, except
    /// `follow` (default false).
    Logs {
        names: Vec<String>,
        /// One service, as clients before `names` sent it; added to `names`.
        name: Option<String>,
        /// At most this many lines (the newest); all that are kept when absent.
        lines: Option<usize>,
        /// Only lines read at or after this time, in ms since the Unix epoch.
        since_ms: Option<u64>,
        follow: bool,
    },
}

/// A reply to a request. Every reply has `ok`; failures carry `error` (and, for a
/// reload of an invalid config, `problems`). Every field but `ok` is left out
/// of the JSON when empty, and defaults when absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    pub ok: bool,
    pub error: Option<String>,
    /// A human summary of what was done (e.g. what a reload changed, or that
    /// older log lines were left out).
    pub message: Option<String>,
    /// Config problems, one per entry, for a failed `reload`.
    pub problems: Vec<String>,
    /// For `status` (and after `start`/`stop`/`restart`: the services acted on).
    pub services: Option<Vec<ServiceStatus>>,
    /// For `logs`: the recent lines, oldest first.
    pub lines: Option<Vec<LogLine>>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            ok: true,
            ..Reply::default()
        }
    }

    pub fn error(message: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(message.into()),
            ..Reply::default()
        }
    }
}

/// One output line of a service, as kept in the `tend logs` ring and streamed by
/// `logs -f`. The fields a server before 0.2 did not send (`ts`, `seq`,
/// `service`) default to empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When tend read it: RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The order tend read lines in, across all services: lines of different
    /// services merge by it.
    pub seq: u64,
    pub service: String,
    /// `"stdout"` or `"stderr"`.
    pub stream: String,
    pub line: String,
}

/// What `tend status --json` prints per service (SPEC §3), every field, null
/// when None. Fields added after the first release (from `since` on) default
/// when absent, so replies of an older tend parse.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    pub name: String,
    /// One of `pending starting running stopping stopped restarting failed`.
    pub state: String,
    /// `longrun` or `oneshot`; the JSON key is `type`.
    pub service_type: String,
    pub enabled: bool,
    pub pid: Option<i32>,
    pub uptime_secs: Option<f64>,
    pub restarts: u64,
    pub last_exit_code: Option<i32>,
    pub last_signal: Option<String>,
    pub last_error: Option<String>,
    pub completed: bool,
    pub next_start_in_secs: Option<f64>,
    pub waiting_for: Option<String>,
    pub status_text: Option<String>,
    /// When the service entered its state: RFC 3339 UTC ([`rfc3339_ms`]).
    pub since: Option<String>,
    /// Readiness reached in this run.
    pub ready: bool,
    /// The last readiness or liveness result, if a probe ran.
    pub probe: Option<ProbeStatus>,
    /// CPU time of its process group (or cgroup); None when not up.
    pub cpu_secs: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// When `cpu_secs` and `memory_bytes` were measured (RFC 3339 UTC): they
    /// come from sweeps taken between events (`runtime/sampler.rs`).
    pub usage_at: Option<String>,
    /// The service's cgroup path, when tend manages cgroups.
    pub cgroup: Option<String>,
}

/// The last probe result of a service (SPEC §3).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeStatus {
    pub ok: bool,
    /// RFC 3339 UTC time of the result.
    pub at: String,
    /// What the probe saw, e.g. `connect 127.0.0.1:5432: connection refused`.
    pub message: Option<String>,
    pub failures_in_row: u32,
}

impl ServiceStatus {
    /// What else a person wants to know about the state: the awaited dependency,
    /// the backoff, the last error or exit. Empty when there is nothing to say.
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if let Some(w) = &self.waiting_for {
            parts.push(format!("waiting for {w}"));
        }
        if let Some(n) = self.next_start_in_secs {
            parts.push(format!("next start in {}", format_secs(n)));
        }
        if self.completed {
            parts.push("completed".into());
        }
        if let Some(p) = self.probe.as_ref().filter(|p| !p.ok) {
            let what = p.message.as_deref().unwrap_or("failed");
            parts.push(format!("probe: {what} ({} in a row)", p.failures_in_row));
        }
        if let Some(e) = &self.last_error {
            parts.push(e.clone());
        } else if let Some(code) = self.last_exit_code {
            parts.push(format!("last exit code {code}"));
        } else if let Some(sig) = &self.last_signal {
            parts.push(format!("last killed by {sig}"));
        }
        if let Some(t) = &self.status_text {
            parts.push(t.clone());
        }
        if !self.enabled && self.state == "stopped" {
            parts.push("disabled".into());
        }
        parts.join("; ")
    }
}

/// Seconds for people: `1.9s`, `4m12s`, `3h5m`, `2d4h`.
pub fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format_age(s as u64)
    }
}

/// Whole seconds for people, the two largest units: `12s`, `4m12s`, `3h12m`, `2d4h`.
pub fn format_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// `2026-12-02T10:00:00.123Z` for `ms` since the Unix epoch.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // By hand, not `format!`: a status of 10,000 services writes 20,000 of
    // these, and core::fmt's padding machinery made them a tenth of its cost.
    let mut text = [0u8; 24];
    let fields: [(usize, u64, usize); 7] = [
        (0, year.clamp(0, 9999) as u64, 4),
        (5, month.clamp(0, 99) as u64, 2),
        (8, day.clamp(0, 99) as u64, 2),
        (11, rem / 3600, 2),
        (14, rem / 60 % 60, 2),
        (17, rem % 60, 2),
        (20, ms % 1000, 3),
    ];
    for (at, mut value, width) in fields {
        for slot in text.iter_mut().skip(at).take(width).rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    for (at, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        if let Some(slot) = text.get_mut(at) {
            *slot = sep;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Ms since the Unix epoch of an RFC 3339 UTC time as [`rfc3339_ms`] writes it
/// (fractions of any length; `Z` or `+00:00`). None for anything else.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(((days * 86_400 + h * 3600 + m * 60 + s) * 1000) + ms)
}

/// A status for tests: `pid` 10 when running, everything else empty.
#[cfg(test)]
pub fn sample_status(name: &str, state: &str) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        state: state.into(),
        service_type: "longrun".into(),
        enabled: true,
        pid: (state == "running").then_some(10),
        uptime_secs: None,
        restarts: 0,
        last_exit_code: None,
        last_signal: None,
        last_error: None,
        completed: false,
        next_start_in_secs: None,
        waiting_for: None,
        status_text: None,
        since: None,
        ready: state == "running",
        probe: None,
        cpu_secs: None,
        memory_bytes: None,
        usage_at: None,
        cgroup: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Request, String> {
        Request::parse(line)
    }

    #[test]
    fn every_command_refuses_an_unknown_field() {
        let valid = [
            r#"{"cmd":"status"}"#,
            r#"{"cmd":"start","names":["a"]}"#,
            r#"{"cmd":"stop","names":["a"]}"#,
            r#"{"cmd":"restart","names":["a"]}"#,
            r#"{"cmd":"signal","name":"a","signal":"HUP"}"#,
            r#"{"cmd":"reload"}"#,
            r#"{"cmd":"shutdown"}"#,
            r#"{"cmd":"logs"}"#,
            r#"{"cmd":"reexec"}"#,
        ];
        for line in valid {
            assert!(parse(line).is_ok(), "{line}");
            let extra = line.replacen('{', r#"{"bogus":1,"#, 1);
            assert!(parse(&extra).is_err(), "{extra}");
            let extra = line.replacen('}', r#","nmes":["x"]}"#, 1);
            assert!(parse(&extra).is_err(), "{extra}");
        }
        // The case that used to shut tend down.
        assert!(parse(r#"{"cmd":"shutdown","names":["x"]}"#).is_err());
    }

    #[test]
    fn requests_round_trip_and_old_forms_parse() {
        let all = [
            Request::Status { names: vec![] },
            Request::Start {
                names: vec!["a".into()],
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
                names: vec!["a".into(), "b".into()],
                name: None,
                lines: Some(3),
                since_ms: Some(1_700_000_000_000),
                follow: true,
            },
        ];
        for r in all {
            let text = String::from_utf8(r.to_json()).expect("utf-8");
            assert_eq!(parse(&text).expect(&text), r);
        }
        assert_eq!(Request::Shutdown {}.to_json(), br#"{"cmd":"shutdown"}"#);
        // A client before `names`.
        assert_eq!(
            parse(r#"{"cmd":"logs","name":"a","lines":3,"follow":true}"#).ok(),
            Some(Request::Logs {
                names: vec![],
                name: Some("a".into()),
                lines: Some(3),
                since_ms: None,
                follow: true
            })
        );
    }

    #[test]
    fn old_status_and_log_lines_parse() {
        let old = r#"{"name":"a","state":"running","type":"longrun","enabled":true,"pid":3,
            "uptime_secs":1.0,"restarts":0,"last_exit_code":null,"last_signal":null,
            "last_error":null,"completed":false,"next_start_in_secs":null,
            "waiting_for":null,"status_text":null}"#;
        let s = ServiceStatus::parse(old).expect("old status");
        assert_eq!((s.since, s.probe, s.ready), (None, None, false));
        let line = LogLine::parse(r#"{"stream":"stdout","line":"x"}"#).expect("old");
        assert_eq!((line.seq, line.service.as_str()), (0, ""));
    }

    #[test]
    fn times_format_and_parse() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_362_473_045), "2026-11-22T15:47:53.045Z");
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = x % 8_000_000_000_000; // up to the year 2223
            assert_eq!(parse_rfc3339(&rfc3339_ms(ms)), Some(ms), "{ms}");
            let secs = ms / 1000;
            let (y, mo, d) = crate::calendar::civil_from_days((secs / 86_400) as i64);
            let rem = secs % 86_400;
            let by_format = format!(
                "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                rem / 60 % 60,
                rem % 60,
                ms % 1000
            );
            assert_eq!(rfc3339_ms(ms), by_format);
        }
        assert_eq!(
            parse_rfc3339("2026-11-22T15:47:53Z"),
            Some(1_795_362_473_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T15:47:53.04+00:00"),
            Some(1_795_362_473_040)
        );
        for bad in [
            "",
            "Z",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-11-22T25:00:00Z",
            "2026-11-22T10:00:00.x1Z",
            "1969-12-31T23:59:59Z",
            "2026-11-22T10:00:00+01:00",
            "é",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn ages_for_people() {
        assert_eq!(format_age(0), "0s");
        assert_eq!(format_age(59), "59s");
        assert_eq!(format_age(252), "4m12s");
        assert_eq!(format_age(3 * 3600 + 12 * 60 + 5), "3h12m");
        assert_eq!(format_age(2 * 86_400 + 4 * 3600), "2d4h");
        assert_eq!(format_secs(1.94), "1.9s");
        assert_eq!(format_secs(-3.0), "0.0s");
    }
}
