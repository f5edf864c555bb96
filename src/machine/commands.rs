//! Commands from clients (start, stop, restart, signal, reload, shutdown) and
//! the end of a run of tend: shutdown, the kill after `shutdown_timeout`, the
//! exit once everything is down or idle.
//!
//! A command sets goals and queues the services it touched; the transition
//! table (`transition.rs`) moves their states. Answers are typed
//! (`Action::Answer`); waiting commands are held in `waiters.rs`.

use std::collections::HashSet;

use super::action::{Action, Answer, Note, Upward};
use super::event::Command;
use super::service::{State, StateName};
use super::transition::Input;
use super::waiters::Verb;
use super::{Instant, RequestId, ServiceId, Shutdown, Supervisor, Timer, policy};

impl Supervisor {
    // ----- commands -----

    pub(super) fn command(&mut self, request: Option<RequestId>, command: Command, now: Instant) {
        let answer = match command {
            Command::Start { .. } | Command::Restart { .. } if self.shutdown.is_some() => {
                Some(Answer::ShuttingDown)
            }
            Command::Start { services, wait } => {
                for &id in &services {
                    self.step(id, Input::Start { named: true }, now);
                }
                self.start_dependencies(&services, now);
                self.wait_or_done(request, Verb::Start, &services, wait)
            }
            Command::Restart { services, wait } => {
                if wait && let Some(request) = request {
                    // Note the runs before anything restarts.
                    self.wait_for(request, Verb::Restart, &services);
                }
                for &id in &services {
                    self.step(id, Input::Restart, now);
                }
                self.start_dependencies(&services, now);
                (!wait).then_some(Answer::Done)
            }
            Command::Stop { services, wait } => {
                for id in self.with_dependents(&services) {
                    self.step(id, Input::Stop, now);
                    self.queue(id);
                }
                self.wait_or_done(request, Verb::Stop, &services, wait)
            }
            Command::Signal { service, signal } => {
                let target = self
                    .get(service)
                    .and_then(|s| Some((s.state.run()?, s.state.process()?)));
                match target {
                    Some((run, process)) => {
                        self.actions.push(Action::Signal {
                            service,
                            run,
                            process,
                            signal,
                        });
                        Some(Answer::Done)
                    }
                    None => Some(Answer::NoProcess { service }),
                }
            }
            Command::Reload(reload) => {
                if self.shutdown.is_some() {
                    Some(Answer::ShuttingDown)
                } else {
                    let plan = self.reload(*reload, now);
                    self.actions
                        .push(Action::Note(Note::Reloaded(plan.clone())));
                    Some(Answer::Reloaded(plan))
                }
            }
            Command::Shutdown => {
                self.begin_shutdown(0, now);
                Some(Answer::Done)
            }
        };
        if let (Some(request), Some(answer)) = (request, answer) {
            self.actions.push(Action::Answer { request, answer });
        }
    }

    pub(super) fn wait_or_done(
        &mut self,
        request: Option<RequestId>,
        verb: Verb,
        services: &[ServiceId],
        wait: bool,
    ) -> Option<Answer> {
        match request {
            Some(request) if wait => {
                self.wait_for(request, verb, services);
                None
            }
            Some(_) | None => Some(Answer::Done),
        }
    }

    /// What `services` depend on, transitively, is needed up.
    pub(super) fn start_dependencies(&mut self, services: &[ServiceId], now: Instant) {
        let mut seen: HashSet<ServiceId> = services.iter().copied().collect();
        let mut stack: Vec<ServiceId> = services
            .iter()
            .filter_map(|id| self.get(*id))
            .flat_map(|s| s.deps.iter().map(|(d, _)| *d))
            .collect();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            self.step(id, Input::Start { named: false }, now);
            self.queue(id);
            if let Some(s) = self.get(id) {
                stack.extend(s.deps.iter().map(|(d, _)| *d));
            }
        }
    }

    /// `services` and everything that depends on them, transitively.
    pub(super) fn with_dependents(&self, services: &[ServiceId]) -> Vec<ServiceId> {
        let mut seen = HashSet::new();
        let mut stack = services.to_vec();
        let mut out = Vec::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(s) = self.get(id) {
                out.push(id);
                stack.extend(s.dependents.iter().copied());
            }
        }
        out
    }

    // ----- shutdown and exit -----

    pub(super) fn begin_shutdown(&mut self, code: i32, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(Shutdown { code });
        let at = now.saturating_add(self.settings.shutdown_timeout);
        self.timers.set(Timer::Shutdown, Some(at));
        self.actions.push(Action::Upward(Upward::Stopping));
        for id in self.live_ids() {
            self.step(id, Input::Shutdown, now);
            self.queue(id);
        }
    }

    /// SIGKILL every group that may still be alive.
    pub(super) fn kill_everything(&mut self, now: Instant) {
        self.timers.set(Timer::Shutdown, None);
        for id in self.live_ids() {
            self.step(id, Input::Kill, now);
        }
    }

    pub(super) fn live_ids(&self) -> Vec<ServiceId> {
        self.slots
            .iter()
            .filter_map(|s| s.service.as_ref().map(|s| s.id))
            .collect()
    }

    pub(super) fn up_count(&self) -> usize {
        self.count(StateName::Starting)
            + self.count(StateName::Running)
            + self.count(StateName::Stopping)
    }

    /// Order the exit once a shutdown is complete, or once idle with
    /// `exit_when_idle`.
    pub(super) fn check_exit(&mut self) {
        if self.exit_code.is_some() {
            return;
        }
        let code = match self.shutdown {
            Some(shutdown) if self.up_count() == 0 => shutdown.code,
            Some(_) => return,
            None if self.settings.exit_when_idle && self.is_idle() => self.idle_exit_code(),
            None => return,
        };
        self.exit_code = Some(code);
        self.actions.push(Action::Exit { code });
    }

    /// Tell tend's own supervisor once everything has come up as far as it can.
    pub(super) fn check_upward_ready(&mut self) {
        if self.upward_ready || self.shutdown.is_some() {
            return;
        }
        let moving = self.count(StateName::Starting)
            + self.count(StateName::Restarting)
            + self.count(StateName::Stopping);
        if moving == 0 && self.pending_all_blocked() {
            self.upward_ready = true;
            self.actions.push(Action::Upward(Upward::Ready));
        }
    }

    pub(super) fn idle_exit_code(&self) -> i32 {
        self.services()
            .find(|s| s.state == State::Failed)
            .map(|s| policy::failure_code(s.last_exit))
            .unwrap_or(0)
    }
}
