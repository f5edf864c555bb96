//! Finding and preparing the `cgroup` folder (SPEC §10): which folder
//! `"auto"` means, whether a folder is a writable cgroup v2 one, which
//! controllers `cgroup_limits` need and which the folder offers, and the
//! warnings of `tend check`.
//!
//! Must not: decide to fail `tend run` (every problem here is a warning: tend
//! then runs without containment), or be called from the event loop's hot
//! path (it reads `/proc/self/mountinfo`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::parse;
use crate::config::{CgroupLimits, CgroupSetting, Config, ServiceSpec};
use crate::sys;

/// A controller a `cgroup_limits` field needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    /// Its name in `cgroup.controllers`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }

    /// The `cgroup_limits` field it serves.
    pub fn field(self) -> &'static str {
        match self {
            Controller::Memory => "memory_max",
            Controller::Cpu => "cpu_max",
            Controller::Pids => "pids_max",
        }
    }

    /// The file of a service's cgroup the limit is written to.
    pub fn file(self) -> &'static str {
        match self {
            Controller::Memory => "memory.max",
            Controller::Cpu => "cpu.max",
            Controller::Pids => "pids.max",
        }
    }

    /// The value for `limits`' field of this controller; `max` (no limit)
    /// when the field is not set.
    pub fn value(self, limits: &CgroupLimits) -> String {
        let set = match self {
            Controller::Memory => limits.memory_max.map(|n| n.to_string()),
            Controller::Cpu => limits
                .cpu_max
                .map(|c| format!("{} {}", c.quota_us, c.period_us)),
            Controller::Pids => limits.pids_max.map(|n| n.to_string()),
        };
        set.unwrap_or_else(|| "max".to_string())
    }

    /// Whether `limits` sets this controller's field.
    pub fn is_used_by(self, limits: &CgroupLimits) -> bool {
        match self {
            Controller::Memory => limits.memory_max.is_some(),
            Controller::Cpu => limits.cpu_max.is_some(),
            Controller::Pids => limits.pids_max.is_some(),
        }
    }
}

/// The `cgroup` folder tend creates service cgroups in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub dir: PathBuf,
    /// It is tend's own cgroup: tend moves into `tend-self` first.
    pub own: bool,
}

/// Why the `cgroup` folder cannot be used.
#[derive(Debug)]
pub struct Unusable(pub String);

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The folder `setting` names, checked: it exists, is on cgroup v2 and tend
/// may create folders in it. `"auto"` is tend's own cgroup.
pub fn resolve(setting: &CgroupSetting) -> Result<Root, Unusable> {
    let own = own_cgroup();
    let dir = match setting {
        CgroupSetting::Path(dir) => dir.clone(),
        CgroupSetting::Auto => own.as_ref().map_err(|e| Unusable(e.clone()))?.clone(),
    };
    let shown = dir.display();
    let cpath = cstring(&dir).map_err(|e| Unusable(format!("{shown}: {e}")))?;
    match sys::cgroup::is_cgroup2(&cpath) {
        Ok(true) => {}
        Ok(false) => {
            return Err(Unusable(format!(
                "{shown} is not on a cgroup v2 file system"
            )));
        }
        Err(e) => return Err(Unusable(format!("{shown}: {e}"))),
    }
    if !dir.is_dir() {
        return Err(Unusable(format!("{shown} is not a folder")));
    }
    if let Err(e) = sys::cgroup::access_writable(&cpath) {
        return Err(Unusable(format!("{shown} is not writable: {e}")));
    }
    let own = own.is_ok_and(|o| same_folder(&o, &dir));
    Ok(Root { dir, own })
}

/// tend's own cgroup folder, from `/proc/self/cgroup` and
/// `/proc/self/mountinfo`.
pub fn own_cgroup() -> Result<PathBuf, String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let path = parse::own_path(&cgroup).ok_or_else(|| {
        "tend is not in a cgroup v2 hierarchy it can see (no usable 0:: line in \
         /proc/self/cgroup)"
            .to_string()
    })?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mounts = parse::cgroup2_mounts(&mountinfo);
    if mounts.is_empty() {
        return Err("no cgroup v2 file system is mounted".to_string());
    }
    parse::locate(&mounts, &path)
        .ok_or_else(|| format!("tend's cgroup {path} is not below any cgroup v2 mount"))
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `path` as a C string (for the child and the sys layer).
pub fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path holds a NUL byte"))
}

/// The controllers `dir`'s `cgroup.controllers` offers.
pub fn offered(dir: &Path) -> Vec<Controller> {
    let text = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let names = parse::controllers(&text);
    Controller::ALL
        .into_iter()
        .filter(|c| names.contains(&c.name()))
        .collect()
}

/// The controllers enabled for the cgroups below `dir` (`cgroup.subtree_control`).
pub fn enabled(dir: &Path) -> Vec<Controller> {
    let text = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let names = parse::controllers(&text);
    Controller::ALL
        .into_iter()
        .filter(|c| names.contains(&c.name()))
        .collect()
}

/// The services that set each controller's limit, by controller.
pub fn needed(services: &[ServiceSpec]) -> BTreeMap<Controller, Vec<&str>> {
    needed_by(
        services
            .iter()
            .map(|s| (s.name.as_str(), &s.process.cgroup_limits)),
    )
}

/// [`needed`] from (service name, its limits) pairs.
pub fn needed_by<'a>(
    limits: impl IntoIterator<Item = (&'a str, &'a CgroupLimits)>,
) -> BTreeMap<Controller, Vec<&'a str>> {
    let mut needed: BTreeMap<Controller, Vec<&str>> = BTreeMap::new();
    for (name, limits) in limits {
        for c in Controller::ALL {
            if c.is_used_by(limits) {
                needed.entry(c).or_default().push(name);
            }
        }
    }
    needed
}

/// The one line that says a controller is missing, naming the field it
/// affects and the services that set it.
pub fn missing_line(dir: &Path, c: Controller, services: &[&str], offers: &str) -> String {
    let offers = if offers.trim().is_empty() {
        "none".to_string()
    } else {
        offers.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    format!(
        "cgroup {}: the \"{}\" controller is not available (cgroup.controllers offers: {offers}), \
         so cgroup_limits.{} of {} is not applied; everything else works",
        dir.display(),
        c.name(),
        c.field(),
        services.join(", ")
    )
}

/// What `tend check` says about `cgroup` and `cgroup_limits`: the folder
/// cannot be used, or a controller a limit needs is not offered. Reads only.
pub fn check(config: &Config) -> Vec<String> {
    let Some(setting) = &config.cgroup else {
        return Vec::new();
    };
    let root = match resolve(setting) {
        Ok(root) => root,
        Err(why) => {
            return vec![format!(
                "cgroup: {why}; tend run would run every service without a cgroup of its own"
            )];
        }
    };
    let offers = std::fs::read_to_string(root.dir.join("cgroup.controllers")).unwrap_or_default();
    let available = offered(&root.dir);
    needed(&config.services)
        .into_iter()
        .filter(|(c, _)| !available.contains(c))
        .map(|(c, services)| missing_line(&root.dir, c, &services, &offers))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CpuMax;

    #[test]
    fn limits_become_the_kernel_s_values() {
        let limits = CgroupLimits {
            memory_max: Some(512 << 20),
            cpu_max: Some(CpuMax {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            pids_max: None,
        };
        assert_eq!(Controller::Memory.value(&limits), "536870912");
        assert_eq!(Controller::Cpu.value(&limits), "50000 100000");
        assert_eq!(Controller::Pids.value(&limits), "max");
        assert!(Controller::Cpu.is_used_by(&limits) && !Controller::Pids.is_used_by(&limits));
    }

    #[test]
    fn needed_controllers_name_their_services() {
        let mut a = ServiceSpec::new("a", vec!["x".into()]);
        a.process.cgroup_limits.pids_max = Some(5);
        let mut b = ServiceSpec::new("b", vec!["x".into()]);
        b.process.cgroup_limits.pids_max = Some(7);
        b.process.cgroup_limits.memory_max = Some(1 << 20);
        let c = ServiceSpec::new("c", vec!["x".into()]);
        let services = [a, b, c];
        let got = needed(&services);
        assert_eq!(got[&Controller::Pids], vec!["a", "b"]);
        assert_eq!(got[&Controller::Memory], vec!["b"]);
        assert!(!got.contains_key(&Controller::Cpu));
        let line = missing_line(Path::new("/cg"), Controller::Pids, &["a", "b"], "hugetlb\n");
        assert!(line.contains("\"pids\" controller"), "{line}");
        assert!(line.contains("cgroup_limits.pids_max of a, b"), "{line}");
        assert!(line.contains("offers: hugetlb)"), "{line}");
        assert!(missing_line(Path::new("/cg"), Controller::Cpu, &["a"], "").contains("none"));
    }

    #[test]
    fn unusable_folders_say_why() {
        let not_cgroup = resolve(&CgroupSetting::Path("/proc".into())).expect_err("procfs");
        assert!(not_cgroup.0.contains("not on a cgroup v2"), "{not_cgroup}");
        let missing = resolve(&CgroupSetting::Path("/no/such/cgroup".into())).expect_err("none");
        assert!(missing.0.contains("/no/such/cgroup"), "{missing}");
    }
}
