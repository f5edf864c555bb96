//! The `sd_notify(3)` protocol: the datagrams services send to `NOTIFY_SOCKET`,
//! and the ones tend sends upward when it runs under systemd or another tend.
//!
//! A datagram is a newline-separated list of `KEY=VALUE` assignments, "similar in
//! style to an environment block" (sd_notify(3)). [`parse`] reads one datagram as
//! systemd's manager does (`manager_dispatch_notify_fd` and
//! `service_notify_message`):
//! - at most [`MAX_DATAGRAM`] bytes (systemd's `NOTIFY_BUFFER_MAX`); a longer one
//!   is ignored whole, and so is one with an embedded NUL (one trailing NUL is
//!   allowed);
//! - lines split on `\n` and on `\r`; empty lines and lines without `=` skipped;
//! - unknown keys ignored (`FDSTORE=`, `BARRIER=`, `MONOTONIC_USEC=`, ...: tend
//!   does not implement them);
//! - flags only as `READY=1`, `STOPPING=1`, `RELOADING=1`, `WATCHDOG=1`,
//!   `WATCHDOG=trigger` exactly (`=0` is accepted and means nothing);
//! - for a key given twice, the first value counts, as in systemd.
//!
//! An invalid value for a known key (`MAINPID=abc`, `STATUS=` that is not
//! UTF-8) drops that assignment only; the rest of the datagram still counts,
//! and the problem is returned beside it for the shell to log.
//!
//! Must not: check the sender (the shell does that with `SCM_CREDENTIALS`),
//! receive file descriptors, or act on anything: it only says what was asked.
//! Bounds: input is at most [`MAX_DATAGRAM`] bytes; the status is at most that;
//! at most [`MAX_PROBLEMS`] problems are listed, each with a value excerpt of at
//! most 64 characters.

use std::fmt::Write;
use std::time::Duration;

/// The largest datagram accepted, as systemd's `NOTIFY_BUFFER_MAX`. The shell
/// should receive into a buffer one byte larger (or use `MSG_TRUNC`), so a
/// longer datagram shows up as longer and is rejected rather than cut.
pub const MAX_DATAGRAM: usize = 4096;

/// At most this many problems are listed; the rest are counted in one more line.
pub const MAX_PROBLEMS: usize = 8;

/// The longest `STATUS=` text [`format()`] sends (longer text is cut at a
/// character boundary), so tend's own datagram stays far below [`MAX_DATAGRAM`].
pub const MAX_STATUS: usize = 1024;

/// What one datagram asked for. `false`/`None` means "not mentioned".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notification {
    /// `READY=1`: start-up is finished.
    pub ready: bool,
    /// `STOPPING=1`: the service is shutting down.
    pub stopping: bool,
    /// `RELOADING=1`: the service is reloading its configuration.
    pub reloading: bool,
    /// `WATCHDOG=1`: the keep-alive ping.
    pub watchdog: bool,
    /// `WATCHDOG=trigger`: the service asks to be treated as if its watchdog expired.
    pub watchdog_trigger: bool,
    /// `STATUS=...`: one line of status text. `Some("")` clears the status.
    pub status: Option<String>,
    /// `MAINPID=N`: the service's main process is now N (always > 0).
    pub main_pid: Option<i32>,
    /// `EXTEND_TIMEOUT_USEC=N`: the current start/stop timeout is extended to N µs from now.
    pub extend_timeout: Option<Duration>,
    /// `WATCHDOG_USEC=N`: the service resets its own watchdog interval.
    pub watchdog_usec: Option<Duration>,
    /// `ERRNO=N`: the service failed with this errno (always >= 0).
    pub errno: Option<i32>,
}

/// The result of [`parse`]: everything valid in the datagram, and a message for
/// each thing that was not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub notification: Notification,
    /// Short lowercase clauses such as `MAINPID="0": expected a process id above 0`,
    /// for the shell to log with the service's name in front.
    pub problems: Vec<String>,
}

/// Reads one datagram. Never fails as a whole: a datagram systemd would ignore
/// gives an empty [`Notification`] and one problem saying why.
pub fn parse(datagram: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    if datagram.len() > MAX_DATAGRAM {
        parsed.problems.push(format!(
            "message of {} bytes ignored: longer than {MAX_DATAGRAM} bytes",
            datagram.len()
        ));
        return parsed;
    }
    let body = datagram.strip_suffix(b"\0").unwrap_or(datagram);
    if body.contains(&0) {
        parsed
            .problems
            .push("message ignored: it contains a NUL byte".to_string());
        return parsed;
    }
    let mut problems = Problems::default();
    for line in body.split(|&b| b == b'\n' || b == b'\r') {
        let Some(equals) = line.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&line[..equals], &line[equals + 1..]);
        apply(&mut parsed.notification, key, value, &mut problems);
    }
    parsed.problems = problems.finish();
    parsed
}

/// Applies one `KEY=VALUE` assignment; unknown keys are ignored.
fn apply(n: &mut Notification, key: &[u8], value: &[u8], problems: &mut Problems) {
    match key {
        b"READY" => flag(&mut n.ready, "READY", value, problems),
        b"STOPPING" => flag(&mut n.stopping, "STOPPING", value, problems),
        b"RELOADING" => flag(&mut n.reloading, "RELOADING", value, problems),
        b"WATCHDOG" => match value {
            b"1" => n.watchdog = true,
            b"trigger" => n.watchdog_trigger = true,
            b"0" => {}
            _ => problems.push("WATCHDOG", value, "expected 1 or trigger"),
        },
        b"STATUS" => match std::str::from_utf8(value) {
            Ok(text) => first(&mut n.status, text.to_string(), "STATUS", problems),
            Err(_) => problems.push("STATUS", value, "not valid UTF-8"),
        },
        b"MAINPID" => match decimal(value).and_then(|v| i32::try_from(v).ok()) {
            Some(pid) if pid > 0 => first(&mut n.main_pid, pid, "MAINPID", problems),
            _ => problems.push("MAINPID", value, "expected a process id above 0"),
        },
        b"ERRNO" => match decimal(value).and_then(|v| i32::try_from(v).ok()) {
            Some(errno) => first(&mut n.errno, errno, "ERRNO", problems),
            None => problems.push("ERRNO", value, "expected an errno number (0 or more)"),
        },
        b"EXTEND_TIMEOUT_USEC" => match decimal(value) {
            Some(us) => first(
                &mut n.extend_timeout,
                Duration::from_micros(us),
                "EXTEND_TIMEOUT_USEC",
                problems,
            ),
            None => problems.push("EXTEND_TIMEOUT_USEC", value, "expected microseconds"),
        },
        b"WATCHDOG_USEC" => match decimal(value) {
            Some(us) => first(
                &mut n.watchdog_usec,
                Duration::from_micros(us),
                "WATCHDOG_USEC",
                problems,
            ),
            None => problems.push("WATCHDOG_USEC", value, "expected microseconds"),
        },
        _ => {}
    }
}

fn flag(target: &mut bool, key: &str, value: &[u8], problems: &mut Problems) {
    match value {
        b"1" => *target = true,
        // sd_notify(3): "The passed argument is a boolean "1" or "0"."
        b"0" => {}
        _ => problems.push(key, value, "expected 1"),
    }
}

/// Keeps the first value of a key, as systemd's `strv_find_startswith` does.
fn first<T: PartialEq>(slot: &mut Option<T>, value: T, key: &str, problems: &mut Problems) {
    match slot {
        None => *slot = Some(value),
        Some(kept) if *kept == value => {}
        Some(_) => problems.push_text(format!(
            "{key}= given twice with different values; the first counts"
        )),
    }
}

/// ASCII digits only (no sign, no spaces) as a u64; `None` if empty or too big.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Problem messages, at most [`MAX_PROBLEMS`] kept.
#[derive(Default)]
struct Problems {
    kept: Vec<String>,
    dropped: usize,
}

impl Problems {
    fn push(&mut self, key: &str, value: &[u8], expected: &str) {
        if self.kept.len() >= MAX_PROBLEMS {
            self.dropped += 1;
            return;
        }
        let mut text = format!("{key}=\"");
        let lossy = String::from_utf8_lossy(value);
        for (i, c) in lossy.chars().enumerate() {
            if i == 64 {
                text.push_str("...");
                break;
            }
            let _ = write!(text, "{}", c.escape_debug());
        }
        let _ = write!(text, "\": {expected}");
        self.kept.push(text);
    }

    fn push_text(&mut self, text: String) {
        if self.kept.len() >= MAX_PROBLEMS {
            self.dropped += 1;
        } else {
            self.kept.push(text);
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.kept
                .push(format!("and {} more problems", self.dropped));
        }
        self.kept
    }
}

/// One assignment tend sends upward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment<'a> {
    /// `READY=1`
    Ready,
    /// `STATUS=...`: newlines, carriage returns and NULs become spaces (they
    /// would end the line or the message), and the text is cut at [`MAX_STATUS`].
    Status(&'a str),
    /// `STOPPING=1`
    Stopping,
    /// `WATCHDOG=1`
    Watchdog,
}

/// One datagram carrying `assignments`, separated by newlines with none at
/// the end (`sd_notify(0, "READY=1\nSTATUS=...")` sends the same bytes).
pub fn format(assignments: &[Assignment<'_>]) -> Vec<u8> {
    let mut out = String::new();
    for (i, assignment) in assignments.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match assignment {
            Assignment::Ready => out.push_str("READY=1"),
            Assignment::Stopping => out.push_str("STOPPING=1"),
            Assignment::Watchdog => out.push_str("WATCHDOG=1"),
            Assignment::Status(text) => {
                out.push_str("STATUS=");
                let mut cut = text.len().min(MAX_STATUS);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                let one_line = text[..cut].chars().map(|c| match c {
                    '\n' | '\r' | '\0' => ' ',
                    c => c,
                });
                out.extend(one_line);
            }
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(datagram: &[u8]) -> Notification {
        let parsed = parse(datagram);
        assert_eq!(
            parsed.problems,
            Vec::<String>::new(),
            "for {:?}",
            String::from_utf8_lossy(datagram)
        );
        parsed.notification
    }

    /// The examples of sd_notify(3) and what `systemd-notify` sends.
    #[test]
    fn man_page_examples() {
        assert_eq!(
            ok(b"READY=1"),
            Notification {
                ready: true,
                ..Default::default()
            }
        );
        assert_eq!(
            ok(b"READY=1\nSTATUS=Processing requests\xe2\x80\xa6\nMAINPID=4711"),
            Notification {
                ready: true,
                status: Some("Processing requests\u{2026}".into()),
                main_pid: Some(4711),
                ..Default::default()
            }
        );
        assert_eq!(
            ok(b"STATUS=Failed to start up: No such file or directory\nERRNO=2"),
            Notification {
                status: Some("Failed to start up: No such file or directory".into()),
                errno: Some(2),
                ..Default::default()
            }
        );
        // FDSTORE needs fd passing, which tend does not do: ignored, no problem.
        assert_eq!(ok(b"FDSTORE=1\nFDNAME=foobar"), Notification::default());
        assert_eq!(
            ok(b"RELOADING=1\nMONOTONIC_USEC=123456789"),
            Notification {
                reloading: true,
                ..Default::default()
            }
        );
        // systemd-notify --ready --status=... sends a trailing newline.
        assert_eq!(
            ok(b"READY=1\nSTATUS=up\n"),
            Notification {
                ready: true,
                status: Some("up".into()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn every_known_key() {
        let n = ok(
            b"READY=1\nSTOPPING=1\nRELOADING=1\nWATCHDOG=1\nSTATUS=s\nMAINPID=2147483647\n\
                     EXTEND_TIMEOUT_USEC=18446744073709551615\nWATCHDOG_USEC=30000000\nERRNO=0",
        );
        assert_eq!(
            n,
            Notification {
                ready: true,
                stopping: true,
                reloading: true,
                watchdog: true,
                watchdog_trigger: false,
                status: Some("s".into()),
                main_pid: Some(i32::MAX),
                extend_timeout: Some(Duration::from_micros(u64::MAX)),
                watchdog_usec: Some(Duration::from_secs(30)),
                errno: Some(0),
            }
        );
        assert!(ok(b"WATCHDOG=trigger").watchdog_trigger);
        assert!(!ok(b"WATCHDOG=trigger").watchdog);
    }

    #[test]
    fn separators_and_framing() {
        let expected = Notification {
            ready: true,
            status: Some("a".into()),
            ..Default::default()
        };
        for datagram in [
            &b"READY=1\r\nSTATUS=a\r\n"[..],
            b"\n\nREADY=1\n\n\nSTATUS=a",
            b"READY=1\rSTATUS=a",
            b"READY=1\nSTATUS=a\0",
            b"garbage line\nREADY=1\n=\n=x\nSTATUS=a",
        ] {
            assert_eq!(
                ok(datagram),
                expected,
                "{:?}",
                String::from_utf8_lossy(datagram)
            );
        }
        assert_eq!(ok(b""), Notification::default());
        assert_eq!(ok(b"\0"), Notification::default());
        assert_eq!(ok(b"\n\r\n"), Notification::default());
        // A value may contain '=': only the first one separates.
        assert_eq!(ok(b"STATUS=a=b").status.as_deref(), Some("a=b"));
        // An empty STATUS= clears the status text.
        assert_eq!(ok(b"STATUS=").status.as_deref(), Some(""));
        // Keys are case-sensitive and exact, as in systemd.
        assert_eq!(
            ok(b"ready=1\nREADY =1\n READY=1\nREADY_=1"),
            Notification::default()
        );
        // "=0" is a valid no-op.
        assert_eq!(
            ok(b"READY=0\nSTOPPING=0\nWATCHDOG=0"),
            Notification::default()
        );
    }

    #[test]
    fn invalid_values_are_reported_and_the_rest_kept() {
        let parsed = parse(
            b"READY=1\nMAINPID=0\nSTATUS=\xff\xfe\nERRNO=-1\nWATCHDOG=2\nSTOPPING=yes\n\
                             EXTEND_TIMEOUT_USEC=1s\nWATCHDOG_USEC=\nMAINPID=12",
        );
        assert_eq!(
            parsed.notification,
            Notification {
                ready: true,
                main_pid: Some(12),
                ..Default::default()
            }
        );
        assert_eq!(
            parsed.problems,
            [
                "MAINPID=\"0\": expected a process id above 0",
                "STATUS=\"\u{fffd}\u{fffd}\": not valid UTF-8",
                "ERRNO=\"-1\": expected an errno number (0 or more)",
                "WATCHDOG=\"2\": expected 1 or trigger",
                "STOPPING=\"yes\": expected 1",
                "EXTEND_TIMEOUT_USEC=\"1s\": expected microseconds",
                "WATCHDOG_USEC=\"\": expected microseconds",
            ]
        );
        for bad in [
            &b"MAINPID=-5"[..],
            b"MAINPID=+5",
            b"MAINPID= 5",
            b"MAINPID=2147483648",
            b"MAINPID=0x10",
        ] {
            let parsed = parse(bad);
            assert_eq!(
                parsed.notification.main_pid,
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(parsed.problems.len(), 1);
        }
        assert_eq!(
            parse(b"EXTEND_TIMEOUT_USEC=18446744073709551616")
                .problems
                .len(),
            1
        );
    }

    #[test]
    fn first_value_of_a_repeated_key_counts() {
        let parsed = parse(b"STATUS=one\nSTATUS=two\nMAINPID=5\nMAINPID=5\nREADY=1\nREADY=1");
        assert_eq!(parsed.notification.status.as_deref(), Some("one"));
        assert_eq!(parsed.notification.main_pid, Some(5));
        assert_eq!(
            parsed.problems,
            ["STATUS= given twice with different values; the first counts"]
        );
    }

    #[test]
    fn whole_message_rejections() {
        let mut big = b"READY=1\nSTATUS=".to_vec();
        big.resize(MAX_DATAGRAM, b'x');
        assert!(ok(&big).ready, "exactly MAX_DATAGRAM bytes is accepted");
        big.push(b'x');
        let parsed = parse(&big);
        assert_eq!(parsed.notification, Notification::default());
        assert_eq!(
            parsed.problems,
            ["message of 4097 bytes ignored: longer than 4096 bytes"]
        );

        let parsed = parse(b"READY=1\0STATUS=x");
        assert_eq!(parsed.notification, Notification::default());
        assert_eq!(parsed.problems, ["message ignored: it contains a NUL byte"]);
        assert_eq!(parse(b"READY=1\0\0").problems.len(), 1);
    }

    #[test]
    fn problems_are_bounded() {
        let mut datagram = Vec::new();
        for _ in 0..200 {
            datagram.extend_from_slice(b"MAINPID=x\n");
        }
        let long_value = format!("ERRNO={}", "9".repeat(1000));
        datagram.extend_from_slice(long_value.as_bytes());
        let parsed = parse(&datagram);
        assert_eq!(parsed.problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(
            parsed.problems.last().map(String::as_str),
            Some("and 193 more problems")
        );
        let parsed = parse(long_value.as_bytes());
        assert!(parsed.problems[0].len() < 120, "{}", parsed.problems[0]);
        assert!(parsed.problems[0].contains("...\": expected an errno"));
    }

    #[test]
    fn format_upward() {
        assert_eq!(format(&[Assignment::Ready]), b"READY=1");
        assert_eq!(
            format(&[
                Assignment::Ready,
                Assignment::Status("3 services running"),
                Assignment::Watchdog
            ]),
            b"READY=1\nSTATUS=3 services running\nWATCHDOG=1"
        );
        assert_eq!(format(&[Assignment::Stopping]), b"STOPPING=1");
        assert_eq!(format(&[]), b"");
        assert_eq!(
            format(&[Assignment::Status("a\nb\rc\0d")]),
            b"STATUS=a b c d"
        );
        let long = "\u{e9}".repeat(MAX_STATUS);
        let sent = format(&[Assignment::Status(&long)]);
        assert!(sent.len() <= "STATUS=".len() + MAX_STATUS);
        let text = String::from_utf8(sent).expect("cut on a character boundary");
        assert!(text.ends_with('\u{e9}'));
        // What tend sends, tend (and systemd) reads back.
        let back = parse(&format(&[Assignment::Status("x=y"), Assignment::Stopping]));
        assert_eq!(
            back.notification,
            Notification {
                stopping: true,
                status: Some("x=y".into()),
                ..Default::default()
            }
        );
    }

    /// Random bytes and mutated valid datagrams: never a panic, the problem list
    /// stays bounded, the status stays within the datagram.
    #[test]
    fn fuzz() {
        let seeds: [&[u8]; 4] = [
            b"READY=1\nSTATUS=Processing\nMAINPID=4711",
            b"WATCHDOG=trigger\nEXTEND_TIMEOUT_USEC=5000000\nWATCHDOG_USEC=1",
            b"STOPPING=1\r\nERRNO=2\r\nRELOADING=1\0",
            b"STATUS=\xe2\x80\xa6\nFDSTORE=1",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"=\n\r\0 1089-+xREADYSTATUSMAINPIDWATCHDOGtrigger\xff\xe2";
        for _ in 0..100_000 {
            let mut datagram = seeds[(next() % 4) as usize].to_vec();
            for _ in 0..next() % 8 {
                let at = (next() as usize) % (datagram.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 4 {
                    0 => datagram.insert(at, byte),
                    1 if at < datagram.len() => {
                        datagram.remove(at);
                    }
                    2 if at < datagram.len() => datagram[at] = next() as u8,
                    _ => {
                        let copy = datagram.clone();
                        datagram.extend_from_slice(&copy[at..]);
                    }
                }
            }
            let parsed = parse(&datagram);
            assert!(parsed.problems.len() <= MAX_PROBLEMS + 1);
            let status_len = parsed.notification.status.as_ref().map_or(0, String::len);
            assert!(status_len <= datagram.len().min(MAX_DATAGRAM));
            assert!(parsed.notification.main_pid.is_none_or(|pid| pid > 0));
            assert!(parsed.notification.errno.is_none_or(|errno| errno >= 0));
        }
    }
}
