//! Starting a prepared program the way `posix_spawn` does: `clone(CLONE_VM |
//! CLONE_VFORK)` on a small stack of its own, only raw system calls in the
//! child, and the outcome known when `clone` returns.
//!
//! Why not `fork`: a fork copies tend's page tables and marks every page
//! copy-on-write, so the child's first writes and the parent's next ones each
//! take a page fault. On the restart path (exit → reap → spawn → exec) that cost
//! more than everything else together. With `CLONE_VM` the child borrows tend's
//! memory, and `CLONE_VFORK` suspends tend until the child has exec'ed or died,
//! so the two never run on that memory at once.
//!
//! What the child needs is resolved before, once per service definition, into an
//! [`ExecPlan`] (program, argv and environment as C strings, working directory,
//! rlimits, ids, namespaces and scheduling settings in `setup.rs`'s prepared
//! form: see `runtime::launch`). Per spawn only the pipes (output, and
//! the readiness pipe of `readiness: {type: fd}`), the report pipe and the
//! clone remain. The readiness pipe is the one fd a child gets besides 0, 1
//! and 2, on the number the service asked for, whatever fd of tend's had that
//! number (the child moves its report pipe out of the way first). What the child does, in order, is in
//! `child.rs`; a failing step writes `(step, errno)` into the report pipe
//! and exits 127; the parent reads the pipe as soon as `clone` returns: 8 bytes
//! mean the spawn failed ([`SpawnError`] with its [`Stage`]), EOF means the exec
//! happened. A job may bring the open file to exec ([`Job::program`]: a binary
//! whose checksum the caller verified); the child then execs that file with
//! `execveat`, not whatever its path names by then.
//!
//! Batches (start-up, reload): waiting for each exec in turn leaves the second
//! core idle while the first child execs. On x86_64, [`Cloner::spawn_all`]
//! clones each child of a batch without `CLONE_VFORK`, every one on its own
//! stack, and reads the reports afterwards, in order (`batch.rs`); everything a
//! child reads stays alive and unchanged until its report is in. That is sound
//! only because the child writes nothing of tend's: its system calls are inline
//! assembly that leaves the shared `errno` alone. Elsewhere, or built with
//! `--cfg tend_serial_spawn`, batches are spawned one by one and the child's
//! system calls go through libc's `syscall` ([`CONCURRENT`] says which).

mod child;
mod setup;

#[cfg(all(target_arch = "x86_64", not(tend_serial_spawn)))]
mod batch;

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::fd;
use super::rlimit::{RawResource, Resource, Rlimit};
use super::user::Credentials;
pub use setup::{IoClass, Namespaces, Priorities};

/// Whether [`Cloner::spawn_all`] runs the children of a batch concurrently.
pub const CONCURRENT: bool = cfg!(all(target_arch = "x86_64", not(tend_serial_spawn)));

/// Bytes of a child's stack: it runs one shallow function of system calls.
const CHILD_STACK: usize = 64 * 1024;

/// Why a spawn failed, with the step it failed at.
#[derive(Debug)]
pub struct SpawnError {
    pub stage: Stage,
    pub source: io::Error,
}

impl SpawnError {
    pub fn new(stage: Stage, source: io::Error) -> SpawnError {
        SpawnError { stage, source }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stage {
            Stage::Exec | Stage::Checksum | Stage::EnvFile => write!(f, "{}", self.source),
            stage => write!(f, "{}: {}", stage.describe(), self.source),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The step of a spawn that failed; numbered for the report pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    Prepare = 1,
    UserGroup,
    Stdio,
    /// Putting the readiness pipe on its fd (`readiness: {type: fd}`).
    Readiness,
    ProcessGroup,
    WorkingDir,
    Rlimit,
    Setgroups,
    Setgid,
    Setuid,
    DeathSignal,
    ParentGone,
    Exec,
    Cgroup,
    IsolateNetwork,
    IsolateTmp,
    IsolateIpc,
    IsolateHostname,
    Nice,
    IoPriority,
    OomScoreAdj,
    CpuAffinity,
    /// The executable's `sha256` did not match (found by the caller before
    /// the clone; its message names the file and both digests).
    Checksum,
    /// An `env_file` could not be read or parsed (found when the plan is
    /// resolved; its message names the file and the line).
    EnvFile,
}

impl Stage {
    const ALL: [Stage; 24] = [
        Stage::Prepare,
        Stage::UserGroup,
        Stage::Stdio,
        Stage::Readiness,
        Stage::ProcessGroup,
        Stage::WorkingDir,
        Stage::Rlimit,
        Stage::Setgroups,
        Stage::Setgid,
        Stage::Setuid,
        Stage::DeathSignal,
        Stage::ParentGone,
        Stage::Exec,
        Stage::Cgroup,
        Stage::IsolateNetwork,
        Stage::IsolateTmp,
        Stage::IsolateIpc,
        Stage::IsolateHostname,
        Stage::Nice,
        Stage::IoPriority,
        Stage::OomScoreAdj,
        Stage::CpuAffinity,
        Stage::Checksum,
        Stage::EnvFile,
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
            Stage::Readiness => "readiness fd",
            Stage::ProcessGroup => "setpgid",
            Stage::WorkingDir => "working_dir",
            Stage::Rlimit => "setrlimit",
            Stage::Setgroups => "setgroups",
            Stage::Setgid => "setgid",
            Stage::Setuid => "setuid",
            Stage::DeathSignal => "prctl(PR_SET_PDEATHSIG)",
            Stage::ParentGone => "tend exited during the spawn",
            Stage::Exec => "exec",
            Stage::Cgroup => "cgroup",
            Stage::IsolateNetwork => "isolate network",
            Stage::IsolateTmp => "isolate tmp",
            Stage::IsolateIpc => "isolate ipc",
            Stage::IsolateHostname => "isolate hostname",
            Stage::Nice => "nice",
            Stage::IoPriority => "io_priority",
            Stage::OomScoreAdj => "oom_score_adj",
            Stage::CpuAffinity => "cpu_affinity",
            Stage::Checksum => "sha256",
            Stage::EnvFile => "env_file",
        }
    }
}

/// C strings and the NULL-terminated pointer array `execve` takes. The pointers
/// point into the strings' own heap buffers, which stay put when this moves.
/// Boxed slices, not `Vec`s: a plan is kept per service and never grows.
struct CStringArray {
    owned: Box<[CString]>,
    ptrs: Box<[*const libc::c_char]>,
}

impl CStringArray {
    fn new(owned: Vec<CString>) -> CStringArray {
        let owned = owned.into_boxed_slice();
        let ptrs = owned
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        CStringArray { owned, ptrs }
    }
}

/// An environment for `execve`, shared between the plans that have the same
/// one: most services inherit tend's environment unchanged, and a copy per
/// service would cost a few KiB each (1,000 services: megabytes).
#[derive(Clone)]
pub struct SharedEnv(std::rc::Rc<CStringArray>);

impl SharedEnv {
    pub fn new(strings: Vec<CString>) -> SharedEnv {
        SharedEnv(std::rc::Rc::new(CStringArray::new(strings)))
    }

    /// `NAME=value` strings.
    pub fn strings(&self) -> &[CString] {
        &self.0.owned
    }

    /// How many plans use this environment.
    pub fn users(&self) -> usize {
        std::rc::Rc::strong_count(&self.0)
    }
}

impl From<Vec<CString>> for SharedEnv {
    fn from(strings: Vec<CString>) -> SharedEnv {
        SharedEnv::new(strings)
    }
}

/// A program ready to exec, prepared once per service definition: everything
/// the child reads but the fds of one spawn.
pub struct ExecPlan {
    /// `argv[0]` is the path exec'ed (the program as found on `PATH`).
    argv: CStringArray,
    envp: SharedEnv,
    /// `None`: stay in tend's working directory.
    dir: Option<CString>,
    rlimits: Box<[(RawResource, libc::rlimit)]>,
    /// The service sets `RLIMIT_NOFILE` itself.
    sets_nofile: bool,
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
    groups: Option<Box<[libc::gid_t]>>,
    /// The `cgroup.procs` file of the service's cgroup: the child writes `0`
    /// (itself) there before it changes credentials or execs, so nothing it
    /// runs ever starts outside the cgroup.
    cgroup_procs: Option<CString>,
    /// Namespaces and scheduling settings, prepared for the child; `None`
    /// (most services: none of them set) costs a plan no room for them.
    setup: Option<Box<setup::Prepared>>,
}

impl ExecPlan {
    /// `argv[0]` is the path that is exec'ed, so `argv` must not be empty.
    pub fn new(
        argv: Vec<CString>,
        envp: impl Into<SharedEnv>,
        dir: Option<CString>,
        limits: &[Rlimit],
        credentials: &Credentials,
    ) -> io::Result<ExecPlan> {
        if argv.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(ExecPlan {
            argv: CStringArray::new(argv),
            envp: envp.into(),
            dir,
            rlimits: limits.iter().map(|l| l.raw()).collect(),
            sets_nofile: limits.iter().any(|l| l.resource == Resource::Nofile),
            uid: credentials.uid,
            gid: credentials.gid,
            groups: credentials.groups.clone().map(Vec::into_boxed_slice),
            cgroup_procs: None,
            setup: None,
        })
    }

    /// Give the child these new namespaces (`isolate`), made after it joined
    /// its cgroup and before it changes credentials.
    pub fn set_namespaces(&mut self, namespaces: &Namespaces) {
        self.change_setup(|setup| setup.set_namespaces(namespaces));
    }

    /// Give the child these scheduling settings, applied before it changes
    /// credentials (lowering any of them needs privileges).
    pub fn set_priorities(&mut self, priorities: &Priorities) {
        self.change_setup(|setup| setup.set_priorities(priorities));
    }

    /// Change the prepared settings, keeping them boxed only if any is set.
    fn change_setup(&mut self, change: impl FnOnce(&mut setup::Prepared)) {
        let mut setup = self.setup.take().unwrap_or_default();
        change(&mut setup);
        if !setup.is_empty() {
            self.setup = Some(setup);
        }
    }

    /// The prepared namespaces and scheduling settings (none: an empty set).
    fn setup(&self) -> &setup::Prepared {
        self.setup.as_deref().unwrap_or(&setup::NONE)
    }

    /// Whether the child gets any new namespace.
    pub fn isolates(&self) -> bool {
        self.setup().isolates()
    }

    /// Put the child into the cgroup whose `cgroup.procs` is `procs` (`None`:
    /// stay in tend's).
    pub fn set_cgroup(&mut self, procs: Option<CString>) {
        self.cgroup_procs = procs;
    }

    /// The `cgroup.procs` the child joins, if any.
    pub fn cgroup(&self) -> Option<&CStr> {
        self.cgroup_procs.as_deref()
    }

    /// The path exec'ed.
    pub fn program(&self) -> &CStr {
        self.argv.owned.first().map_or(c"", |p| p.as_c_str())
    }

    /// The whole argv, `argv[0]` (the program) first.
    pub fn argv(&self) -> &[CString] {
        &self.argv.owned
    }

    /// The environment, as `NAME=value` strings.
    pub fn env(&self) -> &[CString] {
        self.envp.strings()
    }

    /// The environment, to share with another plan that has the same one.
    pub fn shared_env(&self) -> &SharedEnv {
        &self.envp
    }

    /// Use `env` instead: it must hold the same strings (see `shared_env`).
    pub fn share_env(&mut self, env: SharedEnv) {
        debug_assert!(env.strings() == self.env());
        self.envp = env;
    }
}

/// Where a child's fd 1 or 2 goes.
#[derive(Debug)]
pub enum Output {
    /// tend's own (`output: inherit`).
    Inherit,
    /// `/dev/null` (`output: null`).
    Null,
    /// The write end of a pipe tend reads; tend's copy is closed after the clone.
    Pipe(OwnedFd),
}

/// The write end of a readiness pipe (s6's `notification-fd`) and the fd
/// number the child gets it on. tend's copy is closed after the clone, so
/// EOF on the read end means every process of the service closed it.
#[derive(Debug)]
pub struct ReadinessFd {
    pub write: OwnedFd,
    /// 3 or more: 0, 1 and 2 are the child's stdio.
    pub target: RawFd,
}

/// One spawn: a prepared program, where its output goes, its readiness fd if
/// it has one (the only fd it gets besides 0, 1 and 2), and the open file to
/// exec if the caller checked one.
#[derive(Debug)]
pub struct Job<'a> {
    pub plan: &'a ExecPlan,
    pub stdout: Output,
    pub stderr: Output,
    pub readiness: Option<ReadinessFd>,
    /// An ELF executable opened (close-on-exec) and verified by the caller:
    /// the child execs this very file with `execveat(fd, "", AT_EMPTY_PATH)`,
    /// whatever the path names by then, `argv[0]` unchanged. `None`: exec the
    /// path. (A script cannot be exec'ed this way: its interpreter would need
    /// the path of a close-on-exec fd.)
    pub program: Option<OwnedFd>,
}

impl Job<'_> {
    /// (source, target) of the readiness fd for the child; a target below 3
    /// would replace the child's stdio and is refused.
    fn readiness(&self) -> io::Result<Option<(RawFd, RawFd)>> {
        match &self.readiness {
            None => Ok(None),
            Some(r) if r.target < 3 => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            Some(r) => Ok(Some((r.write.as_raw_fd(), r.target))),
        }
    }
}

impl fmt::Debug for ExecPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecPlan")
            .field("argv", &self.argv.owned)
            .field("dir", &self.dir)
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish_non_exhaustive()
    }
}

/// What every child of a [`Cloner`] reads besides its [`ExecPlan`].
#[derive(Clone, Copy)]
struct Common<'a> {
    /// `/dev/null`: every child's stdin, and its output with `output: null`.
    null: RawFd,
    /// tend's soft `RLIMIT_NOFILE` before tend raised it.
    nofile: Option<&'a libc::rlimit>,
    /// The signals to set back to `SIG_DFL` in the child.
    reset_signals: &'a [libc::c_int],
    parent: libc::pid_t,
}

impl Common<'_> {
    fn target(&self, output: &Output) -> RawFd {
        match output {
            Output::Inherit => -1,
            Output::Null => self.null,
            Output::Pipe(fd) => fd.as_raw_fd(),
        }
    }
}

/// What every spawn needs and tend works out once: restart latency is the time
/// from an exit to the next exec, so the path in between does as little as it
/// can.
pub struct Cloner {
    /// The stack of a single child, reused: tend is suspended while it runs.
    stack: Vec<u8>,
    null: OwnedFd,
    nofile: Option<libc::rlimit>,
    /// The signals whose disposition in tend a child must reset: those with a
    /// handler that must not run in a child (signal-hook's, libc's), and any
    /// left ignored. tend changes no disposition after start-up.
    reset_signals: Vec<libc::c_int>,
    parent: libc::pid_t,
}

impl Cloner {
    /// Call after the signal handlers are installed. `nofile`: the limit the
    /// children get back unless they set one (see [`super::raise_nofile`]).
    pub fn new(nofile: Option<libc::rlimit>) -> io::Result<Cloner> {
        Ok(Cloner {
            stack: vec![0u8; CHILD_STACK],
            null: fd::open_dev_null()?,
            nofile,
            reset_signals: super::signal::reset_in_child(),
            parent: std::process::id() as libc::pid_t,
        })
    }

    /// Start `job` in its own process group; returns its pid once it has
    /// exec'ed, or why it could not.
    pub fn spawn(&mut self, job: Job<'_>) -> Result<libc::pid_t, SpawnError> {
        let Cloner {
            stack,
            null,
            nofile,
            reset_signals,
            parent,
        } = self;
        let common = Common {
            null: null.as_raw_fd(),
            nofile: nofile.as_ref(),
            reset_signals,
            parent: *parent,
        };
        let prepare = |e| SpawnError::new(Stage::Prepare, e);
        let readiness = job.readiness().map_err(prepare)?;
        let (report_rx, report_tx) = fd::pipe().map_err(prepare)?;
        let outputs = [common.target(&job.stdout), common.target(&job.stderr)];
        let program = job.program.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        let fds = child::Fds {
            outputs,
            readiness,
            report: report_tx.as_raw_fd(),
            program,
        };
        let plan = child::ChildPlan::new(job.plan, common, fds);
        let pid = child::clone_and_wait(stack, &plan).map_err(prepare)?;
        // tend's copies of the child's write ends: EOF on them means it is gone.
        drop(report_tx);
        drop(job);
        match read_report(&report_rx) {
            Report::Failed(error) => {
                // It exits right after its report: reap it now, so the SIGCHLD
                // handler does not take it for an orphan.
                super::reap_blocking(pid);
                Err(error)
            }
            Report::Exec | Report::Unknown => Ok(pid),
        }
    }

    /// Start several jobs, in order, with results in the same order. A job that
    /// could not be prepared (`Err`) is passed through. The children exec
    /// concurrently where [`CONCURRENT`].
    pub fn spawn_all<'a, I>(&mut self, jobs: I) -> Vec<Result<libc::pid_t, SpawnError>>
    where
        I: ExactSizeIterator<Item = Result<Job<'a>, SpawnError>>,
    {
        #[cfg(all(target_arch = "x86_64", not(tend_serial_spawn)))]
        if jobs.len() >= 2 {
            let common = Common {
                null: self.null.as_raw_fd(),
                nofile: self.nofile.as_ref(),
                reset_signals: &self.reset_signals,
                parent: self.parent,
            };
            return batch::spawn_all(common, jobs);
        }
        jobs.map(|job| self.spawn(job?)).collect()
    }
}

/// What a child's report pipe said.
enum Report {
    /// EOF: the child exec'ed (the pipe is close-on-exec) or died.
    Exec,
    /// It failed at a step, and exits.
    Failed(SpawnError),
    /// The pipe could not be read (it cannot happen); nothing is known.
    Unknown,
}

/// Read `report` until EOF or a whole 8-byte report: blocks until the child has
/// exec'ed or reported.
fn read_report(report: &OwnedFd) -> Report {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        let Some(rest) = buf.get_mut(got..) else {
            break;
        };
        match fd::read_some(report.as_raw_fd(), rest) {
            Ok(0) => return Report::Exec,
            Ok(n) => got += n,
            Err(_) => return Report::Unknown,
        }
    }
    let stage = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Report::Failed(SpawnError::new(
        Stage::from_code(stage),
        io::Error::from_raw_os_error(errno),
    ))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_setup;
