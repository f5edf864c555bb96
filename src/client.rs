//! The client commands: connect to a running tend, ask, print.
//!
//! The client is a separate short-lived process, so plain blocking I/O with
//! timeouts is fine here. start/stop/restart wait without polling: tend holds
//! the reply until the services have settled (`wait: true` in the request).

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{self, ClientAction};
use crate::protocol::{LogLine, Reply, Request, SETTLE_TIMEOUT, ServiceStatus, format_secs};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client command failed.
#[derive(Debug)]
pub enum ClientError {
    Disabled(PathBuf),
    Unreachable(PathBuf, io::Error),
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            ClientError::Protocol(m) => write!(f, "unexpected answer from tend: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Run one client command; returns the process exit code.
pub fn run(socket: Option<PathBuf>, config: &Path, action: ClientAction) -> i32 {
    let socket = match socket.map(Ok).unwrap_or_else(|| socket_from_config(config)) {
        Ok(path) => path,
        Err(e) => return fail(&e.to_string()),
    };
    let client = Client { socket };
    match client.act(action) {
        Ok(code) => code,
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> i32 {
    eprintln!("tend: {message}");
    1
}

/// The config's `control_socket`, else the default (also when the config cannot be read).
fn socket_from_config(config: &Path) -> Result<PathBuf, ClientError> {
    match crate::config::load(config) {
        Ok(c) => match c.control_socket {
            Some(p) if p.as_os_str().is_empty() => Err(ClientError::Disabled(config.to_path_buf())),
            Some(p) => Ok(p),
            None => Ok(cli::default_control_socket(&|k| std::env::var_os(k))),
        },
        Err(_) => Ok(cli::default_control_socket(&|k| std::env::var_os(k))),
    }
}

struct Client {
    socket: PathBuf,
}

impl Client {
    /// Send `request`; its reply may take `patience` to come.
    fn connect(
        &self,
        request: &Request,
        patience: Duration,
    ) -> Result<BufReader<UnixStream>, ClientError> {
        let unreachable = |e| ClientError::Unreachable(self.socket.clone(), e);
        let mut stream = UnixStream::connect(&self.socket).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(patience))
            .map_err(unreachable)?;
        stream
            .set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(unreachable)?;
        let mut line =
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
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
            ClientAction::Reload => self.simple(&Request::Reload),
            ClientAction::Shutdown => self.simple(&Request::Shutdown),
            ClientAction::Logs {
                name,
                lines,
                follow,
            } => self.logs(name, lines, follow),
        }
    }

    fn status(&self, names: Vec<String>, json: bool) -> Result<i32, ClientError> {
        let reply = self.ask(&Request::Status { names })?;
        let Some(services) = checked(reply)? else {
            return Ok(1);
        };
        if json {
            let text = serde_json::to_string_pretty(&services).unwrap_or_default();
            println!("{text}");
        } else {
            print!("{}", table(&services));
        }
        Ok(if is_healthy(&services) { 0 } else { 1 })
    }

    fn simple(&self, request: &Request) -> Result<i32, ClientError> {
        let reply = self.ask(request)?;
        if let Some(message) = &reply.message {
            println!("{message}");
        }
        Ok(match checked(reply)? {
            Some(_) => 0,
            None => 1,
        })
    }

    /// start/stop/restart; with `wait`, the reply says whether they settled.
    fn change(&self, request: Request, wait: bool) -> Result<i32, ClientError> {
        // tend answers a waiting request by SETTLE_TIMEOUT at the latest.
        let patience = if wait {
            SETTLE_TIMEOUT + REQUEST_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        Ok(match checked(self.ask_within(&request, patience)?)? {
            Some(_) => 0,
            None => 1,
        })
    }

    fn logs(&self, name: String, lines: Option<usize>, follow: bool) -> Result<i32, ClientError> {
        let request = Request::Logs {
            name,
            lines,
            follow,
        };
        let mut reader = self.connect(&request, REQUEST_TIMEOUT)?;
        let reply = read_reply(&mut reader)?;
        let recent = reply.lines.clone().unwrap_or_default();
        if checked(reply)?.is_none() {
            return Ok(1);
        }
        let mut out = io::stdout().lock();
        for line in recent {
            let _ = writeln!(out, "{}", line.line);
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
                Ok(_) => {
                    if let Ok(line) = serde_json::from_str::<LogLine>(&text)
                        && writeln!(out, "{}", line.line)
                            .and_then(|_| out.flush())
                            .is_err()
                    {
                        return Ok(0); // stdout closed
                    }
                }
            }
        }
    }
}

fn read_reply(reader: &mut BufReader<UnixStream>) -> Result<Reply, ClientError> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    if line.is_empty() {
        return Err(ClientError::Protocol(
            "the connection closed without a reply".into(),
        ));
    }
    serde_json::from_str(&line).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// The services of an ok reply, or (after printing why) None.
fn checked(reply: Reply) -> Result<Option<Vec<ServiceStatus>>, ClientError> {
    if reply.ok {
        return Ok(Some(reply.services.unwrap_or_default()));
    }
    eprintln!(
        "tend: {}",
        reply.error.as_deref().unwrap_or("request failed")
    );
    for problem in &reply.problems {
        eprintln!("  {problem}");
    }
    Ok(None)
}

/// `tend status` as a health check: every enabled longrun running, none failed.
pub fn is_healthy(services: &[ServiceStatus]) -> bool {
    services.iter().all(|s| {
        s.state != "failed" && !(s.enabled && s.service_type == "longrun" && s.state != "running")
    })
}

/// The human table of `tend status`.
pub fn table(services: &[ServiceStatus]) -> String {
    let rows: Vec<[String; 6]> = services
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.state.clone(),
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.uptime_secs.map_or("-".into(), format_secs),
                s.restarts.to_string(),
                s.detail(),
            ]
        })
        .collect();
    let header = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "DETAIL"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i == row.len() - 1 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The DETAIL column: why a service is where it is.
#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::sample_status as status;

    #[test]
    fn health_needs_enabled_longruns_running_and_nothing_failed() {
        assert!(is_healthy(&[status("a", "running")]));
        assert!(!is_healthy(&[status("a", "restarting")]));
        let mut off = status("b", "stopped");
        off.enabled = false;
        assert!(is_healthy(&[status("a", "running"), off]));
        let mut job = status("j", "stopped");
        job.service_type = "oneshot".into();
        assert!(is_healthy(&[job.clone()]));
        job.state = "failed".into();
        assert!(!is_healthy(&[job]));
    }

    #[test]
    fn table_is_aligned() {
        let mut b = status("backend", "restarting");
        b.next_start_in_secs = Some(1.94);
        b.last_exit_code = Some(3);
        let text = table(&[status("a", "running"), b]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("STATE").unwrap_or(0);
        assert_eq!(lines[1].find("running"), Some(col));
        assert_eq!(lines[2].find("restarting"), Some(col));
        assert!(
            lines[2].ends_with("next start in 1.9s; last exit code 3"),
            "{text}"
        );
    }
}
