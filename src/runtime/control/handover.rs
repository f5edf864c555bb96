//! The control socket across `tend reexec` (SPEC §8: it stays open): the
//! listening socket and the connections worth keeping go to the new process
//! as fds, with what each still has to be sent.
//!
//! Kept: clients owed an answer the new process will give (the `reexec`
//! requester, clients waiting for services to settle: the caller says which),
//! clients whose reply is being written, and `logs -f` followers with what
//! they follow and the lines they have not taken yet. Not kept: clients still
//! sending their request (they see the connection close and may ask again).
//! Connections that arrive during the exec wait in the listen queue and are
//! accepted by the new process.
//!
//! Must not: interpret requests (see `runtime::requests`).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Instant;

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::clients::{Client, Phase};
use super::{ClientId, ControlServer, REQUEST_TIMEOUT};
use crate::codec::wire::{Bytes, wire_enum, wire_struct};
use crate::runtime::tokens::Tokens;
use crate::sys::exec::FdKind;

/// The control socket as data: see the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlSnapshot {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    listener: RawFd,
    clients: Vec<ClientSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
struct ClientSnapshot {
    token: usize,
    fd: RawFd,
    phase: Kept,
    /// Bytes not written yet; the first `reply_left` are reply bytes.
    output: Bytes,
    reply_left: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Kept {
    /// Owed an answer (the caller's requests).
    Waiting,
    /// Its reply is being written; closed once it is.
    Replying,
    /// `logs -f`: of every service (`None`) or of these.
    Following(Option<Vec<String>>),
}

wire_struct!(ControlSnapshot {
    path,
    identity,
    listener,
    clients,
});
wire_struct!(ClientSnapshot {
    token,
    fd,
    phase,
    output,
    reply_left,
});
wire_enum!(Kept {
    0 => Waiting,
    1 => Replying,
    2 => Following(names),
});

impl ControlSnapshot {
    /// The fds it hands over, with what each must be.
    pub fn fds(&self) -> Vec<(RawFd, FdKind)> {
        let clients = self.clients.iter().map(|c| (c.fd, FdKind::UnixStream));
        std::iter::once((self.listener, FdKind::UnixListener))
            .chain(clients)
            .collect()
    }
}

impl ControlServer {
    /// The server as data; a waiting client is kept when `owed(client)`.
    pub fn handover(&self, owed: &dyn Fn(ClientId) -> bool) -> ControlSnapshot {
        let clients: Vec<ClientSnapshot> = self
            .clients
            .iter()
            .filter_map(|(token, c)| {
                let phase = match c.phase {
                    Phase::Waiting if owed(*token) => Kept::Waiting,
                    Phase::Replying => Kept::Replying,
                    Phase::Following => Kept::Following(self.followers.selection(*token)?),
                    Phase::Reading | Phase::Waiting | Phase::Held => return None,
                };
                let (output, reply_left) = c.unwritten();
                Some(ClientSnapshot {
                    token: token.0,
                    fd: c.stream.as_raw_fd(),
                    phase,
                    output: Bytes(output.to_vec()),
                    reply_left,
                })
            })
            .collect();
        ControlSnapshot {
            path: self.path.clone(),
            identity: self.identity,
            listener: self.listener.as_raw_fd(),
            clients,
        }
    }

    /// The server of the old process, from its snapshot; `claim` hands over
    /// the fd of each number (checked already). Clients keep their tokens,
    /// so answers the core owes them still find them.
    pub fn adopt(
        snapshot: ControlSnapshot,
        claim: &mut dyn FnMut(RawFd) -> Result<OwnedFd, String>,
        registry: &Registry,
        tokens: &mut Tokens,
        now: Instant,
    ) -> Result<ControlServer, String> {
        let std_listener = std::os::unix::net::UnixListener::from(claim(snapshot.listener)?);
        let mut listener = UnixListener::from_std(std_listener);
        let listener_token = tokens.next();
        registry
            .register(&mut listener, listener_token, Interest::READABLE)
            .map_err(|e| format!("cannot watch the control socket: {e}"))?;
        let mut server = ControlServer {
            path: snapshot.path,
            identity: snapshot.identity,
            listener,
            listener_token,
            clients: Default::default(),
            reading: Default::default(),
            deadlines: Default::default(),
            followers: Default::default(),
            totals: Default::default(),
            accept_retry: None,
            warned_full: false,
        };
        for c in snapshot.clients {
            let token = Token(c.token);
            let std_stream = std::os::unix::net::UnixStream::from(claim(c.fd)?);
            let mut stream = UnixStream::from_std(std_stream);
            if registry
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue; // dropped: the client sees it close
            }
            let phase = match &c.phase {
                Kept::Waiting => Phase::Waiting,
                Kept::Replying => Phase::Replying,
                Kept::Following(_) => Phase::Following,
            };
            let client = Client::resume(stream, phase, c.output.0, c.reply_left);
            server.totals.add(&client);
            server.clients.insert(token, client);
            match c.phase {
                Kept::Replying => server.set_deadline(token, Some(now + REQUEST_TIMEOUT)),
                Kept::Following(names) => server.followers.add(token, names),
                Kept::Waiting => {}
            }
            server.flush(registry, token);
        }
        // Connections queued during the exec get no new edge: take them now.
        server.accept(registry, tokens, now);
        Ok(server)
    }
}
