//! A service's namespaces (`isolate`) and scheduling settings (`nice`,
//! `io_priority`, `oom_score_adj`, `cpu_affinity`): what the caller asks for
//! ([`Namespaces`], [`Priorities`]), the form the parent prepares once per
//! definition ([`Prepared`]: the host name as bytes, the I/O priority as the
//! kernel's number, the OOM score as text, the CPU set as mask words), and the
//! child's raw system calls that apply it.
//!
//! Must not (in the child's part, [`Prepared::isolate`] and
//! [`Prepared::prioritize`]): allocate, call libc, or write anything but the
//! child's own stack, as everything between clone and exec (`child.rs`). Every
//! constant passed is the same on x86_64 and aarch64: the `CLONE_NEW*` and
//! `MS_*` flags, `SIOC[GS]IFFLAGS`, `AF_INET`/`SOCK_DGRAM`/`SOCK_CLOEXEC` and
//! `struct ifreq` (40 bytes) are the generic Linux ABI on both (they differ only
//! on MIPS, SPARC, PowerPC and Alpha, which tend does not build for); the
//! `ioprio` encoding is `include/uapi/linux/ioprio.h`.

use super::Stage;
use super::child::raw;

/// New namespaces for a child; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// A new network namespace whose loopback interface is brought up.
    pub network: bool,
    /// A private mount namespace with a fresh tmpfs on `/tmp` and `/var/tmp`.
    pub tmp: bool,
    /// A new System V IPC / POSIX message queue namespace.
    pub ipc: bool,
    /// A new UTS namespace with this host name.
    pub hostname: Option<String>,
}

/// The I/O scheduling classes of `ioprio_set(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoClass {
    Realtime,
    BestEffort,
    Idle,
}

impl IoClass {
    /// `IOPRIO_CLASS_RT`, `_BE`, `_IDLE`.
    fn number(self) -> u16 {
        match self {
            IoClass::Realtime => 1,
            IoClass::BestEffort => 2,
            IoClass::Idle => 3,
        }
    }
}

/// Scheduling settings for a child; all left as inherited by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Priorities {
    /// `setpriority(PRIO_PROCESS)`: -20 (most favourable) to 19.
    pub nice: Option<i32>,
    /// `ioprio_set(IOPRIO_WHO_PROCESS)`: the class and its level 0 (highest) to
    /// 7; the kernel ignores the level of `Idle`.
    pub io_priority: Option<(IoClass, u8)>,
    /// Written to `/proc/self/oom_score_adj`: -1000 to 1000.
    pub oom_score_adj: Option<i32>,
    /// `sched_setaffinity`: the CPUs the child may run on (numbers below 1024).
    pub cpu_affinity: Option<Vec<u32>>,
}

/// `IOPRIO_CLASS_SHIFT`: the class sits above 13 bits of level.
const IOPRIO_CLASS_SHIFT: u16 = 13;
/// `IOPRIO_WHO_PROCESS` (`which` of ioprio_set).
const IOPRIO_WHO_PROCESS: usize = 1;
/// `PRIO_PROCESS` (`which` of setpriority; libc types it differently per libc).
const PRIO_PROCESS: usize = 0;
/// The highest CPU number a mask holds (a `cpu_set_t` has 1024 bits).
const MAX_CPUS: usize = 1024;
/// Room for `-1000` and more: the longest OOM score text.
const OOM_TEXT: usize = 12;

/// `struct ifreq` as `SIOCGIFFLAGS`/`SIOCSIFFLAGS` read it: the interface name,
/// then a union whose first member here is `ifr_flags`; 40 bytes on 64-bit
/// Linux (the union's largest member, `struct ifmap`, is 24 bytes).
#[repr(C, align(8))]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _rest: [u8; 22],
}

const _: () = assert!(std::mem::size_of::<IfReq>() == 40);

/// Namespaces and priorities in the form the child's system calls take them,
/// prepared by the parent so the child only passes pointers.
#[derive(Debug, Clone, Default)]
pub(super) struct Prepared {
    network: bool,
    tmp: bool,
    ipc: bool,
    hostname: Option<Vec<u8>>,
    nice: Option<i32>,
    ioprio: Option<u16>,
    /// The OOM score as decimal text, and its length.
    oom_score_adj: Option<([u8; OOM_TEXT], usize)>,
    /// CPU mask words: bit `n % 64` of word `n / 64` is CPU `n`.
    cpus: Option<Vec<u64>>,
}

/// Nothing to set up: what a plan without any of these settings reads.
pub(super) static NONE: Prepared = Prepared {
    network: false,
    tmp: false,
    ipc: false,
    hostname: None,
    nice: None,
    ioprio: None,
    oom_score_adj: None,
    cpus: None,
};

impl Prepared {
    /// Whether nothing is set (the child does nothing here).
    pub(super) fn is_empty(&self) -> bool {
        !self.isolates()
            && self.nice.is_none()
            && self.ioprio.is_none()
            && self.oom_score_adj.is_none()
            && self.cpus.is_none()
    }

    pub(super) fn set_namespaces(&mut self, ns: &Namespaces) {
        self.network = ns.network;
        self.tmp = ns.tmp;
        self.ipc = ns.ipc;
        self.hostname = ns.hostname.as_ref().map(|h| h.as_bytes().to_vec());
    }

    pub(super) fn set_priorities(&mut self, p: &Priorities) {
        self.nice = p.nice;
        self.ioprio = p
            .io_priority
            .map(|(class, level)| (class.number() << IOPRIO_CLASS_SHIFT) | u16::from(level & 7));
        self.oom_score_adj = p.oom_score_adj.map(oom_text);
        self.cpus = p.cpu_affinity.as_deref().map(cpu_mask);
    }

    /// Whether the child must be a `CLONE_VFORK` child even in a concurrent
    /// batch: the kernel copies an `oom_score_adj` written by a process that
    /// shares its memory with others (`CLONE_VM` without `CLONE_VFORK`) to all
    /// of them, tend included (`__set_oom_adj`, `MMF_MULTIPROCESS`).
    #[cfg(all(target_arch = "x86_64", not(tend_serial_spawn)))]
    pub(super) fn needs_vfork(&self) -> bool {
        self.oom_score_adj.is_some()
    }

    /// Whether any namespace is asked for.
    pub(super) fn isolates(&self) -> bool {
        self.network || self.tmp || self.ipc || self.hostname.is_some()
    }

    /// In the child, before the credentials change (every step needs
    /// CAP_SYS_ADMIN): the new namespaces, each its own stage on failure.
    ///
    /// # Safety
    /// Only in the clone child (see `child.rs`), with `self` alive.
    pub(super) unsafe fn isolate(&self) -> Result<(), (Stage, libc::c_int)> {
        // SAFETY: system calls with flags, static strings and this plan's data.
        unsafe {
            if self.network {
                let stage = |e| (Stage::IsolateNetwork, e);
                unshare(libc::CLONE_NEWNET).map_err(stage)?;
                loopback_up().map_err(stage)?;
            }
            if self.tmp {
                let stage = |e| (Stage::IsolateTmp, e);
                unshare(libc::CLONE_NEWNS).map_err(stage)?;
                // Mounts made here must not propagate back to tend's namespace
                // (a shared `/`, as systemd sets it up, would carry them).
                let private = (libc::MS_REC | libc::MS_PRIVATE) as usize;
                raw(libc::SYS_mount, [0, c"/".as_ptr() as usize, 0, private, 0]).map_err(stage)?;
                for dir in [c"/tmp", c"/var/tmp"] {
                    let flags = (libc::MS_NOSUID | libc::MS_NODEV) as usize;
                    let mounted = raw(
                        libc::SYS_mount,
                        [
                            c"tmpfs".as_ptr() as usize,
                            dir.as_ptr() as usize,
                            c"tmpfs".as_ptr() as usize,
                            flags,
                            c"mode=1777".as_ptr() as usize,
                        ],
                    );
                    match mounted {
                        // No such folder (a minimal image): nothing is shared there.
                        Ok(_) | Err(libc::ENOENT) => {}
                        Err(errno) => return Err(stage(errno)),
                    }
                }
            }
            if self.ipc {
                unshare(libc::CLONE_NEWIPC).map_err(|e| (Stage::IsolateIpc, e))?;
            }
            if let Some(name) = &self.hostname {
                let stage = |e| (Stage::IsolateHostname, e);
                unshare(libc::CLONE_NEWUTS).map_err(stage)?;
                raw(libc::SYS_sethostname, [name.as_ptr() as usize, name.len()]).map_err(stage)?;
            }
        }
        Ok(())
    }

    /// In the child, before the credentials change (a lower nice value, a
    /// lower OOM score and the realtime I/O class need privileges): the
    /// scheduling settings, each its own stage on failure.
    ///
    /// # Safety
    /// Only in the clone child (see `child.rs`), with `self` alive.
    pub(super) unsafe fn prioritize(&self) -> Result<(), (Stage, libc::c_int)> {
        // SAFETY: system calls with plain values and this plan's data.
        unsafe {
            if let Some(nice) = self.nice {
                // The system call takes the nice value itself (sign-extended).
                let args = [PRIO_PROCESS, 0, nice as isize as usize];
                raw(libc::SYS_setpriority, args).map_err(|e| (Stage::Nice, e))?;
            }
            if let Some(ioprio) = self.ioprio {
                let args = [IOPRIO_WHO_PROCESS, 0, usize::from(ioprio)];
                raw(libc::SYS_ioprio_set, args).map_err(|e| (Stage::IoPriority, e))?;
            }
            if let Some((text, len)) = &self.oom_score_adj {
                write_file(c"/proc/self/oom_score_adj", text, *len)
                    .map_err(|e| (Stage::OomScoreAdj, e))?;
            }
            if let Some(words) = &self.cpus {
                let bytes = std::mem::size_of_val(words.as_slice());
                let args = [0, bytes, words.as_ptr() as usize];
                raw(libc::SYS_sched_setaffinity, args).map_err(|e| (Stage::CpuAffinity, e))?;
            }
        }
        Ok(())
    }
}

/// `unshare(flag)`.
///
/// # Safety
/// Only in the clone child.
unsafe fn unshare(flag: libc::c_int) -> Result<(), libc::c_int> {
    // SAFETY: unshare takes flags only.
    unsafe { raw(libc::SYS_unshare, [flag as usize]).map(drop) }
}

/// Bring `lo` of the (new) network namespace up, as `ip link set lo up` does:
/// read its flags, add `IFF_UP`, write them back.
///
/// # Safety
/// Only in the clone child.
unsafe fn loopback_up() -> Result<(), libc::c_int> {
    let kind = (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as usize;
    // SAFETY: socket, two ioctls on a struct ifreq of this stack, close.
    unsafe {
        let fd = raw(libc::SYS_socket, [libc::AF_INET as usize, kind, 0])? as usize;
        let mut request = IfReq {
            name: [0; 16],
            flags: 0,
            _rest: [0; 22],
        };
        request.name[0] = b'l';
        request.name[1] = b'o';
        let at = &mut request as *mut IfReq as usize;
        let mut result = raw(libc::SYS_ioctl, [fd, libc::SIOCGIFFLAGS as usize, at]);
        if result.is_ok() {
            request.flags |= libc::IFF_UP as libc::c_short;
            let at = &mut request as *mut IfReq as usize;
            result = raw(libc::SYS_ioctl, [fd, libc::SIOCSIFFLAGS as usize, at]);
        }
        let _ = raw(libc::SYS_close, [fd]);
        result.map(drop)
    }
}

/// Write `text[..len]` to the file at `path` (opened write-only, then closed).
///
/// # Safety
/// Only in the clone child.
unsafe fn write_file(
    path: &std::ffi::CStr,
    text: &[u8; OOM_TEXT],
    len: usize,
) -> Result<(), libc::c_int> {
    let flags = (libc::O_WRONLY | libc::O_CLOEXEC) as usize;
    let at = libc::AT_FDCWD as usize;
    // SAFETY: openat with a static path, a write from this plan, close.
    unsafe {
        let fd = raw(libc::SYS_openat, [at, path.as_ptr() as usize, flags, 0])? as usize;
        let written = raw(
            libc::SYS_write,
            [fd, text.as_ptr() as usize, len.min(OOM_TEXT)],
        );
        let _ = raw(libc::SYS_close, [fd]);
        written.map(drop)
    }
}

/// `n` as decimal text in a fixed buffer, and its length.
fn oom_text(n: i32) -> ([u8; OOM_TEXT], usize) {
    let mut buf = [0u8; OOM_TEXT];
    let text = n.to_string();
    let len = text.len().min(OOM_TEXT);
    for (slot, byte) in buf.iter_mut().zip(text.bytes()) {
        *slot = byte;
    }
    (buf, len)
}

/// The mask words for `cpus`, as long as the highest CPU needs (numbers of
/// 1024 and more are left out: the kernel knows no such CPU).
fn cpu_mask(cpus: &[u32]) -> Vec<u64> {
    let cpus: Vec<usize> = cpus
        .iter()
        .map(|&c| c as usize)
        .filter(|&c| c < MAX_CPUS)
        .collect();
    let words = cpus.iter().max().map_or(1, |&top| top / 64 + 1);
    let mut mask = vec![0u64; words];
    for cpu in cpus {
        if let Some(word) = mask.get_mut(cpu / 64) {
            *word |= 1 << (cpu % 64);
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_priorities_encode_as_the_kernel_reads_them() {
        let mut p = Prepared::default();
        for (class, level, value) in [
            (IoClass::Realtime, 0, 1 << 13),
            (IoClass::BestEffort, 4, (2 << 13) | 4),
            (IoClass::BestEffort, 7, (2 << 13) | 7),
            (IoClass::Idle, 0, 3 << 13),
        ] {
            p.set_priorities(&Priorities {
                io_priority: Some((class, level)),
                ..Priorities::default()
            });
            assert_eq!(p.ioprio, Some(value), "{class:?} {level}");
        }
    }

    #[test]
    fn cpu_masks_have_a_bit_per_cpu() {
        assert_eq!(cpu_mask(&[0]), vec![1]);
        assert_eq!(cpu_mask(&[0, 1, 63]), vec![(1 << 63) | 3]);
        assert_eq!(cpu_mask(&[64]), vec![0, 1]);
        assert_eq!(cpu_mask(&[1023]).len(), 16);
        assert_eq!(cpu_mask(&[5000]), vec![0]);
    }

    #[test]
    fn oom_scores_are_decimal_text() {
        for n in [-1000, -1, 0, 7, 1000] {
            let (buf, len) = oom_text(n);
            assert_eq!(&buf[..len], n.to_string().as_bytes());
        }
    }
}
