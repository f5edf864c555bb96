//! The metrics listener across `tend reexec`: its fd goes to the new process,
//! so scrapers never find the port closed. Scrapes in flight are cut off by
//! the exec (a scraper tries again at its next interval); connections queued
//! meanwhile are accepted by the new process.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use mio::net::TcpListener;
use mio::{Interest, Registry};

use super::MetricsServer;
use crate::codec::wire::wire_struct;
use crate::machine::{Deadlines, Instant};
use crate::runtime::tokens::Tokens;

/// The listener as data.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    address: SocketAddr,
    listener: RawFd,
}

wire_struct!(MetricsSnapshot { address, listener });

impl MetricsSnapshot {
    pub fn fd(&self) -> RawFd {
        self.listener
    }
}

impl MetricsServer {
    pub fn handover(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            address: self.address,
            listener: self.listener.as_raw_fd(),
        }
    }

    /// The listener of the old process; `claim` hands over its fd.
    pub fn adopt(
        snapshot: MetricsSnapshot,
        claim: &mut dyn FnMut(RawFd) -> Result<OwnedFd, String>,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> Result<MetricsServer, String> {
        let std_listener = std::net::TcpListener::from(claim(snapshot.listener)?);
        let mut listener = TcpListener::from_std(std_listener);
        let listener_token = tokens.next();
        registry
            .register(&mut listener, listener_token, Interest::READABLE)
            .map_err(|e| format!("cannot watch the metrics listener: {e}"))?;
        Ok(MetricsServer {
            address: snapshot.address,
            listener,
            listener_token,
            connections: Default::default(),
            deadlines: Deadlines::default(),
            // Connections queued during the exec: accepted at the first turn.
            accept_retry: Some(Instant::ZERO),
            scrapes: Vec::new(),
            buffered: 0,
            refusing: false,
            start_time: super::super::usage::own_start_time(),
        })
    }
}
