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

    /// Each definition's name, revision and containment (in no particular
    /// order), and the next revision to give (what `tend reexec` hands over
    /// with the config).
    pub fn revisions(&self) -> (Vec<(String, u64, bool)>, u64) {
        let entries = self
            .entries
            .iter()
            .map(|(name, e)| (name.to_string(), e.revision, e.contained))
            .collect();
        (entries, self.next_revision)
    }

    /// The catalog of the old process: the services of `config` (the one it
    /// ran, not the file on disk) with the revisions it gave them.
    pub fn restore(
        config: &Config,
        revisions: &[(String, u64, bool)],
        next_revision: u64,
    ) -> Result<Catalog, String> {
        let by_name: HashMap<&str, (u64, bool)> = revisions
            .iter()
            .map(|(name, revision, contained)| (name.as_str(), (*revision, *contained)))
            .collect();
        let mut entries = HashMap::with_capacity(config.services.len());
        for spec in &config.services {
            let Some(&(revision, contained)) = by_name.get(spec.name.as_str()) else {
                return Err(format!("service {} has no revision", spec.name));
            };
            let entry = Entry {
                spec: Arc::new(spec.clone()),
                contained,
                revision,
            };
            entries.insert(Arc::from(spec.name.as_str()), entry);
        }
        if entries.len() != revisions.len() {
            return Err("the revisions name services the config does not have".to_string());
        }
        Ok(Catalog {
            entries,
            next_revision,
        })
    }

    /// The behaviour of `name`'s definition `revision`, if that is the one
    /// the catalog has (`tend reexec` leaves such behaviours out of the
    /// core's snapshot).
    pub fn behaviour(&self, name: &str, revision: u64) -> Option<Behaviour> {
        let entry = self.entries.get(name).filter(|e| e.revision == revision)?;
        let mut behaviour = Behaviour::of(&entry.spec);
        behaviour.contained = entry.contained;
        Some(behaviour)
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
    fn a_restored_catalog_gives_the_same_revisions() {
        let mut catalog = Catalog::default();
        let services = config(vec![spec("a"), spec("b")]);
        catalog.update(&services, |name| name == "a");
        let (revisions, next) = catalog.revisions();
        let mut restored = Catalog::restore(&services, &revisions, next).expect("restore");
        let sorted = |(mut list, next): (Vec<(String, u64, bool)>, u64)| {
            list.sort();
            (list, next)
        };
        assert_eq!(
            sorted(restored.revisions()),
            sorted((revisions.clone(), next))
        );
        for (name, revision, _) in &revisions {
            let behaviour = restored.behaviour(name, *revision);
            assert!(behaviour.is_some());
            assert_eq!(behaviour, catalog.behaviour(name, *revision));
            assert_eq!(restored.behaviour(name, revision + 100), None);
        }
        // A reload after the restore compares as the old catalog would have.
        let mut b = spec("b");
        b.command = vec!["/bin/true".into()];
        let changed = config(vec![spec("a"), b]);
        assert_eq!(
            restored.update(&changed, |name| name == "a"),
            catalog.update(&changed, |name| name == "a")
        );
        let fewer = config(vec![spec("a")]);
        assert!(Catalog::restore(&fewer, &revisions, next).is_err());
        assert!(Catalog::restore(&services, &revisions[..1], next).is_err());
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
