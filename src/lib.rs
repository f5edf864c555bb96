//! tend: a single-threaded process supervisor.
//!
//! Layout (one line per module; README has the same map):
//! - [`config`]: JSON file → validated [`config::Config`], every problem at once.
//! - [`machine`]: the sans-IO core; state + event + now → new state + actions.
//! - [`runtime`]: the I/O shell; one mio loop that owns every fd and pid.
//! - [`protocol`]: control socket request/response types.
//! - [`client`]: the `tend status|start|stop|...` commands.
//! - [`cli`]: hand-written argument parsing.
//! - [`import`]: `tend import`: a Procfile or supervisord config → a tend config.
//! - [`logging`]: tend's log: own lines and service output, never blocking the loop.

pub mod cli;
pub mod client;
pub mod config;
pub mod import;
pub mod logging;
pub mod machine;
pub mod protocol;
pub mod runtime;
