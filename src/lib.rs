//! tend: a single-threaded process supervisor.
//!
//! Layout (one line per module; README has the same map):
//! - [`config`]: JSON file → validated [`config::Config`], every problem at once.
//! - [`machine`]: the sans-IO core; state + event + now → new state + actions.
//! - [`runtime`]: the I/O shell; one mio loop that owns every fd and pid.
//! - [`protocol`]: control socket request/response types.
//! - [`client`]: the `tend status|start|stop|...` commands.
//! - [`cli`]: hand-written argument parsing, driven by one command table.
//! - [`completions`]: bash and zsh completion scripts from that table.
//! - [`paths`]: where the control socket is, for server and client.
//! - [`import`]: `tend import`: a Procfile or supervisord config → a tend config.
//! - [`codec`]: hand-written wire formats (HTTP/1.1, sd_notify, Prometheus,
//!   SHA-256, HTTP/2 + HPACK for gRPC), pure and sans-IO.
//! - [`logging`]: tend's log: own lines and service output, never blocking the loop.
//! - [`lines`]: service output cut into lines (a leaf: logging and runtime share it).
//! - [`calendar`]: UTC dates of day counts, for RFC 3339 times (a leaf).
//! - [`sys`]: the system layer, the only `unsafe` code: safe wrappers over libc.
//!
//! `unsafe` is denied in the crate, allowed in [`sys`] alone and forbidden in
//! every other module: a new system call gets a small safe wrapper in `sys`.

#![deny(unsafe_code)]

#[forbid(unsafe_code)]
pub mod calendar;
#[forbid(unsafe_code)]
pub mod cli;
#[forbid(unsafe_code)]
pub mod client;
#[forbid(unsafe_code)]
pub mod codec;
#[forbid(unsafe_code)]
pub mod completions;
#[forbid(unsafe_code)]
pub mod config;
#[forbid(unsafe_code)]
pub mod import;
#[forbid(unsafe_code)]
pub mod lines;
#[forbid(unsafe_code)]
pub mod logging;
#[forbid(unsafe_code)]
pub mod machine;
#[forbid(unsafe_code)]
pub mod paths;
#[forbid(unsafe_code)]
pub mod protocol;
#[forbid(unsafe_code)]
pub mod runtime;
pub mod sys;
