//! What a service inherits: only fds 0-2, stdin from /dev/null, its own process
//! group, an empty signal mask, default dispositions, a parent-death signal,
//! and the configured environment, working directory and credentials.

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::support::*;

#[test]
fn services_get_only_fds_0_1_2_and_a_clean_process() {
    let dir = TestDir::new("fds");
    let probe = dir.script(
        "probe",
        "ls /proc/self/fd > \"$DIR/fds.tmp\"; mv \"$DIR/fds.tmp\" \"$DIR/fds\"\n\
         readlink /proc/self/fd/0 > \"$DIR/stdin\"\n\
         grep -E '^(SigBlk|SigIgn):' /proc/self/status > \"$DIR/sig\"\n\
         ps -o pid=,pgid= -p $$ > \"$DIR/pgid\" 2>/dev/null || cut -d' ' -f1,5 /proc/$$/stat > \"$DIR/pgid\"\n\
         exec sleep 1000",
    );
    // An fd tend inherits without CLOEXEC must not reach the service either.
    let leaked = std::fs::File::open("/dev/null").expect("open");
    let fd = leaked.as_raw_fd();
    // SAFETY: clearing FD_CLOEXEC on our own fd so tend inherits it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "p", "command": [probe]}]}),
    );
    poll_until("probe wrote", PATIENCE, || dir.exists("fds"));
    poll_until("probe wrote pgid", PATIENCE, || {
        !dir.read("pgid").trim().is_empty()
    });
    let fds: Vec<String> = dir
        .read("fds")
        .split_whitespace()
        .map(String::from)
        .collect();
    // `ls` itself holds one fd open for the directory listing.
    let extra: Vec<&String> = fds
        .iter()
        .filter(|f| !["0", "1", "2"].contains(&f.as_str()))
        .collect();
    assert!(
        extra.len() <= 1,
        "unexpected fds {fds:?} (leaked fd was {fd})"
    );
    assert_eq!(dir.read("stdin").trim(), "/dev/null");
    let sig = dir.read("sig");
    assert!(sig.contains("SigBlk:\t0000000000000000"), "{sig}");
    assert!(sig.contains("SigIgn:\t0000000000000000"), "{sig}");
    let pgid = dir.read("pgid");
    let parts: Vec<&str> = pgid.split_whitespace().collect();
    assert_eq!(parts.len(), 2, "{pgid}");
    assert_eq!(parts[0], parts[1], "service leads its own process group");
    drop(tend);
    drop(leaked);
}

#[test]
fn a_readiness_fd_is_the_only_extra_fd() {
    // `readiness: {type: fd}` adds exactly one fd, on the number asked for,
    // whatever number tend's own copy had.
    let dir = TestDir::new("readyfd");
    let probe = dir.script(
        "probe",
        "ls /proc/self/fd > \"$DIR/$1.tmp\"; mv \"$DIR/$1.tmp\" \"$DIR/$1\"; exec sleep 1000",
    );
    let services: Vec<serde_json::Value> = [3, 4, 5, 9, 200]
        .iter()
        .map(|fd| {
            json!({"name": format!("fd{fd}"), "command": [&probe, format!("fd{fd}")],
                   "readiness": {"type": "fd", "fd": fd}})
        })
        .collect();
    let tend = Tend::start(&dir, json!({ "services": services }));
    for fd in [3, 4, 5, 9, 200] {
        let name = format!("fd{fd}");
        poll_until("probe wrote", PATIENCE, || dir.exists(&name));
        let fds: Vec<String> = dir
            .read(&name)
            .split_whitespace()
            .map(String::from)
            .collect();
        let extra: Vec<&String> = fds
            .iter()
            .filter(|f| !["0", "1", "2"].contains(&f.as_str()) && **f != fd.to_string())
            .collect();
        assert!(fds.contains(&fd.to_string()), "fd {fd} missing: {fds:?}");
        // `ls` itself holds one fd open for the directory listing.
        assert!(extra.len() <= 1, "fd {fd}: unexpected fds {fds:?}");
    }
    drop(tend);
}

#[test]
fn environment_and_working_dir_are_applied() {
    let dir = TestDir::new("env");
    let probe = dir.script(
        "probe",
        "echo \"$GREETING|$HOME|${SECRET:-unset}|$(pwd)\" > \"$DIR/env.tmp\"; mv \"$DIR/env.tmp\" \"$DIR/env\"; exec sleep 1000",
    );
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    let tend = Tend::start_with(
        &dir,
        &dir.write(
            "config.json",
            &json!({"control_socket": dir.socket(), "services": [{
                "name": "p", "command": [probe], "working_dir": work.display().to_string(),
                "inherit_environment": false, "environment": {"GREETING": "hi"}}]})
            .to_string(),
        ),
        &[("SECRET", "leak")],
    );
    poll_until("probe wrote", PATIENCE, || dir.exists("env"));
    let env = dir.read("env");
    let parts: Vec<&str> = env.trim().split('|').collect();
    assert_eq!(parts[0], "hi");
    assert_eq!(parts[2], "unset", "not inherited");
    assert_eq!(parts[3], work.display().to_string());
    drop(tend);
}

#[test]
fn a_batch_of_services_each_gets_its_own_plan() {
    // Services that start together are spawned as one batch (concurrently on
    // x86_64): each must still get its own argv, environment, working
    // directory and output pipe, and nothing else; a failure in the middle of
    // the batch is reported for that service alone. 70 services: more than
    // are in flight at once (64), so stack slots are reused.
    let dir = TestDir::new("batch");
    let probe = dir.script(
        "probe",
        "ls /proc/self/fd | tr '\\n' ' ' > \"$DIR/$1.tmp\"; echo \"|$N|$(pwd)\" >> \"$DIR/$1.tmp\"; \
         mv \"$DIR/$1.tmp\" \"$DIR/$1\"; echo \"i am $1\"; exec sleep 1000",
    );
    let mut services = Vec::new();
    for i in 0..70 {
        let work = dir.join(&format!("w{i}"));
        std::fs::create_dir_all(&work).expect("mkdir");
        services.push(
            json!({"name": format!("s{i}"), "command": [&probe, format!("s{i}")],
            "environment": {"N": i.to_string()}, "working_dir": work.display().to_string()}),
        );
        if i == 66 {
            services.push(json!({"name": "nodir", "command": [&probe, "nodir"],
                "working_dir": dir.join("missing").display().to_string(),
                "restart_policy": "never"}));
        }
        if i == 20 {
            services.push(
                json!({"name": "noprog", "command": [dir.join("missing").display().to_string()],
                "restart_policy": "never"}),
            );
        }
    }
    let tend = Tend::start(&dir, json!({"services": services}));
    for i in 0..70 {
        let name = format!("s{i}");
        poll_until("probe wrote", PATIENCE, || dir.exists(&name));
        let seen = dir.read(&name);
        let (fds, rest) = seen.split_once('|').expect("two parts");
        let extra = fds
            .split_whitespace()
            .filter(|f| !["0", "1", "2"].contains(f))
            .count();
        assert!(extra <= 1, "{name}: unexpected fds {fds}"); // `ls` holds one
        let want = format!("{i}|{}", dir.join(&format!("w{i}")).display());
        assert_eq!(rest.trim(), want, "{name} got another service's plan");
        tend.wait_log(&format!("{name} | i am {name}"));
    }
    let nodir = tend.wait_state("nodir", "failed");
    let detail = nodir.to_string();
    assert!(detail.contains("working_dir"), "{detail}");
    tend.wait_state("noprog", "failed");
    assert!(!dir.exists("nodir"));
    drop(tend);
}

#[test]
fn services_die_with_a_killed_tend() {
    let dir = TestDir::new("pdeath");
    let svc = dir.script("svc", "echo $$ > \"$DIR/pid\"; exec sleep 1000");
    let mut tend = Tend::start(&dir, json!({"services": [{"name": "s", "command": [svc]}]}));
    tend.wait_state("s", "running");
    let pid = dir.wait_pid("pid");
    // SAFETY: SIGKILL to the tend we spawned.
    unsafe { libc::kill(tend.pid(), libc::SIGKILL) };
    let _ = tend.wait_exit();
    poll_until(
        "service killed by the parent-death signal",
        PATIENCE,
        || is_dead(pid),
    );
}

#[test]
#[ignore = "needs root"]
fn user_and_group_are_switched() {
    require_root();
    let dir = TestDir::new("user");
    // The probe writes its marker as `nobody`.
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let probe = dir.script("probe", "id -u > \"$DIR/id.tmp\"; id -g >> \"$DIR/id.tmp\"; mv \"$DIR/id.tmp\" \"$DIR/id\"; exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "p", "command": [probe], "user": "65534", "group": "65534"}]}),
    );
    poll_until("probe wrote", PATIENCE, || dir.exists("id"));
    assert_eq!(
        dir.read("id").split_whitespace().collect::<Vec<_>>(),
        ["65534", "65534"]
    );
    drop(tend);
}

#[test]
fn rlimits_are_applied() {
    let dir = TestDir::new("limits");
    let probe = dir.script(
        "probe",
        "ulimit -n > \"$DIR/n.tmp\"; mv \"$DIR/n.tmp\" \"$DIR/n\"; exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "p", "command": [probe], "limits": {"nofile": 123}}]}),
    );
    poll_until("probe wrote", PATIENCE, || dir.exists("n"));
    assert_eq!(dir.read("n").trim(), "123");
    drop(tend);
}

/// The environment a service process started with (`/proc/$$/environ` of its
/// shell), written by the probe `env-probe NAME` to `$DIR/NAME`.
fn env_probe(dir: &TestDir) -> String {
    dir.script(
        "env-probe",
        "tr '\\0' '\\n' < /proc/$$/environ > \"$DIR/$1.tmp\"; mv \"$DIR/$1.tmp\" \"$DIR/$1\"; exec sleep 1000",
    )
}

fn read_env(dir: &TestDir, name: &str) -> std::collections::BTreeMap<String, String> {
    poll_until(&format!("{name} wrote its environment"), PATIENCE, || {
        dir.exists(name)
    });
    dir.read(name)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn keys(env: &std::collections::BTreeMap<String, String>) -> Vec<&str> {
    env.keys().map(String::as_str).collect()
}

#[test]
fn without_inheritance_a_service_gets_path_home_and_tmpdir_only() {
    let dir = TestDir::new("envclean");
    let probe = env_probe(&dir);
    let config = |tmpdir_case: &str| {
        dir.write(
            &format!("{tmpdir_case}.json"),
            &json!({"control_socket": dir.socket(), "services": [{
                "name": "p", "command": [&probe, tmpdir_case],
                "inherit_environment": false, "environment": {"GREETING": "hi"}}]})
            .to_string(),
        )
    };
    let path = config("with-tmpdir");
    let tend = Tend::start_customized(&dir, &path, |c| {
        c.env("TMPDIR", "/custom/tmp")
            .env("HOME", "/home/tend-test")
            .env("SECRET", "leak");
    });
    let env = read_env(&dir, "with-tmpdir");
    assert_eq!(keys(&env), ["GREETING", "HOME", "PATH", "TMPDIR"]);
    assert_eq!(env["TMPDIR"], "/custom/tmp");
    assert_eq!(env["HOME"], "/home/tend-test");
    assert_eq!(env["GREETING"], "hi");
    drop(tend);
    // Without TMPDIR in tend's environment, /tmp.
    let path = config("no-tmpdir");
    let tend = Tend::start_customized(&dir, &path, |c| {
        c.env_remove("TMPDIR");
    });
    let env = read_env(&dir, "no-tmpdir");
    assert_eq!(env.get("TMPDIR").map(String::as_str), Some("/tmp"));
    drop(tend);
}

/// The home folder and shell of `user` in /etc/passwd, if it has an entry.
fn passwd_entry(user: &str) -> Option<(String, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() == 7 && (fields[0] == user || fields[2] == user))
            .then(|| (fields[5].to_string(), fields[6].to_string()))
    })
}

#[test]
#[ignore = "needs root"]
fn a_user_brings_home_user_logname_and_shell_from_its_account() {
    require_root();
    let Some((root_home, root_shell)) = passwd_entry("root") else {
        println!("SKIPPED: no root entry in /etc/passwd");
        return;
    };
    // A uid without an entry (and, as a name, unknown too).
    let Some(bare) = (54321..54400)
        .map(|n: u32| n.to_string())
        .find(|n| passwd_entry(n).is_none())
    else {
        println!("SKIPPED: no free uid in 54321..54400");
        return;
    };
    let dir = TestDir::new("envuser");
    // The bare uid writes its marker too.
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let probe = env_probe(&dir);
    let tend = Tend::start_customized(
        &dir,
        &dir.write(
            "config.json",
            &json!({"control_socket": dir.socket(), "services": [
                {"name": "clean", "command": [&probe, "clean"], "user": "root",
                 "inherit_environment": false},
                {"name": "inherit", "command": [&probe, "inherit"], "user": "root"},
                {"name": "bare", "command": [&probe, "bare"], "user": &bare,
                 "inherit_environment": false},
                {"name": "override", "command": [&probe, "override"], "user": "root",
                 "environment": {"HOME": "/elsewhere"}}]})
            .to_string(),
        ),
        |c| {
            c.env("HOME", "/home/tend-test")
                .env("USER", "tend-test")
                .env("LOGNAME", "tend-test")
                .env("SHELL", "/bin/tend-test")
                .env("SECRET", "kept");
        },
    );
    let clean = read_env(&dir, "clean");
    assert_eq!(
        keys(&clean),
        ["HOME", "LOGNAME", "PATH", "SHELL", "TMPDIR", "USER"]
    );
    assert_eq!(clean["HOME"], root_home);
    assert_eq!(clean["SHELL"], root_shell);
    assert_eq!(
        (clean["USER"].as_str(), clean["LOGNAME"].as_str()),
        ("root", "root")
    );
    let inherit = read_env(&dir, "inherit");
    assert_eq!(inherit["HOME"], root_home, "from the entry, not tend's");
    assert_eq!(inherit["SHELL"], root_shell);
    assert_eq!(inherit["USER"], "root");
    assert_eq!(inherit["LOGNAME"], "root");
    assert_eq!(inherit["SECRET"], "kept", "the rest is inherited");
    let bare_env = read_env(&dir, "bare");
    assert_eq!(
        keys(&bare_env),
        ["HOME", "LOGNAME", "PATH", "TMPDIR", "USER"]
    );
    assert_eq!(bare_env["HOME"], "/");
    assert_eq!(bare_env["USER"], bare);
    assert_eq!(bare_env["LOGNAME"], bare);
    let overridden = read_env(&dir, "override");
    assert_eq!(overridden["HOME"], "/elsewhere", "environment wins");
    drop(tend);
}
