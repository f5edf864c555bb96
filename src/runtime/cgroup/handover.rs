//! The service cgroups across `tend reexec`: the new process adopts them as
//! they are (the services in them keep running), never treating them as
//! leftovers of an earlier tend to kill. Only the inotify watch is new; the
//! drains in progress are started again by the caller from the core's
//! `draining` states (a drain kills what is left and watches for empty,
//! which is safe to do twice).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use mio::unix::SourceFd;
use mio::{Interest, Registry};

use super::drain::{Drains, Killer};
use super::setup::{self, Controller};
use super::{Cgroups, Group};
use crate::codec::wire::wire_struct;
use crate::config::CgroupLimits;
use crate::machine::ServiceId;
use crate::runtime::tokens::Tokens;

/// The cgroups as data.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupsSnapshot {
    root: PathBuf,
    own: bool,
    /// (service, its cgroup folder, the limits last written there).
    groups: Vec<(String, PathBuf, Option<CgroupLimits>)>,
    enabled: Vec<String>,
    warned: Vec<String>,
    /// How this kernel kills a cgroup, if known: `kill-file` or `rounds`.
    killer: Option<String>,
    removing: Vec<(ServiceId, String)>,
}

wire_struct!(CgroupsSnapshot {
    root,
    own,
    groups,
    enabled,
    warned,
    killer,
    removing,
});

fn names(set: &BTreeSet<Controller>) -> Vec<String> {
    set.iter().map(|c| c.name().to_string()).collect()
}

fn controllers(names: &[String]) -> BTreeSet<Controller> {
    let known = |n: &String| Controller::ALL.into_iter().find(|c| c.name() == n);
    names.iter().filter_map(known).collect()
}

impl Cgroups {
    pub fn handover(&self) -> CgroupsSnapshot {
        let groups: Vec<_> = self
            .groups
            .iter()
            .map(|(name, g)| (name.clone(), g.dir.clone(), g.limits))
            .collect();
        let killer = match self.killer {
            Killer::Unknown => None,
            Killer::KillFile => Some("kill-file".to_string()),
            Killer::Rounds => Some("rounds".to_string()),
        };
        let removing: Vec<_> = self.removing.iter().map(|(i, n)| (*i, n.clone())).collect();
        CgroupsSnapshot {
            root: self.root.clone(),
            own: self.own,
            groups,
            enabled: names(&self.enabled),
            warned: names(&self.warned),
            killer,
            removing,
        }
    }

    /// The cgroups of the old process, with a new watch for the drains.
    pub fn adopt(
        snapshot: CgroupsSnapshot,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<Cgroups, String> {
        let drains = Drains::new().map_err(|e| format!("cannot create an inotify watch: {e}"))?;
        let token = tokens.next();
        registry
            .register(&mut SourceFd(&drains.fd()), token, Interest::READABLE)
            .map_err(|e| format!("cannot watch cgroup events: {e}"))?;
        let mut groups = HashMap::new();
        for (name, dir, limits) in snapshot.groups {
            let procs = setup::cstring(&dir.join("cgroup.procs")).map_err(|e| e.to_string())?;
            groups.insert(name, Group { dir, procs, limits });
        }
        let killer = match snapshot.killer.as_deref() {
            Some("kill-file") => Killer::KillFile,
            Some("rounds") => Killer::Rounds,
            _ => Killer::Unknown,
        };
        Ok(Cgroups {
            root: snapshot.root,
            own: snapshot.own,
            groups,
            enabled: controllers(&snapshot.enabled),
            warned: controllers(&snapshot.warned),
            killer,
            drains,
            token,
            removing: snapshot.removing.into_iter().collect(),
            // A retry of busy controllers (the first ~30 ms after start) is
            // not handed over: the controllers stay as the kernel has them,
            // and the next reload enables what is missing.
            busy: None,
        })
    }
}
