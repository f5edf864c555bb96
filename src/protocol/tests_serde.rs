//! The five protocol types as serde derived them before `json.rs` (copied with
//! their attributes), for `tests_json.rs` to compare the hand-written JSON with:
//! the only place in tend that still uses serde's derive.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    Status {
        #[serde(default)]
        names: Vec<String>,
    },
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
    Signal {
        name: String,
        signal: String,
    },
    Reload {},
    Shutdown {},
    Reexec {},
    Logs {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_ms: Option<u64>,
        #[serde(default)]
        follow: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LogLine>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LogLine {
    #[serde(default)]
    pub ts: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub service: String,
    pub stream: String,
    pub line: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: String,
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
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub probe: Option<ProbeStatus>,
    #[serde(default)]
    pub cpu_secs: Option<f64>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub usage_at: Option<String>,
    #[serde(default)]
    pub cgroup: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub ok: bool,
    pub at: String,
    #[serde(default)]
    pub message: Option<String>,
    pub failures_in_row: u32,
}
