//! Tests of the `tend logs` ring and the merge across services.

use super::*;

/// A block of `lines`, as the splitter hands it over, numbered by `counter`.
fn push_all(ring: &mut LogRing, counter: &mut LineCounter, stream: Stream, lines: &[String]) {
    push_at(ring, counter, stream, lines, 1_000);
}

fn push_at(
    ring: &mut LogRing,
    counter: &mut LineCounter,
    stream: Stream,
    lines: &[String],
    ms: u64,
) {
    let mut text = String::new();
    let mut ends = Vec::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
        ends.push(text.len() as u32);
    }
    let first = counter.take(lines.len());
    ring.push(
        stream,
        Lines {
            text: text.as_bytes(),
            ends: &ends,
        },
        first,
        ms,
    );
}

fn texts(ring: &LogRing, n: Option<usize>) -> Vec<String> {
    merge(&[("s", ring)], n, None)
        .lines
        .into_iter()
        .map(|l| l.line)
        .collect()
}

#[test]
fn keeps_the_last_lines_in_order() {
    let (mut r, mut c) = (LogRing::default(), LineCounter::default());
    for i in 0..RING_LINES + 5 {
        push_all(&mut r, &mut c, Stream::Stdout, &[i.to_string()]);
    }
    assert_eq!(
        texts(&r, Some(2)),
        [(RING_LINES + 3).to_string(), (RING_LINES + 4).to_string()]
    );
    assert_eq!(r.len(), RING_LINES);
    assert_eq!(texts(&r, None).len(), RING_LINES);
    assert_eq!(texts(&r, Some(0)).len(), 0);
}

#[test]
fn a_big_block_keeps_only_its_tail_with_its_numbers() {
    let (mut r, mut c) = (LogRing::default(), LineCounter::default());
    push_all(&mut r, &mut c, Stream::Stderr, &["old".to_string()]);
    let many: Vec<String> = (0..3 * RING_LINES).map(|i| i.to_string()).collect();
    push_all(&mut r, &mut c, Stream::Stdout, &many);
    let kept = merge(&[("s", &r)], None, None).lines;
    assert_eq!(kept.len(), RING_LINES);
    assert_eq!(kept[0].line, (2 * RING_LINES).to_string());
    assert_eq!(kept[0].stream, "stdout");
    // "old" was 0; line i of the block is i + 1, also for lines not kept.
    assert_eq!(kept[0].seq, 2 * RING_LINES as u64 + 1);
    assert_eq!(kept[RING_LINES - 1].line, (3 * RING_LINES - 1).to_string());
    push_all(&mut r, &mut c, Stream::Stderr, &["a".into(), "b".into()]);
    let kept = texts(&r, Some(3));
    assert_eq!(
        kept,
        [(3 * RING_LINES - 1).to_string(), "a".into(), "b".into()]
    );
    assert_eq!(texts(&r, None)[0], (2 * RING_LINES + 2).to_string());
}

#[test]
fn bounded_in_bytes() {
    let (mut r, mut c) = (LogRing::default(), LineCounter::default());
    let big = "x".repeat(60 * 1024);
    for _ in 0..10 {
        push_all(&mut r, &mut c, Stream::Stderr, std::slice::from_ref(&big));
    }
    assert!(r.bytes.len() <= RING_BYTES);
    assert_eq!(r.len(), 4);
    let block: Vec<String> = (0..10).map(|i| format!("{i}{big}")).collect();
    push_all(&mut r, &mut c, Stream::Stderr, &block);
    assert!(r.bytes.len() <= RING_BYTES);
    let kept = texts(&r, None);
    assert_eq!(kept.len(), 4);
    assert!(kept[0].starts_with('6') && kept[3].starts_with('9'));
}

#[test]
fn merge_interleaves_services_in_read_order_with_times() {
    let mut c = LineCounter::default();
    let (mut a, mut b) = (LogRing::default(), LogRing::default());
    push_at(
        &mut a,
        &mut c,
        Stream::Stdout,
        &["a1".into(), "a2".into()],
        10_000,
    );
    push_at(&mut b, &mut c, Stream::Stderr, &["b1".into()], 11_000);
    push_at(&mut a, &mut c, Stream::Stdout, &["a3".into()], 12_000);
    push_at(
        &mut b,
        &mut c,
        Stream::Stdout,
        &["b2".into(), "b3".into()],
        13_000,
    );
    let rings = [("a", &a), ("b", &b)];
    let all = merge(&rings, None, None);
    let shown: Vec<String> = all
        .lines
        .iter()
        .map(|l| format!("{} {} {}", l.service, l.stream, l.line))
        .collect();
    assert_eq!(
        shown,
        [
            "a stdout a1",
            "a stdout a2",
            "b stderr b1",
            "a stdout a3",
            "b stdout b2",
            "b stdout b3"
        ]
    );
    assert!(all.lines.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.lines[2].ts, "1970-01-01T00:00:11.000Z");
    assert!(!all.truncated);
    // The newest n across services.
    let last3: Vec<String> = merge(&rings, Some(3), None)
        .lines
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(last3, ["a3", "b2", "b3"]);
    // Only lines read at or after a time.
    let since: Vec<String> = merge(&rings, None, Some(11_000))
        .lines
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(since, ["b1", "a3", "b2", "b3"]);
    let both: Vec<String> = merge(&rings, Some(1), Some(11_000))
        .lines
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(both, ["b3"]);
    assert!(merge(&rings, None, Some(99_000)).lines.is_empty());
    assert!(merge(&[], None, None).lines.is_empty());
    let empty = LogRing::default();
    assert_eq!(
        merge(&[("e", &empty), ("a", &a)], None, None).lines.len(),
        3
    );
}

/// Random pushes into random rings: the merge equals the sorted union, and the
/// tail and `since` selections agree with a naive filter.
#[test]
fn merge_matches_a_naive_model() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for _ in 0..50 {
        let mut c = LineCounter::default();
        let mut rings: Vec<LogRing> = (0..4).map(|_| LogRing::default()).collect();
        let mut model: Vec<(u64, u64, usize, String)> = Vec::new();
        let mut ms = 0;
        for _ in 0..next(400) {
            let which = next(4) as usize;
            let n = 1 + next(5) as usize;
            ms += next(3);
            let lines: Vec<String> = (0..n)
                .map(|k| format!("r{which}-{}-{k}", model.len()))
                .collect();
            let first = c.take(0); // peek: numbers are consecutive from here
            for (k, l) in lines.iter().enumerate() {
                model.push((first + k as u64, ms, which, l.clone()));
            }
            push_at(&mut rings[which], &mut c, Stream::Stdout, &lines, ms);
        }
        let names = ["r0", "r1", "r2", "r3"];
        let pairs: Vec<(&str, &LogRing)> = names.iter().copied().zip(rings.iter()).collect();
        let limit = next(30) as usize;
        let since = ms.saturating_sub(next(10));
        let got: Vec<u64> = merge(&pairs, Some(limit), Some(since))
            .lines
            .iter()
            .map(|l| l.seq)
            .collect();
        let mut want: Vec<u64> = model.iter().filter(|m| m.1 >= since).map(|m| m.0).collect();
        want.sort_unstable();
        let want = want[want.len().saturating_sub(limit)..].to_vec();
        assert_eq!(got, want);
    }
}

#[test]
fn a_reply_stays_within_its_budget() {
    let mut c = LineCounter::default();
    let line = "y".repeat(60 * 1024);
    let mut rings: Vec<LogRing> = (0..64).map(|_| LogRing::default()).collect();
    for r in &mut rings {
        for _ in 0..4 {
            push_all(r, &mut c, Stream::Stdout, std::slice::from_ref(&line));
        }
    }
    let names: Vec<String> = (0..64).map(|i| format!("s{i}")).collect();
    let pairs: Vec<(&str, &LogRing)> = names.iter().map(String::as_str).zip(rings.iter()).collect();
    let merged = merge(&pairs, None, None);
    assert!(merged.truncated);
    let cost: usize = merged
        .lines
        .iter()
        .map(|l| l.line.len() + 1 + LINE_OVERHEAD)
        .sum();
    assert!(cost <= MAX_REPLY_COST, "{cost}");
    // The newest are the ones kept.
    assert_eq!(merged.lines.last().map(|l| l.seq), Some(64 * 4 - 1));
}

#[test]
fn follower_lines_are_numbered_like_the_ring() {
    let text = b"one\ntwo\n";
    let ends = [4u32, 8];
    let block = Lines { text, ends: &ends };
    let lines: Vec<LogLine> = block_lines("web", Stream::Stderr, block, 41, 1_000).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[1].seq, lines[1].line.as_str()), (42, "two"));
    assert_eq!(lines[0].service, "web");
    assert_eq!(lines[0].stream, "stderr");
    assert_eq!(lines[0].ts, "1970-01-01T00:00:01.000Z");
}

#[test]
fn a_line_record_costs_24_bytes() {
    // The module doc's memory bound depends on it.
    assert!(std::mem::size_of::<Record>() <= 24);
}
