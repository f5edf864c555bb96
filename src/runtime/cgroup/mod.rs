//! cgroup v2 containment (SPEC §10): each service in its own cgroup
//! `tend-NAME` below the `cgroup` folder, so that stopping it, or its main
//! process exiting, kills everything it started, daemons that left its
//! process group included; its `cgroup_limits`; its memory and CPU use.
//!
//! At start ([`Cgroups::setup`]) tend finds the folder (`"auto"`: its own
//! cgroup, which it then leaves for a child `tend-self`, since only leaf
//! cgroups may hold processes once controllers are enabled), enables the
//! controllers the limits need in its `cgroup.subtree_control`, and creates a
//! cgroup per service (one that exists already is reused after killing what
//! is in it). Anything that fails there is one warning, and tend runs without
//! containment: never a failed start. A reload creates the cgroups of new
//! services; a removed service's cgroup is removed once the core has
//! forgotten the service (it is empty then).
//!
//! The child joins its cgroup itself, between clone and exec (`sys::spawn`:
//! `0` into the `cgroup.procs` the launch plan names), so nothing of the
//! service ever runs outside it. Killing and watching for empty are
//! `drain.rs`'s.
//!
//! Must not: decide when to kill or what an empty cgroup means (the core's
//! `Action::ClearGroup`, `Action::Signal` and `Event::GroupEmpty`), or block.
//!
//! Read first: [`Cgroups::setup`], then `drain.rs`.

mod drain;
mod handover;
pub mod parse;
pub mod setup;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{Level, debug, warn};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::tokens::Tokens;
use crate::config::{CgroupLimits, CgroupSetting, ServiceSpec};
use crate::machine::{RunId, ServiceId};
use drain::{Drains, Killer};
pub use handover::CgroupsSnapshot;
pub use setup::{Controller, check};

/// The cgroup tend moves itself into when the `cgroup` folder is its own.
pub const SELF: &str = "tend-self";

/// A service's cgroup folder name.
pub fn folder_name(service: &str) -> String {
    format!("tend-{service}")
}

/// One service's cgroup.
#[derive(Debug)]
struct Group {
    dir: PathBuf,
    /// Its `cgroup.procs`, for the child to join.
    procs: CString,
    /// The limits last written (`None`: not yet, or to be written again).
    limits: Option<CgroupLimits>,
}

/// The service cgroups tend manages, and the drains in progress.
#[derive(Debug)]
pub struct Cgroups {
    root: PathBuf,
    /// `root` is tend's own cgroup (tend is in `root/tend-self`).
    own: bool,
    groups: HashMap<String, Group>,
    /// Controllers enabled in `root`'s `cgroup.subtree_control`.
    enabled: BTreeSet<Controller>,
    /// Controllers whose absence was logged (once each).
    warned: BTreeSet<Controller>,
    killer: Killer,
    drains: Drains,
    token: Token,
    /// Services a reload removed, by id: their cgroup goes when they are forgotten.
    removing: HashMap<ServiceId, String>,
    /// Controllers the kernel refused with `EBUSY` at start, tried again from
    /// the loop (see [`enable`]).
    busy: Option<BusyRetry>,
}

/// The next try of controllers refused with `EBUSY` at start.
#[derive(Debug)]
struct BusyRetry {
    at: Instant,
    /// The wait after this try, should it be refused again.
    pause: Duration,
    /// Every service's name and limits, as at start: what the controllers
    /// are for, and the limits to write once they are enabled.
    limits: Vec<(String, CgroupLimits)>,
}

/// The first wait before trying a busy `cgroup.subtree_control` again; it
/// doubles up to [`BUSY_GIVE_UP`], after which the controller counts as
/// refused (one warning, as for any other failure).
const BUSY_FIRST_PAUSE: Duration = Duration::from_millis(1);
const BUSY_GIVE_UP: Duration = Duration::from_millis(32);

/// Log lines of the setup, for `tend run` to write after its banner.
pub type Lines = Vec<(Level, String)>;

impl Cgroups {
    /// Set up containment for `services` as `setting` says; `None` (with the
    /// warning saying why, in `lines`) when it cannot be: tend then runs every
    /// service without a cgroup.
    pub fn setup(
        setting: &CgroupSetting,
        services: &[ServiceSpec],
        registry: &Registry,
        tokens: &mut Tokens,
        lines: &mut Lines,
    ) -> Option<Cgroups> {
        match Cgroups::try_setup(setting, services, registry, tokens, lines) {
            Ok(cgroups) => Some(cgroups),
            Err(why) => {
                lines.push((
                    Level::Warn,
                    format!(
                        "cgroup: {why}; running every service without a cgroup of its own \
                         (stopping one kills its process group only)"
                    ),
                ));
                None
            }
        }
    }

    fn try_setup(
        setting: &CgroupSetting,
        services: &[ServiceSpec],
        registry: &Registry,
        tokens: &mut Tokens,
        lines: &mut Lines,
    ) -> Result<Cgroups, String> {
        let root = setup::resolve(setting).map_err(|e| e.0)?;
        let drains = Drains::new().map_err(|e| format!("cannot create an inotify watch: {e}"))?;
        let token = tokens.next();
        registry
            .register(&mut SourceFd(&drains.fd()), token, Interest::READABLE)
            .map_err(|e| format!("cannot watch cgroup events: {e}"))?;
        if root.own {
            move_self(&root.dir)?;
        }
        let mut cgroups = Cgroups {
            root: root.dir,
            own: root.own,
            groups: HashMap::new(),
            enabled: BTreeSet::new(),
            warned: BTreeSet::new(),
            killer: Killer::default(),
            drains,
            token,
            removing: HashMap::new(),
            busy: None,
        };
        let shown = cgroups.root.display().to_string();
        let own = if cgroups.own {
            format!(" (tend's own cgroup; tend moved into {SELF})")
        } else {
            String::new()
        };
        lines.push((
            Level::Info,
            format!("cgroup: each service runs in its own cgroup below {shown}{own}"),
        ));
        cgroups.update_into(services, Some(Instant::now()), lines);
        Ok(cgroups)
    }

    /// After a reload: enable what new limits need, create the cgroups of new
    /// services, write changed limits. Logs what it cannot do.
    pub fn update(&mut self, services: &[ServiceSpec]) {
        let mut lines = Lines::new();
        self.update_into(services, None, &mut lines);
        for (level, line) in lines {
            log::log!(level, "{line}");
        }
    }

    /// `start`: at start (the time), a `cgroup.subtree_control` that is busy
    /// is tried again from the loop ([`Cgroups::handle_deadlines`]); after a
    /// reload, busy is refused like anything else.
    fn update_into(&mut self, services: &[ServiceSpec], start: Option<Instant>, lines: &mut Lines) {
        // A service removed by an earlier reload and defined again before it
        // was forgotten keeps its cgroup.
        self.removing
            .retain(|_, name| !services.iter().any(|s| s.name == *name));
        let before = self.enabled.clone();
        let busy = self.enable_controllers(&setup::needed(services), start.is_some(), lines);
        if let (true, Some(now)) = (busy, start) {
            self.busy = Some(BusyRetry {
                at: now + BUSY_FIRST_PAUSE,
                pause: BUSY_FIRST_PAUSE * 2,
                limits: services
                    .iter()
                    .map(|s| (s.name.clone(), s.process.cgroup_limits))
                    .collect(),
            });
        }
        if self.enabled != before {
            // A controller came (or went): every limit is written again.
            for group in self.groups.values_mut() {
                group.limits = None;
            }
        }
        for spec in services {
            if let Err(why) = self.create(spec, lines) {
                lines.push((
                    Level::Warn,
                    format!("{}: {why}; it runs without a cgroup of its own", spec.name),
                ));
            }
        }
    }

    /// Try again the controllers that were busy at start, once due; when one
    /// comes, write every limit again (services may be running already: a
    /// limit written to a cgroup applies to what is in it).
    fn retry_busy(&mut self, now: Instant) {
        let Some(busy) = self.busy.take_if(|b| b.at <= now) else {
            return;
        };
        let needed = setup::needed_by(busy.limits.iter().map(|(n, l)| (n.as_str(), l)));
        let before = self.enabled.clone();
        let mut lines = Lines::new();
        let again = busy.pause < BUSY_GIVE_UP;
        if self.enable_controllers(&needed, again, &mut lines) {
            self.busy = Some(BusyRetry {
                at: now + busy.pause,
                pause: busy.pause * 2,
                limits: busy.limits,
            });
        } else if self.enabled != before {
            for group in self.groups.values_mut() {
                group.limits = None;
            }
            for (name, limits) in &busy.limits {
                self.write_limits(name, limits);
            }
        }
        for (level, line) in lines {
            log::log!(level, "{line}");
        }
    }

    /// Enable in `root`'s `cgroup.subtree_control` each controller a limit
    /// needs (and `memory`, for `memory.current` in `tend status`) that
    /// `cgroup.controllers` offers; say once which needed ones are missing.
    /// With `retry_busy`, a controller the kernel says is busy is neither
    /// enabled nor warned about, and `true` is returned: try again later.
    fn enable_controllers(
        &mut self,
        needed: &BTreeMap<Controller, Vec<&str>>,
        retry_busy: bool,
        lines: &mut Lines,
    ) -> bool {
        let offered = setup::offered(&self.root);
        self.enabled = setup::enabled(&self.root).into_iter().collect();
        let mut wanted: BTreeSet<Controller> = needed.keys().copied().collect();
        wanted.insert(Controller::Memory);
        let control = self.root.join("cgroup.subtree_control");
        let mut failures: HashMap<Controller, io::Error> = HashMap::new();
        let mut busy = BTreeSet::new();
        for c in wanted {
            if self.enabled.contains(&c) || !offered.contains(&c) {
                continue;
            }
            match drain::write_file(&control, &format!("+{}", c.name())) {
                Ok(()) => {
                    self.enabled.insert(c);
                }
                Err(e) if retry_busy && is_busy(&e) => {
                    busy.insert(c);
                }
                Err(e) => {
                    debug!("cannot enable {} in {}: {e}", c.name(), control.display());
                    failures.insert(c, e);
                }
            }
        }
        let offers =
            std::fs::read_to_string(self.root.join("cgroup.controllers")).unwrap_or_default();
        for (c, names) in needed {
            if self.enabled.contains(c) || busy.contains(c) || !self.warned.insert(*c) {
                continue;
            }
            let line = match failures.get(c) {
                Some(e) => format!(
                    "cgroup {}: cannot enable the \"{}\" controller in cgroup.subtree_control \
                     ({e}), so cgroup_limits.{} of {} is not applied; everything else works",
                    self.root.display(),
                    c.name(),
                    c.field(),
                    names.join(", ")
                ),
                None => setup::missing_line(&self.root, *c, names, &offers),
            };
            lines.push((Level::Warn, line));
        }
        !busy.is_empty()
    }

    /// The cgroup of `spec`: created, or an existing one (tend's own from
    /// before this reload, or a leftover, which is emptied first); then its
    /// limits.
    fn create(&mut self, spec: &ServiceSpec, lines: &mut Lines) -> Result<(), String> {
        let name = folder_name(&spec.name);
        if self.own && name == SELF {
            return Err(format!("its cgroup would be tend's own {SELF}"));
        }
        if !self.groups.contains_key(&spec.name) {
            let dir = self.root.join(&name);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if drain::is_populated(&dir) {
                        self.killer.kill(&dir);
                        lines.push((
                            Level::Warn,
                            format!(
                                "{}: its cgroup {} already held processes (left by an \
                                 earlier tend?); killed them",
                                spec.name,
                                dir.display()
                            ),
                        ));
                    }
                }
                Err(e) => return Err(format!("cannot create cgroup {}: {e}", dir.display())),
            }
            let procs = setup::cstring(&dir.join("cgroup.procs")).map_err(|e| e.to_string())?;
            // Limits are written below, `max` included: a reused folder may
            // hold old ones.
            let group = Group {
                dir,
                procs,
                limits: None,
            };
            self.groups.insert(spec.name.clone(), group);
        }
        self.write_limits(&spec.name, &spec.process.cgroup_limits);
        Ok(())
    }

    /// Write `limits` into `service`'s cgroup if they changed, for every
    /// enabled controller (`max` where a field is not set).
    fn write_limits(&mut self, service: &str, limits: &CgroupLimits) {
        let Some(group) = self.groups.get_mut(service) else {
            return;
        };
        if group.limits.as_ref() == Some(limits) {
            return;
        }
        for c in Controller::ALL {
            if !self.enabled.contains(&c) {
                continue;
            }
            let file = group.dir.join(c.file());
            let value = c.value(limits);
            if let Err(e) = drain::write_file(&file, &value) {
                warn!(
                    "{service}: cannot write {value:?} to {}: {e}",
                    file.display()
                );
            }
        }
        group.limits = Some(*limits);
    }

    /// A child could not join `spec`'s cgroup: make it again if it is gone
    /// (someone removed it), so that the next start can succeed.
    pub fn repair(&mut self, spec: &ServiceSpec) {
        let Some(group) = self.groups.get_mut(&spec.name) else {
            return;
        };
        if group.dir.is_dir() {
            return;
        }
        match std::fs::create_dir(&group.dir) {
            Ok(()) => {
                warn!(
                    "{}: its cgroup {} was gone; made it again",
                    spec.name,
                    group.dir.display()
                );
                group.limits = None;
                self.write_limits(&spec.name, &spec.process.cgroup_limits);
            }
            Err(e) => warn!(
                "{}: cannot make its cgroup {} again: {e}",
                spec.name,
                group.dir.display()
            ),
        }
    }

    /// Whether `service` runs in a cgroup of its own.
    pub fn contains(&self, service: &str) -> bool {
        self.groups.contains_key(service)
    }

    /// The cgroup folder of `service`, if it has one.
    pub fn dir_of(&self, service: &str) -> Option<&Path> {
        self.groups.get(service).map(|g| g.dir.as_path())
    }

    /// Each service's `cgroup.procs`, for the launch plans.
    pub fn procs_paths(&self) -> HashMap<String, CString> {
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.procs.clone()))
            .collect()
    }

    /// SIGKILL everything in `service`'s cgroup (a stop's last step).
    pub fn kill(&mut self, service: &str) {
        if let Some(group) = self.groups.get(service) {
            self.killer.kill(&group.dir);
        }
    }

    /// `run`'s main process exited: kill what is left in the cgroup and watch
    /// it empty. `true`: it is empty already (report `GroupEmpty` now);
    /// otherwise [`Cgroups::on_event`] or [`Cgroups::handle_deadlines`] report it.
    pub fn drain(&mut self, id: ServiceId, service: &str, run: RunId, now: Instant) -> bool {
        let Some(group) = self.groups.get(service) else {
            return true;
        };
        self.drains
            .start(id, run, &group.dir, &mut self.killer, now)
    }

    /// The core gave up waiting for `service`'s cgroup (`Note::LeftBehind`).
    pub fn stop_draining(&mut self, id: ServiceId) {
        self.drains.stop(id);
    }

    /// Whether `token` is the cgroup watch's.
    pub fn owns(&self, token: Token) -> bool {
        token == self.token
    }

    /// The watch fired: the runs whose cgroup is now empty.
    pub fn on_event(&mut self) -> Vec<(ServiceId, RunId)> {
        self.drains.on_readable()
    }

    pub fn poll_deadline(&self) -> Option<Instant> {
        let busy = self.busy.as_ref().map(|b| b.at);
        [self.drains.poll_deadline(), busy]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_deadlines(&mut self, now: Instant) -> Vec<(ServiceId, RunId)> {
        self.retry_busy(now);
        self.drains.handle_deadlines(now)
    }

    /// A reload removes `service` (still known to the core as `id`): its
    /// cgroup goes once the core forgets it.
    pub fn removing(&mut self, id: ServiceId, service: &str) {
        self.removing.insert(id, service.to_string());
    }

    /// The core forgot a removed service: remove its (empty) cgroup.
    pub fn forget(&mut self, id: ServiceId) {
        self.drains.stop(id);
        let Some(service) = self.removing.remove(&id) else {
            return;
        };
        if let Some(group) = self.groups.remove(&service)
            && let Err(e) = remove_tree(&group.dir, 0)
        {
            warn!(
                "{service}: cannot remove its cgroup {}: {e}",
                group.dir.display()
            );
        }
    }

    /// At exit: remove every service cgroup that is empty (what cannot be
    /// removed stays for the next tend, which empties it).
    pub fn remove_all(&mut self) {
        for (service, group) in self.groups.drain() {
            if let Err(e) = remove_tree(&group.dir, 0) {
                debug!("{service}: cgroup {} stays: {e}", group.dir.display());
            }
        }
    }
}

/// Whether writing a `cgroup.subtree_control` failed because the kernel is
/// busy: right after tend moved out of the cgroup it may still say `EBUSY`
/// for a moment (as crun found). At start that is tried again from the loop,
/// after 1, 2, 4.. ms up to [`BUSY_GIVE_UP`]: never by sleeping in it.
fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}

/// Move tend into `root/tend-self`: a cgroup with processes of its own may not
/// enable controllers for the cgroups below it.
fn move_self(root: &Path) -> Result<(), String> {
    let dir = root.join(SELF);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let procs = dir.join("cgroup.procs");
    drain::write_file(&procs, &std::process::id().to_string())
        .map_err(|e| format!("cannot move tend into {}: {e}", dir.display()))
}

/// Remove the cgroup `dir` and the empty cgroups a service made below it,
/// deepest first.
fn remove_tree(dir: &Path, depth: usize) -> io::Result<()> {
    if depth < 8 {
        for child in drain::subfolders(dir) {
            let _ = remove_tree(&child, depth + 1);
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
