//! Process-level tests: the real `tend` binary with real `/bin/sh` children.
//!
//! One test binary, organised by behaviour:
//! - `lifecycle`: start order, restarts and their policies, backoff, giving up,
//!   spawn failures, critical services, exit_when_idle.
//! - `output`: every line forwarded, in order, whole; long lines; invalid UTF-8.
//! - `shutdown`: SIGTERM to every group, SIGKILL escalation, stop order, orphans.
//! - `config_check`: `tend check` against golden files; `tend run` refusing a bad config.
//! - `hygiene`: what a service inherits (fds, signals, stdin, process group,
//!   environment).
//! - `launch`: launch plans are resolved once (no lookups per restart; strace).
//! - `signals`: signals that do not end tend, and a parent that blocked them.
//! - `control`: the control socket and client commands.
//! - `socket_rules`: which tend a client talks to: socket folder, peer uid,
//!   symlinks, bad configs (owner checks need root: `--ignored`).
//! - `protocol`: the raw control protocol: unknown fields, no newline, the cap.
//! - `logs`: `tend logs` across services, `--since`, `-f`.
//! - `cli`: help, completions, the status table, `shutdown` waiting.
//! - `import`: `tend import` of Procfiles and supervisord configs (golden files).
//! - `pid1`: tend as PID 1 of a PID namespace (root only).
//! - `grpc_codec`: the grpc probe's codec against grpcio and an HTTP/1 server.
//! - `notify`: `notify` and `fd` readiness, the watchdog, `MAINPID=`, strangers,
//!   and tend's own sd_notify upward.

mod support;

mod cli;
mod config_check;
mod control;
mod grpc_codec;
mod hygiene;
mod import;
mod launch;
mod lifecycle;
mod logs;
mod notify;
mod output;
mod pid1;
mod protocol;
mod shutdown;
mod signals;
mod socket_rules;
