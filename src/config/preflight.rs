//! Start-time checks for `tend check` only (SPEC §2, last paragraph): what can
//! only fail when a service starts. `tend run` never calls this: there such a
//! problem fails that one service (with its `last_error`) and the rest run.
//!
//! Reads the machine (users, groups, files) and may block on NSS: fine for a
//! one-shot command, never to be called from the event loop.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::checker::join;
use super::{CheckKind, Config, ConfigError, Readiness, ServiceSpec, env};
use crate::sys;

/// PATH when neither the service nor tend has one (what execvp uses).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Every start-time problem of every service, each with its place: an unknown
/// `user` or `group`, a `working_dir` that is missing or not a folder, an
/// `env_file` that cannot be read or is invalid, a `command[0]` (or exec probe
/// command) not found or not executable.
pub fn preflight(config: &Config) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    for (i, spec) in config.services.iter().enumerate() {
        let place = config.place(i);
        let mut problem = |key: &str, text: String| {
            problems.push(ConfigError {
                path: join(&place, key),
                problem: text,
            });
        };
        if let Some(user) = &spec.user
            && let Err(e) = sys::resolve_credentials(Some(user), None)
        {
            problem("user", lookup_failure("user", user, &e));
        }
        if let Some(group) = &spec.group
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
        if let Err(why) = find_program(&spec.command, spec, &path_var) {
            problem("command[0]", why);
        }
        let checks = [
            spec.readiness.as_ref().and_then(|r| match r {
                Readiness::Check(check) => Some(("readiness.command[0]", &check.kind)),
                Readiness::Notify { .. } | Readiness::Fd { .. } | Readiness::Log { .. } => None,
            }),
            spec.liveness
                .as_ref()
                .map(|l| ("liveness.command[0]", &l.check.kind)),
        ];
        for (key, kind) in checks.into_iter().flatten() {
            if let CheckKind::Exec { command } = kind
                && let Err(why) = find_program(command, spec, &path_var)
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

/// Ok when `argv[0]` names an executable regular file: as given when it holds
/// a `/` (relative to `working_dir`), else the first match on `path_var`.
fn find_program(argv: &[String], spec: &ServiceSpec, path_var: &OsStr) -> Result<(), String> {
    let Some(name) = argv.first() else {
        return Err("the command is empty".into());
    };
    let in_dir = |p: PathBuf| match &spec.working_dir {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    };
    if name.contains('/') {
        return executable(&in_dir(PathBuf::from(name))).map_err(|why| format!("{name}: {why}"));
    }
    let mut found_unusable = None;
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let candidate = in_dir(Path::new(OsStr::from_bytes(dir)).join(name));
        match executable(&candidate) {
            Ok(()) => return Ok(()),
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

/// Ok if `path` is a regular file this process may execute (as access(2) says).
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
        spec.user = Some("no-such-user-tend".into());
        spec.group = Some("no-such-group-tend".into());
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

    #[test]
    fn exec_probe_commands_are_checked() {
        let mut spec = ServiceSpec::new("p", vec!["/bin/sh".into()]);
        spec.readiness = Some(Readiness::Check(super::super::Check::new(
            CheckKind::Exec {
                command: vec!["no-such-probe-tend".into()],
            },
            std::time::Duration::from_secs(1),
        )));
        let found = problems_of(spec);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("services[0] (p).readiness.command[0]:"),
            "{found:#?}"
        );
    }
}
