//! Process-level tests: the real `tend` binary with real `/bin/sh` children.
//!
//! One test binary, organised by behaviour:
//! - `lifecycle`: start order, restarts and their policies, backoff, giving up,
//!   spawn failures, critical services, exit_when_idle.
//! - `output`: every line forwarded, in order, whole; long lines; invalid UTF-8.
//! - `log_output`: log formats, log files, rotation, logrotate and SIGHUP, a file
//!   that cannot be written, memory and status under a slow stderr reader.
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
//! - `metrics`: the Prometheus endpoint: families, promtool, a real Prometheus,
//!   routing, hostile clients, bind errors, reloads.
//! - `grpc_codec`: the grpc probe's codec against grpcio and an HTTP/1 server.
//! - `cgroup`: cgroup v2 containment, limits, `auto`, reloads (root only).
//! - `probes`: readiness and liveness checks (exec, tcp, http, grpc) against
//!   real servers: timeouts, restarts, killed probe commands, wakeups.
//! - `notify`: `notify` and `fd` readiness, the watchdog, `MAINPID=`, strangers,
//!   and tend's own sd_notify upward.
//! - `isolation`: namespaces (root only), scheduling settings, `sha256` checks
//!   (a 200 MB hash without stalling status), and `tend top`.
//! - `reexec`: `tend reexec` and SIGUSR2: 50 services through 20 execs, a
//!   binary that refuses, an exec that fails, exits and clients across it.

mod support;

mod cgroup;
mod cli;
mod config_check;
mod control;
mod grpc_codec;
mod hygiene;
mod import;
mod isolation;
mod launch;
mod lifecycle;
mod log_output;
mod logs;
mod metrics;
mod notify;
mod output;
mod pid1;
mod probes;
mod protocol;
mod reexec;
mod shutdown;
mod signals;
mod socket_rules;
