//! Reload: the difference between the running definition and a new config, and
//! applying it (SPEC §5): removed services are stopped and forgotten, added ones
//! started, changed ones restarted with their new definition, unchanged ones left
//! alone (same pid, same restart count).

use std::collections::{HashMap, HashSet};

use super::{AfterStop, Instant, Service, ServiceId, State, Supervisor};
use crate::config::{Config, ServiceSpec};

/// What a reload does, by service name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub kept: Vec<String>,
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

/// Compare two service lists by name (in time linear in their length).
pub fn diff(old: &[ServiceSpec], new: &[ServiceSpec]) -> ReloadPlan {
    let old_by_name: HashMap<&str, &ServiceSpec> =
        old.iter().map(|o| (o.name.as_str(), o)).collect();
    let new_names: HashSet<&str> = new.iter().map(|n| n.name.as_str()).collect();
    let mut plan = ReloadPlan::default();
    for spec in new {
        match old_by_name.get(spec.name.as_str()) {
            None => plan.added.push(spec.name.clone()),
            Some(o) if *o == spec => plan.kept.push(spec.name.clone()),
            Some(_) => plan.changed.push(spec.name.clone()),
        }
    }
    for spec in old {
        if !new_names.contains(spec.name.as_str()) {
            plan.removed.push(spec.name.clone());
        }
    }
    plan
}

impl Supervisor {
    /// Apply a new, valid config. Ignored during shutdown.
    pub fn reload(&mut self, config: &Config, now: Instant) -> (ReloadPlan, Vec<super::Action>) {
        if self.shutdown.is_some() {
            return (ReloadPlan::default(), Vec::new());
        }
        let old: Vec<ServiceSpec> = self.services().map(|s| s.spec.clone()).collect();
        let plan = diff(&old, &config.services);
        self.settings.shutdown_timeout = config.shutdown_timeout;
        self.settings.exit_when_idle = config.exit_when_idle;
        for name in &plan.removed {
            self.remove(name);
        }
        let added: HashSet<&str> = plan.added.iter().map(String::as_str).collect();
        let changed: HashSet<&str> = plan.changed.iter().map(String::as_str).collect();
        for spec in &config.services {
            if added.contains(spec.name.as_str()) {
                let id = ServiceId(self.services.len());
                self.by_name.insert(spec.name.clone(), id);
                self.services.push(Service::new(id, spec.clone()));
                self.dirty.push_back(id);
            } else if changed.contains(spec.name.as_str()) {
                self.replace(spec, now);
            }
        }
        self.resolve_dependencies();
        // Dependencies may have changed: every service decides again.
        for i in 0..self.services.len() {
            self.dirty.push_back(ServiceId(i));
        }
        (plan, self.finish(now))
    }

    fn remove(&mut self, name: &str) {
        let Some(id) = self.by_name.remove(name) else {
            return;
        };
        if let Some(service) = self.services.get_mut(id.0) {
            service.removed = true;
            service.wanted = false;
        }
        self.dirty.push_back(id);
    }

    /// Switch a service to a new definition, restarting it if it is up.
    fn replace(&mut self, spec: &ServiceSpec, now: Instant) {
        let Some(id) = self.by_name.get(&spec.name).copied() else {
            return;
        };
        let Some(service) = self.services.get_mut(id.0) else {
            return;
        };
        service.budget.clear();
        service.wanted = spec.enabled;
        let why = "changed by reload".to_string();
        match &mut service.state {
            State::Starting { pid: Some(_), .. } | State::Running { .. } => {
                service.replacement = Some(spec.clone());
                if spec.enabled {
                    self.begin_stop(id, AfterStop::Start, why, now);
                }
                // Not enabled any more: `evaluate` stops it (after its dependents).
            }
            State::Stopping { then, .. } => {
                service.replacement = Some(spec.clone());
                if spec.enabled {
                    *then = AfterStop::Start;
                }
            }
            State::Starting { pid: None, .. }
            | State::Pending
            | State::Stopped { .. }
            | State::Restarting { .. }
            | State::Failed => {
                service.spec = spec.clone();
                let next = if spec.enabled {
                    State::Pending
                } else {
                    State::Stopped { completed: false }
                };
                self.set_state(id, next, why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::tests_support::spec;

    #[test]
    fn diff_sorts_services_into_four_kinds() {
        let old = vec![spec("keep"), spec("change"), spec("drop")];
        let mut changed = spec("change");
        changed.command = vec!["/bin/true".into()];
        let new = vec![spec("keep"), changed, spec("add")];
        let plan = diff(&old, &new);
        assert_eq!(plan.added, ["add"]);
        assert_eq!(plan.removed, ["drop"]);
        assert_eq!(plan.changed, ["change"]);
        assert_eq!(plan.kept, ["keep"]);
        assert_eq!(plan.summary(), "1 added, 1 removed, 1 changed, 1 unchanged");
    }

    #[test]
    fn diff_of_identical_lists_keeps_all() {
        let old = vec![spec("a"), spec("b")];
        let plan = diff(&old, &old);
        assert_eq!(plan.kept, ["a", "b"]);
        assert!(plan.added.is_empty() && plan.removed.is_empty() && plan.changed.is_empty());
    }
}
