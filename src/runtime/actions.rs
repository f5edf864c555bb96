//! Carrying out the core's orders: spawn, signal, probe, log, answer, forget.
//!
//! Each action is done as told; the only judgement here is a safety net the
//! core already guarantees (never signal a pid that has been reaped). Spawns
//! answer with events at once, and the actions those produce are carried out
//! in turn, in order; the exception is a spawn whose `sha256` must first be
//! hashed (`verify.rs`): it is answered from [`Runtime::verify_turn`] once the
//! hash is done, while the rest of its batch goes out at once.
//!
//! A stop of such a service while it waits only sets its goal: the hash
//! finishes, the process starts and is stopped right away, as after any stop
//! that arrives during a start, so `tend stop` ends in `stopped`. A shutdown
//! or a reload that removes it does not wait for the hash: the run is
//! answered `SpawnFailed` ("stopped while verifying its sha256").

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use log::{debug, error, info, warn};
use mio::unix::pipe::Receiver;

use super::output::Stream;
use super::probes::Order;
use super::render::{Change, Problem};
use super::spawn::Spawned;
use super::verify::{Finished, Verdict, Waiter};
use super::{Child, Runtime};
use crate::config::{OutputMode, Readiness, ServiceSpec, Signal};
use crate::machine::{
    Action, Event, Goal, Note, Pid, Process, Role, RunId, ServiceId, State, StateName, Transition,
};

/// What `last_error` says of a run given up while its checksum was hashed.
const STOPPED_WHILE_VERIFYING: &str = "stopped while verifying its sha256";

/// What to do with one run of a spawn batch.
enum Gate {
    /// Spawn now; exec this verified open file if there is one.
    Go(Option<OwnedFd>),
    /// Answer `SpawnFailed` with this.
    Fail(String),
    /// Its file is being hashed: answered later.
    Wait,
}

impl Runtime {
    /// Carry out the core's orders, and the orders that their events produce.
    pub(super) fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let events = match action {
                Action::Spawn { service, run } => {
                    // Spawns in a row (a start-up, a reload) go out as one batch.
                    let mut batch = vec![(service, run)];
                    while let Some(&Action::Spawn { service, run }) = queue.front() {
                        batch.push((service, run));
                        queue.pop_front();
                    }
                    self.spawn_all(&batch)
                }
                Action::Signal {
                    service,
                    run,
                    process,
                    signal,
                } => {
                    self.signal(service, run, process, signal);
                    Vec::new()
                }
                Action::ClearGroup {
                    service,
                    run,
                    process,
                } => {
                    if self.is_unreaped(service, run, process) {
                        // Quietly: most groups are empty by then.
                        let _ = crate::sys::kill_group(process.pgid.0, libc::SIGKILL);
                    }
                    self.clear_cgroup(service, run)
                }
                Action::Probe { service, run, role } => self.probe(service, run, role),
                Action::CancelProbe { service, role } => {
                    if role == Role::Readiness {
                        if let Some(io) = self.io.get_mut(&service) {
                            io.pattern = None;
                        }
                        self.readiness.close_service(self.poll.registry(), service);
                    }
                    self.probes.cancel(service, role);
                    Vec::new()
                }
                Action::Track { service, run, pid } => {
                    self.children.insert(pid.0, Child { service, run });
                    Vec::new()
                }
                Action::Transitioned(t) => self.transitioned(&t),
                Action::Note(note) => {
                    if let (Note::LeftBehind { service }, Some(cgroups)) =
                        (&note, &mut self.cgroups)
                    {
                        cgroups.stop_draining(*service);
                    }
                    self.note(&note);
                    Vec::new()
                }
                Action::Answer { request, answer } => {
                    self.answer(request, answer);
                    Vec::new()
                }
                Action::Forget { service } => {
                    self.forget(service);
                    Vec::new()
                }
                Action::Upward(order) => {
                    debug!("upward: {order:?}");
                    if self.upward.is_active() {
                        let summary = super::upward::summary(&self.sup);
                        self.upward.order(order, &summary);
                    }
                    Vec::new()
                }
                Action::Exit { code } => {
                    self.exit = Some(code);
                    Vec::new()
                }
            };
            let now = self.now();
            let raised: Vec<Event> = self.pending_events.drain(..).collect();
            for event in events.into_iter().chain(raised) {
                self.count_fact(&event);
                queue.extend(self.sup.handle(event, now));
            }
        }
    }

    /// The newest definition of a service.
    fn spec_of(&self, service: ServiceId) -> Option<std::sync::Arc<ServiceSpec>> {
        let name = self.sup.get(service)?.name.clone();
        self.catalog.spec(&name).cloned()
    }

    /// Spawn these runs (in order, concurrently where the spawner can); one
    /// event each, in order, but for the runs whose `sha256` is being hashed:
    /// those are answered by [`Runtime::verify_turn`].
    fn spawn_all(&mut self, runs: &[(ServiceId, RunId)]) -> Vec<Event> {
        let specs: Vec<Option<std::sync::Arc<ServiceSpec>>> = runs
            .iter()
            .map(|(service, _)| self.spec_of(*service))
            .collect();
        let mut gates = Vec::with_capacity(runs.len());
        let mut jobs: Vec<(&std::sync::Arc<ServiceSpec>, Option<OwnedFd>)> =
            Vec::with_capacity(runs.len());
        for (&(service, run), spec) in runs.iter().zip(&specs) {
            let gate = match spec {
                Some(spec) => self.gate(service, run, spec),
                None => Gate::Fail("no definition".to_string()),
            };
            gates.push(match (gate, spec) {
                (Gate::Go(program), Some(spec)) => {
                    jobs.push((spec, program));
                    None
                }
                (Gate::Go(_), None) => Some(Gate::Fail("no definition".to_string())),
                (gate @ (Gate::Fail(_) | Gate::Wait), _) => Some(gate),
            });
        }
        let mut results = self.launch.spawn_all(&mut self.spawner, jobs).into_iter();
        let mut events = Vec::with_capacity(runs.len());
        for ((&(service, run), spec), gate) in runs.iter().zip(&specs).zip(gates) {
            let outcome = match (gate, spec) {
                (Some(Gate::Wait), _) => continue,
                (Some(Gate::Fail(error)), _) => Err(error),
                (Some(Gate::Go(_)) | None, None) => Err("no definition".to_string()),
                (Some(Gate::Go(_)) | None, Some(spec)) => match results.next() {
                    Some(Ok(child)) => Ok((spec, child)),
                    Some(Err(e)) => {
                        error!("{}: cannot spawn {:?}: {e}", spec.name, spec.command);
                        if e.stage == super::spawn::Stage::Cgroup
                            && let Some(cgroups) = &mut self.cgroups
                        {
                            // Removed behind tend's back? The next start finds it again.
                            cgroups.repair(spec);
                        }
                        Err(e.to_string())
                    }
                    None => Err("not spawned".to_string()),
                },
            };
            events.push(match outcome {
                Ok((spec, child)) => self.spawned(service, run, spec, child),
                Err(error) => Event::SpawnFailed {
                    service,
                    run,
                    error,
                },
            });
        }
        events
    }

    /// Whether `run` of a service with a `sha256` may spawn now: its file
    /// verified (known or not), failed, or being hashed. Without `sha256`: go.
    fn gate(&mut self, service: ServiceId, run: RunId, spec: &std::sync::Arc<ServiceSpec>) -> Gate {
        let Some(expected) = spec.process.sha256 else {
            return Gate::Go(None);
        };
        let file = match self.launch.file(spec) {
            // The spawn fails the same way, and says so.
            Err(_) => return Gate::Go(None),
            Ok(file) => file,
        };
        match self.verify.check(Waiter { service, run }, &file, &expected) {
            Verdict::Verified(program) => Gate::Go(program),
            Verdict::Failed(error) => {
                error!("{}: cannot spawn {:?}: {error}", spec.name, spec.command);
                self.launch.invalidate(&spec.name);
                Gate::Fail(error)
            }
            Verdict::Deferred => {
                info!("{}: checking the sha256 of {}", spec.name, file.display());
                Gate::Wait
            }
        }
    }

    /// One loop turn's share of checksum work: a run whose service is being
    /// removed, or every run once tend shuts down, stops waiting (answered
    /// [`STOPPED_WHILE_VERIFYING`]); a finished hash spawns its runs again
    /// (they find it known now), in one batch.
    pub(super) fn verify_turn(&mut self) {
        if !self.verify.has_work() {
            return;
        }
        let shutting_down = self.sup.is_shutting_down();
        let sup = &self.sup;
        let given_up = self.verify.abandon(|w| {
            !shutting_down && sup.get(w.service).is_some_and(|s| s.goal != Goal::Remove)
        });
        for w in given_up {
            if self.is_spawning(w) {
                info!("{}: {STOPPED_WHILE_VERIFYING}", self.name_of(w.service));
                self.feed(Event::SpawnFailed {
                    service: w.service,
                    run: w.run,
                    error: STOPPED_WHILE_VERIFYING.to_string(),
                });
            }
        }
        let finished = self
            .verify
            .work(&mut self.scratch, super::verify::TURN_BUDGET);
        let mut again = Vec::new();
        for done in finished {
            match done {
                Finished::Hashed(w) if self.is_spawning(w) => again.push(Action::Spawn {
                    service: w.service,
                    run: w.run,
                }),
                Finished::Failed(w, error) if self.is_spawning(w) => {
                    error!("{}: cannot spawn: {error}", self.name_of(w.service));
                    self.feed(Event::SpawnFailed {
                        service: w.service,
                        run: w.run,
                        error,
                    });
                }
                Finished::Hashed(_) | Finished::Failed(..) => {}
            }
        }
        if !again.is_empty() {
            self.execute(again);
        }
    }

    /// Whether the core still waits for the spawn of `w.run`.
    fn is_spawning(&self, w: Waiter<ServiceId>) -> bool {
        self.sup
            .get(w.service)
            .is_some_and(|s| matches!(s.state, State::Spawning { run, .. } if run == w.run))
    }

    fn name_of(&self, service: ServiceId) -> String {
        self.sup
            .get(service)
            .map(|s| s.name().to_string())
            .unwrap_or_default()
    }

    /// Take a new child in: its pid and its output pipes.
    fn spawned(
        &mut self,
        service: ServiceId,
        run: RunId,
        spec: &ServiceSpec,
        child: Spawned,
    ) -> Event {
        self.children.insert(child.pid, Child { service, run });
        if let Some(fd) = child.readiness {
            let registry = self.poll.registry();
            self.readiness
                .add(registry, &mut self.tokens, service, run, fd);
        }
        if spec.output == OutputMode::Log {
            if let Some(out) = child.stdout {
                self.add_pipe(service, run, Stream::Stdout, Receiver::from(out));
            }
            if let Some(err) = child.stderr {
                self.add_pipe(service, run, Stream::Stderr, Receiver::from(err));
            }
        }
        Event::Spawned {
            service,
            run,
            pid: Pid(child.pid),
        }
    }

    /// The core never orders a signal after the exit; this checks anyway,
    /// because a pid that has been reaped may belong to someone else by now.
    fn is_unreaped(&self, service: ServiceId, run: RunId, process: Process) -> bool {
        self.children
            .get(&process.pid.0)
            .is_some_and(|c| c.service == service && c.run == run)
    }

    fn signal(&mut self, service: ServiceId, run: RunId, process: Process, signal: Signal) {
        if !self.is_unreaped(service, run, process) {
            debug!("not signalling {}: already reaped", process.pgid.0);
            return;
        }
        let name = self
            .sup
            .get(service)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let group = process.pgid.0;
        if signal == Signal::KILL {
            warn!("{name}: sending SIGKILL to process group {group}");
        } else if signal != Signal::CONT {
            info!("{name}: sending {signal} to process group {group}");
        }
        if let Err(e) = crate::sys::kill_group(group, signal.0) {
            debug!("{name}: kill({}, {signal}): {e}", -group);
        }
        if signal == Signal::KILL
            && let Some(cgroups) = &mut self.cgroups
            && cgroups.contains(&name)
        {
            // Everything in its cgroup, whichever process group it is in now.
            cgroups.kill(&name);
        }
    }

    /// `run`'s main process exited: for a service in a cgroup, kill what is
    /// left there and report `GroupEmpty` now if it is empty already, or
    /// later from the watch (`on_cgroup_event`, `cgroup_deadlines`).
    fn clear_cgroup(&mut self, service: ServiceId, run: RunId) -> Vec<Event> {
        let Some(s) = self.sup.get(service).filter(|s| s.behaviour.contained) else {
            return Vec::new();
        };
        let name = s.name().to_string();
        let now = self.clock.std_now;
        // Without cgroups (it cannot happen for a contained service): empty.
        let empty = match &mut self.cgroups {
            Some(cgroups) => cgroups.drain(service, &name, run, now),
            None => true,
        };
        if empty {
            vec![Event::GroupEmpty { service, run }]
        } else {
            Vec::new()
        }
    }

    /// The cgroup watch fired: report the runs whose cgroup is now empty.
    pub(super) fn on_cgroup_event(&mut self) {
        let empty = match &mut self.cgroups {
            Some(cgroups) => cgroups.on_event(),
            None => Vec::new(),
        };
        for (service, run) in empty {
            self.feed(Event::GroupEmpty { service, run });
        }
    }

    /// Kill rounds due (kernels without `cgroup.kill`); report what emptied.
    pub(super) fn cgroup_deadlines(&mut self) {
        let now = self.clock.std_now;
        let empty = match &mut self.cgroups {
            Some(cgroups) => cgroups.handle_deadlines(now),
            None => Vec::new(),
        };
        for (service, run) in empty {
            self.feed(Event::GroupEmpty { service, run });
        }
    }

    /// Start a check attempt (exec, tcp, http, grpc: the probe runner answers,
    /// at once or later) or start watching for readiness (log). `notify` and
    /// `fd` need nothing here: the notify socket is open while the service is
    /// defined, the readiness pipe since the spawn.
    fn probe(&mut self, service: ServiceId, run: RunId, role: Role) -> Vec<Event> {
        let Some(spec) = self.spec_of(service) else {
            return Vec::new();
        };
        let probe = match role {
            Role::Readiness => spec.readiness.as_deref().cloned(),
            Role::Liveness => spec
                .liveness
                .as_ref()
                .map(|l| Readiness::Check(l.check.clone())),
        };
        match probe {
            Some(Readiness::Log { pattern }) => {
                let io = self.io.entry(service).or_default();
                io.pattern = Some((run, pattern));
                Vec::new()
            }
            Some(Readiness::Check(check)) => {
                let order = Order {
                    service,
                    run,
                    role,
                    spec: &spec,
                    check: &check,
                };
                let now = self.now();
                let registry = self.poll.registry();
                self.probes.start(registry, &mut self.tokens, now, order);
                self.probes.take_results()
            }
            Some(Readiness::Notify { .. } | Readiness::Fd { .. }) | None => Vec::new(),
        }
    }

    fn transitioned(&mut self, t: &Transition) -> Vec<Event> {
        let line = Change(t).to_string();
        match t.to {
            StateName::Failed => error!("{line}"),
            StateName::Restarting => warn!("{line}"),
            StateName::Pending
            | StateName::Starting
            | StateName::Running
            | StateName::Stopping
            | StateName::Stopped => info!("{line}"),
        }
        Vec::new()
    }

    fn note(&mut self, note: &Note) {
        let name = |id: &ServiceId| {
            self.sup
                .get(*id)
                .map(|s| s.name().to_string())
                .unwrap_or_default()
        };
        match note {
            Note::NotifyRejected { service, pid } => {
                // Rate-limited: a stranger flooding the socket must not flood the log.
                let name = name(service);
                self.notify.rejected(&name, Some(pid.0), self.clock.std_now);
            }
            Note::NotifyStopping { service } => info!("{}: says it is stopping", name(service)),
            Note::MainPid { service, pid } => {
                info!("{}: main process is now pid {}", name(service), pid.0)
            }
            Note::MainPidRejected { service, pid } => warn!(
                "{}: ignored MAINPID={}: not in the service's process group",
                name(service),
                pid.0
            ),
            Note::LeftBehind { service } => warn!(
                "{}: processes are left in its cgroup after SIGKILL and timeout_stop; going on",
                name(service)
            ),
            Note::Reloaded(plan) => info!("reload: {}", plan.summary()),
            Note::Terminating { again: false } => info!("termination signal: shutting down"),
            Note::Terminating { again: true } => {
                warn!("second termination signal: killing what is left")
            }
        }
    }

    /// A removed service is gone: close what it held, remove its cgroup.
    fn forget(&mut self, service: ServiceId) {
        self.probes.forget(service);
        self.verify.forget(service);
        if let Some(cgroups) = &mut self.cgroups {
            cgroups.forget(service);
        }
        if let Some(io) = self.io.remove(&service) {
            for token in io.pipes {
                self.close_pipe(token);
            }
        }
        self.readiness.close_service(self.poll.registry(), service);
        self.forget_notify(service);
    }
}

/// `last_error` text of a service, for status and answers.
pub(super) fn last_error(service: &crate::machine::Service) -> Option<String> {
    service.last_error.as_ref().map(|f| Problem(f).to_string())
}
