//! `tend import FILE`: a Procfile or a supervisord config → an equivalent tend config.
//!
//! Owns: telling the two formats apart ([`detect`]), the service fields both
//! importers fill ([`Service`]), names made valid and unique, and the output (a
//! JSON tree in SPEC §2's field order, [`json`]). The formats themselves live in
//! [`procfile`] and [`supervisord`] (sections, start order, `%(name)s` names; with
//! its INI reader [`ini`], `%(name)s` formatting [`expand`], word splitting [`lex`],
//! the `[supervisord]` section in `daemon`, one `[program:x]` in `program` and its
//! log files in `logs`).
//! Must not: touch the file system or the process environment, except
//! [`Host::current`] for [`import`]; [`import_with`] takes the text, the file's path
//! and a [`Host`], so tests are deterministic.
//!
//! Contract (SPEC §11): whatever has no equivalent is reported as one warning line
//! each, never dropped silently; an input its own tool would refuse (a supervisord
//! format error, an unterminated quote in a command, a Procfile naming a process
//! type twice) is an [`ImportError`] naming the line. Read [`import_with`] first.

mod daemon;
pub mod expand;
pub mod ini;
pub mod json;
pub mod lex;
mod logs;
pub mod procfile;
mod program;
pub mod supervisord;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use json::Json;

/// What `tend import` produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The tend config.
    pub config: serde_json::Value,
    /// The same config as pretty JSON text, fields in SPEC §2's order (name and
    /// command first), ending with a newline: what `tend import` prints.
    pub text: String,
    /// What has no tend equivalent or was changed on the way, one line each,
    /// without a `warning: ` prefix.
    pub warnings: Vec<String>,
    pub format: Format,
}

/// The two formats `tend import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Procfile,
    Supervisord,
}

/// An input that cannot be imported: unparseable, or one its own tool would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    pub message: String,
}

impl ImportError {
    pub fn at(line: usize, message: impl Into<String>) -> ImportError {
        ImportError {
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ImportError {}

/// What the importer may know about the machine it runs on: supervisord expands
/// `%(ENV_X)s` and `%(host_node_name)s` from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    pub env: BTreeMap<String, String>,
    pub hostname: Option<String>,
}

impl Host {
    /// This process's environment (names and values that are not UTF-8 are left
    /// out) and the kernel's host name.
    pub fn current() -> Host {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        Host { env, hostname }
    }
}

/// Import `text`, read from `file_name`, with this process's environment.
/// `file_name` should be absolute: its folder becomes `%(here)s` and a Procfile's
/// `working_dir`.
pub fn import(text: &str, file_name: &Path) -> Result<Imported, ImportError> {
    import_with(text, file_name, &Host::current())
}

/// Import `text`, read from `file_name`, on `host`.
pub fn import_with(text: &str, file_name: &Path, host: &Host) -> Result<Imported, ImportError> {
    let folder = file_name
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if let Some(i) = text.lines().position(|l| l.contains('\0')) {
        return Err(ImportError::at(i + 1, "holds a NUL byte"));
    }
    let format = detect(text, file_name)?;
    let (top, warnings) = match format {
        Format::Procfile => procfile::import(text, &folder)?,
        Format::Supervisord => supervisord::import(text, &folder, host)?,
    };
    let tree = top.to_json();
    // One line each, whatever multi-line value a warning quotes.
    let warnings = warnings
        .into_iter()
        .map(|w| w.replace('\n', "\\n").replace('\r', "\\r"))
        .collect();
    Ok(Imported {
        config: tree.to_value(),
        text: tree.pretty(),
        warnings,
        format,
    })
}

/// Which format `text` is. The content decides: a supervisord file starts (after
/// comments) with a `[section]` header, a Procfile line with `name:`. The file
/// name is the hint when the content alone does not tell.
pub fn detect(text: &str, file_name: &Path) -> Result<Format, ImportError> {
    let name = file_name
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let named_procfile = name.starts_with("procfile");
    let named_ini =
        name.ends_with(".conf") || name.ends_with(".ini") || name.contains("supervisor");
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .find(|(_, l)| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
    match first {
        Some((_, line)) if line.starts_with('[') => Ok(Format::Supervisord),
        Some((_, line)) if procfile::entry(line).is_some() => Ok(Format::Procfile),
        Some(_) if named_procfile => Ok(Format::Procfile),
        Some(_) if named_ini => Ok(Format::Supervisord),
        Some((number, _)) => Err(ImportError::at(
            number,
            "neither a Procfile (`name: command` lines) nor a supervisord config \
             (`[program:x]` sections)",
        )),
        None if named_ini => Ok(Format::Supervisord),
        None => Ok(Format::Procfile),
    }
}

/// The top level of an imported config.
#[derive(Debug, Clone, Default)]
pub struct Top {
    pub log_level: Option<&'static str>,
    pub log_file: Option<String>,
    pub services: Vec<Service>,
}

/// The service fields the importers fill; `None` and empty mean "leave the field
/// out" (tend's default applies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub name: String,
    pub command: Vec<String>,
    pub oneshot: bool,
    pub enabled: Option<bool>,
    pub working_dir: Option<String>,
    pub environment: Vec<(String, String)>,
    pub restart_policy: Option<&'static str>,
    pub success_exit_codes: Option<Vec<i64>>,
    pub max_retries: Option<i64>,
    /// (service, condition)
    pub dependencies: Vec<(String, &'static str)>,
    /// Whole seconds.
    pub min_uptime: Option<i64>,
    pub stop_signal: Option<String>,
    /// Whole seconds.
    pub timeout_stop: Option<i64>,
    pub output: Option<&'static str>,
    pub log_file: Option<String>,
    pub user: Option<String>,
}

impl Top {
    fn to_json(&self) -> Json {
        let mut top = Vec::new();
        if let Some(level) = self.log_level {
            top.push(("log_level".to_string(), Json::str(level)));
        }
        if let Some(file) = &self.log_file {
            top.push(("log_file".to_string(), Json::str(file)));
        }
        let services = self.services.iter().map(Service::to_json).collect();
        top.push(("services".to_string(), Json::Arr(services)));
        Json::Obj(top)
    }
}

impl Service {
    /// The service object, fields in SPEC §2's order.
    fn to_json(&self) -> Json {
        let mut o: Vec<(String, Json)> = Vec::new();
        let mut put = |key: &str, value: Json| o.push((key.to_string(), value));
        put("name", Json::str(&self.name));
        put(
            "command",
            Json::Arr(self.command.iter().map(Json::str).collect()),
        );
        if self.oneshot {
            put("type", Json::str("oneshot"));
        }
        if let Some(enabled) = self.enabled {
            put("enabled", Json::Bool(enabled));
        }
        if let Some(dir) = &self.working_dir {
            put("working_dir", Json::str(dir));
        }
        if !self.environment.is_empty() {
            let env = self
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), Json::str(v)))
                .collect();
            put("environment", Json::Obj(env));
        }
        if let Some(policy) = self.restart_policy {
            put("restart_policy", Json::str(policy));
        }
        if let Some(codes) = &self.success_exit_codes {
            put(
                "success_exit_codes",
                Json::Arr(codes.iter().map(|c| Json::Int(*c)).collect()),
            );
        }
        if let Some(n) = self.max_retries {
            put("max_retries", Json::Int(n));
        }
        if !self.dependencies.is_empty() {
            let deps = self
                .dependencies
                .iter()
                .map(|(service, condition)| {
                    Json::Obj(vec![
                        ("service".to_string(), Json::str(service)),
                        ("condition".to_string(), Json::str(*condition)),
                    ])
                })
                .collect();
            put("dependencies", Json::Arr(deps));
        }
        if let Some(s) = self.min_uptime {
            put("min_uptime", Json::str(format!("{s}s")));
        }
        if let Some(signal) = &self.stop_signal {
            put("stop_signal", Json::str(signal));
        }
        if let Some(s) = self.timeout_stop {
            put("timeout_stop", Json::str(format!("{s}s")));
        }
        if let Some(output) = self.output {
            put("output", Json::str(output));
        }
        if let Some(file) = &self.log_file {
            put("log_file", Json::str(file));
        }
        if let Some(user) = &self.user {
            put("user", Json::str(user));
        }
        Json::Obj(o)
    }
}

/// Make each name a valid, unique tend name (`[A-Za-z0-9_.-]`, 1 to 64
/// characters): other characters become `_`, a repeat gets `-2`, `-3`... Each
/// change is a warning naming `origins[i]`.
pub fn settle_names(names: &mut [String], origins: &[String], warnings: &mut Vec<String>) {
    let mut taken: Vec<String> = Vec::new();
    for (i, name) in names.iter_mut().enumerate() {
        let origin = origins.get(i).map(String::as_str).unwrap_or("");
        let mut valid: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        if valid.is_empty() {
            valid = "service".to_string();
        }
        let base = valid.clone();
        let mut n = 2;
        while taken.contains(&valid) {
            let suffix = format!("-{n}");
            let keep: String = base.chars().take(64 - suffix.len()).collect();
            valid = format!("{keep}{suffix}");
            n += 1;
        }
        if valid != *name {
            warnings.push(format!(
                "{origin}: name {name:?} is not a valid unique tend name; imported as {valid:?}"
            ));
            *name = valid;
        }
        taken.push(name.clone());
    }
}
