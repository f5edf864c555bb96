//! Builds what `tend status` shows (SPEC §3) from the core's view of a service,
//! and which services' resource use (`cpu_secs`, `memory_bytes`) a sweep
//! measures and shows ([`sample_targets`], [`usage_of`]).

use std::collections::HashMap;
use std::path::Path;

use crate::config::{ServiceType, Signal};
use crate::machine::{ExitStatus, Instant, Service, ServiceId, Supervisor};

use super::cgroup::Cgroups;
use super::sampler::{Sampler, Target};
use super::usage::Usage;

use super::actions::last_error;
use crate::protocol::{ProbeStatus, ServiceStatus, rfc3339_ms};

/// The status of one service at `now`. `wall_start_ms`: the Unix time (ms) at
/// which the core's clock read zero, to show its instants as wall-clock times.
/// `usage`: its resource use, from [`usage_of`], when it has a process, and
/// when it was measured.
/// `cgroups`: the service cgroups, when tend has them (SPEC §10).
pub fn service_status(
    sup: &Supervisor,
    service: &Service,
    now: Instant,
    wall_start_ms: u64,
    usage: Option<(Usage, Instant)>,
    cgroups: Option<&Cgroups>,
) -> ServiceStatus {
    let wall = |at: Instant| rfc3339_ms(wall_start_ms + at.since_start().as_millis() as u64);
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
        since: Some(wall(service.changed_at)),
        ready: service.is_ready(),
        probe: service.last_probe.as_ref().map(|p| ProbeStatus {
            ok: p.ok,
            at: wall(p.at),
            message: Some(p.message.clone()),
            failures_in_row: p.failures_in_row,
        }),
        cpu_secs: usage.map(|(u, _)| round_ms(u.cpu_secs)),
        memory_bytes: usage.map(|(u, _)| u.memory_bytes),
        usage_at: usage.map(|(_, at)| wall(at)),
        cgroup: cgroups
            .and_then(|c| c.dir_of(service.name()))
            .map(|dir| dir.display().to_string()),
    }
}

/// What a sweep measures (`sampler.rs`): every service that has a process,
/// as its process group, or its cgroup when it has one.
pub fn sample_targets(sup: &Supervisor, cgroups: Option<&Cgroups>) -> Vec<Target> {
    sup.services()
        .filter_map(|s| {
            let process = s.state.process()?;
            Some(Target {
                service: s.id,
                pgid: process.pgid.0,
                cgroup: cgroups
                    .and_then(|c| c.dir_of(s.name()))
                    .map(Path::to_path_buf),
            })
        })
        .collect()
}

/// The last measured use of those of `ids` whose process is the one measured.
pub fn usage_of(
    sup: &Supervisor,
    ids: &[ServiceId],
    sampler: &Sampler,
) -> HashMap<ServiceId, Usage> {
    ids.iter()
        .filter_map(|id| sup.get(*id))
        .filter_map(|s| {
            let pgid = s.state.process()?.pgid.0;
            Some((s.id, sampler.get(s.id, pgid)?))
        })
        .collect()
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}
