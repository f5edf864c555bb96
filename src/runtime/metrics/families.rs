//! The metric families of a scrape, built from the core's view of the
//! services, the shell's counters and the resource use read for this scrape.
//!
//! Every family gets `# HELP` and `# TYPE`, even with no sample (Prometheus
//! reads that fine, and a dashboard sees that the family exists). The list
//! and its order are what README documents; change both together.
//!
//! Must not: read anything itself (files, clock): the caller passes it all,
//! so a test can render a fake supervisor to golden text.

use std::collections::HashMap;

use super::Counters;
use crate::codec::prometheus::{Exposition, MetricType};
use crate::config::Signal;
use crate::machine::behaviour::Readiness;
use crate::machine::{ExitStatus, Service, ServiceId, StateName, Supervisor};
use crate::runtime::usage::{OwnUsage, Usage};

/// Everything a scrape shows.
pub struct View<'a> {
    pub sup: &'a Supervisor,
    /// Unix time (seconds) of the core's `Instant::ZERO`, to turn its
    /// monotonic `changed_at` into wall-clock time.
    pub unix_at_start: f64,
    pub counters: &'a dyn Fn(ServiceId) -> Counters,
    /// Resource use of the services that are up and could be measured.
    pub usage: &'a HashMap<ServiceId, Usage>,
    pub own: OwnUsage,
    /// When tend started (Unix seconds), if known.
    pub start_time: Option<f64>,
}

const GAUGE: MetricType = MetricType::Gauge;
const COUNTER: MetricType = MetricType::Counter;

/// The whole exposition.
pub fn render(view: &View<'_>) -> String {
    let mut e = Exposition::new();
    let services: Vec<&Service> = view.sup.services().collect();
    let per_service = |e: &mut Exposition, value: &dyn Fn(&Service) -> Option<f64>| {
        for s in &services {
            if let Some(v) = value(s) {
                e.sample(&[("service", s.name())], v);
            }
        }
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };

    e.family(
        "tend_service_up",
        "1 while the service has a live process (starting, running or stopping).",
        GAUGE,
    );
    per_service(&mut e, &|s| Some(flag(s.state.process().is_some())));

    e.family(
        "tend_service_ready",
        "1 once the service's current run has reached readiness.",
        GAUGE,
    );
    per_service(&mut e, &|s| Some(flag(s.is_ready())));

    e.family(
        "tend_service_state",
        "1 for the state the service is in, 0 for the others.",
        GAUGE,
    );
    for s in &services {
        let current = s.state.name();
        for state in StateName::ALL {
            let labels = [("service", s.name()), ("state", state.as_str())];
            e.sample(&labels, flag(state == current));
        }
    }

    e.family(
        "tend_service_restarts_total",
        "Restarts of the service since tend started.",
        COUNTER,
    );
    per_service(&mut e, &|s| Some(s.restarts as f64));

    e.family(
        "tend_service_last_exit_code",
        "Exit code of the service's last exit (absent if it never exited or was killed by a signal).",
        GAUGE,
    );
    per_service(&mut e, &|s| match s.last_exit {
        Some(ExitStatus::Code(code)) => Some(f64::from(code)),
        Some(ExitStatus::Signal(_)) | None => None,
    });

    e.family(
        "tend_service_last_exit_signal",
        "Number of the signal that killed the service's last process (absent otherwise).",
        GAUGE,
    );
    for s in &services {
        if let Some(ExitStatus::Signal(n)) = s.last_exit {
            let name = Signal(n).to_string();
            e.sample(&[("service", s.name()), ("signal", &name)], f64::from(n));
        }
    }

    e.family(
        "tend_service_state_since_seconds",
        "When the service entered its current state, in seconds since the Unix epoch.",
        GAUGE,
    );
    per_service(&mut e, &|s| {
        Some(round_ms(
            view.unix_at_start + s.changed_at.since_start().as_secs_f64(),
        ))
    });

    e.family(
        "tend_probe_failures_total",
        "Failed readiness and liveness probe attempts since tend started.",
        COUNTER,
    );
    for s in &services {
        let counts = (view.counters)(s.id).probe_failures;
        let has = [
            matches!(s.behaviour.readiness, Readiness::Checked { .. }),
            s.behaviour.liveness.is_some(),
        ];
        for (i, role) in ["readiness", "liveness"].into_iter().enumerate() {
            if has[i] || counts[i] > 0 {
                let labels = [("service", s.name()), ("role", role)];
                e.sample(&labels, counts[i] as f64);
            }
        }
    }

    e.family(
        "tend_log_lines_total",
        "Output lines the service wrote, by stream.",
        COUNTER,
    );
    for s in &services {
        let counts = (view.counters)(s.id).log_lines;
        for (i, stream) in ["stdout", "stderr"].into_iter().enumerate() {
            let labels = [("service", s.name()), ("stream", stream)];
            e.sample(&labels, counts[i] as f64);
        }
    }

    e.family(
        "tend_service_cpu_seconds_total",
        "User and system CPU time of the service's process group (or cgroup); absent when not up.",
        COUNTER,
    );
    per_service(&mut e, &|s| view.usage.get(&s.id).map(|u| u.cpu_secs));

    e.family(
        "tend_service_memory_bytes",
        "Resident memory of the service's process group (or cgroup); absent when not up.",
        GAUGE,
    );
    per_service(&mut e, &|s| {
        view.usage.get(&s.id).map(|u| u.memory_bytes as f64)
    });

    let own = &view.own;
    let single = |e: &mut Exposition, name, help, kind, value: Option<f64>| {
        e.family(name, help, kind);
        if let Some(v) = value {
            e.sample(&[], v);
        }
    };
    single(
        &mut e,
        "process_cpu_seconds_total",
        "Total user and system CPU time spent by tend in seconds.",
        COUNTER,
        own.cpu_secs,
    );
    single(
        &mut e,
        "process_resident_memory_bytes",
        "Resident memory size of tend in bytes.",
        GAUGE,
        own.resident_bytes.map(|b| b as f64),
    );
    single(
        &mut e,
        "process_open_fds",
        "Number of open file descriptors of tend.",
        GAUGE,
        own.open_fds.map(|n| n as f64),
    );
    single(
        &mut e,
        "process_max_fds",
        "Maximum number of open file descriptors of tend.",
        GAUGE,
        own.max_fds.map(|n| n as f64),
    );
    single(
        &mut e,
        "process_start_time_seconds",
        "Start time of tend since the Unix epoch in seconds.",
        GAUGE,
        view.start_time.map(round_ms),
    );
    e.family("tend_build_info", "tend's version; always 1.", GAUGE);
    e.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    e.into_string()
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}
