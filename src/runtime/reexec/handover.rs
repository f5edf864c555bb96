//! The old process's side of `tend reexec`: take the state ([`Snapshot`]),
//! put it in a memfd, let exactly the fds it lists (and the memfd) survive
//! the exec, and exec. Everything that can fail is tried before the exec;
//! when something does (the exec itself included), what was changed is put
//! back and tend goes on as it was.
//!
//! Taking the state changes nothing but the log, whose unwritten output moves
//! into the snapshot (and back, should the exec fail). So nothing may be
//! logged between [`LogSink::handover`](crate::logging::LogSink::handover)
//! and the exec: it would stay in the old process's buffers.

use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use log::info;

use super::snapshot::{ClockSnapshot, IoSnapshot, PipeSnapshot, Snapshot, VERSION};
use super::{Phase, cstring};
use crate::codec::wire::Bytes;
use crate::logging::SinkSnapshot;
use crate::runtime::Runtime;
use crate::sys::exec::{block_signals, execve, memfd, monotonic, set_cloexec};

impl Runtime {
    /// The config as it runs: the runtime keeps its services in the catalog
    /// only (one copy of each definition), so they are put back here, in the
    /// catalog's order (the new process puts them back into a catalog).
    fn config_with_services(&self) -> crate::config::Config {
        let mut config = self.config.clone();
        config.services = self.catalog.specs().map(|s| (**s).clone()).collect();
        config
    }

    /// Hand everything over and exec tend's binary. Returns only when that
    /// could not be done, with why; everything is as it was then.
    pub(super) fn exec_self(&mut self) -> String {
        let exe = match self.reexec.exe.clone() {
            Ok(exe) => exe,
            Err(why) => return format!("{why}: not re-executing"),
        };
        debug_assert!(matches!(self.reexec.phase, Phase::Idle));
        info!(
            "re-executing {}: {} services keep running",
            exe.display(),
            self.sup.services().count()
        );
        let log = self.log.handover();
        let snapshot = self.snapshot(&exe, log);
        let why = match write(&snapshot) {
            Ok(file) => exec(&snapshot, file),
            Err(why) => why,
        };
        // Still here: the exec did not happen. The log takes its bytes back.
        self.log.adopt(snapshot.log, false);
        why
    }

    /// The whole state as data (see `snapshot.rs`). Lists taken from hash
    /// maps are in the maps' order: the new process puts them back into maps
    /// (and sorts the pipes itself), so no order is worth a sort's code.
    fn snapshot(&self, exe: &Path, log: SinkSnapshot) -> Snapshot {
        let (revisions, next_revision) = self.catalog.revisions();
        let children: Vec<_> = self
            .children
            .iter()
            .map(|(pid, c)| (*pid, c.service, c.run))
            .collect();
        let pipes: Vec<PipeSnapshot> = self
            .pipes
            .iter()
            .map(|(token, p)| PipeSnapshot {
                token: token.0,
                fd: p.receiver.as_raw_fd(),
                service: p.service,
                run: p.run,
                stream: p.stream,
                unfinished: Bytes(p.unfinished().to_vec()),
            })
            .collect();
        let services: Vec<IoSnapshot> = self
            .io
            .iter()
            .map(|(service, io)| IoSnapshot {
                service: *service,
                pattern: io.pattern.clone(),
                log_lines: io.counters.log_lines,
                probe_failures: io.counters.probe_failures,
                ring: io.ring.snapshot(),
            })
            .filter(|io| !io.is_empty())
            .collect();
        let requesters = &self.reexec.requesters;
        let owed = |client| {
            requesters.contains(&client) || self.requests.values().any(|p| p.client == client)
        };
        let requests: Vec<_> = self
            .requests
            .iter()
            .map(|(id, p)| (*id, p.client.0, p.services.clone()))
            .collect();
        // The clock last: the core's time as close to the exec as can be.
        let elapsed = std::time::Instant::now().saturating_duration_since(self.clock.base);
        let clock = ClockSnapshot {
            elapsed,
            monotonic: monotonic(),
            wall_start_ms: self.clock.wall_start_ms,
            unix_base: self.clock.unix_base,
        };
        Snapshot {
            version: VERSION,
            tend: env!("CARGO_PKG_VERSION").to_string(),
            exe: exe.to_path_buf(),
            argv0: Bytes(self.reexec.argv0.as_bytes().to_vec()),
            config_path: self.config_path.clone(),
            config: self.config_with_services(),
            revisions,
            next_revision,
            core: self
                .sup
                .snapshot(&|name, revision| self.catalog.behaviour(name, revision).is_some()),
            clock,
            next_token: self.tokens.peek(),
            nofile: self.nofile,
            children,
            pipes,
            services,
            readiness: self.readiness.handover(),
            notify: self.notify.handover(),
            control: self.control.as_ref().map(|c| c.handover(&owed)),
            metrics: self.metrics.as_ref().map(|m| m.handover()),
            cgroups: self.cgroups.as_ref().map(|c| c.handover()),
            requests,
            next_request: self.next_request,
            reexec_clients: requesters.iter().map(|c| c.0).collect(),
            usage: self.sampler.handover(),
            line_counter: self.line_counter.next(),
            log,
            probe_pids: self.probes.command_pids(),
        }
    }
}

/// The snapshot, encoded, in a new memfd. Encoded in memory first, then
/// written in one go: the encoding is a fraction of the size of the
/// snapshot it is made from (its bulk is the rings' text, copied once).
fn write(snapshot: &Snapshot) -> Result<std::fs::File, String> {
    let fail = |what: String| format!("{what}: not re-executing");
    let mut file = match memfd(c"tend-snapshot") {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => return Err(fail(format!("cannot create the snapshot's memfd ({e})"))),
    };
    file.write_all(&snapshot.encode())
        .map_err(|e| fail(format!("cannot write the snapshot ({e})")))?;
    Ok(file)
}

/// Let the fds `snapshot` lists and `file` (the snapshot) survive the exec,
/// block signals, and exec. Returns why it did not happen, after undoing it
/// all.
fn exec(snapshot: &Snapshot, file: std::fs::File) -> String {
    let exe = &snapshot.exe;
    let fail = |what: String| format!("{what}: not re-executing");
    let snapshot_fd = file.as_raw_fd();
    let argv: Vec<CString> = [
        OsStr::from_bytes(&snapshot.argv0.0),
        OsStr::new("run"),
        OsStr::new("-c"),
        snapshot.config_path.as_os_str(),
        OsStr::new("--resume"),
        OsStr::new(&snapshot_fd.to_string()),
    ]
    .iter()
    .map(|arg| CString::new(arg.as_bytes()).unwrap_or_default())
    .collect();
    let env = super::environment();
    let fds: Vec<RawFd> = snapshot
        .fds()
        .into_iter()
        .map(|(fd, _)| fd)
        .chain([snapshot_fd])
        .collect();
    let mut cleared = Vec::with_capacity(fds.len());
    for &fd in &fds {
        if let Err(e) = set_cloexec(fd, false) {
            restore(&cleared);
            return fail(format!("cannot hand fd {fd} over ({e})"));
        }
        cleared.push(fd);
    }
    if let Err(e) = block_signals() {
        restore(&cleared);
        return fail(format!("cannot block signals for the exec ({e})"));
    }
    let e = execve(&cstring(exe), &argv, &env);
    restore(&cleared);
    let _ = crate::sys::signal::unblock_all();
    format!(
        "exec {} failed ({e}): not re-executing; tend goes on as before",
        exe.display()
    )
}

/// Close-on-exec again, as every fd of tend's is.
fn restore(fds: &[RawFd]) {
    for &fd in fds {
        let _ = set_cloexec(fd, true);
    }
}
