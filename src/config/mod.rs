//! Everything between the JSON file and a validated [`Config`].
//!
//! Owns: reading the file, JSON with comments ([`jsonc`]) through the serde layer
//! that keeps duplicate and unknown keys ([`raw`]), the walk that turns raw JSON
//! into typed values while collecting every problem with its place ([`validate`],
//! with [`checker`], [`probes`], [`process`]), durations/sizes/signals
//! ([`units`]), probe hosts without DNS ([`hosts`]), `env_file` and `${VAR}`
//! ([`env`]), "did you mean" ([`suggest`]), the dependency graph checks
//! ([`graph`]), `services_dir` discovery ([`discover`]) and the start-time
//! checks of `tend check` ([`preflight`]).
//!
//! Must not: start anything, read the clock, or stop at the first problem. A
//! config is either fully valid (`Ok(Config)`, with warnings) or comes back as
//! every problem at once.
//!
//! Read first: [`spec`] (the types the rest of tend sees), then [`load`].

pub mod checker;
pub mod discover;
pub mod env;
pub mod graph;
pub mod hosts;
pub mod jsonc;
pub mod preflight;
pub mod probes;
pub mod process;
pub mod raw;
pub mod sparse;
pub mod spec;
pub mod suggest;
pub mod units;
pub mod validate;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fields;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_probes;

use std::fmt;
use std::path::Path;

pub use checker::Inputs;
pub use env::{interpolate, parse_env_file, read_env_files};
pub use preflight::preflight;
pub use sparse::Sparse;
pub use spec::{
    CgroupLimits, CgroupSetting, Check, CheckKind, Condition, Config, CpuMax, Dependency, IoClass,
    IoPriority, Isolate, Limits, Liveness, LogFormat, OutputMode, ProcessSettings, Readiness,
    RestartPolicy, Rotation, ServiceSpec, ServiceType,
};
pub use units::Signal;

/// One problem found in a config: where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `services[2] (web).timeout_stop`, `services[0]`, `services_dir/x/service.json`,
    /// `(top level)`, or `line 3, column 7`. Never empty.
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

/// The hosts file probe host names are looked up in.
pub const HOSTS_FILE: &str = "/etc/hosts";

/// Read, parse and validate the config at `path` (and its `services_dir`, if
/// any), against tend's environment and `/etc/hosts` as they are now.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = read(path)?;
    parse(&text, path.parent())
}

/// Read the config at `path` and validate its top-level fields only (its
/// services for JSON syntax alone, its `services_dir` not at all): what the
/// client commands need to find their tend, in a few milliseconds even for
/// 10,000 services. The returned config has no services.
pub fn load_top(path: &Path) -> Result<Config, ConfigErrors> {
    let text = read(path)?;
    let hosts = std::fs::read_to_string(HOSTS_FILE).unwrap_or_default();
    let inputs = Inputs {
        base: path.parent(),
        hosts: &hosts,
        env: &env::process_env,
    };
    validate::validate_top(&text, &inputs)
}

/// The config file's text, or why it cannot be had.
fn read(path: &Path) -> Result<String, ConfigErrors> {
    let problem = |path: String, problem: String| ConfigErrors(vec![ConfigError { path, problem }]);
    let bytes = std::fs::read(path).map_err(|e| {
        problem(
            path.display().to_string(),
            format!("cannot read config file: {e}"),
        )
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        problem(
            format!("line {line}, column {column}"),
            "not UTF-8 text (a config file is JSON, which is UTF-8)".into(),
        )
    })
}

/// Parse and validate config text against tend's environment and `/etc/hosts`.
/// `base` is the folder relative paths are resolved against (the config file's).
pub fn parse(text: &str, base: Option<&Path>) -> Result<Config, ConfigErrors> {
    // A missing or unreadable hosts file just means no names beyond localhost.
    let hosts = std::fs::read_to_string(HOSTS_FILE).unwrap_or_default();
    parse_with(
        text,
        &Inputs {
            base,
            hosts: &hosts,
            env: &env::process_env,
        },
    )
}

/// Parse and validate config text against explicit inputs (tests use a fake
/// environment and hosts text).
pub fn parse_with(text: &str, inputs: &Inputs) -> Result<Config, ConfigErrors> {
    validate::validate(text, inputs)
}

impl Signal {
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CONT: Signal = Signal(libc::SIGCONT);
}
