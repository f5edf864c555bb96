//! Resource use, read when asked and never polled: the CPU time and memory of
//! services (for `tend status --json` and the metrics endpoint) and of tend
//! itself (the standard `process_*` metrics).
//!
//! A service without a cgroup is measured as its process group: one pass over
//! `/proc/*/stat` ([`GroupScan`]) serves every service at once (grouped by
//! `pgrp`), so the use of 1000 services costs one scan of `/proc`, not 1000;
//! `sampler.rs` takes that pass in slices between events. CPU time is user +
//! system of every member, plus the times of the members' children they have
//! already waited for (`cutime`, `cstime`), so the total does not drop when a
//! shell's child exits; memory is the sum of the members' RSS (shared pages
//! count once per process, as `ps` shows them). A service with a cgroup is
//! read from the cgroup's own files instead (`cpu.stat` `usage_usec`,
//! `memory.current`), which also count what left the process group.
//!
//! Must not: trust a `/proc` file's contents (a process name may hold spaces,
//! parentheses and newlines; files vanish mid-scan). Read first:
//! [`GroupScan`], [`parse_stat`].

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::sys;

/// The CPU time and memory of one service.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// User + system CPU seconds since the process group (or cgroup) began.
    pub cpu_secs: f64,
    /// Resident memory in bytes.
    pub memory_bytes: u64,
}

/// The fields of `/proc/PID/stat` tend uses (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub pgrp: i32,
    /// CPU times in clock ticks: user, system, and of waited-for children.
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
    pub rss_pages: u64,
}

impl ProcStat {
    fn all_ticks(&self) -> u64 {
        self.utime
            .saturating_add(self.stime)
            .saturating_add(self.cutime)
            .saturating_add(self.cstime)
    }
}

/// Tend's own resource use, for the `process_*` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OwnUsage {
    pub cpu_secs: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

/// Parses one `/proc/PID/stat` line. The name between the parentheses may
/// hold anything, `)` included, so the fields are counted from the *last*
/// `)`. `None` for anything that does not look like proc(5) says.
pub fn parse_stat(text: &[u8]) -> Option<ProcStat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = number(trim(&text[..open]))?;
    let mut fields = text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    // Field 3 (state) is index 0 here; see proc(5) for the numbering.
    let mut at = |index: usize| -> Option<&[u8]> { fields.nth(index) };
    let _state = at(0)?;
    let pgrp = number(at(1)?)?; // field 5 (after ppid)
    let utime = number(at(8)?)?; // field 14
    let stime = number(at(0)?)?;
    let cutime = number::<i64>(at(0)?)?.max(0) as u64;
    let cstime = number::<i64>(at(0)?)?.max(0) as u64;
    let start_ticks = number(at(4)?)?; // field 22
    let rss = number::<i64>(at(1)?)?.max(0) as u64; // field 24
    Some(ProcStat {
        pid,
        pgrp,
        utime,
        stime,
        cutime,
        cstime,
        start_ticks,
        rss_pages: rss,
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

fn number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// A pass over `/proc` (or a copy of it, in tests) summing the use of the
/// processes whose group is wanted, taken in slices ([`GroupScan::step`]) so
/// that a system of many processes never stalls the loop: one slice reads a
/// bounded number of entries.
pub struct GroupScan {
    /// `None` once the listing is exhausted (or could not be opened).
    entries: Option<std::fs::ReadDir>,
    wanted: HashSet<i32>,
    /// Ticks and resident pages by group.
    sums: HashMap<i32, (u64, u64)>,
    buf: Vec<u8>,
}

impl GroupScan {
    pub fn new(root: &Path, pgids: HashSet<i32>) -> GroupScan {
        let entries = if pgids.is_empty() {
            None
        } else {
            std::fs::read_dir(root).ok()
        };
        GroupScan {
            entries,
            sums: HashMap::with_capacity(pgids.len()),
            wanted: pgids,
            buf: Vec::with_capacity(512),
        }
    }

    /// A group to sum as well, from here on (a cgroup whose files could not
    /// be read falls back to its process group).
    pub fn add(&mut self, pgid: i32) {
        self.wanted.insert(pgid);
    }

    /// Reads up to `entries` more entries; true when the pass is over.
    pub fn step(&mut self, entries: usize) -> bool {
        let Some(listing) = &mut self.entries else {
            return true;
        };
        for _ in 0..entries {
            let Some(entry) = listing.next() else {
                self.entries = None;
                return true;
            };
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let is_pid = name.as_encoded_bytes().iter().all(u8::is_ascii_digit);
            if !is_pid || name.is_empty() {
                continue;
            }
            // Processes come and go during the scan: a vanished one is skipped.
            let Some(stat) =
                read_small(&entry.path().join("stat"), &mut self.buf).and_then(parse_stat)
            else {
                continue;
            };
            if !self.wanted.contains(&stat.pgrp) {
                continue;
            }
            let sum = self.sums.entry(stat.pgrp).or_insert((0, 0));
            sum.0 = sum.0.saturating_add(stat.all_ticks());
            sum.1 = sum.1.saturating_add(stat.rss_pages);
        }
        false
    }

    /// The summed use by group; groups with no member found are absent.
    pub fn finish(self) -> HashMap<i32, Usage> {
        let hz = sys::clock_ticks_per_second() as f64;
        let page = sys::page_size();
        self.sums
            .into_iter()
            .map(|(pgid, (ticks, pages))| {
                let usage = Usage {
                    cpu_secs: ticks as f64 / hz,
                    memory_bytes: pages.saturating_mul(page),
                };
                (pgid, usage)
            })
            .collect()
    }
}

/// One whole pass over `root` for `pgids` (tests; the runtime steps).
#[cfg(test)]
pub fn scan_groups(root: &Path, pgids: &[i32]) -> HashMap<i32, Usage> {
    let mut scan = GroupScan::new(root, pgids.iter().copied().collect());
    while !scan.step(usize::MAX) {}
    scan.finish()
}

/// Reads a cgroup v2 folder's `cpu.stat` (`usage_usec`) and `memory.current`;
/// where the memory controller is not enabled for it (no `memory.current`),
/// the memory is the RSS of the processes its `cgroup.procs` lists. `None` if
/// neither can be read.
pub fn read_cgroup(dir: &Path) -> Option<Usage> {
    let mut buf = Vec::with_capacity(512);
    let cpu = read_small(&dir.join("cpu.stat"), &mut buf)?;
    let usec: u64 = cpu.split(|&b| b == b'\n').find_map(|line| {
        let value = line.strip_prefix(b"usage_usec ")?;
        number(trim(value))
    })?;
    let memory: u64 = match read_small(&dir.join("memory.current"), &mut buf) {
        Some(text) => number(trim(text))?,
        None => members_rss(dir, &mut buf)?,
    };
    Some(Usage {
        cpu_secs: usec as f64 / 1e6,
        memory_bytes: memory,
    })
}

/// The summed RSS of the processes in a cgroup's `cgroup.procs`.
fn members_rss(dir: &Path, buf: &mut Vec<u8>) -> Option<u64> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
    let pages = procs
        .lines()
        .filter_map(|pid| pid.trim().parse::<u32>().ok())
        .filter_map(|pid| {
            read_small(Path::new(&format!("/proc/{pid}/stat")), buf).and_then(parse_stat)
        })
        .fold(0u64, |sum, stat| sum.saturating_add(stat.rss_pages));
    Some(pages.saturating_mul(sys::page_size()))
}

/// Tend's own use: `/proc/self/stat`, `/proc/self/fd`, `/proc/self/limits`.
pub fn own() -> OwnUsage {
    let mut buf = Vec::with_capacity(512);
    let stat = read_small(Path::new("/proc/self/stat"), &mut buf).and_then(parse_stat);
    let hz = sys::clock_ticks_per_second() as f64;
    // Tend's own time: not its children's (services are measured apart).
    let cpu_secs = stat.map(|s| s.utime.saturating_add(s.stime) as f64 / hz);
    let resident_bytes = stat.map(|s| s.rss_pages.saturating_mul(sys::page_size()));
    // The listing's own fd shows up in it: leave it out.
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| (d.count() as u64).saturating_sub(1));
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| soft_limit(&text, "Max open files"));
    OwnUsage {
        cpu_secs,
        resident_bytes,
        open_fds,
        max_fds,
    }
}

/// When tend started, in seconds since the Unix epoch: its start time after
/// boot (`/proc/self/stat`) plus the boot time (`btime` in `/proc/stat`).
pub fn own_start_time() -> Option<f64> {
    let mut buf = Vec::with_capacity(512);
    let stat = read_small(Path::new("/proc/self/stat"), &mut buf).and_then(parse_stat)?;
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())?;
    Some(btime as f64 + stat.start_ticks as f64 / sys::clock_ticks_per_second() as f64)
}

/// The soft limit of a `/proc/PID/limits` row (`None` when `unlimited`).
pub fn soft_limit(limits: &str, row: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with(row))?;
    line[row.len()..].split_whitespace().next()?.parse().ok()
}

/// Reads a small file (at most 4 KiB: a stat line, a cgroup counter) into
/// `buf`, which is reused between calls.
fn read_small<'a>(path: &Path, buf: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    buf.clear();
    let file = File::open(path).ok()?;
    file.take(4096).read_to_end(buf).ok()?;
    Some(buf.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line of proc(5)'s layout: 52 fields.
    fn line(pid: i32, comm: &str, pgrp: i32, utime: u64, stime: u64, rss: i64) -> String {
        format!(
            "{pid} ({comm}) S 1 {pgrp} {pgrp} 0 -1 4194560 120 0 0 0 {utime} {stime} 3 4 20 0 1 0 \
             12345 8192000 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn parses_the_fields_after_the_last_parenthesis() {
        let s = parse_stat(line(42, "sleep", 40, 7, 5, 300).as_bytes()).expect("parses");
        assert_eq!(
            s,
            ProcStat {
                pid: 42,
                pgrp: 40,
                utime: 7,
                stime: 5,
                cutime: 3,
                cstime: 4,
                start_ticks: 12345,
                rss_pages: 300,
            }
        );
        // Names with spaces, parentheses, a fake field list and a newline.
        for comm in ["a b", ") S 1 999 999", "((x))", "x)", "(", "new\nline", ""] {
            let s = parse_stat(line(7, comm, 6, 1, 2, 3).as_bytes()).expect(comm);
            assert_eq!(
                (s.pid, s.pgrp, s.utime, s.stime, s.rss_pages),
                (7, 6, 1, 2, 3)
            );
        }
        // A negative RSS or child time (never written, but typed signed) is 0.
        let s = parse_stat(line(1, "x", 1, 0, 0, -5).as_bytes()).expect("parses");
        assert_eq!(s.rss_pages, 0);
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        let good = line(42, "a) (b", 40, 7, 5, 300);
        for bad in [
            "",
            "(",
            ")",
            ")(",
            "42 (x)",
            "x (y) S 1 2",
            "42 (x) S 1 -",
            "\u{0}",
        ] {
            assert_eq!(parse_stat(bad.as_bytes()), None, "{bad:?}");
        }
        for i in 0..good.len() {
            let _ = parse_stat(&good.as_bytes()[..i]);
        }
        // Mutated lines: any byte anywhere.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = good.clone().into_bytes();
            let at = (state % bytes.len() as u64) as usize;
            bytes[at] = (state >> 32) as u8;
            let _ = parse_stat(&bytes);
        }
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("metrics-usage-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn one_scan_groups_by_process_group() {
        let root = temp("proc");
        let procs = [
            (10, 10, 100, 50, 10),
            (11, 10, 1, 1, 5),
            (20, 20, 7, 0, 1),
            (30, 30, 9, 9, 9),
        ];
        for (pid, pgrp, u, s, rss) in procs {
            let dir = root.join(pid.to_string());
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("stat"), line(pid, "w (1)", pgrp, u, s, rss)).expect("w");
        }
        // Not processes, or unreadable: skipped.
        std::fs::create_dir_all(root.join("self")).expect("dir");
        std::fs::create_dir_all(root.join("99")).expect("dir");
        std::fs::write(root.join("98"), "not a folder").expect("w");
        let got = scan_groups(&root, &[10, 20, 77]);
        let hz = sys::clock_ticks_per_second() as f64;
        let page = sys::page_size();
        // cutime + cstime (3 + 4) count for every member.
        assert_eq!(got[&10].cpu_secs, (150 + 7 + 2 + 7) as f64 / hz);
        assert_eq!(got[&10].memory_bytes, 15 * page);
        assert_eq!(got[&20].memory_bytes, page);
        assert!(!got.contains_key(&30) && !got.contains_key(&77));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn cgroup_files_are_read_and_a_missing_one_falls_back() {
        let cg = temp("cg");
        std::fs::write(
            cg.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        )
        .expect("w");
        assert_eq!(read_cgroup(&cg), None, "no memory.current yet");
        // Without the memory controller: the members' RSS (this process here).
        std::fs::write(cg.join("cgroup.procs"), format!("{}\n", std::process::id())).expect("w");
        let rss = read_cgroup(&cg).expect("members' RSS");
        assert!(rss.memory_bytes > 0 && rss.cpu_secs == 2.5, "{rss:?}");
        std::fs::write(cg.join("memory.current"), "1048576\n").expect("w");
        assert_eq!(
            read_cgroup(&cg),
            Some(Usage {
                cpu_secs: 2.5,
                memory_bytes: 1 << 20
            })
        );
        let _ = std::fs::remove_dir_all(&cg);
    }

    #[test]
    fn measures_this_process_group_and_itself() {
        // The test binary's own group has at least this process in it.
        let mut buf = Vec::new();
        let me = read_small(Path::new("/proc/self/stat"), &mut buf)
            .and_then(parse_stat)
            .expect("own stat");
        assert_eq!(me.pid, std::process::id() as i32);
        let got = scan_groups(Path::new("/proc"), &[me.pgrp]);
        assert!(
            got.get(&me.pgrp).is_some_and(|u| u.memory_bytes > 0),
            "{got:?}"
        );
        let own = own();
        assert!(own.resident_bytes.is_some_and(|b| b > 0));
        assert!(own.open_fds.is_some_and(|n| n >= 3), "{own:?}");
        assert!(own.max_fds.is_some_and(|n| n >= 64), "{own:?}");
        let start = own_start_time().expect("start time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start} {now}"
        );
    }

    #[test]
    fn soft_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024));
        assert_eq!(soft_limit(limits, "Max cpu time"), None);
        assert_eq!(soft_limit(limits, "Max nothing"), None);
    }
}
