//! Unix datagram sockets for sd_notify: the credentials the kernel attaches to
//! each datagram (`SO_PASSCRED`, `SCM_CREDENTIALS`), and process groups.
//!
//! The notify sockets themselves are `mio::net::UnixDatagram`s (bound,
//! non-blocking, close-on-exec); this module adds what std and mio do not
//! offer: turning `SO_PASSCRED` on, a `recvmsg` that returns the sender's
//! credentials and closes every fd a sender passed (`SCM_RIGHTS`, which tend
//! does not take: no `FDSTORE`), and `getpgid`.
//!
//! Must not: decide who may notify (the core does, from the pid and group
//! returned here).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::check;

/// Make the kernel attach the sender's pid, uid and gid to every datagram
/// `fd` receives from now on. The kernel fills them in from the sender's
/// task, so a sender cannot fake them (a privileged sender may name another
/// pid it could signal; that is the kernel's rule, and systemd's too).
pub fn set_passcred(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid pointer to an int of the size given.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// The sender of a datagram, as the kernel vouches for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// 0 when the sender is in a pid namespace this one cannot see.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// One datagram received by [`recv_with_credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes in the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer (the rest is lost).
    pub truncated: bool,
    /// `None`: the datagram came without credentials (sent before
    /// `SO_PASSCRED` was on, or control data was cut off).
    pub sender: Option<Credentials>,
    /// File descriptors that came with it, all closed already.
    pub fds_closed: usize,
}

/// Control buffer: 8-byte aligned, as `cmsghdr` requires. 256 bytes hold a
/// `ucred` message (32 bytes on 64-bit) and an `SCM_RIGHTS` message of up to
/// 50 fds; fds beyond what fits the kernel discards itself (`MSG_CTRUNC`),
/// closing them.
type Control = [u64; 32];

/// Receive one datagram from the non-blocking socket `fd` into `buf`, without
/// blocking (`WouldBlock` when none is queued), with its sender's credentials.
/// Every fd passed with it is closed before this returns; they are received
/// close-on-exec, so none reaches a child even meanwhile.
pub fn recv_with_credentials(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    const _: () = assert!(std::mem::size_of::<Control>() >= 256);
    let mut control: Control = [0; 32];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of::<Control>() as _;
    let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC;
    let len = loop {
        // SAFETY: `msg` points at `iov` (into `buf`) and `control`, all valid
        // and writable for the lengths given, for the length of the call.
        let ret = unsafe { libc::recvmsg(fd, &mut msg, flags) };
        if ret >= 0 {
            break ret as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut sender = None;
    let mut fds_closed = 0;
    // SAFETY: the kernel filled `control` and set `msg_controllen`; the CMSG
    // macros walk headers within it, and each header's length says how much
    // data follows it. Data is read unaligned; each fd received is ours (the
    // kernel installed it for this call) and closed exactly once here.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = std::ptr::read_unaligned(cmsg);
            let data = libc::CMSG_DATA(cmsg);
            let data_len = (header.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if header.cmsg_level == libc::SOL_SOCKET {
                if header.cmsg_type == libc::SCM_CREDENTIALS
                    && data_len >= std::mem::size_of::<libc::ucred>()
                {
                    let cred = std::ptr::read_unaligned(data as *const libc::ucred);
                    sender = Some(Credentials {
                        pid: cred.pid,
                        uid: cred.uid,
                        gid: cred.gid,
                    });
                } else if header.cmsg_type == libc::SCM_RIGHTS {
                    let count = data_len / std::mem::size_of::<libc::c_int>();
                    for i in 0..count {
                        let at = (data as *const libc::c_int).add(i);
                        let passed = std::ptr::read_unaligned(at);
                        if passed >= 0 {
                            drop(OwnedFd::from_raw_fd(passed));
                            fds_closed += 1;
                        }
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Received {
        len: len.min(buf.len()),
        truncated: len > buf.len() || msg.msg_flags & libc::MSG_TRUNC != 0,
        sender,
        fds_closed,
    })
}

/// The process group of `pid`. Refuses `pid` 0 or below, which would mean
/// tend itself (or a group) instead of a sender the kernel could not name.
/// Works on a zombie: a sender that exited but is not yet reaped still has
/// its group.
pub fn getpgid(pid: i32) -> io::Result<i32> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: getpgid takes a plain pid and only reads the process table.
    check(unsafe { libc::getpgid(pid) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;

    fn receiver() -> (UnixDatagram, UnixDatagram) {
        let (rx, tx) = UnixDatagram::pair().expect("pair");
        rx.set_nonblocking(true).expect("nonblocking");
        set_passcred(rx.as_raw_fd()).expect("SO_PASSCRED");
        (rx, tx)
    }

    /// `sendmsg` with one fd passed along (`SCM_RIGHTS`), as `sd_pid_notify_with_fds`.
    fn send_with_fd(tx: &UnixDatagram, data: &[u8], passed: RawFd) {
        let mut control: Control = [0; 32];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: test code building a valid one-fd SCM_RIGHTS message in
        // `control`, which outlives the call.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            let space = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32);
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::c_int, passed);
            assert!(libc::sendmsg(tx.as_raw_fd(), &msg, 0) >= 0, "sendmsg");
        }
    }

    #[test]
    fn credentials_come_with_every_datagram() {
        let (rx, tx) = receiver();
        let mut buf = [0u8; 64];
        let e = recv_with_credentials(rx.as_raw_fd(), &mut buf).expect_err("empty");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        tx.send(b"READY=1").expect("send");
        let got = recv_with_credentials(rx.as_raw_fd(), &mut buf).expect("received");
        assert_eq!(&buf[..got.len], b"READY=1");
        assert!(!got.truncated);
        assert_eq!(got.fds_closed, 0);
        let sender = got.sender.expect("credentials");
        assert_eq!(sender.pid, std::process::id() as i32);
        assert_eq!(sender.uid, super::super::effective_uid());
    }

    #[test]
    fn a_long_datagram_is_marked_truncated() {
        let (rx, tx) = receiver();
        tx.send(&[b'x'; 100]).expect("send");
        let mut buf = [0u8; 10];
        let got = recv_with_credentials(rx.as_raw_fd(), &mut buf).expect("received");
        assert_eq!(got.len, 10);
        assert!(got.truncated);
    }

    #[test]
    fn passed_fds_are_closed_at_once() {
        let (rx, tx) = receiver();
        let (pipe_rx, pipe_tx) = super::super::pipe().expect("pipe");
        send_with_fd(&tx, b"FDSTORE=1", pipe_tx.as_raw_fd());
        drop(pipe_tx);
        let mut buf = [0u8; 64];
        let got = recv_with_credentials(rx.as_raw_fd(), &mut buf).expect("received");
        assert_eq!(&buf[..got.len], b"FDSTORE=1");
        assert_eq!(got.fds_closed, 1);
        assert!(got.sender.is_some());
        // Our copy and the received one are both closed: EOF, not a hang.
        let mut byte = [0u8; 1];
        assert_eq!(
            super::super::read_some(pipe_rx.as_raw_fd(), &mut byte).expect("read"),
            0
        );
    }

    #[test]
    fn process_groups_are_looked_up_and_pid_0_is_refused() {
        let me = std::process::id() as i32;
        // SAFETY: getpgrp has no arguments and cannot fail.
        let mine = unsafe { libc::getpgrp() };
        assert_eq!(getpgid(me).expect("own group"), mine);
        assert!(getpgid(0).is_err(), "0 would be tend's own group");
        assert!(getpgid(-1).is_err());
        assert!(getpgid(i32::MAX).is_err(), "no such process");
    }
}
