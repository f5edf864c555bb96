//! Process-level tests: the real `tend` binary with real `/bin/sh` children.
//!
//! One test binary, organised by behaviour:
//! - `lifecycle`: start order, restarts and their policies, backoff, giving up,
//!   spawn failures, critical services, exit_when_idle.
//! - `output`: every line forwarded, in order, whole; long lines; invalid UTF-8.
//! - `logs`: log formats, log files, rotation, logrotate and SIGHUP, a file that
//!   cannot be written, memory and status under a slow stderr reader.
//! - `shutdown`: SIGTERM to every group, SIGKILL escalation, stop order, orphans.
//! - `config_check`: `tend check` against golden files; `tend run` refusing a bad config.
//! - `hygiene`: what a service inherits (fds, signals, stdin, process group).
//! - `control`: the control socket and client commands.
//! - `pid1`: tend as PID 1 of a PID namespace (root only).

mod support;

mod config_check;
mod control;
mod hygiene;
mod lifecycle;
mod logs;
mod output;
mod pid1;
mod shutdown;
