//! Service fields about how the process is run: `stop_signal`, `user`, `group`,
//! `limits`, `cgroup_limits`, `isolate`, `nice`, `io_priority`, `oom_score_adj`,
//! `cpu_affinity`, `sha256`.
//!
//! Only the form is checked here; what depends on the machine (does the user
//! exist, may we set this) is [`super::preflight`]'s or the spawn's.

use super::checker::{Checker, Fields};
use super::raw::Value;
use super::units;
use super::{CgroupLimits, IoClass, IoPriority, Isolate, Limits, ServiceSpec};

/// Highest CPU number accepted in `cpu_affinity` (a `cpu_set_t` holds 1024).
pub const MAX_CPU: u32 = 1023;

pub(super) fn check(c: &mut Checker, f: &Fields, spec: &mut ServiceSpec) {
    if let Some(s) = f
        .get("stop_signal")
        .and_then(|v| c.signal(&f.path("stop_signal"), v))
    {
        spec.stop_signal = s;
    }
    spec.process.user = f.get("user").and_then(|v| check_id(c, &f.path("user"), v));
    spec.process.group = f
        .get("group")
        .and_then(|v| check_id(c, &f.path("group"), v));
    if let Some(v) = f.get("limits") {
        spec.process.limits = check_limits(c, &f.path("limits"), v);
    }
    if let Some(v) = f.get("cgroup_limits") {
        spec.process.cgroup_limits = check_cgroup_limits(c, &f.path("cgroup_limits"), v);
    }
    if let Some(v) = f.get("isolate") {
        spec.process.isolate = check_isolate(c, &f.path("isolate"), v);
    }
    spec.process.nice = f
        .get("nice")
        .and_then(|v| c.integer(&f.path("nice"), v, -20, 19))
        .map(|n| n as i32);
    spec.process.oom_score_adj = f
        .get("oom_score_adj")
        .and_then(|v| c.integer(&f.path("oom_score_adj"), v, -1000, 1000))
        .map(|n| n as i32);
    spec.process.io_priority = f
        .get("io_priority")
        .and_then(|v| check_io_priority(c, &f.path("io_priority"), v));
    spec.process.cpu_affinity = f
        .get("cpu_affinity")
        .and_then(|v| check_cpu_affinity(c, &f.path("cpu_affinity"), v));
    spec.process.sha256 = f.get("sha256").and_then(|v| {
        let path = f.path("sha256");
        let text = c.string(&path, v)?;
        units::parse_sha256(text.trim())
            .map_err(|why| {
                c.error(
                    &path,
                    format!("expected 64 hexadecimal digits (sha256sum's output): {why}"),
                )
            })
            .ok()
    });
    // Written field by field above: a service that sets none of them keeps
    // no box for them (see `sparse.rs`).
    spec.process.compact();
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

fn is_max(value: &Value) -> bool {
    *value == Value::String("max".into())
}

fn check_cgroup_limits(c: &mut Checker, path: &str, value: &Value) -> CgroupLimits {
    let mut limits = CgroupLimits::default();
    let Some(f) = c.object(path, value, &["memory_max", "cpu_max", "pids_max"]) else {
        return limits;
    };
    if let Some(v) = f.get("memory_max").filter(|v| !is_max(v)) {
        let p = f.path("memory_max");
        limits.memory_max = match c.size(&p, v) {
            Some(0) => {
                c.error(&p, "must be above 0 (or \"max\")");
                None
            }
            n => n,
        };
    }
    if let Some(v) = f.get("cpu_max") {
        let p = f.path("cpu_max");
        limits.cpu_max = match v {
            Value::String(s) => units::parse_cpu_max(s)
                .map_err(|why| {
                    c.error(
                        &p,
                        format!("expected a share of a CPU such as \"50%\" or \"200%\", or \"max\": {why}"),
                    )
                })
                .ok()
                .flatten(),
            other => {
                c.expected(&p, "a share of a CPU such as \"50%\" or \"200%\", or \"max\"", other);
                None
            }
        };
    }
    if let Some(v) = f.get("pids_max").filter(|v| !is_max(v)) {
        limits.pids_max = c
            .integer(&f.path("pids_max"), v, 1, i64::MAX)
            .map(|n| n as u64);
    }
    limits
}

fn check_isolate(c: &mut Checker, path: &str, value: &Value) -> Isolate {
    let mut isolate = Isolate::default();
    let Some(f) = c.object(path, value, &["network", "tmp", "ipc", "hostname"]) else {
        return isolate;
    };
    for (key, slot) in [
        ("network", &mut isolate.network),
        ("tmp", &mut isolate.tmp),
        ("ipc", &mut isolate.ipc),
    ] {
        if let Some(b) = f.get(key).and_then(|v| c.boolean(&f.path(key), v)) {
            *slot = b;
        }
    }
    if let Some(v) = f.get("hostname") {
        let p = f.path("hostname");
        isolate.hostname = c.string(&p, v).and_then(|name| {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.'));
            if valid {
                Some(name)
            } else {
                c.error(
                    &p,
                    format!("{name:?} is not a valid host name: use 1 to 64 of A-Z a-z 0-9 - ."),
                );
                None
            }
        });
    }
    isolate
}

fn check_io_priority(c: &mut Checker, path: &str, value: &Value) -> Option<IoPriority> {
    let f = c.object(path, value, &["class", "level"])?;
    let class = match f.get("class") {
        Some(v) => match c.choice(&f.path("class"), v, &["best-effort", "idle", "realtime"])? {
            "idle" => IoClass::Idle,
            "realtime" => IoClass::Realtime,
            _ => IoClass::BestEffort,
        },
        None => IoClass::BestEffort,
    };
    let level = match f.get("level") {
        Some(v) => c.integer(&f.path("level"), v, 0, 7)? as u8,
        None => IoPriority::DEFAULT_LEVEL,
    };
    Some(IoPriority { class, level })
}

fn check_cpu_affinity(c: &mut Checker, path: &str, value: &Value) -> Option<Vec<u32>> {
    let Value::Array(items) = value else {
        c.expected(path, "an array of CPU numbers such as [0, 1]", value);
        return None;
    };
    if items.is_empty() {
        c.error(
            path,
            "must not be empty (leave the field out for every CPU)",
        );
        return None;
    }
    let mut cpus: Vec<u32> = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match c.integer(&p, item, 0, i64::from(MAX_CPU)) {
            Some(n) if cpus.contains(&(n as u32)) => {
                c.error(&p, format!("CPU {n} is listed twice"));
                ok = false;
            }
            Some(n) => cpus.push(n as u32),
            None => ok = false,
        }
    }
    ok.then_some(cpus)
}
