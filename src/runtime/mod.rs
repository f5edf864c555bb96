//! The I/O shell: one thread, one `mio::Poll`, every fd and pid tend owns.
//!
//! The loop sleeps in `epoll_wait` until a signal, a service's output, a control
//! client, a metrics scraper, a check attempt's socket or pipe, or the
//! earliest deadline (the core's: backoff, stop and readiness timeouts, check
//! attempts; the control and metrics servers'; the probes' attempt timeouts;
//! the log files' retries) wakes it; with nothing due it blocks with no
//! timeout. It reads the clock once per turn, feeds facts to the core
//! (`machine::Supervisor`) and carries out the actions it returns
//! (`actions.rs`). It decides nothing: not whether to restart, not how long to
//! wait, not what to stop first, not when a client's request is done.
//!
//! One turn, in order: signals (drain the self-pipe → reap every exited child,
//! draining its pipes, notify socket and readiness pipe before reporting the
//! exit; a probe command's exit goes to the probe runner) → output pipes marked
//! readable, probe sockets and pipes → notify sockets and readiness pipes
//! (`notify.rs`, `readyfd.rs`) → control clients and metrics scrapes
//! (`metrics.rs`) → the probes' timeouts → a few ms of `sha256` hashing
//! for spawns that wait on it (`verify.rs`) → the core's deadlines → the other
//! deadlines (servers, notify rejection counts, tend's own watchdog ping) →
//! tend's `STATUS=` upward (`upward.rs`), if its counts changed → a re-exec
//! whose check passed (`reexec/`), as the turn's very last step. Pipes and
//! sockets are edge-triggered, so one with data left (read budget spent, or the
//! log congested) stays on its `ready` list.
//!
//! Read first: [`Runtime::run`], `actions.rs`, [`Runtime::reap`].

pub mod catalog;
pub mod cgroup;
pub mod control;
pub mod launch;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod probes;
pub mod reexec;
pub mod render;
pub mod ring;
pub mod sampler;
pub mod signals;
pub mod spawn;
pub mod status;
pub mod tokens;
pub mod upward;
pub mod usage;
pub mod verify;

mod actions;
mod pipes;
mod readyfd;
mod requests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::config::Config;
use crate::logging::LogSink;
use crate::machine::{Event, Instant, Pid, RequestId, RunId, ServiceId, Settings, Supervisor};
use crate::sys;
use catalog::Catalog;
use control::{ClientId, ControlServer};
use launch::LaunchPlans;
use notify::NotifySockets;
use output::Pipe;
use probes::Probes;
use readyfd::ReadinessPipes;
use ring::{LineCounter, LogRing};
use signals::Signals;
use tokens::{SIGNALS, Tokens};

/// Bytes read from one pipe per turn before others get theirs.
const READ_BUDGET: usize = 512 * 1024;

/// Why `tend run` could not start.
#[derive(Debug)]
pub enum RunError {
    Setup(&'static str, io::Error),
    Control(control::ControlError),
    Metrics(metrics::BindError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Setup(what, e) => write!(f, "unable to {what}: {e}"),
            RunError::Control(e) => write!(f, "{e}"),
            RunError::Metrics(e) => write!(f, "{e}"),
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
    /// The `log` readiness pattern, while the core wants it watched for `run`.
    pattern: Option<(RunId, String)>,
    /// Output lines and failed probes, for the metrics.
    counters: metrics::Counters,
}

/// A process the shell reports the exit of.
#[derive(Debug, Clone, Copy)]
struct Child {
    service: ServiceId,
    run: RunId,
}

/// A client request the core will answer.
struct Pending {
    client: ClientId,
    services: Vec<ServiceId>,
}

/// A status request waiting for the sweep of resource use (`sampler.rs`).
struct Parked {
    client: ClientId,
    services: Vec<ServiceId>,
    /// Answered then with the figures there are, if the sweep is not done;
    /// `None`: when it is.
    until: Option<Instant>,
}

/// The clock, read once per loop turn.
struct Clock {
    base: std::time::Instant,
    /// The Unix time (ms) at `base`.
    wall_start_ms: u64,
    /// This turn's time, as the core counts it and as std does.
    now: Instant,
    std_now: std::time::Instant,
    /// Unix time (seconds) at `base`: turns the core's times into wall-clock
    /// times for the metrics without reading the wall clock again.
    unix_base: f64,
}

impl Clock {
    fn new() -> Clock {
        let base = std::time::Instant::now();
        let unix_base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Clock {
            base,
            wall_start_ms: ring::now_ms(),
            now: Instant::ZERO,
            std_now: base,
            unix_base,
        }
    }

    fn tick(&mut self) {
        self.std_now = std::time::Instant::now();
        self.now = Instant::from_since_start(self.std_now.saturating_duration_since(self.base));
    }
}

/// The shell: owns the poll, the children, the pipes and the control socket.
pub struct Runtime {
    poll: Poll,
    tokens: Tokens,
    sup: Supervisor,
    clock: Clock,
    signals: Signals,
    config_path: PathBuf,
    config: Config,
    catalog: Catalog,
    /// Processes whose exit the core wants to hear about, by pid. A pid leaves
    /// when it is reaped.
    children: HashMap<i32, Child>,
    spawner: spawn::Spawner,
    /// Each service's launch plan, resolved once per definition.
    launch: LaunchPlans,
    pipes: HashMap<Token, Pipe>,
    /// Pipes that may have data without a new edge coming.
    ready: VecDeque<Token>,
    io: HashMap<ServiceId, ServiceIo>,
    control: Option<ControlServer>,
    metrics: Option<metrics::MetricsServer>,
    log: LogSink,
    scratch: Box<[u8]>,
    exit: Option<i32>,
    /// Events raised while carrying out actions (readiness seen in output).
    pending_events: Vec<Event>,
    /// Requests waiting for the core's answer.
    requests: HashMap<RequestId, Pending>,
    /// Services' resource use, measured in slices between events.
    sampler: sampler::Sampler,
    /// Status requests waiting for the sampler's sweep.
    parked: Vec<Parked>,
    next_request: u64,
    /// Numbers output lines across services, for `tend logs` (see `ring`).
    line_counter: LineCounter,
    /// Service cgroups, when the `cgroup` setting could be set up (SPEC §10).
    cgroups: Option<cgroup::Cgroups>,
    /// What the setup has to say, logged after the start banner.
    startup_lines: cgroup::Lines,
    /// Check attempts in flight (exec, tcp, http, grpc).
    probes: Probes,
    /// The notify sockets of services with `notify` readiness.
    notify: NotifySockets,
    /// The readiness pipes of services with `fd` readiness.
    readiness: ReadinessPipes,
    /// tend's own `NOTIFY_SOCKET`, if it has one.
    upward: upward::Upward,
    /// Checksums of services' programs: known digests, hashes under way.
    verify: verify::Verifier<ServiceId>,
    /// `RLIMIT_NOFILE` as tend found it (services get it back), as (soft,
    /// hard); a re-exec hands it on, since the new image finds it raised.
    nofile: Option<(u64, u64)>,
    /// `tend reexec`: tend's binary, and a re-exec under way.
    reexec: reexec::ReExec,
}

impl Runtime {
    /// Set everything up: poll, signal pipe, log, control socket. Nothing starts yet.
    pub fn new(
        config_path: &Path,
        config: Config,
        signals: Signals,
        mut log: LogSink,
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
        let metrics = match config.metrics_address {
            Some(address) => Some(
                metrics::MetricsServer::bind(address, poll.registry(), &mut tokens)
                    .map_err(RunError::Metrics)?,
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
        let nofile = sys::raise_nofile();
        let nofile_pair = nofile.map(|r| (r.rlim_cur, r.rlim_max));
        let spawner =
            spawn::Spawner::new(nofile).map_err(|e| RunError::Setup("prepare spawning", e))?;
        let probes = Probes::new(nofile).map_err(|e| RunError::Setup("prepare probes", e))?;
        let mut startup_lines = cgroup::Lines::new();
        let cgroups = config.cgroup.as_ref().and_then(|setting| {
            let registry = poll.registry();
            cgroup::Cgroups::setup(
                setting,
                &config.services,
                registry,
                &mut tokens,
                &mut startup_lines,
            )
        });
        let env = |name: &str| std::env::var_os(name);
        let notify = NotifySockets::new(notify::default_dir(
            &env,
            sys::effective_uid(),
            std::process::id(),
        ));
        let (upward_settings, problems) = upward::Settings::from_env(&env, std::process::id());
        for problem in problems {
            warn!("{problem}");
        }
        let clock = Clock::new();
        let upward = upward::Upward::new(upward_settings, clock.std_now);
        let mut catalog = Catalog::default();
        let defs = match &cgroups {
            Some(c) => catalog.update(&config, |name| c.contains(name)),
            None => catalog.update(&config, |_| false),
        };
        let mut launch = LaunchPlans::new(catalog.specs(), Some(notify.dir()));
        if let Some(c) = &cgroups {
            launch.set_cgroups(c.procs_paths());
        }
        log.configure(&config);
        let sup = Supervisor::new(defs, settings(&config), seed());
        // The definitions live in the catalog from here on: no second copy.
        let mut config = config;
        config.services = Vec::new();
        // Only load messages name places (`services[3] (web)`): a String per
        // service is not kept for the process's life.
        config.places = Vec::new();
        Ok(Runtime {
            poll,
            tokens,
            sup,
            clock,
            signals,
            config_path: config_path.to_path_buf(),
            config,
            catalog,
            children: HashMap::new(),
            spawner,
            launch,
            pipes: HashMap::new(),
            ready: VecDeque::new(),
            io: HashMap::new(),
            control,
            metrics,
            log,
            scratch: vec![0u8; 256 * 1024].into_boxed_slice(),
            exit: None,
            pending_events: Vec::new(),
            requests: HashMap::new(),
            sampler: sampler::Sampler::default(),
            parked: Vec::new(),
            next_request: 1,
            line_counter: LineCounter::default(),
            cgroups,
            startup_lines,
            probes,
            notify,
            readiness: ReadinessPipes::default(),
            upward,
            verify: verify::Verifier::default(),
            nofile: nofile_pair,
            reexec: reexec::ReExec::new(),
        })
    }

    /// This turn's time.
    fn now(&self) -> Instant {
        self.clock.now
    }

    /// Supervise until the core orders the exit; returns the exit code.
    pub fn run(mut self) -> i32 {
        info!(
            "tend {} starting {} services from {}",
            env!("CARGO_PKG_VERSION"),
            self.sup.services().count(),
            self.config_path.display()
        );
        if let Some(control) = &self.control {
            info!("control socket at {}", control.path().display());
        }
        if let Some(metrics) = &self.metrics {
            info!("metrics at http://{}/metrics", metrics.local_addr());
        }
        for w in &self.config.warnings {
            warn!("{}: {w}", self.config_path.display());
        }
        for (level, line) in std::mem::take(&mut self.startup_lines) {
            log::log!(level, "{line}");
        }
        self.clock.tick();
        // Children may predate us (exec'ed into by a shell): reap them now.
        self.reap();
        // Every notify socket exists before the first spawn.
        self.sync_notify();
        let actions = self.sup.start(self.now());
        self.execute(actions);
        self.report_upward();
        self.serve()
    }

    /// The loop, until the core orders the exit (or tend re-executes).
    fn serve(mut self) -> i32 {
        let mut events = Events::with_capacity(256);
        while self.exit.is_none() {
            self.log.flush();
            let timeout = self.timeout();
            let polled = self.poll.poll(&mut events, timeout);
            self.clock.tick();
            if let Err(e) = polled {
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
            self.log.handle_deadlines(self.clock.std_now);
            self.probes.handle_deadlines(self.now());
            self.feed_probe_results();
            self.pump_notify();
            self.verify_turn();
            let actions = self.sup.handle_deadlines(self.now());
            self.execute(actions);
            self.cgroup_deadlines();
            if let Some(control) = &mut self.control {
                let registry = self.poll.registry();
                control.handle_deadlines(registry, &mut self.tokens, self.clock.std_now);
            }
            self.metrics_deadlines();
            self.sample();
            self.notify.handle_deadlines(self.clock.std_now);
            self.upward.handle_deadlines(self.clock.std_now);
            self.reexec_deadlines();
            self.report_upward();
            self.reexec_if_due();
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
        if let Some(cgroups) = &mut self.cgroups {
            cgroups.remove_all();
        }
        self.probes.abandon_all();
        info!("tend exiting with code {code}");
        drop(self.control.take());
        self.notify.close_all(self.poll.registry());
        self.log.flush_blocking(Duration::from_secs(5));
        code
    }

    /// How long the poll may sleep: until the earliest deadline, or not at all
    /// while output is waiting to be read, or forever when nothing is due.
    fn timeout(&self) -> Option<Duration> {
        if (!self.ready.is_empty() && !self.log.is_congested()) || self.log.has_more() {
            return Some(Duration::ZERO);
        }
        if self.notify.has_ready()
            || self.readiness.has_ready()
            || self.sampler.is_sweeping()
            || self.verify.has_work()
        {
            return Some(Duration::ZERO);
        }
        let now = self.now();
        let core = self.sup.poll_deadline().map(|at| at.saturating_since(now));
        let std_deadline = |at: Option<std::time::Instant>| {
            at.map(|at| at.saturating_duration_since(self.clock.std_now))
        };
        let shell = [
            self.control.as_ref().and_then(|c| c.poll_deadline()),
            self.cgroups.as_ref().and_then(|c| c.poll_deadline()),
            self.log.poll_deadline(),
            self.notify.poll_deadline(),
            self.upward.poll_deadline(),
            self.reexec.poll_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let probes = self
            .probes
            .poll_deadline()
            .map(|at| at.saturating_since(now));
        [core, std_deadline(shell), self.metrics_timeout(), probes]
            .into_iter()
            .flatten()
            .min()
    }

    /// Tell tend's own supervisor the summary, if it changed this turn.
    fn report_upward(&mut self) {
        if !self.upward.is_active() {
            return;
        }
        let summary = upward::summary(&self.sup);
        self.upward.status(&summary);
    }

    fn dispatch(&mut self, event: &mio::event::Event) {
        let token = event.token();
        if token == SIGNALS {
            return self.on_signals();
        }
        if self.pipes.contains_key(&token) {
            return self.enqueue(token);
        }
        if self.metrics.as_ref().is_some_and(|m| m.owns(token)) {
            return self.on_metrics_event(event);
        }
        if self.cgroups.as_ref().is_some_and(|c| c.owns(token)) {
            return self.on_cgroup_event();
        }
        if self.probes.owns(token) {
            let registry = self.poll.registry();
            self.probes.handle_event(registry, &mut self.tokens, token);
            return self.feed_probe_results();
        }
        if self.notify.owns(token) {
            return self.notify.readable(token);
        }
        if self.readiness.owns(token) {
            return self.readiness.readable(token);
        }
        let is_control = self.control.as_ref().is_some_and(|c| c.owns(token));
        if is_control {
            let requests = match &mut self.control {
                Some(c) => c.handle_event(
                    self.poll.registry(),
                    &mut self.tokens,
                    event,
                    self.clock.std_now,
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
            self.feed(Event::Terminate);
        }
        if arrived.reexec {
            self.request_reexec(None);
        }
        if arrived.hangup {
            // Log files first (logrotate renamed them), so that what the
            // reload says lands in the new ones.
            self.log.reopen();
            info!(
                "SIGHUP: log files reopened; reloading {}",
                self.config_path.display()
            );
            self.reload(None);
        }
    }

    /// Reap every exited child. SIGCHLDs coalesce, so loop until none is left.
    /// A child the core knows is reported before it is reaped: the core may
    /// signal its process group, which its zombie keeps from being reused.
    fn reap(&mut self) {
        loop {
            let (pid, status) = match sys::peek_exited() {
                Ok(Some(exited)) => exited,
                Ok(None) => return,
                Err(e) => {
                    debug!("waitid: {e}");
                    return;
                }
            };
            match self.children.get(&pid).copied() {
                Some(child) => {
                    self.on_exit(child, pid, status);
                    self.children.remove(&pid);
                }
                // A probe command: its result (if still wanted) goes to the core.
                None if self.probes.exited(pid, status) => self.feed_probe_results(),
                None if self.reexec_exited(pid, status) => {}
                None => debug!("reaped orphan {pid} ({})", render::Status(status)),
            }
            // waitid just said it exited; never spin if the kernel disagrees.
            match sys::reap(pid) {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    debug!("waitpid({pid}): {e}");
                    return;
                }
            }
        }
    }

    /// A watched process is gone: its last lines and notify messages first,
    /// then the exit.
    fn on_exit(&mut self, child: Child, pid: i32, status: crate::machine::ExitStatus) {
        let tokens: Vec<Token> = self
            .io
            .get(&child.service)
            .map(|io| io.pipes.iter().copied().collect())
            .unwrap_or_default();
        for token in tokens {
            if self.pipes.get(&token).is_some_and(|p| p.run == child.run) {
                self.read_pipe(token, usize::MAX, true);
            }
        }
        self.drain_notify(child.service);
        self.feed(Event::Exited {
            service: child.service,
            run: child.run,
            pid: Pid(pid),
            status,
        });
    }

    /// Hand one event to the core and carry out what it says.
    fn feed(&mut self, event: Event) {
        self.count_fact(&event);
        let actions = self.sup.handle(event, self.now());
        self.execute(actions);
    }

    /// Hand the probe runner's results to the core.
    fn feed_probe_results(&mut self) {
        for event in self.probes.take_results() {
            self.feed(event);
        }
    }

    /// Re-read the config and hand the difference to the core; on problems
    /// keep running as is. `request`: the client that asked, if any.
    fn reload(&mut self, request: Option<(RequestId, ClientId)>) {
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
                if let Some((_, client)) = request {
                    self.reply_invalid_config(client, problems);
                }
                return;
            }
        };
        log::set_max_level(crate::logging::effective_level(config.log_level));
        for w in &config.warnings {
            warn!("reload: {w}");
        }
        self.rebind_control(&config);
        self.rebind_metrics(&config);
        if config.cgroup != self.config.cgroup {
            warn!("reload: a changed \"cgroup\" takes effect when tend next starts");
        }
        let services = match &mut self.cgroups {
            Some(cgroups) => {
                cgroups.update(&config.services);
                // Services this reload removes: their cgroups go when the core
                // forgets them (`Action::Forget`).
                let wanted: HashSet<&str> = config.services.iter().map(|s| &*s.name).collect();
                for service in self.sup.services() {
                    if !wanted.contains(service.name()) {
                        cgroups.removing(service.id, service.name());
                    }
                }
                self.launch.set_cgroups(cgroups.procs_paths());
                self.catalog.update(&config, |name| cgroups.contains(name))
            }
            None => self.catalog.update(&config, |_| false),
        };
        self.launch.update(self.catalog.specs());
        self.log.configure(&config);
        let mut config = config;
        config.services = Vec::new(); // in the catalog
        config.places = Vec::new(); // as in `Runtime::new`
        let settings = settings(&config);
        self.config = config;
        // New services' sockets exist before the core may spawn them.
        self.sync_notify();
        let command = crate::machine::Command::Reload(Box::new(crate::machine::Reload {
            services,
            settings,
        }));
        if let Some((id, client)) = request {
            let services = Vec::new();
            self.requests.insert(id, Pending { client, services });
        }
        self.feed(Event::Command {
            request: request.map(|(id, _)| id),
            command,
        });
        self.sync_notify();
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

/// The top-level settings the core decides on.
fn settings(config: &Config) -> Settings {
    Settings {
        shutdown_timeout: config.shutdown_timeout,
        exit_when_idle: config.exit_when_idle,
    }
}

/// The control socket path of a config: its `control_socket`, else the default;
/// `None` when disabled with `""`.
pub fn resolve_socket(config: &Config) -> Option<PathBuf> {
    crate::paths::configured_socket(config)
}

/// A seed for the backoff jitter; it needs to differ between runs, not be secret.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
/// Memory per service is a promise (README "Bounded memory": about 1.4 KiB
/// each beyond the pipes): the per-service structures must not grow back
/// unnoticed. Raise a bound only with a reason in the commit.
#[cfg(test)]
#[test]
fn per_service_structures_stay_small() {
    use std::mem::size_of;
    assert!(size_of::<crate::config::ServiceSpec>() <= 352);
    assert!(size_of::<crate::machine::Service>() <= 536);
    assert!(size_of::<launch::LaunchPlan>() <= 152);
}
