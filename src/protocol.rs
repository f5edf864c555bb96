//! The control socket's wire protocol: one JSON object per line each way.
//!
//! A client sends one request line; tend answers with one reply line. `logs` with
//! `follow: true` is the exception: after the reply, tend keeps writing one
//! [`Reply::Line`]-shaped object per output line until the client disconnects.
//!
//! Shared by the server (`runtime::control`) and the client (`client`), so the two
//! cannot drift apart.

use serde::{Deserialize, Serialize};

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
    Start {
        names: Vec<String>,
    },
    Stop {
        names: Vec<String>,
    },
    Restart {
        names: Vec<String>,
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
