//! `tend start|stop|restart` without `--no-wait`: the reply is held until every
//! named service has settled, so the client blocks on its socket instead of
//! polling. A waiter is checked after each turn of the loop that changed a
//! state, and answered when its services settle, one of them cannot, or its
//! deadline (part of the loop's poll timeout) passes.
//!
//! Must not: act on services; the request already did.

use std::time::Instant;

use super::control::ClientId;
use crate::machine::ServiceId;
use crate::protocol::ServiceStatus;

/// Which change a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

/// A client waiting for its services to settle.
pub struct Waiter {
    pub client: ClientId,
    pub verb: Verb,
    pub ids: Vec<ServiceId>,
    /// The services as they were when the request came (restart: the old pid).
    pub before: Vec<ServiceStatus>,
    pub deadline: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Waiting,
    Done,
    Failed(String),
}

/// Whether `now` is where `verb` was meant to take the service.
pub fn settle(verb: Verb, now: &ServiceStatus, before: Option<&ServiceStatus>) -> Settle {
    let why = || {
        let detail = now.detail();
        if detail.is_empty() {
            format!("{} is {}", now.name, now.state)
        } else {
            format!("{} is {}: {detail}", now.name, now.state)
        }
    };
    let oneshot = now.service_type == "oneshot";
    match verb {
        Verb::Stop => match now.state.as_str() {
            "stopped" | "failed" => Settle::Done,
            _ => Settle::Waiting,
        },
        Verb::Start | Verb::Restart => {
            let old_pid = before.and_then(|b| b.pid).filter(|_| verb == Verb::Restart);
            match now.state.as_str() {
                "running" if old_pid.is_none() || now.pid != old_pid => Settle::Done,
                "stopped" if oneshot && now.completed => Settle::Done,
                "failed" | "restarting" => Settle::Failed(why()),
                "stopped" if !oneshot => Settle::Failed(why()),
                _ => Settle::Waiting,
            }
        }
    }
}

/// The verdict over all of a waiter's services: the first failure, else done
/// when all are, else waiting.
pub fn settle_all(verb: Verb, now: &[ServiceStatus], before: &[ServiceStatus]) -> Settle {
    let mut all_done = true;
    for s in now {
        match settle(verb, s, before.iter().find(|b| b.name == s.name)) {
            Settle::Failed(why) => return Settle::Failed(why),
            Settle::Waiting => all_done = false,
            Settle::Done => {}
        }
    }
    if all_done {
        Settle::Done
    } else {
        Settle::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sample_status as status;

    #[test]
    fn settle_rules() {
        let running = status("a", "running");
        assert_eq!(settle(Verb::Start, &running, None), Settle::Done);
        assert_eq!(
            settle(Verb::Start, &status("a", "starting"), None),
            Settle::Waiting
        );
        assert!(matches!(
            settle(Verb::Start, &status("a", "failed"), None),
            Settle::Failed(_)
        ));
        assert_eq!(
            settle(Verb::Stop, &status("a", "stopping"), None),
            Settle::Waiting
        );
        assert_eq!(
            settle(Verb::Stop, &status("a", "stopped"), None),
            Settle::Done
        );
        // restart: the same pid is not done yet.
        assert_eq!(
            settle(Verb::Restart, &running, Some(&running)),
            Settle::Waiting
        );
        let mut new = running.clone();
        new.pid = Some(11);
        assert_eq!(settle(Verb::Restart, &new, Some(&running)), Settle::Done);
        let mut job = status("j", "stopped");
        job.service_type = "oneshot".into();
        job.completed = true;
        assert_eq!(settle(Verb::Start, &job, None), Settle::Done);
    }

    #[test]
    fn all_settle_only_when_each_does_and_a_failure_wins() {
        let running = status("a", "running");
        let stopping = status("b", "stopping");
        assert_eq!(
            settle_all(
                Verb::Start,
                &[running.clone(), status("b", "starting")],
                &[]
            ),
            Settle::Waiting
        );
        assert_eq!(
            settle_all(Verb::Start, &[running.clone(), status("b", "running")], &[]),
            Settle::Done
        );
        assert!(matches!(
            settle_all(Verb::Start, &[status("b", "starting"), status("c", "failed")], &[]),
            Settle::Failed(why) if why.starts_with("c is failed")
        ));
        assert_eq!(settle_all(Verb::Stop, &[stopping], &[]), Settle::Waiting);
    }
}
