//! The probe runner: `exec`, `tcp`, `http` and `grpc` check attempts (SPEC §4),
//! run inside the one event loop with non-blocking sockets, child processes
//! and deadlines. Never a thread, never a blocking call, no DNS.
//!
//! The core decides when an attempt is due (`Action::Probe`) and what a result
//! means; this module carries one attempt out and answers with exactly one
//! `Event::ProbeResult`, unless the core abandons it first
//! (`Action::CancelProbe`), which reports nothing. At most one attempt is in
//! flight per (service, role): a new one replaces an old one silently.
//!
//! Each attempt has its `timeout` in an ordered deadline set ([`Deadlines`],
//! keyed by attempt), so firing costs O(log n) per deadline and nothing is
//! scanned per turn; an idle tend with probes wakes only at the core's attempt
//! times (which fall on a 10 ms grid, so many services' attempts coalesce), at
//! these timeouts, and when a socket or pipe has news. When a timeout passes
//! the attempt fails with a message that says how far it got, its socket is
//! closed, and a probe command's whole process group gets SIGKILL.
//!
//! Probe commands are reaped by the runtime's reap loop, which routes their
//! pids here ([`Probes::exited`]) before reaping them: their process group is
//! then SIGKILLed while the zombie still holds the group id, so nothing a probe
//! started outlives it. A killed probe's exit reports nothing more.
//!
//! The runtime's side: [`Probes::start`] for `Action::Probe`, [`Probes::cancel`]
//! for `Action::CancelProbe`, [`Probes::forget`] for `Action::Forget`,
//! [`Probes::handle_event`] for tokens it [`owns`](Probes::owns),
//! [`Probes::exited`] in the reap loop, [`Probes::poll_deadline`] in the poll
//! timeout and [`Probes::handle_deadlines`] once per turn; results are taken
//! with [`Probes::take_results`] and fed to the core.
//!
//! Read first: [`Probes::start`], then `socket.rs` and `exec.rs`.

mod exec;
mod socket;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use mio::{Interest, Registry, Token};

use super::tokens::Tokens;
use crate::config::{Check, CheckKind, ServiceSpec};
use crate::machine::time::human;
use crate::machine::{Deadlines, Event, ExitStatus, Instant, Role, RunId, ServiceId};
use exec::{Launcher, Tail};
use socket::{Conversation, Turn};

pub use exec::TAIL;

/// Bytes read from one probe command's pipe per event before others get
/// their turn (the rest is read at the end of the turn).
const READ_BUDGET: usize = 64 * 1024;

/// A check of a service: at most one attempt of each is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub service: ServiceId,
    pub role: Role,
}

/// One attempt ordered by the core (`Action::Probe`).
pub struct Order<'a> {
    pub service: ServiceId,
    pub run: RunId,
    pub role: Role,
    /// The service's newest definition (exec probes run as it would).
    pub spec: &'a Arc<ServiceSpec>,
    pub check: &'a Check,
}

/// Attempts are numbered, never reused: the key of their deadline.
type AttemptId = u64;

struct Attempt {
    key: Key,
    run: RunId,
    timeout: Duration,
    work: Work,
}

enum Work {
    /// tcp, http, grpc. `decided`: the result is reported and the socket is
    /// only being read to EOF.
    Socket {
        token: Option<Token>,
        conversation: Conversation,
        decided: bool,
    },
    Exec {
        pid: i32,
        command: Arc<[String]>,
        token: Token,
        /// `None` once the pipe reached EOF.
        output: Option<mio::unix::pipe::Receiver>,
        tail: Tail,
    },
}

/// Every check attempt in flight; see the module doc.
pub struct Probes {
    attempts: HashMap<AttemptId, Attempt>,
    by_key: HashMap<Key, AttemptId>,
    by_token: HashMap<Token, AttemptId>,
    by_pid: HashMap<i32, AttemptId>,
    /// Probe commands killed (timed out, cancelled) and not reaped yet.
    abandoned: HashSet<i32>,
    deadlines: Deadlines<AttemptId>,
    next_id: AttemptId,
    launcher: Launcher,
    /// Probe pipes with data left after their read budget.
    busy: Vec<AttemptId>,
    /// Failed attempts per check since tend started.
    // LEAD: `tend_probe_failures_total{service, role}` reads this through
    // `Probes::failures` (cancelled attempts are not counted; timeouts are).
    failures: HashMap<Key, u64>,
    results: Vec<Event>,
    scratch: Box<[u8]>,
}

impl Probes {
    /// `nofile`: the `RLIMIT_NOFILE` probe commands get back (as services do).
    pub fn new(nofile: Option<libc::rlimit>) -> io::Result<Probes> {
        Ok(Probes {
            attempts: HashMap::new(),
            by_key: HashMap::new(),
            by_token: HashMap::new(),
            by_pid: HashMap::new(),
            abandoned: HashSet::new(),
            deadlines: Deadlines::default(),
            next_id: 1,
            launcher: Launcher::new(nofile)?,
            busy: Vec::new(),
            failures: HashMap::new(),
            results: Vec::new(),
            scratch: vec![0u8; 16 * 1024].into_boxed_slice(),
        })
    }

    /// Start one attempt of `order.check`. Its result (also one decided at
    /// once, such as a refused connect) comes from [`Probes::take_results`].
    pub fn start(
        &mut self,
        registry: &Registry,
        tokens: &mut Tokens,
        now: Instant,
        order: Order<'_>,
    ) {
        let key = Key {
            service: order.service,
            role: order.role,
        };
        if let Some(old) = self.by_key.get(&key).copied() {
            self.abandon(old);
        }
        let id = self.next_id;
        self.next_id += 1;
        let timeout = order.check.timeout;
        let started = match &order.check.kind {
            CheckKind::Exec { command } => self.launch(key, order.spec, command, registry, tokens),
            CheckKind::Tcp { address } => Conversation::tcp(*address).map(socket_work),
            CheckKind::Http {
                address,
                host,
                path,
            } => Conversation::http(*address, host, path).map(socket_work),
            CheckKind::Grpc { address, service } => {
                Conversation::grpc(*address, service).map(socket_work)
            }
        };
        let work = match started {
            Ok(work) => work,
            Err(message) => return self.report(key, order.run, false, message),
        };
        self.attempts.insert(
            id,
            Attempt {
                key,
                run: order.run,
                timeout,
                work,
            },
        );
        self.by_key.insert(key, id);
        self.deadlines.set(id, Some(now.saturating_add(timeout)));
        if let Some(Work::Exec { pid, token, .. }) = self.attempts.get(&id).map(|a| &a.work) {
            self.by_pid.insert(*pid, id);
            self.by_token.insert(*token, id);
        } else {
            // A connect on loopback is often complete already: no registration.
            self.drive(id, registry, tokens);
        }
    }

    fn launch(
        &mut self,
        key: Key,
        spec: &Arc<ServiceSpec>,
        command: &[String],
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<Work, String> {
        let mut child = self.launcher.spawn(key, spec, command)?;
        let token = tokens.next();
        let output = registry
            .register(&mut child.output, token, Interest::READABLE)
            .ok()
            .map(|()| child.output);
        Ok(Work::Exec {
            pid: child.pid,
            command: command.into(),
            token,
            output,
            tail: Tail::default(),
        })
    }

    /// Whether `token` is the socket or pipe of an attempt still open. Late
    /// events of a closed one are not (tokens are never reused): the loop
    /// ignores them.
    pub fn owns(&self, token: Token) -> bool {
        self.by_token.contains_key(&token)
    }

    /// A socket or pipe of an attempt has news.
    pub fn handle_event(&mut self, registry: &Registry, tokens: &mut Tokens, token: Token) {
        let Some(&id) = self.by_token.get(&token) else {
            return;
        };
        let is_socket = matches!(
            self.attempts.get(&id).map(|a| &a.work),
            Some(Work::Socket { .. })
        );
        if is_socket {
            self.drive(id, registry, tokens);
        } else {
            self.read_output(id, READ_BUDGET);
        }
    }

    /// Advance a socket attempt as far as it goes now.
    fn drive(&mut self, id: AttemptId, registry: &Registry, tokens: &mut Tokens) {
        let Some(attempt) = self.attempts.get_mut(&id) else {
            return;
        };
        let Work::Socket {
            conversation,
            decided,
            ..
        } = &mut attempt.work
        else {
            return;
        };
        if *decided {
            if conversation.drain(&mut self.scratch) {
                self.close(id);
            }
            return;
        }
        let turn = conversation.drive(&mut self.scratch);
        let (key, run) = (attempt.key, attempt.run);
        match turn {
            Turn::Waiting => {
                if let Err(e) = self.watch(id, registry, tokens) {
                    self.close(id);
                    self.report(key, run, false, format!("cannot watch a socket: {e}"));
                }
            }
            Turn::Decided { ok, message, drain } => {
                let drained = !drain || conversation.drain(&mut self.scratch);
                if drained || self.watch(id, registry, tokens).is_err() {
                    self.close(id);
                } else {
                    // Reported; the socket stays until EOF or the timeout,
                    // and no longer counts as the check's attempt in flight.
                    if let Some(Work::Socket { decided, .. }) =
                        self.attempts.get_mut(&id).map(|a| &mut a.work)
                    {
                        *decided = true;
                    }
                    self.by_key.remove(&key);
                }
                self.report(key, run, ok, message);
            }
        }
    }

    /// Register an attempt's socket with the poll, unless it is already.
    fn watch(&mut self, id: AttemptId, registry: &Registry, tokens: &mut Tokens) -> io::Result<()> {
        let Some(Attempt {
            work:
                Work::Socket {
                    token,
                    conversation,
                    ..
                },
            ..
        }) = self.attempts.get_mut(&id)
        else {
            return Ok(());
        };
        if token.is_none() {
            let new = tokens.next();
            let interest = Interest::READABLE | Interest::WRITABLE;
            registry.register(conversation.stream(), new, interest)?;
            *token = Some(new);
            self.by_token.insert(new, id);
        }
        Ok(())
    }

    /// Read a probe command's output into its tail.
    fn read_output(&mut self, id: AttemptId, budget: usize) {
        let Some(Attempt {
            work: Work::Exec { output, tail, .. },
            ..
        }) = self.attempts.get_mut(&id)
        else {
            return;
        };
        let Some(pipe) = output else {
            return;
        };
        let (finished, more) = exec::read_into(pipe, tail, &mut self.scratch, budget);
        if finished {
            *output = None; // closing deregisters it
        }
        if more && !self.busy.contains(&id) {
            self.busy.push(id);
        }
    }

    /// A child exited (not reaped yet). Returns whether it was a probe
    /// command; if so its result is reported, unless it was abandoned.
    pub fn exited(&mut self, pid: i32, status: ExitStatus) -> bool {
        // Whatever it left in its group goes with it; the zombie keeps the
        // group id from being reused until the caller reaps it.
        if self.abandoned.remove(&pid) {
            let _ = crate::sys::kill_group(pid, libc::SIGKILL);
            return true;
        }
        let Some(id) = self.by_pid.remove(&pid) else {
            return false;
        };
        let _ = crate::sys::kill_group(pid, libc::SIGKILL);
        // Its last words are in the pipe already; a leftover writer may add
        // at most a pipe's worth more.
        self.read_output(id, 4 * READ_BUDGET);
        if let Some(attempt) = self.close(id)
            && let Work::Exec { command, tail, .. } = &attempt.work
        {
            let (ok, message) = exec::verdict(command, status, tail);
            self.report(attempt.key, attempt.run, ok, message);
        }
        true
    }

    /// `Action::CancelProbe`: abandon the attempt in flight, reporting nothing.
    pub fn cancel(&mut self, service: ServiceId, role: Role) {
        if let Some(id) = self.by_key.get(&Key { service, role }).copied() {
            self.abandon(id);
        }
    }

    /// `Action::Forget`: the service is gone; drop everything of it.
    pub fn forget(&mut self, service: ServiceId) {
        for role in [Role::Readiness, Role::Liveness] {
            self.cancel(service, role);
            self.failures.remove(&Key { service, role });
        }
        self.launcher.forget(service);
    }

    /// When the next attempt times out; now if a pipe has data left to read.
    pub fn poll_deadline(&self) -> Option<Instant> {
        if !self.busy.is_empty() {
            return Some(Instant::ZERO);
        }
        self.deadlines.next()
    }

    /// Once per turn: read pipes left with data, then time out every attempt
    /// whose deadline is at or before `now`.
    pub fn handle_deadlines(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.busy) {
            self.read_output(id, READ_BUDGET);
        }
        while let Some(id) = self.deadlines.pop_due(now) {
            // What a hanging command printed last says what it waited for.
            self.read_output(id, READ_BUDGET);
            let Some(attempt) = self.attempts.get(&id) else {
                continue;
            };
            let (key, run, timeout) = (attempt.key, attempt.run, attempt.timeout);
            let message = match &attempt.work {
                Work::Socket { decided: true, .. } => None,
                Work::Socket { conversation, .. } => Some(conversation.timed_out(timeout)),
                Work::Exec { command, tail, .. } => Some(exec::overran(command, timeout, tail)),
            };
            self.abandon(id);
            if let Some(message) = message {
                self.report(key, run, false, message);
            }
        }
    }

    /// Results to feed to the core, in the order they came.
    pub fn take_results(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.results)
    }

    /// Failed attempts of each check since tend started (for metrics).
    pub fn failures(&self) -> impl Iterator<Item = (Key, u64)> + '_ {
        self.failures.iter().map(|(key, n)| (*key, *n))
    }

    /// The pids of the probe commands in flight (`tend reexec`: the new
    /// process kills their groups, as their attempts are abandoned).
    pub fn command_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.by_pid.keys().copied().collect();
        pids.sort_unstable();
        pids
    }

    /// At exit: kill every probe command still running.
    pub fn abandon_all(&mut self) {
        let ids: Vec<AttemptId> = self.attempts.keys().copied().collect();
        for id in ids {
            self.abandon(id);
        }
    }

    /// Drop an attempt without a result; a probe command's group is killed
    /// and its pid remembered until it is reaped.
    fn abandon(&mut self, id: AttemptId) {
        if let Some(attempt) = self.close(id)
            && let Work::Exec { pid, .. } = attempt.work
        {
            let _ = crate::sys::kill_group(pid, libc::SIGKILL);
            if self.by_pid.remove(&pid).is_some() {
                self.abandoned.insert(pid);
            }
        }
    }

    /// Remove an attempt from every index; dropping it closes its socket or
    /// pipe, which also takes it out of the poll.
    fn close(&mut self, id: AttemptId) -> Option<Attempt> {
        let attempt = self.attempts.remove(&id)?;
        if self.by_key.get(&attempt.key) == Some(&id) {
            self.by_key.remove(&attempt.key);
        }
        match &attempt.work {
            Work::Socket { token, .. } => {
                if let Some(token) = token {
                    self.by_token.remove(token);
                }
            }
            Work::Exec { token, .. } => {
                self.by_token.remove(token);
            }
        }
        self.deadlines.set(id, None);
        self.busy.retain(|b| *b != id);
        Some(attempt)
    }

    fn report(&mut self, key: Key, run: RunId, ok: bool, message: String) {
        if !ok {
            *self.failures.entry(key).or_insert(0) += 1;
        }
        self.results.push(Event::ProbeResult {
            service: key.service,
            run,
            role: key.role,
            ok,
            message,
        });
    }
}

fn socket_work(conversation: Conversation) -> Work {
    Work::Socket {
        token: None,
        conversation,
        decided: false,
    }
}

/// A timeout as messages say it: `300ms`, `1s`, `2.5s`.
fn span(d: Duration) -> String {
    if d.subsec_millis() == 0 && (1..60).contains(&d.as_secs()) {
        format!("{}s", d.as_secs())
    } else {
        human(d)
    }
}
