//! Spawning services from their launch plans: per spawn only the output pipes
//! are opened here; the clone and the child are [`crate::sys::spawn`]'s, and
//! everything resolved once per definition is in [`super::launch`].
//!
//! A service's process runs in its own process group with stdin from
//! `/dev/null`, fds 1 and 2 on its output pipes (`output: log`), on `/dev/null`
//! (`null`) or on tend's own (`inherit`), default signal dispositions, an empty
//! signal mask, the parent-death signal SIGKILL, and no other fd of tend's
//! but its readiness pipe on the fd it asked for (`readiness: {type: fd}`);
//! in the namespaces and with the scheduling settings its plan holds. A
//! service with a verified `sha256` execs the open file that was checked
//! (`super::verify`), not whatever its path names by then.
//!
//! Must not: resolve anything per spawn (users, `PATH`, strings): that is what
//! makes a restart cheap.

use std::io;
use std::os::fd::OwnedFd;

use super::launch::LaunchPlan;
use crate::config::OutputMode;
use crate::sys::spawn::{Cloner, Job, Output, ReadinessFd};

pub use crate::sys::spawn::{SpawnError, Stage};

/// A child that has exec'ed its command, as the shell needs it.
pub struct Spawned {
    pub pid: i32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The read end of its readiness pipe (`readiness: {type: fd}`).
    pub readiness: Option<OwnedFd>,
}

/// Spawns services; holds what every spawn shares (a child stack, `/dev/null`,
/// the signals a child resets).
pub struct Spawner {
    cloner: Cloner,
}

impl Spawner {
    /// Call after the signal handlers are installed. `nofile`: the limit the
    /// children get back (see [`crate::sys::raise_nofile`]).
    pub fn new(nofile: Option<libc::rlimit>) -> io::Result<Spawner> {
        Ok(Spawner {
            cloner: Cloner::new(nofile)?,
        })
    }

    /// Start each plan's command in its own process group, in order, with
    /// results in the same order; returns once each has exec'ed (or failed
    /// to). A plan that comes with an open file (its verified `sha256`)
    /// execs that file. The children of a batch exec concurrently where the
    /// system layer can (`sys::spawn::CONCURRENT`).
    pub fn spawn_all(
        &mut self,
        plans: Vec<(&LaunchPlan, Option<OwnedFd>)>,
    ) -> Vec<Result<Spawned, SpawnError>> {
        let mut readers: Vec<[Option<OwnedFd>; 3]> = Vec::with_capacity(plans.len());
        let jobs = plans
            .into_iter()
            .map(|(plan, program)| match job(plan, program) {
                Ok((job, read_ends)) => {
                    readers.push(read_ends);
                    Ok(job)
                }
                Err(e) => {
                    readers.push([None, None, None]);
                    Err(SpawnError::new(Stage::Prepare, e))
                }
            });
        let pids = self.cloner.spawn_all(jobs);
        pids.into_iter()
            .zip(readers)
            .map(|(pid, [stdout, stderr, readiness])| {
                pid.map(|pid| Spawned {
                    pid,
                    stdout,
                    stderr,
                    readiness,
                })
            })
            .collect()
    }
}

/// A plan's job, with the pipes it needs (output with `output: log`, the
/// readiness pipe with `readiness: {type: fd}`): the write ends go to the
/// child, the read ends come back for tend (stdout, stderr, readiness).
fn job(plan: &LaunchPlan, program: Option<OwnedFd>) -> io::Result<(Job<'_>, [Option<OwnedFd>; 3])> {
    let (stdout, stderr, read_ends) = match plan.output() {
        OutputMode::Log => {
            let (out_rx, out_tx) = crate::sys::pipe()?;
            let (err_rx, err_tx) = crate::sys::pipe()?;
            (
                Output::Pipe(out_tx),
                Output::Pipe(err_tx),
                [Some(out_rx), Some(err_rx)],
            )
        }
        OutputMode::Null => (Output::Null, Output::Null, [None, None]),
        OutputMode::Inherit => (Output::Inherit, Output::Inherit, [None, None]),
    };
    let (readiness, ready_rx) = match plan.readiness_fd() {
        Some(target) => {
            let (rx, tx) = crate::sys::pipe()?;
            (Some(ReadinessFd { write: tx, target }), Some(rx))
        }
        None => (None, None),
    };
    let [out_rx, err_rx] = read_ends;
    let job = Job {
        plan: plan.exec(),
        stdout,
        stderr,
        readiness,
        program,
    };
    Ok((job, [out_rx, err_rx, ready_rx]))
}
