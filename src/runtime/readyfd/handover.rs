//! The readiness pipes across `tend reexec`: their read ends go to the new
//! process, so a newline written during the exec is still read, once.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use mio::unix::pipe::Receiver;
use mio::{Interest, Registry, Token};

use super::{Pipe, ReadinessPipes};
use crate::codec::wire::wire_struct;
use crate::machine::{RunId, ServiceId};
use crate::sys::exec::FdKind;

/// The pipes as data: (token, fd, service, run) each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadinessSnapshot {
    pipes: Vec<(usize, RawFd, ServiceId, RunId)>,
}

wire_struct!(ReadinessSnapshot { pipes });

impl ReadinessSnapshot {
    pub fn fds(&self) -> Vec<(RawFd, FdKind)> {
        self.pipes.iter().map(|p| (p.1, FdKind::Fifo)).collect()
    }
}

impl ReadinessPipes {
    pub fn handover(&self) -> ReadinessSnapshot {
        let pipes: Vec<_> = self
            .pipes
            .iter()
            .map(|(token, p)| (token.0, p.receiver.as_raw_fd(), p.service, p.run))
            .collect();
        ReadinessSnapshot { pipes }
    }

    /// The pipes of the old process, each read at the first turn; `claim`
    /// hands over the fds.
    pub fn adopt(
        snapshot: ReadinessSnapshot,
        claim: &mut dyn FnMut(RawFd) -> Result<OwnedFd, String>,
        registry: &Registry,
    ) -> Result<ReadinessPipes, String> {
        let mut pipes = ReadinessPipes::default();
        for (token, fd, service, run) in snapshot.pipes {
            let token = Token(token);
            let mut receiver = Receiver::from(claim(fd)?);
            receiver
                .set_nonblocking(true)
                .and_then(|()| registry.register(&mut receiver, token, Interest::READABLE))
                .map_err(|e| format!("cannot watch a readiness pipe: {e}"))?;
            let pipe = Pipe {
                service,
                run,
                receiver,
                queued: false,
            };
            pipes.pipes.insert(token, pipe);
            pipes.readable(token);
        }
        Ok(pipes)
    }
}
