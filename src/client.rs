//! The client commands: find the right tend, connect, ask, print.
//!
//! Which tend: `-s`, else `$TEND_SOCKET`, else the `control_socket` of the
//! config that `-c`/`$TEND_CONFIG`/`./config.json` names, else the default
//! (`paths`). A config that was named but cannot be read or is invalid (or a
//! `./config.json` that exists and is invalid) is an error (exit 2), never a
//! reason to try another socket: that could be another tend. Once connected,
//! the server must run as root or as our own uid (`SO_PEERCRED`), or nothing is
//! sent and nothing it says is believed.
//!
//! The client is a separate short-lived process, so plain blocking I/O with
//! timeouts is fine here. start/stop/restart wait without polling: tend holds
//! the reply until the services have settled (`wait: true` in the request);
//! `shutdown` waits for tend to close the connection as it exits.
//!
//! Read first: [`run`]. The status table and log lines: `client/show.rs`;
//! `tend top`: `client/top.rs`.

mod show;
mod top;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{ClientAction, ConfigPath};
use crate::config::ConfigErrors;
use crate::protocol::{LogLine, Reply, Request, SETTLE_TIMEOUT, ServiceStatus};
use crate::sys;
pub use show::{format_log_line, is_healthy, table};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client command failed.
#[derive(Debug)]
pub enum ClientError {
    /// The config that chooses the socket is bad (exit 2).
    Config(PathBuf, ConfigErrors),
    Disabled(PathBuf),
    Unreachable(PathBuf, io::Error),
    /// The server is neither root nor us.
    Untrusted {
        socket: PathBuf,
        uid: u32,
        pid: i32,
    },
    Protocol(String),
}

impl ClientError {
    /// The exit code (SPEC §1).
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Config(..) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Config(path, errors) => f.write_str(&describe_problems(path, errors)),
            ClientError::Disabled(config) => write!(
                f,
                "the control socket is disabled in {} (control_socket is \"\")",
                config.display()
            ),
            ClientError::Unreachable(path, e) => write!(
                f,
                "cannot reach tend at {}: {e}; is it running?",
                path.display()
            ),
            ClientError::Untrusted { socket, uid, pid } => write!(
                f,
                "refusing to talk to {}: it is served by uid {uid} (pid {pid}), \
                 not by root or by you (uid {})",
                socket.display(),
                sys::effective_uid()
            ),
            ClientError::Protocol(m) => write!(f, "unexpected answer from tend: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// `path is invalid (N problems):` and one indented line per problem, as
/// `tend check` prints them.
pub fn describe_problems(path: &Path, errors: &ConfigErrors) -> String {
    let n = errors.0.len();
    let s = if n == 1 { "" } else { "s" };
    let mut out = format!("{} is invalid ({n} problem{s}):", path.display());
    for e in &errors.0 {
        out.push_str(&format!("\n  {e}"));
    }
    out
}

/// Writes `text` to stdout. A reader that went away (`tend status | head`)
/// is no error: the rest is not wanted. Any other failure is said once.
pub fn emit(text: impl AsRef<[u8]>) {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("tend: cannot write to standard output: {e}"),
    }
}

/// Run one client command; returns the process exit code.
pub fn run(socket: Option<PathBuf>, config: &ConfigPath, action: ClientAction) -> i32 {
    let env = |k: &str| std::env::var_os(k);
    let result = choose_socket(socket, config, &env, sys::effective_uid())
        .and_then(|socket| Client { socket }.act(action));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tend: {e}");
            e.exit_code()
        }
    }
}

/// The socket to talk to (module doc). `env` and `uid` are this process's.
pub fn choose_socket(
    socket: Option<PathBuf>,
    config: &ConfigPath,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    uid: u32,
) -> Result<PathBuf, ClientError> {
    if let Some(socket) = socket {
        return Ok(socket);
    }
    let missing_default = !config.named
        && std::fs::symlink_metadata(&config.path)
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
    if missing_default {
        return Ok(crate::paths::default_control_socket(env, uid));
    }
    // The top level is enough to know the socket for sure; the services are
    // the running tend's business (`tend reload` reports their problems).
    let loaded = crate::config::load_top(&config.path)
        .map_err(|errors| ClientError::Config(config.path.clone(), errors))?;
    match loaded.control_socket {
        Some(p) if p.as_os_str().is_empty() => Err(ClientError::Disabled(config.path.clone())),
        Some(p) => Ok(p),
        None => Ok(crate::paths::default_control_socket(env, uid)),
    }
}

struct Client {
    socket: PathBuf,
}

impl Client {
    /// Connect, make sure whom to, and send `request`; its reply may take
    /// `patience` to come.
    fn connect(
        &self,
        request: &Request,
        patience: Duration,
    ) -> Result<BufReader<UnixStream>, ClientError> {
        let unreachable = |e| ClientError::Unreachable(self.socket.clone(), e);
        let mut stream = UnixStream::connect(&self.socket).map_err(unreachable)?;
        let peer = sys::peer_credentials(stream.as_raw_fd()).map_err(unreachable)?;
        if peer.uid != 0 && peer.uid != sys::effective_uid() {
            return Err(ClientError::Untrusted {
                socket: self.socket.clone(),
                uid: peer.uid,
                pid: peer.pid,
            });
        }
        stream
            .set_read_timeout(Some(patience))
            .map_err(unreachable)?;
        stream
            .set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(unreachable)?;
        let mut line = request.to_json();
        line.push(b'\n');
        stream.write_all(&line).map_err(unreachable)?;
        Ok(BufReader::new(stream))
    }

    fn ask(&self, request: &Request) -> Result<Reply, ClientError> {
        self.ask_within(request, REQUEST_TIMEOUT)
    }

    fn ask_within(&self, request: &Request, patience: Duration) -> Result<Reply, ClientError> {
        let mut reader = self.connect(request, patience)?;
        read_reply(&mut reader)
    }

    fn act(&self, action: ClientAction) -> Result<i32, ClientError> {
        match action {
            ClientAction::Status { names, json } => self.status(names, json),
            ClientAction::Start { names, wait } => {
                self.change(Request::Start { names, wait }, wait)
            }
            ClientAction::Stop { names, wait } => self.change(Request::Stop { names, wait }, wait),
            ClientAction::Restart { names, wait } => {
                self.change(Request::Restart { names, wait }, wait)
            }
            ClientAction::Signal { name, signal } => self.simple(&Request::Signal { name, signal }),
            ClientAction::Reload => self.simple(&Request::Reload {}),
            ClientAction::Shutdown { wait } => self.shutdown(wait),
            ClientAction::Reexec => self.simple(&Request::Reexec {}),
            ClientAction::Logs {
                names,
                lines,
                since,
                follow,
            } => self.logs(names, lines, since, follow),
            ClientAction::Top => top::run(self),
        }
    }

    fn status(&self, names: Vec<String>, json: bool) -> Result<i32, ClientError> {
        let request = Request::Status { names };
        if json {
            let mut reader = self.connect(&request, REQUEST_TIMEOUT)?;
            return status_json(&read_line(&mut reader)?);
        }
        let reply = self.ask(&request)?;
        let Some(services) = checked(reply) else {
            return Ok(1);
        };
        let colour = show::use_colour(&|k| std::env::var_os(k));
        emit(table(&services, crate::runtime::ring::now_ms(), colour));
        Ok(if is_healthy(&services) { 0 } else { 1 })
    }

    fn simple(&self, request: &Request) -> Result<i32, ClientError> {
        let reply = self.ask(request)?;
        if let Some(message) = &reply.message {
            emit(format!("{message}\n"));
        }
        Ok(if checked(reply).is_some() { 0 } else { 1 })
    }

    /// start/stop/restart; with `wait`, the reply says whether they settled.
    fn change(&self, request: Request, wait: bool) -> Result<i32, ClientError> {
        // tend answers a waiting request by SETTLE_TIMEOUT at the latest.
        let patience = if wait {
            SETTLE_TIMEOUT + REQUEST_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        Ok(match checked(self.ask_within(&request, patience)?) {
            Some(_) => 0,
            None => 1,
        })
    }

    /// Ask tend to shut down; with `wait`, until it has exited: it answers at
    /// once and the connection closes when its process ends. That can take
    /// as long as the config's `shutdown_timeout`, so there is no timeout here.
    fn shutdown(&self, wait: bool) -> Result<i32, ClientError> {
        let mut reader = self.connect(&Request::Shutdown {}, REQUEST_TIMEOUT)?;
        let reply = read_reply(&mut reader)?;
        if checked(reply).is_none() {
            return Ok(1);
        }
        if wait {
            let _ = reader.get_ref().set_read_timeout(None);
            let mut sink = [0u8; 256];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        }
        Ok(0)
    }

    fn logs(
        &self,
        mut names: Vec<String>,
        lines: Option<usize>,
        since: Option<Duration>,
        follow: bool,
    ) -> Result<i32, ClientError> {
        let since_ms = since.map(|d| {
            crate::runtime::ring::now_ms().saturating_sub(d.as_millis().min(u64::MAX.into()) as u64)
        });
        // One name goes in the old field, so that a tend from before `names`
        // understands the common case too.
        let name = (names.len() == 1).then(|| names.remove(0));
        let request = Request::Logs {
            names,
            name,
            lines,
            since_ms,
            follow,
        };
        let mut reader = self.connect(&request, REQUEST_TIMEOUT)?;
        let reply = read_reply(&mut reader)?;
        let recent = reply.lines.clone().unwrap_or_default();
        let note = reply.message.clone();
        if checked(reply).is_none() {
            return Ok(1);
        }
        if let Some(note) = note {
            eprintln!("tend: {note}");
        }
        let mut out = io::stdout().lock();
        for line in &recent {
            let _ = writeln!(out, "{}", format_log_line(line));
        }
        let _ = out.flush();
        if !follow {
            return Ok(0);
        }
        let _ = reader.get_ref().set_read_timeout(None);
        let mut text = String::new();
        loop {
            text.clear();
            match reader.read_line(&mut text) {
                Ok(0) | Err(_) => return Ok(0),
                Ok(_) => {}
            }
            if let Ok(line) = LogLine::parse(&text) {
                if writeln!(out, "{}", format_log_line(&line))
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return Ok(0); // stdout closed
                }
            } else if let Ok(last) = Reply::parse(&text) {
                // tend dropped us (too slow) and says why.
                return Ok(if checked(last).is_some() { 0 } else { 1 });
            }
        }
    }
}

fn read_reply(reader: &mut BufReader<UnixStream>) -> Result<Reply, ClientError> {
    Reply::parse(&read_line(reader)?).map_err(ClientError::Protocol)
}

/// The reply's line, whole.
fn read_line(reader: &mut BufReader<UnixStream>) -> Result<String, ClientError> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    if line.is_empty() {
        return Err(ClientError::Protocol(
            "the connection closed without a reply".into(),
        ));
    }
    Ok(line)
}

/// `tend status --json` from the reply's line: its `services` re-indented
/// as they came (`show::pretty_statuses`), the rest read as any reply.
fn status_json(line: &str) -> Result<i32, ClientError> {
    let members =
        crate::codec::reindent::members(line.as_bytes()).map_err(ClientError::Protocol)?;
    let mut envelope = b"{".to_vec();
    let mut services = None;
    for (key, value) in members {
        if key == b"services" {
            services = Some(value);
            continue;
        }
        if envelope.len() > 1 {
            envelope.push(b',');
        }
        envelope.push(b'"');
        envelope.extend_from_slice(key);
        envelope.extend_from_slice(b"\":");
        envelope.extend_from_slice(value);
    }
    envelope.push(b'}');
    let envelope = String::from_utf8(envelope).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if checked(Reply::parse(&envelope).map_err(ClientError::Protocol)?).is_none() {
        return Ok(1);
    }
    let (mut text, healthy) =
        show::pretty_statuses(services.unwrap_or(b"[]")).map_err(ClientError::Protocol)?;
    text.push(b'\n');
    emit(&text);
    Ok(if healthy { 0 } else { 1 })
}

/// The services of an ok reply, or (after printing why) None.
fn checked(reply: Reply) -> Option<Vec<ServiceStatus>> {
    if reply.ok {
        return Some(reply.services.unwrap_or_default());
    }
    eprintln!(
        "tend: {}",
        reply.error.as_deref().unwrap_or("request failed")
    );
    for problem in &reply.problems {
        eprintln!("  {problem}");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = PathBuf::from(format!("/tmp/control-client-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn no_env(_: &str) -> Option<std::ffi::OsString> {
        None
    }

    #[test]
    fn the_socket_comes_from_the_flag_the_config_or_the_default() {
        let dir = temp("choose");
        let named = |path: PathBuf| ConfigPath { path, named: true };
        let default = |path: PathBuf| ConfigPath { path, named: false };
        // -s wins, whatever the config.
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{").expect("write");
        let got = choose_socket(Some("/x.sock".into()), &named(bad.clone()), &no_env, 5);
        assert_eq!(got.ok(), Some(PathBuf::from("/x.sock")));
        // A named config that is invalid or missing: exit 2 with its problems.
        for path in [bad.clone(), dir.join("missing.json")] {
            let e = choose_socket(None, &named(path.clone()), &no_env, 5).expect_err("named");
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        // ./config.json: missing means the default; invalid is an error.
        let got = choose_socket(None, &default(dir.join("config.json")), &no_env, 5);
        assert_eq!(got.ok(), Some(PathBuf::from("/tmp/tend-5/tend.sock")));
        let e = choose_socket(None, &default(bad), &no_env, 5).expect_err("invalid default");
        assert_eq!(e.exit_code(), 2);
        // A valid config's control_socket, or the default, or disabled.
        let good = dir.join("good.json");
        std::fs::write(&good, r#"{"control_socket": "/c.sock", "services": []}"#).expect("w");
        let got = choose_socket(None, &default(good.clone()), &no_env, 5);
        assert_eq!(got.ok(), Some(PathBuf::from("/c.sock")));
        std::fs::write(&good, r#"{"services": []}"#).expect("w");
        let got = choose_socket(None, &named(good.clone()), &no_env, 0);
        assert_eq!(got.ok(), Some(PathBuf::from("/run/tend.sock")));
        std::fs::write(&good, r#"{"control_socket": "", "services": []}"#).expect("w");
        let e = choose_socket(None, &named(good), &no_env, 5).expect_err("disabled");
        assert_eq!(e.exit_code(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
