//! The `grpc` probe's codec against real peers: grpcio's health server (Python,
//! `pip install grpcio grpcio-health-checking`, see scripts/install-peers.sh) and
//! Python's HTTP/1 server. The test drives `tend::codec::grpc::HealthCheck` over a
//! blocking `TcpStream` with timeouts; tend itself is not involved.
//!
//! Skipped, with a printed reason, only when `grpc` cannot be imported.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use tend::codec::grpc::{Failure, HealthCheck, Outcome};
use tend::codec::hpack::Decoder;
use tend::codec::http2::{Frame, FrameReader};

use crate::support::*;

const HEALTH_SERVER: &str = r#"
import sys
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
port = server.add_insecure_port("127.0.0.1:0")
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
servicer.set("tend.test", health_pb2.HealthCheckResponse.NOT_SERVING)
server.start()
print(port, flush=True)
for line in sys.stdin:
    if line.strip() == "serve":
        servicer.set("tend.test", health_pb2.HealthCheckResponse.SERVING)
        print("serving", flush=True)
server.stop(0)
"#;

/// Answers anything the way nginx answers an HTTP/2 preface on an HTTP/1 port.
const HTTP1_SERVER: &str = r#"
import socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(5)
print(listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n")
    conn.close()
"#;

/// Python's own HTTP server, which answers `PRI * HTTP/2.0` with a bare HTML
/// error page (HTTP/0.9 style, no status line).
const PYTHON_HTTP_SERVER: &str = r#"
import http.server, socketserver
httpd = socketserver.TCPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"#;

/// A minimal gRPC health server on Node's `http2` (nghttp2), whose HPACK encoder
/// Huffman-codes strings and indexes them in its dynamic table. It checks our
/// request's shape (400 otherwise) and answers by service name.
const NODE_SERVER: &str = r#"
const http2 = require('http2');
const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    const ok = headers[':method'] === 'POST' && headers[':scheme'] === 'http' &&
      headers[':path'] === '/grpc.health.v1.Health/Check' &&
      headers['content-type'] === 'application/grpc' && headers['te'] === 'trailers' &&
      body.length >= 5 && body.readUInt32BE(1) === body.length - 5;
    if (!ok) {
      stream.respond({':status': 400}, {endStream: true});
      return;
    }
    let service = '';
    if (body.length > 7 && body[5] === 0x0a) service = body.subarray(7, 7 + body[6]).toString();
    if (service === 'fail') {
      stream.respond({':status': 200, 'content-type': 'application/grpc',
        'grpc-status': '14', 'grpc-message': 'backend%20down%21'}, {endStream: true});
      return;
    }
    const status = service === 'down' ? 2 : 1;
    stream.respond({':status': 200, 'content-type': 'application/grpc',
      'grpc-accept-encoding': 'identity', 'x-authority': headers[':authority'],
      'x-user-agent': headers['user-agent']}, {waitForTrailers: true});
    stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0', 'grpc-message': ''}));
    stream.end(Buffer.from([0, 0, 0, 0, 2, 8, status]));
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
"#;

/// A Python or Node server: killed when dropped; its stdout lines arrive on a channel.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Peer {
    fn start(dir: &TestDir, interpreter: &str, name: &str, script: &str) -> Peer {
        let path = dir.write(name, script);
        let mut child = Command::new(interpreter)
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Peer {
            child,
            stdin,
            lines,
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("a line from the server")
    }

    fn port(&self) -> u16 {
        self.line().trim().parse().expect("a port number")
    }

    fn tell(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("write to the server");
        stdin.flush().expect("flush");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn grpcio_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import grpc, grpc_health.v1.health"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED: python3 cannot import grpc / grpc_health \
             (pip install grpcio grpcio-health-checking, or scripts/install-peers.sh)"
        );
    }
    ok
}

/// One health check over a blocking socket; returns the outcome and every byte
/// the server sent.
fn check(port: u16, service: &str) -> (Outcome, Vec<u8>) {
    let address = format!("127.0.0.1:{port}");
    let mut stream = TcpStream::connect_timeout(&address.parse().unwrap(), PATIENCE)
        .expect("connect to the server");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    let mut probe = HealthCheck::new(&address, service);
    stream
        .write_all(&probe.initial_bytes())
        .expect("send request");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("read (timed out?)");
        if n == 0 {
            return (probe.finish(), received);
        }
        received.extend_from_slice(&buf[..n]);
        let step = probe.feed(&buf[..n]);
        if !step.send.is_empty() {
            // The server may already have closed after answering.
            let _ = stream.write_all(&step.send);
        }
        if let Some(outcome) = step.outcome {
            return (outcome, received);
        }
    }
}

/// How many Huffman-coded strings the server's header blocks contained.
fn huffman_strings(server_bytes: &[u8]) -> u64 {
    let mut reader = FrameReader::new(16_384);
    let mut decoder = Decoder::new(4096, 16_384);
    let mut rest = server_bytes;
    while !rest.is_empty() {
        let taken = reader.fill(rest).expect("valid frames");
        rest = &rest[taken..];
        if let Some((header, payload)) = reader.frame() {
            if let Ok(Frame::Headers { block, .. }) = Frame::parse(&header, payload) {
                decoder.decode(block).expect("valid header block");
            }
            reader.clear();
        }
    }
    decoder.huffman_strings()
}

#[test]
fn grpcio_health_server_answers_not_serving_then_serving() {
    if !grpcio_available() {
        return;
    }
    let dir = TestDir::new("grpc");
    let mut peer = Peer::start(&dir, "python3", "health.py", HEALTH_SERVER);
    let port = peer.port();

    let (outcome, bytes) = check(port, "tend.test");
    assert_eq!(outcome, Outcome::Failed(Failure::NotServing));
    // Observed with grpcio 1.85: its (C-core) encoder sends literals with
    // incremental indexing and raw strings, no Huffman; Node's nghttp2 below does.
    eprintln!(
        "grpcio sent {} Huffman-coded header strings",
        huffman_strings(&bytes)
    );

    peer.tell("serve");
    assert_eq!(peer.line(), "serving");
    assert_eq!(check(port, "tend.test").0, Outcome::Serving);
    assert_eq!(check(port, "").0, Outcome::Serving);

    // An unknown service: grpcio answers Trailers-Only with NOT_FOUND.
    let (outcome, _) = check(port, "no.such.Service");
    let Outcome::Failed(failure @ Failure::GrpcStatus { code: 5, .. }) = outcome else {
        panic!("expected grpc-status 5, got {outcome:?}");
    };
    assert_eq!(
        failure.to_string(),
        "grpc-status 5 (NOT_FOUND) (the server does not know this service)"
    );
}

#[test]
fn node_http2_server_with_huffman_headers() {
    let available = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        skip_without("node is not installed (apt-get install -y nodejs)");
        return;
    }
    let dir = TestDir::new("grpc-node");
    let peer = Peer::start(&dir, "node", "h2.js", NODE_SERVER);
    let port = peer.port();
    let (outcome, bytes) = check(port, "tend.test");
    assert_eq!(outcome, Outcome::Serving);
    let huffman = huffman_strings(&bytes);
    eprintln!("node (nghttp2) sent {huffman} Huffman-coded header strings");
    assert!(huffman > 0, "nghttp2 Huffman-codes header strings");
    assert_eq!(check(port, "down").0, Outcome::Failed(Failure::NotServing));
    assert_eq!(
        check(port, "fail").0,
        Outcome::Failed(Failure::GrpcStatus {
            code: 14,
            message: "backend down!".into()
        })
    );
    drop(peer);
}

#[test]
fn http1_servers_are_reported_as_not_http2() {
    let dir = TestDir::new("grpc-h1");
    let peer = Peer::start(&dir, "python3", "http1.py", HTTP1_SERVER);
    let (outcome, _) = check(peer.port(), "");
    let Outcome::Failed(failure @ Failure::NotHttp2 { .. }) = outcome else {
        panic!("expected NotHttp2, got {outcome:?}");
    };
    assert_eq!(
        failure.to_string(),
        "the server answered in HTTP/1, not HTTP/2: \"HTTP/1.1 400 Bad Request\""
    );

    let peer = Peer::start(&dir, "python3", "pyhttp.py", PYTHON_HTTP_SERVER);
    let (outcome, _) = check(peer.port(), "");
    let Outcome::Failed(failure @ Failure::NotHttp2 { .. }) = outcome else {
        panic!("expected NotHttp2, got {outcome:?}");
    };
    eprintln!("python http.server: {failure}");
}
