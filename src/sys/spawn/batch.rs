//! A batch of spawns with the children exec'ing concurrently (x86_64, unless
//! built with `--cfg tend_serial_spawn`): each is cloned without waiting for the
//! one before to exec, so a container's start-up uses both cores instead of one
//! after the other.
//!
//! At most [`MAX_IN_FLIGHT`] children are between their clone and their report
//! at any time, each on its own stack slot; a slot takes the next child as soon
//! as its child has reported, so the pipeline never drains between batches.
//! [`Flight`] owns the stacks and the children's plans, and its `Drop` waits
//! for every child still in flight, so neither is freed under a running child
//! whatever happens (a panic of the caller's job iterator included).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::child::{self, ChildPlan};
use super::{CHILD_STACK, Common, Job, Report, SpawnError, Stage, fd, read_report};

/// Children between clone and report at any time: bounds the stacks held
/// (64 KiB each, of which a child touches a page or two) and the fds.
const MAX_IN_FLIGHT: usize = 64;

/// Spawn `jobs` concurrently; results in the order of `jobs`.
pub(super) fn spawn_all<'c, 'a: 'c, I>(
    common: Common<'c>,
    jobs: I,
) -> Vec<Result<libc::pid_t, SpawnError>>
where
    I: ExactSizeIterator<Item = Result<Job<'a>, SpawnError>>,
{
    let mut results: Vec<Option<Result<libc::pid_t, SpawnError>>> =
        std::iter::repeat_with(|| None).take(jobs.len()).collect();
    let mut flight = Flight::new(MAX_IN_FLIGHT.min(jobs.len()));
    for (index, job) in jobs.enumerate() {
        let outcome = match job {
            Ok(job) => {
                if flight.is_full()
                    && let Some((at, result)) = flight.finish_oldest()
                {
                    put(&mut results, at, result);
                }
                flight.launch(index, job, common)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            put(&mut results, index, Err(e));
        }
    }
    while let Some((at, result)) = flight.finish_oldest() {
        put(&mut results, at, result);
    }
    drop(flight);
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(SpawnError::new(
                    Stage::Prepare,
                    io::Error::other("not spawned"),
                ))
            })
        })
        .collect()
}

fn put<T>(results: &mut Vec<Option<T>>, at: usize, value: T) {
    if at >= results.len() {
        results.resize_with(at + 1, || None);
    }
    if let Some(slot) = results.get_mut(at) {
        *slot = Some(value);
    }
}

/// A child between its clone and its report.
struct InFlight<'a> {
    index: usize,
    slot: usize,
    pid: libc::pid_t,
    report: OwnedFd,
    /// What the child reads; freed only after its report.
    _plan: Box<ChildPlan<'a>>,
}

/// The stacks of a batch and the children running on them.
struct Flight<'a> {
    /// `CHILD_STACK` bytes per slot. Only ever reached through `base` while
    /// children may run on it, never through a reference to the whole buffer.
    stacks: Vec<u8>,
    base: *mut u8,
    free: Vec<usize>,
    children: VecDeque<InFlight<'a>>,
    /// A report could not be read: its child may still be on its stack, so
    /// slots are not reused and the stacks are never freed (cannot happen).
    leak: bool,
}

impl<'c> Flight<'c> {
    fn new(slots: usize) -> Flight<'c> {
        let mut stacks = vec![0u8; CHILD_STACK * slots.max(1)];
        let base = stacks.as_mut_ptr();
        Flight {
            stacks,
            base,
            free: (0..slots.max(1)).rev().collect(),
            children: VecDeque::new(),
            leak: false,
        }
    }

    fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Clone `job`'s child on a free slot. `Err`: it was not started.
    fn launch(&mut self, index: usize, job: Job<'c>, common: Common<'c>) -> Result<(), SpawnError> {
        let prepare = |e| SpawnError::new(Stage::Prepare, e);
        let readiness = job.readiness().map_err(prepare)?;
        let Some(slot) = self.free.pop() else {
            return Err(prepare(io::Error::other("no free child stack")));
        };
        let (report, report_tx) = match fd::pipe() {
            Ok(pipe) => pipe,
            Err(e) => {
                self.free.push(slot);
                return Err(prepare(e));
            }
        };
        let outputs = [common.target(&job.stdout), common.target(&job.stderr)];
        let fds = child::Fds {
            outputs,
            readiness,
            report: report_tx.as_raw_fd(),
            program: job.program.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
        };
        let plan = Box::new(ChildPlan::new(job.plan, common, fds));
        let slot_start = self.base.wrapping_add(slot * CHILD_STACK);
        let top = child::stack_top(slot_start, CHILD_STACK);
        // SAFETY: this slot's stack and `plan` (boxed: it stays put) are owned by
        // this Flight and untouched until the child's report is in:
        // `finish_oldest` reads it before it lets go of them, and `Drop` does so
        // for every child still in flight before `stacks` is freed. What `plan`
        // borrows lives for 'a, longer than this Flight. A child that must not
        // run beside tend (it sets `oom_score_adj`, which the kernel would
        // copy to every process sharing its memory) is waited for at once.
        let cloned = unsafe {
            if job.plan.setup().needs_vfork() {
                child::clone_waiting(top, &plan)
            } else {
                child::clone_running(top, &plan)
            }
        };
        match cloned {
            Ok(pid) => {
                // Children cloned later must not inherit this one's write ends,
                // and EOF on the report must mean this child is gone.
                drop(report_tx);
                drop(job);
                self.children.push_back(InFlight {
                    index,
                    slot,
                    pid,
                    report,
                    _plan: plan,
                });
                Ok(())
            }
            Err(e) => {
                self.free.push(slot);
                Err(prepare(e))
            }
        }
    }

    /// Wait for the oldest child's report: (its index, its result).
    fn finish_oldest(&mut self) -> Option<(usize, Result<libc::pid_t, SpawnError>)> {
        let child = self.children.pop_front()?;
        let result = match read_report(&child.report) {
            Report::Exec => Ok(child.pid),
            Report::Failed(error) => {
                // It exits right after its report; once reaped it is off its
                // stack (and the SIGCHLD handler will not take it for an orphan).
                super::super::reap_blocking(child.pid);
                Err(error)
            }
            Report::Unknown => {
                self.leak = true;
                Ok(child.pid)
            }
        };
        if !self.leak {
            self.free.push(child.slot);
        }
        Some((child.index, result))
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        while self.finish_oldest().is_some() {}
        if self.leak {
            std::mem::forget(std::mem::take(&mut self.stacks));
        }
    }
}
