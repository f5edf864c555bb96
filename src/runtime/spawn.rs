//! Spawning a service the way `posix_spawn` does: `clone(CLONE_VM | CLONE_VFORK)`
//! on a small stack of its own, only raw system calls in the child, and the
//! outcome known when `clone` returns.
//!
//! Why not `fork`: a fork copies tend's page tables and marks every page
//! copy-on-write, so the child's first writes and the parent's next ones each
//! take a page fault. On the restart path (exit → reap → spawn → exec) that cost
//! more than everything else together. With `CLONE_VM` the child borrows tend's
//! memory, and `CLONE_VFORK` suspends tend until the child has exec'ed or died,
//! so the two never run on that memory at once.
//!
//! Before the clone (allocation is fine): the program is found on `PATH`; argv
//! and the environment become C strings; user and group are resolved to ids;
//! pipes are opened (all close-on-exec); every signal is blocked, so that no
//! handler of tend's can run in the child.
//!
//! In the child, in this order: each disposition tend changed back to default →
//! stdio onto fds 0/1/2 → own process group → `working_dir` → rlimits →
//! `setgroups` → `setgid` → `setuid` → `PR_SET_PDEATHSIG` SIGKILL (after the
//! credential change, which would clear it) → check the parent is still tend →
//! empty signal mask → `execve`. A failing step writes `(step, errno)` into the
//! report pipe and exits 127; the parent reads the pipe as soon as `clone`
//! returns: 8 bytes mean the spawn failed, EOF means the exec happened.
//!
//! Batches (start-up, reload): waiting for each exec in turn leaves the second
//! core idle while the first child execs. On x86_64 [`Spawner::spawn_all`]
//! clones each child of a batch without `CLONE_VFORK`, every one on its own
//! stack, and reads the reports afterwards, in order; everything a child reads
//! stays alive and unchanged until its report is in. That is sound only because
//! the child writes nothing of tend's: its system calls are inline assembly that
//! leaves the shared `errno` alone. Elsewhere batches are spawned one by one.
//!
//! Must not (in the child): allocate, lock, log, call a libc function at all
//! (musl's `setuid` and `setrlimit` broadcast to all threads, which in a
//! `CLONE_VM` child would touch tend's state; any wrapper may write `errno`), or
//! write anything but its own stack.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::sys::{self, Credentials};
use crate::config::{Limits, OutputMode, ServiceSpec};

/// A child that has exec'ed its command, as the shell needs it.
pub struct Spawned {
    pub pid: i32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Why a spawn failed, with the step it failed at.
#[derive(Debug)]
pub struct SpawnError {
    pub stage: Stage,
    pub source: io::Error,
}

/// The step of a spawn that failed; numbered for the report pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    Prepare = 1,
    UserGroup,
    Stdio,
    ProcessGroup,
    WorkingDir,
    Rlimit,
    Setgroups,
    Setgid,
    Setuid,
    DeathSignal,
    ParentGone,
    Exec,
}

impl Stage {
    const ALL: [Stage; 12] = [
        Stage::Prepare,
        Stage::UserGroup,
        Stage::Stdio,
        Stage::ProcessGroup,
        Stage::WorkingDir,
        Stage::Rlimit,
        Stage::Setgroups,
        Stage::Setgid,
        Stage::Setuid,
        Stage::DeathSignal,
        Stage::ParentGone,
        Stage::Exec,
    ];

    fn from_code(code: u32) -> Stage {
        Stage::ALL
            .into_iter()
            .find(|s| *s as u32 == code)
            .unwrap_or(Stage::Exec)
    }

    fn describe(self) -> &'static str {
        match self {
            Stage::Prepare => "prepare",
            Stage::UserGroup => "user/group",
            Stage::Stdio => "stdio",
            Stage::ProcessGroup => "setpgid",
            Stage::WorkingDir => "working_dir",
            Stage::Rlimit => "setrlimit",
            Stage::Setgroups => "setgroups",
            Stage::Setgid => "setgid",
            Stage::Setuid => "setuid",
            Stage::DeathSignal => "prctl(PR_SET_PDEATHSIG)",
            Stage::ParentGone => "tend exited during the spawn",
            Stage::Exec => "exec",
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stage {
            Stage::Exec => write!(f, "{}", self.source),
            stage => write!(f, "{}: {}", stage.describe(), self.source),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn fail(stage: Stage) -> impl FnOnce(io::Error) -> SpawnError {
    move |source| SpawnError { stage, source }
}

/// Bytes of the child's stack: it runs one shallow function of system calls.
const CHILD_STACK: usize = 64 * 1024;

/// Children of [`Spawner::spawn_all`] between their clone and their report at
/// any time: bounds the stacks held (64 KiB each, of which a child touches a
/// page or two) and the fds.
const MAX_IN_FLIGHT: usize = 64;

/// Whether a batch may run its children concurrently: it needs system calls
/// that leave `errno` alone (the children share tend's memory, `errno`
/// included), which [`raw`] makes with inline assembly on x86_64 only.
const CONCURRENT: bool = cfg!(target_arch = "x86_64");

/// What every spawn needs and tend works out once: restart latency is the time
/// from an exit to the next exec, so the path in between does as little as it can.
pub struct Spawner {
    /// The stack of a single child, reused: tend is suspended while it runs.
    stack: Vec<u8>,
    /// `/dev/null` for every child's stdin (and its output with `output: null`).
    null: OwnedFd,
    /// tend's soft `RLIMIT_NOFILE` before tend raised it, for the children.
    nofile: Option<libc::rlimit>,
    /// The signals whose disposition in tend is not the default (signal-hook's
    /// handlers, Rust's ignored SIGPIPE, whatever tend's parent ignored): the
    /// child resets exactly these. tend changes no disposition after start-up.
    non_default_signals: Vec<libc::c_int>,
    parent: libc::pid_t,
}

impl Spawner {
    /// Call after the signal handlers are installed. `nofile`: the limit the
    /// children get back (see [`sys::raise_nofile`]).
    pub fn new(nofile: Option<libc::rlimit>) -> io::Result<Spawner> {
        Ok(Spawner {
            stack: vec![0u8; CHILD_STACK],
            null: sys::open_dev_null()?,
            nofile,
            non_default_signals: (1..=64)
                .filter(|s| !sys::is_default_disposition(*s))
                .collect(),
            parent: std::process::id() as libc::pid_t,
        })
    }

    /// Start `spec`'s command in its own process group; returns once it has
    /// exec'ed (or failed to).
    fn spawn(&mut self, spec: &ServiceSpec) -> Result<Spawned, SpawnError> {
        let mut child = self.prepare(spec)?;
        let plan = child.plan(self);
        // SAFETY: `plan` points into `child`, which lives past the clone; the
        // clone returns only after the child has exec'ed or exited.
        let pid = unsafe { clone_child(&mut self.stack, &plan, true) };
        child.cloned();
        child.finish(pid.map_err(fail(Stage::Prepare))?)
    }

    /// Start several services, in order, with results in the same order. The
    /// children exec concurrently where [`CONCURRENT`]: each is cloned without
    /// waiting for the one before to exec, so a container's start-up uses both
    /// cores instead of one after the other.
    pub fn spawn_all(&mut self, specs: &[&ServiceSpec]) -> Vec<Result<Spawned, SpawnError>> {
        if !CONCURRENT || specs.len() < 2 {
            return specs.iter().map(|spec| self.spawn(spec)).collect();
        }
        self.spawn_concurrently(specs)
    }

    /// Clone the children with at most [`MAX_IN_FLIGHT`] of them between clone
    /// and report; a stack slot takes the next child as soon as its child has
    /// reported, so the pipeline never drains between batches.
    fn spawn_concurrently(&mut self, specs: &[&ServiceSpec]) -> Vec<Result<Spawned, SpawnError>> {
        let window = MAX_IN_FLIGHT.min(specs.len());
        // A child runs on its slot of `stacks` and reads its `InFlight`'s plan
        // and buffers; both stay untouched until its report is in.
        let mut stacks = vec![0u8; CHILD_STACK * window];
        let mut free: Vec<usize> = (0..window).collect();
        let mut flight: VecDeque<InFlight> = VecDeque::with_capacity(window);
        let mut results: Vec<Option<Result<Spawned, SpawnError>>> =
            specs.iter().map(|_| None).collect();
        for (index, spec) in specs.iter().enumerate() {
            if free.is_empty()
                && let Some(done) = flight.pop_front()
            {
                free.push(done.slot);
                let at = done.index;
                results[at] = Some(done.finish());
            }
            let mut child = match self.prepare(spec) {
                Ok(child) => child,
                Err(e) => {
                    results[index] = Some(Err(e));
                    continue;
                }
            };
            let Some(slot) = free.pop() else {
                continue; // cannot be: a slot was freed above
            };
            let plan = Box::new(child.plan(self));
            let stack = &mut stacks[slot * CHILD_STACK..(slot + 1) * CHILD_STACK];
            // SAFETY: `plan`, what it points into (owned by `child`) and `stack`
            // stay alive and unchanged until this child's report is read; the
            // child makes only raw system calls, which write nothing of ours
            // (see `CONCURRENT`).
            match unsafe { clone_child(stack, &plan, false) } {
                Ok(pid) => {
                    // Children cloned later must not inherit this one's write ends.
                    child.cloned();
                    flight.push_back(InFlight {
                        index,
                        slot,
                        pid,
                        child,
                        plan,
                    });
                }
                Err(e) => {
                    free.push(slot);
                    results[index] = Some(Err(fail(Stage::Prepare)(e)));
                }
            }
        }
        while let Some(done) = flight.pop_front() {
            let at = done.index;
            results[at] = Some(done.finish());
        }
        // Every child has exec'ed or is reaped: the stacks are free.
        drop(stacks);
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(fail(Stage::Prepare)(io::Error::other("not spawned"))))
            })
            .collect()
    }

    /// Everything a child needs, made before the clone (allocation is fine here).
    fn prepare(&self, spec: &ServiceSpec) -> Result<Child, SpawnError> {
        let creds = sys::resolve_credentials(spec.user.as_deref(), spec.group.as_deref())
            .map_err(fail(Stage::UserGroup))?;
        let env = environment(spec, &creds);
        let program = find_program(spec, &env).map_err(fail(Stage::Exec))?;
        let argv = CStrings::new(
            std::iter::once(program.as_os_str().to_owned()).chain(
                spec.command
                    .iter()
                    .skip(1)
                    .map(|a| OsString::from(a.as_str())),
            ),
        )
        .map_err(fail(Stage::Prepare))?;
        let envp = CStrings::new(env.into_iter().map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        }))
        .map_err(fail(Stage::Prepare))?;
        let dir = match &spec.working_dir {
            Some(d) => Some(cstring(d.as_os_str()).map_err(fail(Stage::Prepare))?),
            None => None,
        };
        let pipes = Pipes::open(spec.output).map_err(fail(Stage::Prepare))?;
        let (report_rx, report_tx) = sys::pipe().map_err(fail(Stage::Prepare))?;
        Ok(Child {
            argv,
            envp,
            dir,
            rlimits: collect_rlimits(&spec.limits, self.nofile),
            creds,
            discard: spec.output == OutputMode::Null,
            pipes,
            report_rx,
            report_tx: Some(report_tx),
        })
    }
}

/// A child of a concurrent batch between its clone and its report.
struct InFlight {
    index: usize,
    slot: usize,
    pid: libc::pid_t,
    child: Child,
    /// What the child reads; freed only after its report.
    plan: Box<ChildPlan>,
}

impl InFlight {
    fn finish(self) -> Result<Spawned, SpawnError> {
        let result = self.child.finish(self.pid);
        drop(self.plan);
        result
    }
}

/// One child between `prepare` and its report: owns what the child reads
/// (heap buffers, which stay put when this struct moves) and tend's pipe ends.
struct Child {
    argv: CStrings,
    envp: CStrings,
    dir: Option<CString>,
    rlimits: Vec<Rlimit>,
    creds: Credentials,
    /// `output: null`: 1 and 2 go to /dev/null too.
    discard: bool,
    pipes: Pipes,
    report_rx: OwnedFd,
    report_tx: Option<OwnedFd>,
}

impl Child {
    /// The child's view: plain values and pointers into `self` and `spawner`.
    fn plan(&self, spawner: &Spawner) -> ChildPlan {
        let null = spawner.null.as_raw_fd();
        let target = |fd: &Option<OwnedFd>| match fd {
            Some(fd) => fd.as_raw_fd(),
            None if self.discard => null,
            None => -1,
        };
        ChildPlan {
            program: self.argv.ptrs[0],
            argv: self.argv.ptrs.as_ptr(),
            envp: self.envp.ptrs.as_ptr(),
            dir: self.dir.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
            rlimits: (self.rlimits.as_ptr(), self.rlimits.len()),
            uid: self.creds.uid,
            gid: self.creds.gid,
            groups: self.creds.groups.as_ref().map(|g| (g.as_ptr(), g.len())),
            stdin: null,
            outputs: [target(&self.pipes.stdout_tx), target(&self.pipes.stderr_tx)],
            report: self.report_tx.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            parent: spawner.parent,
            signals: (
                spawner.non_default_signals.as_ptr(),
                spawner.non_default_signals.len(),
            ),
        }
    }

    /// After the clone: close tend's copies of the child's write ends (the
    /// child has its own), so EOF on them means the child is gone.
    fn cloned(&mut self) {
        self.report_tx = None;
        self.pipes.stdout_tx = None;
        self.pipes.stderr_tx = None;
    }

    /// Wait for the child's report: EOF once it has exec'ed, or why it failed.
    fn finish(self, pid: libc::pid_t) -> Result<Spawned, SpawnError> {
        if let Some(error) = read_report(&self.report_rx) {
            // The child exits right after its report: reap it now, so the
            // SIGCHLD handler does not take it for an orphan (and its stack is
            // free once this returns).
            sys::reap_blocking(pid);
            return Err(error);
        }
        Ok(Spawned {
            pid,
            stdout: self.pipes.stdout_rx,
            stderr: self.pipes.stderr_rx,
        })
    }
}

/// `clone(CLONE_VM | SIGCHLD)` running [`child`] with `plan` on `stack`, every
/// signal blocked around it; with `vfork`, also `CLONE_VFORK`: the call returns
/// only once the child has exec'ed or exited.
///
/// # Safety
/// `plan` and all it points to, and `stack`, must stay alive and unchanged
/// until the child has exec'ed or exited. Without `vfork`, the child runs
/// concurrently with the caller: only where [`CONCURRENT`].
unsafe fn clone_child(stack: &mut [u8], plan: &ChildPlan, vfork: bool) -> io::Result<libc::pid_t> {
    // The stack grows down from its end, which must be 16-byte aligned.
    let top = stack.as_mut_ptr_range().end as usize & !15;
    let flags = libc::CLONE_VM | libc::SIGCHLD | if vfork { libc::CLONE_VFORK } else { 0 };
    // SAFETY: sigset_t is plain data, filled by sigfillset.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: the calls get valid pointers; the caller vouches for the rest.
    unsafe {
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_entry,
            top as *mut libc::c_void,
            flags,
            plan as *const ChildPlan as *mut libc::c_void,
        );
        let error = io::Error::last_os_error();
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid == -1 { Err(error) } else { Ok(pid) }
    }
}

extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildPlan` of `clone_child`, kept alive by the
    // parent until this child has exec'ed or exited; `child` never returns.
    unsafe { child(&*(arg as *const ChildPlan)) }
}

/// Whether the child behind `report` failed before its exec, and why. Blocks
/// until it has exec'ed (EOF: the write end is close-on-exec) or reported.
fn read_report(report: &OwnedFd) -> Option<SpawnError> {
    let mut buf = [0u8; 8];
    let n = sys::read_some(report.as_raw_fd(), &mut buf).ok()?;
    if n < 8 {
        return None;
    }
    let stage = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Some(SpawnError {
        stage: Stage::from_code(stage),
        source: io::Error::from_raw_os_error(errno),
    })
}

/// The child's environment, as `NAME=value` pairs in a stable order.
fn environment(spec: &ServiceSpec, creds: &Credentials) -> Vec<(OsString, OsString)> {
    let mut env: std::collections::BTreeMap<OsString, OsString> = if spec.inherit_environment {
        std::env::vars_os().collect()
    } else {
        ["PATH", "HOME"]
            .into_iter()
            .filter_map(|k| Some((OsString::from(k), std::env::var_os(k)?)))
            .collect()
    };
    if let Some(home) = &creds.home {
        env.insert("HOME".into(), home.into());
    }
    for (k, v) in &spec.environment {
        env.insert(k.into(), v.into());
    }
    env.into_iter().collect()
}

/// Where `command[0]` is: as given when it holds a `/` (relative to
/// `working_dir`), else the first executable match on the child's `PATH`, as
/// `execvp` would search it.
fn find_program(spec: &ServiceSpec, env: &[(OsString, OsString)]) -> io::Result<PathBuf> {
    let name = spec.command.first().map(String::as_str).unwrap_or("");
    if name.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if name.contains('/') {
        let path = PathBuf::from(name);
        let checked = match &spec.working_dir {
            Some(dir) if path.is_relative() => dir.join(&path),
            _ => path.clone(),
        };
        executable(&checked)?;
        return Ok(path);
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    // execvp: a match that is not executable is remembered (EACCES) but the search
    // goes on; nothing at all is ENOENT.
    let mut error = io::Error::from_raw_os_error(libc::ENOENT);
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(name);
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => error = e,
            Err(_) => {}
        }
    }
    Err(error)
}

/// Ok if `path` exists and has an execute bit for this process, as access(2)
/// knows it. The rest (a directory, a bad format, a credential change in the
/// child) the exec itself finds, and the report pipe carries back.
fn executable(path: &Path) -> io::Result<()> {
    sys::access_executable(&cstring(path.as_os_str())?)
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

/// C strings and the NULL-terminated pointer array `execve` takes.
struct CStrings {
    _owned: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrings {
    fn new(items: impl Iterator<Item = OsString>) -> io::Result<CStrings> {
        let owned = items.map(|s| cstring(&s)).collect::<io::Result<Vec<_>>>()?;
        let mut ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(CStrings {
            _owned: owned,
            ptrs,
        })
    }
}

/// A service's output pipes (`output: log`): tend's read ends, and the write
/// ends the child gets as 1 and 2 (tend closes its copies after the clone).
struct Pipes {
    stdout_tx: Option<OwnedFd>,
    stderr_tx: Option<OwnedFd>,
    stdout_rx: Option<OwnedFd>,
    stderr_rx: Option<OwnedFd>,
}

impl Pipes {
    fn open(mode: OutputMode) -> io::Result<Pipes> {
        let mut pipes = Pipes {
            stdout_tx: None,
            stderr_tx: None,
            stdout_rx: None,
            stderr_rx: None,
        };
        if mode == OutputMode::Log {
            let (rx, tx) = sys::pipe()?;
            pipes.stdout_rx = Some(rx);
            pipes.stdout_tx = Some(tx);
            let (rx, tx) = sys::pipe()?;
            pipes.stderr_rx = Some(rx);
            pipes.stderr_tx = Some(tx);
        }
        Ok(pipes)
    }
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

type Rlimit = (Resource, libc::rlimit);

fn collect_rlimits(limits: &Limits, nofile: Option<libc::rlimit>) -> Vec<Rlimit> {
    let pairs = [
        (libc::RLIMIT_NOFILE, limits.nofile),
        (libc::RLIMIT_NPROC, limits.nproc),
        (libc::RLIMIT_CORE, limits.core),
        (libc::RLIMIT_AS, limits.memory),
        (libc::RLIMIT_CPU, limits.cpu),
        (libc::RLIMIT_FSIZE, limits.fsize),
    ];
    let mut out: Vec<Rlimit> = pairs
        .into_iter()
        .filter_map(|(resource, value)| {
            let v = value? as libc::rlim_t;
            Some((
                resource,
                libc::rlimit {
                    rlim_cur: v,
                    rlim_max: v,
                },
            ))
        })
        .collect();
    if limits.nofile.is_none()
        && let Some(original) = nofile
    {
        out.push((libc::RLIMIT_NOFILE, original));
    }
    out
}

/// Everything the child reads: plain values, and raw pointers into a [`Child`]
/// and the [`Spawner`] that the parent keeps alive and unchanged meanwhile.
struct ChildPlan {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// NULL: stay in tend's working directory.
    dir: *const libc::c_char,
    rlimits: (*const Rlimit, usize),
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
    groups: Option<(*const libc::gid_t, usize)>,
    stdin: RawFd,
    /// The fds to put on 1 and 2; -1 leaves tend's own (`output: inherit`).
    outputs: [RawFd; 2],
    report: RawFd,
    parent: libc::pid_t,
    signals: (*const libc::c_int, usize),
}

/// One raw system call; `Err(errno)` on failure. Inline assembly: no libc code
/// runs and `errno`, which the child shares with tend, is not written, so
/// children may run while tend goes on (see the module's "must not").
///
/// # Safety
/// As for the system call `n` with these arguments.
#[cfg(target_arch = "x86_64")]
unsafe fn raw(n: libc::c_long, a: [usize; 4]) -> Result<libc::c_long, libc::c_int> {
    let ret: isize;
    // SAFETY: the caller vouches for the call; `syscall` clobbers rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if (-4095..0).contains(&ret) {
        Err(-ret as libc::c_int)
    } else {
        Ok(ret as libc::c_long)
    }
}

/// [`raw`] elsewhere, through libc: it writes `errno`, which is why children
/// run one at a time there (`CLONE_VFORK` suspends tend meanwhile).
///
/// # Safety
/// As for the system call `n` with these arguments.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn raw(n: libc::c_long, a: [usize; 4]) -> Result<libc::c_long, libc::c_int> {
    // SAFETY: the caller vouches for the call.
    let ret = unsafe { libc::syscall(n, a[0], a[1], a[2], a[3]) };
    if ret == -1 {
        // SAFETY: errno of this thread (the parent's TCB, which is suspended).
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(ret)
    }
}

/// End the child with `code`, without libc's exit path.
///
/// # Safety
/// Only in the child.
unsafe fn exit_child(code: usize) -> ! {
    loop {
        // SAFETY: exit_group ends this process (the child: no CLONE_THREAD).
        let _ = unsafe { raw(libc::SYS_exit_group, [code, 0, 0, 0]) };
    }
}

/// The child between clone and exec: raw system calls only, no allocation.
///
/// # Safety
/// Call only as the clone child of [`clone_child`], with every signal blocked
/// and `plan` pointing at live, NUL-terminated data.
unsafe fn child(plan: &ChildPlan) -> ! {
    // SAFETY: every call is a system call on data prepared by the parent; a
    // failure is reported through `report` and ends the child.
    unsafe {
        let step = |stage: Stage, result: Result<libc::c_long, libc::c_int>| {
            if let Err(errno) = result {
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
                msg[4..].copy_from_slice(&errno.to_ne_bytes());
                let _ = raw(
                    libc::SYS_write,
                    [plan.report as usize, msg.as_ptr() as usize, 8, 0],
                );
                exit_child(127);
            }
        };
        // Back to SIG_DFL while everything is blocked. Raw, because libc refuses
        // the signals it reserves (32, 33) although they can arrive ignored from
        // tend's own parent. An all-zero kernel `struct sigaction` is SIG_DFL.
        let default_action = [0u64; 4];
        let signals = std::slice::from_raw_parts(plan.signals.0, plan.signals.1);
        for &signal in signals {
            let _ = raw(
                libc::SYS_rt_sigaction,
                [signal as usize, default_action.as_ptr() as usize, 0, 8],
            );
        }
        // dup3 (dup2 does not exist on aarch64) without O_CLOEXEC leaves the new
        // fd open across exec; the originals close at exec. Source and target
        // never coincide: tend keeps 0, 1 and 2 open, so its fds are above.
        step(
            Stage::Stdio,
            raw(libc::SYS_dup3, [plan.stdin as usize, 0, 0, 0]),
        );
        for (target, fd) in plan.outputs.into_iter().enumerate() {
            if fd != -1 {
                step(
                    Stage::Stdio,
                    raw(libc::SYS_dup3, [fd as usize, target + 1, 0, 0]),
                );
            }
        }
        step(Stage::ProcessGroup, raw(libc::SYS_setpgid, [0, 0, 0, 0]));
        if !plan.dir.is_null() {
            step(
                Stage::WorkingDir,
                raw(libc::SYS_chdir, [plan.dir as usize, 0, 0, 0]),
            );
        }
        for (resource, limit) in std::slice::from_raw_parts(plan.rlimits.0, plan.rlimits.1) {
            let limit = limit as *const libc::rlimit as usize;
            step(
                Stage::Rlimit,
                raw(libc::SYS_prlimit64, [0, *resource as usize, limit, 0]),
            );
        }
        if let Some((groups, count)) = plan.groups {
            step(
                Stage::Setgroups,
                raw(libc::SYS_setgroups, [count, groups as usize, 0, 0]),
            );
        }
        if let Some(gid) = plan.gid {
            step(
                Stage::Setgid,
                raw(libc::SYS_setgid, [gid as usize, 0, 0, 0]),
            );
        }
        if let Some(uid) = plan.uid {
            step(
                Stage::Setuid,
                raw(libc::SYS_setuid, [uid as usize, 0, 0, 0]),
            );
        }
        let pdeathsig = [
            libc::PR_SET_PDEATHSIG as usize,
            libc::SIGKILL as usize,
            0,
            0,
        ];
        step(Stage::DeathSignal, raw(libc::SYS_prctl, pdeathsig));
        if raw(libc::SYS_getppid, [0; 4]) != Ok(plan.parent as libc::c_long) {
            // tend died before the prctl: no death signal would ever come.
            step(Stage::ParentGone, Err(libc::ESRCH));
        }
        // The service starts with an empty mask; what arrived meanwhile is
        // delivered now, with the default action.
        let empty = 0u64;
        let _ = raw(
            libc::SYS_rt_sigprocmask,
            [
                libc::SIG_SETMASK as usize,
                &empty as *const u64 as usize,
                0,
                8,
            ],
        );
        let exec = [
            plan.program as usize,
            plan.argv as usize,
            plan.envp as usize,
            0,
        ];
        step(Stage::Exec, raw(libc::SYS_execve, exec));
        exit_child(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_through_their_codes() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_code(stage as u32), stage);
        }
        assert_eq!(Stage::from_code(999), Stage::Exec);
    }

    #[test]
    fn nofile_goes_back_to_the_inherited_limit_unless_set() {
        let original = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: 4096,
        };
        let inherited = Some(original);
        let none = collect_rlimits(&Limits::default(), inherited);
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].1.rlim_cur, 1024);
        let set = Limits {
            nofile: Some(10),
            ..Limits::default()
        };
        let got = collect_rlimits(&set, inherited);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.rlim_cur, 10);
    }
}
