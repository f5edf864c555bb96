#![allow(clippy::wildcard_enum_match_arm)]

//! Test fixtures for the core: service specs with SPEC defaults and a harness that
//! plays the shell with a fake clock and fake pids.

use super::{Action, Event, ExitStatus, Instant, Pid, RunId, ServiceId, StateName, Supervisor};
use crate::config::{Condition, Config, Dependency, ServiceSpec, Signal};

/// A longrun service with every SPEC §2 default.
pub fn spec(name: &str) -> ServiceSpec {
    ServiceSpec::new(name, vec!["/bin/sleep".into(), "1000".into()])
}

/// A oneshot with the oneshot defaults.
pub fn oneshot(name: &str) -> ServiceSpec {
    ServiceSpec::oneshot(name, vec!["/bin/sleep".into(), "1000".into()])
}

pub fn dep(service: &str, condition: Condition) -> Dependency {
    Dependency {
        service: service.to_string(),
        condition,
    }
}

pub fn config(services: Vec<ServiceSpec>) -> Config {
    Config::new(services)
}

/// Plays the shell: a fake clock, pids from a counter, every `Spawn` answered
/// with `Spawned` at once (as the real shell does), and every action kept.
pub struct Harness {
    pub sup: Supervisor,
    pub now: Instant,
    next_pid: i32,
    /// Every action since the last `take()`, `Spawn`s included.
    pub actions: Vec<Action>,
    /// Names whose spawn should fail.
    pub unspawnable: Vec<String>,
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        Harness {
            sup: Supervisor::new(&config, 42),
            now: Instant::ZERO,
            next_pid: 100,
            actions: Vec::new(),
            unspawnable: Vec::new(),
        }
    }

    pub fn start(config: Config) -> Harness {
        let mut h = Harness::new(config);
        let actions = h.sup.start(h.now);
        h.run(actions);
        h
    }

    /// Execute actions, answering spawns, until none are left.
    pub fn run(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            if let Action::Spawn { service, run } = action {
                let name = self.name(service);
                let event = if self.unspawnable.contains(&name) {
                    Event::SpawnFailed {
                        service,
                        run,
                        error: "No such file or directory (os error 2)".into(),
                    }
                } else {
                    self.next_pid += 1;
                    Event::Spawned {
                        service,
                        run,
                        pid: Pid(self.next_pid),
                    }
                };
                queue.extend(self.sup.handle(event, self.now));
            }
            self.actions.push(action);
        }
    }

    pub fn event(&mut self, event: Event) {
        let actions = self.sup.handle(event, self.now);
        self.run(actions);
    }

    /// Move the fake clock to `ms` and fire what is due.
    pub fn at(&mut self, ms: u64) {
        self.now = Instant::from_millis(ms);
        let actions = self.sup.handle_deadlines(self.now);
        self.run(actions);
    }

    /// Advance to the next deadline, if any, and fire it.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let at = self.sup.poll_deadline()?;
        self.now = at.max(self.now);
        let actions = self.sup.handle_deadlines(self.now);
        self.run(actions);
        Some(at)
    }

    pub fn id(&self, name: &str) -> ServiceId {
        self.sup.find(name).expect("NOTE(unwrap): test names exist")
    }

    pub fn name(&self, id: ServiceId) -> String {
        self.sup
            .get(id)
            .map(|s| s.name().to_string())
            .unwrap_or_default()
    }

    pub fn state(&self, name: &str) -> StateName {
        self.sup
            .get(self.id(name))
            .map(|s| s.state.name())
            .expect("NOTE(unwrap): test names exist")
    }

    pub fn pid(&self, name: &str) -> Option<Pid> {
        self.sup.get(self.id(name)).and_then(|s| s.state.pid())
    }

    pub fn run_id(&self, name: &str) -> RunId {
        self.sup
            .get(self.id(name))
            .and_then(|s| s.state.run())
            .expect("NOTE(unwrap): the test expects a run")
    }

    /// The current run of `name` exits with `status`.
    pub fn exit(&mut self, name: &str, status: ExitStatus) {
        let service = self.id(name);
        let run = self.run_id(name);
        self.event(Event::Exited {
            service,
            run,
            status,
        });
    }

    pub fn take_spawned(&mut self) -> Vec<String> {
        let actions = self.take();
        self.spawned(&actions)
    }

    pub fn take_signals(&mut self) -> Vec<(String, Signal)> {
        let actions = self.take();
        self.signals(&actions)
    }

    pub fn request_stop(&mut self, name: &str) {
        let service = self.id(name);
        self.event(Event::StopRequested { service });
    }

    pub fn request_start(&mut self, name: &str) {
        let service = self.id(name);
        self.event(Event::StartRequested { service });
    }

    pub fn request_restart(&mut self, name: &str) {
        let service = self.id(name);
        self.event(Event::RestartRequested { service });
    }

    /// Take the actions recorded so far.
    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Names of services spawned among `actions`, in order.
    pub fn spawned(&self, actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn { service, .. } => Some(self.name(*service)),
                _ => None,
            })
            .collect()
    }

    /// (name, signal) of every signal among `actions`, in order.
    pub fn signals(&self, actions: &[Action]) -> Vec<(String, Signal)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Signal {
                    service, signal, ..
                } => Some((self.name(*service), *signal)),
                _ => None,
            })
            .collect()
    }

    pub fn exit_action(actions: &[Action]) -> Option<i32> {
        actions.iter().find_map(|a| match a {
            Action::Exit { code } => Some(*code),
            _ => None,
        })
    }
}
