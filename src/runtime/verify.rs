//! Binary checksums (SPEC §2 `sha256`): the file a service's program is
//! exec'ed from must have the configured SHA-256, checked before every spawn.
//!
//! Per spawn: open the file (close-on-exec, non-blocking so a FIFO cannot
//! hang the loop) and `fstat` it. Its identity (device, inode, size, mtime
//! and ctime in ns: a write changes mtime or ctime, a replacement the inode)
//! is looked up among the files already hashed; a hit answers at once, so a
//! crash-looping service reads nothing but the `fstat`. A miss starts a hash
//! of that open file, [`Verifier::work`] reads it in pieces of [`PIECE`]
//! bytes for about [`TURN_BUDGET`] per loop turn, and the spawn is answered
//! later: the loop goes on serving everything else meanwhile. Services that
//! share a file share its hash.
//!
//! Time of check and time of use: the spawn execs the same open file it
//! checked (`execveat(fd, "", AT_EMPTY_PATH)`) when it is an ELF binary, so
//! a file renamed over the path in between changes nothing. A script is
//! exec'ed by its path (the kernel hands the interpreter a path, and a
//! close-on-exec fd has none that survives the exec): for a script the check
//! holds up to the `fstat` right before the spawn. A write into the verified
//! file itself between that `fstat` and the exec is not caught.
//!
//! Must not: decide what a failure means for the service (the core does), or
//! block: reads are of a regular file, bounded per turn.
//!
//! Read first: [`Verifier::check`], then [`Verifier::work`].

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::hash::Hash;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::codec::sha256::{Sha256, to_hex};
use crate::machine::RunId;

/// Bytes read and hashed at a time (about 0.4 ms in a release build).
pub const PIECE: usize = 64 * 1024;
/// About this much hashing per loop turn (at least one piece), so that a
/// large binary never holds up signals, output or clients for long: a
/// request that takes a few turns (accept, read, answer) waits a few of
/// these. When nothing else happens, the loop comes round at once, so the
/// hash still runs at nearly full speed.
pub const TURN_BUDGET: Duration = Duration::from_millis(2);
/// At most this many bytes per loop turn, whatever the clock says.
const TURN_BYTES: usize = 4 * 1024 * 1024;

/// What a file is, as far as its content can have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// What hashing a file found.
#[derive(Debug, Clone, Copy)]
struct Hashed {
    digest: [u8; 32],
    /// It starts with the ELF magic: it can be exec'ed from its fd.
    elf: bool,
}

/// A spawn waiting for a hash: the core's run it answers. `S` names services
/// (the core's `ServiceId` in tend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter<S> {
    pub service: S,
    pub run: RunId,
}

/// The outcome of [`Verifier::check`].
#[derive(Debug)]
pub enum Verdict {
    /// The file has the digest: exec this open file (an ELF binary), or, with
    /// `None`, the path (a script).
    Verified(Option<OwnedFd>),
    /// The file cannot be read or has another digest; the message names it
    /// (`/usr/bin/app: sha256 mismatch: expected …, found …`).
    Failed(String),
    /// Hashing has begun: [`Verifier::work`] says when to spawn again.
    Deferred,
}

/// A hash that [`Verifier::work`] finished, for each run that waited on it.
#[derive(Debug)]
pub enum Finished<S> {
    /// The file is hashed: spawn again ([`Verifier::check`] now answers at
    /// once, unless the file changed meanwhile).
    Hashed(Waiter<S>),
    /// It could not be read.
    Failed(Waiter<S>, String),
}

/// A file being hashed, and the spawns waiting for it.
struct Job<S> {
    file: File,
    path: PathBuf,
    identity: Identity,
    hasher: Sha256,
    offset: u64,
    elf: bool,
    waiters: Vec<Waiter<S>>,
}

/// The digests known and the hashes under way; see the module doc.
pub struct Verifier<S> {
    /// Digests of the files hashed that some service last verified.
    known: HashMap<Identity, Hashed>,
    /// The file each service last verified: keeps its entry in `known`.
    by_service: HashMap<S, Identity>,
    jobs: Vec<Job<S>>,
    /// The job that gets the next piece (round robin).
    next: usize,
}

impl<S> Default for Verifier<S> {
    fn default() -> Self {
        Verifier {
            known: HashMap::new(),
            by_service: HashMap::new(),
            jobs: Vec::new(),
            next: 0,
        }
    }
}

impl<S: Copy + Eq + Hash> Verifier<S> {
    /// Check `path` for `waiter`'s spawn against `expected`.
    pub fn check(&mut self, waiter: Waiter<S>, path: &Path, expected: &[u8; 32]) -> Verdict {
        let (file, meta) = match open(path) {
            Ok(opened) => opened,
            Err(e) => return Verdict::Failed(format!("{}: {e}", path.display())),
        };
        if !meta.is_file() {
            return Verdict::Failed(format!("{}: not a regular file", path.display()));
        }
        let identity = Identity::of(&meta);
        if let Some(hashed) = self.known.get(&identity).copied() {
            self.remember(waiter.service, identity);
            if hashed.digest != *expected {
                return Verdict::Failed(mismatch(path, expected, &hashed.digest));
            }
            return Verdict::Verified(hashed.elf.then(|| OwnedFd::from(file)));
        }
        match self.jobs.iter_mut().find(|j| j.identity == identity) {
            Some(job) => job.waiters.push(waiter),
            None => self.jobs.push(Job {
                file,
                path: path.to_path_buf(),
                identity,
                hasher: Sha256::new(),
                offset: 0,
                elf: false,
                waiters: vec![waiter],
            }),
        }
        Verdict::Deferred
    }

    /// Whether a hash is under way (the loop must not sleep).
    pub fn has_work(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Hash for about `budget` (at least one piece, at most [`TURN_BYTES`]),
    /// reading into `buf`; returns the waiters of the hashes that finished.
    pub fn work(&mut self, buf: &mut [u8], budget: Duration) -> Vec<Finished<S>> {
        let mut finished = Vec::new();
        let started = Instant::now();
        let mut read = 0usize;
        while !self.jobs.is_empty() && read < TURN_BYTES {
            if self.next >= self.jobs.len() {
                self.next = 0;
            }
            let Some(job) = self.jobs.get_mut(self.next) else {
                break;
            };
            match job.step(buf) {
                Ok(0) => {
                    let job = self.jobs.swap_remove(self.next);
                    self.finish(job, &mut finished);
                }
                Ok(n) => {
                    read += n;
                    self.next += 1;
                }
                Err(e) => {
                    let job = self.jobs.swap_remove(self.next);
                    let message = format!("{}: {e}", job.path.display());
                    for waiter in job.waiters {
                        finished.push(Finished::Failed(waiter, message.clone()));
                    }
                }
            }
            if started.elapsed() >= budget {
                break;
            }
        }
        finished
    }

    /// Stop waiting for the runs `keep` refuses; a hash nobody waits for is
    /// dropped. Returns the runs taken out.
    pub fn abandon(&mut self, keep: impl Fn(&Waiter<S>) -> bool) -> Vec<Waiter<S>> {
        let mut dropped = Vec::new();
        for job in &mut self.jobs {
            job.waiters.retain(|w| {
                let kept = keep(w);
                if !kept {
                    dropped.push(*w);
                }
                kept
            });
        }
        self.jobs.retain(|job| !job.waiters.is_empty());
        dropped
    }

    /// A removed service: forget the file it verified.
    pub fn forget(&mut self, service: S) {
        self.by_service.remove(&service);
        self.sweep();
    }

    /// The file hashed: its digest is known if it did not change while it was
    /// read (else every waiter's retry hashes it again).
    fn finish(&mut self, job: Job<S>, finished: &mut Vec<Finished<S>>) {
        let Job {
            file,
            identity,
            hasher,
            elf,
            waiters,
            ..
        } = job;
        let digest = hasher.finish();
        let unchanged = file
            .metadata()
            .is_ok_and(|meta| Identity::of(&meta) == identity);
        if unchanged {
            self.known.insert(identity, Hashed { digest, elf });
        }
        finished.extend(waiters.into_iter().map(Finished::Hashed));
    }

    /// `service` now runs the file `identity`; drop digests no service uses.
    fn remember(&mut self, service: S, identity: Identity) {
        if self.by_service.insert(service, identity) != Some(identity) {
            self.sweep();
        }
    }

    fn sweep(&mut self) {
        let used: Vec<Identity> = self.by_service.values().copied().collect();
        self.known.retain(|identity, _| used.contains(identity));
    }

    /// How many digests are kept (for tests).
    #[cfg(test)]
    fn known_len(&self) -> usize {
        self.known.len()
    }
}

impl<S> Job<S> {
    /// Hash the next piece; `Ok(0)` at the end of the file.
    fn step(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let piece = buf.len().min(PIECE);
        let Some(buf) = buf.get_mut(..piece) else {
            return Ok(0);
        };
        let n = loop {
            match self.file.read_at(buf, self.offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if self.offset == 0 {
            self.elf = buf.get(..n).is_some_and(|b| b.starts_with(b"\x7fELF"));
        }
        if let Some(data) = buf.get(..n) {
            self.hasher.update(data);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Open `path` to read (close-on-exec; non-blocking, so that a FIFO put
/// there does not block the loop) and `fstat` it.
fn open(path: &Path) -> io::Result<(File, Metadata)> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// `/usr/bin/app: sha256 mismatch: expected …, found …`.
fn mismatch(path: &Path, expected: &[u8; 32], found: &[u8; 32]) -> String {
    format!(
        "{}: sha256 mismatch: expected {}, found {}",
        path.display(),
        to_hex(expected),
        to_hex(found)
    )
}

#[cfg(test)]
mod tests;
