//! Control requests: what each `tend` client command does inside the loop.
//!
//! Names are checked before anything is done, so a request naming an unknown
//! service changes nothing and gets an error reply.

use log::info;

use super::Runtime;
use super::control::ClientId;
use super::status::service_status;
use super::waiters::{Settle, Verb, Waiter, settle_all};
use crate::config::Signal;
use crate::machine::{Event, ServiceId};
use crate::protocol::{Reply, Request, SETTLE_TIMEOUT, ServiceStatus};

impl Runtime {
    /// Answer one request (or a parse error) from a control client.
    pub(super) fn handle_request(&mut self, client: ClientId, request: Result<Request, String>) {
        let reply = match request {
            Ok(request) => self.answer(client, request),
            Err(problem) => Some(Reply::error(problem)),
        };
        if let Some(reply) = reply {
            self.reply(client, &reply);
        }
    }

    fn reply(&mut self, client: ClientId, reply: &Reply) {
        if let Some(control) = &mut self.control {
            control.reply(self.poll.registry(), client, reply);
        }
    }

    /// The reply, or None when it is held back (a waiting start/stop/restart).
    fn answer(&mut self, client: ClientId, request: Request) -> Option<Reply> {
        Some(match request {
            Request::Status { names } => match self.resolve(&names) {
                Ok(ids) => self.status_reply(&ids),
                Err(problem) => Reply::error(problem),
            },
            Request::Start { names, wait } => {
                return self.act(client, &names, Verb::Start, wait);
            }
            Request::Stop { names, wait } => return self.act(client, &names, Verb::Stop, wait),
            Request::Restart { names, wait } => {
                return self.act(client, &names, Verb::Restart, wait);
            }
            Request::Signal { name, signal } => self.send_signal(&name, &signal),
            Request::Reload {} => match self.reload() {
                Ok(plan) => Reply {
                    message: Some(plan.summary()),
                    ..Reply::ok()
                },
                Err(problems) => Reply {
                    problems,
                    ..Reply::error(format!(
                        "{} is invalid; nothing was changed",
                        self.config_path.display()
                    ))
                },
            },
            Request::Shutdown {} => {
                info!("shutdown requested");
                if let Some(control) = &mut self.control {
                    control.hold_until_exit(client); // closed when tend exits
                }
                self.feed(Event::ShutdownRequested);
                Reply::ok()
            }
            Request::Logs {
                mut names,
                name,
                lines,
                since_ms,
                follow,
            } => {
                names.extend(name); // the field of older clients
                self.logs(client, &names, lines, since_ms, follow)
            }
        })
    }

    /// Ids for `names` (all services when empty), or which name is unknown.
    fn resolve(&self, names: &[String]) -> Result<Vec<ServiceId>, String> {
        if names.is_empty() {
            return Ok(self.sup.services().map(|s| s.id).collect());
        }
        names
            .iter()
            .map(|n| {
                self.sup
                    .find(n)
                    .ok_or_else(|| format!("no such service: {n}"))
            })
            .collect()
    }

    fn statuses(&self, ids: &[ServiceId]) -> Vec<ServiceStatus> {
        let now = self.now();
        ids.iter()
            .filter_map(|id| self.sup.get(*id))
            .map(|s| service_status(&self.sup, s, now))
            .collect()
    }

    fn status_reply(&self, ids: &[ServiceId]) -> Reply {
        Reply {
            services: Some(self.statuses(ids)),
            ..Reply::ok()
        }
    }

    /// start/stop/restart: check every name, then act on each. With `wait`, the
    /// reply is held until the services settle (see `waiters`).
    fn act(&mut self, client: ClientId, names: &[String], verb: Verb, wait: bool) -> Option<Reply> {
        if names.is_empty() {
            return Some(Reply::error("name at least one service"));
        }
        let ids = match self.resolve(names) {
            Ok(ids) => ids,
            Err(problem) => return Some(Reply::error(problem)),
        };
        if self.sup.is_shutting_down() {
            return Some(Reply::error("tend is shutting down"));
        }
        let before = if wait {
            self.statuses(&ids)
        } else {
            Vec::new()
        };
        for &service in &ids {
            self.feed(match verb {
                Verb::Start => Event::StartRequested { service },
                Verb::Stop => Event::StopRequested { service },
                Verb::Restart => Event::RestartRequested { service },
            });
        }
        if !wait {
            return Some(self.status_reply(&ids));
        }
        self.waiters.push(Waiter {
            client,
            verb,
            ids,
            before,
            deadline: std::time::Instant::now() + SETTLE_TIMEOUT,
        });
        self.states_changed = true; // check it at the end of this turn
        None
    }

    /// Answer the waiters whose services settled, could not, or ran out of time.
    /// Runs at the end of a loop turn, only when a state changed or a waiter's
    /// deadline passed.
    pub(super) fn answer_waiters(&mut self, now: std::time::Instant) {
        let timed_out = self.waiters.iter().any(|w| w.deadline <= now);
        if !std::mem::take(&mut self.states_changed) && !timed_out {
            return;
        }
        let waiters = std::mem::take(&mut self.waiters);
        for waiter in waiters {
            let services = self.statuses(&waiter.ids);
            let reply = match settle_all(waiter.verb, &services, &waiter.before) {
                Settle::Done => Reply {
                    services: Some(services),
                    ..Reply::ok()
                },
                Settle::Failed(why) => Reply {
                    services: Some(services),
                    ..Reply::error(why)
                },
                Settle::Waiting if waiter.deadline <= now => Reply {
                    services: Some(services),
                    ..Reply::error(format!(
                        "gave up waiting after {}s; see `tend status`",
                        SETTLE_TIMEOUT.as_secs()
                    ))
                },
                Settle::Waiting => {
                    self.waiters.push(waiter);
                    continue;
                }
            };
            self.reply(waiter.client, &reply);
        }
    }

    fn send_signal(&mut self, name: &str, signal: &str) -> Reply {
        let Some(id) = self.sup.find(name) else {
            return Reply::error(format!("no such service: {name}"));
        };
        let signal = match Signal::parse(signal) {
            Ok(signal) => signal,
            Err(e) => return Reply::error(e.to_string()),
        };
        let Some(pid) = self.sup.get(id).and_then(|s| s.state.pid()) else {
            return Reply::error(format!("{name} has no running process"));
        };
        info!(
            "{name}: sending {signal} to process group {} (requested)",
            pid.0
        );
        match super::sys::kill_group(pid.0, signal.0) {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::error(format!("cannot signal {name}: {e}")),
        }
    }

    /// Recent lines of `names` (all services when empty), merged in the order
    /// they were read (`ring::merge`); with `follow`, the client stays to get
    /// new ones.
    fn logs(
        &mut self,
        client: ClientId,
        names: &[String],
        lines: Option<usize>,
        since_ms: Option<u64>,
        follow: bool,
    ) -> Reply {
        let mut ids = match self.resolve(names) {
            Ok(ids) => ids,
            Err(problem) => return Reply::error(problem),
        };
        ids.sort_unstable();
        ids.dedup(); // `tend logs a a` shows a's lines once
        let rings: Vec<(&str, &super::ring::LogRing)> = ids
            .iter()
            .filter_map(|id| Some((self.sup.get(*id)?.name(), &self.io.get(id.0)?.ring)))
            .collect();
        let merged = super::ring::merge(&rings, lines, since_ms);
        if follow && let Some(control) = &mut self.control {
            let which = (!names.is_empty()).then(|| names.to_vec());
            if let Err(problem) = control.follow(client, which) {
                return Reply::error(problem);
            }
        }
        Reply {
            lines: Some(merged.lines),
            message: merged
                .truncated
                .then(|| "older lines were left out to keep the reply small".to_string()),
            ..Reply::ok()
        }
    }
}
