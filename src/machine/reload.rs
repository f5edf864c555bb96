//! Reload (SPEC §5): the difference between what each service will run and a
//! new config, applied as inputs like any other.
//!
//! Services are matched by name, one slot per name for ever: removed ones are
//! stopped and then forgotten; added ones are started; changed ones are
//! restarted with their new definition (the old process stops as its own
//! definition says); unchanged ones are not touched (same pid, same restart
//! count). A name removed and then added back while its old process is still
//! stopping reuses the same slot, so its new process starts only once the old
//! one is gone. Each service is compared against the *newest* definition it
//! was given, so a second reload during a slow stop compares with what the
//! service will run next, not with what is still running.

use std::collections::HashSet;
use std::sync::Arc;

use super::behaviour::Behaviour;
use super::event::Reload;
use super::service::Goal;
use super::transition::Input;
use super::{Instant, Supervisor};

/// One service of a config as the core sees it. Equal `revision`s (assigned by
/// the shell, which compares the full definitions) mean identical definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: Arc<str>,
    pub revision: u64,
    pub behaviour: Behaviour,
}

/// What a reload did, by service name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub added: Vec<Arc<str>>,
    pub removed: Vec<Arc<str>>,
    pub changed: Vec<Arc<str>>,
    pub kept: Vec<Arc<str>>,
}

impl ReloadPlan {
    /// `2 added, 1 removed, 1 changed, 3 unchanged`.
    pub fn summary(&self) -> String {
        format!(
            "{} added, {} removed, {} changed, {} unchanged",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.kept.len()
        )
    }
}

impl Supervisor {
    /// Apply a new, valid config (nothing during a shutdown). Time linear in
    /// the number of services and dependencies.
    pub(super) fn reload(&mut self, reload: Reload, now: Instant) -> ReloadPlan {
        let mut plan = ReloadPlan::default();
        if self.shutdown.is_some() {
            return plan;
        }
        self.settings = reload.settings;
        let wanted: HashSet<&str> = reload.services.iter().map(|d| &*d.name).collect();
        let gone: Vec<_> = self
            .services()
            .filter(|s| !wanted.contains(s.name()))
            .map(|s| (s.id, s.name.clone()))
            .collect();
        for (id, name) in gone {
            self.step(id, Input::Remove, now);
            plan.removed.push(name);
        }
        let mut order = Vec::with_capacity(reload.services.len());
        for def in reload.services {
            let known = self.find_any(&def.name).and_then(|id| self.get(id));
            match known {
                None => {
                    plan.added.push(def.name.clone());
                    order.push(self.add(def, now));
                }
                Some(s) if s.goal != Goal::Remove && s.revision == def.revision => {
                    plan.kept.push(def.name.clone());
                    order.push(s.id);
                }
                Some(s) => {
                    let id = s.id;
                    if s.goal == Goal::Remove {
                        plan.added.push(def.name.clone()); // back while still stopping
                    } else {
                        plan.changed.push(def.name.clone());
                    }
                    self.step(id, Input::Redefine(Box::new(def)), now);
                    order.push(id);
                }
            }
        }
        self.order = order;
        self.resolve_dependencies();
        // Dependencies may have changed: every service decides again.
        let all: Vec<_> = self
            .slots
            .iter()
            .filter_map(|s| s.service.as_ref())
            .map(|s| s.id)
            .collect();
        for id in all {
            self.queue(id);
        }
        plan
    }
}
