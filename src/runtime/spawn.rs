//! Spawning a service: everything decided before `fork`, and only
//! async-signal-safe calls between `fork` and `exec`.
//!
//! Before fork (allocation is fine): argv and environment via `std::process::Command`,
//! user and group resolved to ids and supplementary groups, rlimits collected, the
//! parent pid captured. In the child (`pre_exec`), in this order: reset the signal
//! mask and every disposition to default → `setrlimit` → `setgroups` → `setgid` →
//! `setuid` → `prctl(PR_SET_PDEATHSIG, SIGKILL)` (after the credential change, which
//! would clear it) → check the parent is still tend (else the death signal would
//! never come). std then sets the process group (`process_group(0)`), stdin
//! `/dev/null` and the output pipes, and execs.
//!
//! Must not: allocate, log, or touch `std::env` inside `pre_exec`.

use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};

use super::sys::{self, Credentials};
use crate::config::{Limits, OutputMode, ServiceSpec};

/// A running child, as the shell needs it.
pub struct Spawned {
    pub pid: i32,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// Why a spawn failed, with the stage it failed at.
#[derive(Debug)]
pub struct SpawnError {
    pub stage: &'static str,
    pub source: io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stage {
            "exec" => write!(f, "{}", self.source),
            stage => write!(f, "{stage}: {}", self.source),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Spawn `spec`'s command in its own process group.
pub fn spawn(spec: &ServiceSpec) -> Result<Spawned, SpawnError> {
    let creds = sys::resolve_credentials(spec.user.as_deref(), spec.group.as_deref()).map_err(
        |source| SpawnError {
            stage: "user/group",
            source,
        },
    )?;
    let mut command = build_command(spec, &creds);
    let rlimits = collect_rlimits(&spec.limits);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only makes async-signal-safe calls on data prepared
    // before fork (see child_setup); it does not allocate.
    unsafe {
        command.pre_exec(move || child_setup(&rlimits, &creds, parent));
    }
    let mut child = command.spawn().map_err(|source| SpawnError {
        stage: "exec",
        source,
    })?;
    Ok(Spawned {
        pid: child.id() as i32,
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
    })
}

fn build_command(spec: &ServiceSpec, creds: &Credentials) -> Command {
    let mut args = spec.command.iter();
    let mut command = Command::new(args.next().map(String::as_str).unwrap_or(""));
    command.args(args);
    if !spec.inherit_environment {
        command.env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
    }
    if let Some(home) = &creds.home {
        command.env("HOME", home);
    }
    command.envs(&spec.environment);
    if let Some(dir) = &spec.working_dir {
        command.current_dir(dir);
    }
    let (stdout, stderr) = match spec.output {
        OutputMode::Log => (Stdio::piped(), Stdio::piped()),
        OutputMode::Inherit => (Stdio::inherit(), Stdio::inherit()),
        OutputMode::Null => (Stdio::null(), Stdio::null()),
    };
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    command
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

type Rlimit = (Resource, libc::rlimit);

fn collect_rlimits(limits: &Limits) -> Vec<Rlimit> {
    let pairs = [
        (libc::RLIMIT_NOFILE, limits.nofile),
        (libc::RLIMIT_NPROC, limits.nproc),
        (libc::RLIMIT_CORE, limits.core),
        (libc::RLIMIT_AS, limits.memory),
        (libc::RLIMIT_CPU, limits.cpu),
        (libc::RLIMIT_FSIZE, limits.fsize),
    ];
    pairs
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
        .collect()
}

/// Runs in the child between fork and exec: raw syscalls only.
fn child_setup(rlimits: &[Rlimit], creds: &Credentials, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: every call below is a plain syscall wrapper on data prepared before
    // fork. sigprocmask, signal (sigaction), setgid, setuid and getppid are
    // async-signal-safe per POSIX; setrlimit, setgroups and prctl are not on the
    // list but are thin syscall wrappers in glibc and musl.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Every disposition back to SIG_DFL, real-time signals included. The raw
        // syscall, because libc refuses the signals it reserves (32, 33) although
        // they can arrive ignored from tend's own parent. An all-zero kernel
        // `struct sigaction` is SIG_DFL with no flags and an empty mask.
        let default_action = [0u64; 4];
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default_action.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
        }
        for (resource, limit) in rlimits {
            if libc::setrlimit(*resource, limit) == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(groups) = &creds.groups
            && libc::setgroups(groups.len(), groups.as_ptr()) == -1
        {
            return Err(io::Error::last_os_error());
        }
        if let Some(gid) = creds.gid
            && libc::setgid(gid) == -1
        {
            return Err(io::Error::last_os_error());
        }
        if let Some(uid) = creds.uid
            && libc::setuid(uid) == -1
        {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            // tend died between fork and prctl: no death signal would come.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}
