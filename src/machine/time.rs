//! The core's own clock type: time since the supervisor started.
//!
//! The core never reads a clock; the shell converts `std::time::Instant` into this
//! and passes it in. Tests pass whatever time they like (a fake clock). Arithmetic
//! saturates, so a huge configured timeout can never panic.

use std::fmt;
use std::time::Duration;

/// A point in time, as the duration since the supervisor started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

// In `tend reexec`'s snapshot: its duration since start.
crate::codec::wire::wire_struct!(Instant(0));

impl Instant {
    pub const ZERO: Instant = Instant(Duration::ZERO);

    pub fn from_since_start(since_start: Duration) -> Instant {
        Instant(since_start)
    }

    /// Milliseconds since start; handy in tests.
    pub fn from_millis(ms: u64) -> Instant {
        Instant(Duration::from_millis(ms))
    }

    pub fn since_start(self) -> Duration {
        self.0
    }

    /// `self + d`, saturating at the far future instead of panicking.
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.checked_add(d).unwrap_or(Duration::MAX))
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0.as_secs_f64())
    }
}

/// Formats a duration the way log lines show it: `250ms`, `1.9s`, `2m5s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_go_through_the_snapshot_encoding() {
        use crate::codec::wire::{decode, encode};
        for t in [
            Instant::ZERO,
            Instant::from_millis(1234),
            Instant(Duration::MAX),
        ] {
            assert_eq!(decode::<Instant>(&encode(&t)), Ok(t));
        }
        // Seconds, then nanoseconds past them (never a second or more).
        assert_eq!(
            encode(&Instant::from_millis(1500)),
            [1, 0x80, 0xca, 0xb5, 0xee, 0x01]
        );
        assert!(decode::<Instant>(&[0, 0x80, 0x94, 0xeb, 0xdc, 0x03]).is_err());
    }

    #[test]
    fn add_saturates() {
        assert_eq!(
            Instant::from_millis(5).saturating_add(Duration::MAX),
            Instant(Duration::MAX)
        );
    }

    #[test]
    fn since_never_underflows() {
        assert_eq!(
            Instant::from_millis(1).saturating_since(Instant::from_millis(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn human_formats() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1940)), "1.9s");
        assert_eq!(human(Duration::from_secs(125)), "2m5s");
    }
}
