//! `exec` checks: the probe command run like its service, and the last words
//! it printed.
//!
//! A probe command runs as its service would (SPEC §4: "children of tend like
//! services"): its own process group, the service's user, group,
//! `working_dir`, environment and limits, the parent-death signal. Its plan is
//! the service's definition with the probe's `command`, resolved once per
//! definition ([`Launcher`]), not per attempt. Its stdout and stderr share one
//! pipe, of which only the last [`TAIL`] bytes are kept ([`Tail`]): enough
//! for the last line of a failure message, bounded however much it prints.
//!
//! The child is reaped by the runtime's reap loop, which hands the pid to the
//! probe runner (`Probes::exited`); nothing here waits.
//!
//! Must not: wait for a child, make a system call itself (the clone is
//! [`crate::sys::spawn`]'s), or read the output beyond the tail.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mio::unix::pipe::Receiver;

use super::{Key, span};
use crate::config::{OutputMode, ServiceSpec};
use crate::machine::{ExitStatus, ServiceId};
use crate::runtime::launch::{Environment, LaunchPlan, tend_environment};
use crate::runtime::render;
use crate::sys::spawn::{Cloner, Job, Output};

/// Bytes of a probe command's output kept for its failure message.
pub const TAIL: usize = 512;

/// Spawns probe commands; keeps one resolved plan per (service, role).
pub struct Launcher {
    cloner: Cloner,
    env: Environment,
    /// The definition each plan was resolved from (compared by pointer first:
    /// the catalog hands out the same `Arc` until a reload).
    plans: HashMap<Key, (Arc<ServiceSpec>, LaunchPlan)>,
}

/// A started probe command.
pub struct Child {
    pub pid: i32,
    /// The read end of its stdout+stderr pipe, non-blocking.
    pub output: Receiver,
}

impl Launcher {
    /// `nofile`: the `RLIMIT_NOFILE` children get back (as services do).
    pub fn new(nofile: Option<libc::rlimit>) -> io::Result<Launcher> {
        Ok(Launcher {
            cloner: Cloner::new(nofile)?,
            env: tend_environment(),
            plans: HashMap::new(),
        })
    }

    /// Start `command` as service `spec` would run; the error is the failure
    /// message (`cannot run pg_isready: No such file or directory (os error 2)`).
    pub fn spawn(
        &mut self,
        key: Key,
        spec: &Arc<ServiceSpec>,
        command: &[String],
    ) -> Result<Child, String> {
        let cannot = |e: &dyn std::fmt::Display| format!("cannot run {}: {e}", program(command));
        let known = match self.plans.get_mut(&key) {
            Some((known, _)) if Arc::ptr_eq(known, spec) => true,
            Some((known, _)) if **known == **spec => {
                *known = Arc::clone(spec);
                true
            }
            Some(_) | None => false,
        };
        if !known {
            let plan = LaunchPlan::resolve(&probe_spec(spec, command), &self.env, None)
                .map_err(|e| cannot(&e))?;
            self.plans.insert(key, (Arc::clone(spec), plan));
        }
        let plan = match self.plans.get(&key) {
            Some((_, plan)) => plan,
            None => return Err(cannot(&"no launch plan")),
        };
        let (read_end, write_end) = crate::sys::pipe().map_err(|e| cannot(&e))?;
        let stderr = write_end.try_clone().map_err(|e| cannot(&e))?;
        let job = Job {
            plan: plan.exec(),
            stdout: Output::Pipe(write_end),
            stderr: Output::Pipe(stderr),
            readiness: None,
            program: None,
        };
        let pid = match self.cloner.spawn(job) {
            Ok(pid) => pid,
            Err(e) => {
                // The world may have changed (a program removed): resolve again.
                self.plans.remove(&key);
                return Err(cannot(&e));
            }
        };
        let output = Receiver::from(read_end);
        // A blocking pipe would stall the loop; without the flag the probe's
        // output is not read (its exit is still seen).
        let _ = output.set_nonblocking(true);
        Ok(Child { pid, output })
    }

    /// Drop the plans of a service that is gone.
    pub fn forget(&mut self, service: ServiceId) {
        self.plans.retain(|key, _| key.service != service);
    }
}

/// The service's definition with the probe's command: same user, group,
/// directory, environment and limits; output into the probe's pipe.
fn probe_spec(spec: &ServiceSpec, command: &[String]) -> ServiceSpec {
    let mut probe = spec.clone();
    probe.command = command.to_vec();
    probe.output = OutputMode::Null;
    probe.readiness = None;
    probe.liveness = None;
    // A check runs in tend's namespaces: new ones of its own would only hide
    // the service from it.
    probe.process.isolate = crate::config::Isolate::default();
    probe.process.compact();
    probe
}

/// The name a message calls the command by: its program's file name.
pub fn program(command: &[String]) -> &str {
    let first = command.first().map(String::as_str).unwrap_or_default();
    Path::new(first)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(first)
}

/// The last [`TAIL`] bytes written to a pipe.
#[derive(Debug, Default)]
pub struct Tail {
    pub(super) bytes: Vec<u8>,
    /// Earlier bytes were dropped.
    cut: bool,
}

impl Tail {
    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL {
            self.cut |= chunk.len() > TAIL || !self.bytes.is_empty();
            self.bytes.clear();
            let start = chunk.len() - TAIL;
            self.bytes
                .extend_from_slice(chunk.get(start..).unwrap_or_default());
            return;
        }
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > TAIL {
            let excess = self.bytes.len() - TAIL;
            self.bytes.drain(..excess);
            self.cut = true;
        }
    }

    /// The last non-empty line, control characters replaced, or `None`.
    /// A line cut by the bound starts with `…`.
    pub fn last_line(&self) -> Option<String> {
        let (index, line) = self
            .bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.trim_ascii().is_empty())
            .last()?;
        let text: String = String::from_utf8_lossy(line.trim_ascii())
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let whole = index > 0 || !self.cut;
        Some(if whole { text } else { format!("…{text}") })
    }
}

/// Read what the pipe has now into `tail`, at most `budget` bytes. Returns
/// whether the pipe is finished with (EOF or an error) and whether the budget
/// ran out with data left.
pub fn read_into(
    output: &mut Receiver,
    tail: &mut Tail,
    scratch: &mut [u8],
    budget: usize,
) -> (bool, bool) {
    let mut used = 0;
    while used < budget {
        match output.read(scratch) {
            Ok(0) => return (true, false),
            Ok(n) => {
                used += n;
                tail.push(scratch.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (false, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (true, false),
        }
    }
    (false, true)
}

/// The result of a probe command that exited: `(ok, message)`.
pub fn verdict(command: &[String], status: ExitStatus, tail: &Tail) -> (bool, String) {
    let ok = status == ExitStatus::Code(0);
    let mut message = format!("{} {}", program(command), render::Status(status));
    if let Some(line) = tail.last_line() {
        message.push_str(": ");
        message.push_str(&line);
    }
    (ok, message)
}

/// The failure of a probe command cut off after `timeout`.
pub fn overran(command: &[String], timeout: Duration, tail: &Tail) -> String {
    let mut message = format!(
        "{} timed out after {}; its process group was killed",
        program(command),
        span(timeout)
    );
    if let Some(line) = tail.last_line() {
        message.push_str("; its last output: ");
        message.push_str(&line);
    }
    message
}
