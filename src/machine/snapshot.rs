//! The core's state as data, for `tend reexec` (SPEC §8): the old process
//! writes a [`CoreSnapshot`] and the new one makes a [`Supervisor`] of it that
//! decides exactly as the old one would have.
//!
//! Kept: every slot with its service (goal, state with its deadlines,
//! behaviour, revision, restarts, retry budget, last exit, error and probe,
//! status text, runs), the free slots, the config order, the next run number,
//! the jitter generator, the settings, the shutdown, the exit code, the
//! waiting clients and their deadlines. Rebuilt, because they follow from the
//! rest: the name index, the state counts and every deadline of the timer set
//! (each state holds its own; see `deadlines.rs`). The dependency edges are
//! kept as they are, not resolved again: their order is the order dependents
//! are evaluated in, and an edge to a forgotten service (which the core skips)
//! must not change it.
//! Instants keep their meaning because the shell continues its clock from the
//! old process's (`runtime::reexec`): the core never learns that it moved.
//!
//! A check attempt in flight when the state was taken is lost with the old
//! process's sockets; [`Supervisor::rearm_checks`] makes such checks due again.
//!
//! Must not: read anything but the snapshot it is given (the shell validates
//! the document and its version; this validates what only the core can: that
//! the ids in it agree with each other).

use std::collections::HashMap;
use std::sync::Arc;

use super::action::{Failure, ProbeReport};
use super::behaviour::Behaviour;
use super::event::ExitStatus;
use super::policy::{self, RetryBudget, Rng};
use super::service::{Checking, Goal, Service, State};
use super::waiters::Waiter;
use super::{Instant, RunId, ServiceId, Settings, Shutdown, Slot, Supervisor, Timer};
use crate::codec::wire::wire_struct;
use crate::config::Condition;

/// Everything the core needs to go on deciding (see the module doc). Opaque
/// to the shell, which only stores it (its parts are the core's, for the
/// tests that spoil one).
#[derive(Debug, Clone, PartialEq)]
pub struct CoreSnapshot {
    pub(super) slots: Vec<SlotSnapshot>,
    pub(super) free: Vec<u32>,
    pub(super) order: Vec<ServiceId>,
    pub(super) next_run: u64,
    pub(super) rng: Rng,
    pub(super) settings: Settings,
    pub(super) shutdown: Option<ShutdownSnapshot>,
    pub(super) terminations: u32,
    pub(super) exit_code: Option<i32>,
    pub(super) waiters: Vec<WaiterSnapshot>,
    pub(super) upward_ready: bool,
    pub(super) now: Instant,
}

// The snapshot's layout (`codec::wire`): each struct's fields in this order.
wire_struct!(CoreSnapshot {
    slots,
    free,
    order,
    next_run,
    rng,
    settings,
    shutdown,
    terminations,
    exit_code,
    waiters,
    upward_ready,
    now,
});
wire_struct!(SlotSnapshot {
    generation,
    service,
});
wire_struct!(ServiceSnapshot {
    id,
    name,
    behaviour,
    revision,
    goal,
    state,
    changed_at,
    restarts,
    budget,
    last_exit,
    last_error,
    last_probe,
    status_text,
    last_run,
    ready_run,
    deps,
    dependents,
});
wire_struct!(ShutdownSnapshot { code, kill_at });
wire_struct!(WaiterSnapshot { waiter, deadline });

#[derive(Debug, Clone, PartialEq)]
pub(super) struct SlotSnapshot {
    pub(super) generation: u32,
    pub(super) service: Option<ServiceSnapshot>,
}

/// A [`Service`] as data. Its behaviour is left out when the shell has the
/// definition it came from (the same name and revision: see `reload.rs`),
/// which is every service but one that a reload removed or changed while it
/// still stops: a thousand behaviours are half of a snapshot otherwise.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ServiceSnapshot {
    pub(super) id: ServiceId,
    pub(super) name: Arc<str>,
    pub(super) behaviour: Option<Behaviour>,
    pub(super) revision: u64,
    pub(super) goal: Goal,
    pub(super) state: State,
    pub(super) changed_at: Instant,
    pub(super) restarts: u64,
    pub(super) budget: RetryBudget,
    pub(super) last_exit: Option<ExitStatus>,
    pub(super) last_error: Option<Failure>,
    pub(super) last_probe: Option<ProbeReport>,
    pub(super) status_text: Option<String>,
    pub(super) last_run: Option<RunId>,
    pub(super) ready_run: Option<RunId>,
    pub(super) deps: Vec<(ServiceId, Condition)>,
    pub(super) dependents: Vec<ServiceId>,
}

impl ServiceSnapshot {
    /// `known`: the shell can give the behaviour back (see the type's doc).
    fn of(service: &Service, known: bool) -> ServiceSnapshot {
        // Every field, so that a new one cannot be forgotten here.
        let Service {
            id,
            name,
            behaviour,
            revision,
            goal,
            state,
            changed_at,
            restarts,
            budget,
            last_exit,
            last_error,
            last_probe,
            status_text,
            last_run,
            ready_run,
            deps,
            dependents,
        } = service.clone();
        ServiceSnapshot {
            id,
            name,
            behaviour: (!known).then_some(behaviour),
            revision,
            goal,
            state,
            changed_at,
            restarts,
            budget,
            last_exit,
            last_error: last_error.map(|f| *f),
            last_probe: last_probe.map(|p| *p),
            status_text,
            last_run,
            ready_run,
            deps,
            dependents,
        }
    }

    fn into_service(self, behaviour_of: BehaviourOf<'_>) -> Result<Service, String> {
        let behaviour = match self.behaviour {
            Some(b) => b,
            None => behaviour_of(&self.name, self.revision).ok_or_else(|| {
                format!(
                    "no definition of {} (revision {})",
                    self.name, self.revision
                )
            })?,
        };
        Ok(Service {
            id: self.id,
            name: self.name,
            behaviour,
            revision: self.revision,
            goal: self.goal,
            state: self.state,
            changed_at: self.changed_at,
            restarts: self.restarts,
            budget: self.budget,
            last_exit: self.last_exit,
            last_error: self.last_error.map(Box::new),
            last_probe: self.last_probe.map(Box::new),
            status_text: self.status_text,
            last_run: self.last_run,
            ready_run: self.ready_run,
            deps: self.deps,
            dependents: self.dependents,
        })
    }
}

/// The shell's behaviour of a (name, revision), if it has that definition.
pub type BehaviourOf<'a> = &'a dyn Fn(&str, u64) -> Option<Behaviour>;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct ShutdownSnapshot {
    pub(super) code: i32,
    /// When what is left gets SIGKILL (`shutdown_timeout`), unless that passed.
    pub(super) kill_at: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct WaiterSnapshot {
    pub(super) waiter: Waiter,
    pub(super) deadline: Option<Instant>,
}

impl Supervisor {
    /// The state as data. Taken between calls (the evaluate queue is empty).
    /// `known(name, revision)`: the shell keeps that definition, so the
    /// behaviour is left out (and asked for at [`Supervisor::restore`]).
    pub fn snapshot(&self, known: &dyn Fn(&str, u64) -> bool) -> CoreSnapshot {
        let mut free = self.free.clone();
        free.extend(&self.freed);
        CoreSnapshot {
            slots: self
                .slots
                .iter()
                .map(|s| SlotSnapshot {
                    generation: s.generation,
                    service: s
                        .service
                        .as_ref()
                        .map(|v| ServiceSnapshot::of(v, known(&v.name, v.revision))),
                })
                .collect(),
            free,
            order: self.order.clone(),
            next_run: self.next_run,
            rng: self.rng.clone(),
            settings: self.settings,
            shutdown: self.shutdown.map(|s| ShutdownSnapshot {
                code: s.code,
                kill_at: self.timers.get(Timer::Shutdown),
            }),
            terminations: self.terminations,
            exit_code: self.exit_code,
            waiters: self
                .waiters
                .iter()
                .map(|w| WaiterSnapshot {
                    waiter: w.clone(),
                    deadline: self.timers.get(Timer::Waiter(w.request)),
                })
                .collect(),
            upward_ready: self.upward_ready,
            now: self.now,
        }
    }

    /// A supervisor that goes on from `snapshot`; `behaviour_of` gives the
    /// behaviours left out. `Err` says what in it does not hold together
    /// (nothing is half-restored).
    pub fn restore(
        snapshot: CoreSnapshot,
        behaviour_of: BehaviourOf<'_>,
    ) -> Result<Supervisor, String> {
        let CoreSnapshot {
            slots,
            free,
            order,
            next_run,
            rng,
            settings,
            shutdown,
            terminations,
            exit_code,
            waiters,
            upward_ready,
            now,
        } = snapshot;
        let mut sup = Supervisor::new(Vec::new(), settings, 1);
        let mut by_name = HashMap::new();
        for (index, slot) in slots.into_iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| "too many slots".to_string())?;
            let service = match slot.service {
                Some(s) => Some(s.into_service(behaviour_of)?),
                None => None,
            };
            if let Some(service) = &service {
                let id = ServiceId {
                    index,
                    generation: slot.generation,
                };
                if service.id != id {
                    return Err(format!("service {} is in the wrong slot", service.name));
                }
                if by_name.insert(service.name.clone(), id).is_some() {
                    return Err(format!("service {} appears twice", service.name));
                }
                sup.counts[service.state.name() as usize] += 1;
                sup.timers.set(Timer::Service(id), service.state.deadline());
            }
            sup.slots.push(Slot {
                generation: slot.generation,
                service,
                queued: false,
            });
        }
        let live = |id: &ServiceId| sup.get(*id).is_some();
        // Each slot at most once in the order, and once in the free list
        // (by slot: an id names a slot, and only a live one is accepted).
        let mut seen = vec![false; sup.slots.len()];
        for id in &order {
            if !live(id) || again(&mut seen, id.index) {
                return Err(format!(
                    "the service order names {id:?}, which is not a service"
                ));
            }
        }
        let mut seen = vec![false; sup.slots.len()];
        for &index in &free {
            let empty = sup
                .slots
                .get(index as usize)
                .is_some_and(|s| s.service.is_none());
            if !empty || again(&mut seen, index) {
                return Err(format!("slot {index} is listed free but is not"));
            }
        }
        for w in &waiters {
            if let Some(id) = w
                .waiter
                .services
                .iter()
                .map(|(id, _)| id)
                .find(|id| !live(id))
            {
                return Err(format!(
                    "a waiting client waits for {id:?}, which is not a service"
                ));
            }
        }
        sup.by_name = by_name;
        sup.free = free;
        sup.order = order;
        sup.next_run = next_run;
        sup.rng = rng;
        sup.shutdown = shutdown.as_ref().map(|s| Shutdown { code: s.code });
        sup.timers
            .set(Timer::Shutdown, shutdown.and_then(|s| s.kill_at));
        sup.terminations = terminations;
        sup.exit_code = exit_code;
        for w in waiters {
            sup.timers.set(Timer::Waiter(w.waiter.request), w.deadline);
            sup.waiters.push(w.waiter);
        }
        sup.upward_ready = upward_ready;
        sup.now = now;
        Ok(sup)
    }

    /// Make every check whose attempt was in flight when the snapshot was
    /// taken due at `now` (that attempt went with the old process). Its
    /// failures in a row and attempts so far are kept.
    pub fn rearm_checks(&mut self, now: Instant) {
        let at = policy::probe_time(now, std::time::Duration::ZERO);
        let mut rearmed = Vec::new();
        for slot in &mut self.slots {
            if let Some(service) = &mut slot.service
                && service.rearm_check(at)
            {
                rearmed.push((service.id, service.state.deadline()));
            }
        }
        for (id, deadline) in rearmed {
            self.timers.set(Timer::Service(id), deadline);
        }
    }
}

/// Mark slot `index` seen; whether it was already (or is no slot).
fn again(seen: &mut [bool], index: u32) -> bool {
    seen.get_mut(index as usize)
        .is_none_or(|s| std::mem::replace(s, true))
}

impl Service {
    /// A check in flight (`next_at: None`) is due at `at` again. Not a state
    /// change (the state stays, only its attempt's schedule moves), so it
    /// bypasses `Service::set` as a rescheduled check does.
    fn rearm_check(&mut self, at: Instant) -> bool {
        let check: &mut Option<Checking> = match &mut self.state {
            State::Starting { check, .. } | State::Running { check, .. } => check,
            State::Pending
            | State::Spawning { .. }
            | State::Stopping { .. }
            | State::Draining { .. }
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => return false,
        };
        match check {
            Some(c) if c.next_at.is_none() => {
                c.next_at = Some(at);
                true
            }
            Some(_) | None => false,
        }
    }
}
