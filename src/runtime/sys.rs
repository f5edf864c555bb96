//! Thin, checked wrappers over the libc calls the shell needs: with the fork/exec
//! in `spawn.rs`, the only `unsafe`. Each returns `io::Result` with the OS error;
//! none panics.
//!
//! Must not: decide anything. Callers own the policy.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::machine::ExitStatus;

/// `-1` → the last OS error; `EINTR` is retried by the callers that loop.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Make sure fds 0, 1 and 2 are open (on /dev/null if not), so that no fd tend
/// opens later lands on them and gets handed to children as their stdio.
pub fn sanitize_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the fd table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            let flags = if fd == 0 {
                libc::O_RDONLY
            } else {
                libc::O_WRONLY
            };
            // SAFETY: a static NUL-terminated path; the new fd takes the lowest slot,
            // which is `fd` because the lower ones are open.
            unsafe { libc::open(c"/dev/null".as_ptr(), flags) };
        }
    }
}

/// Mark every inherited fd above 2 close-on-exec, so that nothing tend's own
/// parent leaked reaches the services (fds tend opens itself are CLOEXEC already).
pub fn cloexec_inherited_fds() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD on an fd number; a closed one just fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// Become the child subreaper, so orphans of services are reparented to tend.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
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

fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}

/// A user resolved before fork: ids and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: Option<libc::uid_t>,
    pub gid: Option<libc::gid_t>,
    pub groups: Option<Vec<libc::gid_t>>,
    pub home: Option<String>,
}

/// Resolve `user` and `group` (names or numbers) to ids. With a user and no group,
/// the user's primary group and supplementary groups are used.
pub fn resolve_credentials(user: Option<&str>, group: Option<&str>) -> io::Result<Credentials> {
    let mut creds = Credentials {
        uid: None,
        gid: None,
        groups: None,
        home: None,
    };
    if let Some(user) = user {
        let entry = lookup_user(user)?;
        creds.uid = Some(entry.uid);
        creds.gid = Some(entry.gid);
        creds.home = entry.home;
        creds.groups = Some(match &entry.name {
            Some(name) => group_list(name, entry.gid)?,
            None => vec![entry.gid],
        });
    }
    if let Some(group) = group {
        let gid = lookup_group(group)?;
        creds.gid = Some(gid);
        if creds.groups.is_none() {
            creds.groups = Some(vec![gid]);
        }
    }
    Ok(creds)
}

struct UserEntry {
    name: Option<CString>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    home: Option<String>,
}

fn not_found(what: &str, name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such {what}: {name}"))
}

fn lookup_user(user: &str) -> io::Result<UserEntry> {
    let by_id = user.parse::<libc::uid_t>().ok();
    let cname = CString::new(user).map_err(|_| not_found("user", user))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain old data.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of pwd.
    let ret = unsafe {
        match by_id {
            Some(uid) => libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            ),
            None => libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            ),
        }
    };
    if result.is_null() {
        return match (by_id, ret) {
            // A bare number without a passwd entry is still a valid uid.
            (Some(uid), _) => Ok(UserEntry {
                name: None,
                uid,
                gid: uid,
                home: None,
            }),
            (None, 0) => Err(not_found("user", user)),
            (None, err) => Err(io::Error::from_raw_os_error(err)),
        };
    }
    // SAFETY: getpw*_r succeeded, so the strings point into buf and are NUL-terminated.
    let (name, home) = unsafe {
        (
            std::ffi::CStr::from_ptr(pwd.pw_name).to_owned(),
            std::ffi::CStr::from_ptr(pwd.pw_dir)
                .to_string_lossy()
                .into_owned(),
        )
    };
    Ok(UserEntry {
        name: Some(name),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        home: Some(home),
    })
}

fn lookup_group(group: &str) -> io::Result<libc::gid_t> {
    if let Ok(gid) = group.parse::<libc::gid_t>() {
        return Ok(gid);
    }
    let cname = CString::new(group).map_err(|_| not_found("group", group))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: group is plain old data.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call.
    let ret = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    match (result.is_null(), ret) {
        (false, _) => Ok(grp.gr_gid),
        (true, 0) => Err(not_found("group", group)),
        (true, err) => Err(io::Error::from_raw_os_error(err)),
    }
}

fn group_list(user: &CString, gid: libc::gid_t) -> io::Result<Vec<libc::gid_t>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..8 {
        let mut n = groups.len() as libc::c_int;
        // SAFETY: groups has room for n entries; n is updated to the needed count.
        let ret = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if ret >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        groups.resize((n.max(0) as usize).max(groups.len() * 2), 0);
    }
    Ok(vec![gid])
}

/// Open `path` again as a new open file description with `O_NONBLOCK`, so that
/// non-blocking writes do not change the flags of the original (shared) fd 2.
pub fn reopen_nonblocking(fd: RawFd) -> io::Result<OwnedFd> {
    let path = CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path.
    let new = check(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
        )
    })?;
    // SAFETY: just opened; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Wait up to `timeout_ms` for `fd` to take more bytes (at exit only: the loop
/// never waits on its log).
pub fn wait_writable(fd: RawFd, timeout_ms: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the timeout bounds the wait.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
}

/// What kind of file `fd` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Socket,
    Other,
}

pub fn file_kind(fd: RawFd) -> FileKind {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } == -1 {
        return FileKind::Other;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::Regular,
        libc::S_IFSOCK => FileKind::Socket,
        _ => FileKind::Other,
    }
}

/// One non-blocking write attempt; `send(MSG_DONTWAIT)` for sockets.
pub fn write_some(fd: RawFd, data: &[u8], socket: bool) -> io::Result<usize> {
    loop {
        // SAFETY: data is valid for data.len() bytes.
        let ret = unsafe {
            if socket {
                libc::send(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            } else {
                libc::write(fd, data.as_ptr().cast(), data.len())
            }
        };
        if ret >= 0 {
            return Ok(ret as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether this process is PID 1 (of its namespace).
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Ask for a pipe capacity of `bytes` (best effort: the kernel caps it at
/// /proc/sys/fs/pipe-max-size and per-user limits).
pub fn grow_pipe(fd: RawFd, bytes: i32) {
    // SAFETY: F_SETPIPE_SZ takes an integer; failure leaves the pipe as it was.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes) };
}

/// Wait for `pid`, which is known to have exited or to be exiting, and reap it.
pub fn reap_blocking(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: a valid out-pointer; `pid` is our child.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret != -1 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just opened both; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `/dev/null` for reading and writing, close-on-exec.
pub fn open_dev_null() -> io::Result<OwnedFd> {
    // SAFETY: a static NUL-terminated path.
    let fd = check(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
    // SAFETY: just opened; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One `read`, retried on `EINTR`.
pub fn read_some(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let ret = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if ret >= 0 {
            return Ok(ret as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `access(path, X_OK)`.
pub fn access_executable(path: &CStr) -> io::Result<()> {
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::access(path.as_ptr(), libc::X_OK) }).map(|_| ())
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (tend holds two pipes per
/// service and uses epoll, so the traditional 1024 is too few for big configs).
/// Returns the limit as it was, for the children to get back.
pub fn raise_nofile() -> Option<libc::rlimit> {
    let mut original = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut original) } == -1 {
        return None;
    }
    if original.rlim_cur < original.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: original.rlim_max,
            rlim_max: original.rlim_max,
        };
        // SAFETY: a valid in-pointer.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    }
    Some(original)
}

/// Whether `signal`'s disposition in this process is `SIG_DFL`. Asks the kernel
/// directly (libc hides the signals it reserves for itself).
pub fn is_default_disposition(signal: libc::c_int) -> bool {
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return true;
    }
    // The kernel's `struct sigaction`: handler, flags, restorer, mask (8 bytes).
    let mut old = [0u64; 4];
    // SAFETY: a NULL new action only queries; `old` is large enough.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            std::ptr::null::<u64>(),
            old.as_mut_ptr(),
            8usize,
        )
    };
    // On error (no such signal) there is nothing to reset.
    ret != 0 || old[0] == libc::SIG_DFL as u64
}
