//! "did you mean ...?": the closest known word to a misspelt field or value.
//!
//! Pure; compares case-insensitively with the optimal string alignment distance
//! (Levenshtein plus swapping two neighbours, the commonest typo), and suggests
//! only when the word is close enough that the guess is likely right.

/// The known word closest to `word`, if it is close: at most 1 edit for words up
/// to 4 characters, 2 up to 8, 3 beyond, and never every character; else a
/// known word that starts with `word` (4 characters or more). Ties go to the
/// earlier word.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let len = word.chars().count();
    let limit = match len {
        0 => return None,
        1..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in known {
        let d = distance(&word, &candidate.to_ascii_lowercase());
        if d <= limit && d < len && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    // A cut-short word (`memory` for `memory_max`) is far in edits but
    // obviously meant.
    best.map(|(_, c)| c).or_else(|| {
        (len >= 4)
            .then(|| {
                known
                    .iter()
                    .find(|k| k.to_ascii_lowercase().starts_with(&word))
            })
            .flatten()
            .copied()
    })
}

/// `; did you mean "x"?`, or nothing.
pub fn hint(word: &str, known: &[&str]) -> String {
    match closest(word, known) {
        Some(c) => format!("; did you mean {c:?}?"),
        None => String::new(),
    }
}

/// Optimal string alignment distance over chars. Inputs are field names and
/// short values; long ones are cut to 64 chars to bound the work.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let width = b.len() + 1;
    // Three rows: two back (for transpositions), previous, current.
    let mut two_back = vec![0usize; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur = vec![0usize; width];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(two_back[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut two_back, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("restart_polcy", "restart_policy"), 1);
        assert_eq!(distance("ab", "ba"), 1, "a swap is one edit");
        assert_eq!(distance("timeuot_stop", "timeout_stop"), 1);
    }

    #[test]
    fn suggests_only_close_words() {
        let fields = ["restart_policy", "timeout_stop", "timeout_start", "user"];
        assert_eq!(closest("restart_polcy", &fields), Some("restart_policy"));
        assert_eq!(closest("Restart_Policy", &fields), Some("restart_policy"));
        assert_eq!(closest("timeout_stpo", &fields), Some("timeout_stop"));
        assert_eq!(closest("usr", &fields), Some("user"));
        assert_eq!(closest("colour", &fields), None);
        assert_eq!(
            closest("restart", &fields),
            Some("restart_policy"),
            "a prefix"
        );
        assert_eq!(closest("use", &fields), Some("user"));
        assert_eq!(
            closest("tim", &["timeout_stop"]),
            None,
            "too short a prefix"
        );
        assert_eq!(closest("", &fields), None);
        assert_eq!(closest("x", &["y"]), None, "not a word of its own");
        assert_eq!(
            hint("alway", &["always", "never"]),
            "; did you mean \"always\"?"
        );
        assert_eq!(hint("sometimes", &["always", "never"]), "");
    }

    #[test]
    fn long_input_is_bounded() {
        let long = "x".repeat(100_000);
        assert_eq!(closest(&long, &["x"]), None);
    }
}
