//! Emptying a service's cgroup and learning, without polling, when it is empty.
//!
//! Killing: `cgroup.kill` (Linux 5.14+) SIGKILLs everything in the cgroup and
//! below it in one write, forks racing with it included. Without it, a round
//! SIGKILLs each pid listed in `cgroup.procs` (and in the cgroups below);
//! a process forked during a round escapes that round, so rounds repeat on a
//! short backoff ([`ROUND_DELAYS`]), a bounded number of times, from the
//! loop's timer, never blocking it.
//!
//! Watching: the kernel raises an inotify `IN_MODIFY` on `cgroup.events` when
//! `populated` changes. A drain watches first, then kills, then reads the file
//! once (the cgroup may be empty already: reported at once); after that only
//! an event makes it read again. Should the watch itself fail (inotify's watch
//! limit), the file is read on the round timer instead.
//!
//! Must not: block, or decide what an empty (or never empty) cgroup means:
//! the core does, from `Event::GroupEmpty` and its own `timeout_stop`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::debug;

use super::parse;
use crate::machine::{RunId, ServiceId};
use crate::sys::cgroup::{IN_IGNORED, IN_Q_OVERFLOW, Inotify, inotify_records, kill_process};

/// Delays between kill rounds without `cgroup.kill` (and between reads of
/// `cgroup.events` when it could not be watched): about 5 s in all, after
/// which the core's `timeout_stop` decides.
const ROUND_DELAYS: [u64; 10] = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560];

/// How deep the fallback looks for cgroups a service made below its own.
const MAX_DEPTH: usize = 8;

/// How to kill a whole cgroup on this kernel; learnt at the first kill.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Killer {
    #[default]
    Unknown,
    /// `cgroup.kill` exists.
    KillFile,
    /// SIGKILL each pid of `cgroup.procs`, in rounds.
    Rounds,
}

impl Killer {
    /// SIGKILL everything in `dir` (and below): `cgroup.kill`, else one round.
    /// Returns whether more rounds are needed (no `cgroup.kill`).
    pub fn kill(&mut self, dir: &Path) -> bool {
        if *self != Killer::Rounds {
            match write_file(&dir.join("cgroup.kill"), "1") {
                Ok(()) => {
                    *self = Killer::KillFile;
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir.is_dir() => {
                    debug!("no cgroup.kill in {}: killing pid by pid", dir.display());
                    *self = Killer::Rounds;
                }
                Err(e) => {
                    debug!("cgroup.kill in {}: {e}; killing pid by pid", dir.display());
                }
            }
        }
        kill_round(dir, 0);
        true
    }
}

/// SIGKILL every pid in `dir`'s `cgroup.procs` and in the cgroups below it;
/// returns how many were signalled.
pub fn kill_round(dir: &Path, depth: usize) -> usize {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let mut killed = 0;
    for pid in parse::pids(&procs) {
        if kill_process(pid, libc::SIGKILL).is_ok() {
            killed += 1;
        }
    }
    if depth < MAX_DEPTH {
        for child in subfolders(dir) {
            killed += kill_round(&child, depth + 1);
        }
    }
    killed
}

/// The cgroups right below `dir`.
pub fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Whether `dir` (or a cgroup below it) holds a live process. A cgroup that
/// is gone holds nothing; one whose file cannot be read counts as populated.
pub fn is_populated(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("cgroup.events")) {
        Ok(text) => parse::populated(&text).unwrap_or(true),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// Write `value` to an existing kernel file (never creating one).
pub fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// A cgroup being emptied after its run's main process exited.
#[derive(Debug)]
struct Drain {
    run: RunId,
    dir: PathBuf,
    /// The inotify watch on its `cgroup.events`, if one could be added.
    wd: Option<i32>,
    /// Rounds without `cgroup.kill`.
    rounds: bool,
    /// Timer steps taken.
    step: usize,
    next: Option<Instant>,
}

/// Every drain in progress, and the inotify instance that watches them.
#[derive(Debug)]
pub struct Drains {
    inotify: Inotify,
    drains: HashMap<ServiceId, Drain>,
    by_wd: HashMap<i32, ServiceId>,
    buf: Box<[u8]>,
}

impl Drains {
    pub fn new() -> io::Result<Drains> {
        Ok(Drains {
            inotify: Inotify::new()?,
            drains: HashMap::new(),
            by_wd: HashMap::new(),
            buf: vec![0u8; 16 * 1024].into_boxed_slice(),
        })
    }

    /// The fd to register for `READABLE` (edge-triggered: [`Self::on_readable`]
    /// drains it).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.inotify.raw_fd()
    }

    /// Kill what is left in `dir` for `run` of `service` and watch it empty.
    /// Returns `true` when it is empty already (nothing is kept then).
    pub fn start(
        &mut self,
        service: ServiceId,
        run: RunId,
        dir: &Path,
        killer: &mut Killer,
        now: Instant,
    ) -> bool {
        self.stop(service);
        let wd = match super::setup::cstring(&dir.join("cgroup.events")) {
            Ok(path) => match self.inotify.watch_modify(&path) {
                Ok(wd) => Some(wd),
                Err(e) => {
                    debug!("cannot watch {}/cgroup.events: {e}", dir.display());
                    None
                }
            },
            Err(_) => None,
        };
        let rounds = killer.kill(dir);
        if !is_populated(dir) {
            if let Some(wd) = wd {
                self.inotify.unwatch(wd);
            }
            return true;
        }
        let timed = rounds || wd.is_none();
        let drain = Drain {
            run,
            dir: dir.to_path_buf(),
            wd,
            rounds,
            step: 0,
            next: timed.then(|| now + delay(0)),
        };
        if let Some(wd) = wd {
            self.by_wd.insert(wd, service);
        }
        self.drains.insert(service, drain);
        false
    }

    /// Forget the drain of `service` (the core moved on: a new run, or it gave
    /// up waiting).
    pub fn stop(&mut self, service: ServiceId) {
        if let Some(drain) = self.drains.remove(&service)
            && let Some(wd) = drain.wd
        {
            self.by_wd.remove(&wd);
            // Another drain may have got the same wd for the same file.
            if !self.drains.values().any(|d| d.wd == Some(wd)) {
                self.inotify.unwatch(wd);
            }
        }
    }

    /// The inotify fd is readable: read every event, and return the runs whose
    /// cgroup is now empty.
    pub fn on_readable(&mut self) -> Vec<(ServiceId, RunId)> {
        let mut touched: Vec<ServiceId> = Vec::new();
        let mut overflow = false;
        loop {
            let n = match self.inotify.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!("inotify read: {e}");
                    break;
                }
            };
            for (wd, mask) in inotify_records(self.buf.get(..n).unwrap_or_default()) {
                overflow |= mask & IN_Q_OVERFLOW != 0;
                let Some(&service) = self.by_wd.get(&wd) else {
                    continue;
                };
                if mask & IN_IGNORED != 0 {
                    // The file is gone (its cgroup removed): nothing is left.
                    self.by_wd.remove(&wd);
                    if let Some(d) = self.drains.get_mut(&service) {
                        d.wd = None;
                    }
                }
                touched.push(service);
            }
        }
        if overflow {
            touched = self.drains.keys().copied().collect();
        }
        touched.sort();
        touched.dedup();
        touched
            .into_iter()
            .filter_map(|service| self.check(service))
            .collect()
    }

    /// `service`'s run, if its cgroup is empty now (the drain then ends).
    fn check(&mut self, service: ServiceId) -> Option<(ServiceId, RunId)> {
        let drain = self.drains.get(&service)?;
        if is_populated(&drain.dir) {
            return None;
        }
        let run = drain.run;
        self.stop(service);
        Some((service, run))
    }

    /// When the next kill round (or unwatched read) is due.
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.drains.values().filter_map(|d| d.next).min()
    }

    /// Do the rounds that are due; return the runs whose cgroup is empty.
    pub fn handle_deadlines(&mut self, now: Instant) -> Vec<(ServiceId, RunId)> {
        let due: Vec<ServiceId> = self
            .drains
            .iter()
            .filter(|(_, d)| d.next.is_some_and(|at| at <= now))
            .map(|(s, _)| *s)
            .collect();
        let mut empty = Vec::new();
        for service in due {
            if let Some(d) = self.drains.get_mut(&service) {
                if d.rounds {
                    kill_round(&d.dir, 0);
                }
                d.step += 1;
                // Rounds end after the table; an unwatched file is read on.
                let more = d.step < ROUND_DELAYS.len() || d.wd.is_none();
                d.next = more.then(|| now + delay(d.step));
            }
            empty.extend(self.check(service));
        }
        empty
    }

    /// How many drains are in progress.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.drains.len()
    }
}

fn delay(step: usize) -> Duration {
    Duration::from_millis(ROUND_DELAYS.get(step).copied().unwrap_or(1000))
}
