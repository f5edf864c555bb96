//! Log files: rotation sizes, numbering and keep count, every line in exactly
//! one file; dropping and counting when the file cannot be written (a removed
//! folder, `/dev/full`); reopening as logrotate needs.

use super::*;
use crate::config::LogFormat;

/// A fresh folder under /tmp for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = PathBuf::from(format!("/tmp/logs-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PLAIN: Layout = Layout::Named(LogFormat::Plain);

fn rotation(max_size: u64, keep: u32) -> Rotation {
    Rotation { max_size, keep }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Numbered lines of varied length, written in pieces of varied size.
fn write_numbered(file: &mut LogFile, from: usize, to: usize) {
    let mut chunk = String::new();
    for i in from..to {
        chunk.push_str(&format!("line {i} {}\n", "x".repeat(i % 23)));
        if i % 7 == 3 || i + 1 == to {
            assert_eq!(file.write(chunk.as_bytes()), chunk.len());
            chunk.clear();
        }
    }
}

/// The numbers of the `line N` lines of `paths`, in order.
fn numbers(paths: &[PathBuf]) -> Vec<usize> {
    paths
        .iter()
        .flat_map(|p| {
            read(p)
                .lines()
                .filter_map(|l| l.strip_prefix("line ")?.split(' ').next()?.parse().ok())
                .collect::<Vec<usize>>()
        })
        .collect()
}

#[test]
fn rotation_keeps_files_under_the_size_and_every_line_once() {
    let dir = Dir::new("rotate");
    let path = dir.0.join("a.log");
    let mut file = LogFile::open(&path, rotation(200, 1000), PLAIN);
    write_numbered(&mut file, 0, 500);
    let mut files: Vec<PathBuf> = (1..1000)
        .map(|n| numbered(&path, n))
        .filter(|p| p.exists())
        .collect();
    assert!(files.len() > 20, "rotated {} times", files.len());
    assert!(!numbered(&path, files.len() as u32 + 1).exists());
    for f in files.iter().chain([&path]) {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 200 && size > 0, "{} has {size} bytes", f.display());
        assert!(read(f).ends_with('\n'), "{} ends mid-line", f.display());
    }
    // Oldest first: FILE.N ... FILE.1, FILE.
    files.reverse();
    files.push(path.clone());
    assert_eq!(numbers(&files), (0..500).collect::<Vec<_>>());
}

#[test]
fn keep_drops_the_oldest_files() {
    let dir = Dir::new("keep");
    let path = dir.0.join("a.log");
    let mut file = LogFile::open(&path, rotation(300, 3), PLAIN);
    write_numbered(&mut file, 0, 400);
    assert!(numbered(&path, 3).exists() && !numbered(&path, 4).exists());
    let kept: Vec<PathBuf> = vec![
        numbered(&path, 3),
        numbered(&path, 2),
        numbered(&path, 1),
        path.clone(),
    ];
    // The newest lines, each once, in order, ending with the last one.
    let got = numbers(&kept);
    let first = got[0];
    assert_eq!(got, (first..400).collect::<Vec<_>>());
    assert!(first > 300, "older lines were kept: from {first}");
}

#[test]
fn keep_zero_starts_over_and_an_overlong_line_goes_whole_into_an_empty_file() {
    let dir = Dir::new("keep0");
    let path = dir.0.join("a.log");
    let mut file = LogFile::open(&path, rotation(100, 0), PLAIN);
    write_numbered(&mut file, 0, 50);
    assert!(!numbered(&path, 1).exists());
    assert!(std::fs::metadata(&path).unwrap().len() <= 100);
    let long = format!("{}\n", "y".repeat(250));
    file.write(long.as_bytes());
    assert_eq!(read(&path), long);
    file.write(b"after\n");
    assert_eq!(read(&path), "after\n");
}

#[test]
fn an_existing_file_is_appended_to_and_counts_toward_its_size() {
    let dir = Dir::new("append");
    let path = dir.0.join("a.log");
    std::fs::write(&path, "old 1\nold 2\n").unwrap();
    let mut file = LogFile::open(&path, rotation(20, 2), PLAIN);
    file.write(b"new 1\n");
    assert_eq!(read(&path), "old 1\nold 2\nnew 1\n");
    file.write(b"new 2\n");
    assert_eq!(read(&numbered(&path, 1)), "old 1\nold 2\nnew 1\n");
    assert_eq!(read(&path), "new 2\n");
}

#[test]
fn dev_full_drops_and_counts_and_is_retried() {
    let mut file = LogFile::open(Path::new("/dev/full"), rotation(10, 2), PLAIN);
    assert!(file.is_open());
    assert_eq!(file.write(b"a\nb\n"), 4);
    assert!(!file.is_open(), "a failed write closes it");
    assert_eq!(file.write(b"c\n"), 2);
    assert_eq!(file.dropped, 3);
    let at = file.deadline().expect("a retry deadline");
    file.retry(at - Duration::from_millis(1));
    assert!(!file.is_open(), "not before the deadline");
    file.retry(at);
    // Opened again, but the notice could not be written: closed again, the
    // count kept, and /dev/full itself never renamed.
    assert!(!file.is_open());
    assert_eq!(file.dropped, 3);
    assert!(file.deadline().is_some_and(|next| next > at));
    assert!(Path::new("/dev/full").exists());
}

#[test]
fn a_removed_folder_drops_lines_until_it_is_back_then_says_how_many() {
    let dir = Dir::new("gone");
    let sub = dir.0.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("a.log");
    let mut file = LogFile::open(&path, rotation(1 << 20, 2), Layout::Bare);
    file.write(b"before\n");
    std::fs::remove_dir_all(&sub).unwrap();
    file.checked_at -= CHECK_EVERY; // as if a second had passed
    assert_eq!(file.write(b"lost 1\nlost 2\n"), 14);
    assert!(!file.is_open());
    file.write(b"lost 3\n");
    assert_eq!(file.dropped, 3);
    // Still gone at the deadline: retried later, nothing reported again.
    let at = file.deadline().unwrap();
    file.retry(at);
    assert!(!file.is_open() && file.failing);
    std::fs::create_dir(&sub).unwrap();
    let at = file.deadline().unwrap();
    file.retry(at);
    assert!(file.is_open());
    file.write(b"after\n");
    let text = read(&path);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("tend WARN 3 lines were not written to this file"),
        "{text}"
    );
    assert_eq!(lines[1], "after");
    assert_eq!(file.dropped, 0);
}

#[test]
fn a_removed_file_is_created_again() {
    let dir = Dir::new("rmfile");
    let path = dir.0.join("a.log");
    let mut file = LogFile::open(&path, rotation(1 << 20, 2), PLAIN);
    file.write(b"one\n");
    std::fs::remove_file(&path).unwrap();
    file.checked_at -= CHECK_EVERY;
    file.write(b"two\n");
    assert_eq!(read(&path), "two\n");
}

#[test]
fn reopen_after_a_rename_loses_and_doubles_nothing() {
    let dir = Dir::new("reopen");
    let path = dir.0.join("a.log");
    let moved = dir.0.join("a.log.moved");
    let mut file = LogFile::open(&path, rotation(1 << 20, 2), PLAIN);
    write_numbered(&mut file, 0, 100);
    std::fs::rename(&path, &moved).unwrap(); // logrotate's rename
    write_numbered(&mut file, 100, 150); // before the SIGHUP: still the old file
    file.reopen();
    write_numbered(&mut file, 150, 200);
    assert_eq!(
        numbers(std::slice::from_ref(&moved)),
        (0..150).collect::<Vec<_>>()
    );
    assert_eq!(
        numbers(std::slice::from_ref(&path)),
        (150..200).collect::<Vec<_>>()
    );
}

#[test]
fn a_file_that_cannot_be_opened_is_retried() {
    let dir = Dir::new("noopen");
    let path = dir.0.join("missing").join("a.log");
    let mut file = LogFile::open(&path, rotation(1 << 20, 2), PLAIN);
    assert!(!file.is_open() && file.deadline().is_some());
    file.write(b"x\n");
    std::fs::create_dir(dir.0.join("missing")).unwrap();
    file.retry(file.deadline().unwrap());
    file.write(b"y\n");
    let text = read(&path);
    assert!(
        text.starts_with("tend WARN 1 lines were not written"),
        "{text}"
    );
    assert!(text.ends_with("\ny\n"), "{text}");
}

#[test]
fn lines_that_did_not_fit_are_counted_and_announced() {
    let dir = Dir::new("overflow");
    let path = dir.0.join("a.log");
    let mut file = LogFile::open(&path, rotation(1 << 20, 2), PLAIN);
    file.drop_lines(5, "it is slower than the services");
    assert!(file.failing);
    file.write(b"next\n");
    let text = read(&path);
    assert!(
        text.contains("5 lines were not written to this file (it is slower"),
        "{text}"
    );
    assert!(text.ends_with("next\n"));
    assert!(!file.failing && file.dropped == 0);
}

#[test]
fn rotation_shifts_the_files_up_to_the_first_gap() {
    let dir = Dir::new("gap");
    let path = dir.0.join("a.log");
    std::fs::write(numbered(&path, 1), "one\n").unwrap();
    std::fs::write(numbered(&path, 3), "three\n").unwrap();
    std::fs::write(&path, "current\n").unwrap();
    let mut file = LogFile::open(&path, rotation(10, 5), PLAIN);
    file.write(b"next\n");
    assert_eq!(read(&path), "next\n");
    assert_eq!(read(&numbered(&path, 1)), "current\n");
    assert_eq!(read(&numbered(&path, 2)), "one\n");
    assert_eq!(read(&numbered(&path, 3)), "three\n");
    assert!(!numbered(&path, 4).exists());
}
