//! The newest full definition of every service, and its revision number.
//!
//! The core decides on a service's `Behaviour`; the shell spawns and probes
//! from the full `ServiceSpec`. Both refer to "the newest definition" by a
//! revision the catalog assigns: a definition identical to the one before keeps
//! its revision (a reload leaves the service alone), any difference gets a new
//! one (a reload restarts it). Whether a service runs in a cgroup of its own
//! (`Behaviour::contained`) is part of its definition too.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, ServiceSpec};
use crate::machine::{Behaviour, Definition};

struct Entry {
    spec: Arc<ServiceSpec>,
    contained: bool,
    revision: u64,
}

/// Service definitions by name, as of the last load or reload.
#[derive(Default)]
pub struct Catalog {
    entries: HashMap<Arc<str>, Entry>,
    next_revision: u64,
}

impl Catalog {
    /// Take the services of `config` and return their definitions for the core,
    /// in config order; `contained(name)`: the service has a cgroup of its own.
    /// Names not in `config` are dropped: their services are never spawned again.
    pub fn update(&mut self, config: &Config, contained: impl Fn(&str) -> bool) -> Vec<Definition> {
        let mut entries = HashMap::with_capacity(config.services.len());
        let mut defs = Vec::with_capacity(config.services.len());
        for spec in &config.services {
            let name: Arc<str> = Arc::from(spec.name.as_str());
            let contained = contained(&spec.name);
            let revision = match self.entries.remove(&name) {
                Some(old) if *old.spec == *spec && old.contained == contained => old.revision,
                Some(_) | None => {
                    self.next_revision += 1;
                    self.next_revision
                }
            };
            let mut behaviour = Behaviour::of(spec);
            behaviour.contained = contained;
            defs.push(Definition {
                name: name.clone(),
                revision,
                behaviour,
            });
            let spec = Arc::new(spec.clone());
            let entry = Entry {
                spec,
                contained,
                revision,
            };
            entries.insert(name, entry);
        }
        self.entries = entries;
        defs
    }

    /// Every newest definition (in no particular order).
    pub fn specs(&self) -> impl Iterator<Item = &Arc<ServiceSpec>> {
        self.entries.values().map(|e| &e.spec)
    }

    /// The newest definition of `name`.
    pub fn spec(&self, name: &str) -> Option<&Arc<ServiceSpec>> {
        self.entries.get(name).map(|e| &e.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::tests_support::{config, spec};

    #[test]
    fn identical_definitions_keep_their_revision_and_changes_get_a_new_one() {
        let mut catalog = Catalog::default();
        let none = |_: &str| false;
        let first = catalog.update(&config(vec![spec("a"), spec("b")]), none);
        let mut b = spec("b");
        b.command = vec!["/bin/true".into()];
        let second = catalog.update(&config(vec![spec("a"), b.clone()]), none);
        assert_eq!(first[0].revision, second[0].revision);
        assert_ne!(first[1].revision, second[1].revision);
        // Back to the first definition is a change too: the service runs `b` now.
        let third = catalog.update(&config(vec![spec("a"), spec("b")]), none);
        assert_ne!(third[1].revision, second[1].revision);
        let fourth = catalog.update(&config(vec![spec("a"), spec("b")]), none);
        assert_eq!(fourth[1].revision, third[1].revision);
        assert!(catalog.spec("b").is_some() && catalog.spec("c").is_none());
    }

    #[test]
    fn containment_is_part_of_the_definition() {
        let mut catalog = Catalog::default();
        let services = config(vec![spec("a"), spec("b")]);
        let first = catalog.update(&services, |name| name == "a");
        assert!(first[0].behaviour.contained && !first[1].behaviour.contained);
        // b gets a cgroup now: a new definition (the core restarts it).
        let second = catalog.update(&services, |_| true);
        assert_eq!(first[0].revision, second[0].revision);
        assert_ne!(first[1].revision, second[1].revision);
        assert!(second[1].behaviour.contained);
    }
}
