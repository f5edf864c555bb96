//! The newest full definition of every service, and its revision number.
//!
//! The core decides on a service's `Behaviour`; the shell spawns and probes
//! from the full `ServiceSpec`. Both refer to "the newest definition" by a
//! revision the catalog assigns: a definition identical to the one before keeps
//! its revision (a reload leaves the service alone), any difference gets a new
//! one (a reload restarts it).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, ServiceSpec};
use crate::machine::{Behaviour, Definition};

struct Entry {
    spec: Arc<ServiceSpec>,
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
    /// in config order. Names not in `config` are dropped: their services are
    /// never spawned again.
    pub fn update(&mut self, config: &Config) -> Vec<Definition> {
        let mut entries = HashMap::with_capacity(config.services.len());
        let mut defs = Vec::with_capacity(config.services.len());
        for spec in &config.services {
            let name: Arc<str> = Arc::from(spec.name.as_str());
            let revision = match self.entries.remove(&name) {
                Some(old) if *old.spec == *spec => old.revision,
                Some(_) | None => {
                    self.next_revision += 1;
                    self.next_revision
                }
            };
            defs.push(Definition {
                name: name.clone(),
                revision,
                behaviour: Behaviour::of(spec),
            });
            let spec = Arc::new(spec.clone());
            entries.insert(name, Entry { spec, revision });
        }
        self.entries = entries;
        defs
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
        let first = catalog.update(&config(vec![spec("a"), spec("b")]));
        let mut b = spec("b");
        b.command = vec!["/bin/true".into()];
        let second = catalog.update(&config(vec![spec("a"), b.clone()]));
        assert_eq!(first[0].revision, second[0].revision);
        assert_ne!(first[1].revision, second[1].revision);
        // Back to the first definition is a change too: the service runs `b` now.
        let third = catalog.update(&config(vec![spec("a"), spec("b")]));
        assert_ne!(third[1].revision, second[1].revision);
        let fourth = catalog.update(&config(vec![spec("a"), spec("b")]));
        assert_eq!(fourth[1].revision, third[1].revision);
        assert!(catalog.spec("b").is_some() && catalog.spec("c").is_none());
    }
}
