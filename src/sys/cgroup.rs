//! What cgroup v2 support needs from the kernel beyond plain file reads and
//! writes: telling a cgroup2 folder from any other (`statfs`), write access
//! (`access`), a signal to one process (`kill`), and an inotify instance that
//! watches `cgroup.events` files for the kernel's "file modified" event.
//!
//! Must not: know what a service is, or what the files say (that is
//! `runtime::cgroup`'s); the inotify records are only cut into `(wd, mask)`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::check;

/// `CGROUP2_SUPER_MAGIC` (linux/magic.h): the `f_type` of a cgroup2 mount.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Whether `path` is on a cgroup v2 file system.
pub fn is_cgroup2(path: &CStr) -> io::Result<bool> {
    // SAFETY: statfs is plain old data; all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a valid, writable out-pointer.
    check(unsafe { libc::statfs(path.as_ptr(), &mut st) })?;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    Ok(st.f_type as i64 == CGROUP2_SUPER_MAGIC)
}

/// `access(path, W_OK)`: whether tend may write to `path` (create folders in it,
/// for a folder).
pub fn access_writable(path: &CStr) -> io::Result<()> {
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::access(path.as_ptr(), libc::W_OK) }).map(drop)
}

/// Send `signal` to the single process `pid` (never a group, never everyone).
pub fn kill_process(pid: i32, signal: i32) -> io::Result<()> {
    if pid <= 1 {
        // 0, -1 and negative pids address groups or everyone; 1 is init.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill has no memory arguments.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// `IN_MODIFY`: the event the kernel raises when a `cgroup.events` value changes.
pub const IN_MODIFY: u32 = libc::IN_MODIFY;
/// `IN_IGNORED`: the watch is gone (removed, or its file deleted).
pub const IN_IGNORED: u32 = libc::IN_IGNORED;
/// `IN_Q_OVERFLOW`: events were lost; every watch must be checked again.
pub const IN_Q_OVERFLOW: u32 = libc::IN_Q_OVERFLOW;

/// A non-blocking, close-on-exec inotify instance.
#[derive(Debug)]
pub struct Inotify {
    fd: OwnedFd,
}

impl Inotify {
    pub fn new() -> io::Result<Inotify> {
        // SAFETY: inotify_init1 takes flags only.
        let fd = check(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
        // SAFETY: just created; nothing else owns it.
        Ok(Inotify {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watch `path` for `IN_MODIFY`; returns the watch descriptor (the same
    /// one again for a file already watched).
    pub fn watch_modify(&self, path: &CStr) -> io::Result<i32> {
        // SAFETY: a valid NUL-terminated path; the fd is ours.
        check(unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), IN_MODIFY) })
    }

    /// Stop a watch (an unknown or already removed one is ignored).
    pub fn unwatch(&self, wd: i32) {
        // SAFETY: integer arguments only; a stale wd just fails with EINVAL.
        unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd) };
    }

    /// One non-blocking read of event records into `buf` (`WouldBlock` when
    /// there are none). `buf` must hold at least one record with a name
    /// (`size_of::<inotify_event>() + NAME_MAX + 1` bytes).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        super::fd::read_some(self.fd.as_raw_fd(), buf)
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The `(wd, mask)` of every whole `struct inotify_event` record in `bytes`
/// (a read of an inotify fd); a torn record at the end is left out.
pub fn inotify_records(bytes: &[u8]) -> Vec<(i32, u32)> {
    const HEADER: usize = 16; // wd, mask, cookie, len: four 32-bit fields
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at.saturating_add(HEADER)) {
        let field = |i: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&header[i * 4..i * 4 + 4]);
            word
        };
        let wd = i32::from_ne_bytes(field(0));
        let mask = u32::from_ne_bytes(field(1));
        let len = u32::from_ne_bytes(field(3)) as usize;
        let Some(end) = at.checked_add(HEADER).and_then(|a| a.checked_add(len)) else {
            break;
        };
        if end > bytes.len() {
            break;
        }
        out.push((wd, mask));
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(wd: i32, mask: u32, name: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&wd.to_ne_bytes());
        r.extend_from_slice(&mask.to_ne_bytes());
        r.extend_from_slice(&0u32.to_ne_bytes());
        r.extend_from_slice(&(name.len() as u32).to_ne_bytes());
        r.extend_from_slice(name);
        r
    }

    #[test]
    fn inotify_records_are_cut_whole() {
        let mut bytes = record(3, IN_MODIFY, b"");
        bytes.extend(record(4, IN_IGNORED, b"name\0\0\0\0"));
        bytes.extend(record(5, IN_MODIFY, b""));
        assert_eq!(
            inotify_records(&bytes),
            vec![(3, IN_MODIFY), (4, IN_IGNORED), (5, IN_MODIFY)]
        );
        // Torn at every length: never a panic, never a made-up record.
        for cut in 0..bytes.len() {
            let got = inotify_records(&bytes[..cut]);
            assert!(got.len() <= 3);
            assert!(got.iter().all(|(wd, _)| (3..=5).contains(wd)), "{got:?}");
        }
        // A huge `len` field is a torn record, not an overflow.
        let mut huge = record(1, IN_MODIFY, b"");
        huge[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(inotify_records(&huge).is_empty());
    }

    #[test]
    fn cgroup2_is_told_from_other_file_systems() {
        assert!(!is_cgroup2(c"/proc").expect("statfs /proc"));
        assert!(is_cgroup2(c"/no/such/folder").is_err());
        assert!(kill_process(1, 0).is_err() && kill_process(0, 0).is_err());
        assert!(kill_process(-5, 0).is_err());
    }

    #[test]
    fn inotify_reports_a_modified_file() {
        let path = std::env::temp_dir().join(format!("sys-inotify-{}", std::process::id()));
        std::fs::write(&path, "a").expect("write");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("cstr");
        let inotify = Inotify::new().expect("inotify");
        let wd = inotify.watch_modify(&c).expect("watch");
        assert_eq!(inotify.watch_modify(&c).expect("again"), wd);
        let mut buf = [0u8; 4096];
        let none = inotify.read(&mut buf).expect_err("nothing yet");
        assert_eq!(none.kind(), io::ErrorKind::WouldBlock);
        std::fs::write(&path, "b").expect("write");
        let n = inotify.read(&mut buf).expect("an event");
        assert!(inotify_records(&buf[..n]).contains(&(wd, IN_MODIFY)));
        inotify.unwatch(wd);
        inotify.unwatch(wd); // twice: ignored
        let _ = std::fs::remove_file(&path);
    }
}
