//! tend speaking sd_notify to its own supervisor (SPEC §4 "Upward"): a
//! systemd `Type=notify` unit, or a parent tend.
//!
//! When tend starts with `NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! socket), it sends `READY=1` when the core says everything came up
//! (`Upward::Ready`), `STATUS=` with a one-line summary whenever the counts
//! in it change (at most once per loop turn: the loop asks at the end of
//! each), `STOPPING=1` when a shutdown begins, and `WATCHDOG=1` every half of
//! `WATCHDOG_USEC` when that is set (and `WATCHDOG_PID`, if set, is tend's
//! pid), from a deadline in the loop. Sends never block: a datagram the
//! socket cannot take now is dropped; a missing or refusing socket is logged
//! once and otherwise ignored. Services never see these variables
//! (`launch::tend_environment`).
//!
//! Must not: decide when tend is ready (the core does), or block.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::codec::notify::{Assignment, format};
use crate::machine::{StateName, Supervisor, Upward as Order};

/// Where tend's supervisor listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Path(PathBuf),
    /// The name of an abstract socket, without the leading `@`.
    Abstract(Vec<u8>),
}

/// What tend's environment says about its supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub target: Option<Target>,
    /// Half of `WATCHDOG_USEC`: how often tend pings.
    pub ping_every: Option<Duration>,
}

impl Settings {
    /// Read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (as
    /// `sd_notify(3)` and `sd_watchdog_enabled(3)` do); `pid` is tend's.
    /// Problems are returned as messages to log.
    pub fn from_env(env: &dyn Fn(&str) -> Option<OsString>, pid: u32) -> (Settings, Vec<String>) {
        let mut problems = Vec::new();
        let target = match env("NOTIFY_SOCKET") {
            None => None,
            Some(value) => {
                let bytes = value.as_bytes();
                match bytes.first() {
                    None => None,
                    Some(b'/') => Some(Target::Path(PathBuf::from(value))),
                    Some(b'@') if bytes.len() > 1 => {
                        Some(Target::Abstract(bytes.get(1..).unwrap_or(&[]).to_vec()))
                    }
                    Some(_) => {
                        problems.push(format!(
                            "NOTIFY_SOCKET={}: expected an absolute path or @name; \
                             not notifying the service manager",
                            value.to_string_lossy()
                        ));
                        None
                    }
                }
            }
        };
        let for_us = match env("WATCHDOG_PID") {
            None => true,
            Some(v) => v.to_str().and_then(|v| v.parse::<u32>().ok()) == Some(pid),
        };
        let usec = env("WATCHDOG_USEC").map(|v| v.to_str().and_then(|v| v.parse::<u64>().ok()));
        let ping_every = match usec {
            Some(Some(us)) if us > 0 && for_us && target.is_some() => {
                Some(Duration::from_micros(us / 2).max(Duration::from_millis(1)))
            }
            Some(None) => {
                problems.push("WATCHDOG_USEC: expected microseconds; no watchdog pings".into());
                None
            }
            Some(Some(_)) | None => None,
        };
        (Settings { target, ping_every }, problems)
    }
}

/// The upward channel; inert without a target.
pub struct Upward {
    settings: Settings,
    socket: Option<UnixDatagram>,
    next_ping: Option<Instant>,
    last_status: Option<String>,
    /// A failed send was logged (the rest go to debug).
    failure_logged: bool,
}

impl Upward {
    /// From tend's environment now; `now`: when the watchdog period starts.
    pub fn new(settings: Settings, now: Instant) -> Upward {
        let next_ping = settings.ping_every.map(|every| now + every);
        Upward {
            settings,
            socket: None,
            next_ping,
            last_status: None,
            failure_logged: false,
        }
    }

    /// tend has a supervisor to tell (the loop skips the summary otherwise).
    pub fn is_active(&self) -> bool {
        self.settings.target.is_some()
    }

    /// Carry out the core's order, with the summary of the moment.
    pub fn order(&mut self, order: Order, summary: &str) {
        if self.settings.target.is_none() {
            return;
        }
        self.last_status = Some(summary.to_string());
        match order {
            Order::Ready => self.send(&[Assignment::Ready, Assignment::Status(summary)]),
            Order::Stopping => self.send(&[Assignment::Stopping, Assignment::Status(summary)]),
        }
    }

    /// Send the summary if it changed since the last one sent.
    pub fn status(&mut self, summary: &str) {
        if self.settings.target.is_none() || self.last_status.as_deref() == Some(summary) {
            return;
        }
        self.last_status = Some(summary.to_string());
        self.send(&[Assignment::Status(summary)]);
    }

    /// When the next watchdog ping is due.
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Ping if due, and schedule the next one.
    pub fn handle_deadlines(&mut self, now: Instant) {
        let (Some(at), Some(every)) = (self.next_ping, self.settings.ping_every) else {
            return;
        };
        if at > now {
            return;
        }
        self.send(&[Assignment::Watchdog]);
        self.next_ping = Some(now + every);
    }

    fn send(&mut self, assignments: &[Assignment<'_>]) {
        let Some(target) = &self.settings.target else {
            return;
        };
        let datagram = format(assignments);
        let result = send_to(&mut self.socket, target, &datagram);
        match result {
            Ok(()) => {}
            Err(e) if !self.failure_logged => {
                self.failure_logged = true;
                warn!(
                    "cannot notify the service manager at NOTIFY_SOCKET={}: {e} \
                     (further failures are not logged)",
                    describe(target)
                );
            }
            Err(e) => debug!("NOTIFY_SOCKET={}: {e}", describe(target)),
        }
    }
}

/// One non-blocking datagram to `target`, from a socket made on first use.
fn send_to(socket: &mut Option<UnixDatagram>, target: &Target, data: &[u8]) -> io::Result<()> {
    let socket = match socket {
        Some(socket) => socket,
        None => {
            let fresh = UnixDatagram::unbound()?;
            fresh.set_nonblocking(true)?;
            socket.insert(fresh)
        }
    };
    match target {
        Target::Path(path) => socket.send_to(data, path).map(drop),
        Target::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(data, &addr).map(drop)
        }
    }
}

fn describe(target: &Target) -> String {
    match target {
        Target::Path(p) => p.display().to_string(),
        Target::Abstract(name) => format!("@{}", String::from_utf8_lossy(name)),
    }
}

/// The one-line `STATUS=`: `5 running, 1 starting, 0 failed`, then the
/// states in motion when there are any (`, 2 restarting, 1 stopping,
/// 3 pending`).
pub fn summary(sup: &Supervisor) -> String {
    let mut text = format!(
        "{} running, {} starting, {} failed",
        sup.count(StateName::Running),
        sup.count(StateName::Starting),
        sup.count(StateName::Failed)
    );
    for (state, word) in [
        (StateName::Restarting, "restarting"),
        (StateName::Stopping, "stopping"),
        (StateName::Pending, "pending"),
    ] {
        let n = sup.count(state);
        if n > 0 {
            text.push_str(&format!(", {n} {word}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs = &'static [(&'static str, &'static str)];

    fn env(pairs: Pairs) -> impl Fn(&str) -> Option<OsString> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_environment_names_the_target_and_the_watchdog() {
        let (s, p) = Settings::from_env(&env(&[]), 9);
        assert_eq!(s, Settings::default());
        assert!(p.is_empty());
        let (s, _) = Settings::from_env(&env(&[("NOTIFY_SOCKET", "/run/n")]), 9);
        assert_eq!(s.target, Some(Target::Path("/run/n".into())));
        assert_eq!(s.ping_every, None);
        let (s, _) = Settings::from_env(&env(&[("NOTIFY_SOCKET", "@sys/notify")]), 9);
        assert_eq!(s.target, Some(Target::Abstract(b"sys/notify".to_vec())));
        for bad in ["", "relative", "@"] {
            let pairs: Pairs = Box::leak(Box::new([("NOTIFY_SOCKET", bad)]));
            let (s, _) = Settings::from_env(&env(pairs), 9);
            assert_eq!(s.target, None, "{bad:?}");
        }
        let half = Some(Duration::from_secs(15));
        let cases: [(Pairs, Option<Duration>); 5] = [
            (
                &[("NOTIFY_SOCKET", "/n"), ("WATCHDOG_USEC", "30000000")],
                half,
            ),
            (
                &[
                    ("NOTIFY_SOCKET", "/n"),
                    ("WATCHDOG_USEC", "30000000"),
                    ("WATCHDOG_PID", "9"),
                ],
                half,
            ),
            (
                &[
                    ("NOTIFY_SOCKET", "/n"),
                    ("WATCHDOG_USEC", "30000000"),
                    ("WATCHDOG_PID", "8"),
                ],
                None,
            ),
            (&[("NOTIFY_SOCKET", "/n"), ("WATCHDOG_USEC", "0")], None),
            (&[("WATCHDOG_USEC", "30000000")], None),
        ];
        for (pairs, want) in cases {
            let (s, _) = Settings::from_env(&env(pairs), 9);
            assert_eq!(s.ping_every, want, "{pairs:?}");
        }
        let (_, p) =
            Settings::from_env(&env(&[("NOTIFY_SOCKET", "/n"), ("WATCHDOG_USEC", "x")]), 9);
        assert_eq!(p.len(), 1, "{p:?}");
    }

    fn listener(tag: &str) -> (UnixDatagram, PathBuf) {
        let path = PathBuf::from(format!("/tmp/notify-upward-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        (socket, path)
    }

    fn received(socket: &UnixDatagram) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn ready_status_stopping_and_pings_are_sent() {
        let (socket, path) = listener("send");
        let settings = Settings {
            target: Some(Target::Path(path.clone())),
            ping_every: Some(Duration::from_secs(5)),
        };
        let t0 = Instant::now();
        let mut up = Upward::new(settings, t0);
        up.status("1 running, 0 starting, 0 failed");
        up.status("1 running, 0 starting, 0 failed");
        up.order(Order::Ready, "2 running, 0 starting, 0 failed");
        up.status("2 running, 0 starting, 0 failed");
        assert_eq!(up.poll_deadline(), Some(t0 + Duration::from_secs(5)));
        up.handle_deadlines(t0 + Duration::from_secs(1));
        up.handle_deadlines(t0 + Duration::from_secs(5));
        assert_eq!(up.poll_deadline(), Some(t0 + Duration::from_secs(10)));
        up.order(
            Order::Stopping,
            "0 running, 0 starting, 0 failed, 2 stopping",
        );
        assert_eq!(
            received(&socket),
            [
                "STATUS=1 running, 0 starting, 0 failed",
                "READY=1\nSTATUS=2 running, 0 starting, 0 failed",
                "WATCHDOG=1",
                "STOPPING=1\nSTATUS=0 running, 0 starting, 0 failed, 2 stopping",
            ]
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_missing_socket_is_survived() {
        let settings = Settings {
            target: Some(Target::Path("/tmp/notify-upward-none/x".into())),
            ping_every: None,
        };
        let mut up = Upward::new(settings, Instant::now());
        up.order(Order::Ready, "x");
        up.status("y");
        assert!(up.failure_logged);
        let mut abstract_up = Upward::new(
            Settings {
                target: Some(Target::Abstract(b"tend-test-nobody-listens".to_vec())),
                ping_every: None,
            },
            Instant::now(),
        );
        abstract_up.order(Order::Stopping, "z");
        assert!(abstract_up.failure_logged);
    }
}
