//! Clients waiting for `tend start|stop|restart` to settle.
//!
//! The reply is held until every named service is where the command meant it
//! to go, one of them cannot get there, or [`SETTLE_TIMEOUT`] passes; the
//! client blocks on its socket meanwhile instead of polling. Waiters are
//! checked after every call that changed a state, and their timeouts are
//! entries of the core's deadline set.

use std::time::Duration;

use super::action::{Action, Answer};
use super::service::{Goal, Service, State, StateName};
use super::{RequestId, RunId, ServiceId, Supervisor, Timer};

/// How long a waiting command is held before tend answers that it did not
/// settle.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Which change a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

/// A client waiting for its services to settle. For a restart, `stale` is the
/// newest run at the time of the request: only a later run counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    pub request: RequestId,
    pub verb: Verb,
    pub services: Vec<(ServiceId, Option<RunId>)>,
}

/// Where one service stands for a waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Waiting,
    Done,
    /// It ended up in this state instead.
    Failed(StateName),
}

/// Whether `service` is where `verb` was meant to take it. `blocked`: it is
/// pending on a dependency that can never be met.
pub fn settle(verb: Verb, service: &Service, stale: Option<RunId>, blocked: bool) -> Settle {
    let newer = |run: Option<RunId>| run.is_some() && run > stale;
    let oneshot = service.is_oneshot();
    let failed = Settle::Failed(service.state.name());
    match (verb, &service.state) {
        (Verb::Stop, State::Stopped { .. }) => Settle::Done,
        (Verb::Stop, State::Failed) => failed,
        (
            Verb::Stop,
            State::Pending
            | State::Spawning { .. }
            | State::Starting { .. }
            | State::Running { .. }
            | State::Stopping { .. }
            | State::Draining { .. }
            | State::Restarting { .. },
        ) => Settle::Waiting,
        (Verb::Start, State::Running { .. }) => Settle::Done,
        (Verb::Restart, State::Running { run, .. }) if newer(Some(*run)) => Settle::Done,
        (Verb::Start, State::Stopped { completed: true }) if oneshot => Settle::Done,
        (Verb::Restart, State::Stopped { completed: true })
            if oneshot && newer(service.last_run) =>
        {
            Settle::Done
        }
        (Verb::Start | Verb::Restart, State::Failed | State::Restarting { .. }) => failed,
        (Verb::Start | Verb::Restart, State::Stopped { .. }) => failed,
        (Verb::Start | Verb::Restart, State::Pending) if blocked => failed,
        (
            Verb::Start | Verb::Restart,
            State::Pending
            | State::Spawning { .. }
            | State::Starting { .. }
            | State::Running { .. }
            | State::Stopping { .. }
            | State::Draining { .. },
        ) => Settle::Waiting,
    }
}

impl Supervisor {
    /// Hold `request`'s answer until `services` settle.
    pub(super) fn wait_for(&mut self, request: RequestId, verb: Verb, services: &[ServiceId]) {
        let services = services
            .iter()
            .map(|&id| {
                let stale = match verb {
                    Verb::Restart => self.get(id).and_then(|s| s.last_run),
                    Verb::Start | Verb::Stop => None,
                };
                (id, stale)
            })
            .collect();
        let deadline = self.now.saturating_add(SETTLE_TIMEOUT);
        self.timers.set(Timer::Waiter(request), Some(deadline));
        self.waiters.push(Waiter {
            request,
            verb,
            services,
        });
        self.states_changed = true; // check it at the end of this call
    }

    /// Answer the waiters whose services settled or could not.
    pub(super) fn check_waiters(&mut self) {
        if !std::mem::take(&mut self.states_changed) || self.waiters.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.waiters);
        for waiter in waiters {
            match self.verdict(&waiter) {
                Some(answer) => {
                    self.timers.set(Timer::Waiter(waiter.request), None);
                    let request = waiter.request;
                    self.actions.push(Action::Answer { request, answer });
                }
                None => self.waiters.push(waiter),
            }
        }
    }

    /// The first failure, else done when all are, else `None` (still waiting).
    fn verdict(&self, waiter: &Waiter) -> Option<Answer> {
        let mut all_done = true;
        for &(id, stale) in &waiter.services {
            // A reload answers the waiters of what it removes at once (a state
            // change), so a forgotten id is only ever seen here by mistake.
            let Some(service) = self.get(id) else {
                let name = "a removed service".into();
                return Some(Answer::Removed { name });
            };
            if service.goal == Goal::Remove {
                let name = service.name.clone();
                return Some(Answer::Removed { name });
            }
            let blocked = service.state == State::Pending && self.is_blocked(id);
            match settle(waiter.verb, service, stale, blocked) {
                Settle::Failed(state) => return Some(Answer::NotSettled { service: id, state }),
                Settle::Waiting => all_done = false,
                Settle::Done => {}
            }
        }
        all_done.then_some(Answer::Done)
    }

    /// A waiter's time is up.
    pub(super) fn waiter_timed_out(&mut self, request: RequestId) {
        if let Some(at) = self.waiters.iter().position(|w| w.request == request) {
            self.waiters.remove(at);
            let answer = Answer::TimedOut {
                after: SETTLE_TIMEOUT,
            };
            self.actions.push(Action::Answer { request, answer });
        }
    }
}
