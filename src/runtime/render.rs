//! The core's typed reasons, failures, answers and notes, in words.
//!
//! The core never formats a message; everything a person reads about a
//! decision (log lines, `last_error`, a client's error) is written here, so
//! the wording lives in one place and the core's tests compare values.

use std::fmt::{self, Display, Formatter};

use crate::config::Signal;
use crate::machine::time::human;
use crate::machine::{Exit, ExitStatus, Failure, Transition, Why};

/// `exited with code 3`, `killed by SIGKILL`.
pub struct Status(pub ExitStatus);

impl Display for Status {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            ExitStatus::Code(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signal(n) => write!(f, "killed by {}", Signal(n)),
        }
    }
}

/// `exited with code 3 after 2.1s`.
pub struct Ended<'a>(pub &'a Exit);

impl Display for Ended<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {}", Status(self.0.status), human(self.0.after))
    }
}

/// A failure as `last_error` and the log show it.
pub struct Problem<'a>(pub &'a Failure);

impl Display for Problem<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Failure::Spawn(error) => write!(f, "spawn failed: {error}"),
            Failure::Exit(exit) => write!(f, "{}", Ended(exit)),
            Failure::EarlyExit(exit) => write!(f, "{} before it was up", Ended(exit)),
            Failure::NotReady(timeout) => {
                write!(f, "not ready within timeout_start ({})", human(*timeout))
            }
            Failure::Unhealthy { failures, message } => {
                let times = if *failures == 1 { "time" } else { "times" };
                write!(
                    f,
                    "liveness check failed {failures} {times} in a row: {message}"
                )
            }
            Failure::Watchdog(timeout) => {
                write!(f, "no WATCHDOG=1 within the watchdog ({})", human(*timeout))
            }
            Failure::Stopped { cause, exit } => {
                write!(f, "{}; {}", Problem(cause), Ended(exit))
            }
            Failure::GaveUp {
                cause,
                restarts,
                window,
            } => write!(
                f,
                "{}; giving up after {restarts} restarts in {}",
                Problem(cause),
                human(*window)
            ),
        }
    }
}

/// Why a state changed; empty when the change says it all.
pub struct Reason<'a>(pub &'a Why);

impl Display for Reason<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Why::StartRequested => f.write_str("start requested"),
            Why::Needed => f.write_str("needed by a service that was started"),
            Why::RestartRequested => f.write_str("restart requested"),
            Why::StopRequested => f.write_str("stop requested"),
            Why::ShuttingDown => f.write_str("shutting down"),
            Why::Removed => f.write_str("removed from the config"),
            Why::Redefined => f.write_str("changed by reload"),
            Why::BackoffOver => f.write_str("backoff over"),
            Why::Spawned => Ok(()),
            Why::Ready { after } => write!(f, "ready after {}", human(*after)),
            Why::UpLongEnough { after } => write!(f, "up for {} (min_uptime)", human(*after)),
            Why::Completed(exit) | Why::Exited(exit) => write!(f, "{}", Ended(exit)),
            Why::Restarting {
                ended,
                delay,
                attempt,
                max,
                window,
            } => write!(
                f,
                "{}; restarting in {} (restart {attempt} of {max} in {})",
                Reason(ended),
                human(*delay),
                human(*window)
            ),
            Why::Failed(failure) => write!(f, "{}", Problem(failure)),
        }
    }
}

/// `web: running -> restarting (pid 42): exited with code 3 after 2.1s; ...`.
pub struct Change<'a>(pub &'a Transition);

impl Display for Change<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(f, "{}: {} -> {}", t.name, t.from, t.to)?;
        if let Some(pid) = t.pid {
            write!(f, " (pid {})", pid.0)?;
        }
        let why = Reason(&t.why).to_string();
        if !why.is_empty() {
            write!(f, ": {why}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::machine::{Pid, StateName};

    fn exit(code: i32, ms: u64) -> Exit {
        Exit {
            status: ExitStatus::Code(code),
            after: Duration::from_millis(ms),
        }
    }

    #[test]
    fn failures_read_as_sentences() {
        let cause = Failure::NotReady(Duration::from_secs(5));
        let stopped = Failure::Stopped {
            cause: Box::new(cause),
            exit: Exit {
                status: ExitStatus::Signal(15),
                after: Duration::from_millis(5000),
            },
        };
        assert_eq!(
            Problem(&stopped).to_string(),
            "not ready within timeout_start (5.0s); killed by SIGTERM after 5.0s"
        );
        let gave_up = Failure::GaveUp {
            cause: Box::new(Failure::Exit(exit(3, 2100))),
            restarts: 10,
            window: Duration::from_secs(60),
        };
        assert_eq!(
            Problem(&gave_up).to_string(),
            "exited with code 3 after 2.1s; giving up after 10 restarts in 1m0s"
        );
        assert_eq!(
            Problem(&Failure::Spawn(
                "No such file or directory (os error 2)".into()
            ))
            .to_string(),
            "spawn failed: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn a_restart_line_says_how_it_ended_and_what_comes_next() {
        let t = Transition {
            service: crate::machine::tests_support::some_id(),
            name: "web".into(),
            from: StateName::Running,
            to: StateName::Restarting,
            pid: None,
            why: Why::Restarting {
                ended: Box::new(Why::Failed(Failure::Exit(exit(3, 2100)))),
                delay: Duration::from_millis(1940),
                attempt: 2,
                max: 10,
                window: Duration::from_secs(60),
            },
        };
        assert_eq!(
            Change(&t).to_string(),
            "web: running -> restarting: exited with code 3 after 2.1s; restarting in 1.9s (restart 2 of 10 in 1m0s)"
        );
        let started = Transition {
            pid: Some(Pid(42)),
            to: StateName::Running,
            from: StateName::Pending,
            why: Why::Spawned,
            ..t
        };
        assert_eq!(
            Change(&started).to_string(),
            "web: pending -> running (pid 42)"
        );
    }
}
