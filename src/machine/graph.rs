//! The dependency graph, as the core reads it: whether a service's
//! dependencies are met, whether a dependent still holds it up, whether a
//! pending service can ever start.
//!
//! Walks use an explicit stack, never recursion (the graph is checked acyclic
//! at load, but a stack also bounds the work to the part of the graph walked).

use std::collections::HashSet;

use super::service::{State, StateName};
use super::{ServiceId, Supervisor};

impl Supervisor {
    /// Nothing running, starting, restarting, or pending with a chance to start.
    pub(super) fn is_idle(&self) -> bool {
        self.up_count() == 0 && self.count(StateName::Restarting) == 0 && self.pending_all_blocked()
    }

    /// Every pending service waits for a dependency that will never be met.
    /// Walks the services only when some are pending.
    pub(super) fn pending_all_blocked(&self) -> bool {
        self.count(StateName::Pending) == 0
            || self
                .services()
                .filter(|s| s.state == State::Pending)
                .all(|s| self.is_blocked(s.id))
    }

    /// A pending service that can never start: a dependency, transitively, is
    /// failed or stopped (and not completed the way it would need).
    pub(super) fn is_blocked(&self, id: ServiceId) -> bool {
        let mut stack = vec![id];
        let mut seen = HashSet::new();
        while let Some(next) = stack.pop() {
            let Some(service) = self.get(next) else {
                continue;
            };
            if !seen.insert(next) {
                continue;
            }
            for (dep, cond) in &service.deps {
                let Some(d) = self.get(*dep) else { continue };
                if d.meets(*cond) {
                    continue;
                }
                match d.state {
                    State::Failed | State::Stopped { .. } => return true,
                    State::Pending => stack.push(*dep),
                    State::Spawning { .. }
                    | State::Draining { .. }
                    | State::Starting { .. }
                    | State::Running { .. }
                    | State::Stopping { .. }
                    | State::Restarting { .. } => {}
                }
            }
        }
        false
    }

    // ----- the dependency graph -----

    pub(super) fn dependencies_met(&self, id: ServiceId) -> bool {
        self.get(id).is_some_and(|s| {
            s.deps
                .iter()
                .all(|(dep, cond)| self.get(*dep).is_some_and(|d| d.meets(*cond)))
        })
    }

    /// Whether a service that depends on `id`, directly or through services
    /// that are down (a finished oneshot passes the order on), is up.
    pub(super) fn held_up(&self, id: ServiceId) -> bool {
        let Some(service) = self.get(id) else {
            return false;
        };
        let mut stack = service.dependents.clone();
        let mut seen = HashSet::new();
        while let Some(next) = stack.pop() {
            if !seen.insert(next) {
                continue;
            }
            let Some(d) = self.get(next) else { continue };
            if d.state.is_up() {
                return true;
            }
            stack.extend(d.dependents.iter().copied());
        }
        false
    }

    /// `id` went down: what it held up may stop now, also through services in
    /// between that are down themselves (a finished oneshot passes the order
    /// on), so queue its dependencies, transitively through the down ones.
    pub(super) fn queue_held_dependencies(&mut self, id: ServiceId) {
        let mut stack: Vec<ServiceId> = match self.get(id) {
            Some(s) => s.deps.iter().map(|(d, _)| *d).collect(),
            None => return,
        };
        let mut seen = HashSet::new();
        while let Some(next) = stack.pop() {
            if !seen.insert(next) {
                continue;
            }
            let Some(d) = self.get(next) else { continue };
            if d.state.is_up() {
                self.queue(next);
            } else {
                stack.extend(d.deps.iter().map(|(dep, _)| *dep));
            }
        }
    }

    /// Resolve dependency names to ids and fill in the reverse edges.
    pub(super) fn resolve_dependencies(&mut self) {
        let by_name = &self.by_name;
        let mut edges: Vec<(ServiceId, ServiceId)> = Vec::new();
        for slot in &mut self.slots {
            let Some(service) = slot.service.as_mut() else {
                continue;
            };
            service.deps = service
                .behaviour
                .conditions()
                .filter_map(|(name, cond)| by_name.get(name).map(|id| (*id, cond)))
                .collect();
            service.dependents.clear();
            edges.extend(service.deps.iter().map(|(dep, _)| (*dep, service.id)));
        }
        for (dep, dependent) in edges {
            if let Some(d) = self
                .slots
                .get_mut(dep.index as usize)
                .filter(|s| s.generation == dep.generation)
                .and_then(|s| s.service.as_mut())
            {
                d.dependents.push(dependent);
            }
        }
    }
}
