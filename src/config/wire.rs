//! The config in `tend reexec`'s snapshot: [`Wire`] for [`Config`] and every
//! type it holds (see `codec::wire` for the encoding). The new process runs
//! exactly the definitions the old one ran, not the file on disk.
//!
//! Each line lists a type's fields in the order they are written; a tag,
//! once given to a variant, is the format (changing one changes the
//! snapshot's `VERSION`). Must not: check what the validator checks; a
//! snapshot comes from a tend that loaded a valid config.

use log::LevelFilter;

use super::sparse::{Defaults, Sparse};
use super::spec::{
    CgroupLimits, CgroupSetting, Check, CheckKind, Condition, Config, CpuMax, Dependency, IoClass,
    IoPriority, Isolate, Limits, Liveness, LogFormat, OutputMode, ProcessSettings, Readiness,
    RestartPolicy, Rotation, ServiceSpec, ServiceType,
};
use super::{ConfigError, Signal};
use crate::codec::wire::{Reader, Wire, Writer, wire_enum, wire_struct};

wire_struct!(Config {
    log_level,
    log_format,
    log_file,
    log_rotation,
    metrics_address,
    cgroup,
    control_socket,
    shutdown_timeout,
    services_dir,
    exit_when_idle,
    services,
    places,
    warnings,
});

// By hand, not `wire_struct!`: the process fields live behind
// `spec.process` (a `Sparse` group) but keep their places in the format.
impl Wire for ServiceSpec {
    fn put(&self, w: &mut Writer) {
        self.name.put(w);
        self.command.put(w);
        self.service_type.put(w);
        self.enabled.put(w);
        self.working_dir.put(w);
        self.environment.put(w);
        self.env_file.put(w);
        self.inherit_environment.put(w);
        self.restart_policy.put(w);
        self.success_exit_codes.put(w);
        self.max_retries.put(w);
        self.retry_window.put(w);
        self.retry_delay.put(w);
        self.max_retry_delay.put(w);
        self.dependencies.put(w);
        self.readiness.put(w);
        self.liveness.put(w);
        self.timeout_start.put(w);
        self.min_uptime.put(w);
        self.stop_signal.put(w);
        self.timeout_stop.put(w);
        self.output.put(w);
        self.log_file.put(w);
        self.log_max_size.put(w);
        self.log_keep.put(w);
        self.process.user.put(w);
        self.process.group.put(w);
        self.process.limits.put(w);
        self.critical.put(w);
        self.process.cgroup_limits.put(w);
        self.process.isolate.put(w);
        self.process.nice.put(w);
        self.process.io_priority.put(w);
        self.process.oom_score_adj.put(w);
        self.process.cpu_affinity.put(w);
        self.process.sha256.put(w);
    }

    fn get(r: &mut Reader<'_>) -> Self {
        let mut process = ProcessSettings::defaults().clone();
        let name = Wire::get(r);
        let command = Wire::get(r);
        let service_type = Wire::get(r);
        let enabled = Wire::get(r);
        let working_dir = Wire::get(r);
        let environment = Wire::get(r);
        let env_file = Wire::get(r);
        let inherit_environment = Wire::get(r);
        let restart_policy = Wire::get(r);
        let success_exit_codes = Wire::get(r);
        let max_retries = Wire::get(r);
        let retry_window = Wire::get(r);
        let retry_delay = Wire::get(r);
        let max_retry_delay = Wire::get(r);
        let dependencies = Wire::get(r);
        let readiness = Wire::get(r);
        let liveness = Wire::get(r);
        let timeout_start = Wire::get(r);
        let min_uptime = Wire::get(r);
        let stop_signal = Wire::get(r);
        let timeout_stop = Wire::get(r);
        let output = Wire::get(r);
        let log_file = Wire::get(r);
        let log_max_size = Wire::get(r);
        let log_keep = Wire::get(r);
        process.user = Wire::get(r);
        process.group = Wire::get(r);
        process.limits = Wire::get(r);
        let critical = Wire::get(r);
        process.cgroup_limits = Wire::get(r);
        process.isolate = Wire::get(r);
        process.nice = Wire::get(r);
        process.io_priority = Wire::get(r);
        process.oom_score_adj = Wire::get(r);
        process.cpu_affinity = Wire::get(r);
        process.sha256 = Wire::get(r);
        ServiceSpec {
            name,
            command,
            service_type,
            enabled,
            working_dir,
            environment,
            env_file,
            inherit_environment,
            restart_policy,
            success_exit_codes,
            max_retries,
            retry_window,
            retry_delay,
            max_retry_delay,
            dependencies,
            readiness,
            liveness,
            timeout_start,
            min_uptime,
            stop_signal,
            timeout_stop,
            output,
            log_file,
            log_max_size,
            log_keep,
            critical,
            process: Sparse::new(process),
        }
    }
}

wire_enum!(ServiceType {
    0 => Longrun,
    1 => Oneshot,
});

wire_enum!(RestartPolicy {
    0 => Always,
    1 => OnFailure,
    2 => Never,
});

wire_struct!(Dependency { service, condition });

wire_enum!(Condition {
    0 => Started,
    1 => Ready,
    2 => Completed,
});

wire_enum!(OutputMode {
    0 => Log,
    1 => Inherit,
    2 => Null,
});

wire_enum!(LogFormat {
    0 => Text,
    1 => Plain,
    2 => Json,
});

wire_struct!(Rotation { max_size, keep });

wire_enum!(CgroupSetting {
    0 => Auto,
    1 => Path(path),
});

wire_struct!(CgroupLimits {
    memory_max,
    cpu_max,
    pids_max,
});

wire_struct!(CpuMax {
    quota_us,
    period_us,
});

wire_struct!(Isolate {
    network,
    tmp,
    ipc,
    hostname,
});

wire_struct!(IoPriority { class, level });

wire_enum!(IoClass {
    0 => BestEffort,
    1 => Idle,
    2 => Realtime,
});

wire_enum!(Readiness {
    0 => Notify { watchdog },
    1 => Fd { fd },
    2 => Log { pattern },
    3 => Check(check),
});

wire_struct!(Check {
    kind,
    interval,
    timeout,
});

wire_enum!(CheckKind {
    0 => Exec { command },
    1 => Tcp { address },
    2 => Http { address, host, path },
    3 => Grpc { address, service },
});

wire_struct!(Liveness { check, failures });

wire_struct!(Limits {
    nofile,
    nproc,
    core,
    memory,
    cpu,
    fsize,
});

wire_struct!(ConfigError { path, problem });

wire_struct!(Signal(0));

/// A level as its number: `Off` 0 to `Trace` 5 (`log`'s own order).
impl Wire for LevelFilter {
    fn put(&self, w: &mut Writer) {
        w.byte(*self as u8);
    }
    fn get(r: &mut Reader<'_>) -> LevelFilter {
        match r.tag("LevelFilter", 6) {
            1 => LevelFilter::Error,
            2 => LevelFilter::Warn,
            3 => LevelFilter::Info,
            4 => LevelFilter::Debug,
            5 => LevelFilter::Trace,
            _ => LevelFilter::Off,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::codec::wire::{decode, encode};

    /// A service with every optional field set and no default left.
    fn full_service(name: &str, readiness: Readiness, kind: CheckKind) -> ServiceSpec {
        let mut s = ServiceSpec::oneshot(name, vec!["/bin/run".into(), "--flag".into()]);
        s.enabled = false;
        s.working_dir = Some(PathBuf::from("/srv/\u{2713}"));
        s.environment = BTreeMap::from([("A".into(), "1".into()), ("B".into(), String::new())]);
        s.env_file = vec!["/etc/a.env".into(), "/etc/b.env".into()];
        s.inherit_environment = false;
        s.restart_policy = RestartPolicy::Never;
        s.success_exit_codes = vec![0, 3, 255];
        s.max_retries = 4;
        s.retry_window = Duration::from_millis(61_500);
        s.retry_delay = Duration::from_nanos(1);
        s.max_retry_delay = Duration::MAX;
        s.dependencies = vec![
            Dependency {
                service: "db".into(),
                condition: Condition::Started,
            },
            Dependency {
                service: "migrate".into(),
                condition: Condition::Completed,
            },
        ];
        s.readiness = Some(Box::new(readiness));
        s.liveness = Some(Box::new(Liveness {
            check: Check::new(kind, Duration::from_secs(10)),
            failures: 5,
        }));
        s.timeout_start = Duration::from_secs(90);
        s.min_uptime = Duration::from_millis(250);
        s.stop_signal = Signal(2);
        s.timeout_stop = Duration::from_secs(3);
        s.output = OutputMode::Inherit;
        s.log_file = Some("/var/log/x.log".into());
        s.log_max_size = Some(1 << 20);
        s.log_keep = Some(0);
        s.process.user = Some("nobody".into());
        s.process.group = Some("65534".into());
        s.process.limits = Limits {
            nofile: Some(1024),
            nproc: Some(64),
            core: Some(0),
            memory: Some(u64::MAX),
            cpu: Some(60),
            fsize: Some(1 << 30),
        };
        s.critical = true;
        s.process.cgroup_limits = CgroupLimits {
            memory_max: Some(512 << 20),
            cpu_max: Some(CpuMax {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            pids_max: Some(100),
        };
        s.process.isolate = Isolate {
            network: true,
            tmp: true,
            ipc: true,
            hostname: Some("box".into()),
        };
        s.process.nice = Some(-20);
        s.process.io_priority = Some(IoPriority {
            class: IoClass::Realtime,
            level: 7,
        });
        s.process.oom_score_adj = Some(-1000);
        s.process.cpu_affinity = Some(vec![0, 3, 1023]);
        s.process.sha256 = Some([0xab; 32]);
        s
    }

    /// A config with every optional field set, and services with each
    /// readiness and each probe kind.
    fn full_config() -> Config {
        let addr = "127.0.0.1:8080".parse().expect("address");
        let addr6 = "[::1]:50051".parse().expect("address");
        let kinds = [
            CheckKind::Exec {
                command: vec!["check".into(), "-q".into()],
            },
            CheckKind::Tcp { address: addr },
            CheckKind::Http {
                address: addr,
                host: "localhost:8080".into(),
                path: "/health?x=1".into(),
            },
            CheckKind::Grpc {
                address: addr6,
                service: "grpc.health".into(),
            },
        ];
        let readiness = [
            Readiness::Notify { watchdog: None },
            Readiness::Notify {
                watchdog: Some(Duration::from_secs(30)),
            },
            Readiness::Fd { fd: 3 },
            Readiness::Log {
                pattern: "listening on".into(),
            },
            Readiness::Check(Check {
                kind: kinds[2].clone(),
                interval: Duration::from_millis(500),
                timeout: Duration::from_millis(200),
            }),
        ];
        let services = readiness
            .into_iter()
            .enumerate()
            .map(|(i, r)| full_service(&format!("s{i}"), r, kinds[i % kinds.len()].clone()))
            .chain([ServiceSpec::new("plain", vec!["sleep".into()])])
            .collect();
        Config {
            log_level: LevelFilter::Trace,
            log_format: LogFormat::Json,
            log_file: Some("/var/log/tend.log".into()),
            log_rotation: Rotation {
                max_size: 1234,
                keep: 9,
            },
            metrics_address: Some(addr6),
            cgroup: Some(CgroupSetting::Path("/sys/fs/cgroup/tend".into())),
            control_socket: Some(PathBuf::new()),
            shutdown_timeout: Duration::from_millis(45_001),
            services_dir: Some("/etc/tend.d".into()),
            exit_when_idle: true,
            services,
            places: vec![
                "services[0] (s0)".into(),
                "services_dir/x/service.json".into(),
            ],
            warnings: vec![ConfigError {
                path: "(top level)".into(),
                problem: "an unset ${VAR}".into(),
            }],
        }
    }

    #[test]
    fn a_full_config_comes_back_equal() {
        let config = full_config();
        let bytes = encode(&config);
        assert_eq!(decode::<Config>(&bytes), Ok(config.clone()));
        // Every cut is refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode::<Config>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let defaults = Config::new(vec![ServiceSpec::new("a", vec!["x".into()])]);
        assert_eq!(decode::<Config>(&encode(&defaults)), Ok(defaults));
        let auto = Config {
            cgroup: Some(CgroupSetting::Auto),
            ..Config::new(Vec::new())
        };
        assert_eq!(decode::<Config>(&encode(&auto)), Ok(auto));
    }

    #[test]
    fn every_level_comes_back_and_others_are_refused() {
        for level in LevelFilter::iter() {
            assert_eq!(decode::<LevelFilter>(&encode(&level)), Ok(level));
        }
        let err = decode::<LevelFilter>(&[6]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown LevelFilter tag 6 at byte 0"));
    }
}
