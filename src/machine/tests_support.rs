#![allow(clippy::wildcard_enum_match_arm)]

//! Test fixtures for the core: service specs with SPEC defaults and a harness
//! that plays the shell with a fake clock and fake pids.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::config::{Condition, Config, Dependency, ServiceSpec};

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

use crate::config::Signal;

/// Some valid service id, for tests that need one.
pub fn some_id() -> ServiceId {
    let h = Harness::new(config(vec![spec("x")]));
    h.id("x")
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
    /// The newest definition of each name, with its revision (the shell's
    /// catalog, in miniature).
    defs: HashMap<String, (ServiceSpec, u64)>,
    next_revision: u64,
    next_request: u64,
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        let mut h = Harness {
            sup: Supervisor::new(Vec::new(), settings(&config), 42),
            now: Instant::ZERO,
            next_pid: 100,
            actions: Vec::new(),
            unspawnable: Vec::new(),
            defs: HashMap::new(),
            next_revision: 0,
            next_request: 0,
        };
        let defs = h.definitions(&config);
        h.sup = Supervisor::new(defs, settings(&config), 42);
        h
    }

    pub fn start(config: Config) -> Harness {
        Harness::start_with(config, |_| {})
    }

    /// Start with each definition adjusted by `tweak` (for behaviour the
    /// config cannot express yet, or to test the core alone).
    pub fn start_with(config: Config, tweak: impl Fn(&mut Definition)) -> Harness {
        let mut h = Harness::new(config.clone());
        let mut defs = h.definitions(&config);
        defs.iter_mut().for_each(tweak);
        h.sup = Supervisor::new(defs, settings(&config), 42);
        let actions = h.sup.start(h.now);
        h.run(actions);
        h
    }

    /// Definitions for the core, with revisions as the shell assigns them.
    pub fn definitions(&mut self, config: &Config) -> Vec<Definition> {
        let mut defs = Vec::new();
        for spec in &config.services {
            let revision = match self.defs.get(&spec.name) {
                Some((old, revision)) if old == spec => *revision,
                _ => {
                    self.next_revision += 1;
                    self.next_revision
                }
            };
            self.defs
                .insert(spec.name.clone(), (spec.clone(), revision));
            defs.push(Definition {
                name: Arc::from(spec.name.as_str()),
                revision,
                behaviour: Behaviour::of(spec),
            });
        }
        defs
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

    pub fn service(&self, name: &str) -> &Service {
        self.sup
            .get(self.id(name))
            .expect("NOTE(unwrap): test names exist")
    }

    pub fn state(&self, name: &str) -> StateName {
        self.service(name).state.name()
    }

    pub fn pid(&self, name: &str) -> Option<Pid> {
        self.service(name).state.pid()
    }

    pub fn run_id(&self, name: &str) -> RunId {
        self.service(name)
            .state
            .run()
            .expect("NOTE(unwrap): the test expects a run")
    }

    /// The current run of `name` exits with `status`.
    pub fn exit(&mut self, name: &str, status: ExitStatus) {
        let service = self.id(name);
        let run = self.run_id(name);
        let pid = self
            .pid(name)
            .expect("NOTE(unwrap): the test expects a pid");
        self.event(Event::Exited {
            service,
            run,
            pid,
            status,
        });
    }

    /// The readiness fd or log pattern of `name`'s current run fired.
    pub fn ready(&mut self, name: &str) {
        let (service, run) = (self.id(name), self.run_id(name));
        self.event(Event::Ready { service, run });
    }

    pub fn probe(&mut self, name: &str, role: Role, ok: bool) {
        let (service, run) = (self.id(name), self.run_id(name));
        let message = if ok { "ok" } else { "connection refused" }.to_string();
        self.event(Event::ProbeResult {
            service,
            run,
            role,
            ok,
            message,
        });
    }

    pub fn notify(&mut self, name: &str, from: Sender, notice: Notice) {
        let service = self.id(name);
        self.event(Event::Notified {
            service,
            from,
            notice,
        });
    }

    /// A command without waiting.
    pub fn command(&mut self, command: Command) {
        self.event(Event::Command {
            request: None,
            command,
        });
    }

    /// A command whose answer is wanted; returns its request id.
    pub fn ask(&mut self, command: Command) -> RequestId {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.event(Event::Command {
            request: Some(request),
            command,
        });
        request
    }

    pub fn request_stop(&mut self, name: &str) {
        let services = vec![self.id(name)];
        self.command(Command::Stop {
            services,
            wait: false,
        });
    }

    pub fn request_start(&mut self, name: &str) {
        let services = vec![self.id(name)];
        self.command(Command::Start {
            services,
            wait: false,
        });
    }

    pub fn request_restart(&mut self, name: &str) {
        let services = vec![self.id(name)];
        self.command(Command::Restart {
            services,
            wait: false,
        });
    }

    pub fn shutdown(&mut self) {
        self.command(Command::Shutdown);
    }

    /// Apply a new config; returns what the reload did.
    pub fn reload(&mut self, config: Config) -> ReloadPlan {
        let services = self.definitions(&config);
        let reload = Reload {
            services,
            settings: settings(&config),
        };
        let request = self.ask(Command::Reload(Box::new(reload)));
        let mut plan = ReloadPlan::default();
        self.actions.retain(|a| match a {
            Action::Answer {
                request: r,
                answer: Answer::Reloaded(p),
            } if *r == request => {
                plan = p.clone();
                false
            }
            _ => true,
        });
        plan
    }

    /// Take the actions recorded so far.
    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    pub fn take_spawned(&mut self) -> Vec<String> {
        let actions = self.take();
        self.spawned(&actions)
    }

    pub fn take_signals(&mut self) -> Vec<(String, Signal)> {
        let actions = self.take();
        self.signals(&actions)
    }

    /// The answers among the recorded actions (taking them; the other
    /// actions stay recorded).
    pub fn answers(&mut self) -> Vec<(RequestId, Answer)> {
        let mut answers = Vec::new();
        self.actions.retain(|a| match a {
            Action::Answer { request, answer } => {
                answers.push((*request, answer.clone()));
                false
            }
            _ => true,
        });
        answers
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

    /// (name, signal) of every signal among `actions`, in order (not the
    /// clearing of a group after an exit).
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

pub fn settings(config: &Config) -> Settings {
    Settings {
        shutdown_timeout: config.shutdown_timeout,
        exit_when_idle: config.exit_when_idle,
    }
}
