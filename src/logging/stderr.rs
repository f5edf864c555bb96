//! tend's main stream (its stderr), written without ever blocking the loop.
//!
//! A regular file is written directly; a pipe or terminal through a new open
//! file description with `O_NONBLOCK` (the inherited fd 2 is shared with the
//! parent shell, whose flags must not change); a socket with
//! `send(MSG_DONTWAIT)`. Once nobody reads it any more (`EPIPE`), writes are
//! skipped: supervision goes on.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::sys::{self, FileKind};

pub struct Output {
    fd: RawFd,
    _owned: Option<OwnedFd>,
    socket: bool,
    nonblocking: bool,
    broken: bool,
}

impl Output {
    pub fn stderr() -> Output {
        Output::of(2, None)
    }

    /// Write to `fd` (tests: a pipe or file they read back).
    #[cfg(test)]
    pub fn to(fd: OwnedFd) -> Output {
        let raw = fd.as_raw_fd();
        Output::of(raw, Some(fd))
    }

    fn of(fd: RawFd, owned: Option<OwnedFd>) -> Output {
        let plain = |socket, nonblocking| Output {
            fd,
            _owned: None,
            socket,
            nonblocking,
            broken: false,
        };
        let mut out = match sys::file_kind(fd) {
            FileKind::Regular => plain(false, false),
            FileKind::Socket => plain(true, true),
            FileKind::Other => match sys::reopen_nonblocking(fd) {
                Ok(new) => Output {
                    fd: new.as_raw_fd(),
                    _owned: Some(new),
                    socket: false,
                    nonblocking: true,
                    broken: false,
                },
                Err(_) => plain(false, false),
            },
        };
        if out._owned.is_none() {
            out._owned = owned;
        }
        out
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Whether writes can find it full (then the loop watches for WRITABLE).
    pub fn can_block(&self) -> bool {
        self.nonblocking
    }

    /// Write what it takes now. Returns the bytes done (a broken stream takes
    /// everything) and whether it is full.
    pub fn write(&mut self, mut bytes: &[u8]) -> (usize, bool) {
        let mut done = 0;
        while !bytes.is_empty() {
            if self.broken {
                return (done + bytes.len(), false);
            }
            match sys::write_some(self.fd, bytes, self.socket) {
                Ok(0) => return (done, true),
                Ok(n) => {
                    done += n;
                    bytes = &bytes[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (done, true),
                // EPIPE and friends: nobody reads stderr any more; keep supervising.
                Err(_) => self.broken = true,
            }
        }
        (done, false)
    }
}
