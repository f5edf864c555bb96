//! The notify sockets across `tend reexec`: their fds go to the new process,
//! bound at the same paths (the folder is named by tend's pid, which the exec
//! keeps), so a service's `NOTIFY_SOCKET` stays valid and a datagram sent
//! during the exec waits in its socket.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use mio::net::UnixDatagram;
use mio::{Interest, Registry, Token};

use super::{NotifySockets, Socket};
use crate::codec::wire::wire_struct;
use crate::machine::ServiceId;
use crate::sys::exec::FdKind;

/// The sockets as data.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySnapshot {
    dir: PathBuf,
    prepared: bool,
    sockets: Vec<SocketSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
struct SocketSnapshot {
    token: usize,
    fd: RawFd,
    name: String,
    service: Option<ServiceId>,
    path: PathBuf,
}

wire_struct!(NotifySnapshot {
    dir,
    prepared,
    sockets,
});
wire_struct!(SocketSnapshot {
    token,
    fd,
    name,
    service,
    path,
});

impl NotifySnapshot {
    pub fn fds(&self) -> Vec<(RawFd, FdKind)> {
        let sockets = self.sockets.iter();
        sockets.map(|s| (s.fd, FdKind::UnixDatagram)).collect()
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl NotifySockets {
    pub fn handover(&self) -> NotifySnapshot {
        let sockets: Vec<SocketSnapshot> = self
            .sockets
            .iter()
            .map(|(token, s)| SocketSnapshot {
                token: token.0,
                fd: s.socket.as_raw_fd(),
                name: s.name.to_string(),
                service: s.service,
                path: s.path.clone(),
            })
            .collect();
        NotifySnapshot {
            dir: self.dir.clone(),
            prepared: self.prepared,
            sockets,
        }
    }

    /// The sockets of the old process, each read at the first turn (a
    /// datagram may have come during the exec); `claim` hands over the fds.
    pub fn adopt(
        snapshot: NotifySnapshot,
        claim: &mut dyn FnMut(RawFd) -> Result<OwnedFd, String>,
        registry: &Registry,
    ) -> Result<NotifySockets, String> {
        let mut sockets = NotifySockets::new(snapshot.dir);
        sockets.prepared = snapshot.prepared;
        for s in snapshot.sockets {
            let token = Token(s.token);
            let std_socket = std::os::unix::net::UnixDatagram::from(claim(s.fd)?);
            let mut socket = UnixDatagram::from_std(std_socket);
            registry
                .register(&mut socket, token, Interest::READABLE)
                .map_err(|e| format!("cannot watch notify socket {}: {e}", s.path.display()))?;
            let name: Arc<str> = Arc::from(s.name.as_str());
            sockets.by_name.insert(name.clone(), token);
            sockets.sockets.insert(
                token,
                Socket {
                    name,
                    service: s.service,
                    path: s.path,
                    socket,
                    queued: false,
                    problems_logged: false,
                    fds_logged: false,
                },
            );
            sockets.readable(token);
        }
        Ok(sockets)
    }
}
