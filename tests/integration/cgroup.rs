//! cgroup v2 containment (SPEC §10): nothing of a service outlives it, not even
//! a daemon that left its process group; `cgroup_limits` and the missing
//! controller warning; `tend status` shows the cgroup; a folder that cannot be
//! used is one warning; reloads create and remove cgroups; `"auto"`.
//!
//! Each test makes its own cgroup below the test's (its `cgroup` folder) and
//! removes it. Without root or a writable cgroup v2 they print why and pass.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A cgroup v2 folder for one test, emptied and removed on drop.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn new() -> Option<Cgroup> {
        require_root();
        let Some(parent) = own_cgroup() else {
            println!("SKIPPED: no cgroup v2 mounted that holds this process");
            return None;
        };
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = parent.join(format!("tend-it-{}-{n}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir) {
            println!(
                "SKIPPED: cannot create a cgroup in {}: {e}",
                parent.display()
            );
            return None;
        }
        Some(Cgroup { dir })
    }

    fn path(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }

    fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The controllers a service cgroup below this one can use.
    fn offers(&self, controller: &str) -> bool {
        std::fs::read_to_string(self.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == controller)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        remove_tree(&self.dir, 0);
    }
}

/// Kill everything in `dir` and below, then remove the folders, deepest first.
fn remove_tree(dir: &Path, depth: usize) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    if depth < 4
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), depth + 1);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// This process's cgroup v2 folder: its `0::` path below the cgroup2 mount.
fn own_cgroup() -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let point = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        (right.starts_with("cgroup2 ") && fields.get(3) == Some(&"/")).then(|| fields[4])
    })?;
    Some(PathBuf::from(point).join(path.trim_start_matches('/')))
}

/// A service that starts a daemon in a new session (its pid in
/// `daemon.<shell pid>`, the shell's pid appended to `gens`), then sleeps
/// (`exit_after`: or exits after that many seconds). At its start it notes any
/// earlier daemon still alive in `overlaps`.
fn escaper(dir: &TestDir, exit_after: Option<&str>) -> String {
    let end = match exit_after {
        Some(secs) => format!("sleep {secs}; exit 1"),
        None => "exec sleep 1000".to_string(),
    };
    dir.script(
        "escaper",
        &format!(
            "for f in \"$DIR\"/daemon.*; do\n\
               [ -e \"$f\" ] || continue\n\
               s=$(sed -n 's/^State:[[:space:]]*\\(.\\).*/\\1/p' /proc/$(cat \"$f\")/status 2>/dev/null)\n\
               [ -n \"$s\" ] && [ \"$s\" != Z ] && echo \"$f\" >> \"$DIR/overlaps\"\n\
             done\n\
             echo $$ >> \"$DIR/gens\"\n\
             setsid sh -c 'sleep 1000 & echo $! > \"$0\"' \"$DIR/daemon.$$\"\n\
             {end}"
        ),
    )
}

fn pid_in(dir: &TestDir, file: &str) -> i64 {
    poll_until(file, PATIENCE, || {
        dir.read(file).trim().parse::<i64>().is_ok()
    });
    dir.read(file).trim().parse().expect("pid")
}

fn procs(path: &Path) -> Vec<i64> {
    std::fs::read_to_string(path.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
#[ignore = "needs root"]
fn stop_kills_a_daemon_that_left_the_process_group_and_status_shows_the_cgroup() {
    let Some(cg) = Cgroup::new() else { return };
    let dir = TestDir::new("cg-stop");
    let svc = escaper(&dir, None);
    let tend = Tend::start(
        &dir,
        json!({"cgroup": cg.path(), "services": [{"name": "d", "command": [svc]}]}),
    );
    let status = tend.wait_state("d", "running");
    let main = status["pid"].as_i64().expect("pid");
    let daemon = pid_in(&dir, &format!("daemon.{main}"));
    let group = cg.join("tend-d");
    assert_eq!(status["cgroup"], group.to_str().expect("utf-8"), "{status}");
    poll_until("daemon in the cgroup", PATIENCE, || {
        procs(&group).contains(&daemon)
    });
    assert!(!is_dead(daemon));
    // Memory and CPU come from the cgroup (the daemon included).
    let s = tend.wait_for("usage", |t| {
        let s = t.service("d");
        s["memory_bytes"]
            .as_u64()
            .is_some_and(|m| m > 0)
            .then_some(s)
    });
    assert!(s["cpu_secs"].as_f64().is_some(), "{s}");
    let (code, out, err) = tend.client(&["stop", "d"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tend.state("d"), "stopped");
    // Stopped means everything in the cgroup is gone, the daemon too.
    assert!(is_dead(daemon), "daemon {daemon} survived\n{}", tend.log());
    assert!(procs(&group).is_empty());
    // Stopped services keep their (empty) cgroup; its path stays in status.
    assert_eq!(tend.service("d")["cgroup"], group.to_str().expect("utf-8"));
    assert_eq!(tend.service("d")["memory_bytes"], Value::Null);
}

#[test]
#[ignore = "needs root"]
fn leftovers_are_killed_before_a_restart_so_generations_never_overlap() {
    let Some(cg) = Cgroup::new() else { return };
    let dir = TestDir::new("cg-restart");
    let svc = escaper(&dir, Some("0.3"));
    let tend = Tend::start(
        &dir,
        json!({"cgroup": cg.path(), "services": [{"name": "d", "command": [svc],
               "retry_delay": "100ms", "max_retries": 100}]}),
    );
    tend.wait_until("three generations", |_| {
        dir.read("gens").lines().count() >= 3
    });
    let gens: Vec<String> = dir.read("gens").lines().map(str::to_string).collect();
    // Each earlier generation's daemon is dead, and was dead before the next
    // generation started (the script checked at its start).
    for g in &gens[..2] {
        let daemon = pid_in(&dir, &format!("daemon.{g}"));
        assert!(is_dead(daemon), "daemon of {g} survived\n{}", tend.log());
    }
    assert_eq!(dir.read("overlaps"), "", "{}", tend.log());
    let log = tend.log();
    assert!(!log.contains("left in its cgroup"), "{log}");
}

#[test]
#[ignore = "needs root"]
fn limits_without_their_controller_warn_once_and_the_service_runs() {
    let Some(cg) = Cgroup::new() else { return };
    let dir = TestDir::new("cg-limits");
    let config = json!({"cgroup": cg.path(), "control_socket": dir.socket(),
        "services": [
            {"name": "a", "command": ["/bin/sleep", "1000"],
             "cgroup_limits": {"memory_max": "64M", "cpu_max": "50%", "pids_max": 50}},
            {"name": "b", "command": ["/bin/sleep", "1000"],
             "cgroup_limits": {"pids_max": 20}}]});
    let path = dir.write("config.json", &config.to_string());
    // `tend check` names each missing controller and the fields it affects.
    let out = Command::new(TEND)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("tend check");
    let check = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{check}");
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_state("a", "running");
    tend.wait_state("b", "running");
    // A reload with the same limits says nothing again.
    let (code, _, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{err}");
    tend.wait_log("reload:");
    let log = tend.log();
    let mut tested = 0;
    for (controller, field, file, want) in [
        ("memory", "memory_max", "memory.max", "67108864"),
        ("cpu", "cpu_max", "cpu.max", "50000 100000"),
        ("pids", "pids_max", "pids.max", "50"),
    ] {
        let warning = format!("the \"{controller}\" controller is not available");
        if cg.offers(controller) {
            let value = std::fs::read_to_string(cg.join("tend-a").join(file)).unwrap_or_default();
            assert_eq!(value.trim(), want, "{file}");
            assert!(!log.contains(&warning), "{log}");
            tested += 1;
        } else {
            println!("{controller}: not offered here; checking its warning instead");
            assert_eq!(log.matches(&warning).count(), 1, "{log}");
            assert_eq!(check.matches(&warning).count(), 1, "{check}");
            let of = if controller == "pids" {
                "of a, b"
            } else {
                "of a "
            };
            for text in [&log, &check] {
                assert!(
                    text.contains(&format!("cgroup_limits.{field} {of}")),
                    "{text}"
                );
            }
        }
    }
    println!("limits written and read back for {tested} of 3 controllers");
}

#[test]
fn a_folder_that_is_not_a_writable_cgroup2_is_one_warning_and_services_run() {
    // No root needed: these folders fail before anything is written.
    for (i, folder) in ["/tmp", "/sys/fs/cgroup/no-such-tend-folder"]
        .iter()
        .enumerate()
    {
        let dir = TestDir::new(&format!("cg-bad{i}"));
        let tend = Tend::start(
            &dir,
            json!({"cgroup": folder, "services": [{"name": "s", "command": ["/bin/sleep", "1000"]}]}),
        );
        let status = tend.wait_state("s", "running");
        assert_eq!(status["cgroup"], Value::Null);
        let log = tend.log();
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains("cgroup")).collect();
        assert_eq!(warnings.len(), 1, "{log}");
        assert!(
            warnings[0].contains("WARN") && warnings[0].contains(folder),
            "{log}"
        );
        assert!(warnings[0].contains("without a cgroup"), "{log}");
        // `tend check` says the same, and the config is still valid.
        let (code, _, err) = {
            let out = Command::new(TEND)
                .args(["check", "-c"])
                .arg(dir.join("config.json"))
                .output()
                .expect("tend check");
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            (out.status.code(), (), err)
        };
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains(folder) && err.contains("warning"), "{err}");
    }
}

#[test]
#[ignore = "needs root"]
fn reload_creates_and_removes_service_cgroups() {
    let Some(cg) = Cgroup::new() else { return };
    let dir = TestDir::new("cg-reload");
    let sleeper = |name: &str| json!({"name": name, "command": ["/bin/sleep", "1000"]});
    let config = |services: Value| json!({"cgroup": cg.path(), "control_socket": dir.socket(), "services": services});
    let path = dir.write(
        "config.json",
        &config(json!([sleeper("a"), sleeper("b")])).to_string(),
    );
    let tend = Tend::start_with(&dir, &path, &[]);
    tend.wait_state("a", "running");
    tend.wait_state("b", "running");
    let a = tend.service_pid("a");
    assert!(cg.join("tend-a").is_dir() && cg.join("tend-b").is_dir());
    assert!(!cg.join("tend-c").exists());
    dir.write(
        "config.json",
        &config(json!([sleeper("a"), sleeper("c")])).to_string(),
    );
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let c = tend.wait_state("c", "running");
    assert_eq!(c["cgroup"], cg.join("tend-c").to_str().expect("utf-8"));
    tend.wait_until("b forgotten", |t| t.service("b").is_null());
    poll_until("b's cgroup removed", PATIENCE, || {
        !cg.join("tend-b").exists()
    });
    assert!(cg.join("tend-a").is_dir() && cg.join("tend-c").is_dir());
    assert_eq!(tend.service_pid("a"), a, "a is untouched");
    // The `cgroup` folder itself is read at start only: a reload says so.
    let moved = json!({"cgroup": "/tmp", "control_socket": dir.socket(),
                       "services": [sleeper("a"), sleeper("c")]});
    dir.write("config.json", &moved.to_string());
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_log("a changed \"cgroup\" takes effect when tend next starts");
    assert_eq!(tend.service_pid("a"), a);
    drop(tend);
    // At exit tend removes the cgroups it made (they are empty then).
    assert!(!cg.join("tend-a").exists() && !cg.join("tend-c").exists());
}

#[test]
#[ignore = "needs root"]
fn auto_moves_tend_into_tend_self_and_services_beside_it() {
    let Some(cg) = Cgroup::new() else { return };
    let dir = TestDir::new("cg-auto");
    let path = dir.write(
        "config.json",
        &json!({"cgroup": "auto", "control_socket": dir.socket(),
                "services": [{"name": "s", "command": ["/bin/sleep", "1000"]}]})
        .to_string(),
    );
    // tend starts in the test's cgroup, as in a container with a private
    // cgroup namespace: that is its own cgroup, which "auto" means.
    let procs = CString::new(
        cg.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("path");
    let tend = Tend::start_customized(&dir, &path, move |command| {
        // SAFETY: only async-signal-safe calls (open, write, close) on data
        // prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    });
    let status = tend.wait_state("s", "running");
    assert_eq!(status["cgroup"], cg.join("tend-s").to_str().expect("utf-8"));
    assert_eq!(procs_of(&cg.join("tend-self")), vec![i64::from(tend.pid())]);
    assert_eq!(
        procs_of(&cg.dir),
        Vec::<i64>::new(),
        "the own cgroup is left empty"
    );
    assert!(procs_of(&cg.join("tend-s")).contains(&status["pid"].as_i64().expect("pid")));
    assert!(
        tend.log().contains("tend moved into tend-self"),
        "{}",
        tend.log()
    );
}

fn procs_of(path: &Path) -> Vec<i64> {
    procs(path)
}

#[test]
#[ignore = "needs root"]
fn after_a_sigkill_of_tend_the_next_one_kills_what_was_left_in_the_cgroup() {
    let Some(cg) = Cgroup::new() else { return };
    let dir = TestDir::new("cg-sigkill");
    let svc = escaper(&dir, None);
    let config = json!({"cgroup": cg.path(), "services": [{"name": "d", "command": [svc]}]});
    let mut first = Tend::start(&dir, config.clone());
    let main = first.wait_state("d", "running")["pid"]
        .as_i64()
        .expect("pid");
    let daemon = pid_in(&dir, &format!("daemon.{main}"));
    first.signal(libc::SIGKILL);
    first.wait_exit();
    // The main process dies with tend (its parent-death signal); the daemon,
    // which left the group and the session, does not: no portable mechanism
    // kills it. It stays in the cgroup...
    poll_until("the main process gone", PATIENCE, || is_dead(main));
    assert!(!is_dead(daemon), "the daemon outlives a SIGKILLed tend");
    assert!(procs(&cg.join("tend-d")).contains(&daemon));
    // ...where the next tend finds and kills it before starting the service.
    let _ = std::fs::remove_file(dir.join("s.sock"));
    let second = Tend::start(&dir, config);
    second.wait_state("d", "running");
    poll_until("the old daemon killed", PATIENCE, || is_dead(daemon));
    let log = second.log();
    assert!(
        log.contains("d: its cgroup") && log.contains("killed them"),
        "{log}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_reexec_takes_the_cgroups_over_without_killing_anything() {
    let Some(cg) = Cgroup::new() else { return };
    let dir = TestDir::new("cg-reexec");
    let svc = escaper(&dir, None);
    let tend = Tend::start(
        &dir,
        json!({"cgroup": cg.path(), "services": [{"name": "d", "command": [svc]}]}),
    );
    let status = tend.wait_state("d", "running");
    let main = status["pid"].as_i64().expect("pid");
    let daemon = pid_in(&dir, &format!("daemon.{main}"));
    let group = cg.join("tend-d");
    poll_until("daemon in the cgroup", PATIENCE, || {
        procs(&group).contains(&daemon)
    });
    let (code, out, err) = tend.client(&["reexec"]);
    assert_eq!(code, 0, "{out}{err}");
    // Nothing was taken for a leftover: the service and its daemon live on.
    let s = tend.service("d");
    assert_eq!(
        (s["pid"].as_i64(), &s["cgroup"]),
        (Some(main), &status["cgroup"])
    );
    assert!(!is_dead(daemon));
    assert!(
        !tend.log().contains("already held processes"),
        "{}",
        tend.log()
    );
    // The new process still stops it whole.
    let (code, out, err) = tend.client(&["stop", "d"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(is_dead(daemon), "daemon {daemon} survived\n{}", tend.log());
    assert!(procs(&group).is_empty());
}
