//! The kernel's cgroup files as text: where cgroup v2 is mounted
//! (`/proc/self/mountinfo`), which cgroup tend is in (`/proc/self/cgroup`),
//! whether a cgroup holds processes (`cgroup.events`), which controllers it
//! offers (`cgroup.controllers`) and who is in it (`cgroup.procs`).
//!
//! Pure functions over text the kernel wrote; nothing here reads a file.
//! Bad or unexpected text gives `None` or nothing, never a panic.

use std::path::PathBuf;

/// A cgroup2 mount: the cgroup it shows (`root`, as the mount's namespace
/// names it) at the folder `point`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub root: String,
    pub point: PathBuf,
}

/// Every cgroup2 mount in a `/proc/PID/mountinfo` (proc(5)): `ID PARENT
/// MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`, with
/// spaces, tabs, newlines and backslashes in paths written as `\ooo`.
pub fn cgroup2_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            if dash < 6 || fields.get(dash + 1) != Some(&"cgroup2") {
                return None;
            }
            let root = unescape(fields.get(3)?)?;
            let point = unescape(fields.get(4)?)?;
            if !root.starts_with('/') || !point.starts_with('/') {
                return None;
            }
            Some(Mount {
                root,
                point: PathBuf::from(point),
            })
        })
        .collect()
}

/// A mountinfo path with its `\ooo` octal escapes undone; `None` for a bad one.
fn unescape(field: &str) -> Option<String> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            let digits = bytes.get(i + 1..i + 4)?;
            let mut value: u32 = 0;
            for d in digits {
                if !(b'0'..=b'7').contains(d) {
                    return None;
                }
                value = value * 8 + u32::from(d - b'0');
            }
            out.push(u8::try_from(value).ok()?);
            i += 4;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The cgroup v2 path of a `/proc/PID/cgroup` (the `0::PATH` line), as the
/// reader's cgroup namespace names it. `None` without one, or when the path
/// leads out of the namespace (`/../..`: the cgroup is not visible from here).
pub fn own_path(proc_cgroup: &str) -> Option<String> {
    let path = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    let sound = path.starts_with('/') && !path.split('/').any(|part| part == ".." || part == ".");
    sound.then(|| path.to_string())
}

/// The folder of cgroup `path` under one of `mounts`: the first mount whose
/// root is `path` or above it.
pub fn locate(mounts: &[Mount], path: &str) -> Option<PathBuf> {
    mounts.iter().find_map(|m| {
        let rest = if m.root == "/" {
            path.strip_prefix('/')?
        } else if path == m.root {
            ""
        } else {
            path.strip_prefix(m.root.as_str())?.strip_prefix('/')?
        };
        let rest = rest.trim_end_matches('/');
        Some(if rest.is_empty() {
            m.point.clone()
        } else {
            m.point.join(rest)
        })
    })
}

/// `populated` of a `cgroup.events` (`populated 1\nfrozen 0\n`): whether the
/// cgroup or a cgroup below it holds a live process.
pub fn populated(events: &str) -> Option<bool> {
    events.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "populated" {
            return None;
        }
        match (words.next()?, words.next()) {
            ("0", None) => Some(false),
            ("1", None) => Some(true),
            _ => None,
        }
    })
}

/// The names in a `cgroup.controllers` or `cgroup.subtree_control`
/// (`cpuset cpu io memory pids`).
pub fn controllers(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// The pids in a `cgroup.procs` (one per line); anything else is skipped.
pub fn pids(procs: &str) -> Vec<i32> {
    procs
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mountinfo of a hybrid host (as this project's CI machine has it), a
    /// unified one, and a container with a private cgroup namespace.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const UNIFIED: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const CONTAINER: &str = "\
612 540 0:52 / / rw,relatime master:292 - overlay overlay rw,lowerdir=/a
620 612 0:57 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate
";

    #[test]
    fn finds_the_cgroup2_mounts() {
        assert_eq!(
            cgroup2_mounts(HYBRID),
            vec![Mount {
                root: "/".into(),
                point: "/sys/fs/cgroup/unified".into()
            }]
        );
        assert_eq!(
            cgroup2_mounts(UNIFIED)[0].point,
            PathBuf::from("/sys/fs/cgroup")
        );
        assert_eq!(cgroup2_mounts(CONTAINER).len(), 1);
        // Optional fields before the dash, escapes in the paths.
        let odd = "40 31 0:38 /a\\040b /mnt/c\\134g\\012x rw shared:3 master:1 - cgroup2 none rw\n";
        assert_eq!(
            cgroup2_mounts(odd),
            vec![Mount {
                root: "/a b".into(),
                point: "/mnt/c\\g\nx".into()
            }]
        );
        // A v1 hierarchy, a bad escape, missing fields: none of them.
        for bad in [
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
            "41 31 0:38 / /x\\9 rw - cgroup2 cgroup2 rw",
            "41 31 0:38 / /x\\04 rw - cgroup2 cgroup2 rw",
            "41 31 0:38 / /x\\777 rw - cgroup2 cgroup2 rw",
            "41 31 - cgroup2 cgroup2 rw",
            "41 31 0:38 x /x rw - cgroup2 cgroup2 rw",
            "- cgroup2",
            "",
        ] {
            assert!(cgroup2_mounts(bad).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn reads_the_own_cgroup_path() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/2e3b\n0::/\n";
        assert_eq!(own_path(hybrid).as_deref(), Some("/"));
        assert_eq!(
            own_path("0::/system.slice/tend.service\n").as_deref(),
            Some("/system.slice/tend.service")
        );
        assert_eq!(own_path("0::/gone (deleted)\n").as_deref(), Some("/gone"));
        for bad in [
            "0::/../../x\n",
            "0::/a/./b",
            "0::relative",
            "1:cpu:/x\n",
            "",
            "0:",
        ] {
            assert_eq!(own_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn locates_a_cgroup_under_its_mount() {
        let mounts = cgroup2_mounts(HYBRID);
        assert_eq!(
            locate(&mounts, "/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            locate(&mounts, "/a/b/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/a/b"))
        );
        // A mount of a subtree: only paths at or below its root.
        let sub = vec![Mount {
            root: "/kubepods/pod1".into(),
            point: "/sys/fs/cgroup".into(),
        }];
        assert_eq!(
            locate(&sub, "/kubepods/pod1"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            locate(&sub, "/kubepods/pod1/c"),
            Some(PathBuf::from("/sys/fs/cgroup/c"))
        );
        assert_eq!(locate(&sub, "/kubepods/pod10"), None);
        assert_eq!(locate(&sub, "/other"), None);
        assert_eq!(locate(&[], "/"), None);
    }

    #[test]
    fn reads_events_controllers_and_procs() {
        assert_eq!(populated("populated 1\nfrozen 0\n"), Some(true));
        assert_eq!(populated("frozen 0\npopulated 0\n"), Some(false));
        for bad in [
            "",
            "populated",
            "populated 2",
            "populated 1 1",
            "populatedx 1",
        ] {
            assert_eq!(populated(bad), None, "{bad:?}");
        }
        assert_eq!(
            controllers("cpuset cpu io memory hugetlb pids rdma misc\n"),
            vec![
                "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"
            ]
        );
        assert!(controllers("\n").is_empty());
        assert_eq!(pids("12\n345\n\nx\n-3\n0\n 7 \n"), vec![12, 345, 7]);
    }

    /// Mutated inputs: any byte anywhere, cut anywhere; never a panic.
    #[test]
    fn mutated_files_never_panic() {
        let samples = [
            HYBRID.to_string() + UNIFIED + CONTAINER,
            "9:name=systemd:/\n0::/a/b\n".to_string(),
            "populated 1\nfrozen 0\n".to_string(),
            "12\n345\n".to_string(),
            "40 31 0:38 /a\\040b /mnt/c\\134g rw shared:3 - cgroup2 none rw\n".to_string(),
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for sample in &samples {
            for _ in 0..4000 {
                let mut bytes = sample.clone().into_bytes();
                for _ in 0..1 + next() % 3 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = (next() >> 24) as u8;
                }
                let cut = (next() % (bytes.len() as u64 + 1)) as usize;
                let text = String::from_utf8_lossy(&bytes[..cut]);
                let mounts = cgroup2_mounts(&text);
                if let Some(path) = own_path(&text) {
                    let _ = locate(&mounts, &path);
                }
                let _ = locate(&mounts, &text);
                let _ = (populated(&text), controllers(&text), pids(&text));
            }
        }
    }
}
