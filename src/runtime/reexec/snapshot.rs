//! The snapshot: one versioned JSON document that carries the whole state of
//! a tend across `tend reexec`, and the list of fds that go with it.
//!
//! It holds the core ([`CoreSnapshot`]), the config and the revisions the old
//! process ran (not the file on disk: a reload is a separate act), the clock,
//! and the shell: children, output pipes with the unfinished line of each,
//! the `tend logs` rings and line counter, readiness pipes, notify sockets,
//! the control socket and the connections kept, the metrics listener, the
//! cgroups, the requests the core will answer, and the log's unwritten
//! output. Every fd it names is listed by [`Snapshot::fds`] with the kind it
//! must be; those and no others lose `FD_CLOEXEC` for the exec.
//!
//! [`VERSION`] changes whenever a tend could not read what an older one
//! wrote (or the other way round); a tend refuses any other version, and the
//! old process asks the new binary which version it reads before it execs
//! (`reexec-check`), so a refusal never costs the services anything.
//!
//! Must not: hold anything a new process could not rebuild the same way from
//! it (pointers, the old process's buffers' layout), or trust what it reads:
//! [`Snapshot::check`] validates what the parts do not validate themselves.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::base64::Bytes;
use crate::config::Config;
use crate::lines::{MAX_LINE, Stream};
use crate::logging::SinkSnapshot;
use crate::machine::{CoreSnapshot, RequestId, RunId, ServiceId};
use crate::runtime::cgroup::CgroupsSnapshot;
use crate::runtime::control::ControlSnapshot;
use crate::runtime::metrics::MetricsSnapshot;
use crate::runtime::notify::NotifySnapshot;
use crate::runtime::readyfd::ReadinessSnapshot;
use crate::runtime::ring::RingSnapshot;
use crate::sys::exec::FdKind;

/// The snapshot version this tend writes and reads.
pub const VERSION: u32 = 1;

/// The whole state (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`VERSION`] of the tend that wrote it.
    pub version: u32,
    /// That tend's release (`CARGO_PKG_VERSION`), for messages.
    pub tend: String,
    /// The binary tend re-executes: the path it was first started from.
    pub exe: PathBuf,
    /// tend's `argv[0]`, kept for the next exec.
    pub argv0: Bytes,
    pub config_path: PathBuf,
    pub config: Config,
    /// Each service's (name, revision, has a cgroup), and the next revision.
    pub revisions: Vec<(String, u64, bool)>,
    pub next_revision: u64,
    pub core: CoreSnapshot,
    pub clock: ClockSnapshot,
    /// The next mio token: sources handed over keep theirs.
    pub next_token: usize,
    /// `RLIMIT_NOFILE` as tend found it at its first start, for services.
    pub nofile: Option<(u64, u64)>,
    /// Processes whose exit the core wants to hear about: (pid, service, run).
    pub children: Vec<(i32, ServiceId, RunId)>,
    pub pipes: Vec<PipeSnapshot>,
    pub services: Vec<IoSnapshot>,
    pub readiness: ReadinessSnapshot,
    pub notify: NotifySnapshot,
    pub control: Option<ControlSnapshot>,
    pub metrics: Option<MetricsSnapshot>,
    pub cgroups: Option<CgroupsSnapshot>,
    /// Requests the core will answer: (request, client token, services).
    pub requests: Vec<(RequestId, usize, Vec<ServiceId>)>,
    pub next_request: u64,
    /// Clients waiting for the answer to their `reexec` (the new process
    /// gives it).
    pub reexec_clients: Vec<usize>,
    pub line_counter: u64,
    pub log: SinkSnapshot,
    /// Probe commands in flight: the new process kills their process groups
    /// (their attempts are abandoned; the core asks again).
    pub probe_pids: Vec<i32>,
    /// The last resource use figures, so that the first status after the
    /// exec needs no sweep of its own.
    #[serde(default)]
    pub usage: Option<crate::runtime::sampler::Figures>,
}

/// The shell's clock: the core's time continues from `elapsed`, plus the
/// time the exec took (`monotonic` then, against the monotonic clock now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockSnapshot {
    /// The core's `now` when the snapshot was taken.
    pub elapsed: Duration,
    /// `CLOCK_MONOTONIC` at that moment.
    pub monotonic: Duration,
    pub wall_start_ms: u64,
    pub unix_base: f64,
}

/// One output pipe of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipeSnapshot {
    pub token: usize,
    pub fd: RawFd,
    pub service: ServiceId,
    pub run: RunId,
    pub stream: Stream,
    /// What was read of a line not finished yet.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub unfinished: Bytes,
}

fn is_empty(bytes: &Bytes) -> bool {
    bytes.0.is_empty()
}

/// A service's I/O state besides its pipes (which name their service; its
/// list of them is theirs in token order, the order they were opened in).
/// Left out for a service that has nothing of it yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoSnapshot {
    pub service: ServiceId,
    /// The `log` readiness pattern being watched for a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<(RunId, String)>,
    pub log_lines: [u64; 2],
    pub probe_failures: [u64; 2],
    pub ring: RingSnapshot,
}

impl IoSnapshot {
    /// Whether there is nothing to hand over.
    pub fn is_empty(&self) -> bool {
        self.pattern.is_none()
            && self.log_lines == [0; 2]
            && self.probe_failures == [0; 2]
            && self.ring.is_empty()
    }
}

impl Snapshot {
    /// Every fd it hands over, with the kind it must be.
    pub fn fds(&self) -> Vec<(RawFd, FdKind)> {
        let mut fds: Vec<(RawFd, FdKind)> =
            self.pipes.iter().map(|p| (p.fd, FdKind::Fifo)).collect();
        fds.extend(self.readiness.fds());
        fds.extend(self.notify.fds());
        if let Some(control) = &self.control {
            fds.extend(control.fds());
        }
        if let Some(metrics) = &self.metrics {
            fds.push((metrics.fd(), FdKind::TcpListener));
        }
        fds
    }

    /// What the parts do not check themselves: the version, that the pipes'
    /// tokens are distinct and below `next_token`, that an unfinished line is
    /// within its bound.
    pub fn check(&self) -> Result<(), String> {
        if self.version != VERSION {
            return Err(refusal(self.version));
        }
        let mut tokens = HashSet::new();
        for token in self.pipes.iter().map(|p| p.token) {
            if token == 0 || token >= self.next_token || !tokens.insert(token) {
                return Err(format!("token {token} is used twice or out of range"));
            }
        }
        if let Some(p) = self.pipes.iter().find(|p| p.unfinished.0.len() > MAX_LINE) {
            return Err(format!(
                "pipe {} has an unfinished line over the limit",
                p.token
            ));
        }
        Ok(())
    }
}

/// Why a snapshot of `version` is refused.
pub fn refusal(version: u32) -> String {
    format!("the snapshot is version {version}, this tend reads version {VERSION}")
}

/// Just the version, to name it when the rest does not parse.
#[derive(Deserialize)]
pub struct Header {
    pub version: u32,
}
