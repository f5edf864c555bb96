//! Control requests: what each `tend` client command does inside the loop.
//!
//! Names are checked before anything is done, so a request naming an unknown
//! service changes nothing and gets an error reply.

use log::info;

use super::Runtime;
use super::control::ClientId;
use super::status::service_status;
use crate::config::Signal;
use crate::machine::{Event, ServiceId};
use crate::protocol::{Reply, Request, ServiceStatus};

impl Runtime {
    /// Answer one request (or a parse error) from a control client.
    pub(super) fn handle_request(&mut self, client: ClientId, request: Result<Request, String>) {
        let reply = match request {
            Ok(request) => self.answer(client, request),
            Err(problem) => Reply::error(problem),
        };
        if let Some(control) = &mut self.control {
            control.reply(self.poll.registry(), client, &reply);
        }
    }

    fn answer(&mut self, client: ClientId, request: Request) -> Reply {
        match request {
            Request::Status { names } => match self.resolve(&names) {
                Ok(ids) => self.status_reply(&ids),
                Err(problem) => Reply::error(problem),
            },
            Request::Start { names } => {
                self.act(&names, |service| Event::StartRequested { service })
            }
            Request::Stop { names } => self.act(&names, |service| Event::StopRequested { service }),
            Request::Restart { names } => {
                self.act(&names, |service| Event::RestartRequested { service })
            }
            Request::Signal { name, signal } => self.send_signal(&name, &signal),
            Request::Reload => match self.reload() {
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
            Request::Shutdown => {
                info!("shutdown requested");
                self.feed(Event::ShutdownRequested);
                Reply::ok()
            }
            Request::Logs {
                name,
                lines,
                follow,
            } => self.logs(client, &name, lines, follow),
        }
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

    /// start/stop/restart: check every name, then act on each.
    fn act(&mut self, names: &[String], event: impl Fn(ServiceId) -> Event) -> Reply {
        if names.is_empty() {
            return Reply::error("name at least one service");
        }
        let ids = match self.resolve(names) {
            Ok(ids) => ids,
            Err(problem) => return Reply::error(problem),
        };
        if self.sup.is_shutting_down() {
            return Reply::error("tend is shutting down");
        }
        for id in &ids {
            self.feed(event(*id));
        }
        self.status_reply(&ids)
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

    fn logs(&mut self, client: ClientId, name: &str, lines: Option<usize>, follow: bool) -> Reply {
        let Some(id) = self.sup.find(name) else {
            return Reply::error(format!("no such service: {name}"));
        };
        let recent = self
            .io
            .get(id.0)
            .map(|io| io.ring.last(lines))
            .unwrap_or_default();
        if follow && let Some(control) = &mut self.control {
            control.follow(client, name);
        }
        Reply {
            lines: Some(recent),
            ..Reply::ok()
        }
    }
}
