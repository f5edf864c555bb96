//! Control requests: what each `tend` client command turns into, and the
//! core's answers turned into replies.
//!
//! Reads (`status`, `logs`) are answered here at once. Everything that changes
//! something becomes a `Command` for the core, which answers it (at once, or
//! once the services settled); the reply is built from that typed answer. Names
//! are checked before anything is done, so a request naming an unknown service
//! changes nothing and gets an error reply.

use super::actions::last_error;
use super::control::ClientId;
use super::sampler::{STALE, STATUS_WAIT};
use super::status::{sample_targets, service_status, usage_of};
use super::{Parked, Pending, Runtime};
use crate::config::Signal;
use crate::machine::time::human;
use crate::machine::{Answer, Command, Event, RequestId, ServiceId};
use crate::protocol::{Reply, Request, ServiceStatus};

impl Runtime {
    /// Answer one request (or a parse error) from a control client.
    pub(super) fn handle_request(&mut self, client: ClientId, request: Result<Request, String>) {
        let reply = match request {
            Ok(request) => self.take(client, request),
            Err(problem) => Some(Reply::error(problem)),
        };
        if let Some(reply) = reply {
            self.reply(client, &reply);
        }
    }

    /// Sends `reply`, after what has been logged so far (as far as the log
    /// destination takes it without blocking): a client told that a service
    /// failed finds its last lines in the log.
    fn reply(&mut self, client: ClientId, reply: &Reply) {
        self.log.flush();
        if let Some(control) = &mut self.control {
            control.reply(self.poll.registry(), client, reply);
        }
    }

    /// The reply now, or `None` when the core will answer.
    fn take(&mut self, client: ClientId, request: Request) -> Option<Reply> {
        let (services, command) = match request {
            Request::Status { names } => {
                let ids = match self.resolve(&names) {
                    Ok(ids) => ids,
                    Err(problem) => return Some(Reply::error(problem)),
                };
                if self.want_usage() {
                    return Some(self.status_reply(&ids));
                }
                // Figures too old (or none): wait for the whole sweep.
                let recent = self.sampler.age(self.now()).is_some_and(|age| age < STALE);
                if recent && !self.sampler.sweep_fits(STATUS_WAIT) {
                    // A large system: the sweep cannot end in time.
                    return Some(self.status_reply(&ids));
                }
                let until = recent.then(|| self.now().saturating_add(STATUS_WAIT));
                self.parked.push(Parked {
                    client,
                    services: ids,
                    until,
                });
                return None;
            }
            Request::Logs {
                mut names,
                name,
                lines,
                since_ms,
                follow,
            } => {
                names.extend(name); // the field of older clients
                return Some(self.logs(client, &names, lines, since_ms, follow));
            }
            Request::Start { names, wait }
            | Request::Stop { names, wait }
            | Request::Restart { names, wait }
                if names.is_empty() =>
            {
                let _ = wait;
                return Some(Reply::error("name at least one service"));
            }
            Request::Start { names, wait } => match self.resolve(&names) {
                Ok(ids) => (
                    ids.clone(),
                    Command::Start {
                        services: ids,
                        wait,
                    },
                ),
                Err(problem) => return Some(Reply::error(problem)),
            },
            Request::Stop { names, wait } => match self.resolve(&names) {
                Ok(ids) => (
                    ids.clone(),
                    Command::Stop {
                        services: ids,
                        wait,
                    },
                ),
                Err(problem) => return Some(Reply::error(problem)),
            },
            Request::Restart { names, wait } => match self.resolve(&names) {
                Ok(ids) => (
                    ids.clone(),
                    Command::Restart {
                        services: ids,
                        wait,
                    },
                ),
                Err(problem) => return Some(Reply::error(problem)),
            },
            Request::Signal { name, signal } => {
                let signal = match Signal::parse(&signal) {
                    Ok(signal) => signal,
                    Err(e) => return Some(Reply::error(e.to_string())),
                };
                let Some(service) = self.sup.find(&name) else {
                    return Some(Reply::error(format!("no such service: {name}")));
                };
                (vec![service], Command::Signal { service, signal })
            }
            Request::Reload {} => {
                let id = self.request_id();
                self.reload(Some((id, client)));
                return None;
            }
            Request::Reexec {} => {
                self.request_reexec(Some(client)); // answered by the new process
                return None;
            }
            Request::Shutdown {} => {
                if let Some(control) = &mut self.control {
                    control.hold_until_exit(client); // closed when tend exits
                }
                (Vec::new(), Command::Shutdown)
            }
        };
        let request = self.request_id();
        self.requests.insert(request, Pending { client, services });
        self.feed(Event::Command {
            request: Some(request),
            command,
        });
        None
    }

    fn request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
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

    /// True when the resource use figures are fresh; otherwise a sweep is
    /// under way (begun now if need be) and they will be (`sampler.rs`).
    pub(super) fn want_usage(&mut self) -> bool {
        if self.sampler.is_fresh(self.now()) {
            return true;
        }
        if !self.sampler.is_sweeping() {
            let targets = sample_targets(&self.sup, self.cgroups.as_ref());
            self.sampler.begin(targets, self.now());
        }
        false
    }

    /// One slice of the sweep under way, once per loop turn. Status requests
    /// waiting for it are answered when it ends or their wait is over; the
    /// scrapes waiting for it when it ends.
    pub(super) fn sample(&mut self) {
        if self.sampler.is_sweeping() && self.sampler.step(self.now()) {
            self.answer_scrapes();
        }
        if self.parked.is_empty() {
            return;
        }
        let now = self.now();
        let sweeping = self.sampler.is_sweeping();
        let (due, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| !sweeping || p.until.is_some_and(|until| until <= now));
        self.parked = waiting;
        for parked in due {
            let reply = self.status_reply(&parked.services);
            self.reply(parked.client, &reply);
        }
    }

    /// The statuses of `ids`, with the last measured resource use.
    fn statuses(&self, ids: &[ServiceId]) -> Vec<ServiceStatus> {
        let cgroups = self.cgroups.as_ref();
        let usage = usage_of(&self.sup, ids, &self.sampler);
        let measured = self.sampler.measured_at();
        let wall = self.clock.wall_start_ms;
        ids.iter()
            .filter_map(|id| self.sup.get(*id))
            .map(|s| {
                let usage = usage.get(&s.id).copied().zip(measured);
                service_status(&self.sup, s, self.now(), wall, usage, cgroups)
            })
            .collect()
    }

    fn status_reply(&self, ids: &[ServiceId]) -> Reply {
        Reply {
            services: Some(self.statuses(ids)),
            ..Reply::ok()
        }
    }

    /// The core answered `request`: reply to its client.
    pub(super) fn answer(&mut self, request: RequestId, answer: Answer) {
        let Some(pending) = self.requests.remove(&request) else {
            return;
        };
        let services = (!pending.services.is_empty()).then(|| self.statuses(&pending.services));
        let name = |id: ServiceId| {
            self.sup
                .get(id)
                .map(|s| s.name().to_string())
                .unwrap_or_default()
        };
        let error = match answer {
            Answer::Done => None,
            Answer::Reloaded(plan) => {
                let reply = Reply {
                    message: Some(plan.summary()),
                    ..Reply::ok()
                };
                return self.reply(pending.client, &reply);
            }
            Answer::NotSettled { service, state } => {
                let why = self.sup.get(service).and_then(last_error);
                Some(match why {
                    Some(why) => format!("{} is {state}: {why}", name(service)),
                    None => format!("{} is {state}", name(service)),
                })
            }
            Answer::Removed { name } => Some(format!("{name} was removed from the config")),
            Answer::TimedOut { after } => Some(format!(
                "gave up waiting after {}; see `tend status`",
                human(after)
            )),
            Answer::NoProcess { service } => {
                Some(format!("{} has no running process", name(service)))
            }
            Answer::ShuttingDown => Some("tend is shutting down".to_string()),
        };
        let reply = match error {
            None => Reply {
                services,
                ..Reply::ok()
            },
            Some(error) => Reply {
                services,
                ..Reply::error(error)
            },
        };
        self.reply(pending.client, &reply);
    }

    /// `tend reload` of a config that does not validate.
    pub(super) fn reply_invalid_config(&mut self, client: ClientId, problems: Vec<String>) {
        let reply = Reply {
            problems,
            ..Reply::error(format!(
                "{} is invalid; nothing was changed",
                self.config_path.display()
            ))
        };
        self.reply(client, &reply);
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
            .filter_map(|id| Some((self.sup.get(*id)?.name(), &self.io.get(id)?.ring)))
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
