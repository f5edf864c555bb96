//! The child between `clone` and `execve`: what it reads ([`ChildPlan`]), the
//! clone itself, and the raw system calls it makes.
//!
//! Must not (in the child): allocate, lock, log, panic, call a libc function
//! other than `syscall` (musl's `setuid` and `setrlimit` broadcast to all
//! threads, which in a `CLONE_VM` child would touch tend's state; with
//! concurrent batches, even `errno` must stay untouched), or write anything
//! but its own stack.

use std::io;
use std::os::fd::RawFd;

use super::{Common, ExecPlan, Stage};

/// Everything the child reads, borrowed for `'a` from the service's
/// [`ExecPlan`] and the spawner: the parent keeps all of it alive and unchanged
/// until the child has exec'ed or exited.
pub(super) struct ChildPlan<'a> {
    exec: &'a ExecPlan,
    common: Common<'a>,
    fds: Fds,
}

/// The fds of one spawn, as tend numbers them.
#[derive(Clone, Copy)]
pub(super) struct Fds {
    /// The fds to put on 1 and 2; -1 leaves tend's own (`output: inherit`).
    pub outputs: [RawFd; 2],
    /// The readiness pipe's write end and the fd (3 or more) it goes on.
    pub readiness: Option<(RawFd, RawFd)>,
    /// The write end of the report pipe: `(stage, errno)` goes there on failure.
    pub report: RawFd,
    /// The verified executable to exec (close-on-exec); -1: exec the path.
    pub program: RawFd,
}

impl<'a> ChildPlan<'a> {
    pub(super) fn new(exec: &'a ExecPlan, common: Common<'a>, fds: Fds) -> ChildPlan<'a> {
        ChildPlan { exec, common, fds }
    }
}

/// The highest 16-byte aligned address of `stack`: stacks grow down.
pub(super) fn stack_top(stack: *mut u8, len: usize) -> *mut u8 {
    let end = stack.wrapping_add(len);
    end.wrapping_sub(end as usize & 15)
}

/// Clone a child that runs `plan` on `stack`, and return once it has exec'ed or
/// exited (`CLONE_VFORK`).
pub(super) fn clone_and_wait(stack: &mut [u8], plan: &ChildPlan<'_>) -> io::Result<libc::pid_t> {
    let top = stack_top(stack.as_mut_ptr(), stack.len());
    // SAFETY: with CLONE_VFORK this thread is suspended until the child has
    // exec'ed or exited, so `plan`, what it borrows and `stack`, all borrowed
    // for this call, outlive the child's use of them, and nothing of tend's
    // runs on them meanwhile.
    unsafe { clone_child(top, plan, true) }
}

/// Clone a child that runs `plan` on the stack below `top`, and return at once:
/// the child runs concurrently with tend (only where `super::CONCURRENT`).
///
/// # Safety
/// `plan`, everything it borrows, and the stack below `top` (`super::CHILD_STACK`
/// bytes) must stay alive and untouched by tend until the child has exec'ed or
/// exited: its report read to EOF, or, after a failure report, the child reaped.
#[cfg(all(target_arch = "x86_64", not(tend_serial_spawn)))]
pub(super) unsafe fn clone_running(top: *mut u8, plan: &ChildPlan<'_>) -> io::Result<libc::pid_t> {
    // SAFETY: the caller vouches for the lifetimes; the child's system calls
    // leave `errno` alone (`raw` is inline assembly here), so it writes nothing
    // of tend's.
    unsafe { clone_child(top, plan, false) }
}

/// Clone a child that runs `plan` on the stack below `top`, and return once it
/// has exec'ed or exited (`CLONE_VFORK`): for a child of a concurrent batch
/// that must not run beside tend (see [`setup`](super::setup)'s
/// `needs_vfork`).
///
/// # Safety
/// As for [`clone_running`], until this returns.
#[cfg(all(target_arch = "x86_64", not(tend_serial_spawn)))]
pub(super) unsafe fn clone_waiting(top: *mut u8, plan: &ChildPlan<'_>) -> io::Result<libc::pid_t> {
    // SAFETY: the caller vouches for the lifetimes; tend is suspended until
    // the child has exec'ed or exited.
    unsafe { clone_child(top, plan, true) }
}

/// `clone(CLONE_VM | SIGCHLD)` running [`child`] with `plan` on the stack below
/// `top`, every signal blocked around it (so no handler of tend's runs in the
/// child before it has reset them); with `vfork`, also `CLONE_VFORK`.
///
/// # Safety
/// As for [`clone_running`]; with `vfork` the call itself provides it.
unsafe fn clone_child(top: *mut u8, plan: &ChildPlan<'_>, vfork: bool) -> io::Result<libc::pid_t> {
    let flags = libc::CLONE_VM | libc::SIGCHLD | if vfork { libc::CLONE_VFORK } else { 0 };
    // The mask is set with the raw system call both ways: libc's sigprocmask
    // hides its reserved signals from the old mask it returns, and restoring
    // that would unblock what `signal::unblock_all` keeps blocked.
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: rt_sigprocmask with valid 8-byte sets; the caller vouches for
    // `top` and `plan`.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            &mut old as *mut u64,
            8usize,
        );
        let pid = libc::clone(
            child_entry,
            top.cast(),
            flags,
            plan as *const ChildPlan<'_> as *mut libc::c_void,
        );
        let error = io::Error::last_os_error();
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
        if pid == -1 { Err(error) } else { Ok(pid) }
    }
}

extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildPlan` of `clone_child`, kept alive by the
    // parent until this child has exec'ed or exited; `child` never returns.
    unsafe { child(&*(arg as *const ChildPlan<'_>)) }
}

/// One raw system call with up to six arguments (`N`, checked when compiled);
/// `Err(errno)` on failure. Inline assembly: no libc code runs and `errno`,
/// which the child shares with tend, is not written, so children may run while
/// tend goes on (see the module's "must not").
///
/// # Safety
/// As for the system call `n` with these arguments.
#[cfg(all(target_arch = "x86_64", not(tend_serial_spawn)))]
pub(super) unsafe fn raw<const N: usize>(
    n: libc::c_long,
    args: [usize; N],
) -> Result<libc::c_long, libc::c_int> {
    let a = six(args);
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
            in("r8") a[4],
            in("r9") a[5],
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

/// [`raw`] through libc's `syscall`, elsewhere or with `--cfg tend_serial_spawn`:
/// it writes `errno`, which is why children then run one at a time
/// (`CLONE_VFORK` suspends tend meanwhile, and tend reads `errno` only after).
///
/// # Safety
/// As for the system call `n` with these arguments.
#[cfg(not(all(target_arch = "x86_64", not(tend_serial_spawn))))]
pub(super) unsafe fn raw<const N: usize>(
    n: libc::c_long,
    args: [usize; N],
) -> Result<libc::c_long, libc::c_int> {
    let a = six(args);
    // SAFETY: the caller vouches for the call.
    let ret = unsafe { libc::syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if ret == -1 {
        // SAFETY: errno of this thread (the parent's TCB, which is suspended).
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(ret)
    }
}

/// `args` padded with zeroes to the six registers of a system call. More than
/// six does not compile; nothing here can panic.
fn six<const N: usize>(args: [usize; N]) -> [usize; 6] {
    const { assert!(N <= 6, "a system call takes at most six arguments") };
    let mut all = [0usize; 6];
    for (slot, value) in all.iter_mut().zip(args) {
        *slot = value;
    }
    all
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

/// A close-on-exec copy of `fd` on the lowest free number above `taken`.
///
/// # Safety
/// Only in the child.
unsafe fn move_above(fd: RawFd, taken: RawFd) -> Result<RawFd, libc::c_int> {
    let args = [
        fd as usize,
        libc::F_DUPFD_CLOEXEC as usize,
        (taken + 1) as usize,
    ];
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd of the child's table.
    unsafe { raw(libc::SYS_fcntl, args).map(|fd| fd as RawFd) }
}

/// Write `(stage, errno)` into the report pipe and exit 127.
///
/// # Safety
/// Only in the child.
unsafe fn report_failure(report: RawFd, stage: Stage, errno: libc::c_int) -> ! {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    msg[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: a write of 8 bytes from this stack; then the child ends.
    unsafe {
        let _ = raw(
            libc::SYS_write,
            [report as usize, msg.as_ptr() as usize, 8, 0],
        );
        exit_child(127)
    }
}

/// The child between clone and exec: raw system calls only, no allocation. In
/// this order: the report pipe and the verified program's fd moved off the
/// readiness fd's number if they coincide → each disposition tend changed back
/// to default → stdio onto fds 0/1/2 → the readiness pipe onto its fd → own
/// process group → the service's cgroup (`0` into its `cgroup.procs`) → the
/// new namespaces (`isolate`: network, tmp, ipc, hostname; `setup.rs`) →
/// `working_dir` (after the tmpfs mounts, so it is looked up in what the
/// service sees) → rlimits → nice, io_priority, oom_score_adj, cpu_affinity →
/// `setgroups` → `setgid` → `setuid` → `PR_SET_PDEATHSIG` SIGKILL (after the
/// credential change, which would clear it) → check the parent is still tend →
/// empty signal mask → `execveat` of the verified file, or `execve` of the
/// path. A failing step writes `(step, errno)` into the report pipe and exits
/// 127.
///
/// # Safety
/// Call only as the clone child of [`clone_child`], with every signal blocked
/// and `plan` alive.
unsafe fn child(plan: &ChildPlan<'_>) -> ! {
    let exec = plan.exec;
    let common = plan.common;
    let fds = plan.fds;
    // SAFETY: every call is a system call on data prepared by the parent; a
    // failure is reported through `report` and ends the child.
    unsafe {
        // The readiness fd's number is the service's choice, so it may be the
        // number the report pipe has in tend (the child's fd table is a copy
        // of tend's). The report then moves above it first, close-on-exec like
        // the original, which the dup3 below replaces. The other fds of tend
        // the child reads (`/dev/null`, output pipes) are used before that dup3.
        let report = match fds.readiness {
            Some((_, target)) if target == fds.report => match move_above(fds.report, target) {
                Ok(fd) => fd,
                Err(errno) => report_failure(fds.report, Stage::Readiness, errno),
            },
            Some(_) | None => fds.report,
        };
        let step = |stage: Stage, result: Result<libc::c_long, libc::c_int>| {
            if let Err(errno) = result {
                report_failure(report, stage, errno);
            }
        };
        // The verified program's fd, likewise out of the readiness fd's way.
        let program = match fds.readiness {
            Some((_, target)) if target == fds.program => match move_above(fds.program, target) {
                Ok(fd) => fd,
                Err(errno) => report_failure(report, Stage::Exec, errno),
            },
            Some(_) | None => fds.program,
        };
        // Back to SIG_DFL while everything is blocked. Raw, because libc refuses
        // the signals it reserves (32, 33) although they can arrive ignored from
        // tend's own parent. An all-zero kernel `struct sigaction` is SIG_DFL.
        let default_action = [0u64; 4];
        for &signal in common.reset_signals {
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
            raw(libc::SYS_dup3, [common.null as usize, 0, 0, 0]),
        );
        for (target, fd) in fds.outputs.into_iter().enumerate() {
            if fd != -1 {
                step(
                    Stage::Stdio,
                    raw(libc::SYS_dup3, [fd as usize, target + 1, 0, 0]),
                );
            }
        }
        // The readiness pipe on its fd, left open across exec: dup3 without
        // O_CLOEXEC, or, when tend's write end already has that number, its
        // close-on-exec flag cleared (dup3 refuses equal fds).
        if let Some((source, target)) = fds.readiness {
            let result = if source == target {
                raw(
                    libc::SYS_fcntl,
                    [target as usize, libc::F_SETFD as usize, 0, 0],
                )
            } else {
                raw(libc::SYS_dup3, [source as usize, target as usize, 0, 0])
            };
            step(Stage::Readiness, result);
        }
        step(Stage::ProcessGroup, raw(libc::SYS_setpgid, [0, 0, 0, 0]));
        // Into the service's cgroup: `0` in `cgroup.procs` means the writer.
        if let Some(procs) = &exec.cgroup_procs {
            let flags = (libc::O_WRONLY | libc::O_CLOEXEC) as usize;
            let at = libc::AT_FDCWD as usize;
            let fd = raw(libc::SYS_openat, [at, procs.as_ptr() as usize, flags, 0]);
            step(Stage::Cgroup, fd);
            let fd = fd.unwrap_or(-1) as usize;
            let written = raw(libc::SYS_write, [fd, b"0".as_ptr() as usize, 1, 0]);
            let _ = raw(libc::SYS_close, [fd, 0, 0, 0]);
            step(Stage::Cgroup, written);
        }
        if let Err((stage, errno)) = exec.setup().isolate() {
            report_failure(report, stage, errno);
        }
        if let Some(dir) = &exec.dir {
            step(
                Stage::WorkingDir,
                raw(libc::SYS_chdir, [dir.as_ptr() as usize, 0, 0, 0]),
            );
        }
        // tend's own RLIMIT_NOFILE as it was before tend raised it, unless the
        // service sets one (below).
        if let Some(nofile) = common.nofile.filter(|_| !exec.sets_nofile) {
            let limit = nofile as *const libc::rlimit as usize;
            let resource = libc::RLIMIT_NOFILE as usize;
            step(
                Stage::Rlimit,
                raw(libc::SYS_prlimit64, [0, resource, limit, 0]),
            );
        }
        for (resource, limit) in &exec.rlimits {
            let limit = limit as *const libc::rlimit as usize;
            step(
                Stage::Rlimit,
                raw(libc::SYS_prlimit64, [0, *resource as usize, limit, 0]),
            );
        }
        if let Err((stage, errno)) = exec.setup().prioritize() {
            report_failure(report, stage, errno);
        }
        if let Some(groups) = &exec.groups {
            step(
                Stage::Setgroups,
                raw(
                    libc::SYS_setgroups,
                    [groups.len(), groups.as_ptr() as usize, 0, 0],
                ),
            );
        }
        if let Some(gid) = exec.gid {
            step(
                Stage::Setgid,
                raw(libc::SYS_setgid, [gid as usize, 0, 0, 0]),
            );
        }
        if let Some(uid) = exec.uid {
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
        if raw(libc::SYS_getppid, [0; 4]) != Ok(common.parent as libc::c_long) {
            // tend died before the prctl: no death signal would ever come.
            step(Stage::ParentGone, Err(libc::ESRCH));
        }
        // The service starts with an empty mask; what arrived meanwhile is
        // delivered now, with the default action (or, for a signal tend catches
        // and ignores, to that handler, which does nothing in a child).
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
        let argv = exec.argv.ptrs.as_ptr() as usize;
        let envp = exec.envp.0.ptrs.as_ptr() as usize;
        if program >= 0 {
            // The very file the caller verified: a replaced path changes nothing.
            let empty = c"".as_ptr() as usize;
            let flags = libc::AT_EMPTY_PATH as usize;
            let args = [program as usize, empty, argv, envp, flags];
            step(Stage::Exec, raw(libc::SYS_execveat, args));
        } else {
            let path = exec.argv.ptrs.first().copied().unwrap_or(std::ptr::null()) as usize;
            step(Stage::Exec, raw(libc::SYS_execve, [path, argv, envp]));
        }
        exit_child(127)
    }
}
