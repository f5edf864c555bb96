//! Processes: the child subreaper, signals to process groups, reaping, and who
//! tend runs as.

use std::io;

use super::check;
use crate::machine::ExitStatus;

/// Become the child subreaper, so orphans of services are reparented to tend.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// Whether this process is PID 1 (of its namespace).
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// The effective user id of tend.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// Send `signal` to the process group `pgid`. `ESRCH` (no such group) comes back
/// as `ErrorKind::NotFound`.
pub fn kill_group(pgid: i32, signal: i32) -> io::Result<()> {
    if pgid <= 1 {
        // -1 would signal every process we may signal; 0 our own group.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill has no memory arguments.
    check(unsafe { libc::kill(-pgid, signal) }).map(drop)
}

/// Some exited child that is not reaped yet, and how it ended, without
/// reaping it (`waitid(WNOWAIT)`): while it stays a zombie, its pid and process
/// group id cannot be reused, so signalling its group is safe.
pub fn peek_exited() -> io::Result<Option<(i32, ExitStatus)>> {
    loop {
        // SAFETY: siginfo_t is plain old data; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: `info` is a valid, writable siginfo_t.
        let ret = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(err),
            }
        }
        // SAFETY: waitid filled `info` for a child event (or left si_pid 0).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        let status = match info.si_code {
            libc::CLD_EXITED => ExitStatus::Code(status),
            _ => ExitStatus::Signal(status), // CLD_KILLED, CLD_DUMPED
        };
        return Ok(Some((pid, status)));
    }
}

/// Reap `pid` if it has exited.
pub fn reap(pid: i32) -> io::Result<Option<ExitStatus>> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match ret {
            0 => return Ok(None),
            -1 => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(err);
            }
            _ => return Ok(Some(decode_status(status))),
        }
    }
}

/// Wait for `pid`, which is known to have exited or to be exiting, and reap it.
pub fn reap_blocking(pid: i32) -> Option<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: a valid out-pointer; `pid` is our child.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret == pid {
            return Some(decode_status(status));
        }
        if ret != -1 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}

/// The kernel's page size in bytes (`/proc/PID/stat` counts RSS in pages);
/// 4096 if `sysconf` cannot say.
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes a constant and reads nothing from us.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Clock ticks per second (`USER_HZ`, the unit of CPU times in
/// `/proc/PID/stat`); 100 if `sysconf` cannot say.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf takes a constant and reads nothing from us.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signalling_our_own_or_every_group_is_refused() {
        for pgid in [-5, 0, 1] {
            let err = kill_group(pgid, 0).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn statuses_decode_as_waitpid_says() {
        assert_eq!(decode_status(3 << 8), ExitStatus::Code(3));
        assert_eq!(
            decode_status(libc::SIGKILL),
            ExitStatus::Signal(libc::SIGKILL)
        );
    }
}
