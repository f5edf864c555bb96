//! Everything between the JSON file and a validated [`Config`].
//!
//! Owns: reading the file, the serde layer that keeps duplicate and unknown keys
//! ([`raw`]), the walk that turns raw JSON into typed values while collecting every
//! problem with its place ([`validate`]), durations/sizes/signals ([`units`]), the
//! dependency graph checks ([`graph`]) and `services_dir` discovery ([`discover`]).
//!
//! Must not: start anything, read the clock, or stop at the first problem. A config is
//! either fully valid (`Ok(Config)`) or comes back as every problem at once.
//!
//! Read first: [`load`] and the types below; they are what the rest of tend sees.

pub mod discover;
pub mod graph;
pub mod raw;
pub mod units;
pub mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use units::Signal;

/// A validated configuration. Every default of SPEC §2 is already filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub log_level: log::LevelFilter,
    pub log_file: Option<PathBuf>,
    /// `None`: the field was absent (use the default path); `Some("")`: disabled.
    pub control_socket: Option<PathBuf>,
    pub shutdown_timeout: Duration,
    pub services_dir: Option<PathBuf>,
    pub exit_when_idle: bool,
    /// In file order, discovered services after the listed ones. Names are unique,
    /// dependencies name existing services and form no cycle.
    pub services: Vec<ServiceSpec>,
}

/// One service object, validated, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub command: Vec<String>,
    pub service_type: ServiceType,
    pub enabled: bool,
    pub working_dir: Option<PathBuf>,
    pub environment: BTreeMap<String, String>,
    pub inherit_environment: bool,
    pub restart_policy: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
    pub max_retries: u32,
    pub retry_window: Duration,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub dependencies: Vec<Dependency>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Liveness>,
    pub timeout_start: Duration,
    pub stop_signal: Signal,
    pub timeout_stop: Duration,
    pub output: OutputMode,
    pub stderr_level: log::Level,
    pub user: Option<String>,
    pub group: Option<String>,
    pub limits: Limits,
    pub critical: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    Longrun,
    Oneshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The dependency has been spawned (and not given up on).
    Started,
    /// The dependency is `running` (ready).
    Ready,
    /// The dependency is a oneshot that finished with success.
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Log,
    Inherit,
    Null,
}

/// How tend learns that a service is ready (SPEC §4).
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Notify {
        watchdog: Option<Duration>,
    },
    Fd {
        fd: i32,
    },
    Exec {
        command: Vec<String>,
        interval: Duration,
    },
    Tcp {
        address: String,
        interval: Duration,
    },
    Http {
        url: String,
        interval: Duration,
    },
    Log {
        pattern: String,
    },
}

/// A liveness check: a probe (exec, tcp or http) run every `interval` while
/// `running`; `failures` failures in a row restart the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Liveness {
    pub probe: Probe,
    pub failures: u32,
}

/// rlimits applied in the child before exec. `None` leaves tend's own limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
    pub core: Option<u64>,
    /// RLIMIT_AS, in bytes.
    pub memory: Option<u64>,
    /// RLIMIT_CPU, in whole seconds.
    pub cpu: Option<u64>,
    /// RLIMIT_FSIZE, in bytes.
    pub fsize: Option<u64>,
}

/// One problem found in a config: where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `services[2].timeout_stop`, `services[0]`, `(file)`, or `line 3, column 7`.
    pub path: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Every problem found in a config, in the order of the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Read, parse and validate the config at `path` (and its `services_dir`, if any).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: path.display().to_string(),
            problem: format!("cannot read config file: {e}"),
        }])
    })?;
    parse(&text, path.parent())
}

/// Parse and validate config text. `base` is the folder relative `services_dir`
/// paths are resolved against (the config file's folder).
pub fn parse(text: &str, base: Option<&Path>) -> Result<Config, ConfigErrors> {
    validate::validate(text, base)
}

impl Signal {
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CONT: Signal = Signal(libc::SIGCONT);
}
