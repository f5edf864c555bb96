//! Per-service notify sockets (SPEC §4 `notify`): one unix datagram socket per
//! service with `notify` readiness, its path in the service's `NOTIFY_SOCKET`.
//!
//! Where: a folder of this tend's own, `/run/tend.<pid>` for root, else
//! `$XDG_RUNTIME_DIR/tend.<pid>` or `/tmp/tend-<uid>/notify.<pid>` (in the
//! private folder `paths` checks), each socket `<name>.sock` in it: at most
//! 105 bytes, within `sun_path`'s 108. The folder has mode 0711 and each
//! socket 0666: a service running as another `user` can reach its socket by
//! its path, but nobody can list the folder or put anything in it. Access
//! control is the sender's credentials, which the kernel attaches to every
//! datagram (`SO_PASSCRED`): the core accepts a message only from the
//! service's main pid or a member of its process group.
//!
//! Receiving: every socket is read until `WouldBlock`, at most
//! [`DATAGRAMS_PER_TURN`] datagrams a turn (a socket with more left stays on
//! the `ready` list), so a stranger flooding one cannot stall the loop. Each
//! datagram is parsed by `codec::notify` (its problems logged at warn once per
//! socket, then at debug), the sender's process group and the `MAINPID=`
//! pid's are looked up, and an `Event::Notified` comes out. Fds passed with a
//! datagram are closed at once: that answers `BARRIER=1` (`sd_notify_barrier`,
//! which systemd-notify sends after each message), and tend keeps no fds
//! (`FDSTORE=1` is not supported). A rejected sender is logged
//! once, then counted, with one line a minute at most (a deadline, no tick).
//!
//! Must not: judge a sender (the core does), or block.
//!
//! Read first: [`NotifySockets::receive`], then `Runtime::sync_notify`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, warn};
use mio::net::UnixDatagram;
use mio::{Interest, Registry, Token};

use super::Runtime;
use super::tokens::Tokens;
use crate::codec::notify::{self as codec, MAX_DATAGRAM};
use crate::config::Readiness;
use crate::machine::{Event, Notice, Pid, Sender, ServiceId};
use crate::sys;

mod handover;
pub use handover::NotifySnapshot;

/// Datagrams read from one socket per turn before the others get theirs.
pub const DATAGRAMS_PER_TURN: usize = 64;

/// After a rejection is logged, further ones for that service are counted
/// and reported at most this often.
pub const REJECTION_REPORT: Duration = Duration::from_secs(60);

/// The folder of this tend's notify sockets, for effective uid `uid` and pid
/// `pid` (see the module doc).
pub fn default_dir(
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    uid: u32,
    pid: u32,
) -> PathBuf {
    if uid == 0 {
        return PathBuf::from(format!("/run/tend.{pid}"));
    }
    // Only a short, absolute runtime folder: the longest socket name must fit.
    const LONGEST_NAME: usize = 64 + ".sock".len();
    if let Some(xdg) = env("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_absolute()) {
        let dir = PathBuf::from(xdg).join(format!("tend.{pid}"));
        if dir.as_os_str().len() + 1 + LONGEST_NAME < 108 {
            return dir;
        }
    }
    crate::paths::private_dir(uid).join(format!("notify.{pid}"))
}

/// Where the socket of service `name` is, in `dir`. The suffix keeps the
/// names `.` and `..` (valid service names) from meaning folders.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// A `BARRIER=1` message (`sd_notify_barrier(3)`).
fn is_barrier(data: &[u8]) -> bool {
    let body = data.strip_suffix(b"\0").unwrap_or(data);
    body.split(|&b| b == b'\n' || b == b'\r')
        .any(|line| line == b"BARRIER=1")
}

/// One service's socket.
struct Socket {
    name: Arc<str>,
    /// `None` until the core has a service of this name (a reload binds the
    /// sockets of new services before it hands them to the core).
    service: Option<ServiceId>,
    path: PathBuf,
    socket: UnixDatagram,
    /// On the `ready` list.
    queued: bool,
    /// Its parse problems were logged once at warn.
    problems_logged: bool,
    /// A sender passing fds was told once that they are closed.
    fds_logged: bool,
}

/// Rejected senders of one service since the last report.
struct Rejections {
    report_at: Instant,
    count: u64,
}

/// Every notify socket, and their folder.
pub struct NotifySockets {
    dir: PathBuf,
    /// The folder is there (made or checked by us).
    prepared: bool,
    sockets: HashMap<Token, Socket>,
    by_name: HashMap<Arc<str>, Token>,
    /// Sockets that may have datagrams without a new edge coming.
    ready: VecDeque<Token>,
    /// One datagram, plus one byte so an overlong one shows up as overlong.
    buf: Box<[u8]>,
    rejections: HashMap<Arc<str>, Rejections>,
}

impl NotifySockets {
    /// Sockets in `dir`; nothing is created before the first [`open`](Self::open).
    pub fn new(dir: PathBuf) -> NotifySockets {
        NotifySockets {
            dir,
            prepared: false,
            sockets: HashMap::new(),
            by_name: HashMap::new(),
            ready: VecDeque::new(),
            buf: vec![0u8; MAX_DATAGRAM + 1].into_boxed_slice(),
            rejections: HashMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make the folder (mode 0711), or take over one left by a tend that had
    /// this pid before and died: it must be a real folder owned by us, and
    /// whatever is in it is stale.
    fn prepare(&mut self) -> io::Result<()> {
        if self.prepared {
            return Ok(());
        }
        let uid = sys::effective_uid();
        if let Some(parent) = self.dir.parent()
            && parent == crate::paths::private_dir(uid)
        {
            crate::paths::prepare_socket_folder(&parent.join("tend.sock"), uid)
                .map_err(io::Error::other)?;
        }
        match std::fs::DirBuilder::new().mode(0o711).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(&self.dir)?;
                if !meta.file_type().is_dir() || meta.uid() != uid {
                    return Err(io::Error::other(format!(
                        "{} exists and is not a folder of uid {uid}",
                        self.dir.display()
                    )));
                }
                for entry in std::fs::read_dir(&self.dir)?.flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            Err(e) => return Err(e),
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o711))?;
        self.prepared = true;
        Ok(())
    }

    /// The socket of service `name` exists and is watched (bound now if it
    /// was not); `service`, when known, is the core's id for it.
    pub fn open(
        &mut self,
        registry: &Registry,
        tokens: &mut Tokens,
        name: &Arc<str>,
        service: Option<ServiceId>,
    ) -> io::Result<()> {
        if let Some(token) = self.by_name.get(name) {
            if let Some(socket) = self.sockets.get_mut(token)
                && service.is_some()
            {
                socket.service = service;
            }
            return Ok(());
        }
        self.prepare()?;
        let path = socket_path(&self.dir, name);
        // Ours, in our own folder: a stale one is replaced.
        let _ = std::fs::remove_file(&path);
        let mut socket = UnixDatagram::bind(&path)?;
        let ready = sys::socket::set_passcred(socket.as_raw_fd())
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)))
            .and_then(|()| {
                let token = tokens.next();
                registry
                    .register(&mut socket, token, Interest::READABLE)
                    .map(|()| token)
            });
        let token = match ready {
            Ok(token) => token,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        self.by_name.insert(name.clone(), token);
        self.sockets.insert(
            token,
            Socket {
                name: name.clone(),
                service,
                path,
                socket,
                queued: false,
                problems_logged: false,
                fds_logged: false,
            },
        );
        Ok(())
    }

    /// Close and remove the socket of `name`, if it has one.
    pub fn close(&mut self, registry: &Registry, name: &str) {
        let Some(token) = self.by_name.remove(name) else {
            return;
        };
        if let Some(mut socket) = self.sockets.remove(&token) {
            let _ = registry.deregister(&mut socket.socket);
            let _ = std::fs::remove_file(&socket.path);
        }
        self.rejections.remove(name);
        // A stale token on `ready` is skipped: tokens are never reused.
    }

    /// Names of the sockets open now, with the service each belongs to.
    pub fn open_names(&self) -> Vec<(Arc<str>, Option<ServiceId>)> {
        let sockets = self.sockets.values();
        sockets.map(|s| (s.name.clone(), s.service)).collect()
    }

    pub fn owns(&self, token: mio::Token) -> bool {
        self.sockets.contains_key(&token)
    }

    /// A readiness event: read it this turn.
    pub fn readable(&mut self, token: Token) {
        if let Some(socket) = self.sockets.get_mut(&token)
            && !socket.queued
        {
            socket.queued = true;
            self.ready.push_back(token);
        }
    }

    /// Some socket has datagrams to read without waiting for an event.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    #[cfg(test)]
    fn socket_problems_logged(&self, token: Token) -> bool {
        self.sockets.get(&token).is_some_and(|s| s.problems_logged)
    }

    /// The socket of `service`, to drain before its exit is reported.
    pub fn token_of(&self, service: ServiceId) -> Option<Token> {
        let mut sockets = self.sockets.iter();
        sockets
            .find(|(_, s)| s.service == Some(service))
            .map(|(t, _)| *t)
    }

    /// Read every socket on the `ready` list, each up to its budget.
    /// `find`: the core's id for a name, for sockets bound before it knew it.
    pub fn pump(&mut self, find: &dyn Fn(&str) -> Option<ServiceId>) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            let Some(socket) = self.sockets.get_mut(&token) else {
                continue;
            };
            socket.queued = false;
            if !self.receive(token, DATAGRAMS_PER_TURN, find, &mut events) {
                self.readable(token);
            }
        }
        events
    }

    /// Read up to `budget` datagrams from one socket into `events`; `true`
    /// once it is drained (`WouldBlock`), `false` if the budget ran out first.
    pub fn receive(
        &mut self,
        token: Token,
        budget: usize,
        find: &dyn Fn(&str) -> Option<ServiceId>,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some(socket) = self.sockets.get_mut(&token) else {
            return true;
        };
        if socket.service.is_none() {
            socket.service = find(&socket.name);
        }
        let mut rejected: Vec<Option<i32>> = Vec::new();
        let mut drained = false;
        for _ in 0..budget {
            let received = match sys::socket::recv_with_credentials(
                socket.socket.as_raw_fd(),
                &mut self.buf,
            ) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    debug!("{}: notify socket: {e}", socket.name);
                    drained = true;
                    break;
                }
            };
            let data = self.buf.get(..received.len).unwrap_or(&[]);
            // `sd_notify_barrier` (systemd-notify sends one after every
            // message) passes an fd and waits for its close: closing it is
            // the whole protocol. Other fds (`FDSTORE=1`) are not kept.
            if received.fds_closed > 0 && !is_barrier(data) && !socket.fds_logged {
                socket.fds_logged = true;
                warn!(
                    "{}: closed {} file descriptors sent with a notify message \
                     (tend does not keep them: no FDSTORE)",
                    socket.name, received.fds_closed
                );
            }
            let Some(sender) = received.sender else {
                rejected.push(None);
                continue;
            };
            let parsed = codec::parse(data);
            for problem in &parsed.problems {
                if socket.problems_logged {
                    debug!("{}: notify message: {problem}", socket.name);
                } else {
                    warn!("{}: notify message: {problem}", socket.name);
                }
            }
            socket.problems_logged |= !parsed.problems.is_empty();
            let n = parsed.notification;
            let group = |pid: i32| sys::socket::getpgid(pid).ok().map(Pid);
            let notice = Notice {
                ready: n.ready,
                status: n.status,
                watchdog: n.watchdog,
                main_pid: n.main_pid.map(|pid| (Pid(pid), group(pid))),
                stopping: n.stopping,
                extend_timeout: n.extend_timeout,
            };
            // Nothing tend acts on (`BARRIER=1` of systemd-notify, `FDSTORE=1`).
            if notice == Notice::default() {
                continue;
            }
            let Some(service) = socket.service else {
                continue;
            };
            // The group now, while the sender is alive or at least not reaped.
            let from = Sender {
                pid: Pid(sender.pid),
                pgid: group(sender.pid),
            };
            events.push(Event::Notified {
                service,
                from,
                notice,
            });
        }
        let name = socket.name.clone();
        for pid in rejected {
            self.rejected(&name, pid, Instant::now());
        }
        drained
    }

    /// A message for `name` was rejected: from `pid`, or (`None`) without
    /// credentials. The first is logged; later ones are counted until the
    /// report deadline.
    pub fn rejected(&mut self, name: &str, pid: Option<i32>, now: Instant) {
        if let Some(r) = self.rejections.get_mut(name) {
            r.count += 1;
            return;
        }
        match pid {
            Some(pid) => warn!(
                "{name}: ignored a notify message from pid {pid}, which is not part of \
                 the service (more are counted, one line a minute at most)"
            ),
            None => warn!(
                "{name}: ignored a notify message without sender credentials \
                 (more are counted, one line a minute at most)"
            ),
        }
        let report_at = now + REJECTION_REPORT;
        self.rejections.insert(
            Arc::from(name),
            Rejections {
                report_at,
                count: 0,
            },
        );
    }

    /// When the next count of rejections is due.
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.rejections.values().map(|r| r.report_at).min()
    }

    /// Report the counts that are due; a quiet minute ends the counting, so
    /// the next rejection is logged in full again.
    pub fn handle_deadlines(&mut self, now: Instant) {
        self.rejections.retain(|name, r| {
            if r.report_at > now {
                return true;
            }
            if r.count == 0 {
                return false;
            }
            warn!(
                "{name}: ignored {} more notify messages from outside the service in the last {}s",
                r.count,
                REJECTION_REPORT.as_secs()
            );
            r.count = 0;
            r.report_at = now + REJECTION_REPORT;
            true
        });
    }

    /// Close every socket and remove the folder (at exit).
    pub fn close_all(&mut self, registry: &Registry) {
        let names: Vec<Arc<str>> = self.by_name.keys().cloned().collect();
        for name in names {
            self.close(registry, &name);
        }
        if self.prepared {
            let _ = std::fs::remove_dir(&self.dir);
            self.prepared = false;
        }
    }
}

impl Drop for NotifySockets {
    fn drop(&mut self) {
        for socket in self.sockets.values() {
            let _ = std::fs::remove_file(&socket.path);
        }
        if self.prepared {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

impl Runtime {
    /// Bring the sockets in line with the services: one for every service
    /// whose newest definition has `notify` readiness (bound before it can be
    /// spawned), none for a service defined without it; a removed service
    /// keeps its socket until the core forgets it (`Action::Forget`).
    pub(super) fn sync_notify(&mut self) {
        let wanted: Vec<Arc<str>> = self
            .catalog
            .specs()
            .filter(|s| matches!(s.readiness.as_deref(), Some(Readiness::Notify { .. })))
            .map(|s| Arc::from(s.name.as_str()))
            .collect();
        for name in &wanted {
            let service = self.sup.find(name);
            let registry = self.poll.registry();
            if let Err(e) = self.notify.open(registry, &mut self.tokens, name, service) {
                error!(
                    "{name}: cannot create its notify socket {}: {e}",
                    socket_path(self.notify.dir(), name).display()
                );
            }
        }
        for (name, service) in self.notify.open_names() {
            if wanted.contains(&name) {
                continue;
            }
            let defined = self.sup.find(&name).is_some();
            let removing = service.is_some_and(|id| self.sup.get(id).is_some());
            if defined || !removing {
                self.notify.close(self.poll.registry(), &name);
            }
        }
    }

    /// A forgotten service's socket goes with it.
    pub(super) fn forget_notify(&mut self, service: ServiceId) {
        let names = self.notify.open_names();
        for (name, id) in names {
            if id == Some(service) {
                self.notify.close(self.poll.registry(), &name);
            }
        }
    }

    /// Read the notify sockets and readiness pipes that have data, and hand
    /// what they say to the core.
    pub(super) fn pump_notify(&mut self) {
        let sup = &self.sup;
        let mut events = self.notify.pump(&|name| sup.find(name));
        events.extend(self.readiness.pump(self.poll.registry(), &mut self.scratch));
        for event in events {
            self.feed(event);
        }
    }

    /// Before the exit of a process of `service` is reported: what it said
    /// just before it exited (`MAINPID=` of a daemon it forked, `READY=1`,
    /// the readiness newline) comes first.
    pub(super) fn drain_notify(&mut self, service: ServiceId) {
        let mut events = Vec::new();
        if let Some(token) = self.notify.token_of(service) {
            let sup = &self.sup;
            // Bounded like a turn's read; what is left is read next turn.
            if !self
                .notify
                .receive(token, DATAGRAMS_PER_TURN, &|n| sup.find(n), &mut events)
            {
                self.notify.readable(token);
            }
        }
        events.extend(self.readiness.drain_service(
            self.poll.registry(),
            service,
            &mut self.scratch,
        ));
        for event in events {
            self.feed(event);
        }
    }
}

#[cfg(test)]
mod tests;
