//! Raw JSON → a validated [`Config`], collecting every problem with its place.
//!
//! Each `check_*` function looks at one value, records what is wrong with it in
//! the [`Checker`], and returns what it could make of it (a default where it could
//! not), so one bad field never hides the next. Cross-service rules (duplicate
//! names, dependencies, cycles) run after every service has been read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{Level, LevelFilter};

use super::raw::{self, Value};
use super::units::{self, Signal};
use super::{
    Condition, Config, ConfigError, ConfigErrors, Dependency, Limits, Liveness, OutputMode, Probe,
    RestartPolicy, ServiceSpec, ServiceType, discover, graph,
};

const TOP_FIELDS: &[&str] = &[
    "log_level",
    "log_file",
    "control_socket",
    "shutdown_timeout",
    "services_dir",
    "exit_when_idle",
    "services",
];

pub(super) const SERVICE_FIELDS: &[&str] = &[
    "name",
    "command",
    "type",
    "enabled",
    "working_dir",
    "environment",
    "inherit_environment",
    "restart_policy",
    "success_exit_codes",
    "max_retries",
    "retry_window",
    "retry_delay",
    "max_retry_delay",
    "dependencies",
    "readiness",
    "liveness",
    "timeout_start",
    "stop_signal",
    "timeout_stop",
    "output",
    "stderr_level",
    "user",
    "group",
    "limits",
    "critical",
];

const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Collects problems while the config is walked.
#[derive(Default)]
pub(super) struct Checker {
    pub errors: Vec<ConfigError>,
}

/// The fields of one JSON object, with its path.
pub(super) struct Fields<'a> {
    path: String,
    entries: &'a [(String, Value)],
}

impl<'a> Fields<'a> {
    /// The first value of `key`, if present (and not null).
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| **v != Value::Null)
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl Checker {
    pub fn error(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            problem: problem.into(),
        });
    }

    fn expected(&mut self, path: &str, what: &str, got: &Value) {
        self.error(path, format!("expected {what}, got {}", got.show()));
    }

    /// An object whose keys are all in `allowed`, each at most once.
    pub fn object<'a>(
        &mut self,
        path: &str,
        value: &'a Value,
        allowed: &[&str],
    ) -> Option<Fields<'a>> {
        let Value::Object(entries) = value else {
            self.expected(path, "an object", value);
            return None;
        };
        for (i, (key, _)) in entries.iter().enumerate() {
            if !allowed.contains(&key.as_str()) {
                let expected = allowed.join(", ");
                self.error(
                    join(path, key),
                    format!("unknown field; expected one of {expected}"),
                );
            } else if entries[..i].iter().any(|(k, _)| k == key) {
                self.error(join(path, key), "duplicate field");
            }
        }
        Some(Fields {
            path: path.to_string(),
            entries,
        })
    }

    pub fn string(&mut self, path: &str, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                self.expected(path, "a string", other);
                None
            }
        }
    }

    pub fn boolean(&mut self, path: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.expected(path, "true or false", other);
                None
            }
        }
    }

    pub fn integer(&mut self, path: &str, value: &Value, min: i64, max: i64) -> Option<i64> {
        let n = match value {
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.expected(path, &format!("a whole number from {min} to {max}"), value);
                None
            }
        }
    }

    pub fn duration(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let parsed = match value {
            Value::Number(n) => units::seconds(n.as_f64()),
            Value::String(s) => units::parse_duration(s),
            _ => Err(String::new()),
        };
        parsed
            .map_err(|_| {
                self.expected(
                    path,
                    "a duration such as 10, \"250ms\", \"2s\", \"5m\" or \"1h\"",
                    value,
                )
            })
            .ok()
    }

    pub fn size(&mut self, path: &str, value: &Value) -> Option<u64> {
        let parsed = match value {
            Value::Number(n) => n
                .as_i64()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_default(),
            Value::String(s) => units::parse_size(s),
            _ => Err(String::new()),
        };
        parsed
            .map_err(|_| {
                self.expected(
                    path,
                    "a size such as 4096, \"512K\", \"64M\" or \"1G\"",
                    value,
                )
            })
            .ok()
    }

    pub fn signal(&mut self, path: &str, value: &Value) -> Option<Signal> {
        let parsed = match value {
            Value::Number(n) => n.as_i64().ok_or_default().and_then(Signal::from_number),
            Value::String(s) => Signal::parse(s),
            _ => Err(String::new()),
        };
        parsed
            .map_err(|_| self.expected(path, "a signal such as \"SIGTERM\", \"HUP\" or 15", value))
            .ok()
    }

    /// One of `choices`.
    pub fn choice(
        &mut self,
        path: &str,
        value: &Value,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        if let Value::String(s) = value
            && let Some(c) = choices.iter().find(|c| **c == s.as_str())
        {
            return Some(c);
        }
        let list = choices.join(", ");
        self.expected(path, &format!("one of {list}"), value);
        None
    }

    /// An array of strings; `non_empty` also rejects `[]` and an empty first item.
    pub fn argv(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
        let Value::Array(items) = value else {
            self.expected(
                path,
                "an array of strings such as [\"/bin/app\", \"--flag\"]",
                value,
            );
            return None;
        };
        if items.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        let mut argv = Vec::new();
        for (i, item) in items.iter().enumerate() {
            argv.push(self.string(&format!("{path}[{i}]"), item)?);
        }
        if argv.first().is_some_and(|a| a.is_empty()) {
            self.error(format!("{path}[0]"), "must not be empty");
            return None;
        }
        Some(argv)
    }

    fn level(&mut self, path: &str, value: &Value) -> Option<Level> {
        self.choice(path, value, LEVELS)
            .and_then(|l| l.parse().ok())
    }
}

/// `Result<T, String>` from an `Option`, with an empty message (the caller
/// writes the real one).
trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

/// Validate config text. `base` resolves a relative `services_dir`.
pub fn validate(text: &str, base: Option<&Path>) -> Result<Config, ConfigErrors> {
    let root = raw::parse(text).map_err(|e| ConfigErrors(vec![e]))?;
    let mut c = Checker::default();
    if !matches!(root, Value::Object(_)) {
        c.expected("(top level)", "an object", &root);
        return Err(ConfigErrors(c.errors));
    }
    let Some(top) = c.object("", &root, TOP_FIELDS) else {
        return Err(ConfigErrors(c.errors));
    };
    let mut config = Config {
        log_level: LevelFilter::Info,
        log_file: None,
        control_socket: None,
        shutdown_timeout: Duration::from_secs(30),
        services_dir: None,
        exit_when_idle: false,
        services: Vec::new(),
    };
    if let Some(v) = top.get("log_level")
        && let Some(level) = c.level("log_level", v)
    {
        config.log_level = level.to_level_filter();
    }
    config.log_file = top
        .get("log_file")
        .and_then(|v| c.string("log_file", v))
        .map(PathBuf::from);
    config.control_socket = top
        .get("control_socket")
        .and_then(|v| c.string("control_socket", v))
        .map(PathBuf::from);
    if let Some(d) = top
        .get("shutdown_timeout")
        .and_then(|v| c.duration("shutdown_timeout", v))
    {
        config.shutdown_timeout = d;
    }
    if let Some(b) = top
        .get("exit_when_idle")
        .and_then(|v| c.boolean("exit_when_idle", v))
    {
        config.exit_when_idle = b;
    }
    config.services_dir = top
        .get("services_dir")
        .and_then(|v| c.string("services_dir", v))
        .map(|d| resolve(base, &d));
    let mut services: Vec<(String, ServiceSpec)> = Vec::new();
    match top.get("services") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("services[{i}]");
                if let Some(spec) = check_service(&mut c, &path, item, None) {
                    services.push((path, spec));
                }
            }
        }
        Some(other) => c.expected("services", "an array of service objects", other),
        None if config.services_dir.is_none() => c.error("services", "missing; list the services"),
        None => {}
    }
    check_unique_names(&mut c, &services);
    if let Some(dir) = &config.services_dir {
        for (path, spec) in discover::scan(&mut c, dir) {
            if !services.iter().any(|(_, s)| s.name == spec.name) {
                services.push((path, spec));
            }
        }
    }
    graph::check(&mut c, &services);
    config.services = services.into_iter().map(|(_, s)| s).collect();
    if c.errors.is_empty() {
        Ok(config)
    } else {
        // File order: top-level fields, then each service in turn (stable, so
        // the problems of one service keep the order they were found in).
        c.errors.sort_by_key(|e| order_key(&e.path));
        Err(ConfigErrors(c.errors))
    }
}

/// Where a problem's path sorts: top level, `services[N]` by N, then discovery.
fn order_key(path: &str) -> (u8, usize) {
    if let Some(rest) = path.strip_prefix("services[") {
        let n = rest.split(']').next().and_then(|n| n.parse().ok());
        return (1, n.unwrap_or(0));
    }
    if path.starts_with("services_dir/") {
        return (2, 0);
    }
    (0, 0)
}

fn resolve(base: Option<&Path>, path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    match base {
        Some(base) if path.is_relative() && !base.as_os_str().is_empty() => base.join(path),
        _ => path,
    }
}

fn check_unique_names(c: &mut Checker, services: &[(String, ServiceSpec)]) {
    for (i, (path, spec)) in services.iter().enumerate() {
        if let Some((first, _)) = services[..i].iter().find(|(_, s)| s.name == spec.name) {
            c.error(
                format!("{path}.name"),
                format!("duplicate service name {:?} (also {first})", spec.name),
            );
        }
    }
}

/// What a discovered service gets before its `service.json` is read.
pub(super) struct Discovered {
    pub name: String,
    pub command: Vec<String>,
    pub working_dir: PathBuf,
}

/// Check one service object. `None` only when it has no usable name (then the
/// cross-service checks cannot refer to it); otherwise a spec with defaults
/// wherever a field was wrong (the problem is recorded).
pub(super) fn check_service(
    c: &mut Checker,
    path: &str,
    value: &Value,
    discovered: Option<Discovered>,
) -> Option<ServiceSpec> {
    let f = c.object(path, value, SERVICE_FIELDS)?;
    // Without a usable name the service is still checked field by field, but
    // it cannot take part in the cross-service checks.
    let name = match (f.get("name"), &discovered) {
        (Some(v), _) => check_name(c, &f.path("name"), v),
        (None, Some(d)) => Some(d.name.clone()),
        (None, None) => {
            c.error(f.path("name"), "missing; every service needs a name");
            None
        }
    };
    let command = match (f.get("command"), &discovered) {
        (Some(v), _) => c.argv(&f.path("command"), v).unwrap_or_default(),
        (None, Some(d)) => d.command.clone(),
        (None, None) => {
            c.error(f.path("command"), "missing; every service needs a command");
            Vec::new()
        }
    };
    let service_type = match f.get("type") {
        Some(v) => match c.choice(&f.path("type"), v, &["longrun", "oneshot"]) {
            Some("oneshot") => ServiceType::Oneshot,
            _ => ServiceType::Longrun,
        },
        None => ServiceType::Longrun,
    };
    let mut spec = defaults(name.clone().unwrap_or_default(), command, service_type);
    if let Some(d) = discovered {
        spec.working_dir = Some(d.working_dir);
    }
    check_basics(c, &f, &mut spec);
    check_restarts(c, &f, &mut spec);
    check_process(c, &f, &mut spec);
    if let Some(v) = f.get("dependencies") {
        spec.dependencies = check_dependencies(c, &f.path("dependencies"), v);
    }
    if let Some(v) = f.get("readiness") {
        spec.readiness = check_probe(c, &f.path("readiness"), v, false).map(|(p, _)| p);
    }
    if let Some(v) = f.get("liveness") {
        spec.liveness = check_probe(c, &f.path("liveness"), v, true)
            .map(|(probe, failures)| Liveness { probe, failures });
    }
    name.map(|_| spec)
}

fn check_name(c: &mut Checker, path: &str, value: &Value) -> Option<String> {
    let name = c.string(path, value)?;
    let valid_chars = name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
    if name.is_empty() || name.len() > 64 || !valid_chars {
        c.error(
            path,
            format!("{name:?} is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -"),
        );
        return None;
    }
    Some(name)
}

/// A service with every SPEC §2 default.
pub(super) fn defaults(
    name: String,
    command: Vec<String>,
    service_type: ServiceType,
) -> ServiceSpec {
    ServiceSpec {
        name,
        command,
        service_type,
        enabled: true,
        working_dir: None,
        environment: BTreeMap::new(),
        inherit_environment: true,
        restart_policy: match service_type {
            ServiceType::Longrun => RestartPolicy::Always,
            ServiceType::Oneshot => RestartPolicy::OnFailure,
        },
        success_exit_codes: vec![0],
        max_retries: 10,
        retry_window: Duration::from_secs(60),
        retry_delay: Duration::from_secs(1),
        max_retry_delay: Duration::from_secs(30),
        dependencies: Vec::new(),
        readiness: None,
        liveness: None,
        timeout_start: Duration::from_secs(60),
        stop_signal: Signal(libc::SIGTERM),
        timeout_stop: Duration::from_secs(10),
        output: OutputMode::Log,
        stderr_level: Level::Error,
        user: None,
        group: None,
        limits: Limits::default(),
        critical: false,
    }
}

/// enabled, working_dir, environment, output, levels, critical.
fn check_basics(c: &mut Checker, f: &Fields, spec: &mut ServiceSpec) {
    for (key, slot) in [
        ("enabled", &mut spec.enabled),
        ("inherit_environment", &mut spec.inherit_environment),
        ("critical", &mut spec.critical),
    ] {
        if let Some(b) = f.get(key).and_then(|v| c.boolean(&f.path(key), v)) {
            *slot = b;
        }
    }
    if let Some(dir) = f
        .get("working_dir")
        .and_then(|v| c.string(&f.path("working_dir"), v))
    {
        spec.working_dir = Some(PathBuf::from(dir));
    }
    if let Some(v) = f.get("environment") {
        spec.environment = check_environment(c, &f.path("environment"), v);
    }
    if let Some(v) = f.get("output") {
        spec.output = match c.choice(&f.path("output"), v, &["log", "inherit", "null"]) {
            Some("inherit") => OutputMode::Inherit,
            Some("null") => OutputMode::Null,
            _ => OutputMode::Log,
        };
    }
    if let Some(level) = f
        .get("stderr_level")
        .and_then(|v| c.level(&f.path("stderr_level"), v))
    {
        spec.stderr_level = level;
    }
}

fn check_environment(c: &mut Checker, path: &str, value: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Value::Object(entries) = value else {
        c.expected(
            path,
            "an object of strings such as {\"KEY\": \"value\"}",
            value,
        );
        return env;
    };
    for (key, v) in entries {
        let p = join(path, key);
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            c.error(&p, "is not a valid environment variable name");
            continue;
        }
        if let Some(s) = c.string(&p, v) {
            if s.contains('\0') {
                c.error(&p, "must not contain a NUL byte");
            } else if env.insert(key.clone(), s).is_some() {
                c.error(&p, "duplicate field");
            }
        }
    }
    env
}

/// restart_policy, success_exit_codes, max_retries and the backoff durations.
fn check_restarts(c: &mut Checker, f: &Fields, spec: &mut ServiceSpec) {
    if let Some(v) = f.get("restart_policy") {
        let choices = ["always", "on-failure", "never"];
        spec.restart_policy = match c.choice(&f.path("restart_policy"), v, &choices) {
            Some("always") => RestartPolicy::Always,
            Some("on-failure") => RestartPolicy::OnFailure,
            Some(_) => RestartPolicy::Never,
            None => spec.restart_policy,
        };
    }
    if let Some(v) = f.get("success_exit_codes") {
        let path = f.path("success_exit_codes");
        match v {
            Value::Array(items) => {
                spec.success_exit_codes = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| c.integer(&format!("{path}[{i}]"), item, 0, 255))
                    .map(|n| n as i32)
                    .collect();
            }
            other => c.expected(&path, "an array of exit codes such as [0, 2]", other),
        }
    }
    if let Some(n) = f
        .get("max_retries")
        .and_then(|v| c.integer(&f.path("max_retries"), v, 0, i64::from(u32::MAX)))
    {
        spec.max_retries = n as u32;
    }
    for (key, slot) in [
        ("retry_window", &mut spec.retry_window),
        ("retry_delay", &mut spec.retry_delay),
        ("max_retry_delay", &mut spec.max_retry_delay),
        ("timeout_start", &mut spec.timeout_start),
        ("timeout_stop", &mut spec.timeout_stop),
    ] {
        if let Some(d) = f.get(key).and_then(|v| c.duration(&f.path(key), v)) {
            *slot = d;
        }
    }
}

/// stop_signal, user, group, limits.
fn check_process(c: &mut Checker, f: &Fields, spec: &mut ServiceSpec) {
    if let Some(s) = f
        .get("stop_signal")
        .and_then(|v| c.signal(&f.path("stop_signal"), v))
    {
        spec.stop_signal = s;
    }
    spec.user = f.get("user").and_then(|v| check_id(c, &f.path("user"), v));
    spec.group = f
        .get("group")
        .and_then(|v| check_id(c, &f.path("group"), v));
    if let Some(v) = f.get("limits") {
        spec.limits = check_limits(c, &f.path("limits"), v);
    }
}

/// A user or group: a name or a number, kept as a string.
fn check_id(c: &mut Checker, path: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() && !s.contains('\0') => Some(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(id) if (0..=i64::from(u32::MAX)).contains(&id) => Some(id.to_string()),
            _ => {
                c.expected(path, "a name or a non-negative number", value);
                None
            }
        },
        other => {
            c.expected(path, "a name or a non-negative number", other);
            None
        }
    }
}

fn check_limits(c: &mut Checker, path: &str, value: &Value) -> Limits {
    let mut limits = Limits::default();
    let keys = ["nofile", "nproc", "core", "memory", "cpu", "fsize"];
    let Some(f) = c.object(path, value, &keys) else {
        return limits;
    };
    let count = |c: &mut Checker, key: &str| {
        f.get(key)
            .and_then(|v| c.integer(&f.path(key), v, 0, i64::MAX))
            .map(|n| n as u64)
    };
    limits.nofile = count(c, "nofile");
    limits.nproc = count(c, "nproc");
    limits.core = f.get("core").and_then(|v| c.size(&f.path("core"), v));
    limits.memory = f.get("memory").and_then(|v| c.size(&f.path("memory"), v));
    limits.fsize = f.get("fsize").and_then(|v| c.size(&f.path("fsize"), v));
    limits.cpu = f
        .get("cpu")
        .and_then(|v| c.duration(&f.path("cpu"), v))
        .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
    limits
}

fn check_dependencies(c: &mut Checker, path: &str, value: &Value) -> Vec<Dependency> {
    let Value::Array(items) = value else {
        c.expected(
            path,
            "an array of service names or {\"service\", \"condition\"} objects",
            value,
        );
        return Vec::new();
    };
    let mut deps = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let dep = match item {
            Value::String(name) => Some(Dependency {
                service: name.clone(),
                condition: Condition::Ready,
            }),
            Value::Object(_) => check_dependency_object(c, &p, item),
            other => {
                c.expected(
                    &p,
                    "a service name or {\"service\": NAME, \"condition\": ...}",
                    other,
                );
                None
            }
        };
        deps.extend(dep);
    }
    deps
}

fn check_dependency_object(c: &mut Checker, path: &str, value: &Value) -> Option<Dependency> {
    let f = c.object(path, value, &["service", "condition"])?;
    let condition = match f.get("condition") {
        Some(v) => match c.choice(&f.path("condition"), v, &["started", "ready", "completed"])? {
            "started" => Condition::Started,
            "completed" => Condition::Completed,
            _ => Condition::Ready,
        },
        None => Condition::Ready,
    };
    let Some(v) = f.get("service") else {
        c.error(f.path("service"), "missing; name the service depended on");
        return None;
    };
    let service = c.string(&f.path("service"), v)?;
    Some(Dependency { service, condition })
}

/// A readiness or liveness object; for liveness, also its `failures`.
fn check_probe(c: &mut Checker, path: &str, value: &Value, liveness: bool) -> Option<(Probe, u32)> {
    let Value::Object(entries) = value else {
        c.expected(path, "an object with a \"type\"", value);
        return None;
    };
    let kinds: &[&'static str] = if liveness {
        &["exec", "tcp", "http"]
    } else {
        &["notify", "fd", "exec", "tcp", "http", "log"]
    };
    let type_path = join(path, "type");
    let Some((_, kind)) = entries.iter().find(|(k, _)| k == "type") else {
        c.error(type_path, format!("missing; one of {}", kinds.join(", ")));
        return None;
    };
    let kind = c.choice(&type_path, kind, kinds)?;
    let mut allowed = vec!["type"];
    allowed.extend_from_slice(match kind {
        "notify" => &["watchdog"][..],
        "fd" => &["fd"],
        "exec" => &["command", "interval"],
        "tcp" => &["address", "interval"],
        "http" => &["url", "interval"],
        _ => &["pattern"],
    });
    if liveness {
        allowed.extend_from_slice(&["interval", "failures"]);
        allowed.dedup();
    }
    let f = c.object(path, value, &allowed)?;
    let default_interval = match (liveness, kind) {
        (true, _) => Duration::from_secs(10),
        (false, "tcp") => Duration::from_millis(500),
        _ => Duration::from_secs(1),
    };
    let interval = f
        .get("interval")
        .and_then(|v| c.duration(&f.path("interval"), v))
        .unwrap_or(default_interval);
    let failures = f
        .get("failures")
        .and_then(|v| c.integer(&f.path("failures"), v, 1, i64::from(u32::MAX)))
        .map_or(3, |n| n as u32);
    let required = |c: &mut Checker, key: &str| {
        let v = f.get(key);
        if v.is_none() {
            c.error(f.path(key), "missing");
        }
        v
    };
    let probe = match kind {
        "notify" => Probe::Notify {
            watchdog: f
                .get("watchdog")
                .and_then(|v| c.duration(&f.path("watchdog"), v)),
        },
        "fd" => Probe::Fd {
            fd: required(c, "fd").and_then(|v| c.integer(&f.path("fd"), v, 3, 1023))? as i32,
        },
        "exec" => Probe::Exec {
            command: required(c, "command").and_then(|v| c.argv(&f.path("command"), v))?,
            interval,
        },
        "tcp" => {
            let v = required(c, "address")?;
            Probe::Tcp {
                address: check_address(c, &f.path("address"), v)?,
                interval,
            }
        }
        "http" => {
            let v = required(c, "url")?;
            Probe::Http {
                url: check_url(c, &f.path("url"), v)?,
                interval,
            }
        }
        _ => Probe::Log {
            pattern: required(c, "pattern")
                .and_then(|v| c.string(&f.path("pattern"), v))
                .filter(|p| !p.is_empty())
                .or_else(|| {
                    c.error(f.path("pattern"), "must not be empty");
                    None
                })?,
        },
    };
    Some((probe, failures))
}

fn check_address(c: &mut Checker, path: &str, value: &Value) -> Option<String> {
    let address = c.string(path, value)?;
    let port_ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        c.error(
            path,
            format!("expected HOST:PORT such as \"127.0.0.1:5432\", got {address:?}"),
        );
        return None;
    }
    Some(address)
}

fn check_url(c: &mut Checker, path: &str, value: &Value) -> Option<String> {
    let url = c.string(path, value)?;
    if !url.starts_with("http://") || url.len() <= "http://".len() {
        c.error(path, format!("expected an http:// URL, got {url:?}"));
        return None;
    }
    Some(url)
}
