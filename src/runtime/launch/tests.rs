use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::config;
use crate::sys::user::resolve_credentials;
use std::sync::Arc;

/// Service `s` with these fields (after a comma), `command` `/bin/sh` unless given.
fn spec(fields: &str) -> ServiceSpec {
    let command = if fields.contains(r#""command""#) {
        ""
    } else {
        r#", "command": ["/bin/sh"]"#
    };
    let text = format!(r#"{{"services": [{{"name": "s"{command}{fields}}}]}}"#);
    match config::parse(&text, None) {
        Ok(mut c) => c.services.remove(0),
        Err(e) => panic!("{e}"),
    }
}

fn tend_env(pairs: &[(&str, &str)]) -> Environment {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

fn names(env: &[(OsString, OsString)]) -> Vec<String> {
    env.iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect()
}

fn value<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_os_str())
}

/// A scratch folder under /tmp, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = PathBuf::from(format!("/tmp/sys-launch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("mkdir");
        Scratch(path)
    }

    fn file(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const TEND: &[(&str, &str)] = &[
    ("PATH", "/usr/bin:/bin"),
    ("HOME", "/home/tend"),
    ("USER", "tend"),
    ("SECRET", "leak"),
];

#[test]
fn without_inheritance_only_path_home_and_tmpdir_are_passed() {
    let s = spec(r#", "inherit_environment": false, "environment": {"A": "1"}"#);
    let env = environment(&s, &tend_env(TEND), None, &[], None);
    assert_eq!(names(&env), ["A", "HOME", "PATH", "TMPDIR"]);
    assert_eq!(value(&env, "TMPDIR"), Some(OsStr::new("/tmp")));
    assert_eq!(value(&env, "HOME"), Some(OsStr::new("/home/tend")));
    let mut with_tmpdir = tend_env(TEND);
    with_tmpdir.insert("TMPDIR".into(), "/var/tmp/x".into());
    let env = environment(&s, &with_tmpdir, None, &[], None);
    assert_eq!(value(&env, "TMPDIR"), Some(OsStr::new("/var/tmp/x")));
    // `environment` overrides even these.
    let s = spec(r#", "inherit_environment": false, "environment": {"TMPDIR": "/mine"}"#);
    let env = environment(&s, &with_tmpdir, None, &[], None);
    assert_eq!(value(&env, "TMPDIR"), Some(OsStr::new("/mine")));
}

#[test]
fn inheritance_passes_everything_and_environment_overrides() {
    let s = spec(r#", "environment": {"SECRET": "kept", "B": "2"}"#);
    let env = environment(&s, &tend_env(TEND), None, &[], None);
    assert_eq!(names(&env), ["B", "HOME", "PATH", "SECRET", "USER"]);
    assert_eq!(value(&env, "SECRET"), Some(OsStr::new("kept")));
    assert_eq!(value(&env, "TMPDIR"), None, "not added when inheriting");
}

#[test]
fn a_user_sets_home_user_logname_and_shell_from_its_account() {
    let account = Account {
        name: "svc".into(),
        home: "/srv/svc".into(),
        shell: Some("/bin/false".into()),
    };
    for inherit in [true, false] {
        let s = spec(&format!(r#", "inherit_environment": {inherit}"#));
        let env = environment(&s, &tend_env(TEND), Some(&account), &[], None);
        assert_eq!(value(&env, "HOME"), Some(OsStr::new("/srv/svc")));
        assert_eq!(value(&env, "USER"), Some(OsStr::new("svc")));
        assert_eq!(value(&env, "LOGNAME"), Some(OsStr::new("svc")));
        assert_eq!(value(&env, "SHELL"), Some(OsStr::new("/bin/false")));
        assert_eq!(value(&env, "SECRET").is_some(), inherit);
    }
    // A number without a passwd entry: HOME=/, USER and LOGNAME the number.
    let creds = resolve_credentials(Some("4000000001"), None).expect("bare uid");
    let s = spec(r#", "inherit_environment": false"#);
    let env = environment(&s, &tend_env(TEND), creds.account.as_ref(), &[], None);
    assert_eq!(names(&env), ["HOME", "LOGNAME", "PATH", "TMPDIR", "USER"]);
    assert_eq!(value(&env, "HOME"), Some(OsStr::new("/")));
    assert_eq!(value(&env, "USER"), Some(OsStr::new("4000000001")));
}

#[test]
fn the_program_is_found_on_path_as_execvp_would() {
    let dir = Scratch::new("path");
    dir.file("a/tool", 0o644); // not executable: remembered, search goes on
    let found = dir.file("b/tool", 0o755);
    let path = format!(
        "{}:{}:{}",
        dir.0.join("none").display(),
        dir.0.join("a").display(),
        dir.0.join("b").display()
    );
    let s = spec(r#", "command": ["tool", "x"]"#);
    let env = [(OsString::from("PATH"), OsString::from(&path))];
    assert_eq!(find_program(&s, &env).expect("found"), found);
    let only_a = [(OsString::from("PATH"), OsString::from(dir.0.join("a")))];
    if crate::sys::effective_uid() != 0 {
        // root may execute anything with an x bit for anyone; 0644 has none.
        let err = find_program(&s, &only_a).expect_err("not executable");
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    }
    let nowhere = [(OsString::from("PATH"), OsString::from(dir.0.join("none")))];
    let err = find_program(&s, &nowhere).expect_err("missing");
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    // With a slash: as given, checked relative to working_dir.
    let s = spec(&format!(
        r#", "command": ["./b/tool"], "working_dir": "{}""#,
        dir.0.display()
    ));
    assert_eq!(
        find_program(&s, &[]).expect("relative"),
        PathBuf::from("./b/tool")
    );
}

#[test]
fn resolving_fails_with_the_stage_a_spawn_would_fail_at() {
    let env = tend_env(TEND);
    let err = LaunchPlan::resolve(&spec(r#", "user": "no-such-user-tend""#), &env, None)
        .expect_err("unknown user");
    assert_eq!(
        err.to_string(),
        "user/group: no such user: no-such-user-tend"
    );
    let err = LaunchPlan::resolve(&spec(r#", "command": ["/no/such/tend"]"#), &env, None)
        .expect_err("no program");
    assert_eq!(err.to_string(), "No such file or directory (os error 2)");
    // The config refuses a NUL byte; a plan built another way still does.
    let mut nul = spec("");
    nul.command = vec!["/bin/sh".into(), "a\0b".into()];
    let err = LaunchPlan::resolve(&nul, &env, None).expect_err("NUL");
    assert_eq!(err.stage, Stage::Prepare);
}

#[test]
fn a_plan_holds_argv_environment_and_limits() {
    let s = spec(
        r#", "command": ["sh", "-c", "true"], "inherit_environment": false,
           "environment": {"X": "y"}, "limits": {"nofile": 64}"#,
    );
    let plan = LaunchPlan::resolve(&s, &tend_env(TEND), None).expect("resolved");
    let argv: Vec<&str> = plan
        .exec()
        .argv()
        .iter()
        .map(|a| a.to_str().unwrap_or("?"))
        .collect();
    assert!(
        argv[0].ends_with("/sh") && argv[0].starts_with('/'),
        "{argv:?}"
    );
    assert_eq!(&argv[1..], ["-c", "true"]);
    let env: Vec<&str> = plan
        .exec()
        .env()
        .iter()
        .map(|a| a.to_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        env,
        [
            "HOME=/home/tend",
            "PATH=/usr/bin:/bin",
            "TMPDIR=/tmp",
            "X=y"
        ]
    );
    assert_eq!(
        rlimits(&s.process.limits),
        [Rlimit {
            resource: Resource::Nofile,
            value: 64
        }]
    );
}

#[test]
fn env_files_are_read_when_resolving_and_environment_overrides_them() {
    let dir = Scratch::new("envfile");
    let first = dir.0.join("a.env");
    let second = dir.0.join("b.env");
    std::fs::write(&first, "FROM_A=1\nSHARED=a\nUSER=from-file\n").expect("write");
    std::fs::write(&second, "# later files win\nSHARED=b\nQUOTED=\"x y\"\n").expect("write");
    let s = spec(&format!(
        r#", "env_file": ["{}", "{}"], "environment": {{"FROM_A": "config"}}"#,
        first.display(),
        second.display()
    ));
    let plan = LaunchPlan::resolve(&s, &tend_env(TEND), None).expect("resolved");
    let env: Vec<&str> = plan
        .exec()
        .env()
        .iter()
        .filter_map(|c| c.to_str().ok())
        .collect();
    let has = |pair: &str| env.contains(&pair);
    assert!(has("FROM_A=config"), "environment wins: {env:?}");
    assert!(has("SHARED=b"), "the later file wins: {env:?}");
    assert!(has("QUOTED=x y"), "{env:?}");
    assert!(has("USER=from-file"), "files override tend's: {env:?}");
    // A file that cannot be read fails the resolve, naming it.
    std::fs::remove_file(&second).expect("rm");
    let e = LaunchPlan::resolve(&s, &tend_env(TEND), None).expect_err("missing file");
    assert_eq!(e.stage, Stage::EnvFile);
    assert!(
        e.to_string()
            .starts_with(&format!("env_file {}", second.display())),
        "{e}"
    );
}

#[test]
fn plans_are_kept_for_unchanged_definitions_only() {
    let config = |extra: &str| {
        let text = format!(
            r#"{{"services": [{{"name": "a", "command": ["sh"], "group": "0"}},
                {{"name": "b", "command": ["sh"], "group": "0"{extra}}},
                {{"name": "c", "command": ["/no/such/tend"], "group": "0"}},
                {{"name": "d", "command": ["sh"]}}]}}"#
        );
        let services = config::parse(&text, None).expect("valid").services;
        services.into_iter().map(Arc::new).collect::<Vec<_>>()
    };
    let first = config("");
    let mut plans = LaunchPlans::new(&first, None);
    let address = |plans: &LaunchPlans, name: &str| {
        plans
            .plans
            .get(name)
            .map(|known| known.1.exec().program().as_ptr())
    };
    let (a, b) = (address(&plans, "a"), address(&plans, "b"));
    assert!(a.is_some() && b.is_some());
    assert_eq!(
        address(&plans, "c"),
        None,
        "an unresolvable one has no plan"
    );
    assert_eq!(
        address(&plans, "d"),
        None,
        "one resolved without reading files is resolved at its spawns"
    );
    let second = config(r#", "environment": {"NEW": "1"}"#);
    plans.update(&second);
    assert_eq!(address(&plans, "a"), a, "unchanged: the same plan");
    assert!(address(&plans, "b").is_some());
    let resolved_b = plans.plans.get("b").map(|known| known.0.clone());
    assert_eq!(resolved_b.as_ref(), second.get(1), "changed: resolved anew");
    assert!(
        Arc::ptr_eq(&plans.plans["a"].0, &first[0]),
        "an unchanged plan keeps the definition it was resolved from"
    );
    // a's environment is now its own: b's differs.
    assert_eq!(plans.plans["a"].1.exec().shared_env().users(), 2);
    plans.update(&second[..1]);
    assert_eq!(plans.plans.len(), 1, "removed services lose their plan");
}

#[test]
fn equal_environments_are_kept_once() {
    let text = r#"{"services": [{"name": "a", "command": ["sh"], "group": "0"},
        {"name": "b", "command": ["sh"], "group": "0"},
        {"name": "c", "command": ["sh"], "group": "0", "environment": {"ONLY_C": "1"}}]}"#;
    let services: Vec<Arc<ServiceSpec>> = config::parse(text, None)
        .expect("valid")
        .services
        .into_iter()
        .map(Arc::new)
        .collect();
    let plans = LaunchPlans::new(&services, None);
    let env = |name: &str| plans.plans[name].1.exec().shared_env();
    assert_eq!(env("a").strings(), env("b").strings());
    // a's and b's plans and the interning table: three users of one copy.
    assert_eq!(env("a").users(), 3, "a and b share one environment");
    assert_eq!(env("c").users(), 2, "c has its own");
    assert!(
        env("c")
            .strings()
            .iter()
            .any(|s| s.to_bytes() == b"ONLY_C=1")
    );
}

#[test]
fn spawning_resolves_what_is_missing_and_reports_failures_in_place() {
    let text = r#"{"services": [
        {"name": "ok", "command": ["sh", "-c", "exit 0"], "output": "null"},
        {"name": "bad", "command": ["/no/such/tend"]},
        {"name": "nodir", "command": ["sh"], "working_dir": "/no/such/dir/tend"}]}"#;
    let services: Vec<Arc<ServiceSpec>> = config::parse(text, None)
        .expect("valid")
        .services
        .into_iter()
        .map(Arc::new)
        .collect();
    let mut plans = LaunchPlans::new(&[], None);
    let mut spawner = Spawner::new(None).expect("spawner");
    let jobs = services.iter().map(|spec| (spec, None)).collect();
    let results = plans.spawn_all(&mut spawner, jobs);
    assert_eq!(results.len(), 3);
    match &results[0] {
        Ok(child) => {
            assert!(child.stdout.is_none(), "output null: no pipe");
            crate::sys::reap_blocking(child.pid);
        }
        Err(e) => panic!("{e}"),
    }
    let error = |i: usize| results[i].as_ref().err().map(|e| e.to_string());
    assert_eq!(
        error(1).as_deref(),
        Some("No such file or directory (os error 2)")
    );
    assert!(error(2).is_some_and(|e| e.starts_with("working_dir: ")));
    assert!(
        !plans.plans.contains_key("ok"),
        "a plan resolved without reading files is not kept"
    );
    assert!(
        !plans.plans.contains_key("nodir"),
        "a failed spawn drops the plan"
    );
}

#[test]
fn plans_are_kept_when_resolving_reads_files() {
    assert!(!kept(&spec("")));
    assert!(!kept(&spec(r#", "environment": {"A": "1"}, "nice": 3"#)));
    assert!(kept(&spec(r#", "user": "nobody""#)));
    assert!(kept(&spec(r#", "group": "0""#)));
    assert!(kept(&spec(r#", "env_file": "/etc/tend.env""#)));
}

#[test]
fn notify_readiness_gets_its_socket_and_watchdog_and_nothing_of_tends() {
    // tend's own supervisor's variables never reach a service (SPEC §4);
    // the integration test `notify::tend_speaks_upward` runs tend with them.
    let real = tend_environment();
    for own in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        assert!(!real.contains_key(OsStr::new(own)), "{own} inherited");
    }
    // A notify service gets its own socket, and WATCHDOG_USEC with a watchdog,
    // whatever its `environment` says; other readiness types get neither.
    let dir = Path::new("/run/tend.42");
    let s = spec(
        r#", "readiness": {"type": "notify", "watchdog": "1.5s"},
           "environment": {"NOTIFY_SOCKET": "/elsewhere"}"#,
    );
    let plan = LaunchPlan::resolve(&s, &tend_env(TEND), Some(dir)).expect("resolved");
    let env: Vec<&str> = plan
        .exec()
        .env()
        .iter()
        .map(|a| a.to_str().unwrap_or("?"))
        .collect();
    let socket = format!(
        "NOTIFY_SOCKET={}",
        super::super::notify::socket_path(dir, "s").display()
    );
    assert!(env.contains(&socket.as_str()), "{env:?}");
    assert!(env.contains(&"WATCHDOG_USEC=1500000"), "{env:?}");
    let s = spec(r#", "readiness": {"type": "notify"}, "inherit_environment": false"#);
    let env = environment(
        &s,
        &tend_env(TEND),
        None,
        &[],
        Some(Path::new("/run/tend.42/svc.sock")),
    );
    assert_eq!(
        value(&env, "NOTIFY_SOCKET"),
        Some(OsStr::new("/run/tend.42/svc.sock"))
    );
    assert_eq!(value(&env, "WATCHDOG_USEC"), None);
    for other in [r#", "readiness": {"type": "fd", "fd": 3}"#, ""] {
        let plan = LaunchPlan::resolve(&spec(other), &tend_env(TEND), Some(dir)).expect("resolved");
        assert!(
            !plan
                .exec()
                .env()
                .iter()
                .any(|e| e.to_bytes().starts_with(b"NOTIFY_SOCKET=")),
            "{other}"
        );
    }
    let plan = LaunchPlan::resolve(
        &spec(r#", "readiness": {"type": "fd", "fd": 7}"#),
        &tend_env(TEND),
        Some(dir),
    )
    .expect("resolved");
    assert_eq!(plan.readiness_fd(), Some(7));
}

#[test]
fn isolation_and_priorities_come_from_the_definition() {
    let s = spec(
        r#", "isolate": {"network": true, "hostname": "box"}, "nice": 5,
            "io_priority": {"class": "idle"}, "oom_score_adj": 100, "cpu_affinity": [0, 2]"#,
    );
    assert_eq!(
        namespaces(&s),
        Namespaces {
            network: true,
            tmp: false,
            ipc: false,
            hostname: Some("box".into()),
        }
    );
    assert_eq!(
        priorities(&s),
        Priorities {
            nice: Some(5),
            io_priority: Some((sys_spawn::IoClass::Idle, 4)),
            oom_score_adj: Some(100),
            cpu_affinity: Some(vec![0, 2]),
        }
    );
    let plan = LaunchPlan::resolve(&s, &tend_env(TEND), None).expect("resolved");
    assert!(plan.exec().isolates());
    let plain = LaunchPlan::resolve(&spec(""), &tend_env(TEND), None).expect("resolved");
    assert!(!plain.exec().isolates());
    assert_eq!(priorities(&spec("")), Priorities::default());
}

#[test]
fn the_file_checked_is_the_program_relative_to_working_dir() {
    let dir = Scratch::new("file");
    dir.file("bin/app", 0o755);
    let s = spec(&format!(
        r#", "command": ["./bin/app"], "working_dir": "{}""#,
        dir.0.display()
    ));
    let plan = LaunchPlan::resolve(&s, &tend_env(TEND), None).expect("resolved");
    assert_eq!(plan.file(&s), dir.0.join("./bin/app"));
    assert_eq!(plan.exec().program().to_str(), Ok("./bin/app"));
    let s = spec(r#", "command": ["sh"]"#);
    let plan = LaunchPlan::resolve(&s, &tend_env(TEND), None).expect("resolved");
    assert!(plan.file(&s).is_absolute(), "{}", plan.file(&s).display());
    let file = plan.file(&s);
    let mut plans = LaunchPlans::new(&[], None);
    assert_eq!(plans.file(&Arc::new(s)).ok(), Some(file));
}
