//! The sans-IO core: every decision tend makes, and nothing else.
//!
//! `Supervisor::handle(event, now)` takes a fact reported by the shell (a process
//! was spawned, exited, became ready; a command arrived) and returns the actions the
//! shell must carry out (spawn, signal, log a transition, exit). Deadlines live in
//! the states; `poll_deadline` says when the next one is due and `handle_deadlines`
//! fires them. The core reads no clock, touches no fd, spawns and signals nothing:
//! its tests drive it with a fake clock and no processes.
//!
//! # The state table (per service; SPEC §3)
//!
//! | state       | event                          | next state / actions |
//! |-------------|--------------------------------|----------------------|
//! | pending     | dependencies met, wanted       | starting (pid unknown) + `Spawn` |
//! | pending     | stop / shutdown                | stopped |
//! | starting    | `Spawned`, no readiness check  | running |
//! | starting    | `Spawned`, readiness check     | starting with `ready_by = now + timeout_start` |
//! | starting    | `SpawnFailed`                  | failed (`last_error: spawn failed: ...`) |
//! | starting    | `BecameReady`                  | running |
//! | starting    | `ready_by` passed              | stopping, then counted as a failure |
//! | starting/running | `Exited`                  | by policy: stopped (success, no restart), failed (failure, no restart; or budget spent), restarting (backoff) |
//! | running     | `LivenessFailed`               | stopping, then counted as a failure |
//! | starting/running | stop (no up dependents)   | stopping + `stop_signal`, `SIGCONT` to the group; `kill_at = now + timeout_stop` |
//! | stopping    | `kill_at` passed               | stopping + `SIGKILL` to the group |
//! | stopping    | `Exited`                       | per `AfterStop`: stopped, pending (start again), restart policy as a failure, or forgotten |
//! | restarting  | `start_at` passed              | pending → starting |
//! | restarting  | stop                           | stopped |
//! | stopped/failed | start / restart             | pending (retry budget cleared) |
//!
//! Dependency effects are propagated through a work queue (`dirty`) drained until
//! quiescent, never by recursion: a state change re-evaluates its dependents (they
//! may start) and its dependencies (they may stop).
//!
//! Read first: [`Supervisor::handle`], then `settle` and `evaluate`.

#![deny(clippy::wildcard_enum_match_arm)]

pub mod action;
pub mod event;
pub mod policy;
pub mod reload;
pub mod service;
pub mod time;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_support;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

pub use action::{Action, Transition};
pub use event::{Event, ExitStatus};
pub use service::{AfterStop, Service, State, StateName};
pub use time::Instant;

use crate::config::{Config, Signal};
use policy::Rng;
use time::human;

/// Index of a service in the supervisor; stable for the service's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub usize);

/// One spawn of a service. Never reused, so events of an old run are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub u64);

/// A process id (also the process group id of a service's main process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub i32);

/// Top-level settings the core needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    shutdown_timeout: Duration,
    exit_when_idle: bool,
}

/// A shutdown in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shutdown {
    /// The exit code once everything is down.
    code: i32,
    /// When everything left gets SIGKILL; None once that happened.
    kill_at: Option<Instant>,
}

/// The whole supervisor's decision state.
#[derive(Debug)]
pub struct Supervisor {
    services: Vec<Service>,
    by_name: HashMap<String, ServiceId>,
    next_run: u64,
    rng: Rng,
    deadlines: BinaryHeap<Reverse<(Instant, ServiceId)>>,
    settings: Settings,
    shutdown: Option<Shutdown>,
    /// Termination signals seen; the second one SIGKILLs what is left.
    termination_signals: u32,
    exit_code: Option<i32>,
    dirty: VecDeque<ServiceId>,
    actions: Vec<Action>,
    /// How many services may have a live process (Starting/Running/Stopping).
    up_count: usize,
}

impl Supervisor {
    /// A supervisor for `config`, with nothing started yet; `seed` feeds the jitter.
    pub fn new(config: &Config, seed: u64) -> Supervisor {
        let mut sup = Supervisor {
            services: Vec::new(),
            by_name: HashMap::new(),
            next_run: 1,
            rng: Rng::new(seed),
            deadlines: BinaryHeap::new(),
            settings: Settings {
                shutdown_timeout: config.shutdown_timeout,
                exit_when_idle: config.exit_when_idle,
            },
            shutdown: None,
            termination_signals: 0,
            exit_code: None,
            dirty: VecDeque::new(),
            actions: Vec::new(),
            up_count: 0,
        };
        for spec in &config.services {
            let id = ServiceId(sup.services.len());
            sup.by_name.insert(spec.name.clone(), id);
            sup.services.push(Service::new(id, spec.clone()));
        }
        sup.resolve_dependencies();
        sup
    }

    /// Start every enabled service whose dependencies are met.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        for i in 0..self.services.len() {
            self.dirty.push_back(ServiceId(i));
        }
        self.finish(now)
    }

    /// Feed one event; returns what the shell must do.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match event {
            Event::Spawned { service, run, pid } => self.on_spawned(service, run, pid, now),
            Event::SpawnFailed {
                service,
                run,
                error,
            } => self.on_spawn_failed(service, run, error, now),
            Event::Exited {
                service,
                run,
                status,
            } => self.on_exited(service, run, status, now),
            Event::BecameReady { service, run } => self.on_ready(service, run, now),
            Event::LivenessFailed { service, run, why } => {
                self.on_liveness_failed(service, run, why, now)
            }
            Event::StartRequested { service } => self.on_start_requested(service),
            Event::StopRequested { service } => self.on_stop_requested(service),
            Event::RestartRequested { service } => self.on_restart_requested(service, now),
            Event::ShutdownRequested => self.begin_shutdown(0, now),
            Event::TerminationSignaled => self.on_termination_signal(now),
        }
        self.finish(now)
    }

    /// Fire every deadline at or before `now`.
    pub fn handle_deadlines(&mut self, now: Instant) -> Vec<Action> {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.get(id).and_then(|s| s.state.deadline()) == Some(at) {
                self.on_deadline(id, now);
            }
        }
        if let Some(Shutdown {
            kill_at: Some(at), ..
        }) = self.shutdown
            && at <= now
        {
            self.kill_everything();
        }
        self.finish(now)
    }

    /// The earliest pending deadline; `None` means nothing is due, ever, until an
    /// event arrives (the shell then blocks without a timeout).
    pub fn poll_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if self.get(id).and_then(|s| s.state.deadline()) == Some(at) {
                break;
            }
            self.deadlines.pop(); // stale: the state moved on
        }
        let service = self.deadlines.peek().map(|Reverse((at, _))| *at);
        let shutdown = self.shutdown.and_then(|s| s.kill_at);
        match (service, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Look a service up by name (removed services are not found).
    pub fn find(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(name).copied()
    }

    pub fn get(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id.0)
    }

    /// Every service that is still defined, in config order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| !s.removed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Set once the core has ordered the exit.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// The first dependency a `pending` service is waiting for.
    pub fn waiting_for(&self, id: ServiceId) -> Option<&str> {
        let service = self.get(id)?;
        if service.state != State::Pending {
            return None;
        }
        service
            .deps
            .iter()
            .find(|(dep, condition)| !self.get(*dep).is_some_and(|d| d.meets(*condition)))
            .and_then(|(dep, _)| self.get(*dep))
            .map(|d| d.name())
    }

    // ----- events -----

    fn on_spawned(&mut self, id: ServiceId, run: RunId, pid: Pid, now: Instant) {
        let Some(service) = self.services.get(id.0) else {
            return;
        };
        let State::Starting {
            run: current,
            pid: None,
            since,
            origin,
            ..
        } = service.state
        else {
            return;
        };
        if current != run {
            return;
        }
        // A oneshot stays `starting` while it runs: finishing is its readiness.
        let next = if service.is_oneshot() {
            State::Starting {
                run,
                pid: Some(pid),
                since,
                ready_by: None,
                origin,
            }
        } else if service.spec.readiness.is_some() {
            State::Starting {
                run,
                pid: Some(pid),
                since,
                ready_by: Some(now.saturating_add(service.spec.timeout_start)),
                origin,
            }
        } else {
            State::Running { run, pid, since }
        };
        self.set_state_from(id, origin, next, Some(pid), String::new());
    }

    fn on_spawn_failed(&mut self, id: ServiceId, run: RunId, error: String, now: Instant) {
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        if service.state.run() != Some(run) || service.state.pid().is_some() {
            return;
        }
        let why = format!("spawn failed: {error}");
        service.last_error = Some(why.clone());
        self.fail(id, why, now);
    }

    fn on_exited(&mut self, id: ServiceId, run: RunId, status: ExitStatus, now: Instant) {
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        if service.state.run() != Some(run) || service.state.pid().is_none() {
            return; // an old run, or never spawned: nothing to do
        }
        service.last_exit = Some(status);
        let ran_for = service
            .state
            .since()
            .map(|s| now.saturating_since(s))
            .unwrap_or_default();
        let how = format!("{} after {}", describe_exit(status), human(ran_for));
        match service.state {
            State::Stopping { then, .. } => self.after_stop(id, then, status, how, now),
            State::Starting { .. } | State::Running { .. } => {
                self.after_exit(id, status, false, how, now)
            }
            State::Pending | State::Stopped { .. } | State::Restarting { .. } | State::Failed => {}
        }
    }

    fn on_ready(&mut self, id: ServiceId, run: RunId, now: Instant) {
        let Some(service) = self.services.get(id.0) else {
            return;
        };
        if let State::Starting {
            run: current,
            pid: Some(pid),
            since,
            ..
        } = service.state
            && current == run
            && !service.is_oneshot()
        {
            let why = format!("ready after {}", human(now.saturating_since(since)));
            self.set_state(id, State::Running { run, pid, since }, why);
        }
    }

    fn on_liveness_failed(&mut self, id: ServiceId, run: RunId, why: String, now: Instant) {
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        if matches!(service.state, State::Running { run: r, .. } if r == run) {
            service.last_error = Some(why.clone());
            self.begin_stop(id, AfterStop::Fail, why, now);
        }
    }

    fn on_start_requested(&mut self, id: ServiceId) {
        if self.shutdown.is_some() {
            return;
        }
        self.want_up(id, true);
    }

    fn on_stop_requested(&mut self, id: ServiceId) {
        // It and everything that depends on it, transitively: dependents stop first.
        let mut stack = vec![id];
        let mut seen = vec![false; self.services.len()];
        while let Some(next) = stack.pop() {
            let Some(service) = self.services.get_mut(next.0) else {
                continue;
            };
            if std::mem::replace(&mut seen[next.0], true) {
                continue;
            }
            service.wanted = false;
            stack.extend(service.dependents.iter().copied());
            self.dirty.push_back(next);
        }
    }

    fn on_restart_requested(&mut self, id: ServiceId, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        match service.state {
            State::Starting { pid: Some(_), .. } | State::Running { .. } => {
                service.wanted = true;
                service.budget.clear();
                self.begin_stop(id, AfterStop::Start, "restart requested".into(), now);
            }
            State::Stopping { .. } => {
                service.wanted = true;
                if let State::Stopping { then, .. } = &mut service.state {
                    *then = AfterStop::Start;
                }
            }
            State::Starting { pid: None, .. }
            | State::Pending
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => self.want_up(id, true),
        }
    }

    fn on_termination_signal(&mut self, now: Instant) {
        self.termination_signals += 1;
        if self.termination_signals >= 2 && self.shutdown.is_some() {
            self.kill_everything();
        } else {
            self.begin_shutdown(0, now);
        }
    }

    fn on_deadline(&mut self, id: ServiceId, now: Instant) {
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        match service.state {
            State::Starting { .. } => {
                let why = format!(
                    "not ready within timeout_start ({})",
                    human(service.spec.timeout_start)
                );
                service.last_error = Some(why.clone());
                self.begin_stop(id, AfterStop::Fail, why, now);
            }
            State::Stopping { run, pid, .. } => {
                if let State::Stopping { kill_at, .. } = &mut service.state {
                    *kill_at = None;
                }
                self.actions.push(Action::Signal {
                    service: id,
                    run,
                    pgid: pid,
                    signal: Signal::KILL,
                });
            }
            State::Restarting { .. } => {
                if service.wanted {
                    self.set_state(id, State::Pending, "backoff over".into());
                } else {
                    let stopped = State::Stopped { completed: false };
                    self.set_state(id, stopped, "not wanted".into());
                }
            }
            State::Pending | State::Running { .. } | State::Stopped { .. } | State::Failed => {}
        }
    }

    // ----- decisions -----

    /// Mark `id` (and, transitively, what it depends on) as wanted up.
    /// `explicit`: named by the user, so a stopped or completed one runs again.
    fn want_up(&mut self, id: ServiceId, explicit: bool) {
        let mut stack = vec![(id, explicit)];
        let mut seen = vec![false; self.services.len()];
        while let Some((next, named)) = stack.pop() {
            let Some(service) = self.services.get_mut(next.0) else {
                continue;
            };
            if std::mem::replace(&mut seen[next.0], true) || service.removed {
                continue;
            }
            service.wanted = true;
            stack.extend(service.deps.iter().map(|(d, _)| (*d, false)));
            let rerun = match service.state {
                State::Failed | State::Restarting { .. } => true,
                State::Stopped { completed } => named || !completed,
                State::Pending
                | State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. } => false,
            };
            if rerun {
                service.budget.clear();
                let why = if named { "start requested" } else { "needed" };
                self.set_state(next, State::Pending, why.into());
            }
            self.dirty.push_back(next);
        }
    }

    /// The exit of a run that was not being stopped: apply the restart policy.
    /// `forced_failure`: count it as a failure whatever the exit code.
    fn after_exit(
        &mut self,
        id: ServiceId,
        status: ExitStatus,
        forced_failure: bool,
        how: String,
        now: Instant,
    ) {
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        let success = !forced_failure && policy::is_success(&service.spec, status);
        let oneshot = service.is_oneshot();
        if !service.wanted || self.shutdown.is_some() {
            let stopped = State::Stopped {
                completed: oneshot && success,
            };
            return self.set_state(id, stopped, how);
        }
        if !policy::wants_restart(&service.spec, success) {
            if success {
                let stopped = State::Stopped { completed: oneshot };
                return self.set_state(id, stopped, how);
            }
            service.last_error = Some(how.clone());
            return self.fail(id, how, now);
        }
        let window = service.spec.retry_window;
        let used = service.budget.in_window(window, now);
        let max = service.spec.max_retries as usize;
        if used >= max {
            let why = format!(
                "{how}; giving up after {used} restarts in {}",
                human(window)
            );
            service.last_error = Some(why.clone());
            return self.fail(id, why, now);
        }
        let delay = policy::backoff(&service.spec, used, &mut self.rng);
        service.budget.record(now);
        service.restarts += 1;
        let why = format!(
            "{how}; restarting in {} (restart {} of {max} in {})",
            human(delay),
            used + 1,
            human(window)
        );
        let start_at = now.saturating_add(delay);
        self.set_state(id, State::Restarting { start_at }, why);
    }

    /// A stopping service's process is gone: do what the stop was for.
    fn after_stop(
        &mut self,
        id: ServiceId,
        then: AfterStop,
        status: ExitStatus,
        how: String,
        now: Instant,
    ) {
        if let Some(service) = self.services.get_mut(id.0)
            && let Some(spec) = service.replacement.take()
        {
            service.spec = spec;
        }
        match then {
            AfterStop::Stop => self.set_state(id, State::Stopped { completed: false }, how),
            AfterStop::Fail => {
                // Keep the cause (readiness timeout, liveness) in front of the exit.
                let cause = self.get(id).and_then(|s| s.last_error.clone());
                let how = match cause {
                    Some(cause) => format!("{cause}; {how}"),
                    None => how,
                };
                self.after_exit(id, status, true, how, now)
            }
            AfterStop::Forget => {
                self.set_state(id, State::Stopped { completed: false }, how);
                self.actions.push(Action::Forget { service: id });
            }
            AfterStop::Start => {
                if let Some(service) = self.services.get_mut(id.0) {
                    service.restarts += 1;
                }
                self.set_state(id, State::Pending, how);
            }
        }
    }

    /// Enter `failed`; a critical service takes everything down with it.
    fn fail(&mut self, id: ServiceId, why: String, now: Instant) {
        self.set_state(id, State::Failed, why);
        let Some(service) = self.get(id) else { return };
        if service.spec.critical && self.shutdown.is_none() {
            let code = failure_code(service.last_exit);
            self.begin_shutdown(code, now);
        }
    }

    /// Order the stop of a process that is up: `stop_signal` and SIGCONT to its group.
    fn begin_stop(&mut self, id: ServiceId, then: AfterStop, why: String, now: Instant) {
        let Some(service) = self.services.get(id.0) else {
            return;
        };
        let (run, pid, since) = match service.state {
            State::Starting {
                run,
                pid: Some(pid),
                since,
                ..
            }
            | State::Running { run, pid, since } => (run, pid, since),
            State::Starting { pid: None, .. }
            | State::Pending
            | State::Stopping { .. }
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => return,
        };
        let signal = service.spec.stop_signal;
        let kill_at = Some(now.saturating_add(service.spec.timeout_stop));
        for signal in [signal, Signal::CONT] {
            self.actions.push(Action::Signal {
                service: id,
                run,
                pgid: pid,
                signal,
            });
        }
        let next = State::Stopping {
            run,
            pid,
            since,
            kill_at,
            then,
        };
        self.set_state(id, next, why);
    }

    fn begin_shutdown(&mut self, code: i32, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(Shutdown {
            code,
            kill_at: Some(now.saturating_add(self.settings.shutdown_timeout)),
        });
        for service in &mut self.services {
            service.wanted = false;
            self.dirty.push_back(service.id);
        }
    }

    /// SIGKILL every group that may still be alive (second signal, shutdown_timeout).
    fn kill_everything(&mut self) {
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.kill_at = None;
        }
        for service in &mut self.services {
            let (run, pid) = match &mut service.state {
                State::Stopping {
                    run, pid, kill_at, ..
                } => {
                    *kill_at = None;
                    (*run, *pid)
                }
                State::Starting {
                    run,
                    pid: Some(pid),
                    ..
                }
                | State::Running { run, pid, .. } => (*run, *pid),
                State::Starting { pid: None, .. }
                | State::Pending
                | State::Stopped { .. }
                | State::Restarting { .. }
                | State::Failed => continue,
            };
            self.actions.push(Action::Signal {
                service: service.id,
                run,
                pgid: pid,
                signal: Signal::KILL,
            });
        }
    }

    // ----- propagation -----

    /// Drain the work queue, then check whether tend is done; return the actions.
    fn finish(&mut self, now: Instant) -> Vec<Action> {
        self.settle(now);
        self.check_exit();
        std::mem::take(&mut self.actions)
    }

    fn settle(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop_front() {
            self.evaluate(id, now);
        }
    }

    /// Re-decide one service after something it depends on (or that depends on
    /// it) changed: start it, stop it, or leave it.
    fn evaluate(&mut self, id: ServiceId, now: Instant) {
        let Some(service) = self.services.get(id.0) else {
            return;
        };
        if service.wanted {
            if service.state == State::Pending && self.dependencies_met(id) {
                self.begin_start(id, now);
            }
            return;
        }
        match service.state {
            State::Pending | State::Restarting { .. } => {
                let why = if self.shutdown.is_some() {
                    "shutting down"
                } else {
                    "stop requested"
                };
                self.set_state(id, State::Stopped { completed: false }, why.into());
            }
            State::Starting { pid: Some(_), .. } | State::Running { .. } => {
                if !self.has_up_dependents(id) {
                    let then = if service.removed {
                        AfterStop::Forget
                    } else {
                        AfterStop::Stop
                    };
                    let why = if service.removed {
                        "removed from the config"
                    } else if self.shutdown.is_some() {
                        "shutting down"
                    } else {
                        "stop requested"
                    };
                    self.begin_stop(id, then, why.into(), now);
                }
            }
            State::Stopping { then, .. } => {
                if service.removed
                    && then != AfterStop::Forget
                    && let Some(State::Stopping { then, .. }) =
                        self.services.get_mut(id.0).map(|s| &mut s.state)
                {
                    *then = AfterStop::Forget;
                }
            }
            State::Stopped { .. } | State::Failed => {
                if service.removed {
                    self.actions.push(Action::Forget { service: id });
                }
            }
            State::Starting { pid: None, .. } => {}
        }
    }

    fn dependencies_met(&self, id: ServiceId) -> bool {
        self.get(id).is_some_and(|s| {
            s.deps
                .iter()
                .all(|(dep, cond)| self.get(*dep).is_some_and(|d| d.meets(*cond)))
        })
    }

    fn has_up_dependents(&self, id: ServiceId) -> bool {
        self.get(id).is_some_and(|s| {
            s.dependents
                .iter()
                .any(|d| self.get(*d).is_some_and(|d| d.state.is_up()))
        })
    }

    fn begin_start(&mut self, id: ServiceId, now: Instant) {
        let run = RunId(self.next_run);
        self.next_run += 1;
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        let origin = service.state.name();
        service.state = State::Starting {
            run,
            pid: None,
            since: now,
            ready_by: None,
            origin,
        };
        self.up_count += 1;
        self.actions.push(Action::Spawn { service: id, run });
    }

    fn set_state(&mut self, id: ServiceId, next: State, why: String) {
        let from = self.get(id).map(|s| s.state.name());
        if let Some(from) = from {
            let pid = next.pid();
            self.set_state_from(id, from, next, pid, why);
        }
    }

    /// Enter `next`, log the change, arm its deadline, and queue the neighbours
    /// whose decisions may depend on it.
    fn set_state_from(
        &mut self,
        id: ServiceId,
        from: StateName,
        next: State,
        pid: Option<Pid>,
        why: String,
    ) {
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        let was_up = service.state.is_up();
        if was_up != next.is_up() {
            if was_up {
                self.up_count = self.up_count.saturating_sub(1);
            } else {
                self.up_count += 1;
            }
        }
        if let Some(at) = next.deadline() {
            self.deadlines.push(Reverse((at, id)));
        }
        let to = next.name();
        service.state = next;
        if from != to {
            self.actions.push(Action::Transitioned(Transition {
                service: id,
                name: service.spec.name.clone(),
                from,
                to,
                pid,
                why,
            }));
        }
        self.dirty.push_back(id);
        self.dirty.extend(service.dependents.iter().copied());
        self.dirty.extend(service.deps.iter().map(|(d, _)| *d));
    }

    /// Order the exit once a shutdown is complete, or once idle with `exit_when_idle`.
    fn check_exit(&mut self) {
        if self.exit_code.is_some() {
            return;
        }
        let code = match self.shutdown {
            Some(shutdown) if self.up_count == 0 => shutdown.code,
            Some(_) => return,
            None if self.settings.exit_when_idle && self.is_idle() => self.idle_exit_code(),
            None => return,
        };
        self.exit_code = Some(code);
        self.actions.push(Action::Exit { code });
    }

    /// Nothing running, starting, restarting, or pending with a chance to start.
    fn is_idle(&self) -> bool {
        self.up_count == 0
            && self.services().all(|s| match s.state {
                State::Restarting { .. } => false,
                State::Pending => s.wanted && self.is_blocked(s.id),
                State::Starting { .. } | State::Running { .. } | State::Stopping { .. } => false,
                State::Stopped { .. } | State::Failed => true,
            })
    }

    /// A pending service that can never start: some dependency, transitively,
    /// is failed or stopped and not wanted.
    fn is_blocked(&self, id: ServiceId) -> bool {
        let mut stack = vec![id];
        let mut seen = vec![false; self.services.len()];
        while let Some(next) = stack.pop() {
            let Some(service) = self.get(next) else {
                continue;
            };
            if std::mem::replace(&mut seen[next.0], true) {
                continue;
            }
            for (dep, cond) in &service.deps {
                let Some(d) = self.get(*dep) else { continue };
                if d.meets(*cond) {
                    continue;
                }
                match d.state {
                    State::Failed => return true,
                    State::Stopped { .. } if !d.wanted => return true,
                    State::Stopped { .. } => return true, // completed the wrong way
                    State::Pending => stack.push(*dep),
                    State::Starting { .. }
                    | State::Running { .. }
                    | State::Stopping { .. }
                    | State::Restarting { .. } => {}
                }
            }
        }
        false
    }

    fn idle_exit_code(&self) -> i32 {
        self.services()
            .find(|s| s.state == State::Failed)
            .map(|s| failure_code(s.last_exit))
            .unwrap_or(0)
    }

    /// Resolve dependency names to ids and fill in the reverse edges.
    fn resolve_dependencies(&mut self) {
        for service in &mut self.services {
            service.deps.clear();
            service.dependents.clear();
        }
        for i in 0..self.services.len() {
            if self.services[i].removed {
                continue;
            }
            let deps: Vec<(ServiceId, crate::config::Condition)> = self.services[i]
                .spec
                .dependencies
                .iter()
                .filter_map(|d| self.by_name.get(&d.service).map(|id| (*id, d.condition)))
                .collect();
            for (dep, _) in &deps {
                self.services[dep.0].dependents.push(ServiceId(i));
            }
            self.services[i].deps = deps;
        }
    }
}

/// A shutdown with no exit code to pass on still needs a non-zero one.
fn failure_code(exit: Option<ExitStatus>) -> i32 {
    match exit {
        Some(ExitStatus::Code(0)) | None => 1,
        Some(ExitStatus::Code(code)) => code,
        Some(ExitStatus::Signal(n)) => 128 + n,
    }
}

/// `exited with code 3`, `killed by SIGKILL`.
pub fn describe_exit(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("exited with code {code}"),
        ExitStatus::Signal(n) => format!("killed by {}", Signal(n)),
    }
}
