//! Builds what `tend status` shows (SPEC §3) from the core's view of a service.

use crate::config::{ServiceType, Signal};
use crate::machine::{ExitStatus, Instant, Service, Supervisor};
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
    ServiceStatus {
        name: service.name().to_string(),
        state: service.state.name().as_str().to_string(),
        service_type: match service.spec.service_type {
            ServiceType::Longrun => "longrun".into(),
            ServiceType::Oneshot => "oneshot".into(),
        },
        enabled: service.spec.enabled,
        pid: service.state.pid().map(|p| p.0),
        uptime_secs: service
            .state
            .since()
            .map(|since| round_ms(now.saturating_since(since).as_secs_f64())),
        restarts: service.restarts,
        last_exit_code,
        last_signal,
        last_error: service.last_error.clone(),
        completed,
        next_start_in_secs: service
            .next_start_in(now)
            .map(|d| round_ms(d.as_secs_f64())),
        waiting_for: sup.waiting_for(service.id).map(str::to_string),
        status_text: None,
        since: None,
        ready: false,
        probe: None,
        cpu_secs: None,
        memory_bytes: None,
        cgroup: None,
    }
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}
