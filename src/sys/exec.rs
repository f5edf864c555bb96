//! Re-executing tend (SPEC §8): the memfd that carries the snapshot, the
//! close-on-exec flag of the fds handed over, what kind of file an fd is,
//! taking the inherited fds over in the new process, the monotonic clock both
//! processes read, blocking signals across the exec, and `execve` itself.
//!
//! Must not: decide which fds are handed over or what a snapshot holds
//! (`runtime::reexec` does); these only make the calls.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::check;

/// An anonymous in-memory file, close-on-exec (the caller clears that flag
/// just for the exec).
pub fn memfd(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: a valid NUL-terminated name and a flag; no other memory.
    let fd = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: just created; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Set or clear `FD_CLOEXEC` on `fd`. One call: it is the only fd flag
/// Linux has, so there is nothing else to keep (thousands of pipes are
/// handed over at a re-exec).
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD changes only the fd's flags, of which FD_CLOEXEC is the
    // only one.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

/// What an fd is, as far as a handed-over fd must be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A pipe (or FIFO).
    Fifo,
    /// A connected (or unconnected) unix stream socket.
    UnixStream,
    /// A listening unix stream socket.
    UnixListener,
    UnixDatagram,
    /// A listening TCP socket (IPv4 or IPv6).
    TcpListener,
    Regular,
    Other,
}

/// The kind of file `fd` is; an error when it is not open.
pub fn fd_kind(fd: RawFd) -> io::Result<FdKind> {
    // SAFETY: stat is plain old data; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => FdKind::Fifo,
        libc::S_IFREG => FdKind::Regular,
        libc::S_IFSOCK => {
            let domain = socket_option(fd, libc::SO_DOMAIN)?;
            let kind = socket_option(fd, libc::SO_TYPE)?;
            let listening = socket_option(fd, libc::SO_ACCEPTCONN)? != 0;
            match (domain, kind, listening) {
                (libc::AF_UNIX, libc::SOCK_STREAM, false) => FdKind::UnixStream,
                (libc::AF_UNIX, libc::SOCK_STREAM, true) => FdKind::UnixListener,
                (libc::AF_UNIX, libc::SOCK_DGRAM, _) => FdKind::UnixDatagram,
                (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM, true) => FdKind::TcpListener,
                _ => FdKind::Other,
            }
        }
        _ => FdKind::Other,
    })
}

fn socket_option(fd: RawFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a writable int and `len` says its size.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Take ownership of fds inherited across the exec, in the order given, and
/// make them close-on-exec again (they were inheritable for the exec only).
/// Refuses (naming the fd) one that is not open, 0 to 2, or listed twice.
///
/// Call it first thing in the new process, before anything could open an fd:
/// then every open fd of these numbers is one the old process left open for
/// this one, which nothing else in this process owns.
pub fn adopt_inherited(fds: &[RawFd]) -> Result<Vec<OwnedFd>, (RawFd, io::Error)> {
    let mut seen = HashSet::new();
    for &fd in fds {
        if fd <= 2 || !seen.insert(fd) {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "listed twice or a stdio fd");
            return Err((fd, e));
        }
        // The check that it is open, and the flag, in one call.
        set_cloexec(fd, true).map_err(|e| (fd, e))?;
    }
    // SAFETY: each fd is open, listed once and above stdio, and (see the doc)
    // was opened by the old process for this one: nothing else owns it.
    Ok(fds
        .iter()
        .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect())
}

/// `CLOCK_MONOTONIC` now: the clock `std::time::Instant` reads on Linux, and
/// one that goes on across an exec, so both processes can measure its gap.
pub fn monotonic() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Block every signal: across an exec they stay pending (the mask is kept)
/// until the new image has its handlers; [`super::signal::unblock_all`]
/// undoes it if the exec fails.
pub fn block_signals() -> io::Result<()> {
    let all: u64 = !0;
    // SAFETY: rt_sigprocmask with a valid 8-byte set and no old set.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replace this process's image by `path` with `argv` and `env`. Returns
/// only if that failed, with the reason.
pub fn execve(path: &CStr, argv: &[CString], env: &[CString]) -> io::Error {
    let argv_ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let env_ptrs: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: NUL-terminated strings in NULL-terminated arrays, all alive for
    // the call; execve returns only on failure.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_memfd_holds_what_is_written_and_is_close_on_exec() {
        let fd = memfd(c"test").expect("memfd");
        let raw = fd.as_raw_fd();
        assert_eq!(fd_kind(raw).expect("kind"), FdKind::Regular);
        let mut file = std::fs::File::from(fd);
        file.write_all(b"{\"version\":1}").expect("write");
        file.seek(SeekFrom::Start(0)).expect("seek");
        let mut back = String::new();
        file.read_to_string(&mut back).expect("read");
        assert_eq!(back, "{\"version\":1}");
        // SAFETY: F_GETFD only queries.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        set_cloexec(raw, false).expect("clear");
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::fcntl(raw, libc::F_GETFD) } & libc::FD_CLOEXEC,
            0
        );
        set_cloexec(raw, true).expect("set");
    }

    #[test]
    fn kinds_are_told_apart() {
        let (rx, _tx) = super::super::pipe().expect("pipe");
        assert_eq!(fd_kind(rx.as_raw_fd()).expect("pipe"), FdKind::Fifo);
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert_eq!(fd_kind(a.as_raw_fd()).expect("stream"), FdKind::UnixStream);
        let (d, _e) = std::os::unix::net::UnixDatagram::pair().expect("pair");
        assert_eq!(fd_kind(d.as_raw_fd()).expect("dgram"), FdKind::UnixDatagram);
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        assert_eq!(fd_kind(tcp.as_raw_fd()).expect("tcp"), FdKind::TcpListener);
        let path = format!("/tmp/reexec-kind-{}.sock", std::process::id());
        let _ = std::fs::remove_file(&path);
        let unix = std::os::unix::net::UnixListener::bind(&path).expect("unix");
        assert_eq!(
            fd_kind(unix.as_raw_fd()).expect("unix"),
            FdKind::UnixListener
        );
        let _ = std::fs::remove_file(&path);
        assert!(fd_kind(-1).is_err());
    }

    #[test]
    fn adopting_refuses_stdio_duplicates_and_closed_fds() {
        let refused = |fds: &[RawFd]| adopt_inherited(fds).map(|v| v.len()).map_err(|e| e.0);
        assert_eq!(refused(&[1]), Err(1));
        let (rx, _tx) = super::super::pipe().expect("pipe");
        let raw = rx.as_raw_fd();
        // Refused before anything is taken: `rx` still owns it alone.
        assert_eq!(refused(&[raw, raw]), Err(raw));
        // Far above anything open (never a number another test may hold).
        assert_eq!(refused(&[1_000_000]), Err(1_000_000));
    }

    #[test]
    fn the_monotonic_clock_moves_with_std() {
        let (a, std_a) = (monotonic(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (b, std_b) = (monotonic(), std::time::Instant::now());
        let ours = b - a;
        let theirs = std_b - std_a;
        let skew = ours.abs_diff(theirs);
        assert!(skew < Duration::from_millis(5), "{ours:?} vs {theirs:?}");
    }
}
