//! The steps that several rows of the transition table share: spawn, become
//! ready, stop, apply the restart policy, give up. Each ends in `Service::set`,
//! the one place a state changes; none is called from outside `transition.rs`.

use super::RunId;
use super::action::{Action, Exit, Failure, Note, ProbeReport, Why};
use super::behaviour::Readiness;
use super::event::{ExitStatus, Notice, Role};
use super::policy;
use super::service::{Checking, Ended, Goal, Process, Service, State};
use super::time::Instant;
use super::transition::{Cx, FIRST_READINESS_ATTEMPT};
use crate::config::Signal;

impl Service {
    /// Order a new run. Not logged by itself: the spawn's outcome is.
    pub(super) fn spawn(&mut self, cx: &mut Cx<'_>) {
        let run = RunId(*cx.next_run);
        *cx.next_run += 1;
        let from = self.state.name();
        self.set(cx, State::Spawning { run, from }, None);
        cx.out.push(Action::Spawn {
            service: self.id,
            run,
        });
    }

    /// The spawn of `run` succeeded: wait for readiness, or be running.
    pub(super) fn spawned(&mut self, cx: &mut Cx<'_>, run: RunId, process: Process) {
        let now = cx.now;
        self.last_run = Some(run);
        self.ready_run = None;
        self.status_text = None;
        let b = &self.behaviour;
        let ready_by = Some(now.saturating_add(b.timeout_start));
        let starting = |ready_by, up_by, check| State::Starting {
            run,
            process,
            since: now,
            ready_by,
            up_by,
            check,
        };
        let next = match b.readiness {
            // A oneshot stays `starting` while it runs: finishing is its readiness.
            _ if b.is_oneshot() => starting(None, None, None),
            Readiness::Reported | Readiness::Notify => starting(ready_by, None, None),
            Readiness::Checked { .. } => {
                let first = policy::probe_time(now, FIRST_READINESS_ATTEMPT);
                let check = Checking {
                    next_at: Some(first),
                    failures: 0,
                    attempts: 0,
                };
                starting(ready_by, None, Some(check))
            }
            Readiness::None if !b.min_uptime.is_zero() => {
                starting(None, Some(now.saturating_add(b.min_uptime)), None)
            }
            Readiness::None => return self.enter_running(cx, run, process, now, Why::Spawned),
        };
        let watch = self.behaviour.readiness == Readiness::Reported && !self.is_oneshot();
        self.set(cx, next, Some(Why::Spawned));
        if watch {
            let (service, role) = (self.id, Role::Readiness);
            cx.out.push(Action::Probe { service, run, role });
        }
    }

    /// Starting → running: readiness reached.
    pub(super) fn become_ready(&mut self, cx: &mut Cx<'_>, run: RunId) {
        let State::Starting { process, since, .. } = self.state else {
            return; // only reached from Starting (see the callers)
        };
        cx.out.push(Action::CancelProbe {
            service: self.id,
            role: Role::Readiness,
        });
        let after = cx.now.saturating_since(since);
        self.enter_running(cx, run, process, since, Why::Ready { after });
    }

    /// Be `running`: the liveness check and the watchdog start now.
    pub(super) fn enter_running(
        &mut self,
        cx: &mut Cx<'_>,
        run: RunId,
        process: Process,
        since: Instant,
        why: Why,
    ) {
        let now = cx.now;
        self.ready_run = Some(run);
        self.last_error = None;
        let check = self.behaviour.liveness.map(|l| Checking {
            next_at: Some(policy::probe_time(now, l.interval)),
            failures: 0,
            attempts: 0,
        });
        let watchdog_by = self.behaviour.watchdog.map(|w| now.saturating_add(w));
        let next = State::Running {
            run,
            process,
            since,
            check,
            watchdog_by,
        };
        self.set(cx, next, Some(why));
    }

    /// Order the stop of the live process: `stop_signal` and SIGCONT to its
    /// group, SIGKILL after `timeout_stop`. `failure`: its exit then counts as
    /// that failure.
    pub(super) fn begin_stop(&mut self, cx: &mut Cx<'_>, failure: Option<Failure>, why: Why) {
        let (run, process, since, role) = match self.state {
            State::Starting {
                run,
                process,
                since,
                ..
            } => (run, process, since, Role::Readiness),
            State::Running {
                run,
                process,
                since,
                ..
            } => (run, process, since, Role::Liveness),
            State::Pending
            | State::Spawning { .. }
            | State::Stopping { .. }
            | State::Draining { .. }
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => return, // nothing up to stop
        };
        let service = self.id;
        cx.out.push(Action::CancelProbe { service, role });
        for signal in [self.behaviour.stop_signal, Signal::CONT] {
            cx.out.push(Action::Signal {
                service,
                run,
                process,
                signal,
            });
        }
        if let Some(f) = &failure {
            self.last_error = Some(Box::new(f.clone()));
        }
        let kill_at = Some(cx.now.saturating_add(self.behaviour.timeout_stop));
        let next = State::Stopping {
            run,
            process,
            since,
            kill_at,
            failure,
        };
        self.set(cx, next, Some(why));
    }

    /// The main process of `run` exited: clear out what it left in its group
    /// (its pid is not reaped yet, so the group id cannot have been reused:
    /// two generations of a service never overlap) and record the exit.
    pub(super) fn exited(
        &mut self,
        cx: &mut Cx<'_>,
        run: RunId,
        process: Process,
        since: Instant,
        status: ExitStatus,
    ) -> Exit {
        let service = self.id;
        cx.out.push(Action::ClearGroup {
            service,
            run,
            process,
        });
        self.last_exit = Some(status);
        Exit {
            status,
            after: cx.now.saturating_since(since),
        }
    }

    /// The main process of `run` exited while the run was where `was` says:
    /// act on the exit now, or, in a cgroup, once what it left there is gone.
    pub(super) fn exit_or_drain(&mut self, cx: &mut Cx<'_>, run: RunId, was: Ended, exit: Exit) {
        if self.behaviour.contained {
            let give_up_at = cx.now.saturating_add(self.behaviour.timeout_stop);
            let next = State::Draining {
                run,
                exit,
                was,
                give_up_at,
            };
            self.set(cx, next, None);
        } else {
            self.after_exit(cx, was, exit);
        }
    }

    /// What an exit means, by where the run was: a oneshot's completion, a
    /// failed start, the restart policy, or the end of a stop.
    pub(super) fn after_exit(&mut self, cx: &mut Cx<'_>, was: Ended, exit: Exit) {
        let success = policy::is_success(&self.behaviour, exit.status);
        let up = self.goal.is_up() && !cx.shutting_down;
        match was {
            Ended::Starting if !self.is_oneshot() => {
                self.after_failure(cx, Failure::EarlyExit(exit));
            }
            Ended::Starting if success => {
                let why = Some(Why::Completed(exit));
                self.set(cx, State::Stopped { completed: true }, why);
            }
            Ended::Starting | Ended::Running if !success => {
                self.after_failure(cx, Failure::Exit(exit));
            }
            Ended::Running if up && policy::wants_restart(&self.behaviour, true) => {
                self.restart_later(cx, Why::Exited(exit), Failure::Exit(exit));
            }
            Ended::Starting | Ended::Running => {
                let why = Some(Why::Exited(exit));
                self.set(cx, State::Stopped { completed: false }, why);
            }
            Ended::Stopping(Some(cause)) if up => {
                let failure = Failure::Stopped {
                    cause: Box::new(cause),
                    exit,
                };
                self.after_failure(cx, failure);
            }
            Ended::Stopping(None) if up => {
                // A planned restart (`tend restart`, a changed definition).
                self.restarts += 1;
                self.set(cx, State::Pending, Some(Why::Exited(exit)));
            }
            Ended::Stopping(_) => {
                let why = Some(Why::Exited(exit));
                self.set(cx, State::Stopped { completed: false }, why);
                cx.forget = self.goal == Goal::Remove;
            }
        }
    }

    /// A run failed: restart it by the policy and retry budget, or give up.
    pub(super) fn after_failure(&mut self, cx: &mut Cx<'_>, failure: Failure) {
        if !self.goal.is_up() || cx.shutting_down {
            let why = Why::Failed(failure.clone());
            self.last_error = Some(Box::new(failure));
            self.set(cx, State::Stopped { completed: false }, Some(why));
            cx.forget = self.goal == Goal::Remove;
            return;
        }
        if !policy::wants_restart(&self.behaviour, false) {
            return self.fail(cx, failure);
        }
        self.restart_later(cx, Why::Failed(failure.clone()), failure);
    }

    /// Schedule the next run after backoff, or give up when the retry budget
    /// within `retry_window` is spent. `ended` says how the last run ended.
    pub(super) fn restart_later(&mut self, cx: &mut Cx<'_>, ended: Why, failure: Failure) {
        let b = &self.behaviour;
        let (window, max) = (b.retry_window, b.max_retries);
        let used = self.budget.in_window(window, cx.now);
        if used >= max as usize {
            let cause = Box::new(failure);
            return self.fail(
                cx,
                Failure::GaveUp {
                    cause,
                    restarts: used,
                    window,
                },
            );
        }
        if matches!(ended, Why::Failed(_)) {
            self.last_error = Some(Box::new(failure));
        }
        let delay = policy::backoff(&self.behaviour, used, cx.rng);
        self.budget.record(cx.now);
        self.restarts += 1;
        let why = Why::Restarting {
            ended: Box::new(ended),
            delay,
            attempt: used + 1,
            max,
            window,
        };
        let start_at = cx.now.saturating_add(delay);
        self.set(cx, State::Restarting { start_at }, Some(why));
    }

    /// Enter `failed`; a critical service takes tend down with it.
    pub(super) fn fail(&mut self, cx: &mut Cx<'_>, failure: Failure) {
        self.last_error = Some(Box::new(failure.clone()));
        self.set(cx, State::Failed, Some(Why::Failed(failure)));
        if self.behaviour.critical && !cx.shutting_down {
            cx.shutdown = Some(policy::failure_code(self.last_exit));
        }
    }

    /// Run again from scratch (a command, or a reload): pending, fresh budget.
    pub(super) fn again(&mut self, cx: &mut Cx<'_>, why: Why) {
        self.budget.clear();
        self.set(cx, State::Pending, Some(why));
    }

    /// Not up and not wanted up: stopped, or forgotten if removed.
    pub(super) fn settle_down(&mut self, cx: &mut Cx<'_>) {
        let why = self.goal_why(cx);
        self.set(cx, State::Stopped { completed: false }, Some(why));
        cx.forget = self.goal == Goal::Remove;
    }

    /// Why the service is going down, from its goal.
    pub(super) fn goal_why(&self, cx: &Cx<'_>) -> Why {
        match self.goal {
            Goal::Remove => Why::Removed,
            Goal::Down | Goal::Up | Goal::Needed if cx.shutting_down => Why::ShuttingDown,
            Goal::Down | Goal::Up | Goal::Needed => Why::StopRequested,
        }
    }

    /// Keep a check result for `tend status`; returns the failures in a row.
    pub(super) fn record_probe(
        &mut self,
        cx: &Cx<'_>,
        role: Role,
        ok: bool,
        message: String,
        check: Checking,
    ) -> u32 {
        let failures = if ok { 0 } else { check.failures + 1 };
        self.last_probe = Some(Box::new(ProbeReport {
            role,
            ok,
            at: cx.now,
            message,
            failures_in_row: failures,
        }));
        failures
    }

    /// Replace the check schedule of the current state.
    pub(super) fn set_check(&mut self, cx: &mut Cx<'_>, next: Checking) {
        let mut state = self.state.clone();
        match &mut state {
            State::Starting { check, .. } | State::Running { check, .. } => *check = Some(next),
            State::Pending
            | State::Spawning { .. }
            | State::Stopping { .. }
            | State::Draining { .. }
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => return,
        }
        self.set(cx, state, None);
    }

    /// An accepted notify message.
    pub(super) fn notified(
        &mut self,
        cx: &mut Cx<'_>,
        mut state: State,
        process: Process,
        notice: Notice,
    ) {
        let now = cx.now;
        let service = self.id;
        if let Some(status) = notice.status {
            self.status_text = Some(status);
        }
        if notice.stopping {
            let note = Note::NotifyStopping { service };
            cx.out.push(Action::Note(note));
        }
        if let Some((pid, pgid)) = notice.main_pid {
            let note = if pgid == Some(process.pgid) {
                let moved = Process { pid, ..process };
                match &mut state {
                    State::Starting { process, .. }
                    | State::Running { process, .. }
                    | State::Stopping { process, .. } => *process = moved,
                    State::Pending
                    | State::Spawning { .. }
                    | State::Draining { .. }
                    | State::Stopped { .. }
                    | State::Restarting { .. }
                    | State::Failed => {}
                }
                if let Some(run) = state.run() {
                    cx.out.push(Action::Track { service, run, pid });
                }
                Note::MainPid { service, pid }
            } else {
                Note::MainPidRejected { service, pid }
            };
            cx.out.push(Action::Note(note));
        }
        match &mut state {
            State::Starting { ready_by, .. } => {
                if let (Some(at), Some(more)) = (ready_by.as_mut(), notice.extend_timeout) {
                    *at = (*at).max(now.saturating_add(more));
                }
            }
            State::Stopping { kill_at, .. } => {
                if let (Some(at), Some(more)) = (kill_at.as_mut(), notice.extend_timeout) {
                    *at = (*at).max(now.saturating_add(more));
                }
            }
            State::Running { watchdog_by, .. } => {
                if notice.watchdog
                    && let Some(w) = self.behaviour.watchdog
                {
                    *watchdog_by = Some(now.saturating_add(w));
                }
            }
            State::Pending
            | State::Spawning { .. }
            | State::Draining { .. }
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => {}
        }
        let run = state.run();
        self.set(cx, state, None);
        if notice.ready
            && self.behaviour.readiness == Readiness::Notify
            && let (State::Starting { .. }, Some(run)) = (&self.state, run)
        {
            self.become_ready(cx, run);
        }
    }
}

/// SIGKILL to the group of `process`.
pub(super) fn kill(cx: &mut Cx<'_>, service: &Service, run: RunId, process: Process) {
    cx.out.push(Action::Signal {
        service: service.id,
        run,
        process,
        signal: Signal::KILL,
    });
}
