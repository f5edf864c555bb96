//! `reexec-check`: before it execs, the old process runs the binary at its
//! path as `<path> reexec-check`, a hidden command that prints which
//! snapshot version it reads and exits, and execs only when that is the
//! version this tend writes. Everything here happens in the loop without
//! blocking: the child is reaped like any other and its answer is read from
//! its pipe once it has exited (or it is killed at [`CHECK_TIMEOUT`]).
//!
//! The answer is one line: `snapshot N tend RELEASE`. A binary that prints
//! anything else (an older tend without the command, a script) is refused
//! with what it said.
//!
//! The check is started as services are ([`crate::sys::spawn`]: its own
//! process group, default signal handling, stdin and stderr on `/dev/null`),
//! with tend's environment, not through `std::process::Command`, whose
//! spawning code is a second copy of what tend has (and cost the shipped
//! binary about 12 KiB).

use std::ffi::CString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use mio::unix::pipe::Receiver;

use super::snapshot::VERSION;
use crate::machine::ExitStatus;
use crate::sys::spawn::{Cloner, ExecPlan, Job, Output};
use crate::sys::user::Credentials;

/// How long the binary has to answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bytes of its answer read.
const MAX_ANSWER: usize = 4096;

/// What `tend reexec-check` prints.
pub fn answer_line() -> String {
    format!("snapshot {VERSION} tend {}", env!("CARGO_PKG_VERSION"))
}

/// A check under way.
pub struct Check {
    pub pid: i32,
    output: Receiver,
}

impl Check {
    /// Run `<exe> reexec-check`, its stdout on a pipe, nothing else of
    /// tend's; `env`: tend's environment (`NAME=value`). The loop reaps it,
    /// by pid, with every other child.
    pub fn spawn(exe: &Path, env: Vec<CString>) -> io::Result<Check> {
        let program = CString::new(exe.as_os_str().as_bytes())?;
        let argv = vec![program, c"reexec-check".to_owned()];
        let plan = ExecPlan::new(argv, env, None, &[], &Credentials::default())?;
        let (read_end, write_end) = crate::sys::pipe()?;
        let job = Job {
            plan: &plan,
            stdout: Output::Pipe(write_end),
            stderr: Output::Null,
            readiness: None,
            program: None,
        };
        let pid = Cloner::new(None)?.spawn(job).map_err(io::Error::other)?;
        let output = Receiver::from(read_end);
        output.set_nonblocking(true)?;
        Ok(Check { pid, output })
    }

    /// It exited with `status`: the version it reads and its release, or
    /// why it is refused.
    pub fn verdict(mut self, exe: &Path, status: ExitStatus) -> Result<String, String> {
        let mut said = Vec::new();
        let mut chunk = [0u8; 1024];
        while said.len() < MAX_ANSWER {
            match self.output.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => said.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: a leftover holds the pipe; what came is all
            }
        }
        let text = String::from_utf8_lossy(&said);
        let line = text.lines().next().unwrap_or("").trim();
        match (status, parse(line)) {
            (ExitStatus::Code(0), Some((version, release))) if version == VERSION => Ok(release),
            (ExitStatus::Code(0), Some((version, _))) => Err(format!(
                "the binary at {} accepts snapshot version {version}, this tend writes \
                 {VERSION}: not re-executing",
                exe.display()
            )),
            (status, _) => {
                let ended = match status {
                    ExitStatus::Code(code) => format!("exit code {code}"),
                    ExitStatus::Signal(n) => format!("killed by signal {n}"),
                };
                let shown: String = line.chars().take(200).collect();
                Err(format!(
                    "the binary at {} did not say which snapshot version it accepts \
                     (`{} reexec-check` printed {shown:?}, {ended}): not re-executing",
                    exe.display(),
                    exe.display()
                ))
            }
        }
    }
}

/// `snapshot N` or `snapshot N tend RELEASE` → (N, RELEASE or "").
pub fn parse(line: &str) -> Option<(u32, String)> {
    let mut words = line.split_whitespace();
    if words.next() != Some("snapshot") {
        return None;
    }
    let version = words.next()?.parse().ok()?;
    let release = match (words.next(), words.next()) {
        (Some("tend"), Some(release)) => release.to_string(),
        _ => String::new(),
    };
    Some((version, release))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_parses_back_and_other_lines_do_not() {
        let (version, release) = parse(&answer_line()).expect("our own answer");
        assert_eq!(version, VERSION);
        assert_eq!(release, env!("CARGO_PKG_VERSION"));
        assert_eq!(parse("snapshot 2"), Some((2, String::new())));
        for bad in [
            "",
            "snapshot",
            "snapshot x",
            "tend 0.1.0",
            "Snapshot 1",
            "snapshot -1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
