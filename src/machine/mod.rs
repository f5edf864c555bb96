//! The sans-IO core: every decision tend makes, and nothing else.
//!
//! `Supervisor::handle(event, now)` takes a fact reported by the shell (a
//! process was spawned, exited, became ready; a check passed; a command
//! arrived) and returns the actions the shell must carry out (spawn, signal,
//! probe, log, answer, exit). Deadlines live in the states; `poll_deadline`
//! says when the next one is due and `handle_deadlines` fires them. The core
//! reads no clock, touches no fd, spawns and signals nothing: its tests drive it
//! with a fake clock and no processes (quinn-proto's `handle_*`/`poll_*`,
//! smoltcp's explicit time).
//!
//! Read first: this table, then `transition.rs` (the table as code, one arm
//! per row, in this order), then [`Supervisor::handle`].
//!
//! # A service: goal and state
//!
//! The complete grid, every state × every input for five kinds of service, is
//! `src/machine/table.txt`, checked cell by cell by `tests_table.rs`.
//!
//! A service has a [`Goal`] (`up` because enabled or asked, `needed` by a
//! dependent that was started, `down`, `remove`) that commands and reloads set,
//! and a [`State`] (SPEC §3; `spawning` is shown as `starting`) that the table
//! moves towards the goal. Data valid in one state lives in that state.
//!
//! # The state table
//!
//! `up?`: the goal is up and tend is not shutting down. `held`: a service that
//! depends on this one, directly or through others, is still up. "exit" is an
//! exit of the run's main pid; it first SIGKILLs what is left in its process
//! group (two generations of a service never overlap). Inputs of an old run,
//! and rows not listed, change nothing.
//!
//! | state | input | next state, actions |
//! |---|---|---|
//! | pending | evaluate, up?, dependencies met | spawning + `Spawn` |
//! | pending, restarting | evaluate, not up? | stopped (forgotten if removed) |
//! | starting, running | evaluate, goal down, not held | stopping (below) |
//! | stopped, failed | evaluate, goal remove | forgotten |
//! | any | start / stop / remove / shutdown | goal up (needed) / down / remove / down |
//! | stopped (not a completed oneshot, unless named), restarting, failed | start | pending, fresh retry budget |
//! | starting, running | restart | stopping, then pending at its exit |
//! | stopped, restarting, failed | restart | pending, fresh retry budget |
//! | starting, running (enabled) | redefine | stopping with the old definition, then pending |
//! | pending, stopped, restarting, failed | redefine | pending (enabled) or stopped |
//! | starting, running, stopping | kill | SIGKILL to the group |
//! | spawning | spawned | oneshot: starting; notify/fd/log: starting (+`Probe` for log), `ready_by`; exec/tcp/http/grpc: starting, first attempt after 50 ms; `min_uptime`: starting, `up_by`; else running |
//! | spawning | spawn failed | failed |
//! | starting | exit | oneshot: stopped (completed) on success, else by policy; longrun: by policy, as a failed start |
//! | running | exit | failure: by policy; success: restarting (`always`) or stopped |
//! | stopping | exit | counted failure: by policy; else pending (goal up), stopped, or forgotten |
//! | starting, running, stopping | exit, in a cgroup | draining (`stopping`) until `cgroup empty`, then as above |
//! | draining | `give_up_at` passed (something unkillable left) | noted, then as above |
//! | starting | ready (fd, log), `READY=1` (notify), check passed | running; liveness and watchdog armed |
//! | starting | check failed | starting, next attempt (50 ms doubling up to `interval`) |
//! | running | check failed `failures` times in a row | stopping, counted as a failure |
//! | starting, running, stopping | notify from the service | `STATUS`, `MAINPID`, `EXTEND_TIMEOUT_USEC`, `WATCHDOG`, `STOPPING` applied |
//! | any | notify from anyone else | rejected, noted |
//! | starting | `ready_by` passed | stopping, counted as a failure |
//! | starting | `up_by` passed | running |
//! | starting, running | attempt due | `Probe` |
//! | running | `watchdog_by` passed | stopping, counted as a failure |
//! | stopping | `kill_at` passed | SIGKILL to the group |
//! | restarting | `start_at` passed | pending (up?) or stopped |
//!
//! "By policy": `restart_policy` says whether to restart; if so, and the retry
//! budget (`max_retries` within `retry_window`) is not spent, restarting after
//! `retry_delay` doubled per restart in the window, capped at
//! `max_retry_delay`, ±10% jitter; else failed (a `critical` one shuts tend
//! down with its exit code).
//!
//! # Propagation
//!
//! A state change queues the service, its dependencies and its dependents for
//! `evaluate` on a work queue drained until quiet, never by recursion (dinit's
//! queues): dependents may start, dependencies may stop.

#![deny(clippy::wildcard_enum_match_arm)]

pub mod action;
pub mod behaviour;
mod commands;
pub mod deadlines;
pub mod event;
mod graph;
pub mod policy;
pub mod reload;
pub mod service;
pub mod snapshot;
mod steps;
pub mod time;
pub mod transition;
pub mod waiters;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_commands;
#[cfg(test)]
mod tests_readiness;
#[cfg(test)]
mod tests_reload;
#[cfg(test)]
mod tests_snapshot;
#[cfg(test)]
pub(crate) mod tests_support;
#[cfg(test)]
mod tests_table;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub use action::{Action, Answer, Exit, Failure, Note, ProbeReport, Transition, Upward, Why};
pub use behaviour::Behaviour;
pub use deadlines::Deadlines;
pub use event::{Command, Event, ExitStatus, Notice, Reload, Role, Sender};
pub use reload::{Definition, ReloadPlan};
pub use service::{Ended, Goal, Process, Service, State, StateName};
pub use snapshot::CoreSnapshot;
pub use time::Instant;
pub use waiters::SETTLE_TIMEOUT;

use policy::Rng;
use transition::{Cx, Input};
use waiters::Waiter;

/// A service's slot in the supervisor. Slots of removed services are reused;
/// the generation tells a new occupant from the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId {
    index: u32,
    generation: u32,
}

impl ServiceId {
    /// An id for the shell's tests, which have no supervisor to ask for one.
    #[cfg(test)]
    pub fn for_tests(index: u32) -> ServiceId {
        ServiceId {
            index,
            generation: 0,
        }
    }
}

/// One spawn of a service. Never reused, so events of an old run are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub u64);

/// A process id (also the process group id of a service's main process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub i32);

/// A client request that gets an answer; the shell's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Top-level settings the core decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub shutdown_timeout: Duration,
    pub exit_when_idle: bool,
}

/// Everything timed in the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    Service(ServiceId),
    /// `shutdown_timeout`: SIGKILL what is left.
    Shutdown,
    Waiter(RequestId),
}

/// A shutdown in progress: the exit code once everything is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shutdown {
    code: i32,
}

#[derive(Debug, Clone)]
struct Slot {
    generation: u32,
    service: Option<Service>,
    /// On the evaluate queue.
    queued: bool,
}

/// The whole supervisor's decision state.
#[derive(Debug)]
pub struct Supervisor {
    slots: Vec<Slot>,
    /// Slots free for a new service, and slots freed during the current call
    /// (reusable from the next call on, after the shell has seen `Forget`).
    free: Vec<u32>,
    freed: Vec<u32>,
    /// Every service with a slot, removed ones included until forgotten.
    by_name: HashMap<Arc<str>, ServiceId>,
    /// Services in config order.
    order: Vec<ServiceId>,
    next_run: u64,
    rng: Rng,
    timers: Deadlines<Timer>,
    settings: Settings,
    shutdown: Option<Shutdown>,
    terminations: u32,
    exit_code: Option<i32>,
    dirty: VecDeque<ServiceId>,
    actions: Vec<Action>,
    /// Services per state name, so "is anything starting?" is O(1).
    counts: [usize; 7],
    waiters: Vec<Waiter>,
    states_changed: bool,
    upward_ready: bool,
    now: Instant,
}

impl Supervisor {
    /// A supervisor for these services, with nothing started yet; `seed` feeds
    /// the backoff jitter.
    pub fn new(services: Vec<Definition>, settings: Settings, seed: u64) -> Supervisor {
        let mut sup = Supervisor {
            slots: Vec::new(),
            free: Vec::new(),
            freed: Vec::new(),
            by_name: HashMap::new(),
            order: Vec::new(),
            next_run: 1,
            rng: Rng::new(seed),
            timers: Deadlines::default(),
            settings,
            shutdown: None,
            terminations: 0,
            exit_code: None,
            dirty: VecDeque::new(),
            actions: Vec::new(),
            counts: [0; 7],
            waiters: Vec::new(),
            states_changed: false,
            upward_ready: false,
            now: Instant::ZERO,
        };
        for def in services {
            let id = sup.add(def, Instant::ZERO);
            sup.order.push(id);
        }
        sup.resolve_dependencies();
        sup
    }

    /// Start every enabled service whose dependencies are met.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        self.begin_call(now);
        for id in self.order.clone() {
            self.queue(id);
        }
        self.finish()
    }

    /// Feed one event; returns what the shell must do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        self.begin_call(now);
        match event {
            Event::Spawned { service, run, pid } => {
                self.step(service, Input::Spawned { run, pid }, now)
            }
            Event::SpawnFailed {
                service,
                run,
                error,
            } => self.step(service, Input::SpawnFailed { run, error }, now),
            Event::Exited {
                service,
                run,
                pid,
                status,
            } => self.step(service, Input::Exited { run, pid, status }, now),
            Event::Ready { service, run } => self.step(service, Input::Ready { run }, now),
            Event::GroupEmpty { service, run } => {
                self.step(service, Input::GroupEmpty { run }, now)
            }
            Event::ProbeResult {
                service,
                run,
                role,
                ok,
                message,
            } => {
                let input = Input::ProbeResult {
                    run,
                    role,
                    ok,
                    message,
                };
                self.step(service, input, now);
            }
            Event::Notified {
                service,
                from,
                notice,
            } => self.step(service, Input::Notified { from, notice }, now),
            Event::Command { request, command } => self.command(request, command, now),
            Event::Terminate => {
                self.terminations += 1;
                let again = self.shutdown.is_some() && self.terminations >= 2;
                self.actions.push(Action::Note(Note::Terminating { again }));
                if again {
                    self.kill_everything(now);
                } else {
                    self.begin_shutdown(0, now);
                }
            }
        }
        self.finish()
    }

    /// Fire every deadline at or before `now`.
    pub fn handle_deadlines(&mut self, now: Instant) -> Vec<Action> {
        self.begin_call(now);
        // Each step consumes the deadline it fires, so this ends; the bound is
        // a guard against a row that would not.
        let mut budget = 4 * self.timers.len() + 16;
        while budget > 0
            && let Some(timer) = self.timers.pop_due(now)
        {
            budget -= 1;
            match timer {
                Timer::Service(id) => self.step(id, Input::Deadline, now),
                Timer::Shutdown => self.kill_everything(now),
                Timer::Waiter(request) => self.waiter_timed_out(request),
            }
        }
        self.finish()
    }

    /// The earliest pending deadline; `None` means nothing is due until an
    /// event arrives (the shell then blocks without a timeout).
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A service by name (removed ones are not found).
    pub fn find(&self, name: &str) -> Option<ServiceId> {
        self.find_any(name)
            .filter(|id| self.get(*id).is_some_and(|s| s.goal != Goal::Remove))
    }

    fn find_any(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(name).copied()
    }

    pub fn get(&self, id: ServiceId) -> Option<&Service> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.service.as_ref()
    }

    /// Every service still defined, in config order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.order
            .iter()
            .filter_map(|id| self.get(*id))
            .filter(|s| s.goal != Goal::Remove)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Set once the core has ordered the exit.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// How many services are in each state (for a status summary).
    pub fn count(&self, state: StateName) -> usize {
        self.counts[state as usize]
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

    // ----- one input to one service, and its bookkeeping -----

    /// Feed `input` to service `id`, then keep everything derived from its
    /// state in step: its deadline, the state counts, the evaluate queue, and
    /// the slot itself once it is to be forgotten.
    fn step(&mut self, id: ServiceId, input: Input, now: Instant) {
        let evaluate = input == Input::Evaluate;
        let deps_met = evaluate && self.dependencies_met(id);
        let held_up = evaluate && self.held_up(id);
        let shutting_down = self.shutdown.is_some();
        let Supervisor {
            slots,
            rng,
            next_run,
            actions,
            ..
        } = self;
        let Some(service) = slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.service.as_mut())
        else {
            return;
        };
        let was_up = service.state.is_up();
        let before = (
            std::mem::discriminant(&service.state),
            service.state.run(),
            service.state.name(),
        );
        let mut cx = Cx {
            now,
            shutting_down,
            deps_met,
            held_up,
            rng,
            next_run,
            out: actions,
            forget: false,
            shutdown: None,
        };
        service.step(input, &mut cx);
        let (forget, shutdown) = (cx.forget, cx.shutdown);
        let after = (
            std::mem::discriminant(&service.state),
            service.state.run(),
            service.state.name(),
        );
        let deadline = service.state.deadline();
        let neighbours: Vec<ServiceId> = if before != after {
            let deps = service.deps.iter().map(|(d, _)| *d);
            deps.chain(service.dependents.iter().copied()).collect()
        } else {
            Vec::new()
        };
        self.timers.set(Timer::Service(id), deadline);
        if before != after {
            self.counts[before.2 as usize] -= 1;
            self.counts[after.2 as usize] += 1;
            self.states_changed = true;
            self.queue(id);
            for n in neighbours {
                self.queue(n);
            }
            if was_up && !self.get(id).is_some_and(|s| s.state.is_up()) {
                self.queue_held_dependencies(id);
            }
        }
        if forget {
            self.forget(id);
        }
        if let Some(code) = shutdown {
            self.begin_shutdown(code, now);
        }
    }

    fn queue(&mut self, id: ServiceId) {
        if let Some(slot) = self.slots.get_mut(id.index as usize)
            && slot.generation == id.generation
            && slot.service.is_some()
            && !slot.queued
        {
            slot.queued = true;
            self.dirty.push_back(id);
        }
    }

    /// A new service in a free slot (one not freed during this call).
    fn add(&mut self, def: Definition, now: Instant) -> ServiceId {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    service: None,
                    queued: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        let id = ServiceId {
            index,
            generation: slot.generation,
        };
        let service = Service::new(id, def.name.clone(), def.behaviour, def.revision, now);
        self.counts[service.state.name() as usize] += 1;
        slot.service = Some(service);
        self.by_name.insert(def.name, id);
        self.queue(id);
        id
    }

    /// Free a removed service that is down.
    fn forget(&mut self, id: ServiceId) {
        let Some(slot) = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
        else {
            return;
        };
        let Some(service) = slot.service.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        slot.queued = false;
        self.freed.push(id.index);
        self.counts[service.state.name() as usize] -= 1;
        if self.by_name.get(&service.name) == Some(&id) {
            self.by_name.remove(&service.name);
        }
        self.timers.set(Timer::Service(id), None);
        self.actions.push(Action::Forget { service: id });
    }

    fn begin_call(&mut self, now: Instant) {
        self.now = now;
        self.free.append(&mut self.freed);
    }

    /// Drain the evaluate queue, answer settled waiters, check whether tend is
    /// done; return the actions.
    fn finish(&mut self) -> Vec<Action> {
        let now = self.now;
        while let Some(id) = self.dirty.pop_front() {
            if let Some(slot) = self.slots.get_mut(id.index as usize) {
                slot.queued = false;
            }
            self.step(id, Input::Evaluate, now);
        }
        self.check_waiters();
        self.check_exit();
        self.check_upward_ready();
        std::mem::take(&mut self.actions)
    }
}
