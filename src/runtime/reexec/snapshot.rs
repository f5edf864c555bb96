//! The snapshot: one versioned binary document (`codec::wire`) that carries
//! the whole state of a tend across `tend reexec`, and the list of fds that
//! go with it.
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
//! (`reexec-check`), so a refusal never costs the services anything. The
//! version is the document's first value, so that a tend can name the
//! version of a snapshot whose rest it cannot read.
//!
//! Must not: hold anything a new process could not rebuild the same way from
//! it (pointers, the old process's buffers' layout), or trust what it reads:
//! [`Snapshot::check`] validates what the parts do not validate themselves.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::codec::wire::{self, Bytes, Reader, Wire, wire_enum, wire_struct};
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
///
/// The encoding has no field names (`codec::wire`): a value is its fields in
/// order. So any change of layout (a field added, removed, moved or of
/// another type, an enum tag added or renumbered, in any type a snapshot
/// holds, `Config` and the core's included) must change this number.
/// 1 was a JSON document; 2 is the binary encoding.
pub const VERSION: u32 = 2;

/// The whole state (see the module doc).
#[derive(Debug, Clone, PartialEq)]
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
    pub usage: Option<crate::runtime::sampler::Figures>,
}

/// The shell's clock: the core's time continues from `elapsed`, plus the
/// time the exec took (`monotonic` then, against the monotonic clock now).
#[derive(Debug, Clone, PartialEq)]
pub struct ClockSnapshot {
    /// The core's `now` when the snapshot was taken.
    pub elapsed: Duration,
    /// `CLOCK_MONOTONIC` at that moment.
    pub monotonic: Duration,
    pub wall_start_ms: u64,
    pub unix_base: f64,
}

/// One output pipe of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeSnapshot {
    pub token: usize,
    pub fd: RawFd,
    pub service: ServiceId,
    pub run: RunId,
    pub stream: Stream,
    /// What was read of a line not finished yet.
    pub unfinished: Bytes,
}

/// A service's I/O state besides its pipes (which name their service; its
/// list of them is theirs in token order, the order they were opened in).
/// Left out for a service that has nothing of it yet.
#[derive(Debug, Clone, PartialEq)]
pub struct IoSnapshot {
    pub service: ServiceId,
    /// The `log` readiness pattern being watched for a run.
    pub pattern: Option<(RunId, String)>,
    pub log_lines: [u64; 2],
    pub probe_failures: [u64; 2],
    pub ring: RingSnapshot,
}

// The layout (`codec::wire`): each struct's fields in this order, the
// version first (see `Snapshot::decode`).
wire_struct!(Snapshot {
    version,
    tend,
    exe,
    argv0,
    config_path,
    config,
    revisions,
    next_revision,
    core,
    clock,
    next_token,
    nofile,
    children,
    pipes,
    services,
    readiness,
    notify,
    control,
    metrics,
    cgroups,
    requests,
    next_request,
    reexec_clients,
    line_counter,
    log,
    probe_pids,
    usage,
});
wire_struct!(ClockSnapshot {
    elapsed,
    monotonic,
    wall_start_ms,
    unix_base,
});
wire_struct!(PipeSnapshot {
    token,
    fd,
    service,
    run,
    stream,
    unfinished,
});
wire_struct!(IoSnapshot {
    service,
    pattern,
    log_lines,
    probe_failures,
    ring,
});
wire_enum!(Stream {
    0 => Stdout,
    1 => Stderr,
});

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
    /// The snapshot as bytes (see `codec::wire`).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// The snapshot `bytes` hold, or why it cannot be read: another version
    /// is refused by its number before the rest is looked at.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        // Version 1 was a JSON document, which no varint starts with.
        if bytes.first() == Some(&b'{') {
            return Err(refusal(1));
        }
        let mut first = Reader::new(bytes);
        let version = u32::get(&mut first);
        if first.error().is_none() && version != VERSION {
            return Err(refusal(version));
        }
        wire::decode(bytes).map_err(|e| format!("the snapshot does not parse: {e}"))
    }

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
