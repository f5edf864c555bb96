//! The snapshot on its own: through its encoding and back, cut and mutated
//! copies of a real one (decoded or refused, never a panic), what `check`
//! refuses, and `load` end to end (a memfd and fds handed over in this very
//! process). Handing over a live tend is `tests/integration/reexec.rs`'s.

use std::io::Write;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::path::PathBuf;
use std::time::Duration;

use super::snapshot::*;
use crate::codec::wire::Bytes;
use crate::config::{Config, ServiceSpec};
use crate::machine::{Event, Instant, Pid, Supervisor};
use crate::runtime::catalog::Catalog;

/// A snapshot of `n` services, all running, each with an output pipe (the
/// fds are made up), as a tend would write it.
fn sample(n: usize) -> Snapshot {
    let services: Vec<ServiceSpec> = (0..n)
        .map(|i| ServiceSpec::new(&format!("s{i}"), vec!["sleep".into(), "100000".into()]))
        .collect();
    let config = Config::new(services);
    let mut catalog = Catalog::default();
    let defs = catalog.update(&config, |_| false);
    let settings = crate::machine::Settings {
        shutdown_timeout: Duration::from_secs(30),
        exit_when_idle: false,
    };
    let mut sup = Supervisor::new(defs, settings, 7);
    let mut queue: std::collections::VecDeque<_> = sup.start(Instant::ZERO).into();
    let mut pid = 1000;
    let mut children = Vec::new();
    while let Some(action) = queue.pop_front() {
        if let crate::machine::Action::Spawn { service, run } = action {
            pid += 1;
            children.push((pid, service, run));
            let event = Event::Spawned {
                service,
                run,
                pid: Pid(pid),
            };
            queue.extend(sup.handle(event, Instant::ZERO));
        }
    }
    let (revisions, next_revision) = catalog.revisions();
    Snapshot {
        version: VERSION,
        tend: "0.1.0".into(),
        exe: PathBuf::from("/usr/bin/tend"),
        argv0: Bytes(b"tend".to_vec()),
        config_path: PathBuf::from("/etc/tend.json"),
        config,
        revisions,
        next_revision,
        core: sup.snapshot(&|name, revision| catalog.behaviour(name, revision).is_some()),
        clock: ClockSnapshot {
            elapsed: Duration::from_millis(1234),
            monotonic: Duration::from_secs(99),
            wall_start_ms: 1_700_000_000_000,
            unix_base: 1_700_000_000.0,
        },
        next_token: 10 + n,
        nofile: Some((1024, 4096)),
        children: children.clone(),
        pipes: children
            .iter()
            .enumerate()
            .map(|(i, (_, service, run))| PipeSnapshot {
                token: 10 + i,
                fd: 100 + i as i32,
                service: *service,
                run: *run,
                stream: crate::lines::Stream::Stdout,
                unfinished: Bytes(b"half a li\xc3".to_vec()),
            })
            .collect(),
        services: Vec::new(),
        readiness: Default::default(),
        notify: crate::runtime::notify::NotifySockets::new("/run/tend.1".into()).handover(),
        control: None,
        metrics: None,
        cgroups: None,
        requests: Vec::new(),
        next_request: 1,
        reexec_clients: vec![5],
        line_counter: 77,
        log: Default::default(),
        probe_pids: Vec::new(),
        usage: None,
    }
}

/// [`sample`] with a ring of two lines (one on stderr), a readiness
/// pattern, counters and resource figures.
fn rich(n: usize) -> Snapshot {
    let mut snapshot = sample(n);
    let mut ring = crate::runtime::ring::LogRing::default();
    let text = b"first\nsecond \xe2\x9c\x93\n";
    let ends = [6u32, text.len() as u32];
    let lines = crate::lines::Lines { text, ends: &ends };
    ring.push(crate::lines::Stream::Stderr, lines, 40, 1_700_000_000_123);
    snapshot.services.push(IoSnapshot {
        service: snapshot.children[0].1,
        pattern: Some((snapshot.children[0].2, "listening on".into())),
        log_lines: [3, 4],
        probe_failures: [0, 2],
        ring: ring.snapshot(),
    });
    snapshot.pipes[1].stream = crate::lines::Stream::Stderr;
    snapshot.pipes[1].unfinished = Bytes(Vec::new());
    snapshot.usage = Some(crate::runtime::sampler::Figures {
        figures: vec![(snapshot.children[0].1, 1001, 0.25, 4096)],
        began_at: Instant::from_millis(900),
        finished_at: Instant::from_millis(1000),
    });
    snapshot
}

fn decoded(bytes: &[u8]) -> Snapshot {
    match Snapshot::decode(bytes) {
        Ok(snapshot) => snapshot,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_snapshot_goes_through_its_encoding_and_comes_back_equal() {
    let snapshot = rich(20);
    let back = decoded(&snapshot.encode());
    assert_eq!(back, snapshot);
    back.check().expect("valid");
    // The ring comes back with its lines, numbers and times.
    let ring = crate::runtime::ring::LogRing::restore(back.services[0].ring.clone()).expect("ring");
    let merged = crate::runtime::ring::merge(&[("s0", &ring)], None, None);
    let got: Vec<(u64, &str)> = merged
        .lines
        .iter()
        .map(|l| (l.seq, l.line.as_str()))
        .collect();
    assert_eq!(got, [(40, "first"), (41, "second \u{2713}")]);
    assert!(
        merged
            .lines
            .iter()
            .all(|l| l.ts == "2023-11-14T22:13:20.123Z")
    );
}

#[test]
fn check_refuses_what_does_not_hold_together() {
    let good = sample(3);
    good.check().expect("valid");
    type Spoil = (&'static str, fn(&mut Snapshot));
    let cases: [Spoil; 5] = [
        ("another version", |s| s.version = VERSION + 1),
        ("token 0", |s| s.pipes[0].token = 0),
        ("a token past next_token", |s| {
            s.pipes[0].token = s.next_token
        }),
        ("a token twice", |s| s.pipes[1].token = s.pipes[0].token),
        ("an unfinished line over the limit", |s| {
            s.pipes[0].unfinished = Bytes(vec![b'x'; crate::lines::MAX_LINE + 1])
        }),
    ];
    for (what, spoil) in cases {
        let mut bad = good.clone();
        spoil(&mut bad);
        assert!(bad.check().is_err(), "{what}");
    }
    let version = {
        let mut s = good.clone();
        s.version = 1;
        s.check().err().unwrap_or_default()
    };
    assert_eq!(
        version,
        "the snapshot is version 1, this tend reads version 2"
    );
}

/// `snapshot` in a memfd whose fd number is released to `load`.
fn in_memfd(bytes: &[u8]) -> String {
    let fd = crate::sys::exec::memfd(c"test-snapshot").expect("memfd");
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).expect("write");
    file.into_raw_fd().to_string()
}

/// A snapshot of one service whose output pipe is `fd` (released to `load`).
fn with_pipe(fd: i32) -> Snapshot {
    let mut snapshot = sample(1);
    snapshot.pipes.truncate(1);
    snapshot.pipes[0].fd = fd;
    snapshot
}

#[test]
fn load_takes_over_the_fds_a_snapshot_lists() {
    let (rx, tx) = crate::sys::pipe().expect("pipe");
    let rx = rx.into_raw_fd();
    let snapshot = with_pipe(rx);
    let fd = in_memfd(&snapshot.encode());
    let resumed = match super::load(&fd) {
        Ok(resumed) => resumed,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(resumed.config().services.len(), 1);
    // The pipe is owned, and close-on-exec again.
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{rx}")).expect("fdinfo");
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .expect("flags");
    assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "{info}");
    drop(resumed);
    // Dropping it closed the read end: writing finds no reader.
    assert!(crate::sys::write_some(tx.as_raw_fd(), b"x", false).is_err());
}

#[test]
fn load_refuses_other_versions_garbage_and_the_wrong_fds() {
    let refuse = |bytes: &[u8]| match super::load(&in_memfd(bytes)) {
        Ok(_) => panic!("loaded"),
        Err(e) => e,
    };
    // Another version, followed by a layout this tend does not know.
    let mut other = crate::codec::wire::encode(&7u32);
    other.extend_from_slice(b"\xff\xff anything");
    assert_eq!(
        refuse(&other),
        "the snapshot is version 7, this tend reads version 2"
    );
    // Version 1 was JSON.
    assert_eq!(
        refuse(b"{\"version\": 1, \"tend\": \"0.1.0\"}"),
        "the snapshot is version 1, this tend reads version 2"
    );
    let good = sample(1).encode();
    let cut = refuse(&good[..good.len() / 2]);
    assert!(cut.starts_with("the snapshot does not parse: "), "{cut}");
    assert!(refuse(b"").starts_with("the snapshot does not parse"));
    // Not open.
    let closed = with_pipe(1_000_000).encode();
    assert!(
        refuse(&closed).contains("fd 1000000"),
        "{}",
        refuse(&closed)
    );
    // Open, but a socket where a pipe was said.
    let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let socket = with_pipe(a.into_raw_fd()).encode();
    let why = refuse(&socket);
    assert!(why.contains("UnixStream") && why.contains("Fifo"), "{why}");
    assert!(super::load("x").is_err());
    assert!(super::load("1").is_err(), "stdio is never taken over");
}

#[test]
fn a_line_cut_by_the_exec_comes_out_whole() {
    let mut before = crate::lines::LineSplitter::default();
    let mut lines = Vec::new();
    let mut emit = |l: crate::lines::Lines<'_>| lines.extend(l.iter().map(|s| s.into_owned()));
    // A check mark cut after its first byte.
    before.push(b"done\nhalf \xe2", &mut emit);
    let mut after = crate::lines::LineSplitter::resume(before.unfinished());
    after.push(b"\x9c\x93 line\n", &mut emit);
    assert_eq!(lines, ["done", "half \u{2713} line"]);
}

/// Every prefix of a real snapshot, and 20,000 copies with a few bytes
/// changed: each is decoded (and then `check`ed) or refused, never a panic,
/// and nothing allocates past what the input could hold.
#[test]
fn cut_and_mutated_snapshots_are_refused_or_decoded_never_a_panic() {
    let good = rich(8).encode();
    for end in 0..good.len() {
        assert!(
            Snapshot::decode(&good[..end]).is_err(),
            "a prefix of {end} bytes"
        );
    }
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut decoded, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % bytes.len() as u64) as usize;
            if next() % 2 == 0 {
                bytes[at] = next() as u8;
            } else {
                bytes[at] ^= 1 << (next() % 8);
            }
        }
        match Snapshot::decode(&bytes) {
            Ok(snapshot) => {
                let _ = snapshot.check();
                decoded += 1;
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        decoded > 100 && refused > 100,
        "{decoded} decoded, {refused} refused"
    );
}
