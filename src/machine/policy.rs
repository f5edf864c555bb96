//! Restart policy: whether an exit restarts, the retry budget in its sliding
//! window, and exponential backoff with jitter.
//!
//! Pure functions and small values; randomness comes in through [`Rng`], which the
//! shell seeds and tests fix.

use std::collections::VecDeque;
use std::time::Duration;

use super::behaviour::Behaviour;
use super::event::ExitStatus;
use super::time::Instant;
use crate::config::{RestartPolicy, ServiceType};

/// Check attempts are scheduled on this grid, so that the checks of many
/// services that fall close together are run in one wakeup.
pub const PROBE_GRID: Duration = Duration::from_millis(10);

/// A small xorshift64* generator: jitter needs no cryptographic quality, and a
/// fixed seed makes every backoff in a test exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng(u64);

// In `tend reexec`'s snapshot (here: its state is private).
crate::codec::wire::wire_struct!(Rng(0));

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // A zero state would stay zero forever.
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform value in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Whether the exit counts as success under `success_exit_codes`. A signal never does.
pub fn is_success(spec: &Behaviour, status: ExitStatus) -> bool {
    match status {
        ExitStatus::Code(code) => spec.success_exit_codes.contains(&code),
        ExitStatus::Signal(_) => false,
    }
}

/// Whether the restart policy restarts after an exit that was (not) a success.
pub fn wants_restart(spec: &Behaviour, success: bool) -> bool {
    match spec.restart_policy {
        RestartPolicy::Always => match spec.service_type {
            ServiceType::Longrun => true,
            // A oneshot that completed has done its job even under `always`.
            ServiceType::Oneshot => !success,
        },
        RestartPolicy::OnFailure => !success,
        RestartPolicy::Never => false,
    }
}

/// The backoff before restart number `n` in the window (0 = the first):
/// `retry_delay * 2^n`, capped at `max_retry_delay`, then ±10% jitter.
pub fn backoff(spec: &Behaviour, n: usize, rng: &mut Rng) -> Duration {
    let factor = 1u32.checked_shl(n.min(31) as u32).unwrap_or(u32::MAX);
    let base = spec
        .retry_delay
        .checked_mul(factor)
        .unwrap_or(Duration::MAX)
        .min(spec.max_retry_delay);
    jitter(base, rng)
}

/// `base` scaled by a factor uniform in `[0.9, 1.1)`.
pub fn jitter(base: Duration, rng: &mut Rng) -> Duration {
    let factor = 0.9 + 0.2 * rng.next_unit();
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
}

/// When a check attempt `delay` from `now` is due: rounded up to [`PROBE_GRID`].
pub fn probe_time(now: Instant, delay: Duration) -> Instant {
    let grid = PROBE_GRID.as_nanos();
    let at = now.saturating_add(delay).since_start().as_nanos();
    let rounded = at.div_ceil(grid).saturating_mul(grid);
    let nanos = u64::try_from(rounded).unwrap_or(u64::MAX);
    Instant::from_since_start(Duration::from_nanos(nanos))
}

/// The exit code tend passes on for a failure (`critical`, `exit_when_idle`):
/// the service's code, 128+N for signal N, and never 0 (a failure with a
/// success code, e.g. a readiness timeout, still fails).
pub fn failure_code(exit: Option<ExitStatus>) -> i32 {
    match exit {
        Some(ExitStatus::Code(0)) | None => 1,
        Some(ExitStatus::Code(code)) => code,
        Some(ExitStatus::Signal(n)) => 128 + n,
    }
}

/// Restarts within the sliding `retry_window`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryBudget {
    recent: VecDeque<Instant>,
}

crate::codec::wire::wire_struct!(RetryBudget { recent });

impl RetryBudget {
    /// Forget restarts that left the window ending at `now`; return how many remain.
    pub fn in_window(&mut self, window: Duration, now: Instant) -> usize {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_since(oldest) >= window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.len()
    }

    /// Record a restart at `now`.
    pub fn record(&mut self, now: Instant) {
        self.recent.push_back(now);
    }

    /// Start afresh (after `tend start`/`restart`, or a reload that changed it).
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> Behaviour {
        Behaviour::of(&crate::machine::tests_support::spec(name))
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.next_unit();
            assert_eq!(x, b.next_unit());
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn backoff_doubles_until_capped_within_jitter() {
        let mut s = spec("a");
        s.retry_delay = Duration::from_secs(1);
        s.max_retry_delay = Duration::from_secs(30);
        let mut rng = Rng::new(1);
        let expect = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0];
        for (n, base) in expect.iter().enumerate() {
            for _ in 0..50 {
                let d = backoff(&s, n, &mut rng).as_secs_f64();
                assert!(d >= base * 0.9 - 1e-9 && d < base * 1.1, "n={n} d={d}");
            }
        }
    }

    #[test]
    fn backoff_never_overflows() {
        let mut s = spec("a");
        s.retry_delay = Duration::MAX;
        s.max_retry_delay = Duration::MAX;
        let mut rng = Rng::new(3);
        let _ = backoff(&s, usize::MAX, &mut rng);
    }

    #[test]
    fn zero_delay_stays_zero() {
        let mut s = spec("a");
        s.retry_delay = Duration::ZERO;
        let mut rng = Rng::new(3);
        assert_eq!(backoff(&s, 4, &mut rng), Duration::ZERO);
    }

    #[test]
    fn jitter_spans_both_sides() {
        let mut rng = Rng::new(11);
        let base = Duration::from_secs(10);
        let ds: Vec<f64> = (0..200)
            .map(|_| jitter(base, &mut rng).as_secs_f64())
            .collect();
        assert!(ds.iter().any(|&d| d < 9.5));
        assert!(ds.iter().any(|&d| d > 10.5));
        assert!(ds.iter().all(|&d| (9.0..11.0).contains(&d)));
    }

    #[test]
    fn policies() {
        let mut s = spec("a");
        s.restart_policy = RestartPolicy::Always;
        assert!(wants_restart(&s, true) && wants_restart(&s, false));
        s.restart_policy = RestartPolicy::OnFailure;
        assert!(!wants_restart(&s, true) && wants_restart(&s, false));
        s.restart_policy = RestartPolicy::Never;
        assert!(!wants_restart(&s, true) && !wants_restart(&s, false));
        s.service_type = ServiceType::Oneshot;
        s.restart_policy = RestartPolicy::Always;
        assert!(!wants_restart(&s, true) && wants_restart(&s, false));
    }

    #[test]
    fn success_codes() {
        let mut s = spec("a");
        s.success_exit_codes = vec![0, 3];
        assert!(is_success(&s, ExitStatus::Code(3)));
        assert!(!is_success(&s, ExitStatus::Code(1)));
        assert!(!is_success(&s, ExitStatus::Signal(15)));
    }

    #[test]
    fn probe_times_fall_on_the_grid() {
        let t = probe_time(Instant::from_millis(1003), Duration::from_millis(500));
        assert_eq!(t, Instant::from_millis(1510));
        let t = probe_time(Instant::from_millis(1000), Duration::from_millis(500));
        assert_eq!(t, Instant::from_millis(1500));
    }

    #[test]
    fn failure_codes() {
        assert_eq!(failure_code(None), 1);
        assert_eq!(failure_code(Some(ExitStatus::Code(0))), 1);
        assert_eq!(failure_code(Some(ExitStatus::Code(3))), 3);
        assert_eq!(failure_code(Some(ExitStatus::Signal(9))), 137);
    }

    #[test]
    fn window_slides() {
        let mut b = RetryBudget::default();
        let w = Duration::from_secs(10);
        b.record(Instant::from_millis(0));
        b.record(Instant::from_millis(5_000));
        assert_eq!(b.in_window(w, Instant::from_millis(9_999)), 2);
        assert_eq!(b.in_window(w, Instant::from_millis(10_000)), 1);
        assert_eq!(b.in_window(w, Instant::from_millis(15_000)), 0);
    }
}
