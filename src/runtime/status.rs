//! Builds what `tend status` shows (SPEC §3) from the core's view of a service,
//! and the resource use of services (`cpu_secs`, `memory_bytes`), read once per
//! request for all the services it names ([`usage_of`]).

use std::collections::HashMap;

use crate::config::{ServiceType, Signal};
use crate::machine::{ExitStatus, Instant, Service, ServiceId, Supervisor};

use super::usage::{self, Target, Usage};

use super::actions::last_error;
use crate::protocol::ServiceStatus;

/// The status of one service at `now`.
pub fn service_status(sup: &Supervisor, service: &Service, now: Instant) -> ServiceStatus {
    let (last_exit_code, last_signal) = match service.last_exit {
        Some(ExitStatus::Code(code)) => (Some(code), None),
        Some(ExitStatus::Signal(n)) => (None, Some(Signal(n).to_string())),
        None => (None, None),
    };
    let completed = matches!(
        service.state,
        crate::machine::State::Stopped { completed: true }
    );
    let b = &service.behaviour;
    ServiceStatus {
        name: service.name().to_string(),
        state: service.state.name().as_str().to_string(),
        service_type: match b.service_type {
            ServiceType::Longrun => "longrun".into(),
            ServiceType::Oneshot => "oneshot".into(),
        },
        enabled: b.enabled,
        pid: service.state.pid().map(|p| p.0),
        uptime_secs: service
            .state
            .since()
            .map(|since| round_ms(now.saturating_since(since).as_secs_f64())),
        restarts: service.restarts,
        last_exit_code,
        last_signal,
        last_error: last_error(service),
        completed,
        next_start_in_secs: service
            .next_start_in(now)
            .map(|d| round_ms(d.as_secs_f64())),
        waiting_for: sup.waiting_for(service.id).map(str::to_string),
        status_text: service.status_text.clone(),
        // LEAD: once `ServiceStatus` has SPEC §3's `cpu_secs` and `memory_bytes`,
        // compute `let usage = usage_of(&self.sup, ids);` once in
        // `requests.rs` `statuses` (one /proc scan for the whole request), pass
        // `usage.get(&service.id)` in here and fill them (null when not up):
        //     cpu_secs: usage.map(|u| round_ms(u.cpu_secs)),
        //     memory_bytes: usage.map(|u| u.memory_bytes),
    }
}

/// The CPU time and memory of those of `ids` that have a live process, read
/// with one pass over `/proc` for all of them (`usage.rs`). Services that are
/// not up, or whose process group could not be read, are absent.
pub fn usage_of(sup: &Supervisor, ids: &[ServiceId]) -> HashMap<ServiceId, Usage> {
    let up: Vec<(ServiceId, i32)> = ids
        .iter()
        .filter_map(|id| sup.get(*id))
        .filter_map(|s| s.state.process().map(|p| (s.id, p.pgid.0)))
        .collect();
    if up.is_empty() {
        return HashMap::new();
    }
    let targets: Vec<Target<'_>> = up
        .iter()
        .map(|&(_, pgid)| Target {
            pgid,
            // LEAD: the service's cgroup folder (SPEC §10) once services get one;
            // its `cpu.stat` and `memory.current` are then read instead.
            cgroup: None,
        })
        .collect();
    let measured = usage::measure(&targets);
    up.iter()
        .zip(measured)
        .filter_map(|(&(id, _), usage)| usage.map(|u| (id, u)))
        .collect()
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}
