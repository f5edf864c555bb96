//! How the loop drives the endpoint: one `Runtime` method per place in the
//! turn (an event, the deadlines, the poll timeout, a reload), plus the
//! counting of facts the metrics show. `runtime/mod.rs` calls only these.

use std::time::Duration;

use log::{error, info};

use super::{MetricsServer, View, render};
use crate::config::Config;
use crate::machine::{Event, ServiceId};
use crate::runtime::Runtime;

impl Runtime {
    /// An event for the listener or a connection; answers the scrapes it
    /// completed with one exposition.
    pub(in crate::runtime) fn on_metrics_event(&mut self, event: &mio::event::Event) {
        let Some(server) = &mut self.metrics else {
            return;
        };
        let now = self.clock.now;
        server.handle_event(self.poll.registry(), &mut self.tokens, event, now);
        self.answer_scrapes();
    }

    /// Answers the scrapes waiting, once the resource use figures are fresh
    /// (a sweep is begun if they are not; its end calls this again).
    pub(in crate::runtime) fn answer_scrapes(&mut self) {
        if !self.metrics.as_ref().is_some_and(|m| m.has_scrapes()) {
            return;
        }
        if !self.want_usage() {
            return;
        }
        let body = self.render_metrics();
        if let Some(server) = &mut self.metrics {
            server.answer_scrapes(self.poll.registry(), body);
        }
    }

    /// The exposition as of this turn.
    pub(in crate::runtime) fn render_metrics(&self) -> String {
        let ids: Vec<ServiceId> = self.sup.services().map(|s| s.id).collect();
        let usage = crate::runtime::status::usage_of(&self.sup, &ids, &self.sampler);
        let counters = |id: ServiceId| self.io.get(&id).map(|io| io.counters).unwrap_or_default();
        let view = View {
            sup: &self.sup,
            unix_at_start: self.clock.unix_base,
            counters: &counters,
            usage: &usage,
            own: crate::runtime::usage::own(),
            start_time: self.metrics.as_ref().and_then(|m| m.start_time),
        };
        render(&view)
    }

    /// The endpoint's deadlines, once per turn.
    pub(in crate::runtime) fn metrics_deadlines(&mut self) {
        if let Some(server) = &mut self.metrics {
            let now = self.clock.now;
            server.handle_deadlines(self.poll.registry(), &mut self.tokens, now);
        }
    }

    /// How long the poll may sleep for the endpoint's sake.
    pub(in crate::runtime) fn metrics_timeout(&self) -> Option<Duration> {
        let at = self.metrics.as_ref()?.poll_deadline()?;
        Some(at.saturating_since(self.clock.now))
    }

    /// A fact about to be fed to the core: count the ones the metrics show.
    ///
    /// Every event on its way to the core passes here (`Runtime::feed`, and
    /// `execute` for the events its actions raise), so failed probe attempts
    /// are counted wherever they are reported.
    pub(in crate::runtime) fn count_fact(&mut self, event: &Event) {
        if let Event::ProbeResult {
            service,
            role,
            ok: false,
            ..
        } = event
            && self.sup.get(*service).is_some()
        {
            let io = self.io.entry(*service).or_default();
            io.counters.add_probe_failure(*role);
        }
    }

    /// Open, move or close the listener after a reload. A new address that
    /// cannot be bound leaves the old one serving.
    pub(in crate::runtime) fn rebind_metrics(&mut self, config: &Config) {
        let wanted = config.metrics_address;
        let current = self.metrics.as_ref().map(|m| m.address());
        if wanted == current {
            return;
        }
        let Some(address) = wanted else {
            info!("metrics endpoint closed");
            self.metrics = None;
            return;
        };
        let registry = self.poll.registry();
        let result = match &mut self.metrics {
            Some(server) => server.move_to(address, registry, &mut self.tokens),
            None => MetricsServer::bind(address, registry, &mut self.tokens)
                .map(|server| self.metrics = Some(server)),
        };
        match result {
            Ok(()) => info!("metrics at http://{address}/metrics"),
            Err(e) => match current {
                Some(old) => error!("{e}; metrics stay at http://{old}/metrics"),
                None => error!("{e}"),
            },
        }
    }
}
