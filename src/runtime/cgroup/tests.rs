//! Real cgroups: each test makes its own cgroup below the test process's
//! cgroup and removes it; where there is no writable cgroup v2 (not root, no
//! cgroup2 mounted), it prints why and passes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::drain::{Drains, Killer, is_populated};
use super::*;
use crate::config::{CgroupSetting, ServiceSpec};
use crate::machine::{RunId, ServiceId};
use crate::sys::spawn::{Cloner, ExecPlan, Job, Output};
use crate::sys::user::Credentials;

const PATIENCE: Duration = Duration::from_secs(20);

/// A cgroup made for one test, emptied and removed on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Option<Scratch> {
        assert_eq!(
            crate::sys::effective_uid(),
            0,
            "this test needs root (run it as root, or leave out --include-ignored)"
        );
        let parent = match setup::own_cgroup() {
            Ok(dir) => dir,
            Err(why) => {
                println!("SKIPPED: no cgroup v2: {why}");
                return None;
            }
        };
        let dir = parent.join(format!("tend-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        if let Err(e) = std::fs::create_dir(&dir) {
            println!(
                "SKIPPED: cannot create a cgroup in {}: {e}",
                parent.display()
            );
            return None;
        }
        Some(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = drain::write_file(&self.dir.join("cgroup.kill"), "1");
        drain::kill_round(&self.dir, 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while remove_tree(&self.dir, 0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `sh` in cgroup `dir` that starts a daemon in a new session (writing its pid
/// to `pidfile`), then sleeps.
fn escapee(dir: &Path, pidfile: &Path) -> Child {
    let script = format!(
        "echo 0 > '{}/cgroup.procs' && setsid sh -c 'sleep 1000 & echo $! > {}' && exec sleep 1000",
        dir.display(),
        pidfile.display()
    );
    Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh")
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn daemon_pid(pidfile: &Path) -> i32 {
    let mut pid = 0;
    wait_until("the daemon's pid", || {
        pid = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    });
    pid
}

fn alive(pid: i32) -> bool {
    // Gone, or a zombie (its parent, the subreaper or init, reaps it).
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn id() -> ServiceId {
    // Ids come from a supervisor; one with a service gives a real one.
    use crate::machine::tests_support::{config, settings, spec};
    let config = config(vec![spec("s")]);
    let mut catalog = crate::runtime::catalog::Catalog::default();
    let defs = catalog.update(&config, |_| true);
    let sup = crate::machine::Supervisor::new(defs, settings(&config), 1);
    sup.find("s").expect("s")
}

/// Kill a cgroup with a daemon that left its session, and hear it empty:
/// `cgroup.kill` where the kernel has it, and the pid-by-pid rounds.
fn drain_with(killer: Killer, tag: &str) {
    let Some(scratch) = Scratch::new(tag) else {
        return;
    };
    let dir = scratch.path();
    let pidfile = std::env::temp_dir().join(format!("tend-unit-{}-{tag}.pid", std::process::id()));
    let mut child = escapee(dir, &pidfile);
    let daemon = daemon_pid(&pidfile);
    assert!(is_populated(dir));
    let mut drains = Drains::new().expect("inotify");
    let mut killer = killer;
    let service = id();
    let now = Instant::now();
    let empty_now = drains.start(service, RunId(7), dir, &mut killer, now);
    let _ = child.wait();
    let mut reported = empty_now.then_some((service, RunId(7)));
    // Wait as the loop does: on the watch's fd, until the drains' deadline.
    let mut poll = mio::Poll::new().expect("poll");
    let mut events = mio::Events::with_capacity(4);
    poll.registry()
        .register(
            &mut mio::unix::SourceFd(&drains.fd()),
            mio::Token(0),
            mio::Interest::READABLE,
        )
        .expect("register");
    let deadline = Instant::now() + PATIENCE;
    while reported.is_none() {
        let now = Instant::now();
        assert!(now < deadline, "never reported empty ({killer:?})");
        let until = drains.poll_deadline().unwrap_or(deadline).min(deadline);
        let _ = poll.poll(&mut events, Some(until.saturating_duration_since(now)));
        reported = drains.on_readable().pop();
        if reported.is_none()
            && drains
                .poll_deadline()
                .is_some_and(|at| at <= Instant::now())
        {
            reported = drains.handle_deadlines(Instant::now()).pop();
        }
    }
    assert_eq!(reported, Some((service, RunId(7))));
    assert!(!is_populated(dir));
    wait_until("the daemon gone", || !alive(daemon));
    assert_eq!(drains.len(), 0, "a reported drain is over");
    let _ = std::fs::remove_file(&pidfile);
}

#[test]
fn cgroup_kill_empties_a_cgroup_and_the_watch_says_so() {
    drain_with(Killer::Unknown, "kill");
}

#[test]
fn pid_by_pid_rounds_empty_a_cgroup_too() {
    drain_with(Killer::Rounds, "rounds");
}

#[test]
#[ignore = "needs root"]
fn an_empty_cgroup_is_reported_at_once() {
    let Some(scratch) = Scratch::new("empty") else {
        return;
    };
    let mut drains = Drains::new().expect("inotify");
    let mut killer = Killer::default();
    assert!(drains.start(id(), RunId(1), scratch.path(), &mut killer, Instant::now()));
    assert_eq!(drains.len(), 0);
    assert!(drains.poll_deadline().is_none());
}

#[test]
#[ignore = "needs root"]
fn a_spawned_child_joins_its_cgroup_before_exec() {
    let Some(scratch) = Scratch::new("spawn") else {
        return;
    };
    let mut cloner = Cloner::new(None).expect("cloner");
    let argv = ["/bin/cat", "/proc/self/cgroup"].map(|a| CString::new(a).expect("arg"));
    let mut plan = ExecPlan::new(
        argv.to_vec(),
        Vec::new(),
        None,
        &[],
        &Credentials::default(),
    )
    .expect("plan");
    let procs = setup::cstring(&scratch.path().join("cgroup.procs")).expect("path");
    plan.set_cgroup(Some(procs));
    let (rx, tx) = crate::sys::pipe().expect("pipe");
    let job = Job {
        plan: &plan,
        stdout: Output::Pipe(tx),
        stderr: Output::Null,
        readiness: None,
        program: None,
    };
    let pid = cloner.spawn(job).expect("spawned");
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n @ 1..) = crate::sys::read_some(std::os::fd::AsRawFd::as_raw_fd(&rx), &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    crate::sys::reap_blocking(pid);
    let text = String::from_utf8_lossy(&out);
    let name = scratch
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?");
    let line = text.lines().find(|l| l.starts_with("0::")).unwrap_or("");
    assert!(line.ends_with(&format!("/{name}")), "{text}");
}

fn service(name: &str, pids_max: Option<u64>) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, vec!["/bin/true".into()]);
    spec.process.cgroup_limits.pids_max = pids_max;
    spec
}

#[test]
#[ignore = "needs root"]
fn setup_creates_reuses_and_removes_service_cgroups() {
    let Some(scratch) = Scratch::new("setup") else {
        return;
    };
    let root = scratch.path();
    // A leftover of an earlier tend, with a process in it.
    let old = root.join("tend-a");
    std::fs::create_dir(&old).expect("mkdir");
    let pidfile = std::env::temp_dir().join(format!("tend-unit-{}-setup.pid", std::process::id()));
    let mut child = escapee(&old, &pidfile);
    let daemon = daemon_pid(&pidfile);
    let poll = mio::Poll::new().expect("poll");
    let mut tokens = Tokens::default();
    let mut lines = Lines::new();
    let setting = CgroupSetting::Path(root.to_path_buf());
    let services = [service("a", Some(5)), service("b", None)];
    let mut cgroups = Cgroups::setup(
        &setting,
        &services,
        poll.registry(),
        &mut tokens,
        &mut lines,
    )
    .unwrap_or_else(|| panic!("set up: {lines:?}"));
    let _ = child.wait();
    wait_until("the leftover daemon killed", || !alive(daemon));
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert!(
        text.iter()
            .any(|l| l.contains("a: its cgroup") && l.contains("killed them")),
        "{text:?}"
    );
    assert!(cgroups.contains("a") && cgroups.contains("b") && !cgroups.contains("c"));
    assert_eq!(cgroups.dir_of("b"), Some(root.join("tend-b").as_path()));
    assert!(root.join("tend-b").is_dir());
    // pids.max is written where the controller could be enabled; else one
    // warning names the controller and the field.
    if setup::enabled(root).contains(&Controller::Pids) {
        let max = std::fs::read_to_string(root.join("tend-a/pids.max")).expect("pids.max");
        assert_eq!(max.trim(), "5");
    } else {
        let warnings = text
            .iter()
            .filter(|l| l.contains("\"pids\" controller"))
            .count();
        assert_eq!(warnings, 1, "{text:?}");
        assert!(
            text.iter()
                .any(|l| l.contains("cgroup_limits.pids_max of a")),
            "{text:?}"
        );
    }
    // A reload without b: b's cgroup goes when the core forgets b.
    let b = id();
    cgroups.removing(b, "b");
    cgroups.update(&services[..1]);
    cgroups.forget(b);
    assert!(!root.join("tend-b").exists());
    assert!(!cgroups.contains("b"));
    // A reload with c: its cgroup is made.
    cgroups.update(&[service("a", Some(5)), service("c", None)]);
    assert!(root.join("tend-c").is_dir());
    // Removed behind tend's back: a failed spawn makes it again.
    std::fs::remove_dir(root.join("tend-c")).expect("rmdir");
    cgroups.repair(&service("c", None));
    assert!(root.join("tend-c").is_dir());
    cgroups.remove_all();
    assert!(!root.join("tend-a").exists() && !root.join("tend-c").exists());
    let _ = std::fs::remove_file(&pidfile);
}

#[test]
fn folders_that_are_not_writable_cgroup2_are_refused() {
    let poll = mio::Poll::new().expect("poll");
    let mut tokens = Tokens::default();
    for dir in ["/proc", "/no/such/folder", "/tmp"] {
        let mut lines = Lines::new();
        let setting = CgroupSetting::Path(dir.into());
        let got = Cgroups::setup(&setting, &[], poll.registry(), &mut tokens, &mut lines);
        assert!(got.is_none(), "{dir}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].1.contains(dir) && lines[0].1.contains("without a cgroup"),
            "{lines:?}"
        );
    }
}

/// Controllers the kernel called busy at start are tried again from the
/// loop: the retry is a deadline of `poll_deadline`, nothing happens before
/// it, and once done (enabled, or refused for good) it is gone and every
/// limit is where it should be.
#[test]
#[ignore = "needs root"]
fn busy_controllers_are_tried_again_at_their_deadline() {
    let Some(scratch) = Scratch::new("busy") else {
        return;
    };
    let root = scratch.path();
    let poll = mio::Poll::new().expect("poll");
    let mut tokens = Tokens::default();
    let mut lines = Lines::new();
    let setting = CgroupSetting::Path(root.to_path_buf());
    let services = [service("a", Some(7))];
    let mut cgroups = Cgroups::setup(
        &setting,
        &services,
        poll.registry(),
        &mut tokens,
        &mut lines,
    )
    .unwrap_or_else(|| panic!("set up: {lines:?}"));
    assert!(cgroups.busy.is_none(), "nothing was busy: {lines:?}");
    assert_eq!(cgroups.poll_deadline(), None);
    // As if the kernel had said EBUSY for pids at start.
    let at = Instant::now() + Duration::from_secs(60);
    cgroups.busy = Some(BusyRetry {
        at,
        pause: BUSY_FIRST_PAUSE * 2,
        limits: vec![("a".to_string(), services[0].process.cgroup_limits)],
    });
    assert_eq!(cgroups.poll_deadline(), Some(at));
    assert!(
        cgroups
            .handle_deadlines(at - Duration::from_secs(1))
            .is_empty()
    );
    assert!(cgroups.busy.is_some(), "not due yet");
    assert!(cgroups.handle_deadlines(at).is_empty());
    assert!(cgroups.busy.is_none(), "tried at its deadline, and done");
    assert_eq!(cgroups.poll_deadline(), None);
    if setup::enabled(root).contains(&Controller::Pids) {
        let max = std::fs::read_to_string(root.join("tend-a/pids.max")).expect("pids.max");
        assert_eq!(max.trim(), "7");
    }
}
