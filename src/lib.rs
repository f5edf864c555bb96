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

pub mod cli;
pub mod client;
pub mod codec;
pub mod completions;
pub mod config;
pub mod import;
pub mod logging;
pub mod machine;
pub mod paths;
pub mod protocol;
pub mod runtime;
