//! `readiness` and `liveness` objects (SPEC §4) → [`Readiness`] / [`Liveness`].
//!
//! Each `type` has its own fields; a field of another type is unknown (with a
//! suggestion). Probe hosts are resolved here, at load, through
//! [`super::hosts`]: never by DNS.

use std::time::Duration;

use super::checker::{Checker, Fields, join};
use super::raw::Value;
use super::{Check, CheckKind, Liveness, Readiness, hosts};

const READINESS_TYPES: &[&str] = &["notify", "fd", "exec", "tcp", "http", "grpc", "log"];
const LIVENESS_TYPES: &[&str] = &["exec", "tcp", "http", "grpc"];

/// The fields of each type, `type` included; checks also take `interval` and
/// `timeout`, and liveness `failures`.
fn fields_of(kind: &str, liveness: bool) -> Vec<&'static str> {
    let own: &[&'static str] = match kind {
        "notify" => &["watchdog"],
        "fd" => &["fd"],
        "log" => &["pattern"],
        "exec" => &["command"],
        "tcp" => &["address"],
        "http" => &["url"],
        _ => &["address", "service"],
    };
    let mut all = vec!["type"];
    all.extend_from_slice(own);
    if LIVENESS_TYPES.contains(&kind) {
        all.extend_from_slice(&["interval", "timeout"]);
    }
    if liveness {
        all.push("failures");
    }
    all
}

/// A `readiness` object.
pub(super) fn readiness(c: &mut Checker, path: &str, value: &Value) -> Option<Readiness> {
    let (kind, f) = typed(c, path, value, READINESS_TYPES, false)?;
    match kind {
        "notify" => Some(Readiness::Notify {
            watchdog: f
                .get("watchdog")
                .and_then(|v| c.positive_duration(&f.path("watchdog"), v)),
        }),
        "fd" => {
            let v = required(c, &f, "fd")?;
            let fd = c.integer(&f.path("fd"), v, 3, 1023)?;
            Some(Readiness::Fd { fd: fd as i32 })
        }
        "log" => {
            let v = required(c, &f, "pattern")?;
            let pattern = c.string(&f.path("pattern"), v)?;
            if pattern.is_empty() {
                c.error(f.path("pattern"), "must not be empty");
                return None;
            }
            Some(Readiness::Log { pattern })
        }
        _ => check(c, &f, kind, Check::READINESS_INTERVAL).map(Readiness::Check),
    }
}

/// A `liveness` object.
pub(super) fn liveness(c: &mut Checker, path: &str, value: &Value) -> Option<Liveness> {
    let (kind, f) = typed(c, path, value, LIVENESS_TYPES, true)?;
    let failures = f
        .get("failures")
        .and_then(|v| c.integer(&f.path("failures"), v, 1, 1_000_000))
        .map_or(Liveness::FAILURES, |n| n as u32);
    let check = check(c, &f, kind, Check::LIVENESS_INTERVAL)?;
    Some(Liveness { check, failures })
}

/// The object, its `type` (one of `types`), and its fields checked against
/// that type.
fn typed<'v>(
    c: &mut Checker,
    path: &str,
    value: &'v Value,
    types: &[&'static str],
    liveness: bool,
) -> Option<(&'static str, Fields<'v>)> {
    let Value::Object(entries) = value else {
        c.expected(path, "an object with a \"type\"", value);
        return None;
    };
    let type_path = join(path, "type");
    let Some((_, kind)) = entries.iter().find(|(k, _)| k == "type") else {
        c.error(type_path, format!("missing; one of {}", types.join(", ")));
        return None;
    };
    if liveness && let Value::String(k) = kind {
        let why = match k.as_str() {
            "notify" => Some(
                "\"notify\" is not a liveness type: the notify watchdog is part of readiness, \
                 {\"type\": \"notify\", \"watchdog\": \"30s\"}",
            ),
            "fd" => Some("\"fd\" is readiness only; liveness is one of exec, tcp, http, grpc"),
            "log" => Some("\"log\" is readiness only; liveness is one of exec, tcp, http, grpc"),
            _ => None,
        };
        if let Some(why) = why {
            c.error(type_path, why);
            return None;
        }
    }
    let kind = c.choice(&type_path, kind, types)?;
    let f = c.object(path, value, &fields_of(kind, liveness))?;
    Some((kind, f))
}

fn required<'v>(c: &mut Checker, f: &Fields<'v>, key: &str) -> Option<&'v Value> {
    let v = f.get(key);
    if v.is_none() {
        c.error(f.path(key), "missing");
    }
    v
}

/// An exec, tcp, http or grpc check with its `interval` and `timeout`.
fn check(c: &mut Checker, f: &Fields, kind: &str, default_interval: Duration) -> Option<Check> {
    let interval = f
        .get("interval")
        .and_then(|v| c.positive_duration(&f.path("interval"), v))
        .unwrap_or(default_interval);
    let timeout = f
        .get("timeout")
        .and_then(|v| c.positive_duration(&f.path("timeout"), v));
    let hosts = c.inputs.hosts;
    let kind = match kind {
        "exec" => {
            let v = required(c, f, "command")?;
            CheckKind::Exec {
                command: c.argv(&f.path("command"), v)?,
            }
        }
        "tcp" => CheckKind::Tcp {
            address: address(c, f, hosts)?,
        },
        "http" => {
            let v = required(c, f, "url")?;
            let url = c.c_string(&f.path("url"), v)?;
            match hosts::http_url(&url, hosts) {
                Ok(t) => CheckKind::Http {
                    address: t.address,
                    host: t.host,
                    path: t.path,
                },
                Err(why) => {
                    c.error(f.path("url"), why);
                    return None;
                }
            }
        }
        _ => {
            let service = f
                .get("service")
                .and_then(|v| c.c_string(&f.path("service"), v))
                .unwrap_or_default();
            CheckKind::Grpc {
                address: address(c, f, hosts)?,
                service,
            }
        }
    };
    let mut check = Check::new(kind, interval);
    if let Some(t) = timeout {
        check.timeout = t;
    }
    Some(check)
}

fn address(c: &mut Checker, f: &Fields, hosts: &str) -> Option<std::net::SocketAddr> {
    let v = required(c, f, "address")?;
    let text = c.string(&f.path("address"), v)?;
    hosts::address(&text, hosts)
        .map_err(|why| c.error(f.path("address"), why))
        .ok()
}
