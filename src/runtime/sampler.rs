//! The resource use of services (`cpu_secs`, `memory_bytes` in `tend status
//! --json`; the `tend_service_cpu_seconds_total` and memory metrics), measured
//! by sweeps that the loop takes one slice at a time.
//!
//! Why slices: one pass over `/proc` costs about 20 µs per process on the
//! machine, so with 10,000 services a pass takes a quarter of a second. Done
//! inside one request, it would stall every other event for that long (and
//! `tend status` of 10,000 services must answer within 50 ms). So a sweep
//! reads at most [`SLICE`] entries per loop turn, the loop does not sleep
//! while one is under way, and the figures of the last finished sweep are
//! what requests see.
//!
//! When: never on a timer (an idle tend does not wake up). A status request or
//! a scrape that finds the figures older than [`REFRESH`] begins a sweep; a
//! status request then waits for it at most [`STATUS_WAIT`] (on a small system
//! the sweep is done by then and the figures are fresh; on a large one the
//! reply comes with the previous sweep's, unless those are older than
//! [`STALE`] or there are none: then it waits for the end), a scrape waits
//! for the end. When the last sweep took longer than [`STATUS_WAIT`] (10,000
//! services: about a quarter of a second), waiting could only delay the
//! reply: it goes out at once with the previous figures. Replies say when their figures were measured (`usage_at`).
//!
//! A figure belongs to one process group: a service that restarted since the
//! sweep (another pgid) has none until the next.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::machine::{Instant, ServiceId};

use super::usage::{GroupScan, Usage, read_cgroup};

/// A sweep is begun for a request that finds the figures older than this.
/// Half of `tend top`'s interval, so that each of its requests begins a sweep
/// and no two of its samples are the same sweep (that would show 0% CPU).
pub const REFRESH: Duration = Duration::from_millis(500);

/// How long a status request waits for a sweep it began, at most, when the
/// figures it would otherwise get are younger than [`STALE`].
pub const STATUS_WAIT: Duration = Duration::from_millis(25);

/// Figures older than this are not worth showing: a status request that
/// would get them waits for the whole sweep.
pub const STALE: Duration = Duration::from_secs(10);

/// `/proc` entries (or cgroup folders) read per loop turn: about 1.5 ms.
pub const SLICE: usize = 64;

/// One service to measure: its process group, and its cgroup folder when it
/// has one (read instead; the group is the fallback if it cannot be read).
#[derive(Debug, Clone)]
pub struct Target {
    pub service: ServiceId,
    pub pgid: i32,
    pub cgroup: Option<PathBuf>,
}

/// The last sweep's figures as `tend reexec` hands them over.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// (service, process group, CPU seconds, memory bytes).
    pub figures: Vec<(ServiceId, i32, f64, u64)>,
    pub began_at: Instant,
    pub finished_at: Instant,
}

crate::codec::wire::wire_struct!(Figures {
    figures,
    began_at,
    finished_at,
});

/// The figures of the last sweep and the sweep under way, if any.
pub struct Sampler {
    proc_root: PathBuf,
    /// By service: the group measured and its use.
    figures: HashMap<ServiceId, (i32, Usage)>,
    /// When the sweep of `figures` began and ended.
    began_at: Option<Instant>,
    finished_at: Option<Instant>,
    sweep: Option<Sweep>,
}

struct Sweep {
    began_at: Instant,
    /// Cgroup targets still to read.
    cgroups: Vec<Target>,
    /// The process groups of the /proc pass, and whose they are.
    groups: HashMap<i32, ServiceId>,
    /// Begun once the cgroups are read (their fallbacks join it).
    scan: Option<GroupScan>,
    results: HashMap<ServiceId, (i32, Usage)>,
}

impl Default for Sampler {
    fn default() -> Sampler {
        Sampler::with_proc(Path::new("/proc"))
    }
}

impl Sampler {
    /// A sampler reading `proc_root` instead of `/proc` (tests).
    pub fn with_proc(proc_root: &Path) -> Sampler {
        Sampler {
            proc_root: proc_root.to_path_buf(),
            figures: HashMap::new(),
            began_at: None,
            finished_at: None,
            sweep: None,
        }
    }

    /// The figures are recent enough to answer with.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.finished_at
            .is_some_and(|at| now.saturating_since(at) < REFRESH)
    }

    pub fn is_sweeping(&self) -> bool {
        self.sweep.is_some()
    }

    /// How old the figures are (`None`: there are none yet).
    pub fn age(&self, now: Instant) -> Option<Duration> {
        self.finished_at.map(|at| now.saturating_since(at))
    }

    /// Whether a sweep begun now may be expected to end within `wait`: the
    /// last one did (or there was none to tell).
    pub fn sweep_fits(&self, wait: Duration) -> bool {
        match (self.began_at, self.finished_at) {
            (Some(began), Some(finished)) => finished.saturating_since(began) <= wait,
            _ => true,
        }
    }

    /// When the figures were measured: the beginning of their sweep. Every
    /// service is read at about the same point of each sweep, so the CPU
    /// use between two sweeps is the growth over the time between their
    /// beginnings (what `tend top` shows).
    pub fn measured_at(&self) -> Option<Instant> {
        self.began_at
    }

    /// Begins a sweep of `targets` (every service that has a process), unless
    /// one is under way.
    pub fn begin(&mut self, targets: impl IntoIterator<Item = Target>, now: Instant) {
        if self.sweep.is_some() {
            return;
        }
        let mut sweep = Sweep {
            began_at: now,
            cgroups: Vec::new(),
            groups: HashMap::new(),
            scan: None,
            results: HashMap::new(),
        };
        for target in targets {
            match target.cgroup {
                Some(_) => sweep.cgroups.push(target),
                None => {
                    sweep.groups.insert(target.pgid, target.service);
                }
            }
        }
        self.sweep = Some(sweep);
    }

    /// Takes one slice of the sweep; true when this finished it (the figures
    /// are then the new ones).
    pub fn step(&mut self, now: Instant) -> bool {
        let Some(sweep) = &mut self.sweep else {
            return false;
        };
        let mut budget = SLICE;
        while budget > 0
            && let Some(target) = sweep.cgroups.pop()
        {
            budget -= 1;
            let dir = target.cgroup.as_deref().unwrap_or(Path::new(""));
            match read_cgroup(dir) {
                Some(usage) => {
                    sweep.results.insert(target.service, (target.pgid, usage));
                }
                None => {
                    sweep.groups.insert(target.pgid, target.service);
                }
            }
        }
        if budget == 0 {
            return false;
        }
        let scan = sweep.scan.get_or_insert_with(|| {
            let pgids: HashSet<i32> = sweep.groups.keys().copied().collect();
            GroupScan::new(&self.proc_root, pgids)
        });
        if !scan.step(budget) {
            return false;
        }
        let Some(mut sweep) = self.sweep.take() else {
            return false;
        };
        if let Some(scan) = sweep.scan.take() {
            for (pgid, usage) in scan.finish() {
                if let Some(&service) = sweep.groups.get(&pgid) {
                    sweep.results.insert(service, (pgid, usage));
                }
            }
        }
        self.figures = sweep.results;
        self.began_at = Some(sweep.began_at);
        self.finished_at = Some(now);
        true
    }

    /// The figures of the last finished sweep, for a re-exec (`None`: none yet).
    pub fn handover(&self) -> Option<Figures> {
        let figures = self
            .figures
            .iter()
            .map(|(&id, &(pgid, u))| (id, pgid, u.cpu_secs, u.memory_bytes))
            .collect();
        Some(Figures {
            figures,
            began_at: self.began_at?,
            finished_at: self.finished_at?,
        })
    }

    /// A sampler with the figures the old process handed over.
    pub fn adopt(figures: Option<Figures>) -> Sampler {
        let mut sampler = Sampler::default();
        if let Some(f) = figures {
            sampler.figures = f
                .figures
                .into_iter()
                .map(|(id, pgid, cpu_secs, memory_bytes)| {
                    let usage = Usage {
                        cpu_secs,
                        memory_bytes,
                    };
                    (id, (pgid, usage))
                })
                .collect();
            sampler.began_at = Some(f.began_at);
            sampler.finished_at = Some(f.finished_at);
        }
        sampler
    }

    /// The last figures of `service`, if its process group is still `pgid`.
    pub fn get(&self, service: ServiceId, pgid: i32) -> Option<Usage> {
        match self.figures.get(&service) {
            Some(&(measured, usage)) if measured == pgid => Some(usage),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Instant;

    fn stat(pid: i32, pgrp: i32, utime: u64, rss: u64) -> String {
        format!(
            "{pid} (x) S 1 {pgrp} {pgrp} 0 -1 4194560 120 0 0 0 {utime} 0 0 0 20 0 1 0 \
             12345 8192000 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    fn fake_proc(tag: &str, procs: &[(i32, i32, u64, u64)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("sampler-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for &(pid, pgrp, utime, rss) in procs {
            let dir = root.join(pid.to_string());
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("stat"), stat(pid, pgrp, utime, rss)).expect("stat");
        }
        root
    }

    fn id(index: u32) -> ServiceId {
        ServiceId::for_tests(index)
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn a_sweep_takes_slices_and_then_replaces_the_figures() {
        // More processes than one slice reads, in two groups plus strangers.
        let mut procs = Vec::new();
        for pid in 100..100 + 3 * SLICE as i32 {
            let pgrp = [100, 200, 999][pid as usize % 3];
            procs.push((pid, pgrp, 1, 2));
        }
        let root = fake_proc("slices", &procs);
        let mut sampler = Sampler::with_proc(&root);
        assert!(!sampler.is_fresh(at(0)));
        let target = |service, pgid| Target {
            service: id(service),
            pgid,
            cgroup: None,
        };
        sampler.begin([target(1, 100), target(2, 200)], at(1));
        let mut slices = 1;
        while !sampler.step(at(5)) {
            slices += 1;
            assert!(sampler.get(id(1), 100).is_none(), "nothing before the end");
        }
        assert!(slices >= 3, "{slices} slices");
        assert!(!sampler.is_sweeping());
        assert_eq!(sampler.measured_at(), Some(at(1)), "when the sweep began");
        assert_eq!(sampler.age(at(5)), Some(Duration::ZERO));
        let one = sampler.get(id(1), 100).expect("measured");
        assert_eq!(one.memory_bytes, SLICE as u64 * 2 * crate::sys::page_size());
        assert!(sampler.get(id(2), 200).is_some());
        assert_eq!(sampler.get(id(1), 101), None, "another group: not this run");
        let refresh = REFRESH.as_millis() as u64;
        assert!(sampler.is_fresh(at(5)) && sampler.is_fresh(at(5 + refresh - 1)));
        assert!(!sampler.is_fresh(at(5 + refresh)), "older than REFRESH");
        // That sweep took 4 ms: the next may be waited for that long, not less.
        assert!(sampler.sweep_fits(Duration::from_millis(4)));
        assert!(!sampler.sweep_fits(Duration::from_millis(3)));
        assert!(
            Sampler::with_proc(&root).sweep_fits(Duration::ZERO),
            "none yet"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn figures_survive_a_handover() {
        let root = fake_proc("handover", &[(400, 400, 30, 3)]);
        let mut sampler = Sampler::with_proc(&root);
        assert_eq!(sampler.handover(), None, "nothing measured yet");
        let target = Target {
            service: id(4),
            pgid: 400,
            cgroup: None,
        };
        sampler.begin([target], at(10));
        while !sampler.step(at(12)) {}
        let bytes = crate::codec::wire::encode(&sampler.handover());
        let back: Option<Figures> = crate::codec::wire::decode(&bytes).expect("decoded");
        let adopted = Sampler::adopt(back);
        assert_eq!(adopted.get(id(4), 400), sampler.get(id(4), 400));
        assert!(adopted.get(id(4), 400).is_some());
        assert_eq!(adopted.measured_at(), Some(at(10)));
        assert_eq!(adopted.age(at(12)), Some(Duration::ZERO));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_cgroup_is_read_from_its_files_and_falls_back_to_its_group() {
        let root = fake_proc("cgroups", &[(300, 300, 10, 1)]);
        let cg = root.join("cg");
        std::fs::create_dir_all(&cg).expect("cg");
        std::fs::write(cg.join("cpu.stat"), "usage_usec 1500000\n").expect("w");
        std::fs::write(cg.join("memory.current"), "4096\n").expect("w");
        let mut sampler = Sampler::with_proc(&root);
        sampler.begin(
            [
                Target {
                    service: id(1),
                    pgid: 1,
                    cgroup: Some(cg.clone()),
                },
                Target {
                    service: id(2),
                    pgid: 300,
                    cgroup: Some(root.join("no-such-cgroup")),
                },
            ],
            at(0),
        );
        sampler.begin([], at(0)); // one under way: not replaced
        while !sampler.step(at(1)) {}
        let from_files = sampler.get(id(1), 1).expect("cgroup files");
        assert_eq!(from_files.cpu_secs, 1.5);
        assert_eq!(from_files.memory_bytes, 4096);
        assert!(sampler.get(id(2), 300).is_some(), "fell back to the group");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_group_gone_has_no_figure_and_a_missing_proc_ends_the_sweep() {
        let mut sampler = Sampler::with_proc(Path::new("/no/such/proc"));
        assert_eq!(sampler.age(at(0)), None, "no figures yet");
        sampler.begin(
            [Target {
                service: id(1),
                pgid: 5,
                cgroup: None,
            }],
            at(0),
        );
        assert!(sampler.step(at(0)), "nothing to read: done at once");
        assert_eq!(sampler.get(id(1), 5), None);
        assert!(sampler.is_fresh(at(0)));
    }
}
