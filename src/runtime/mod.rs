//! The I/O shell: one thread, one `mio::Poll`, every fd and pid tend owns.
//!
//! The loop sleeps in `epoll_wait` until a signal, a service's output, a control
//! client or the earliest deadline of the core (backoff, stop timeout, readiness
//! timeout) wakes it; with nothing due it blocks with no timeout. It feeds facts
//! to the core (`machine::Supervisor`) and carries out the actions it returns. It
//! never decides policy: whether to restart, how long to wait, what to stop first.
//!
//! One wakeup, in order: signals (drain the self-pipe → reap every exited child,
//! draining its pipes before reporting the exit) → output pipes marked readable →
//! control clients → the core's deadlines. Pipes are edge-triggered, so a pipe
//! with data left (read budget spent, or the log congested) stays in `ready`.
//!
//! Read first: [`Runtime::run`], [`Runtime::execute`], [`Runtime::reap`].

pub mod control;
pub mod launch;
pub mod output;
pub mod ring;
pub mod signals;
pub mod spawn;
pub mod status;
pub mod tokens;

mod requests;
mod waiters;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};
use mio::unix::SourceFd;
use mio::unix::pipe::Receiver;
use mio::{Events, Interest, Poll, Token};

use crate::config::{Config, OutputMode, Probe, ServiceSpec, Signal};
use crate::logging::LogSink;
use crate::machine::{
    Action, Event, ExitStatus, Instant, Pid, RunId, ServiceId, State, Supervisor, Transition,
};
use crate::sys;
use control::ControlServer;
use launch::LaunchPlans;
use output::{Lines, Pipe, ReadEnd, Stream};
use ring::LogRing;
use signals::Signals;
use spawn::Spawned;
use tokens::{SIGNALS, Tokens};

/// Bytes read from one pipe per turn before others get theirs.
const READ_BUDGET: usize = 512 * 1024;
/// Requested capacity of each output pipe (the kernel may grant less).
const PIPE_SIZE: i32 = 256 * 1024;
/// Old runs' pipes kept open per service (orphans may hold them); beyond this the
/// oldest is closed.
const MAX_LINGERING_PIPES: usize = 8;

/// Why `tend run` could not start.
#[derive(Debug)]
pub enum RunError {
    Setup(&'static str, io::Error),
    Control(control::ControlError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Setup(what, e) => write!(f, "unable to {what}: {e}"),
            RunError::Control(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Per-service I/O state the core does not need.
#[derive(Default)]
struct ServiceIo {
    ring: LogRing,
    /// Open output pipes, oldest first (the current run's and lingering ones).
    pipes: VecDeque<Token>,
}

/// A live main process of a service.
struct Child {
    service: ServiceId,
    run: RunId,
}

/// The shell: owns the poll, the children, the pipes and the control socket.
pub struct Runtime {
    poll: Poll,
    tokens: Tokens,
    sup: Supervisor,
    clock_base: std::time::Instant,
    signals: Signals,
    config_path: PathBuf,
    config: Config,
    /// Live main processes by pid. A pid leaves when reaped.
    children: HashMap<i32, Child>,
    spawner: spawn::Spawner,
    /// Each service's launch plan, resolved once per definition.
    launch: LaunchPlans,
    pipes: HashMap<Token, Pipe>,
    /// Pipes that may have data without a new edge coming.
    ready: VecDeque<Token>,
    io: Vec<ServiceIo>,
    control: Option<ControlServer>,
    log: LogSink,
    scratch: Box<[u8]>,
    exit: Option<i32>,
    /// Events raised while executing actions (readiness seen in output).
    pending_events: Vec<Event>,
    /// Clients waiting for their start/stop/restart to settle.
    waiters: Vec<waiters::Waiter>,
    /// A service changed state since the waiters were last checked.
    states_changed: bool,
}

impl Runtime {
    /// Set everything up: poll, signal pipe, log, control socket. Nothing starts yet.
    pub fn new(
        config_path: &Path,
        config: Config,
        signals: Signals,
        log: LogSink,
    ) -> Result<Runtime, RunError> {
        let poll = Poll::new().map_err(|e| RunError::Setup("create the event loop", e))?;
        let mut signals = signals;
        signals
            .register(poll.registry())
            .map_err(|e| RunError::Setup("watch signals", e))?;
        let mut tokens = Tokens::default();
        let control = match resolve_socket(&config) {
            Some(path) => Some(
                ControlServer::bind(&path, poll.registry(), &mut tokens)
                    .map_err(RunError::Control)?,
            ),
            None => None,
        };
        let log_token = tokens.next();
        if let Some(fd) = log.watch_fd() {
            // Edge-triggered WRITABLE: an event each time stderr can take more.
            let _ = poll
                .registry()
                .register(&mut SourceFd(&fd), log_token, Interest::WRITABLE);
        }
        let spawner = spawn::Spawner::new(sys::raise_nofile())
            .map_err(|e| RunError::Setup("prepare spawning", e))?;
        let launch = LaunchPlans::new(&config.services);
        let seed = seed();
        let sup = Supervisor::new(&config, seed);
        let io = (0..config.services.len())
            .map(|_| ServiceIo::default())
            .collect();
        Ok(Runtime {
            poll,
            tokens,
            sup,
            clock_base: std::time::Instant::now(),
            signals,
            config_path: config_path.to_path_buf(),
            config,
            children: HashMap::new(),
            spawner,
            launch,
            pipes: HashMap::new(),
            ready: VecDeque::new(),
            io,
            control,
            log,
            scratch: vec![0u8; 256 * 1024].into_boxed_slice(),
            exit: None,
            pending_events: Vec::new(),
            waiters: Vec::new(),
            states_changed: false,
        })
    }

    fn now(&self) -> Instant {
        Instant::from_since_start(self.clock_base.elapsed())
    }

    /// Supervise until the core orders the exit; returns the exit code.
    pub fn run(mut self) -> i32 {
        info!(
            "tend {} starting {} services from {}",
            env!("CARGO_PKG_VERSION"),
            self.config.services.len(),
            self.config_path.display()
        );
        if let Some(control) = &self.control {
            info!("control socket at {}", control.path().display());
        }
        // Children may predate us (exec'ed into by a shell): reap them now.
        self.reap();
        let actions = self.sup.start(self.now());
        self.execute(actions);
        let mut events = Events::with_capacity(256);
        while self.exit.is_none() {
            self.log.flush();
            let timeout = self.timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue; // deadlines are absolute; just go round
                }
                error!("event loop failed: {e}");
                return 1;
            }
            for event in events.iter() {
                self.dispatch(event);
            }
            self.pump_output();
            let now = self.now();
            let actions = self.sup.handle_deadlines(now);
            self.execute(actions);
            let now = std::time::Instant::now();
            self.answer_waiters(now);
            if let Some(control) = &mut self.control {
                control.handle_deadlines(self.poll.registry(), &mut self.tokens, now);
            }
        }
        let code = self.exit.unwrap_or(0);
        self.finish(code)
    }

    /// After the exit order: last output, last log lines, remove the socket.
    fn finish(mut self, code: i32) -> i32 {
        let tokens: Vec<Token> = self.pipes.keys().copied().collect();
        for token in tokens {
            self.read_pipe(token, READ_BUDGET, true);
        }
        info!("tend exiting with code {code}");
        drop(self.control.take());
        self.log.flush_blocking(Duration::from_secs(5));
        code
    }

    /// How long the poll may sleep: until the earliest deadline, or not at all
    /// while output is waiting to be read, or forever when nothing is due.
    fn timeout(&mut self) -> Option<Duration> {
        if !self.ready.is_empty() && !self.log.is_congested() {
            return Some(Duration::ZERO);
        }
        let now = self.now();
        let core = self.sup.poll_deadline().map(|at| at.saturating_since(now));
        let control = self
            .control
            .as_ref()
            .and_then(|c| c.poll_deadline())
            .into_iter()
            .chain(self.waiters.iter().map(|w| w.deadline))
            .min()
            .map(|at| at.saturating_duration_since(std::time::Instant::now()));
        match (core, control) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn dispatch(&mut self, event: &mio::event::Event) {
        let token = event.token();
        if token == SIGNALS {
            return self.on_signals();
        }
        if self.pipes.contains_key(&token) {
            return self.enqueue(token);
        }
        let is_control = self.control.as_ref().is_some_and(|c| c.owns(token));
        if is_control {
            let requests = match &mut self.control {
                Some(c) => c.handle_event(
                    self.poll.registry(),
                    &mut self.tokens,
                    event,
                    std::time::Instant::now(),
                ),
                None => Vec::new(),
            };
            for (client, request) in requests {
                self.handle_request(client, request);
            }
        }
        // Anything else (the log fd's WRITABLE, a stale token): the next turn
        // flushes the log and resumes reading.
    }

    fn on_signals(&mut self) {
        let arrived = self.signals.drain();
        if arrived.child {
            self.reap();
        }
        for _ in 0..arrived.terminate.min(2) {
            if self.sup.is_shutting_down() {
                warn!("second termination signal: killing what is left");
            } else {
                info!("termination signal: shutting down");
            }
            self.feed(Event::TerminationSignaled);
        }
        if arrived.hangup {
            info!("SIGHUP: reloading {}", self.config_path.display());
            let _ = self.reload();
        }
    }

    /// Reap every exited child. SIGCHLDs coalesce, so loop until none is left.
    fn reap(&mut self) {
        loop {
            let pid = match sys::peek_exited() {
                Ok(Some(pid)) => pid,
                Ok(None) => return,
                Err(e) => {
                    debug!("waitid: {e}");
                    return;
                }
            };
            let owner = self.children.remove(&pid);
            if owner.is_some() {
                // Reaped or not, its pid must not be signalled by us any more.
                // The zombie still holds the group id, so this cannot hit a
                // reused pid: whatever the service left behind goes with it.
                let _ = sys::kill_group(pid, libc::SIGKILL);
            }
            let status = match sys::reap(pid) {
                Ok(Some(status)) => status,
                // waitid just said it exited; never spin if the kernel disagrees.
                Ok(None) => return,
                Err(e) => {
                    debug!("waitpid({pid}): {e}");
                    return;
                }
            };
            match owner {
                Some(child) => self.on_exit(child.service, child.run, status),
                None => debug!(
                    "reaped orphan {pid} ({})",
                    crate::machine::describe_exit(status)
                ),
            }
        }
    }

    /// A service's main process is gone: its last lines first, then the exit.
    fn on_exit(&mut self, service: ServiceId, run: RunId, status: ExitStatus) {
        let tokens: Vec<Token> = self
            .io
            .get(service.0)
            .map(|io| io.pipes.iter().copied().collect())
            .unwrap_or_default();
        for token in tokens {
            if self.pipes.get(&token).is_some_and(|p| p.run == run) {
                self.read_pipe(token, usize::MAX, true);
            }
        }
        self.feed(Event::Exited {
            service,
            run,
            status,
        });
    }

    /// Hand one event to the core and carry out what it says.
    fn feed(&mut self, event: Event) {
        let now = self.now();
        let actions = self.sup.handle(event, now);
        self.execute(actions);
    }

    /// Carry out the core's orders; spawns answer with events at once, and their
    /// actions are carried out in turn.
    fn execute(&mut self, actions: Vec<Action>) {
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
                    pgid,
                    signal,
                } => {
                    self.signal(service, run, pgid, signal);
                    Vec::new()
                }
                Action::Transitioned(t) => {
                    log_transition(&t);
                    self.states_changed = true;
                    self.on_transition(&t);
                    Vec::new()
                }
                Action::Forget { service } => {
                    if let Some(io) = self.io.get_mut(service.0) {
                        io.ring = LogRing::default();
                    }
                    Vec::new()
                }
                Action::Exit { code } => {
                    self.exit = Some(code);
                    Vec::new()
                }
            };
            let now = self.now();
            for event in events.into_iter().chain(self.pending_events.drain(..)) {
                queue.extend(self.sup.handle(event, now));
            }
        }
    }

    /// After a service became `starting`: probes tend cannot run yet count as
    /// passed at once, so the service is not held back (README says which).
    fn on_transition(&mut self, t: &Transition) {
        if t.to != crate::machine::StateName::Starting {
            return;
        }
        let Some(service) = self.sup.get(t.service) else {
            return;
        };
        let (Some(probe), Some(run)) = (&service.spec.readiness, service.state.run()) else {
            return;
        };
        if service.is_oneshot() {
            return;
        }
        match probe {
            Probe::Log { .. } => {}
            Probe::Notify { .. }
            | Probe::Fd { .. }
            | Probe::Exec { .. }
            | Probe::Tcp { .. }
            | Probe::Http { .. } => {
                warn!(
                    "{}: this readiness type is not supported yet; treating the service as ready",
                    t.name
                );
                self.pending_events.push(Event::BecameReady {
                    service: t.service,
                    run,
                });
            }
        }
    }

    /// Spawn these runs (in order, concurrently where the spawner can); one
    /// event each.
    fn spawn_all(&mut self, runs: &[(ServiceId, RunId)]) -> Vec<Event> {
        let specs: Vec<Option<&ServiceSpec>> = runs
            .iter()
            .map(|(service, _)| self.sup.get(*service).map(|s| &s.spec))
            .collect();
        let known: Vec<&ServiceSpec> = specs.iter().flatten().copied().collect();
        let mut results = self.launch.spawn_all(&mut self.spawner, &known).into_iter();
        let outcomes: Vec<Option<Result<Spawned, String>>> = specs
            .iter()
            .map(|spec| {
                let spec = (*spec)?;
                let result = results.next()?;
                Some(result.map_err(|e| {
                    error!("{}: cannot spawn {:?}: {e}", spec.name, spec.command);
                    e.to_string()
                }))
            })
            .collect();
        runs.iter()
            .zip(outcomes)
            .map(|(&(service, run), outcome)| match outcome {
                Some(Ok(child)) => self.spawned(service, run, child),
                Some(Err(error)) => Event::SpawnFailed {
                    service,
                    run,
                    error,
                },
                None => Event::SpawnFailed {
                    service,
                    run,
                    error: "unknown service".into(),
                },
            })
            .collect()
    }

    /// Take a new child in: its pid and its output pipes.
    fn spawned(&mut self, service: ServiceId, run: RunId, child: Spawned) -> Event {
        self.children.insert(child.pid, Child { service, run });
        if let Some(out) = child.stdout {
            self.add_pipe(service, run, Stream::Stdout, Receiver::from(out));
        }
        if let Some(err) = child.stderr {
            self.add_pipe(service, run, Stream::Stderr, Receiver::from(err));
        }
        Event::Spawned {
            service,
            run,
            pid: Pid(child.pid),
        }
    }

    fn add_pipe(&mut self, service: ServiceId, run: RunId, stream: Stream, mut rx: Receiver) {
        // A larger pipe lets a chatty service write on while tend is busy, and
        // halves the wakeups on both sides; it only costs memory when used.
        sys::grow_pipe(rx.as_raw_fd(), PIPE_SIZE);
        if let Err(e) = rx.set_nonblocking(true) {
            warn!("cannot make an output pipe non-blocking: {e}");
            return;
        }
        let token = self.tokens.next();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut rx, token, Interest::READABLE)
        {
            warn!("cannot watch an output pipe: {e}");
            return;
        }
        while self.io.len() <= service.0 {
            self.io.push(ServiceIo::default());
        }
        let lingering = match self.io.get_mut(service.0) {
            Some(io) => {
                io.pipes.push_back(token);
                io.pipes.len() > MAX_LINGERING_PIPES + 2
            }
            None => false,
        };
        self.pipes
            .insert(token, Pipe::new(service, run, stream, rx));
        if lingering {
            let oldest = self
                .io
                .get_mut(service.0)
                .and_then(|io| io.pipes.pop_front());
            if let Some(old) = oldest {
                warn!("closing an output pipe of an old run held open by a leftover process");
                self.close_pipe(old);
            }
        }
    }

    fn close_pipe(&mut self, token: Token) {
        if let Some(mut pipe) = self.pipes.remove(&token) {
            let _ = self.poll.registry().deregister(&mut pipe.receiver);
            if let Some(io) = self.io.get_mut(pipe.service.0) {
                io.pipes.retain(|t| *t != token);
            }
        }
        // A stale token left on `ready` is skipped: tokens are never reused.
    }

    fn signal(&mut self, service: ServiceId, run: RunId, pgid: Pid, signal: Signal) {
        // The core never orders a signal after the exit; check anyway, because a
        // pid that has been reaped may belong to someone else by now.
        let ours = self
            .children
            .get(&pgid.0)
            .is_some_and(|c| c.service == service && c.run == run);
        if !ours {
            debug!("not signalling {}: already reaped", pgid.0);
            return;
        }
        let name = self
            .sup
            .get(service)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        if signal == Signal::KILL {
            warn!("{name}: sending SIGKILL to process group {}", pgid.0);
        } else if signal != Signal::CONT {
            info!("{name}: sending {signal} to process group {}", pgid.0);
        }
        if let Err(e) = sys::kill_group(pgid.0, signal.0) {
            debug!("{name}: kill({}, {signal}): {e}", -pgid.0);
        }
    }

    /// Put a pipe with data on the `ready` list, once (a flag, not a search:
    /// constant time however many pipes are busy).
    fn enqueue(&mut self, token: Token) {
        if let Some(pipe) = self.pipes.get_mut(&token)
            && !pipe.queued
        {
            pipe.queued = true;
            self.ready.push_back(token);
        }
    }

    /// Read the pipes known to have data, round-robin, each up to its budget,
    /// while the log can take more.
    fn pump_output(&mut self) {
        let mut turns = self.ready.len();
        while turns > 0 && !self.log.is_congested() {
            turns -= 1;
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            if let Some(pipe) = self.pipes.get_mut(&token) {
                pipe.queued = false;
            }
            if self.read_pipe(token, READ_BUDGET, false) == ReadEnd::Budget {
                self.enqueue(token);
            }
            if self.log.backlog() > crate::logging::HIGH_WATER / 2 {
                self.log.flush();
            }
        }
        let now = self.now();
        let events: Vec<Event> = self.pending_events.drain(..).collect();
        for event in events {
            let actions = self.sup.handle(event, now);
            self.execute(actions);
        }
    }

    /// Read one pipe; at EOF close it. `at_exit`: reading the last output of an
    /// exited run, which must not wait for the log to drain.
    fn read_pipe(&mut self, token: Token, budget: usize, at_exit: bool) -> ReadEnd {
        let Some(mut pipe) = self.pipes.remove(&token) else {
            return ReadEnd::Drained;
        };
        let service = pipe.service;
        let stream = pipe.stream;
        let result = {
            let mut sink = LineSink {
                sup: &self.sup,
                log: &mut self.log,
                io: &mut self.io,
                control: &mut self.control,
                registry: self.poll.registry(),
                events: &mut self.pending_events,
                service,
                run: pipe.run,
                stream,
            };
            sink.log.refresh_clock();
            pipe.read(budget, &mut self.scratch, &mut |lines| sink.lines(lines))
        };
        self.pipes.insert(token, pipe);
        let end = match result {
            Ok(end) => end,
            Err(e) => {
                debug!("reading output: {e}");
                ReadEnd::Eof
            }
        };
        if end == ReadEnd::Eof {
            self.close_pipe(token);
        } else if at_exit && end == ReadEnd::Budget {
            self.enqueue(token);
        }
        end
    }

    /// Re-read the config and apply the difference; on problems keep running as is.
    fn reload(&mut self) -> Result<crate::machine::reload::ReloadPlan, Vec<String>> {
        let config = match crate::config::load(&self.config_path) {
            Ok(config) => config,
            Err(errors) => {
                let problems: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
                error!(
                    "reload: {} is invalid; keeping the running config",
                    self.config_path.display()
                );
                for p in &problems {
                    error!("reload: {p}");
                }
                return Err(problems);
            }
        };
        log::set_max_level(crate::logging::effective_level(config.log_level));
        if config.log_file != self.config.log_file
            && let Err(e) = self.log.set_file(config.log_file.as_deref())
        {
            warn!("cannot open log_file: {e}");
        }
        self.rebind_control(&config);
        let now = self.now();
        let (plan, actions) = self.sup.reload(&config, now);
        info!("reload: {}", plan.summary());
        self.launch.update(&config.services);
        self.config = config;
        self.execute(actions);
        Ok(plan)
    }

    /// Move the control socket if the config names another path.
    fn rebind_control(&mut self, config: &Config) {
        let wanted = resolve_socket(config);
        let current = self.control.as_ref().map(|c| c.path().to_path_buf());
        if wanted == current {
            return;
        }
        let Some(path) = wanted else {
            info!("control socket closed");
            self.control = None; // unlinks the old path
            return;
        };
        let registry = self.poll.registry();
        let result = match &mut self.control {
            // Clients stay connected; if the new path fails, the old one serves on.
            Some(server) => server.move_to(&path, registry, &mut self.tokens),
            None => ControlServer::bind(&path, registry, &mut self.tokens)
                .map(|server| self.control = Some(server)),
        };
        match result {
            Ok(()) => info!("control socket moved to {}", path.display()),
            Err(e) => error!("{e}; the control socket stays where it was"),
        }
    }
}

/// Where a service's output lines go: the log, its ring, followers, and the
/// `log` readiness check.
struct LineSink<'a> {
    sup: &'a Supervisor,
    log: &'a mut LogSink,
    io: &'a mut Vec<ServiceIo>,
    control: &'a mut Option<ControlServer>,
    registry: &'a mio::Registry,
    events: &'a mut Vec<Event>,
    service: ServiceId,
    run: RunId,
    stream: Stream,
}

impl LineSink<'_> {
    fn lines(&mut self, lines: Lines<'_>) {
        let Some(service) = self.sup.get(self.service) else {
            return;
        };
        if service.spec.output == OutputMode::Log {
            let level = match self.stream {
                Stream::Stdout => log::Level::Info,
                Stream::Stderr => service.spec.stderr_level,
            };
            self.log.service_lines(level, service.name(), lines);
        }
        if let Some(io) = self.io.get_mut(self.service.0) {
            io.ring.push(self.stream, lines);
        }
        if let Some(control) = self.control.as_mut().filter(|c| c.has_followers()) {
            for text in lines.iter() {
                let line = crate::protocol::LogLine {
                    stream: self.stream.as_str().to_string(),
                    line: text.into_owned(),
                };
                control.push_line(self.registry, service.name(), &line);
            }
        }
        if let (Some(Probe::Log { pattern }), State::Starting { run, .. }) =
            (&service.spec.readiness, &service.state)
            && *run == self.run
            && lines.iter().any(|text| text.contains(pattern.as_str()))
        {
            self.events.push(Event::BecameReady {
                service: self.service,
                run: self.run,
            });
        }
    }
}

fn log_transition(t: &Transition) {
    let pid = t.pid.map(|p| format!(" (pid {})", p.0)).unwrap_or_default();
    let why = if t.why.is_empty() {
        String::new()
    } else {
        format!(": {}", t.why)
    };
    let line = format!("{}: {} -> {}{pid}{why}", t.name, t.from, t.to);
    match t.to {
        crate::machine::StateName::Failed => error!("{line}"),
        crate::machine::StateName::Restarting => warn!("{line}"),
        _ => info!("{line}"),
    }
}

/// The control socket path of a config: its `control_socket`, else the default;
/// `None` when disabled with `""`.
pub fn resolve_socket(config: &Config) -> Option<PathBuf> {
    match &config.control_socket {
        Some(path) if path.as_os_str().is_empty() => None,
        Some(path) => Some(path.clone()),
        None => Some(crate::cli::default_control_socket(&|k| std::env::var_os(k))),
    }
}

/// A seed for the backoff jitter; it needs to differ between runs, not be secret.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
