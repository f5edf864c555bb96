//! Wire formats tend speaks, as pure sans-IO codecs.
//!
//! Each module turns bytes into values or values into bytes and nothing else: no
//! sockets, no clock, no logging, no global state. The runtime owns the fds and
//! feeds the parsers whatever a non-blocking read returned, in any split; a parser
//! answers "need more", "done" or "error with a message", and never holds more
//! than its stated bound of hostile input.
//!
//! - [`http1`]: HTTP/1.1 (RFC 9112) for the `http` probe (client) and the metrics
//!   endpoint (server).
//! - [`notify`]: `sd_notify(3)` datagrams, from services and upward from tend.
//! - [`json`]: JSON output (string escaping and a compact or pretty writer) for
//!   the control protocol and the `json` log format.
//! - [`reindent`]: compact JSON re-indented as the pretty writer would write
//!   it, without parsing into values (`tend status --json` of a large reply).
//! - [`prometheus`]: the Prometheus text exposition format 0.0.4 (writer only).
//! - [`sha256`]: SHA-256 (FIPS 180-4).
//! - [`wire`]: the compact binary encoding of `tend reexec`'s snapshot.
//! - [`grpc`]: the `grpc` probe (`grpc.health.v1.Health/Check`) over cleartext
//!   HTTP/2; built on [`http2`] (frames, RFC 9113), [`hpack`] (header
//!   compression, RFC 7541) and [`huffman`] (its Appendix B code).
//!
//! Must not: read the clock, touch an fd, panic on input, or allocate without a
//! bound. Read a module's own `//!` first: it lists what it deliberately leaves out.

pub mod grpc;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod huffman;
pub mod json;
pub mod notify;
pub mod prometheus;
pub mod reindent;
pub mod sha256;
pub mod wire;
