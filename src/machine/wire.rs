//! The core's types in `tend reexec`'s snapshot: [`Wire`] for every type a
//! [`CoreSnapshot`](super::CoreSnapshot) holds (see `codec::wire` for the
//! encoding; `snapshot.rs` has the snapshot's own types, and `policy.rs` and
//! `time.rs` the two whose fields are private there).
//!
//! Each line lists a type's fields in the order they are written; a tag,
//! once given to a variant, is the format (changing one changes the
//! snapshot's `VERSION`). Must not: validate; `Supervisor::restore` checks
//! what must hold together.

use super::action::{Exit, Failure, ProbeReport};
use super::behaviour::{Behaviour, Liveness, Readiness};
use super::event::{ExitStatus, Role};
use super::service::{Checking, Ended, Goal, Process, State, StateName};
use super::waiters::{Verb, Waiter};
use super::{Pid, RequestId, RunId, ServiceId, Settings};
use crate::codec::wire::{wire_enum, wire_struct};

wire_struct!(ServiceId { index, generation });
wire_struct!(RunId(0));
wire_struct!(Pid(0));
wire_struct!(RequestId(0));

wire_struct!(Settings {
    shutdown_timeout,
    exit_when_idle,
});

wire_enum!(Goal {
    0 => Up,
    1 => Needed,
    2 => Down,
    3 => Remove,
});

wire_struct!(Process { pid, pgid });

wire_struct!(Checking {
    next_at,
    failures,
    attempts,
});

wire_enum!(State {
    0 => Pending,
    1 => Spawning { run, from },
    2 => Starting { run, process, since, ready_by, up_by, check },
    3 => Running { run, process, since, check, watchdog_by },
    4 => Stopping { run, process, since, kill_at, failure },
    5 => Draining { run, exit, was, give_up_at },
    6 => Stopped { completed },
    7 => Restarting { start_at },
    8 => Failed,
});

wire_enum!(Ended {
    0 => Starting,
    1 => Running,
    2 => Stopping(failure),
});

wire_enum!(StateName {
    0 => Pending,
    1 => Starting,
    2 => Running,
    3 => Stopping,
    4 => Stopped,
    5 => Restarting,
    6 => Failed,
});

wire_struct!(Exit { status, after });

wire_enum!(Failure {
    0 => Spawn(message),
    1 => Exit(exit),
    2 => EarlyExit(exit),
    3 => NotReady(after),
    4 => Unhealthy { failures, message },
    5 => Watchdog(after),
    6 => Stopped { cause, exit },
    7 => GaveUp { cause, restarts, window },
});

wire_struct!(ProbeReport {
    role,
    ok,
    at,
    message,
    failures_in_row,
});

wire_enum!(ExitStatus {
    0 => Code(code),
    1 => Signal(signal),
});

wire_enum!(Role {
    0 => Readiness,
    1 => Liveness,
});

wire_struct!(Behaviour {
    service_type,
    enabled,
    restart_policy,
    success_exit_codes,
    max_retries,
    retry_window,
    retry_delay,
    max_retry_delay,
    dependencies,
    readiness,
    liveness,
    watchdog,
    timeout_start,
    min_uptime,
    stop_signal,
    timeout_stop,
    critical,
    contained,
});

wire_enum!(Readiness {
    0 => None,
    1 => Notify,
    2 => Reported,
    3 => Checked { interval },
});

wire_struct!(Liveness { interval, failures });

wire_enum!(Verb {
    0 => Start,
    1 => Stop,
    2 => Restart,
});

wire_struct!(Waiter {
    request,
    verb,
    services,
});

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::codec::wire::{Wire, decode, encode};
    use crate::config::{Condition, Dependency, RestartPolicy, ServiceType, Signal};
    use crate::machine::Instant;

    fn same<T: Wire + PartialEq + std::fmt::Debug>(value: T) {
        let bytes = encode(&value);
        assert_eq!(decode::<T>(&bytes), Ok(value));
        for cut in 0..bytes.len() {
            assert!(decode::<T>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn every_state_with_its_deadlines_comes_back() {
        let process = Process {
            pid: Pid(42),
            pgid: Pid(40),
        };
        let check = Checking {
            next_at: Some(t(1500)),
            failures: 2,
            attempts: 9,
        };
        let exit = Exit {
            status: ExitStatus::Signal(9),
            after: Duration::from_millis(1234),
        };
        let failure = Failure::GaveUp {
            cause: Box::new(Failure::Stopped {
                cause: Box::new(Failure::Unhealthy {
                    failures: 3,
                    message: "connection refused".into(),
                }),
                exit,
            }),
            restarts: 10,
            window: Duration::from_secs(60),
        };
        let states = [
            State::Pending,
            State::Spawning {
                run: RunId(7),
                from: StateName::Restarting,
            },
            State::Starting {
                run: RunId(8),
                process,
                since: t(100),
                ready_by: Some(t(60_100)),
                up_by: Some(t(5_100)),
                check: Some(check),
            },
            State::Starting {
                run: RunId(8),
                process,
                since: t(100),
                ready_by: None,
                up_by: None,
                check: Some(Checking {
                    next_at: None,
                    ..check
                }),
            },
            State::Running {
                run: RunId(u64::MAX),
                process,
                since: t(0),
                check: Some(check),
                watchdog_by: Some(t(3_000)),
            },
            State::Stopping {
                run: RunId(9),
                process,
                since: t(10),
                kill_at: Some(t(10_010)),
                failure: Some(failure.clone()),
            },
            State::Stopping {
                run: RunId(9),
                process,
                since: t(10),
                kill_at: None,
                failure: None,
            },
            State::Draining {
                run: RunId(10),
                exit,
                was: Ended::Stopping(Some(Failure::Watchdog(Duration::from_secs(3)))),
                give_up_at: Instant::from_since_start(Duration::MAX),
            },
            State::Draining {
                run: RunId(10),
                exit,
                was: Ended::Running,
                give_up_at: t(1),
            },
            State::Stopped { completed: true },
            State::Stopped { completed: false },
            State::Restarting { start_at: t(7_000) },
            State::Failed,
        ];
        for state in states {
            same(state);
        }
        for name in StateName::ALL {
            same(name);
        }
        for failure in [
            Failure::Spawn("no such file".into()),
            Failure::Exit(exit),
            Failure::EarlyExit(exit),
            Failure::NotReady(Duration::from_secs(60)),
            Failure::Watchdog(Duration::ZERO),
            failure,
        ] {
            same(failure);
        }
        same(Ended::Starting);
        for goal in [Goal::Up, Goal::Needed, Goal::Down, Goal::Remove] {
            same(goal);
        }
    }

    #[test]
    fn behaviours_reports_and_waiters_come_back() {
        let behaviour = Behaviour {
            service_type: ServiceType::Oneshot,
            enabled: false,
            restart_policy: RestartPolicy::OnFailure,
            success_exit_codes: vec![0, 2],
            max_retries: 3,
            retry_window: Duration::from_secs(60),
            retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(30),
            dependencies: vec![Dependency {
                service: "db".into(),
                condition: Condition::Ready,
            }],
            readiness: Readiness::Checked {
                interval: Duration::from_millis(250),
            },
            liveness: Some(Liveness {
                interval: Duration::from_secs(10),
                failures: 3,
            }),
            watchdog: Some(Duration::from_secs(5)),
            timeout_start: Duration::from_secs(60),
            min_uptime: Duration::from_millis(500),
            stop_signal: Signal(15),
            timeout_stop: Duration::from_secs(10),
            critical: true,
            contained: true,
        };
        same(behaviour.clone());
        for readiness in [Readiness::None, Readiness::Notify, Readiness::Reported] {
            same(Behaviour {
                readiness,
                liveness: None,
                watchdog: None,
                ..behaviour.clone()
            });
        }
        for role in [Role::Readiness, Role::Liveness] {
            same(ProbeReport {
                role,
                ok: role == Role::Liveness,
                at: t(999),
                message: "HTTP 503".into(),
                failures_in_row: 4,
            });
        }
        same(ExitStatus::Code(-1));
        let id = ServiceId {
            index: 3,
            generation: 2,
        };
        for verb in [Verb::Start, Verb::Stop, Verb::Restart] {
            same(Waiter {
                request: RequestId(12),
                verb,
                services: vec![(id, Some(RunId(4))), (id, None)],
            });
        }
        same(Settings {
            shutdown_timeout: Duration::from_secs(30),
            exit_when_idle: true,
        });
        let err = decode::<State>(&[9]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown State tag 9 at byte 0"));
        let err = decode::<StateName>(&[7]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown StateName tag 7 at byte 0"));
    }
}
