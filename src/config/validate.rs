//! Raw JSON → a validated [`Config`]: the top level, then each service object,
//! then the rules across services (unique names, dependencies, cycles).
//!
//! Every value starts as the SPEC default from [`Config::new`] /
//! [`ServiceSpec::new`] and is replaced only by a valid field. Service fields
//! are split by theme: here the basics and restarts, [`super::probes`] for
//! readiness and liveness, [`super::process`] for how the process is run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::checker::{Checker, Fields, Inputs, join};
use super::raw::{self, Value};
use super::{
    CgroupSetting, Condition, Config, ConfigErrors, Dependency, LogFormat, OutputMode, ServiceSpec,
    ServiceType, discover, graph, probes, process,
};

const TOP_FIELDS: &[&str] = &[
    "log_level",
    "log_format",
    "log_file",
    "log_max_size",
    "log_keep",
    "metrics_address",
    "cgroup",
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
    "env_file",
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
    "min_uptime",
    "stop_signal",
    "timeout_stop",
    "output",
    "log_file",
    "log_max_size",
    "log_keep",
    "user",
    "group",
    "limits",
    "critical",
    "cgroup_limits",
    "isolate",
    "nice",
    "io_priority",
    "oom_score_adj",
    "cpu_affinity",
    "sha256",
];

const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// The longest `control_socket` path: `sun_path` is 108 bytes with its NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// Validate config text against `inputs`.
pub fn validate(text: &str, inputs: &Inputs) -> Result<Config, ConfigErrors> {
    let root = raw::parse(text).map_err(|e| ConfigErrors(vec![e]))?;
    check_root(&root, inputs, true)
}

/// Validate the top-level fields of config text, not its services (their
/// syntax only, `raw::parse_top`) nor its `services_dir`'s contents: what a
/// client must know for sure to find its tend. The config has no services.
pub fn validate_top(text: &str, inputs: &Inputs) -> Result<Config, ConfigErrors> {
    let root = raw::parse_top(text).map_err(|e| ConfigErrors(vec![e]))?;
    check_root(&root, inputs, false)
}

/// `scan_services_dir`: whether to read the services of `services_dir`.
fn check_root(
    root: &Value,
    inputs: &Inputs,
    scan_services_dir: bool,
) -> Result<Config, ConfigErrors> {
    let mut c = Checker::new(inputs);
    let Some(top) = c.object("", root, TOP_FIELDS) else {
        return Err(ConfigErrors(c.errors));
    };
    let mut config = Config::new(Vec::new());
    check_top(&mut c, &top, &mut config);
    let mut services: Vec<(String, ServiceSpec)> = Vec::new();
    match top.get("services") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = service_path(i, item);
                if let Some(spec) = check_service(&mut c, &path, item, None, inputs.base) {
                    services.push((path, spec));
                }
            }
        }
        Some(other) => c.expected("services", "an array of service objects", other),
        None if config.services_dir.is_none() => c.error("services", "missing; list the services"),
        None => {}
    }
    check_unique_names(&mut c, &services);
    if scan_services_dir && let Some(dir) = &config.services_dir {
        let found = discover::scan(&mut c, dir);
        if found.is_empty() && c.errors.iter().all(|e| e.path != "services_dir") {
            c.warn(
                "services_dir",
                format!(
                    "{} holds no service (a service is a folder D holding an executable file D)",
                    dir.display()
                ),
            );
        }
        let named: HashSet<String> = services.iter().map(|(_, s)| s.name.clone()).collect();
        for (path, spec) in found {
            if !named.contains(&spec.name) {
                services.push((path, spec));
            }
        }
    }
    graph::check(&mut c, &services);
    if config.cgroup.is_none() {
        for (path, spec) in &services {
            if spec.process.cgroup_limits.any() {
                c.error(
                    join(path, "cgroup_limits"),
                    "needs the top-level \"cgroup\" (a cgroup v2 folder, or \"auto\")",
                );
            }
        }
    }
    (config.places, config.services) = services.into_iter().unzip();
    config.warnings = c.warnings;
    if c.errors.is_empty() {
        Ok(config)
    } else {
        // File order: top-level fields, then each service in turn (stable, so
        // the problems of one service keep the order they were found in).
        c.errors.sort_by_key(|e| order_key(&e.path));
        Err(ConfigErrors(c.errors))
    }
}

/// `services[3] (web)` when the object has a valid name, else `services[3]`.
fn service_path(i: usize, item: &Value) -> String {
    let name = match item {
        Value::Object(entries) => entries.iter().find_map(|(k, v)| match v {
            Value::String(s) if k == "name" && valid_name(s) => Some(s.as_str()),
            _ => None,
        }),
        _ => None,
    };
    match name {
        Some(name) => format!("services[{i}] ({name})"),
        None => format!("services[{i}]"),
    }
}

fn check_top(c: &mut Checker, top: &Fields, config: &mut Config) {
    let base = c.inputs.base;
    if let Some(level) = top
        .get("log_level")
        .and_then(|v| c.choice("log_level", v, LEVELS))
        .and_then(|l| l.parse::<log::Level>().ok())
    {
        config.log_level = level.to_level_filter();
    }
    if let Some(v) = top.get("log_format") {
        config.log_format = match c.choice("log_format", v, &["text", "plain", "json"]) {
            Some("plain") => LogFormat::Plain,
            Some("json") => LogFormat::Json,
            Some(_) => LogFormat::Text,
            None => config.log_format,
        };
    }
    config.log_file = top
        .get("log_file")
        .and_then(|v| check_log_file(c, "log_file", v, base));
    if let Some(n) = top
        .get("log_max_size")
        .and_then(|v| log_max_size(c, "log_max_size", v))
    {
        config.log_rotation.max_size = n;
    }
    if let Some(n) = top.get("log_keep").and_then(|v| log_keep(c, "log_keep", v)) {
        config.log_rotation.keep = n;
    }
    if let Some(v) = top.get("metrics_address") {
        config.metrics_address = match c.string("metrics_address", v) {
            Some(s) => match s.parse::<std::net::SocketAddr>() {
                Ok(a) if a.port() != 0 => Some(a),
                _ => {
                    c.expected(
                        "metrics_address",
                        "an IP address and port such as \"127.0.0.1:9187\" or \"[::]:9187\"",
                        v,
                    );
                    None
                }
            },
            None => None,
        };
    }
    config.cgroup = top.get("cgroup").and_then(|v| check_cgroup(c, v));
    if let Some(socket) = top
        .get("control_socket")
        .and_then(|v| c.c_string("control_socket", v))
    {
        if socket.len() > MAX_SOCKET_PATH {
            c.error(
                "control_socket",
                format!(
                    "is {} bytes long; a unix socket path holds at most {MAX_SOCKET_PATH}: use a shorter path",
                    socket.len()
                ),
            );
        } else {
            config.control_socket = Some(socket.into());
        }
    }
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
        .and_then(|v| c.path("services_dir", v, base));
}

fn check_cgroup(c: &mut Checker, value: &Value) -> Option<CgroupSetting> {
    let s = c.c_string("cgroup", value)?;
    if s == "auto" {
        Some(CgroupSetting::Auto)
    } else if s.starts_with('/') {
        Some(CgroupSetting::Path(s.into()))
    } else {
        c.expected(
            "cgroup",
            "\"auto\" or an absolute cgroup v2 folder such as \"/sys/fs/cgroup/tend\"",
            value,
        );
        None
    }
}

/// A `log_file` path that is not an existing folder.
fn check_log_file(
    c: &mut Checker,
    path: &str,
    value: &Value,
    base: Option<&Path>,
) -> Option<std::path::PathBuf> {
    let file = c.path(path, value, base)?;
    if file.is_dir() {
        c.error(
            path,
            format!("{} is a folder; name a file in it", file.display()),
        );
        return None;
    }
    Some(file)
}

fn log_max_size(c: &mut Checker, path: &str, value: &Value) -> Option<u64> {
    let n = c.size(path, value)?;
    if n == 0 {
        c.error(path, "must be above 0");
        return None;
    }
    Some(n)
}

fn log_keep(c: &mut Checker, path: &str, value: &Value) -> Option<u32> {
    c.integer(path, value, 0, 1000).map(|n| n as u32)
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

/// Linear in the services: configs of 10,000 are checked by every client.
fn check_unique_names(c: &mut Checker, services: &[(String, ServiceSpec)]) {
    let mut first: HashMap<&str, &str> = HashMap::with_capacity(services.len());
    for (path, spec) in services {
        if let Some(first) = first.get(spec.name.as_str()) {
            c.error(
                join(path, "name"),
                format!("duplicate service name {:?} (also {first})", spec.name),
            );
        } else {
            first.insert(&spec.name, path);
        }
    }
}

/// What a discovered service gets before its `service.json` is read.
pub(super) struct Discovered {
    pub name: String,
    pub command: Vec<String>,
    pub working_dir: std::path::PathBuf,
}

/// Check one service object. `None` only when it has no usable name (then the
/// cross-service checks cannot refer to it); otherwise a spec with defaults
/// wherever a field was wrong (the problem is recorded). `base` resolves its
/// relative paths.
pub(super) fn check_service(
    c: &mut Checker,
    path: &str,
    value: &Value,
    discovered: Option<Discovered>,
    base: Option<&Path>,
) -> Option<ServiceSpec> {
    let f = c.object(path, value, SERVICE_FIELDS)?;
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
    let mut spec = ServiceSpec::new(name.as_deref().unwrap_or_default(), command);
    if let Some(v) = f.get("type") {
        match c.choice(&f.path("type"), v, &["longrun", "oneshot"]) {
            Some("oneshot") => spec.set_type(ServiceType::Oneshot),
            _ => spec.set_type(ServiceType::Longrun),
        }
    }
    if let Some(d) = discovered {
        spec.working_dir = Some(d.working_dir);
    }
    check_basics(c, &f, &mut spec, base);
    check_restarts(c, &f, &mut spec);
    process::check(c, &f, &mut spec);
    if let Some(v) = f.get("dependencies") {
        spec.dependencies = check_dependencies(c, &f.path("dependencies"), v);
    }
    if let Some(v) = f.get("readiness") {
        spec.readiness = probes::readiness(c, &f.path("readiness"), v).map(Box::new);
    }
    if let Some(v) = f.get("liveness") {
        spec.liveness = probes::liveness(c, &f.path("liveness"), v).map(Box::new);
    }
    name.map(|_| spec)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
}

fn check_name(c: &mut Checker, path: &str, value: &Value) -> Option<String> {
    let name = c.string(path, value)?;
    if !valid_name(&name) {
        c.error(
            path,
            format!("{name:?} is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -"),
        );
        return None;
    }
    Some(name)
}

/// enabled, working_dir, environment, env_file, output, log files, critical.
fn check_basics(c: &mut Checker, f: &Fields, spec: &mut ServiceSpec, base: Option<&Path>) {
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
        .and_then(|v| c.path(&f.path("working_dir"), v, base))
    {
        spec.working_dir = Some(dir);
    }
    if let Some(v) = f.get("environment") {
        spec.environment = check_environment(c, &f.path("environment"), v);
    }
    if let Some(v) = f.get("env_file") {
        let path = f.path("env_file");
        spec.env_file = match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| c.path(&format!("{path}[{i}]"), item, base))
                .collect(),
            Value::String(_) => c.path(&path, v, base).into_iter().collect(),
            other => {
                c.expected(&path, "a path or an array of paths", other);
                Vec::new()
            }
        };
    }
    if let Some(v) = f.get("output") {
        spec.output = match c.choice(&f.path("output"), v, &["log", "inherit", "null"]) {
            Some("inherit") => OutputMode::Inherit,
            Some("null") => OutputMode::Null,
            Some(_) => OutputMode::Log,
            None => spec.output,
        };
    }
    spec.log_file = f
        .get("log_file")
        .and_then(|v| check_log_file(c, &f.path("log_file"), v, base));
    spec.log_max_size = f
        .get("log_max_size")
        .and_then(|v| log_max_size(c, &f.path("log_max_size"), v));
    spec.log_keep = f
        .get("log_keep")
        .and_then(|v| log_keep(c, &f.path("log_keep"), v));
}

/// An object of strings; values are interpolated (`${VAR}`, `$$`).
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
    for (i, (key, v)) in entries.iter().enumerate() {
        let p = join(path, key);
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            c.error(&p, "is not a valid environment variable name");
            continue;
        }
        if entries[..i].iter().any(|(k, _)| k == key) {
            c.error(&p, "duplicate field");
            continue;
        }
        let Some(raw) = c.c_string(&p, v) else {
            continue;
        };
        match super::env::interpolate(&raw, c.inputs.env) {
            Ok(expanded) => {
                for name in &expanded.unset {
                    c.warn(
                        &p,
                        format!("${{{name}}} is not set in tend's environment; it expands to \"\""),
                    );
                }
                env.insert(key.clone(), expanded.value);
            }
            Err(why) => c.error(&p, why),
        }
    }
    env
}

/// restart_policy, success_exit_codes, max_retries, the backoff and timeouts.
fn check_restarts(c: &mut Checker, f: &Fields, spec: &mut ServiceSpec) {
    if let Some(v) = f.get("restart_policy") {
        let choices = ["always", "on-failure", "never"];
        spec.restart_policy = match c.choice(&f.path("restart_policy"), v, &choices) {
            Some("always") => super::RestartPolicy::Always,
            Some("on-failure") => super::RestartPolicy::OnFailure,
            Some(_) => super::RestartPolicy::Never,
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
        ("min_uptime", &mut spec.min_uptime),
        ("timeout_stop", &mut spec.timeout_stop),
    ] {
        if let Some(d) = f.get(key).and_then(|v| c.duration(&f.path(key), v)) {
            *slot = d;
        }
    }
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
