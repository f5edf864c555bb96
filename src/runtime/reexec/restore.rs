//! The new process's side of `tend reexec` (`tend run --resume FD`): read the
//! snapshot, take over the fds it lists, and rebuild the runtime from it
//! without binding or spawning anything.
//!
//! Order matters. [`load`] runs first thing in `main`, before anything opens
//! an fd: then every fd the snapshot names is one the old process left open
//! for this one (checked: open, listed once, of the kind it names). Signals
//! are blocked across the exec, so the handlers `main` installs next get
//! whatever arrived meanwhile. [`Runtime::resume`] rebuilds; then
//! [`Runtime::run_resumed`] re-arms the checks whose attempt went with the
//! old process, starts again the cgroup drains under way, reaps the children
//! that exited during the exec (their exits are handled by policy), answers
//! the clients that asked for the re-exec, and runs the loop.
//!
//! Must not: go back. A snapshot this binary cannot use fails loudly here
//! (`reexec-check` in the old process is what keeps that from happening).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use log::{debug, info, warn};
use mio::unix::SourceFd;
use mio::unix::pipe::Receiver;
use mio::{Interest, Poll, Token};

use super::ReExec;
use super::snapshot::Snapshot;
use crate::config::Config;
use crate::logging::LogSink;
use crate::machine::{Action, Event, Instant, RequestId, State, Supervisor};
use crate::protocol::Reply;
use crate::runtime::catalog::Catalog;
use crate::runtime::cgroup::Cgroups;
use crate::runtime::control::ControlServer;
use crate::runtime::launch::LaunchPlans;
use crate::runtime::metrics::{Counters, MetricsServer};
use crate::runtime::notify::NotifySockets;
use crate::runtime::output::Pipe;
use crate::runtime::probes::Probes;
use crate::runtime::readyfd::ReadinessPipes;
use crate::runtime::ring::{LineCounter, LogRing};
use crate::runtime::signals::Signals;
use crate::runtime::spawn::Spawner;
use crate::runtime::tokens::Tokens;
use crate::runtime::{Child, Clock, Pending, Runtime, ServiceIo, upward};
use crate::sys;
use crate::sys::exec::{adopt_inherited, fd_kind, monotonic};

/// Largest snapshot read (a thousand services make about 200 KiB, plus what
/// their `tend logs` rings hold).
const MAX_SNAPSHOT: u64 = 1 << 30;

/// A snapshot read and checked, and the fds it lists, taken over.
pub struct Resumed {
    snapshot: Snapshot,
    fds: HashMap<RawFd, OwnedFd>,
}

impl Resumed {
    /// The config the old process ran.
    pub fn config(&self) -> &Config {
        &self.snapshot.config
    }
}

/// Read the snapshot on `fd` (the `--resume` argument), check it, and take
/// over every fd it lists. Call first thing in the process (see the module
/// doc); `Err` says why the state cannot be used.
pub fn load(fd: &str) -> Result<Resumed, String> {
    let fd: RawFd = fd
        .parse()
        .map_err(|_| format!("--resume needs an fd number, got {fd:?}"))?;
    let memfd = adopt_inherited(&[fd])
        .map_err(|(fd, e)| format!("the snapshot's fd {fd} is not usable: {e}"))?
        .pop()
        .ok_or("no snapshot fd")?;
    let mut file = std::fs::File::from(memfd);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| (&mut file).take(MAX_SNAPSHOT).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the snapshot: {e}"))?;
    drop(file);
    let snapshot = Snapshot::decode(&bytes)?;
    drop(bytes);
    snapshot.check()?;
    let listed = snapshot.fds();
    let numbers: Vec<RawFd> = listed.iter().map(|(n, _)| *n).collect();
    if numbers.contains(&fd) {
        return Err(format!("the snapshot lists its own fd {fd}"));
    }
    let owned = adopt_inherited(&numbers)
        .map_err(|(fd, e)| format!("fd {fd} of the snapshot was not handed over: {e}"))?;
    for (fd, kind) in &listed {
        let found = fd_kind(*fd).map_err(|e| format!("fd {fd}: {e}"))?;
        if found != *kind {
            return Err(format!(
                "fd {fd} is a {found:?}, the snapshot says {kind:?}"
            ));
        }
    }
    Ok(Resumed {
        snapshot,
        fds: numbers.into_iter().zip(owned).collect(),
    })
}

impl Runtime {
    /// The runtime of the old process, from `resumed`. `log` is installed at
    /// the snapshot's config's level and format; its unwritten output goes
    /// out first. On `Err` the log has been written out as far as it could.
    pub fn resume(resumed: Resumed, signals: Signals, mut log: LogSink) -> Result<Runtime, String> {
        let Resumed {
            mut snapshot,
            mut fds,
        } = resumed;
        // The log first: what the old process could not write yet is older
        // than anything this one says.
        log.configure(&snapshot.config);
        log.adopt(std::mem::take(&mut snapshot.log), true);
        match build(snapshot, &mut fds, signals, log) {
            Ok(runtime) => {
                for (fd, _) in fds {
                    warn!("fd {fd} was handed over but not used; closed");
                }
                Ok(runtime)
            }
            Err((why, mut log)) => {
                log::error!("cannot resume after re-exec: {why}");
                log.flush_blocking(Duration::from_secs(2));
                Err(why)
            }
        }
    }

    /// After [`Runtime::resume`]: catch up with what happened during the
    /// exec, answer the `reexec` clients, and supervise until the exit.
    pub fn run_resumed(mut self) -> i32 {
        self.clock.tick();
        let now = self.now();
        info!(
            "re-executed: tend {} (pid {}) took over {} services; the exec took {} ms",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            self.sup.services().count(),
            self.reexec.took.unwrap_or_default().as_millis()
        );
        self.sup.rearm_checks(now);
        self.restart_drains();
        self.spawn_unanswered();
        // Children that exited during the exec: their exits now, by policy.
        self.reap();
        self.sync_notify();
        let message = format!(
            "re-executed: tend {} (pid {})",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        );
        let reply = Reply {
            message: Some(message),
            ..Reply::ok()
        };
        for client in std::mem::take(&mut self.reexec.requesters) {
            if let Some(control) = &mut self.control {
                control.reply(self.poll.registry(), client, &reply);
            }
        }
        self.report_upward();
        self.serve()
    }

    /// Runs the old process had not spawned yet (waiting for their program's
    /// `sha256` to be hashed): the hash went with it, so spawn them again
    /// (hashed anew before they start).
    fn spawn_unanswered(&mut self) {
        let again: Vec<Action> = self
            .sup
            .services()
            .filter_map(|s| match s.state {
                State::Spawning { run, .. } => Some(Action::Spawn { service: s.id, run }),
                _ => None,
            })
            .collect();
        if !again.is_empty() {
            self.execute(again);
        }
    }

    /// Drains under way in the old process start again: what is left in the
    /// cgroup is killed (again) and its emptiness watched by this process.
    fn restart_drains(&mut self) {
        let draining: Vec<_> = self
            .sup
            .services()
            .filter(|s| s.behaviour.contained)
            .filter_map(|s| match s.state {
                State::Draining { run, .. } => Some((s.id, s.name().to_string(), run)),
                _ => None,
            })
            .collect();
        let now = self.clock.std_now;
        for (service, name, run) in draining {
            let empty = match &mut self.cgroups {
                Some(cgroups) => cgroups.drain(service, &name, run, now),
                None => true,
            };
            if empty {
                self.feed(Event::GroupEmpty { service, run });
            }
        }
    }
}

type Built = Result<Runtime, (String, Box<LogSink>)>;

/// Everything but the log, from the snapshot; each fd is claimed from `fds`.
fn build(
    snapshot: Snapshot,
    fds: &mut HashMap<RawFd, OwnedFd>,
    mut signals: Signals,
    log: LogSink,
) -> Built {
    macro_rules! attempt {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Err((e.to_string(), Box::new(log))),
            }
        };
    }
    let Snapshot {
        version: _,
        tend,
        exe,
        argv0,
        config_path,
        config,
        revisions,
        next_revision,
        core,
        clock,
        next_token,
        nofile,
        children,
        pipes,
        services,
        readiness,
        notify,
        control,
        metrics,
        cgroups,
        requests,
        next_request,
        reexec_clients,
        line_counter,
        log: _,
        probe_pids,
        usage,
    } = snapshot;
    debug!("resuming the state of tend {tend}");
    let mut claim = |fd: RawFd| {
        fds.remove(&fd)
            .ok_or_else(|| format!("fd {fd} is named twice in the snapshot"))
    };
    let poll = attempt!(Poll::new().map_err(|e| format!("cannot create the event loop: {e}")));
    attempt!(signals.register(poll.registry()));
    let mut tokens = Tokens::starting_at(next_token);
    let std_now = std::time::Instant::now();
    let control = match control {
        Some(c) => Some(attempt!(ControlServer::adopt(
            c,
            &mut claim,
            poll.registry(),
            &mut tokens,
            std_now
        ))),
        None => None,
    };
    let metrics = match metrics {
        Some(m) => Some(attempt!(MetricsServer::adopt(
            m,
            &mut claim,
            poll.registry(),
            &mut tokens
        ))),
        None => None,
    };
    let log_token = tokens.next();
    if let Some(fd) = log.watch_fd() {
        let _ = poll
            .registry()
            .register(&mut SourceFd(&fd), log_token, Interest::WRITABLE);
    }
    let raised = sys::raise_nofile();
    let nofile_at_start = nofile.map(|(cur, max)| libc::rlimit {
        rlim_cur: cur as libc::rlim_t,
        rlim_max: max as libc::rlim_t,
    });
    let nofile_at_start = nofile_at_start.or(raised);
    let spawner = attempt!(Spawner::new(nofile_at_start));
    let probes = attempt!(Probes::new(nofile_at_start));
    let cgroups = match cgroups {
        Some(c) => Some(attempt!(Cgroups::adopt(c, poll.registry(), &mut tokens))),
        None => None,
    };
    let notify = attempt!(NotifySockets::adopt(notify, &mut claim, poll.registry()));
    let readiness = attempt!(ReadinessPipes::adopt(
        readiness,
        &mut claim,
        poll.registry()
    ));
    // Plans are resolved at each service's next spawn, not now: a thousand
    // services' PATH searches would hold up the answer to `tend reexec`.
    let mut launch = LaunchPlans::new(&[], Some(notify.dir()));
    if let Some(c) = &cgroups {
        launch.set_cgroups(c.procs_paths());
    }
    let catalog = attempt!(Catalog::restore(&config, &revisions, next_revision));
    // The definitions live in the catalog from here on, as in `Runtime::new`.
    let mut config = config;
    config.services = Vec::new();
    config.places = Vec::new();
    let sup = attempt!(Supervisor::restore(core, &|name, revision| {
        catalog.behaviour(name, revision)
    }));
    // The core's time goes on from the old process's, the exec included.
    let gap = monotonic().saturating_sub(clock.monotonic);
    let took = gap;
    let std_now = std::time::Instant::now();
    let since_start = clock.elapsed.saturating_add(gap);
    let clock = Clock {
        base: std_now.checked_sub(since_start).unwrap_or(std_now),
        wall_start_ms: clock.wall_start_ms,
        now: Instant::from_since_start(since_start),
        std_now,
        unix_base: clock.unix_base,
    };
    let env = |name: &str| std::env::var_os(name);
    let (upward_settings, _) = upward::Settings::from_env(&env, std::process::id());
    // A watchdog ping at once: the old process's last one may be almost a
    // period ago, and the exec must not make tend look hung.
    let every = upward_settings.ping_every.unwrap_or_default();
    let period_ago = clock.std_now.checked_sub(every).unwrap_or(clock.std_now);
    let upward = upward::Upward::new(upward_settings, period_ago);
    let mut pipe_map = HashMap::with_capacity(pipes.len());
    for p in pipes {
        let token = Token(p.token);
        let mut receiver = Receiver::from(attempt!(claim(p.fd)));
        attempt!(
            receiver
                .set_nonblocking(true)
                .and_then(|()| poll
                    .registry()
                    .register(&mut receiver, token, Interest::READABLE))
                .map_err(|e| format!("cannot watch an output pipe: {e}"))
        );
        // Output that came during the exec needs no read here: registering
        // an fd that is readable already queues its event (epoll_ctl(2) ADD
        // polls it), so the first turn reads it, as it does an EOF.
        let pipe = Pipe::resume(p.service, p.run, p.stream, receiver, &p.unfinished.0);
        pipe_map.insert(token, pipe);
    }
    let mut io: HashMap<_, ServiceIo> = HashMap::with_capacity(services.len());
    for s in services {
        let ring = attempt!(LogRing::restore(s.ring));
        io.insert(
            s.service,
            ServiceIo {
                ring,
                pipes: VecDeque::new(),
                pattern: s.pattern,
                counters: Counters {
                    log_lines: s.log_lines,
                    probe_failures: s.probe_failures,
                },
            },
        );
    }
    // Each service's pipes, oldest first: tokens are handed out in order.
    let mut in_order: Vec<(Token, crate::machine::ServiceId)> =
        pipe_map.iter().map(|(t, p)| (*t, p.service)).collect();
    in_order.sort_unstable();
    for (token, service) in in_order {
        io.entry(service).or_default().pipes.push_back(token);
    }
    let children: HashMap<i32, Child> = children
        .into_iter()
        .map(|(pid, service, run)| (pid, Child { service, run }))
        .collect();
    let requests: HashMap<RequestId, Pending> = requests
        .into_iter()
        .map(|(id, client, services)| {
            let client = Token(client);
            (id, Pending { client, services })
        })
        .collect();
    // Their attempts went with the old process; nothing of them outlives it.
    for pid in probe_pids {
        let _ = sys::kill_group(pid, libc::SIGKILL);
    }
    let mut reexec = ReExec::resumed(Ok(exe), OsString::from_vec(argv0.0));
    reexec.requesters = reexec_clients.into_iter().map(Token).collect();
    reexec.took = Some(took);
    let nofile = nofile.or(raised.map(|r| (r.rlim_cur, r.rlim_max)));
    Ok(Runtime {
        poll,
        tokens,
        sup,
        clock,
        signals,
        config_path,
        config,
        catalog,
        children,
        spawner,
        launch,
        pipes: pipe_map,
        ready: VecDeque::new(),
        io,
        control,
        metrics,
        log,
        scratch: vec![0u8; 256 * 1024].into_boxed_slice(),
        exit: None,
        pending_events: Vec::new(),
        requests,
        next_request,
        line_counter: LineCounter::starting_at(line_counter),
        cgroups,
        startup_lines: Vec::new(),
        probes,
        notify,
        readiness,
        upward,
        nofile,
        reexec,
        sampler: crate::runtime::sampler::Sampler::adopt(usage),
        parked: Vec::new(),
        verify: crate::runtime::verify::Verifier::default(),
    })
}
