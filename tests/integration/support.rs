//! Test support: a private folder per test, tiny `/bin/sh` services, and a `Tend`
//! guard that runs the real binary and never leaks processes.
//!
//! Rules (STYLE.md Part 2 §E): wait for conditions with a generous deadline,
//! never for a fixed time; observe only through `tend status --json`, tend's log
//! and marker files; tend's output goes to a file in the test folder, which is
//! printed when a wait times out.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TEND: &str = env!("CARGO_BIN_EXE_tend");
/// How long any condition may take before a test fails. Generous on purpose:
/// it costs nothing when things work, and the machine is shared and noisy.
pub const PATIENCE: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh folder under /tmp. Short paths: a socket path must fit in 108 bytes.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let short: String = name.chars().take(12).collect();
        let path = PathBuf::from(format!("/tmp/tt-{}-{n}-{short}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create test dir");
        TestDir { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, contents).expect("write test file");
        path
    }

    /// An executable `/bin/sh` script; `$DIR` in it is this folder.
    pub fn script(&self, name: &str, body: &str) -> String {
        let text = format!(
            "#!/bin/sh\nDIR='{}'\nexport DIR\n{body}\n",
            self.path.display()
        );
        let path = self.write(name, &text);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path.display().to_string()
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.join(name)).unwrap_or_default()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.join(name).exists()
    }

    pub fn socket(&self) -> String {
        self.join("s.sock").display().to_string()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A running `tend run`, stopped and cleaned up on drop.
pub struct Tend {
    pub child: Child,
    pub dir_path: PathBuf,
    pub socket: String,
    pub config: PathBuf,
    exited: Option<ExitStatus>,
}

impl Tend {
    /// Write `config` (its `control_socket` set to the test's) and start tend.
    pub fn start(dir: &TestDir, mut config: Value) -> Tend {
        config["control_socket"] = Value::String(dir.socket());
        let path = dir.write("config.json", &config.to_string());
        Tend::start_with(dir, &path, &[])
    }

    /// Start tend on an existing config file with extra environment.
    pub fn start_with(dir: &TestDir, config: &Path, env: &[(&str, &str)]) -> Tend {
        Tend::start_customized(dir, config, |command| {
            for (k, v) in env {
                command.env(k, v);
            }
        })
    }

    /// Start tend on an existing config file, after `customize` has had its way
    /// with the command (environment, `pre_exec`).
    pub fn start_customized(
        dir: &TestDir,
        config: &Path,
        customize: impl FnOnce(&mut Command),
    ) -> Tend {
        let log = fs::File::create(dir.join("tend.log")).expect("log file");
        let log2 = log.try_clone().expect("clone log");
        let mut command = Command::new(TEND);
        command
            .args(["run", "-c"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        customize(&mut command);
        let child = command.spawn().expect("spawn tend");
        let mut tend = Tend {
            child,
            dir_path: dir.path.clone(),
            socket: dir.socket(),
            config: config.to_path_buf(),
            exited: None,
        };
        tend.wait_for_socket();
        tend
    }

    /// Wait until tend listens (or has already exited, as a quick job may).
    fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if Path::new(&self.socket).exists() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("tend never created its socket\n--- log ---\n{}", self.log());
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir_path.join("tend.log")).unwrap_or_default()
    }

    /// Run a client command against this tend: (exit code, stdout, stderr).
    pub fn client(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(TEND)
            .args(args)
            .args(["-s", &self.socket])
            .output()
            .expect("run client");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `tend status --json`, parsed; empty on any failure (callers wait on it).
    pub fn status(&self) -> Vec<Value> {
        let (_, out, _) = self.client(&["status", "--json"]);
        serde_json::from_str::<Vec<Value>>(&out).unwrap_or_default()
    }

    /// One service's status object (Null if absent).
    pub fn service(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|s| s["name"] == name)
            .unwrap_or(Value::Null)
    }

    pub fn state(&self, name: &str) -> String {
        self.service(name)["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn service_pid(&self, name: &str) -> Option<i64> {
        self.service(name)["pid"].as_i64()
    }

    /// Poll `check` until it returns Some, or fail with everything we know.
    pub fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&Tend) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for: {what}\n--- status ---\n{}\n--- log ---\n{}",
                    serde_json::to_string_pretty(&self.status()).unwrap_or_default(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn wait_until(&self, what: &str, mut check: impl FnMut(&Tend) -> bool) {
        self.wait_for(what, |t| check(t).then_some(()))
    }

    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        self.wait_for(&format!("{name} {state}"), |t| {
            let s = t.service(name);
            (s["state"] == state).then_some(s)
        })
    }

    /// Send a signal to tend itself.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill with a pid we spawned and have not reaped.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Wait for tend to exit (it must, within PATIENCE).
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return status;
            }
            if Instant::now() > deadline {
                panic!("tend did not exit\n--- log ---\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        self.wait_until(&format!("log contains {needle:?}"), |t| {
            t.log().contains(needle)
        });
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: the group we created with process_group(0).
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Whether a pid is gone or only a zombie is left of it.
pub fn is_dead(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .map(|rest| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

/// Whether a pid is gone entirely (reaped, not even a zombie).
pub fn is_reaped(pid: i64) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Wait (up to PATIENCE) for a plain condition without a tend to report on.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// SIGKILLs a process group when dropped, so a failed test leaves nothing behind.
pub struct KillGroupOnDrop(pub i32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling a process group the test created.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}
