//! File descriptors and files: stdio sanitizing at start, pipes, `/dev/null`,
//! one-shot reads and writes that never block on their own, `access`, and the
//! umask.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::check;

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
            // which is `fd` because the lower ones are open. It stays open for
            // good, so nothing owns it.
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
        // SAFETY: F_GETFD/F_SETFD on an fd number change only its close-on-exec
        // flag; a closed one (the listing's own) just fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// Open `fd`'s file again as a new open file description with `O_NONBLOCK`, so
/// that non-blocking writes do not change the flags of the original (shared) fd.
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

/// What kind of file `fd` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Socket,
    Other,
}

pub fn file_kind(fd: RawFd) -> FileKind {
    // SAFETY: stat is plain old data; all zeroes is a valid value.
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

/// Wait at most `limit` for `fd` to take more bytes (`poll` for `POLLOUT`).
/// Only for the last flush at exit: it blocks.
pub fn wait_writable(fd: RawFd, limit: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = limit.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the length of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

/// Ask for a pipe capacity of `bytes` (best effort: the kernel caps it at
/// /proc/sys/fs/pipe-max-size and per-user limits).
pub fn grow_pipe(fd: RawFd, bytes: i32) {
    // SAFETY: F_SETPIPE_SZ takes an integer; failure leaves the pipe as it was.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes) };
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

/// `access(path, X_OK)`: whether `path` exists and has an execute bit for tend.
pub fn access_executable(path: &CStr) -> io::Result<()> {
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::access(path.as_ptr(), libc::X_OK) }).map(drop)
}

/// Set the file creation mask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask only changes this process's file creation mask and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_pipe_carries_bytes_and_reports_eof() {
        let (rx, tx) = pipe().expect("pipe");
        assert_eq!(write_some(tx.as_raw_fd(), b"abc", false).expect("write"), 3);
        drop(tx);
        let mut buf = [0u8; 8];
        assert_eq!(read_some(rx.as_raw_fd(), &mut buf).expect("read"), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(read_some(rx.as_raw_fd(), &mut buf).expect("eof"), 0);
    }

    #[test]
    fn file_kinds_are_told_apart() {
        let null = open_dev_null().expect("open");
        assert_eq!(file_kind(null.as_raw_fd()), FileKind::Other);
        assert_eq!(file_kind(-1), FileKind::Other);
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert_eq!(file_kind(a.as_raw_fd()), FileKind::Socket);
    }
}

/// Who is at the other end of a connected unix socket: `SO_PEERCRED`, taken by
/// the kernel when the peer called `connect` or `listen` (so it cannot be faked
/// by what the peer sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

pub fn peer_credentials(fd: RawFd) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable ucred and `len` says its size.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(PeerCredentials {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}
