use std::io::Write;

use super::*;
use crate::codec::sha256;

/// A scratch folder under /tmp, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = PathBuf::from(format!("/tmp/isolate-verify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("mkdir");
        Scratch(path)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, data).expect("write");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn waiter(service: u32, run: u64) -> Waiter<u32> {
    Waiter {
        service,
        run: RunId(run),
    }
}

/// Work until every hash is done; the waiters that finished, in order.
fn work_all(v: &mut Verifier<u32>) -> Vec<Finished<u32>> {
    let mut buf = vec![0u8; PIECE];
    let mut done = Vec::new();
    for _ in 0..100_000 {
        if !v.has_work() {
            return done;
        }
        done.extend(v.work(&mut buf, TURN_BUDGET));
    }
    panic!("hashing never finished");
}

/// Check until the verdict is not `Deferred` (hashing in between).
fn settle(v: &mut Verifier<u32>, w: Waiter<u32>, path: &Path, expected: &[u8; 32]) -> Verdict {
    for _ in 0..10 {
        match v.check(w, path, expected) {
            Verdict::Deferred => {
                work_all(v);
            }
            verdict => return verdict,
        }
    }
    panic!("never settled");
}

fn elf(size: usize) -> Vec<u8> {
    let mut data = b"\x7fELF".to_vec();
    data.extend((0..size).map(|i| (i * 7 % 251) as u8));
    data
}

#[test]
fn a_matching_file_is_verified_after_hashing_then_at_once() {
    let dir = Scratch::new("match");
    let data = elf(1_000_000);
    let path = dir.write("app", &data);
    let digest = sha256::digest(&data);
    let mut v = Verifier::default();
    assert!(matches!(
        v.check(waiter(1, 1), &path, &digest),
        Verdict::Deferred
    ));
    let done = work_all(&mut v);
    assert!(
        matches!(done.as_slice(), [Finished::Hashed(w)] if *w == waiter(1, 1)),
        "{done:?}"
    );
    match v.check(waiter(1, 1), &path, &digest) {
        Verdict::Verified(Some(_)) => {}
        other => panic!("an ELF file comes back open: {other:?}"),
    }
    // A restart: no hashing, one open and fstat.
    assert!(matches!(
        v.check(waiter(1, 2), &path, &digest),
        Verdict::Verified(Some(_))
    ));
    assert!(!v.has_work());
}

#[test]
fn a_script_is_verified_but_exec_goes_by_its_path() {
    let dir = Scratch::new("script");
    let data = b"#!/bin/sh\nexit 0\n";
    let path = dir.write("run.sh", data);
    let mut v = Verifier::default();
    let verdict = settle(&mut v, waiter(1, 1), &path, &sha256::digest(data));
    assert!(matches!(verdict, Verdict::Verified(None)), "{verdict:?}");
}

#[test]
fn a_mismatch_names_the_file_and_both_digests_and_is_remembered() {
    let dir = Scratch::new("mismatch");
    let data = elf(5000);
    let path = dir.write("app", &data);
    let expected = [0xab; 32];
    let mut v = Verifier::default();
    let Verdict::Failed(message) = settle(&mut v, waiter(1, 1), &path, &expected) else {
        panic!("a mismatch");
    };
    assert_eq!(
        message,
        format!(
            "{}: sha256 mismatch: expected {}, found {}",
            path.display(),
            "ab".repeat(32),
            to_hex(&sha256::digest(&data))
        )
    );
    // Known now: the next check answers without hashing.
    assert!(matches!(
        v.check(waiter(1, 2), &path, &expected),
        Verdict::Failed(_)
    ));
}

#[test]
fn a_replaced_or_rewritten_file_is_hashed_again() {
    let dir = Scratch::new("replace");
    let good = elf(300_000);
    let digest = sha256::digest(&good);
    let path = dir.write("app", &good);
    let mut v = Verifier::default();
    assert!(matches!(
        settle(&mut v, waiter(1, 1), &path, &digest),
        Verdict::Verified(_)
    ));
    // Renamed over (a new inode).
    let bad = elf(300_001);
    let other = dir.write("app.new", &bad);
    std::fs::rename(&other, &path).expect("rename");
    assert!(matches!(
        v.check(waiter(1, 2), &path, &digest),
        Verdict::Deferred
    ));
    work_all(&mut v);
    assert!(matches!(
        v.check(waiter(1, 2), &path, &digest),
        Verdict::Failed(_)
    ));
    // Written in place, same size, with the old mtime put back: ctime still
    // tells.
    let before = std::fs::metadata(&path).expect("stat");
    let mut file = File::options().write(true).open(&path).expect("open");
    file.write_all(b"\x7fELF-rewritten").expect("write");
    file.set_modified(before.modified().expect("mtime"))
        .expect("set mtime");
    drop(file);
    let after = std::fs::metadata(&path).expect("stat");
    assert_eq!(
        (after.ino(), after.size(), after.mtime(), after.mtime_nsec()),
        (
            before.ino(),
            before.size(),
            before.mtime(),
            before.mtime_nsec()
        )
    );
    assert!(matches!(
        v.check(waiter(1, 3), &path, &digest),
        Verdict::Deferred
    ));
    work_all(&mut v);
    assert!(matches!(
        v.check(waiter(1, 3), &path, &digest),
        Verdict::Failed(_)
    ));
    // Only what a service uses now is kept.
    assert_eq!(v.known_len(), 1);
    v.forget(1);
    assert_eq!(v.known_len(), 0);
}

#[test]
fn each_turn_hashes_a_bounded_piece() {
    let dir = Scratch::new("bounded");
    let data = elf(3 * 1024 * 1024);
    let path = dir.write("big", &data);
    let mut v = Verifier::default();
    let digest = sha256::digest(&data);
    assert!(matches!(
        v.check(waiter(1, 1), &path, &digest),
        Verdict::Deferred
    ));
    let mut buf = vec![0u8; PIECE];
    let mut turns = 0;
    while v.has_work() {
        // A zero budget: exactly one piece per turn.
        v.work(&mut buf, Duration::ZERO);
        turns += 1;
        assert!(turns < 1000);
    }
    assert_eq!(turns, data.len().div_ceil(PIECE) + 1, "pieces, then EOF");
    assert!(matches!(
        v.check(waiter(1, 1), &path, &digest),
        Verdict::Verified(_)
    ));
}

#[test]
fn services_sharing_a_file_share_one_hash_and_may_be_abandoned() {
    let dir = Scratch::new("shared");
    let data = elf(600_000);
    let path = dir.write("app", &data);
    let digest = sha256::digest(&data);
    let mut v = Verifier::default();
    for service in 1..=3 {
        assert!(matches!(
            v.check(waiter(service, 10), &path, &digest),
            Verdict::Deferred
        ));
    }
    assert_eq!(v.jobs.len(), 1);
    let dropped = v.abandon(|w| w.service != 2);
    assert_eq!(dropped, vec![waiter(2, 10)]);
    let done = work_all(&mut v);
    let ids: Vec<u32> = done
        .iter()
        .map(|f| match f {
            Finished::Hashed(w) | Finished::Failed(w, _) => w.service,
        })
        .collect();
    assert_eq!(ids, vec![1, 3]);
    // Nobody waiting: the hash is dropped.
    assert!(matches!(
        v.check(waiter(4, 1), &dir.write("other", b"x"), &digest),
        Verdict::Deferred
    ));
    assert!(v.abandon(|_| false).len() == 1 && !v.has_work());
}

#[test]
fn a_file_changed_while_hashed_is_not_trusted() {
    let dir = Scratch::new("changing");
    let data = elf(2 * PIECE);
    let path = dir.write("app", &data);
    let digest = sha256::digest(&data);
    let mut v = Verifier::default();
    assert!(matches!(
        v.check(waiter(1, 1), &path, &digest),
        Verdict::Deferred
    ));
    let mut buf = vec![0u8; PIECE];
    v.work(&mut buf, Duration::ZERO);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"tail"))
        .expect("append");
    work_all(&mut v);
    assert_eq!(v.known_len(), 0, "its identity changed: nothing cached");
    assert!(matches!(
        v.check(waiter(1, 1), &path, &digest),
        Verdict::Deferred
    ));
}

#[test]
fn what_cannot_be_hashed_fails_at_once_and_a_fifo_never_blocks() {
    let dir = Scratch::new("odd");
    let mut v = Verifier::default();
    let digest = [0u8; 32];
    let missing = dir.0.join("missing");
    match v.check(waiter(1, 1), &missing, &digest) {
        Verdict::Failed(m) => assert!(m.contains("No such file"), "{m}"),
        other => panic!("{other:?}"),
    }
    match v.check(waiter(1, 1), &dir.0, &digest) {
        Verdict::Failed(m) => assert!(m.ends_with("not a regular file"), "{m}"),
        other => panic!("{other:?}"),
    }
    let fifo = dir.0.join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    match v.check(waiter(1, 1), &fifo, &digest) {
        Verdict::Failed(m) => assert!(m.ends_with("not a regular file"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(!v.has_work());
}
