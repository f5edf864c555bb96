//! Hand-written wire codecs for probes: pure functions and sans-IO state machines.
//! Nothing here opens a socket, reads a clock or blocks; the runtime feeds bytes in
//! and writes the bytes they return.
//!
//! - [`grpc`]: the `grpc` probe (`grpc.health.v1.Health/Check`); start here.
//! - [`http2`]: HTTP/2 frames (RFC 9113) for it.
//! - [`hpack`]: HTTP/2 header compression (RFC 7541).
//! - [`huffman`]: the HPACK Huffman code (RFC 7541 Appendix B).

pub mod grpc;
pub mod hpack;
pub mod http2;
pub mod huffman;
