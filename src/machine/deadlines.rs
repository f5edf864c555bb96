//! An ordered set of deadlines, at most one per key.
//!
//! Everything tend waits for with a time limit (backoff, stop timeouts, readiness
//! and probe times, shutdown, waiting clients, control-client timeouts, accept
//! retries) is one entry here, so the loop's poll timeout is the first entry and
//! firing what is due costs O(log n) per deadline, never a scan of every service
//! or client. Setting a key's deadline again moves it; there are no stale
//! entries to skip, so "armed iff the state has a deadline" is checkable.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use super::time::Instant;

/// Deadlines by key, ordered by time (ties by key).
#[derive(Debug, Clone)]
pub struct Deadlines<K> {
    at: HashMap<K, Instant>,
    order: BTreeSet<(Instant, K)>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            at: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> Deadlines<K> {
    /// Arm `key` for `at`, move it there, or (with `None`) disarm it.
    pub fn set(&mut self, key: K, at: Option<Instant>) {
        let old = match at {
            Some(at) => self.at.insert(key, at),
            None => self.at.remove(&key),
        };
        if old == at {
            return;
        }
        if let Some(old) = old {
            self.order.remove(&(old, key));
        }
        if let Some(at) = at {
            self.order.insert((at, key));
        }
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: K) -> Option<Instant> {
        self.at.get(&key).copied()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Remove and return the earliest key whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &(at, key) = self.order.first()?;
        if at > now {
            return None;
        }
        self.order.remove(&(at, key));
        self.at.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn earliest_first_and_moving_a_key_leaves_nothing_behind() {
        let mut d = Deadlines::default();
        d.set(1, Some(ms(30)));
        d.set(2, Some(ms(10)));
        d.set(3, Some(ms(20)));
        assert_eq!(d.next(), Some(ms(10)));
        d.set(2, Some(ms(40)));
        assert_eq!(d.next(), Some(ms(20)));
        d.set(3, None);
        assert_eq!(d.len(), 2);
        assert_eq!(d.pop_due(ms(29)), None);
        assert_eq!(d.pop_due(ms(35)), Some(1));
        assert_eq!(d.pop_due(ms(35)), None);
        assert_eq!(d.get(2), Some(ms(40)));
        assert_eq!(d.pop_due(ms(40)), Some(2));
        assert!(d.is_empty() && d.next().is_none());
    }

    #[test]
    fn equal_times_fire_together_in_key_order() {
        let mut d = Deadlines::default();
        for k in [5, 3, 9] {
            d.set(k, Some(ms(7)));
        }
        let fired: Vec<i32> = std::iter::from_fn(|| d.pop_due(ms(7))).collect();
        assert_eq!(fired, [3, 5, 9]);
    }
}
