//! The typed result of a valid config: [`Config`], [`ServiceSpec`] and the value
//! types of their fields, with every SPEC §2 default defined once, here.
//!
//! Must not: parse or check anything (that is [`super::validate`]), or read the
//! machine. The validator starts from [`Config::new`] and [`ServiceSpec::new`], so
//! a default written here is the only copy of it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::sparse::{Defaults, Sparse};
use super::{ConfigError, Signal};

/// A validated configuration (SPEC §2, top level). Every default is filled in.
///
/// `wire.rs` encodes it and every type below for `tend reexec`'s snapshot
/// (the new process runs exactly the definitions the old one did): a config
/// *file* is read by [`super::load`], never by that.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `log_level`: level of tend's own messages; services' output is never
    /// filtered by it. `$TEND_LOG` overrides it (applied by the logging module).
    pub log_level: log::LevelFilter,
    /// `log_format`: `text`, `plain` or `json` (SPEC §7).
    pub log_format: LogFormat,
    /// `log_file`: also write tend's log here (absolute, or resolved against the
    /// config file's folder). Reopened on SIGHUP, rotated by `log_rotation`.
    pub log_file: Option<PathBuf>,
    /// `log_max_size` and `log_keep` of the top level: the rotation of `log_file`
    /// and of every service `log_file` that does not set its own.
    pub log_rotation: Rotation,
    /// `metrics_address`: serve Prometheus metrics on this IP and port (SPEC §9).
    pub metrics_address: Option<SocketAddr>,
    /// `cgroup`: a cgroup v2 folder to create service cgroups in, or `auto` (SPEC §10).
    pub cgroup: Option<CgroupSetting>,
    /// `control_socket`. `None`: the field was absent (use the default path of
    /// SPEC §1); `Some("")`: disabled. At most 107 bytes (a `sun_path`).
    pub control_socket: Option<PathBuf>,
    /// `shutdown_timeout`: upper bound of a whole shutdown before everything left
    /// is SIGKILLed.
    pub shutdown_timeout: Duration,
    /// `services_dir`: discover services from this folder (SPEC §6); resolved
    /// against the config file's folder.
    pub services_dir: Option<PathBuf>,
    /// `exit_when_idle`: exit once nothing is left running, starting, pending or
    /// restarting.
    pub exit_when_idle: bool,
    /// `services`, in file order, then the discovered ones (by name) not listed.
    /// Names are unique; dependencies name existing services and form no cycle.
    pub services: Vec<ServiceSpec>,
    /// Where each service was defined, parallel to `services`
    /// (`services[3] (web)`, `services_dir/web/service.json`), for messages.
    /// May be shorter (a `Config` built in code): see [`Config::place`].
    pub places: Vec<String>,
    /// What is allowed but probably not meant (a `services_dir` without any
    /// service, an unset `${VAR}`): `tend check` prints them, `tend run` logs them.
    pub warnings: Vec<ConfigError>,
}

impl Config {
    /// A config holding `services` and every top-level default of SPEC §2.
    pub fn new(services: Vec<ServiceSpec>) -> Config {
        Config {
            log_level: log::LevelFilter::Info,
            log_format: LogFormat::Text,
            log_file: None,
            log_rotation: Rotation::DEFAULT,
            metrics_address: None,
            cgroup: None,
            control_socket: None,
            shutdown_timeout: Duration::from_secs(30),
            services_dir: None,
            exit_when_idle: false,
            services,
            places: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Where service `i` was defined, for messages: `services[3] (web)`.
    pub fn place(&self, i: usize) -> String {
        match (self.places.get(i), self.services.get(i)) {
            (Some(place), _) => place.clone(),
            (None, Some(spec)) => format!("services[{i}] ({})", spec.name),
            (None, None) => format!("services[{i}]"),
        }
    }

    /// The rotation of `spec`'s `log_file`: its own fields, else the top level's.
    pub fn rotation_of(&self, spec: &ServiceSpec) -> Rotation {
        Rotation {
            max_size: spec.log_max_size.unwrap_or(self.log_rotation.max_size),
            keep: spec.log_keep.unwrap_or(self.log_rotation.keep),
        }
    }
}

/// One service object (SPEC §2), validated, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// `name`: unique, 1 to 64 of `A-Z a-z 0-9 _ . -`.
    pub name: String,
    /// `command`: argv, non-empty, no NUL byte; `command[0]` without `/` is looked
    /// up in `PATH` at spawn.
    pub command: Vec<String>,
    /// `type`: `longrun` (keep it up) or `oneshot` (run to completion once).
    pub service_type: ServiceType,
    /// `enabled`: `false` defines it without starting it until `tend start`.
    pub enabled: bool,
    /// `working_dir`: absolute, or resolved against the config file's folder;
    /// `None`: tend's own working directory.
    pub working_dir: Option<PathBuf>,
    /// `environment`, with `${VAR}`, `${VAR:-default}` and `$$` already expanded
    /// from tend's environment. Overrides `env_file` and the inherited variables.
    pub environment: BTreeMap<String, String>,
    /// `env_file`: `KEY=VALUE` files read at load and reload (by the shell, with
    /// [`super::read_env_files`]); absolute or resolved paths, in the given order.
    pub env_file: Vec<PathBuf>,
    /// `inherit_environment`: `false` gives the child only `PATH`, `HOME`,
    /// `TMPDIR` (and `USER`, `LOGNAME`, `SHELL` with `user`) plus `env_file` and
    /// `environment`.
    pub inherit_environment: bool,
    /// `restart_policy`: `always` (longrun default), `on-failure` (oneshot
    /// default) or `never`.
    pub restart_policy: RestartPolicy,
    /// `success_exit_codes`: exit codes that count as success (0..=255).
    pub success_exit_codes: Vec<i32>,
    /// `max_retries`: restarts allowed within `retry_window`.
    pub max_retries: u32,
    /// `retry_window`: the sliding window of `max_retries`.
    pub retry_window: Duration,
    /// `retry_delay`: backoff before the first restart in the window; doubles.
    pub retry_delay: Duration,
    /// `max_retry_delay`: the backoff cap (±10% jitter is the runtime's).
    pub max_retry_delay: Duration,
    /// `dependencies`: a bare name means condition `ready`.
    pub dependencies: Vec<Dependency>,
    /// `readiness` (SPEC §4); `None`: ready once spawned (after `min_uptime`).
    /// Boxed (112 bytes; `None` is 8), as `liveness`: a definition is kept
    /// per service for tend's life.
    pub readiness: Option<Box<Readiness>>,
    /// `liveness` (SPEC §4): exec, tcp, http or grpc checks while `running`.
    /// Boxed: few services have one, and a `Liveness` is 120 bytes.
    pub liveness: Option<Box<Liveness>>,
    /// `timeout_start`: readiness must come within this.
    pub timeout_start: Duration,
    /// `min_uptime`: without readiness, `starting` until up this long; an exit
    /// before it is a failed start. Zero: running once spawned.
    pub min_uptime: Duration,
    /// `stop_signal`: first signal of a stop, sent to the process group.
    pub stop_signal: Signal,
    /// `timeout_stop`: then SIGKILL to the group (and `cgroup.kill`).
    pub timeout_stop: Duration,
    /// `output`: `log`, `inherit` or `null`.
    pub output: OutputMode,
    /// `log_file`: also write this service's output here, rotated by size.
    pub log_file: Option<PathBuf>,
    /// `log_max_size`: `None` inherits the top level's ([`Config::rotation_of`]),
    /// so a top-level change does not make every service differ on reload.
    pub log_max_size: Option<u64>,
    /// `log_keep`: `None` inherits the top level's.
    pub log_keep: Option<u32>,
    /// `critical`: when it ends `failed`, tend shuts down with its code.
    pub critical: bool,
    /// `user`, `group`, `limits`, `cgroup_limits`, `isolate`, `nice`,
    /// `io_priority`, `oom_score_adj`, `cpu_affinity`, `sha256`: how the
    /// process is run. Few services set any, so they cost an unset
    /// definition 8 bytes (see [`Sparse`]); read `spec.process.user`.
    pub process: Sparse<ProcessSettings>,
}

/// The fields of a service about how its process is run (`process.rs` checks
/// them), kept together behind one [`Sparse`] pointer in [`ServiceSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSettings {
    /// `user`: a name or number (kept as text); resolved at spawn.
    pub user: Option<String>,
    /// `group`: a name or number (kept as text); resolved at spawn.
    pub group: Option<String>,
    /// `limits`: rlimits set in the child before exec.
    pub limits: Limits,
    /// `cgroup_limits`: written to the service's cgroup (needs top-level `cgroup`).
    pub cgroup_limits: CgroupLimits,
    /// `isolate`: new namespaces for the service (needs root).
    pub isolate: Isolate,
    /// `nice`: -20..=19.
    pub nice: Option<i32>,
    /// `io_priority`: ioprio class and level.
    pub io_priority: Option<IoPriority>,
    /// `oom_score_adj`: -1000..=1000.
    pub oom_score_adj: Option<i32>,
    /// `cpu_affinity`: CPU numbers (< 1024, no duplicates, not empty).
    pub cpu_affinity: Option<Vec<u32>>,
    /// `sha256`: the executable must have this SHA-256, checked before every spawn.
    pub sha256: Option<[u8; 32]>,
}

/// SPEC §2's defaults of [`ProcessSettings`]: nothing set.
static PROCESS_DEFAULTS: ProcessSettings = ProcessSettings {
    user: None,
    group: None,
    limits: Limits::NONE,
    cgroup_limits: CgroupLimits::NONE,
    isolate: Isolate::NONE,
    nice: None,
    io_priority: None,
    oom_score_adj: None,
    cpu_affinity: None,
    sha256: None,
};

impl Defaults for ProcessSettings {
    fn defaults() -> &'static ProcessSettings {
        &PROCESS_DEFAULTS
    }
}

impl ServiceSpec {
    /// A longrun service with every SPEC §2 default.
    pub fn new(name: &str, command: Vec<String>) -> ServiceSpec {
        ServiceSpec {
            name: name.to_string(),
            command,
            service_type: ServiceType::Longrun,
            enabled: true,
            working_dir: None,
            environment: BTreeMap::new(),
            env_file: Vec::new(),
            inherit_environment: true,
            restart_policy: RestartPolicy::default_for(ServiceType::Longrun),
            success_exit_codes: vec![0],
            max_retries: 10,
            retry_window: Duration::from_secs(60),
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(30),
            dependencies: Vec::new(),
            readiness: None,
            liveness: None,
            timeout_start: Duration::from_secs(60),
            min_uptime: Duration::ZERO,
            stop_signal: Signal::TERM,
            timeout_stop: Duration::from_secs(10),
            output: OutputMode::Log,
            log_file: None,
            log_max_size: None,
            log_keep: None,
            critical: false,
            process: Sparse::DEFAULT,
        }
    }

    /// A oneshot with the oneshot defaults (`restart_policy: on-failure`).
    pub fn oneshot(name: &str, command: Vec<String>) -> ServiceSpec {
        let mut spec = ServiceSpec::new(name, command);
        spec.set_type(ServiceType::Oneshot);
        spec
    }

    /// Set `type`, and the restart policy to that type's default.
    pub fn set_type(&mut self, service_type: ServiceType) {
        self.service_type = service_type;
        self.restart_policy = RestartPolicy::default_for(service_type);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    Longrun,
    Oneshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// SPEC §2: `always` for a longrun, `on-failure` for a oneshot.
    pub fn default_for(service_type: ServiceType) -> RestartPolicy {
        match service_type {
            ServiceType::Longrun => RestartPolicy::Always,
            ServiceType::Oneshot => RestartPolicy::OnFailure,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The dependency has been spawned (and not given up on).
    Started,
    /// The dependency is `running` (ready).
    Ready,
    /// The dependency is a oneshot that finished with success.
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Lines into tend's log (and the `logs` ring).
    Log,
    /// tend's own stdout/stderr, untouched.
    Inherit,
    /// `/dev/null`.
    Null,
}

/// `log_format` (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Timestamp, then the record.
    Text,
    /// No timestamp (for runtimes that add their own).
    Plain,
    /// One JSON object per line.
    Json,
}

/// Size rotation of one log file: rotate past `max_size` bytes into `FILE.1` ..
/// `FILE.keep` (`FILE.1` the newest). `keep` 0: the file starts over, no copy kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub keep: u32,
}

impl Rotation {
    /// SPEC §2: `"10M"` and 5.
    pub const DEFAULT: Rotation = Rotation {
        max_size: 10 << 20,
        keep: 5,
    };
}

/// `cgroup` (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupSetting {
    /// tend's own cgroup, when writable (tend moves itself into `tend-self`).
    Auto,
    /// This cgroup v2 folder (an absolute path).
    Path(PathBuf),
}

/// `cgroup_limits`; `None` writes nothing (a new cgroup has no limit). `"max"` in
/// the file means the same as leaving the field out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// `memory.max`, in bytes.
    pub memory_max: Option<u64>,
    /// `cpu.max`.
    pub cpu_max: Option<CpuMax>,
    /// `pids.max`.
    pub pids_max: Option<u64>,
}

impl CgroupLimits {
    /// No limit set (the default).
    pub const NONE: CgroupLimits = CgroupLimits {
        memory_max: None,
        cpu_max: None,
        pids_max: None,
    };

    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.memory_max.is_some() || self.cpu_max.is_some() || self.pids_max.is_some()
    }
}

/// `cpu.max` as the kernel takes it: `quota_us` of CPU time per `period_us`.
/// `"50%"` is 50000 per 100000; `"250%"` is 250000 per 100000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    pub quota_us: u64,
    pub period_us: u64,
}

/// `isolate`: which new namespaces the service gets. All `false`/`None`: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Isolate {
    /// A new network namespace (only a loopback interface, which tend brings up).
    pub network: bool,
    /// A private mount namespace with a fresh tmpfs on `/tmp`.
    pub tmp: bool,
    /// A new IPC namespace.
    pub ipc: bool,
    /// A new UTS namespace with this host name.
    pub hostname: Option<String>,
}

impl Isolate {
    /// No namespace (the default).
    pub const NONE: Isolate = Isolate {
        network: false,
        tmp: false,
        ipc: false,
        hostname: None,
    };

    /// Whether any namespace is asked for.
    pub fn any(&self) -> bool {
        self.network || self.tmp || self.ipc || self.hostname.is_some()
    }
}

/// `io_priority` (ioprio_set(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoPriority {
    /// Default `best-effort`.
    pub class: IoClass,
    /// 0 (highest) to 7; default 4. Ignored by the kernel for `idle`.
    pub level: u8,
}

impl IoPriority {
    /// The level when `level` is left out (the kernel's default for best-effort).
    pub const DEFAULT_LEVEL: u8 = 4;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoClass {
    /// `"best-effort"`.
    BestEffort,
    /// `"idle"`.
    Idle,
    /// `"realtime"` (needs root).
    Realtime,
}

/// `readiness`: how tend learns the service is ready (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// sd_notify `READY=1`; `watchdog` (`WatchdogSec`): a missing `WATCHDOG=1`
    /// for that long is a liveness failure.
    Notify { watchdog: Option<Duration> },
    /// s6 style: a newline on this fd (3 to 1023) of the child.
    Fd { fd: i32 },
    /// An output line contains `pattern` (non-empty).
    Log { pattern: String },
    /// A probe that passes (exec, tcp, http, grpc), tried every `interval`.
    Check(Check),
}

/// One probe run every `interval`, each attempt cut off after `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    /// Time between attempts: default 1s for readiness, 10s for liveness.
    pub interval: Duration,
    /// One attempt's limit: default the interval, at most 5s.
    pub timeout: Duration,
}

impl Check {
    /// Default `interval` of a readiness check.
    pub const READINESS_INTERVAL: Duration = Duration::from_secs(1);
    /// Default `interval` of a liveness check.
    pub const LIVENESS_INTERVAL: Duration = Duration::from_secs(10);
    /// Upper bound of the default `timeout`.
    pub const MAX_DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A check with the default timeout for `interval`.
    pub fn new(kind: CheckKind, interval: Duration) -> Check {
        Check {
            kind,
            interval,
            timeout: Check::default_timeout(interval),
        }
    }

    /// SPEC §4: the interval, at most 5s.
    pub fn default_timeout(interval: Duration) -> Duration {
        interval.min(Check::MAX_DEFAULT_TIMEOUT)
    }
}

/// What a probe does. Addresses are resolved at load (IP literal, `localhost`
/// or `/etc/hosts`), never by DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Passes when the command exits 0.
    Exec { command: Vec<String> },
    /// Passes when a TCP connect succeeds.
    Tcp { address: SocketAddr },
    /// `GET path` with `Host: host` and `Connection: close`; passes on any 2xx.
    Http {
        address: SocketAddr,
        /// The `Host` header: the URL's host, with `:PORT` when the URL had one.
        host: String,
        /// Path and query, starting with `/`.
        path: String,
    },
    /// grpc.health.v1 `Check` for `service` answers `SERVING`.
    Grpc {
        address: SocketAddr,
        service: String,
    },
}

/// `liveness`: a check while `running`; `failures` failures in a row restart
/// the service (counted against `max_retries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub check: Check,
    /// At least 1; default 3.
    pub failures: u32,
}

impl Liveness {
    /// SPEC §4 default of `failures`.
    pub const FAILURES: u32 = 3;
}

/// rlimits applied in the child before exec. `None` leaves tend's own limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_NOFILE.
    pub nofile: Option<u64>,
    /// RLIMIT_NPROC.
    pub nproc: Option<u64>,
    /// RLIMIT_CORE, in bytes.
    pub core: Option<u64>,
    /// RLIMIT_AS, in bytes.
    pub memory: Option<u64>,
    /// RLIMIT_CPU, in whole seconds (rounded up).
    pub cpu: Option<u64>,
    /// RLIMIT_FSIZE, in bytes.
    pub fsize: Option<u64>,
}

impl Limits {
    /// No rlimit set (the default).
    pub const NONE: Limits = Limits {
        nofile: None,
        nproc: None,
        core: None,
        memory: None,
        cpu: None,
        fsize: None,
    };
}
