//! Start-time checks for `tend check` only (SPEC §2, last paragraph): what can
//! only fail when a service starts. `tend run` never calls this: there such a
//! problem fails that one service (with its `last_error`) and the rest run.
//! [`warnings`] adds what may fail depending on who runs tend and where
//! (namespaces and lower priorities need root; a container may refuse
//! namespaces) and settings that cannot work together (`isolate` with
//! checks or paths it hides).
//!
//! Reads the machine (users, groups, files; a `sha256` reads the whole
//! program) and may block on NSS: fine for a one-shot command, never to be
//! called from the event loop.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::checker::join;
use super::{CheckKind, Config, ConfigError, IoClass, Readiness, ServiceSpec, env};
use crate::codec::sha256;
use crate::sys;

/// PATH when neither the service nor tend has one (what execvp uses).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Every start-time problem of every service, each with its place: an unknown
/// `user` or `group`, a `working_dir` that is missing or not a folder, an
/// `env_file` that cannot be read or is invalid, a `command[0]` (or exec probe
/// command) not found or not executable, a program whose SHA-256 is not its
/// `sha256`.
pub fn preflight(config: &Config) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    // Services mostly share a few programs: each file is looked at once.
    let mut seen = Seen::default();
    for (i, spec) in config.services.iter().enumerate() {
        let place = config.place(i);
        let mut problem = |key: &str, text: String| {
            problems.push(ConfigError {
                path: join(&place, key),
                problem: text,
            });
        };
        if let Some(user) = &spec.process.user
            && let Err(e) = sys::resolve_credentials(Some(user), None)
        {
            problem("user", lookup_failure("user", user, &e));
        }
        if let Some(group) = &spec.process.group
            && let Err(e) = sys::resolve_credentials(None, Some(group))
        {
            problem("group", lookup_failure("group", group, &e));
        }
        let dir_ok = match &spec.working_dir {
            Some(dir) => match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => true,
                Ok(_) => {
                    problem("working_dir", format!("{} is not a folder", dir.display()));
                    false
                }
                Err(e) => {
                    problem("working_dir", format!("{}: {e}", dir.display()));
                    false
                }
            },
            None => true,
        };
        let from_files = match env::read_env_files(spec) {
            Ok(pairs) => pairs,
            Err(e) => {
                problem("env_file", e);
                Vec::new()
            }
        };
        // Without a usable working_dir a relative command cannot be judged.
        if !dir_ok {
            continue;
        }
        let path_var = search_path(spec, &from_files);
        match find_program(&mut seen, &spec.command, spec, &path_var) {
            Err(why) => problem("command[0]", why),
            Ok(program) => {
                if let Some(expected) = &spec.process.sha256
                    && let Err(why) = check_sha256(&program, expected)
                {
                    problem("sha256", why);
                }
            }
        }
        let checks = [
            spec.readiness.as_deref().and_then(|r| match r {
                Readiness::Check(check) => Some(("readiness.command[0]", &check.kind)),
                Readiness::Notify { .. } | Readiness::Fd { .. } | Readiness::Log { .. } => None,
            }),
            spec.liveness
                .as_ref()
                .map(|l| ("liveness.command[0]", &l.check.kind)),
        ];
        for (key, kind) in checks.into_iter().flatten() {
            if let CheckKind::Exec { command } = kind
                && let Err(why) = find_program(&mut seen, command, spec, &path_var)
            {
                problem(key, why);
            }
        }
    }
    problems
}

/// `no such user: www`, or why the lookup itself failed.
fn lookup_failure(what: &str, name: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        e.to_string()
    } else {
        format!("cannot look up {what} {name:?}: {e}")
    }
}

/// The PATH the child will search: its `environment`, else its env files, else
/// tend's own, else execvp's default.
fn search_path(spec: &ServiceSpec, from_files: &[(String, String)]) -> OsString {
    if let Some(p) = spec.environment.get("PATH") {
        return p.into();
    }
    if let Some((_, p)) = from_files.iter().rev().find(|(k, _)| k == "PATH") {
        return p.into();
    }
    std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into())
}

/// The executable regular file `argv[0]` names: as given when it holds a `/`
/// (relative to `working_dir`), else the first match on `path_var`.
fn find_program(
    seen: &mut Seen,
    argv: &[String],
    spec: &ServiceSpec,
    path_var: &OsStr,
) -> Result<PathBuf, String> {
    let Some(name) = argv.first() else {
        return Err("the command is empty".into());
    };
    let in_dir = |p: PathBuf| match &spec.working_dir {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    };
    if name.contains('/') {
        let path = in_dir(PathBuf::from(name));
        return match seen.executable(&path) {
            Ok(()) => Ok(path),
            Err(why) => Err(format!("{name}: {why}")),
        };
    }
    let mut found_unusable = None;
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let candidate = in_dir(Path::new(OsStr::from_bytes(dir)).join(name));
        match seen.executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(why) if candidate.exists() => {
                found_unusable.get_or_insert(format!("{}: {why}", candidate.display()));
            }
            Err(_) => {}
        }
    }
    Err(found_unusable.unwrap_or_else(|| {
        format!(
            "{name:?} was not found in PATH ({})",
            path_var.to_string_lossy()
        )
    }))
}

/// Ok if the file at `path` has the SHA-256 `expected`; else the message a
/// spawn would fail with.
fn check_sha256(path: &Path, expected: &[u8; 32]) -> Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = sha256::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    let found = hasher.finish();
    if found == *expected {
        return Ok(());
    }
    Err(format!(
        "{}: sha256 mismatch: expected {}, found {}",
        path.display(),
        sha256::to_hex(expected),
        sha256::to_hex(&found)
    ))
}

/// What may fail depending on who runs tend and where, or cannot work
/// together, each with its place (`tend check` prints them as warnings; the
/// exit code stays 0). For this process's effective uid and kernel.
pub fn warnings(config: &Config) -> Vec<ConfigError> {
    let missing: Vec<&str> = NAMESPACES
        .iter()
        .filter(|(file, _)| !Path::new("/proc/self/ns").join(file).exists())
        .map(|(_, kind)| *kind)
        .collect();
    warnings_for(config, sys::effective_uid(), &missing)
}

/// The `/proc/self/ns` file of each namespace `isolate` makes, and its key.
const NAMESPACES: [(&str, &str); 4] = [
    ("net", "network"),
    ("mnt", "tmp"),
    ("ipc", "ipc"),
    ("uts", "hostname"),
];

/// [`warnings`] for a tend run by `uid` on a kernel without the namespaces
/// whose `isolate` keys are `missing`.
fn warnings_for(config: &Config, uid: u32, missing: &[&str]) -> Vec<ConfigError> {
    let mut warnings = Vec::new();
    for (i, spec) in config.services.iter().enumerate() {
        let place = config.place(i);
        let mut warn = |key: &str, text: String| {
            warnings.push(ConfigError {
                path: join(&place, key),
                problem: text,
            });
        };
        let isolate = &spec.process.isolate;
        let asked = [
            ("network", isolate.network),
            ("tmp", isolate.tmp),
            ("ipc", isolate.ipc),
            ("hostname", isolate.hostname.is_some()),
        ];
        if let Some((first, _)) = asked.iter().find(|(_, on)| *on)
            && uid != 0
        {
            warn(
                "isolate",
                format!(
                    "new namespaces need root (CAP_SYS_ADMIN): started by uid {uid}, as \
                     this check, tend fails to spawn it (\"isolate {first}: Operation not \
                     permitted\")"
                ),
            );
        }
        for (key, _) in asked
            .iter()
            .filter(|(key, on)| *on && missing.contains(key))
        {
            warn(
                &format!("isolate.{key}"),
                "this kernel has no such namespace (no /proc/self/ns entry): the spawn fails"
                    .into(),
            );
        }
        if uid != 0 {
            let needs_root = [
                (
                    "nice",
                    spec.process.nice.is_some_and(|n| n < 0),
                    "a negative nice",
                    "CAP_SYS_NICE",
                ),
                (
                    "io_priority",
                    spec.process
                        .io_priority
                        .is_some_and(|p| p.class == IoClass::Realtime),
                    "the realtime class",
                    "CAP_SYS_ADMIN",
                ),
                (
                    "oom_score_adj",
                    spec.process.oom_score_adj.is_some_and(|n| n < 0),
                    "a negative score",
                    "CAP_SYS_RESOURCE",
                ),
            ];
            for (key, _, what, cap) in needs_root.iter().filter(|(_, on, ..)| *on) {
                warn(
                    key,
                    format!("{what} needs root ({cap}): started by uid {uid}, the spawn fails"),
                );
            }
        }
        if isolate.network {
            let checks = [
                (
                    "readiness",
                    match spec.readiness.as_deref() {
                        Some(Readiness::Check(check)) => Some(&check.kind),
                        _ => None,
                    },
                ),
                ("liveness", spec.liveness.as_ref().map(|l| &l.check.kind)),
            ];
            for (key, kind) in checks {
                if let Some(
                    kind
                    @ (CheckKind::Tcp { .. } | CheckKind::Http { .. } | CheckKind::Grpc { .. }),
                ) = kind
                {
                    warn(
                        key,
                        format!(
                            "a {} check runs in tend's network namespace and cannot reach a \
                             service with isolate.network (it has a loopback of its own): use \
                             notify, fd or log readiness",
                            check_name(kind)
                        ),
                    );
                }
            }
        }
        if isolate.tmp {
            let hidden = |p: &Path| p.starts_with("/tmp") || p.starts_with("/var/tmp");
            let program = spec.command.first().map(PathBuf::from);
            let in_dir = |p: PathBuf| match &spec.working_dir {
                Some(dir) if p.is_relative() => dir.join(p),
                _ => p,
            };
            if let Some(program) = program.filter(|p| p.components().count() > 1).map(in_dir)
                && hidden(&program)
            {
                warn(
                    "command[0]",
                    format!(
                        "{} is hidden from the service by isolate.tmp (a fresh /tmp and \
                         /var/tmp): the exec fails",
                        program.display()
                    ),
                );
            }
            if let Some(dir) = spec.working_dir.as_deref().filter(|d| hidden(d)) {
                warn(
                    "working_dir",
                    format!(
                        "{} is hidden from the service by isolate.tmp (a fresh /tmp and \
                         /var/tmp): the spawn fails",
                        dir.display()
                    ),
                );
            }
        }
    }
    warnings
}

/// The `type` of a check, as the config spells it.
fn check_name(kind: &CheckKind) -> &'static str {
    match kind {
        CheckKind::Exec { .. } => "exec",
        CheckKind::Tcp { .. } => "tcp",
        CheckKind::Http { .. } => "http",
        CheckKind::Grpc { .. } => "grpc",
    }
}

/// Ok if `path` is a regular file this process may execute (as access(2) says).
/// What [`executable`] said of each file so far.
#[derive(Default)]
struct Seen(std::collections::HashMap<PathBuf, Result<(), String>>);

impl Seen {
    fn executable(&mut self, path: &Path) -> Result<(), String> {
        if let Some(known) = self.0.get(path) {
            return known.clone();
        }
        let verdict = executable(path);
        self.0.insert(path.to_path_buf(), verdict.clone());
        verdict
    }
}

fn executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| "holds a NUL byte")?;
    sys::access_executable(&c).map_err(|e| format!("is not executable ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(spec: ServiceSpec) -> Config {
        Config::new(vec![spec])
    }

    fn problems_of(spec: ServiceSpec) -> Vec<String> {
        preflight(&config(spec))
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn a_good_service_has_no_problem() {
        let mut spec = ServiceSpec::new("ok", vec!["sh".into(), "-c".into(), "true".into()]);
        spec.working_dir = Some("/".into());
        assert_eq!(problems_of(spec), Vec::<String>::new());
        let spec = ServiceSpec::new("abs", vec!["/bin/sh".into()]);
        assert_eq!(problems_of(spec), Vec::<String>::new());
    }

    #[test]
    fn each_start_time_problem_is_placed() {
        let mut spec = ServiceSpec::new("web", vec!["no-such-program-tend".into()]);
        spec.process.user = Some("no-such-user-tend".into());
        spec.process.group = Some("no-such-group-tend".into());
        spec.env_file = vec!["/nonexistent/tend.env".into()];
        let found = problems_of(spec);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].starts_with("services[0] (web).user: no such user: no-such-user-tend"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("services[0] (web).group: no such group: no-such-group-tend"),
            "{found:#?}"
        );
        assert!(
            found[2].starts_with("services[0] (web).env_file: env_file /nonexistent"),
            "{found:#?}"
        );
        assert!(
            found[3].starts_with(
                "services[0] (web).command[0]: \"no-such-program-tend\" was not found in PATH"
            ),
            "{found:#?}"
        );
    }

    #[test]
    fn working_dir_and_relative_commands() {
        let mut spec = ServiceSpec::new("w", vec!["./x".into()]);
        spec.working_dir = Some("/nonexistent/tend-dir".into());
        let found = problems_of(spec.clone());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("services[0] (w).working_dir: /nonexistent/tend-dir"),
            "{found:#?}"
        );
        spec.working_dir = Some("/etc/passwd".into());
        assert!(problems_of(spec.clone())[0].contains("is not a folder"));
        spec.working_dir = Some("/bin".into());
        spec.command = vec!["./sh".into()];
        assert_eq!(
            problems_of(spec.clone()),
            Vec::<String>::new(),
            "relative to working_dir"
        );
        spec.command = vec!["/etc/passwd".into()];
        assert!(problems_of(spec.clone())[0].contains("is not executable"));
        spec.command = vec!["/".into()];
        assert!(problems_of(spec)[0].contains("not a regular file"));
    }

    #[test]
    fn path_comes_from_the_service_environment() {
        let mut spec = ServiceSpec::new("p", vec!["sh".into()]);
        spec.environment
            .insert("PATH".into(), "/nonexistent".into());
        let found = problems_of(spec.clone());
        assert!(
            found[0].contains("not found in PATH (/nonexistent)"),
            "{found:#?}"
        );
        spec.environment
            .insert("PATH".into(), "/nonexistent:/bin".into());
        assert_eq!(problems_of(spec), Vec::<String>::new());
    }

    fn parsed(service: &str) -> Config {
        let command = if service.starts_with(r#", "command""#) {
            ""
        } else {
            r#", "command": ["/bin/sh"]"#
        };
        let text = format!(r#"{{"services": [{{"name": "s"{command}{service}}}]}}"#);
        match crate::config::parse(&text, None) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn warnings_of(service: &str, uid: u32, missing: &[&str]) -> Vec<String> {
        warnings_for(&parsed(service), uid, missing)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn isolation_warns_when_not_root_or_not_supported() {
        let isolated = r#", "isolate": {"tmp": true, "hostname": "h"}"#;
        let found = warnings_of(isolated, 1000, &[]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("services[0] (s).isolate: new namespaces need root")
                && found[0].contains("uid 1000")
                && found[0].contains("isolate tmp: Operation not permitted"),
            "{found:#?}"
        );
        assert_eq!(warnings_of(isolated, 0, &[]), Vec::<String>::new());
        let found = warnings_of(isolated, 0, &["hostname", "network"]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("services[0] (s).isolate.hostname: this kernel has no"));
        assert_eq!(warnings_of("", 1000, &["network"]), Vec::<String>::new());
    }

    #[test]
    fn lower_priorities_warn_when_not_root() {
        let lower = r#", "nice": -5, "io_priority": {"class": "realtime"}, "oom_score_adj": -10"#;
        let found = warnings_of(lower, 1000, &[]);
        let keys: Vec<&str> = found
            .iter()
            .filter_map(|w| w.strip_prefix("services[0] (s)."))
            .filter_map(|w| w.split(':').next())
            .collect();
        assert_eq!(keys, ["nice", "io_priority", "oom_score_adj"], "{found:#?}");
        assert_eq!(warnings_of(lower, 0, &[]), Vec::<String>::new());
        let higher = r#", "nice": 5, "io_priority": {"class": "idle"}, "oom_score_adj": 10"#;
        assert_eq!(warnings_of(higher, 1000, &[]), Vec::<String>::new());
    }

    #[test]
    fn isolation_warns_of_what_it_hides() {
        let found = warnings_of(
            r#", "isolate": {"network": true},
                "readiness": {"type": "tcp", "address": "127.0.0.1:80"},
                "liveness": {"type": "exec", "command": ["true"]}"#,
            0,
            &[],
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("services[0] (s).readiness: a tcp check runs in tend's"),
            "{found:#?}"
        );
        let found = warnings_of(
            r#", "command": ["./run"], "isolate": {"tmp": true}, "working_dir": "/var/tmp/app""#,
            0,
            &[],
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].starts_with("services[0] (s).command[0]: /var/tmp/app/./run is hidden"));
        assert!(found[1].starts_with("services[0] (s).working_dir: /var/tmp/app is hidden"));
        assert_eq!(
            warnings_of(r#", "command": ["sh"], "isolate": {"tmp": true}"#, 0, &[]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_sha256_is_checked_against_the_program() {
        let dir = std::env::temp_dir().join(format!("isolate-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let program = dir.join("app");
        std::fs::write(&program, "#!/bin/sh\nexit 0\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let digest = sha256::to_hex(&sha256::digest(b"#!/bin/sh\nexit 0\n"));
        let mut spec = ServiceSpec::new("app", vec![program.display().to_string()]);
        spec.process.sha256 = sha256::from_hex(&digest);
        assert_eq!(problems_of(spec.clone()), Vec::<String>::new());
        spec.process.sha256 = Some([0x11; 32]);
        let found = problems_of(spec);
        assert_eq!(
            found,
            [format!(
                "services[0] (app).sha256: {}: sha256 mismatch: expected {}, found {digest}",
                program.display(),
                "11".repeat(32)
            )]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exec_probe_commands_are_checked() {
        let mut spec = ServiceSpec::new("p", vec!["/bin/sh".into()]);
        spec.readiness = Some(Box::new(Readiness::Check(super::super::Check::new(
            CheckKind::Exec {
                command: vec!["no-such-probe-tend".into()],
            },
            std::time::Duration::from_secs(1),
        ))));
        let found = problems_of(spec);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("services[0] (p).readiness.command[0]:"),
            "{found:#?}"
        );
    }
}
