//! Where the control socket is (SPEC §1), for `tend run` and the client alike, and
//! the private folder it lives in when nothing better is available.
//!
//! Default socket: `/run/tend.sock` for root; for anyone else
//! `$XDG_RUNTIME_DIR/tend.sock` (a folder the login manager made private to the
//! user), else `/tmp/tend-<uid>/tend.sock`. `/tmp` is shared with every user, so
//! that last folder is created with mode 0700 and checked before each bind: it
//! must be a real folder (not a symlink), owned by us, and closed to others.
//! Otherwise someone else could plant a socket there and answer our clients, or
//! read our requests.
//!
//! Root ignores `$XDG_RUNTIME_DIR` on purpose: `sudo -E` carries a user's value
//! over, and root's socket must not live in a folder that user controls.
//!
//! Must not: bind or connect; `runtime::control` binds, `client` connects.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::config::Config;

/// Root's default control socket.
pub const ROOT_SOCKET: &str = "/run/tend.sock";

/// The control socket when neither `-s`, `$TEND_SOCKET` nor the config names
/// one, for a process whose effective uid is `uid`.
pub fn default_control_socket(env: &dyn Fn(&str) -> Option<OsString>, uid: u32) -> PathBuf {
    if uid == 0 {
        return PathBuf::from(ROOT_SOCKET);
    }
    // The XDG spec says a relative value is invalid and must be ignored.
    if let Some(dir) = env("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_absolute()) {
        return PathBuf::from(dir).join("tend.sock");
    }
    private_dir(uid).join("tend.sock")
}

/// `/tmp/tend-<uid>`: the folder of the last-resort default socket.
pub fn private_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/tend-{uid}"))
}

/// The control socket of `config` for this process: its `control_socket`, else
/// the default; `None` when the config disables it with `""`.
pub fn configured_socket(config: &Config) -> Option<PathBuf> {
    match &config.control_socket {
        Some(path) if path.as_os_str().is_empty() => None,
        Some(path) => Some(path.clone()),
        None => Some(default_control_socket(
            &|k| std::env::var_os(k),
            crate::sys::effective_uid(),
        )),
    }
}

/// Why the private socket folder cannot be used.
#[derive(Debug)]
pub enum FolderError {
    /// A symlink is at its path (someone may point it anywhere).
    Symlink(PathBuf),
    NotAFolder(PathBuf),
    /// Owned by another uid, who could replace our socket.
    Owner {
        dir: PathBuf,
        owner: u32,
        uid: u32,
    },
    /// Group or others have some access.
    Mode {
        dir: PathBuf,
        mode: u32,
    },
    Create(PathBuf, io::Error),
}

impl fmt::Display for FolderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderError::Symlink(d) => write!(
                f,
                "the control socket folder {} is a symlink; remove it or set control_socket",
                d.display()
            ),
            FolderError::NotAFolder(d) => write!(
                f,
                "the control socket folder {} exists and is not a folder",
                d.display()
            ),
            FolderError::Owner { dir, owner, uid } => write!(
                f,
                "the control socket folder {} belongs to uid {owner}, not to uid {uid}; \
                 remove it or set control_socket",
                dir.display()
            ),
            FolderError::Mode { dir, mode } => write!(
                f,
                "the control socket folder {} has mode {mode:04o}; it must be 0700 \
                 (chmod 700 it, or remove it)",
                dir.display()
            ),
            FolderError::Create(d, e) => {
                write!(
                    f,
                    "unable to create the control socket folder {}: {e}",
                    d.display()
                )
            }
        }
    }
}

impl std::error::Error for FolderError {}

/// Before binding `socket`: when it is in this uid's `/tmp/tend-<uid>`, create
/// that folder with mode 0700 if missing and check it. Other paths are the
/// user's choice and are left as they are.
pub fn prepare_socket_folder(socket: &Path, uid: u32) -> Result<(), FolderError> {
    let dir = private_dir(uid);
    if uid == 0 || socket.parent() != Some(dir.as_path()) {
        return Ok(());
    }
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        // Already there (ours from an earlier run, or planted): checked below.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(FolderError::Create(dir, e)),
    }
    check_private_folder(&dir, uid)
}

/// The folder at `dir` is a folder (a symlink is not followed), owned by `uid`,
/// with no access for group or others.
pub fn check_private_folder(dir: &Path, uid: u32) -> Result<(), FolderError> {
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| FolderError::Create(dir.to_path_buf(), e))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(FolderError::Symlink(dir.to_path_buf()));
    }
    if !kind.is_dir() {
        return Err(FolderError::NotAFolder(dir.to_path_buf()));
    }
    if meta.uid() != uid {
        return Err(FolderError::Owner {
            dir: dir.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FolderError::Mode {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn env_with(xdg: Option<&'static str>) -> impl Fn(&str) -> Option<OsString> {
        move |k: &str| {
            (k == "XDG_RUNTIME_DIR")
                .then_some(xdg)
                .flatten()
                .map(OsString::from)
        }
    }

    #[test]
    fn default_socket_by_uid_and_xdg() {
        let xdg = env_with(Some("/run/user/5"));
        let none = env_with(None);
        assert_eq!(
            default_control_socket(&xdg, 5),
            PathBuf::from("/run/user/5/tend.sock")
        );
        assert_eq!(
            default_control_socket(&none, 5),
            PathBuf::from("/tmp/tend-5/tend.sock")
        );
        // Root never uses a user's runtime folder.
        assert_eq!(default_control_socket(&xdg, 0), PathBuf::from(ROOT_SOCKET));
        assert_eq!(default_control_socket(&none, 0), PathBuf::from(ROOT_SOCKET));
        // Empty or relative values are ignored, as the XDG spec says.
        for bad in ["", "run/user/5"] {
            let env = move |k: &str| (k == "XDG_RUNTIME_DIR").then(|| OsString::from(bad));
            assert_eq!(
                default_control_socket(&env, 7),
                PathBuf::from("/tmp/tend-7/tend.sock")
            );
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let p = PathBuf::from(format!("/tmp/control-paths-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
        p
    }

    fn me() -> u32 {
        crate::sys::effective_uid()
    }

    #[test]
    fn private_folder_checks() {
        let dir = temp("dir");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(check_private_folder(&dir, me()).is_ok());
        // Another owner (compared against a uid that is not the owner's).
        let other = me().wrapping_add(4242);
        let e = check_private_folder(&dir, other).expect_err("owner");
        assert!(matches!(e, FolderError::Owner { .. }), "{e}");
        assert!(e.to_string().contains(&dir.display().to_string()));
        for loose in [0o755, 0o750, 0o701, 0o770, 0o1777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(loose)).expect("chmod");
            let e = check_private_folder(&dir, me()).expect_err("mode");
            assert!(matches!(e, FolderError::Mode { .. }), "{loose:o}: {e}");
            assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let link = temp("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let e = check_private_folder(&link, me()).expect_err("symlink");
        assert!(matches!(e, FolderError::Symlink(_)), "{e}");
        let file = temp("file");
        std::fs::write(&file, "x").expect("file");
        assert!(matches!(
            check_private_folder(&file, me()),
            Err(FolderError::NotAFolder(_))
        ));
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_the_default_private_folder_is_prepared() {
        // Paths elsewhere are the user's business; nothing is created.
        let elsewhere = temp("elsewhere").join("tend.sock");
        assert!(prepare_socket_folder(&elsewhere, 4321).is_ok());
        assert!(!elsewhere.parent().is_some_and(Path::exists));
        assert!(prepare_socket_folder(Path::new("/run/tend.sock"), 0).is_ok());
    }
}
