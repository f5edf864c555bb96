//! The system layer: every `unsafe` of tend, behind small safe functions.
//!
//! Each function wraps one or a few libc calls, checks their result and returns
//! an `io::Result` with the OS error (or a plain value where the call cannot
//! fail); each `unsafe` block carries a `// SAFETY:` comment saying why it holds.
//! The rest of the crate is `#![forbid(unsafe_code)]`: when it needs a new
//! system call, the wrapper goes here.
//!
//! By topic:
//! - [`fd`]: stdio sanitizing, pipes, `/dev/null`, non-blocking reads and writes,
//!   the umask.
//! - [`process`]: the subreaper, process-group signals, reaping, the euid.
//! - [`user`]: user and group names to ids (NSS lookups; never in the loop's hot
//!   path: [`crate::runtime::launch`] does them once per service).
//! - [`rlimit`]: resource limits for tend and for its services.
//! - [`signal`]: signal masks and dispositions, and the handlers tend installs.
//! - [`socket`]: notify sockets: `SO_PASSCRED`, `recvmsg` with the sender's
//!   credentials (passed fds closed at once), `getpgid`.
//! - [`spawn`]: the `clone`d child between clone and exec.
//! - [`scan`]: the SSE2 newline scanner behind [`crate::lines`].
//! - [`cgroup`]: cgroup2 checks, a signal to one process, inotify watches.
//! - [`term`]: `tend top`'s terminal in non-canonical mode, restored on drop.
//! - [`exec`]: `tend reexec`: the snapshot's memfd, close-on-exec flags, fd
//!   kinds, adopting inherited fds, the monotonic clock, `execve`.
//!
//! Must not: decide anything. Callers own the policy; this layer only makes the
//! calls and says what happened. It imports nothing of the crate but the plain
//! [`crate::machine::ExitStatus`] that a reap returns.

#![allow(unsafe_code)]

pub mod cgroup;
pub mod exec;
pub mod fd;
pub mod process;
pub mod rlimit;
pub mod scan;
pub mod signal;
pub mod socket;
pub mod spawn;
pub mod term;
pub mod user;

pub use fd::{
    FileKind, PeerCredentials, access_executable, cloexec_inherited_fds, file_kind, grow_pipe,
    open_dev_null, peer_credentials, pipe, read_some, reopen_nonblocking, sanitize_std_fds,
    set_umask, wait_writable, write_some,
};
pub use process::{
    clock_ticks_per_second, effective_uid, is_pid1, kill_group, page_size, peek_exited, reap,
    reap_blocking, set_child_subreaper,
};
pub use rlimit::raise_nofile;
pub use user::resolve_credentials;

use std::io;

/// `-1` → the last OS error; `EINTR` is retried by the callers that loop.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
