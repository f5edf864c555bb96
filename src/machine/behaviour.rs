//! What the core needs to know about a service to decide: its [`Behaviour`].
//!
//! The full definition (`config::ServiceSpec`: command, environment, user,
//! limits, output, probe addresses...) stays with the shell, which spawns and
//! probes. The core sees only what its decisions depend on, so a field that
//! only changes how a process is started cannot sneak into a decision. Which
//! definition a service runs is told by a `revision` number the shell assigns:
//! equal revisions mean identical definitions (see `reload`).

use std::time::Duration;

use crate::config::{self, Condition, Dependency, RestartPolicy, ServiceSpec, ServiceType, Signal};

/// The decision-relevant part of a service definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    pub service_type: ServiceType,
    pub enabled: bool,
    pub restart_policy: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
    pub max_retries: u32,
    pub retry_window: Duration,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub dependencies: Vec<Dependency>,
    pub readiness: Readiness,
    pub liveness: Option<Liveness>,
    /// `WATCHDOG=1` must come at least this often while `running` (notify only).
    pub watchdog: Option<Duration>,
    pub timeout_start: Duration,
    /// Without readiness: how long it must stay up to count as started.
    pub min_uptime: Duration,
    pub stop_signal: Signal,
    pub timeout_stop: Duration,
    pub critical: bool,
    /// It runs in a cgroup of its own: it is down only once that is empty
    /// (set by the shell, which knows whether cgroups could be set up).
    pub contained: bool,
}

/// How readiness is learnt, as far as the core is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// No check: ready once spawned (after `min_uptime`).
    None,
    /// sd_notify: a `READY=1` from the service (`Event::Notified`).
    Notify,
    /// The shell reports readiness when it sees it (a newline on the readiness
    /// fd, an output line with the pattern: `Event::Ready`).
    Reported,
    /// The core schedules check attempts (exec, tcp, http, grpc) and reads
    /// their results.
    Checked { interval: Duration },
}

/// A liveness check: attempts every `interval` while running; `failures` in a
/// row restart the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub interval: Duration,
    pub failures: u32,
}

impl Behaviour {
    /// The behaviour of `spec`.
    pub fn of(spec: &ServiceSpec) -> Behaviour {
        let oneshot = spec.service_type == ServiceType::Oneshot;
        let readiness = match spec.readiness.as_deref() {
            // A oneshot's readiness is its successful exit.
            _ if oneshot => Readiness::None,
            None => Readiness::None,
            Some(config::Readiness::Notify { .. }) => Readiness::Notify,
            Some(config::Readiness::Fd { .. } | config::Readiness::Log { .. }) => {
                Readiness::Reported
            }
            Some(config::Readiness::Check(check)) => Readiness::Checked {
                interval: check.interval,
            },
        };
        let liveness = spec.liveness.as_ref().map(|l| Liveness {
            interval: l.check.interval,
            failures: l.failures.max(1),
        });
        let watchdog = match spec.readiness.as_deref() {
            Some(config::Readiness::Notify { watchdog }) if !oneshot => *watchdog,
            _ => None,
        };
        Behaviour {
            service_type: spec.service_type,
            enabled: spec.enabled,
            restart_policy: spec.restart_policy,
            success_exit_codes: spec.success_exit_codes.clone(),
            max_retries: spec.max_retries,
            retry_window: spec.retry_window,
            retry_delay: spec.retry_delay,
            max_retry_delay: spec.max_retry_delay,
            dependencies: spec.dependencies.clone(),
            readiness,
            liveness: if oneshot { None } else { liveness },
            watchdog,
            timeout_start: spec.timeout_start,
            min_uptime: spec.min_uptime,
            stop_signal: spec.stop_signal,
            timeout_stop: spec.timeout_stop,
            critical: spec.critical,
            contained: false,
        }
    }

    pub fn is_oneshot(&self) -> bool {
        self.service_type == ServiceType::Oneshot
    }

    /// The condition a bare dependency name stands for.
    pub fn conditions(&self) -> impl Iterator<Item = (&str, Condition)> {
        self.dependencies
            .iter()
            .map(|d| (d.service.as_str(), d.condition))
    }
}
