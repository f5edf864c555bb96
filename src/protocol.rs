//! The control socket's wire protocol: one JSON object per line each way.
//!
//! A client sends one request line; tend answers with one reply line. `logs` with
//! `follow: true` is the exception: after the reply, tend keeps writing one
//! [`Reply::Line`]-shaped object per output line until the client disconnects.
//!
//! Shared by the server (`runtime::control`) and the client (`client`), so the two
//! cannot drift apart.

use serde::{Deserialize, Serialize};

/// How long tend holds the reply of a `wait`ing start/stop/restart before it
/// answers that the services did not settle.
pub const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Largest request line tend accepts; a longer one gets an error and the
/// connection is closed.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A request from a client. Serialized as `{"cmd": "status", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Status of the named services, or of all when `names` is empty.
    Status {
        #[serde(default)]
        names: Vec<String>,
    },
    /// With `wait`, the reply comes once every named service has settled (or
    /// failed to, or [`SETTLE_TIMEOUT`] passed); without, at once.
    Start {
        names: Vec<String>,
        #[serde(default)]
        wait: bool,
    },
    Stop {
        names: Vec<String>,
        #[serde(default)]
        wait: bool,
    },
    Restart {
        names: Vec<String>,
        #[serde(default)]
        wait: bool,
    },
    /// Send `signal` (a name such as `"HUP"` or a number as a string) to the
    /// service's process group.
    Signal {
        name: String,
        signal: String,
    },
    Reload,
    Shutdown,
    /// The last `lines` output lines of `name`; with `follow`, keep streaming.
    Logs {
        name: String,
        #[serde(default)]
        lines: Option<usize>,
        #[serde(default)]
        follow: bool,
    },
}

/// A reply to a request. Every reply has `ok`; failures carry `error` (and, for a
/// reload of an invalid config, `problems`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A human summary of what was done (e.g. what a reload changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Config problems, one per entry, for a failed `reload`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// For `status` (and after `start`/`stop`/`restart`: the services acted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceStatus>>,
    /// For `logs`: the recent lines, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// One output line of a service, as kept in its ring and streamed by `logs -f`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `"stdout"` or `"stderr"`.
    pub stream: String,
    pub line: String,
}

/// What `tend status --json` prints per service (SPEC §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// One of `pending starting running stopping stopped restarting failed`.
    pub state: String,
    /// `longrun` or `oneshot`.
    #[serde(rename = "type")]
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
    } else if s < 3600.0 {
        format!("{}m{}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else if s < 86_400.0 {
        format!("{}h{}m", (s / 3600.0) as u64, (s % 3600.0 / 60.0) as u64)
    } else {
        format!(
            "{}d{}h",
            (s / 86_400.0) as u64,
            (s % 86_400.0 / 3600.0) as u64
        )
    }
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
    }
}
