//! Durations, sizes and signals as the config spells them. Pure functions; every
//! input gives a value or a message, never a panic.

use std::fmt;
use std::time::Duration;

/// Parse a duration string: a number with a unit `ms`, `s`, `m` or `h`
/// (`"250ms"`, `"1.5s"`, `"5m"`, `"1h"`). Bare numbers are handled by the caller
/// (as seconds) because they arrive as JSON numbers.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" | "" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit {unit:?}")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    seconds(value * scale)
}

/// A non-negative, finite number of seconds as a `Duration`.
pub fn seconds(value: f64) -> Result<Duration, String> {
    if !value.is_finite() || value < 0.0 {
        return Err("must be a non-negative number of seconds".into());
    }
    Duration::try_from_secs_f64(value).map_err(|_| "too large".into())
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
