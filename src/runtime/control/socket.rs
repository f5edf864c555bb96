//! The control socket's file: bound with mode 0600, never over a live tend's
//! socket, never through a symlink, and (for the `/tmp/tend-<uid>` default) in
//! a private folder that is checked first (`paths`).
//!
//! Must not: talk to clients; `control::ControlServer` does.

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use mio::net::UnixListener;

use crate::paths::{self, FolderError};
use crate::sys;

/// Why the control socket could not be set up.
#[derive(Debug)]
pub enum ControlError {
    /// Another tend answers on this socket.
    AlreadyRunning(PathBuf),
    /// Something that is not a socket (a file, a symlink) is in the way.
    NotASocket(PathBuf),
    /// The private folder of the default socket is not safe to use.
    Folder(FolderError),
    Bind(PathBuf, io::Error),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::AlreadyRunning(p) => write!(
                f,
                "another tend is already running on control socket {}",
                p.display()
            ),
            ControlError::NotASocket(p) => write!(
                f,
                "unable to bind control socket {}: the path exists and is not a socket \
                 (a symlink there is never followed)",
                p.display()
            ),
            ControlError::Folder(e) => write!(f, "{e}"),
            ControlError::Bind(p, e) => {
                write!(f, "unable to bind control socket {}: {e}", p.display())
            }
        }
    }
}

impl std::error::Error for ControlError {}

/// The identity of the socket file we bound, so that we only ever remove our own.
pub type Identity = Option<(u64, u64)>;

/// Check the folder, clear a stale socket, and bind `path` with mode 0600.
pub fn bind(path: &Path) -> Result<(UnixListener, Identity), ControlError> {
    paths::prepare_socket_folder(path, sys::effective_uid()).map_err(ControlError::Folder)?;
    // Two tries: something may appear at `path` between the check and the link.
    let mut tries = 2;
    loop {
        clear_stale(path)?;
        // Tighten the umask around bind so the socket is never briefly open to others.
        let old = sys::set_umask(0o177);
        let bound = bind_in_place(path);
        sys::set_umask(old);
        match bound {
            Ok(listener) => return Ok((listener, identity(path))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries > 1 => tries -= 1,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ControlError::AlreadyRunning(path.to_path_buf()));
            }
            Err(e) => return Err(ControlError::Bind(path.to_path_buf(), e)),
        }
    }
}

/// The device and inode of what is at `path` itself (a symlink is not followed).
pub fn identity(path: &Path) -> Identity {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Remove the socket at `path` if it is still the one we bound.
pub fn remove_if_ours(path: &Path, ours: Identity) {
    if ours.is_some() && identity(path) == ours {
        let _ = std::fs::remove_file(path);
    }
}

/// Bind and listen under a temporary name beside `path`, then hard-link it into
/// place: the path appears only once it accepts connections, so a client or a
/// health check that sees it can connect, and another tend's stale check never
/// finds it between `bind` and `listen` (when connecting is refused). A link,
/// unlike a rename, fails when something is at `path` already: a socket another
/// tend bound after our stale check is never replaced.
fn bind_in_place(path: &Path) -> io::Result<UnixListener> {
    let tmp = path.with_file_name(format!(".tend-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&tmp); // unlink: a symlink there is removed, not followed
    let listener = match UnixListener::bind(&tmp) {
        Ok(listener) => listener,
        // E.g. the temporary name does not fit in `sun_path` where `path` does.
        // bind() itself refuses an existing path, symlink or not.
        Err(_) => return UnixListener::bind(path),
    };
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(listener),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // A file system without hard links: bind in place (refuses an existing path).
        Err(_) => {
            drop(listener);
            UnixListener::bind(path)
        }
    }
}

/// Remove a stale socket at `path`; refuse if a live tend answers there, or if
/// anything but a socket (a symlink included) is there.
fn clear_stale(path: &Path) -> Result<(), ControlError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(()); // nothing there
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ControlError::AlreadyRunning(path.to_path_buf())),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            // Unlink the very file we looked at: if it was swapped meanwhile for
            // a symlink, unlink removes the link, never its target.
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ControlError::Bind(path.to_path_buf(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_socket(tag: &str) -> PathBuf {
        let p = PathBuf::from(format!(
            "/tmp/control-sock-{}-{tag}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn binds_0600_refuses_a_live_socket_and_replaces_a_stale_one() {
        let path = temp_socket("bind");
        {
            let _stale = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        }
        let (listener, id) = bind(&path).expect("replaces stale");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Bound under a temporary name and linked: nothing of it is left over.
        let tmp = path.with_file_name(format!(".tend-{}.sock", std::process::id()));
        assert!(!tmp.exists());
        assert!(matches!(bind(&path), Err(ControlError::AlreadyRunning(_))));
        // The live socket is still the same file.
        assert_eq!(identity(&path), id);
        drop(listener);
        remove_if_ours(&path, id);
        assert!(!path.exists(), "removed");
        std::fs::write(&path, "x").expect("file");
        assert!(matches!(bind(&path), Err(ControlError::NotASocket(_))));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_symlink_is_never_followed_or_removed_through() {
        let path = temp_socket("link");
        let target = temp_socket("target");
        // A stale socket elsewhere, pointed to by a symlink at our path.
        {
            let _stale = std::os::unix::net::UnixListener::bind(&target).expect("bind");
        }
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        assert!(matches!(bind(&path), Err(ControlError::NotASocket(_))));
        assert!(target.exists(), "the target was not removed");
        assert!(
            std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()),
            "the symlink is left alone"
        );
        // Removing on exit checks the link itself, not its target.
        remove_if_ours(&path, identity(&target));
        assert!(std::fs::symlink_metadata(&path).is_ok());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&target);
    }

    #[test]
    fn not_ours_is_not_removed() {
        let path = temp_socket("swap");
        let (listener, id) = bind(&path).expect("bind");
        drop(listener);
        // Someone replaced it meanwhile (ours moved away, so its inode lives on
        // and cannot be reused by theirs).
        let moved = temp_socket("moved");
        std::fs::rename(&path, &moved).expect("mv");
        std::fs::write(&path, "theirs").expect("write");
        remove_if_ours(&path, id);
        assert!(path.exists());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&moved);
    }
}
