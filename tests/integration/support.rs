//! Test support: a private folder per test, tiny `/bin/sh` services, a `Tend`
//! guard that runs the real binary and never leaks processes, and `poll_until`,
//! the one way every test waits.
//!
//! Rules (STYLE.md Part 2 §E): wait for conditions with a generous deadline,
//! never for a fixed time; observe only through `tend status --json`, tend's log
//! and marker files. tend's output goes to a file in the test folder; every tend
//! a test starts is *watched* (see `watch`), so when any wait times out the
//! failure shows the status and the tail of the log of each tend the test runs.
//! A failed test keeps its folder under /tmp for a closer look.

#![allow(dead_code)]

use std::cell::RefCell;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TEND: &str = env!("CARGO_BIN_EXE_tend");
/// How long any condition may take before a test fails. Generous on purpose:
/// it costs nothing when things work, and the machine is shared and noisy.
pub const PATIENCE: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// What a `poll_until` condition returns: `bool` (done or not yet), or
/// `Option<T>` (the value it waited for, once it is there).
pub trait Outcome {
    type Value;
    fn done(self) -> Option<Self::Value>;
}

impl Outcome for bool {
    type Value = ();
    fn done(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn done(self) -> Option<T> {
        self
    }
}

/// Evaluate `condition` until it is done and return its value; after
/// `deadline` fail the test, naming `what` and showing the status and log of
/// every tend this test runs. Polls quickly at first (most conditions hold
/// within milliseconds), then every 50 ms.
#[track_caller]
pub fn poll_until<R: Outcome>(
    what: &str,
    deadline: Duration,
    condition: impl FnMut() -> R,
) -> R::Value {
    match poll_for(deadline, condition) {
        Some(value) => value,
        None => panic!(
            "timed out after {deadline:?} waiting for: {what}\n{}",
            watched_report()
        ),
    }
}

/// `poll_until` without the failure: None when the deadline passed. For the
/// few waits that have a fallback (a guard's clean-up).
pub fn poll_for<R: Outcome>(
    deadline: Duration,
    mut condition: impl FnMut() -> R,
) -> Option<R::Value> {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(value) = condition().done() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        std::thread::sleep(pause.min(end - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A tend whose log (and status, when it has a socket) a timed-out wait shows.
struct Watched {
    id: usize,
    log: PathBuf,
    socket: Option<String>,
}

thread_local! {
    // Each test runs on its own thread, so this is "the tends of this test".
    static WATCHED: RefCell<Vec<Watched>> = const { RefCell::new(Vec::new()) };
}

/// Removes its tend from the watched list when dropped.
pub struct WatchGuard(usize);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let id = self.0;
        WATCHED.with(|w| w.borrow_mut().retain(|x| x.id != id));
    }
}

/// Show this log (and this socket's status) if a wait of this test times out.
/// For tests that start tend without `Tend`; `Tend::start` does it itself.
pub fn watch(log: &Path, socket: Option<&str>) -> WatchGuard {
    let id = COUNTER.fetch_add(1, Ordering::SeqCst);
    WATCHED.with(|w| {
        w.borrow_mut().push(Watched {
            id,
            log: log.to_path_buf(),
            socket: socket.map(str::to_string),
        })
    });
    WatchGuard(id)
}

/// Lines of a log shown on a timeout; the full file stays in the test folder.
const LOG_TAIL: usize = 300;

fn watched_report() -> String {
    WATCHED.with(|w| {
        let mut out = String::new();
        for x in w.borrow().iter() {
            if let Some(socket) = &x.socket {
                let status = Command::new(TEND)
                    .args(["status", "--json", "-s", socket])
                    .output()
                    .map(|o| {
                        format!(
                            "{}{}",
                            String::from_utf8_lossy(&o.stdout),
                            String::from_utf8_lossy(&o.stderr)
                        )
                    })
                    .unwrap_or_else(|e| format!("(status failed: {e})"));
                out.push_str(&format!("--- status ({socket}) ---\n{status}\n"));
            }
            let log = fs::read_to_string(&x.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let skip = lines.len().saturating_sub(LOG_TAIL);
            out.push_str(&format!(
                "--- log {} ({} lines, {} not shown) ---\n{}\n",
                x.log.display(),
                lines.len(),
                skip,
                lines[skip..].join("\n")
            ));
        }
        out
    })
}

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

    /// Wait until the file `name` holds a pid (a script's `echo $$ > file`).
    #[track_caller]
    pub fn wait_pid(&self, name: &str) -> i64 {
        poll_until(&format!("a pid in {name}"), PATIENCE, || {
            self.read(name).trim().parse().ok()
        })
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
    _watch: WatchGuard,
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
        Tend::start_binary(dir, Path::new(TEND), config, customize)
    }

    /// Start `binary` (a copy of tend, say: `tend reexec` execs the path tend
    /// was started from) on an existing config file.
    pub fn start_binary(
        dir: &TestDir,
        binary: &Path,
        config: &Path,
        customize: impl FnOnce(&mut Command),
    ) -> Tend {
        let log_path = dir.join("tend.log");
        let log = fs::File::create(&log_path).expect("log file");
        let log2 = log.try_clone().expect("clone log");
        let mut command = Command::new(binary);
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
            _watch: watch(&log_path, Some(&dir.socket())),
        };
        tend.wait_for_socket();
        tend
    }

    /// Wait until tend listens (or has already exited, as a quick job may).
    #[track_caller]
    fn wait_for_socket(&mut self) {
        let socket = PathBuf::from(&self.socket);
        let child = &mut self.child;
        let exited = &mut self.exited;
        poll_until("tend to create its socket", PATIENCE, || {
            if let Ok(Some(status)) = child.try_wait() {
                *exited = Some(status);
            }
            socket.exists() || exited.is_some()
        });
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

    /// `poll_until` with this tend as the condition's argument.
    #[track_caller]
    pub fn wait_for<R: Outcome>(&self, what: &str, mut check: impl FnMut(&Tend) -> R) -> R::Value {
        poll_until(what, PATIENCE, || check(self))
    }

    #[track_caller]
    pub fn wait_until(&self, what: &str, check: impl FnMut(&Tend) -> bool) {
        self.wait_for(what, check)
    }

    #[track_caller]
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
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let child = &mut self.child;
        let status = poll_until("tend to exit", PATIENCE, || child.try_wait().ok().flatten());
        self.exited = Some(status);
        status
    }

    /// Wait until the log contains `needle`.
    #[track_caller]
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
        let child = &mut self.child;
        let gone = poll_for(Duration::from_secs(10), || {
            child.try_wait().ok().flatten().is_some()
        });
        if gone.is_none() {
            // SAFETY: the group we created with process_group(0).
            unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// What a child process writes to a pipe, collected by a reader thread so a
/// test can wait for it with `poll_until` instead of a blocking read.
pub struct PipeReader {
    data: Arc<Mutex<Vec<u8>>>,
    ended: Arc<Mutex<bool>>,
}

impl PipeReader {
    pub fn new(mut pipe: impl Read + Send + 'static) -> PipeReader {
        let data = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(false));
        let (d, e) = (data.clone(), ended.clone());
        std::thread::spawn(move || {
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => d
                        .lock()
                        .expect("reader lock")
                        .extend_from_slice(&chunk[..n]),
                }
            }
            *e.lock().expect("reader lock") = true;
        });
        PipeReader { data, ended }
    }

    /// Everything read so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data.lock().expect("reader lock")).into_owned()
    }

    /// Take the complete lines read so far (a partial last line stays).
    pub fn take_lines(&self) -> Vec<String> {
        let mut data = self.data.lock().expect("reader lock");
        let Some(end) = data.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let taken: Vec<u8> = data.drain(..=end).collect();
        String::from_utf8_lossy(&taken)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Whether the writer closed the pipe.
    pub fn ended(&self) -> bool {
        *self.ended.lock().expect("reader lock")
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

/// Zombie children of `parent`, from /proc.
pub fn zombies_of(parent: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            let mut fields = stat.rsplit(')').next()?.split_whitespace();
            let zombie = fields.next() == Some("Z");
            let ppid: i32 = fields.next()?.parse().ok()?;
            (zombie && ppid == parent).then_some(pid)
        })
        .collect()
}

/// Skip nothing silently: a test marked `#[ignore = "needs root"]` that is run
/// anyway (`--include-ignored`) by a non-root user fails here, saying why.
/// Whether the tests run as root (for tests that do more when they do).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A test needs a real program that is missing: it passes, saying so on
/// stderr, unless `TEND_REQUIRE_PEERS` is set (`.ci/run` sets it after
/// installing them): then a missing peer fails the test instead of hiding it.
#[track_caller]
pub fn skip_without(what: &str) {
    if std::env::var_os("TEND_REQUIRE_PEERS").is_some() {
        panic!(
            "{what}, and TEND_REQUIRE_PEERS is set (scripts/install-peers.sh --tests installs it)"
        );
    }
    eprintln!("SKIPPED: {what}");
}

pub fn require_root() {
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() == 0 };
    assert!(
        root,
        "this test needs root (run it as root, or leave out --include-ignored)"
    );
}

/// SIGKILLs a process group when dropped, so a failed test leaves nothing behind.
pub struct KillGroupOnDrop(pub i32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling a process group the test created.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}
