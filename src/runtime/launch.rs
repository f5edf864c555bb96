//! Launch plans: a service definition resolved, once, into everything its
//! spawns need, so that a restart does only the pipes and the clone.
//!
//! Resolving means: `user` and `group` to ids and supplementary groups (NSS
//! lookups that read `/etc/passwd` and `/etc/group`), the environment (SPEC §2
//! `inherit_environment`, the user's account; SPEC §4 `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC` for `notify` readiness), `command[0]` found on `PATH`
//! (`access` calls), argv and the environment as C strings, the rlimits, the
//! namespaces (`isolate`) and scheduling settings (`nice`, `io_priority`,
//! `oom_score_adj`, `cpu_affinity` as a CPU mask), and the file a `sha256`
//! is checked on (the program found, relative to `working_dir`).
//! [`LaunchPlans`] keeps the plan of a service whose resolving reads files:
//! one with `user` or `group` (NSS lookups in `/etc/passwd` and `/etc/group`)
//! or `env_file` (read at load and reload only, SPEC §2). Those are resolved at
//! load, again at a reload only if their definition changed (or has env
//! files), and after a failed spawn (the world may have changed: a program
//! installed, a user added); a crash looping one makes no lookup per restart.
//! Every other plan is resolved at each spawn and dropped after it: resolving
//! it is a `PATH` search and the environment, no file read, and a plan kept
//! for each of 10,000 services cost ~300 bytes each (issue 13).
//!
//! Must not: make system calls itself (they are in [`crate::sys`]), or decide
//! when a service starts.
//!
//! Read first: [`LaunchPlan::resolve`], then [`LaunchPlans::spawn_all`].

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::spawn::{SpawnError, Spawned, Spawner, Stage};
use crate::config::{IoClass, Limits, OutputMode, Readiness, ServiceSpec};
use crate::sys::rlimit::{Resource, Rlimit};
use crate::sys::spawn::{self as sys_spawn, ExecPlan, Namespaces, Priorities, SharedEnv};
use crate::sys::user::{Account, resolve_credentials};

/// tend's own environment, which a service's starts from.
pub type Environment = BTreeMap<OsString, OsString>;

/// tend's environment as it is now, without what tells tend about its own
/// supervisor (SPEC §4: services never inherit tend's `NOTIFY_SOCKET` or
/// watchdog; a service with notify readiness gets its own).
pub fn tend_environment() -> Environment {
    const TENDS_OWN: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];
    std::env::vars_os()
        .filter(|(name, _)| !TENDS_OWN.iter().any(|own| name == own))
        .collect()
}

/// The `PATH` searched when the service's environment has none (as `execvp`).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A service definition resolved for spawning: see the module doc.
#[derive(Debug)]
pub struct LaunchPlan {
    exec: ExecPlan,
    output: OutputMode,
    readiness_fd: Option<i32>,
}

impl LaunchPlan {
    /// Resolve `spec` against tend's environment `env`; `notify_dir` is the
    /// folder of the notify sockets (see `runtime::notify`). Fails with the
    /// stage a spawn would fail at: `user/group` for an unknown user or group,
    /// `exec` for a program not found, `prepare` for a NUL byte in an argument.
    pub fn resolve(
        spec: &ServiceSpec,
        env: &Environment,
        notify_dir: Option<&Path>,
    ) -> Result<LaunchPlan, SpawnError> {
        let credentials =
            resolve_credentials(spec.process.user.as_deref(), spec.process.group.as_deref())
                .map_err(fail(Stage::UserGroup))?;
        let notify = match (spec.readiness.as_deref(), notify_dir) {
            (Some(Readiness::Notify { .. }), Some(dir)) => {
                Some(super::notify::socket_path(dir, &spec.name))
            }
            _ => None,
        };
        // Read at each resolve: at load and reload, and after a failed start.
        let from_files = crate::config::read_env_files(spec)
            .map_err(|e| SpawnError::new(Stage::EnvFile, io::Error::other(e)))?;
        let environment = environment(
            spec,
            env,
            credentials.account.as_ref(),
            &from_files,
            notify.as_deref(),
        );
        let program = find_program(spec, &environment).map_err(fail(Stage::Exec))?;
        let argv = std::iter::once(program.into_os_string())
            .chain(spec.command.iter().skip(1).map(OsString::from))
            .map(|arg| cstring(&arg))
            .collect::<io::Result<Vec<_>>>()
            .map_err(fail(Stage::Prepare))?;
        let envp = environment
            .into_iter()
            .map(|(mut name, value)| {
                name.push("=");
                name.push(value);
                cstring(&name)
            })
            .collect::<io::Result<Vec<_>>>()
            .map_err(fail(Stage::Prepare))?;
        let dir = match &spec.working_dir {
            Some(dir) => Some(cstring(dir.as_os_str()).map_err(fail(Stage::Prepare))?),
            None => None,
        };
        let mut exec = ExecPlan::new(
            argv,
            envp,
            dir,
            &rlimits(&spec.process.limits),
            &credentials,
        )
        .map_err(fail(Stage::Prepare))?;
        exec.set_namespaces(&namespaces(spec));
        exec.set_priorities(&priorities(spec));
        let readiness_fd = match spec.readiness.as_deref() {
            Some(Readiness::Fd { fd }) => Some(*fd),
            _ => None,
        };
        Ok(LaunchPlan {
            exec,
            output: spec.output,
            readiness_fd,
        })
    }

    /// What the child execs, with which environment, ids and limits.
    pub fn exec(&self) -> &ExecPlan {
        &self.exec
    }

    /// Where its output goes.
    pub fn output(&self) -> OutputMode {
        self.output
    }

    /// The fd the child gets its readiness pipe on (`readiness: {type: fd}`).
    pub fn readiness_fd(&self) -> Option<i32> {
        self.readiness_fd
    }

    /// The program's file, as tend opens it to check its `sha256`: `argv[0]`,
    /// joined to `working_dir` (of `spec`, the definition the plan was resolved
    /// from) when relative, as the child resolves it after its chdir. Made
    /// when asked, not kept: a plan is kept per service.
    pub fn file(&self, spec: &ServiceSpec) -> PathBuf {
        let program = Path::new(OsStr::from_bytes(self.exec.program().to_bytes()));
        match &spec.working_dir {
            Some(dir) if program.is_relative() => dir.join(program),
            _ => program.to_path_buf(),
        }
    }
}

/// `isolate` as the system layer takes it.
fn namespaces(spec: &ServiceSpec) -> Namespaces {
    let isolate = &spec.process.isolate;
    Namespaces {
        network: isolate.network,
        tmp: isolate.tmp,
        ipc: isolate.ipc,
        hostname: isolate.hostname.clone(),
    }
}

/// `nice`, `io_priority`, `oom_score_adj` and `cpu_affinity` as the system
/// layer takes them.
fn priorities(spec: &ServiceSpec) -> Priorities {
    let io_priority = spec.process.io_priority.map(|p| {
        let class = match p.class {
            IoClass::Realtime => sys_spawn::IoClass::Realtime,
            IoClass::BestEffort => sys_spawn::IoClass::BestEffort,
            IoClass::Idle => sys_spawn::IoClass::Idle,
        };
        (class, p.level)
    });
    Priorities {
        nice: spec.process.nice,
        io_priority,
        oom_score_adj: spec.process.oom_score_adj,
        cpu_affinity: spec.process.cpu_affinity.clone(),
    }
}

fn fail(stage: Stage) -> impl FnOnce(io::Error) -> SpawnError {
    move |source| SpawnError::new(stage, source)
}

/// The child's environment, as `NAME=value` pairs in a stable order (SPEC §2):
/// tend's (or, with `inherit_environment: false`, only `PATH`, `HOME` and
/// `TMPDIR`, which is `/tmp` when tend has none), then `HOME`, `USER`,
/// `LOGNAME` and `SHELL` from the account of `user` if set, then `environment`,
/// then, with `notify` readiness, `NOTIFY_SOCKET` (the service's socket at
/// `notify`) and `WATCHDOG_USEC` when `watchdog` is set: tend's own values win
/// over the config's, since readiness depends on them.
fn environment(
    spec: &ServiceSpec,
    tend: &Environment,
    account: Option<&Account>,
    from_files: &[(String, String)],
    notify: Option<&Path>,
) -> Vec<(OsString, OsString)> {
    let mut env: Environment = if spec.inherit_environment {
        tend.clone()
    } else {
        let mut kept: Environment = ["PATH", "HOME"]
            .into_iter()
            .filter_map(|name| Some((name.into(), tend.get(OsStr::new(name))?.clone())))
            .collect();
        let tmpdir = tend
            .get(OsStr::new("TMPDIR"))
            .filter(|dir| !dir.is_empty())
            .cloned()
            .unwrap_or_else(|| "/tmp".into());
        kept.insert("TMPDIR".into(), tmpdir);
        kept
    };
    if let Some(account) = account {
        env.insert("HOME".into(), account.home.clone());
        env.insert("USER".into(), account.name.clone());
        env.insert("LOGNAME".into(), account.name.clone());
        if let Some(shell) = &account.shell {
            env.insert("SHELL".into(), shell.clone());
        }
    }
    // `env_file` pairs, in file order, then `environment` over them (SPEC §2).
    for (name, value) in from_files {
        env.insert(name.into(), value.into());
    }
    for (name, value) in &spec.environment {
        env.insert(name.into(), value.into());
    }
    if let Some(socket) = notify {
        env.insert("NOTIFY_SOCKET".into(), socket.as_os_str().to_owned());
        if let Some(Readiness::Notify {
            watchdog: Some(watchdog),
        }) = spec.readiness.as_deref()
        {
            env.insert(
                "WATCHDOG_USEC".into(),
                watchdog.as_micros().to_string().into(),
            );
        }
    }
    env.into_iter().collect()
}

/// Where `command[0]` is: as given when it holds a `/` (relative to
/// `working_dir`), else the first executable match on the child's `PATH`, as
/// `execvp` would search it.
fn find_program(spec: &ServiceSpec, env: &[(OsString, OsString)]) -> io::Result<PathBuf> {
    let name = spec.command.first().map(String::as_str).unwrap_or("");
    if name.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if name.contains('/') {
        let path = PathBuf::from(name);
        let checked = match &spec.working_dir {
            Some(dir) if path.is_relative() => dir.join(&path),
            _ => path.clone(),
        };
        executable(&checked)?;
        return Ok(path);
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    // execvp: a match that is not executable is remembered (EACCES) but the search
    // goes on; nothing at all is ENOENT.
    let mut error = io::Error::from_raw_os_error(libc::ENOENT);
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(name);
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => error = e,
            Err(_) => {}
        }
    }
    Err(error)
}

/// Ok if `path` exists and has an execute bit for tend, as access(2) knows it.
/// The rest (a directory, a bad format, a credential change in the child) the
/// exec itself finds, and the report pipe carries back.
fn executable(path: &Path) -> io::Result<()> {
    crate::sys::access_executable(&cstring(path.as_os_str())?)
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

/// The service's `limits` as rlimits (soft = hard).
fn rlimits(limits: &Limits) -> Vec<Rlimit> {
    [
        (Resource::Nofile, limits.nofile),
        (Resource::Nproc, limits.nproc),
        (Resource::Core, limits.core),
        (Resource::AddressSpace, limits.memory),
        (Resource::Cpu, limits.cpu),
        (Resource::Fsize, limits.fsize),
    ]
    .into_iter()
    .filter_map(|(resource, value)| {
        Some(Rlimit {
            resource,
            value: value?,
        })
    })
    .collect()
}

/// The launch plans tend keeps (see the module doc, [`kept`]) and those of
/// spawns under way, by name, with the definition each was resolved from (a
/// plan is used only for that exact definition).
pub struct LaunchPlans {
    env: Environment,
    /// The folder of the notify sockets, fixed for tend's lifetime.
    notify_dir: Option<PathBuf>,
    /// By name: the definition a plan was resolved from (the catalog's own
    /// copy, shared, not another one) and the plan. Boxed: a table slot
    /// holds a pointer, not a plan (the table has room for more than it holds).
    plans: HashMap<Box<str>, Box<(Arc<ServiceSpec>, LaunchPlan)>>,
    /// The environments of the plans, by a hash of their strings, each kept
    /// once however many plans use it.
    envs: HashMap<u64, Vec<SharedEnv>>,
    /// Each contained service's `cgroup.procs` (SPEC §10), which its child joins.
    cgroups: HashMap<String, CString>,
}

impl LaunchPlans {
    /// Resolve the [`kept`] plans of a config's services (where the runtime
    /// is created). A service that cannot be resolved gets no plan; its spawn
    /// resolves again and fails with the reason. `notify_dir`: where the notify sockets are.
    pub fn new<'a>(
        services: impl IntoIterator<Item = &'a Arc<ServiceSpec>>,
        notify_dir: Option<&Path>,
    ) -> LaunchPlans {
        let mut plans = LaunchPlans {
            env: tend_environment(),
            notify_dir: notify_dir.map(Path::to_path_buf),
            plans: HashMap::new(),
            envs: HashMap::new(),
            cgroups: HashMap::new(),
        };
        plans.update(services);
        plans
    }

    /// After a reload: of the services whose plan is [`kept`], keep the plans
    /// of unchanged ones, resolve new and changed ones (and those with
    /// `env_file`s, read again); drop every other plan.
    pub fn update<'a>(&mut self, services: impl IntoIterator<Item = &'a Arc<ServiceSpec>>) {
        let mut kept = HashMap::new();
        for spec in services.into_iter().filter(|spec| self::kept(spec)) {
            match self.plans.remove_entry(spec.name.as_str()) {
                // env files are read again at every reload (SPEC §2).
                Some((name, known)) if same(&known.0, spec) && spec.env_file.is_empty() => {
                    kept.insert(name, known);
                }
                _ => {
                    let dir = self.notify_dir.as_deref();
                    if let Ok(plan) = LaunchPlan::resolve(spec, &self.env, dir) {
                        let plan = self.shared(plan);
                        kept.insert(
                            spec.name.as_str().into(),
                            Box::new((Arc::clone(spec), plan)),
                        );
                    }
                }
            }
        }
        self.plans = kept;
        // Environments no plan uses any more.
        for envs in self.envs.values_mut() {
            envs.retain(|env| env.users() > 1);
        }
        self.envs.retain(|_, envs| !envs.is_empty());
    }

    /// `plan` with its environment shared with the plans that have the same.
    fn shared(&mut self, mut plan: LaunchPlan) -> LaunchPlan {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        plan.exec.env().hash(&mut hasher);
        let envs = self.envs.entry(hasher.finish()).or_default();
        match envs.iter().find(|env| env.strings() == plan.exec.env()) {
            Some(env) => plan.exec.share_env(env.clone()),
            None => envs.push(plan.exec.shared_env().clone()),
        }
        plan
    }

    /// The cgroup each service's children join (by name); services not named
    /// stay in tend's.
    pub fn set_cgroups(&mut self, cgroups: HashMap<String, CString>) {
        self.cgroups = cgroups;
    }

    /// The plan for `spec`, resolved now if there is none for this definition,
    /// with the service's cgroup.
    fn prepare(&mut self, spec: &Arc<ServiceSpec>) -> Result<(), SpawnError> {
        let known = self
            .plans
            .get(spec.name.as_str())
            .is_some_and(|known| same(&known.0, spec));
        if !known {
            match LaunchPlan::resolve(spec, &self.env, self.notify_dir.as_deref()) {
                Ok(plan) => {
                    let plan = self.shared(plan);
                    self.plans.insert(
                        spec.name.as_str().into(),
                        Box::new((Arc::clone(spec), plan)),
                    );
                }
                Err(e) => {
                    self.plans.remove(spec.name.as_str());
                    return Err(e);
                }
            }
        }
        if let Some((_, plan)) = self.plans.get_mut(spec.name.as_str()).map(|p| &mut **p) {
            let cgroup = self.cgroups.get(&spec.name);
            if plan.exec.cgroup() != cgroup.map(CString::as_c_str) {
                plan.exec.set_cgroup(cgroup.cloned());
            }
        }
        Ok(())
    }

    /// The file `spec`'s program is exec'ed from (its plan resolved now if
    /// there is none for this definition), for its `sha256` check.
    pub fn file(&mut self, spec: &Arc<ServiceSpec>) -> Result<PathBuf, SpawnError> {
        self.prepare(spec)?;
        match self.plans.get(spec.name.as_str()) {
            Some(known) => Ok(known.1.file(spec)),
            None => Err(SpawnError::new(
                Stage::Prepare,
                io::Error::other("no launch plan"),
            )),
        }
    }

    /// Drop `name`'s plan, so that its next spawn resolves it again (after a
    /// failed start: the world may have changed).
    pub fn invalidate(&mut self, name: &str) {
        self.plans.remove(name);
    }

    /// Spawn these services with their plans, in order (see
    /// [`Spawner::spawn_all`]), each with the open file of its verified
    /// `sha256` if it has one; results in the same order. A service whose
    /// plan cannot be resolved fails with the reason; a failed spawn drops
    /// its plan, so the next one resolves again.
    pub fn spawn_all(
        &mut self,
        spawner: &mut Spawner,
        jobs: Vec<(&Arc<ServiceSpec>, Option<OwnedFd>)>,
    ) -> Vec<Result<Spawned, SpawnError>> {
        let (specs, mut programs): (Vec<&Arc<ServiceSpec>>, Vec<Option<OwnedFd>>) =
            jobs.into_iter().unzip();
        let mut unresolved: HashMap<usize, SpawnError> = HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            if let Err(e) = self.prepare(spec) {
                unresolved.insert(i, e);
            }
        }
        let lookups: Vec<Result<&LaunchPlan, SpawnError>> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| match unresolved.remove(&i) {
                Some(e) => Err(e),
                None => self
                    .plans
                    .get(spec.name.as_str())
                    .map(|known| &known.1)
                    .ok_or_else(|| {
                        SpawnError::new(Stage::Prepare, io::Error::other("no launch plan"))
                    }),
            })
            .collect();
        let ready: Vec<(&LaunchPlan, Option<OwnedFd>)> = lookups
            .iter()
            .zip(programs.iter_mut())
            .filter_map(|(lookup, program)| Some((*lookup.as_ref().ok()?, program.take())))
            .collect();
        let mut spawned = spawner.spawn_all(ready).into_iter();
        let results: Vec<Result<Spawned, SpawnError>> = lookups
            .into_iter()
            .map(|lookup| match lookup {
                Ok(_) => spawned.next().unwrap_or_else(|| {
                    Err(SpawnError::new(
                        Stage::Prepare,
                        io::Error::other("not spawned"),
                    ))
                }),
                Err(e) => Err(e),
            })
            .collect();
        for (spec, result) in specs.iter().zip(&results) {
            if result.is_err() || !kept(spec) {
                self.plans.remove(spec.name.as_str());
            }
        }
        results
    }
}

/// Whether `spec`'s plan is kept between spawns: resolving it reads files
/// (NSS lookups for `user` and `group`, its `env_file`s). Others are resolved
/// at each spawn (see the module doc).
pub fn kept(spec: &ServiceSpec) -> bool {
    spec.process.user.is_some() || spec.process.group.is_some() || !spec.env_file.is_empty()
}

/// The same definition: the same shared copy (the catalog keeps one per
/// revision), or an equal one.
fn same(a: &Arc<ServiceSpec>, b: &Arc<ServiceSpec>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

#[cfg(test)]
mod tests;
