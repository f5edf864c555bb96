//! `tend top` (SPEC §1): every service's state, pid, CPU use and memory,
//! asked of tend (`status`) once a second until SIGINT, SIGTERM (also SIGHUP
//! and SIGQUIT), or `q` on a terminal.
//!
//! CPU is the growth of the service's `cpu_secs` over the wall time between
//! two answers, as a percentage of one CPU; it shows `-` for the first answer
//! and after a restart (another pid). Memory is `memory_bytes`. On a terminal
//! the table is redrawn in place and keys are read one at a time (the
//! terminal's settings come back on every way out); otherwise each table is
//! printed after the last, with a blank line between.
//!
//! This is a client process: it may sleep and block; the supervisor is
//! asked once per second, the way `tend status` asks.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::{Client, ClientError, checked};
use crate::protocol::{Request, ServiceStatus, parse_rfc3339};

/// How often the table is refreshed.
/// Twice the server's `sampler::REFRESH`: each request gets a new sweep.
const INTERVAL: Duration = Duration::from_secs(1);
/// The signals that end `tend top`.
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];
const SIGNALS: Token = Token(0);
const KEYS: Token = Token(1);
/// Clear the screen and home the cursor (ANSI).
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Ask, show, wait, until told to stop; the exit code.
pub(super) fn run(client: &Client) -> Result<i32, ClientError> {
    let setup = |e: io::Error| ClientError::Protocol(format!("cannot watch signals: {e}"));
    let redraw = io::stdout().is_terminal();
    // Keys only from a terminal, and only while the table is drawn on one.
    let keys = if redraw && io::stdin().is_terminal() {
        crate::sys::term::KeyInput::enter(io::stdin().as_raw_fd()).ok()
    } else {
        None
    };
    let mut waiter = Waiter::new(keys.is_some()).map_err(setup)?;
    let mut previous: Option<Sample> = None;
    let mut next = Instant::now();
    let code = loop {
        let reply = client.ask(&Request::Status { names: Vec::new() })?;
        let Some(services) = checked(reply) else {
            break 1;
        };
        let (rows, sample) = measure(&services, previous.as_ref(), unix_now());
        previous = Some(sample);
        let text = if redraw {
            let hint = if keys.is_some() { "  (q: quit)" } else { "" };
            format!("{CLEAR}{}{hint}\n\n{}", summary(&rows), render(&rows))
        } else {
            format!("{}\n", render(&rows))
        };
        let mut out = io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            break 0; // stdout closed: nobody is watching
        }
        drop(out);
        next = (next + INTERVAL).max(Instant::now());
        match waiter.wait_until(next) {
            Ok(Wake::Tick) => {}
            Ok(Wake::Quit) => break 0,
            Err(e) => return Err(ClientError::Protocol(format!("waiting: {e}"))),
        }
    };
    drop(keys); // the terminal as it was, before anything else is printed
    Ok(code)
}

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    Tick,
    Quit,
}

/// Sleeps until the next refresh, waking early for a stop signal or a key.
struct Waiter {
    poll: Poll,
    events: Events,
    signals: UnixStream,
    keys: bool,
}

impl Waiter {
    /// Catch the stop signals (signal-hook writes a byte to a socket pair that
    /// the poll watches), and watch stdin for keys when `keys`.
    fn new(keys: bool) -> io::Result<Waiter> {
        let (signals, wake) = UnixStream::pair()?;
        signals.set_nonblocking(true)?;
        for signal in STOP_SIGNALS {
            signal_hook::low_level::pipe::register(signal, wake.try_clone()?)?;
        }
        let poll = Poll::new()?;
        let fd = signals.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), SIGNALS, Interest::READABLE)?;
        if keys {
            let stdin = io::stdin().as_raw_fd();
            poll.registry()
                .register(&mut SourceFd(&stdin), KEYS, Interest::READABLE)?;
        }
        Ok(Waiter {
            poll,
            events: Events::with_capacity(4),
            signals,
            keys,
        })
    }

    fn wait_until(&mut self, deadline: Instant) -> io::Result<Wake> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Wake::Tick);
            }
            match self.poll.poll(&mut self.events, Some(left)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            for event in self.events.iter() {
                if event.token() == SIGNALS {
                    return Ok(Wake::Quit);
                }
                if event.token() == KEYS && self.keys && quit_key() {
                    return Ok(Wake::Quit);
                }
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let _ = self.signals.shutdown(std::net::Shutdown::Both);
    }
}

/// Read the keys typed; whether one of them means quit (`q`), or the
/// terminal is gone.
fn quit_key() -> bool {
    let mut keys = [0u8; 64];
    match crate::sys::read_some(io::stdin().as_raw_fd(), &mut keys) {
        Ok(0) | Err(_) => true,
        Ok(n) => keys.iter().take(n).any(|&k| k == b'q' || k == b'Q'),
    }
}

/// Each service's pid, CPU time, when that was measured (seconds), and the
/// CPU use last shown, as of an answer.
#[derive(Debug, Default)]
struct Sample {
    cpu: HashMap<String, Measured>,
}

#[derive(Debug, Clone, Copy)]
struct Measured {
    pid: i32,
    secs: f64,
    at: f64,
    percent: Option<f64>,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    state: String,
    pid: Option<i32>,
    /// Percent of one CPU over the last interval.
    cpu: Option<f64>,
    memory: Option<u64>,
}

/// The rows for `services` answered at `now` (Unix seconds), with CPU use since `previous`;
/// and the sample the next call compares with. The CPU use is the growth of
/// `cpu_secs` over the time between the measurements (`usage_at`; tend
/// measures in sweeps, so two answers may carry the same one: then the last
/// figure stands), for the same process only.
fn measure(services: &[ServiceStatus], previous: Option<&Sample>, now: f64) -> (Vec<Row>, Sample) {
    let mut sample = Sample::default();
    let rows = services
        .iter()
        .map(|s| {
            let mut cpu = None;
            if let (Some(pid), Some(secs)) = (s.pid, s.cpu_secs) {
                // Older tends say nothing of when: the time of the answer.
                let at = match s.usage_at.as_deref().and_then(parse_rfc3339) {
                    Some(ms) => ms as f64 / 1000.0,
                    None => now,
                };
                let before = previous
                    .and_then(|p| p.cpu.get(&s.name))
                    .filter(|b| b.pid == pid);
                cpu = match before {
                    Some(b) if at > b.at => Some((100.0 * (secs - b.secs) / (at - b.at)).max(0.0)),
                    Some(b) => b.percent,
                    None => None,
                };
                let measured = Measured {
                    pid,
                    secs,
                    at,
                    percent: cpu,
                };
                sample.cpu.insert(s.name.clone(), measured);
            }
            Row {
                name: s.name.clone(),
                state: s.state.clone(),
                pid: s.pid,
                cpu,
                memory: s.memory_bytes,
            }
        })
        .collect();
    (rows, sample)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `3 services  CPU 12.5%  memory 34.2M`: the totals of what is known.
fn summary(rows: &[Row]) -> String {
    let n = rows.len();
    let s = if n == 1 { "" } else { "s" };
    let cpu: f64 = rows.iter().filter_map(|r| r.cpu).sum();
    let memory: u64 = rows.iter().filter_map(|r| r.memory).sum();
    format!(
        "{n} service{s}  CPU {cpu:.1}%  memory {}",
        format_bytes(memory)
    )
}

/// The table: a header and a line per service, columns aligned.
fn render(rows: &[Row]) -> String {
    let dash = || "-".to_string();
    let cells: Vec<[String; 5]> = std::iter::once([
        "NAME".to_string(),
        "STATE".to_string(),
        "PID".to_string(),
        "CPU%".to_string(),
        "MEMORY".to_string(),
    ])
    .chain(rows.iter().map(|r| {
        [
            r.name.clone(),
            r.state.clone(),
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.cpu.map_or_else(dash, |c| format!("{c:.1}")),
            r.memory.map_or_else(dash, format_bytes),
        ]
    }))
    .collect();
    let mut widths = [0usize; 5];
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &cells {
        let [name, state, pid, cpu, memory] = line;
        let [w0, w1, w2, w3, w4] = widths;
        let text = format!("{name:<w0$}  {state:<w1$}  {pid:>w2$}  {cpu:>w3$}  {memory:>w4$}");
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `512B`, `1.5K`, `34.2M`, `1.1G` (powers of 1024, as config sizes).
fn format_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("{:.1}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, pid: Option<i32>, cpu: Option<f64>, mem: Option<u64>) -> ServiceStatus {
        measured(name, pid, cpu, mem, None)
    }

    fn measured(
        name: &str,
        pid: Option<i32>,
        cpu: Option<f64>,
        mem: Option<u64>,
        at: Option<&str>,
    ) -> ServiceStatus {
        let text = serde_json::json!({
            "name": name, "state": if pid.is_some() { "running" } else { "stopped" },
            "type": "longrun", "enabled": true, "pid": pid, "uptime_secs": null,
            "restarts": 0, "last_exit_code": null, "last_signal": null, "last_error": null,
            "completed": false, "next_start_in_secs": null, "waiting_for": null,
            "status_text": null, "cpu_secs": cpu, "memory_bytes": mem, "usage_at": at,
        });
        ServiceStatus::parse(&text.to_string()).expect("a status")
    }

    #[test]
    fn cpu_is_the_growth_over_the_interval_for_the_same_process() {
        let t0 = 1_000_000.0;
        let first = [
            status("web", Some(10), Some(1.0), Some(3 << 20)),
            status("db", Some(20), Some(5.0), Some(1 << 30)),
            status("off", None, None, None),
        ];
        let (rows, sample) = measure(&first, None, t0);
        assert!(rows.iter().all(|r| r.cpu.is_none()), "no interval yet");
        let second = [
            status("web", Some(10), Some(1.5), Some(3 << 20)),
            // Restarted: another pid, its CPU time starts over.
            status("db", Some(21), Some(0.1), Some(1 << 30)),
            status("off", None, None, None),
        ];
        let (rows, _) = measure(&second, Some(&sample), t0 + 2.0);
        let cpu: Vec<Option<f64>> = rows.iter().map(|r| r.cpu).collect();
        assert_eq!(cpu, [Some(25.0), None, None]);
    }

    #[test]
    fn cpu_is_over_the_time_between_measurements_and_a_repeated_one_keeps_the_figure() {
        let at = |s: &str| Some(format!("2026-12-02T10:00:0{s}Z"));
        let one = [measured(
            "w",
            Some(7),
            Some(1.0),
            None,
            at("0.000").as_deref(),
        )];
        let (_, sample) = measure(&one, None, 0.0);
        // Measured 0.5 s later, answered whenever: 0.25 s of CPU in 0.5 s.
        let two = [measured(
            "w",
            Some(7),
            Some(1.25),
            None,
            at("0.500").as_deref(),
        )];
        let (rows, sample) = measure(&two, Some(&sample), 99.0);
        assert_eq!(rows[0].cpu, Some(50.0));
        // The same sweep again: the last figure stands, not 0%.
        let (rows, sample) = measure(&two, Some(&sample), 100.0);
        assert_eq!(rows[0].cpu, Some(50.0));
        let three = [measured(
            "w",
            Some(7),
            Some(1.25),
            None,
            at("1.500").as_deref(),
        )];
        let (rows, _) = measure(&three, Some(&sample), 101.0);
        assert_eq!(rows[0].cpu, Some(0.0), "idle since");
    }

    #[test]
    fn the_table_aligns_columns_and_marks_the_unknown() {
        let rows = [
            Row {
                name: "web".into(),
                state: "running".into(),
                pid: Some(4242),
                cpu: Some(12.345),
                memory: Some(35 << 20),
            },
            Row {
                name: "migrate".into(),
                state: "stopped".into(),
                pid: None,
                cpu: None,
                memory: None,
            },
        ];
        assert_eq!(
            render(&rows),
            "NAME     STATE     PID  CPU%  MEMORY\n\
             web      running  4242  12.3   35.0M\n\
             migrate  stopped     -     -       -\n"
        );
        assert_eq!(summary(&rows), "2 services  CPU 12.3%  memory 35.0M");
    }

    #[test]
    fn top_is_a_client_command_without_operands() {
        let parse = |words: &[&str]| {
            let args = words.iter().map(std::ffi::OsString::from).collect();
            crate::cli::parse(args, &|_: &str| None)
        };
        match parse(&["top", "-s", "/x.sock"]) {
            Ok(crate::cli::Command::Client { action, socket, .. }) => {
                assert_eq!(action, crate::cli::ClientAction::Top);
                assert_eq!(socket, Some("/x.sock".into()));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["top", "web"]).is_err());
    }

    #[test]
    fn sizes_are_in_powers_of_1024() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(1023), "1023B");
        assert_eq!(format_bytes(1536), "1.5K");
        assert_eq!(format_bytes(5 << 20), "5.0M");
        assert_eq!(format_bytes(3 << 30), "3.0G");
    }
}
