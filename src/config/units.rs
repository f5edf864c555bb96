//! Durations, sizes and signals as the config spells them. Pure functions; every
//! input gives a value or a message, never a panic.

use std::fmt;
use std::time::Duration;

/// The longest duration accepted anywhere (100 years): far beyond any real
/// timeout, and small enough that `Instant + duration` can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parse a duration string: a plain number of seconds (`"1.5"`), or one or more
/// numbers each with a unit `ms`, `s`, `m`, `h` or `d` (`"250ms"`, `"1m30s"`,
/// `"1h2m3.5s"`).
///
/// Decimals are read exactly, in nanoseconds, not through `f64`: `"0.1s"` is
/// 100 ms on the dot, and the shipped binary needs no float parser (core's
/// is some 12 KiB of tables and code).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return in_units(text, NANOS_PER_SEC).and_then(nanos);
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ms" => NANOS_PER_SEC / 1000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            "d" => 86400 * NANOS_PER_SEC,
            "" => return Err(format!("a unit is missing after {number:?}")),
            _ => return Err(format!("unknown unit {unit:?}")),
        };
        if number.is_empty() {
            return Err(format!("a number is missing before {unit:?}"));
        }
        total = total.saturating_add(in_units(number, scale)?);
        rest = after;
    }
    nanos(total)
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// `number` (digits with at most one `.`) times `scale` nanoseconds, exactly
/// (a fraction finer than a nanosecond is dropped); saturating, so a huge
/// number is "too large", not an overflow.
fn in_units(number: &str, scale: u128) -> Result<u128, String> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(format!("{number:?} is not a number"));
    }
    let digits = |text: &str| {
        text.bytes().fold(0u128, |n, b| {
            n.saturating_mul(10).saturating_add(u128::from(b - b'0'))
        })
    };
    // 24 digits of fraction are finer than a nanosecond of any unit here.
    let fraction = &fraction[..fraction.len().min(24)];
    let part = digits(fraction).saturating_mul(scale) / 10u128.pow(fraction.len() as u32);
    Ok(digits(whole).saturating_mul(scale).saturating_add(part))
}

/// A duration of `n` nanoseconds, up to [`MAX_DURATION`].
fn nanos(n: u128) -> Result<Duration, String> {
    if n > MAX_DURATION.as_nanos() {
        return Err("too large (at most 100 years)".into());
    }
    // At most 100 years: fits a u64 of nanoseconds.
    Ok(Duration::from_nanos(n as u64))
}

/// A non-negative, finite number of seconds up to [`MAX_DURATION`].
pub fn seconds(value: f64) -> Result<Duration, String> {
    if !value.is_finite() || value < 0.0 {
        return Err("must be a non-negative number of seconds".into());
    }
    match Duration::try_from_secs_f64(value) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err("too large (at most 100 years)".into()),
    }
}

/// Parse a size string: digits with an optional `K`, `M` or `G` (powers of 1024;
/// `KB`, `MB`, `GB` and lowercase are accepted too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("unknown unit {unit:?}")),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a whole number"))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| "too large".to_string())
}

/// The period `cpu.max` gets from a percentage: 100 ms, the kernel's default.
pub const CPU_PERIOD_US: u64 = 100_000;

/// `cpu_max`: a share of one CPU as a percentage (`"50%"`, `"250%"` for two and
/// a half CPUs, `"12.5%"`), or the kernel's own `"QUOTA PERIOD"` in
/// microseconds (`"50000 100000"`). `Ok(None)` for `"max"` (no limit).
/// The quota must be at least 1 ms (the kernel's minimum, so at least 1%).
pub fn parse_cpu_max(text: &str) -> Result<Option<super::CpuMax>, String> {
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    let (quota_us, period_us) = if let Some(percent) = text.strip_suffix('%') {
        // In tenths of a microsecond, exactly (see `in_units`), then rounded.
        let tenths = in_units(percent.trim(), 10 * CPU_PERIOD_US as u128 / 100)
            .ok()
            .filter(|&t| t > 0 && t <= 100_000 * 10 * CPU_PERIOD_US as u128 / 100)
            .ok_or_else(|| format!("{percent:?} is not a percentage above 0"))?;
        (((tenths + 5) / 10) as u64, CPU_PERIOD_US)
    } else if let Some((quota, period)) = text.split_once(' ') {
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} is not a whole number of microseconds"))
        };
        (number(quota)?, number(period)?)
    } else {
        return Err("expected a percentage such as \"50%\"".into());
    };
    if !(1000..=1_000_000).contains(&period_us) {
        return Err("the period must be 1000 to 1000000 microseconds".into());
    }
    if quota_us < 1000 {
        return Err("the quota must be at least 1000 microseconds (1%)".into());
    }
    if quota_us > 1_000_000_000 {
        return Err("the quota is too large".into());
    }
    Ok(Some(super::CpuMax {
        quota_us,
        period_us,
    }))
}

/// 64 hexadecimal digits (either case) → the 32 bytes of a SHA-256.
pub fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("has {} characters, not 64", text.chars().count()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = (hi * 16 + lo) as u8,
            _ => return Err("holds a character that is not a hexadecimal digit".into()),
        }
    }
    Ok(out)
}

/// A signal number, shown by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(pub i32);

/// Linux signal names (without `SIG`) and numbers, from libc.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

impl Signal {
    /// `"SIGHUP"`, `"HUP"`, `"hup"` or `"1"`.
    pub fn parse(text: &str) -> Result<Signal, String> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
            return Ok(Signal(*n));
        }
        match bare.parse::<i32>() {
            Ok(n) => Signal::from_number(i64::from(n)),
            Err(_) => Err(format!("unknown signal {text:?}")),
        }
    }

    /// A signal number in 1..=64.
    pub fn from_number(n: i64) -> Result<Signal, String> {
        if (1..=64).contains(&n) {
            Ok(Signal(n as i32))
        } else {
            Err(format!("signal number {n} is out of range 1-64"))
        }
    }

    /// `SIGTERM`, or None for an unnamed (real-time) signal.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(_, n)| *n == self.0)
            .map(|(name, _)| *name)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "SIG{name}"),
            None => write!(f, "signal {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1h2m3.5s"),
            Ok(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_duration("2s500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration(" 5m "), Ok(Duration::from_secs(300)));
        // Exact decimals, not the nearest float.
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration(".5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5."), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.000000001"), Ok(Duration::from_nanos(1)));
        assert_eq!(
            parse_duration("1.0000000019"),
            Ok(Duration::from_nanos(1_000_000_001))
        );
        assert_eq!(parse_duration("0.0015ms"), Ok(Duration::from_nanos(1500)));
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration("1.123456789123456789123456789123456789s"),
            Ok(Duration::from_nanos(1_123_456_789))
        );
    }

    #[test]
    fn bad_durations_are_errors_not_panics() {
        for bad in [
            "",
            "ten",
            "5x",
            "-1s",
            "1e999s",
            "1..2s",
            "ms",
            "99999999999999999999999h",
            "1 2s",
            "1m 30s",
            "1m30",
            "m30s",
            "1.2.3s",
            "1sec",
            "1S",
            "36500000d",
            ".",
            "s1",
            "36500d1ms",
            "1.5.s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(seconds(f64::NAN).is_err());
        assert!(seconds(f64::INFINITY).is_err());
        assert!(seconds(-0.5).is_err());
        assert!(seconds(1e30).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
        for bad in ["", "1T", "-1K", "1.5G", "K", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("17179869184G").is_err(), "overflow");
    }

    #[test]
    fn cpu_max() {
        let cpu = |q, p| {
            Ok(Some(crate::config::CpuMax {
                quota_us: q,
                period_us: p,
            }))
        };
        assert_eq!(parse_cpu_max("50%"), cpu(50_000, 100_000));
        assert_eq!(parse_cpu_max("250%"), cpu(250_000, 100_000));
        assert_eq!(parse_cpu_max("12.5%"), cpu(12_500, 100_000));
        assert_eq!(parse_cpu_max("12.34567%"), cpu(12_346, 100_000));
        assert_eq!(parse_cpu_max("1%"), cpu(1_000, 100_000));
        assert_eq!(parse_cpu_max("20000 50000"), cpu(20_000, 50_000));
        assert_eq!(parse_cpu_max("max"), Ok(None));
        for bad in [
            "",
            "50",
            "0%",
            "-5%",
            "0.5%",
            "x%",
            "NaN%",
            "inf%",
            "1e9%",
            "500 100000",
            "50000 10",
            "50000 x",
            "%",
            "50 %%",
        ] {
            assert!(parse_cpu_max(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sha256() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let bytes = parse_sha256(hex).expect("valid");
        assert_eq!(bytes[0], 0xe3);
        assert_eq!(bytes[31], 0x55);
        assert_eq!(parse_sha256(&hex.to_uppercase()), Ok(bytes));
        assert!(parse_sha256(&hex[1..]).is_err());
        assert!(parse_sha256(&format!("{}g", &hex[1..])).is_err());
        assert!(parse_sha256(&format!("{}é", &hex[2..])).is_err());
        assert!(parse_sha256("").is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(Signal::parse("SIGHUP"), Ok(Signal(libc::SIGHUP)));
        assert_eq!(Signal::parse("term"), Ok(Signal(libc::SIGTERM)));
        assert_eq!(Signal::parse("9"), Ok(Signal(9)));
        assert_eq!(Signal::parse("SIG15"), Ok(Signal(15)));
        assert!(Signal::parse("SIGNOPE").is_err());
        assert!(Signal::parse("0").is_err());
        assert!(Signal::parse("65").is_err());
        assert_eq!(Signal(libc::SIGKILL).to_string(), "SIGKILL");
        assert_eq!(Signal(40).to_string(), "signal 40");
    }
}
