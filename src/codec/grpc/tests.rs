//! Health check tests: our request byte for byte; real server transcripts
//! (captured from grpcio and Node) and scripted conversations that succeed, each
//! fed whole, split at every byte, and one byte at a time; a fuzz loop over
//! mutated and random server bytes. The helpers here build server conversations;
//! `failure_tests` uses them for every way the check can fail.

use super::*;
use crate::codec::hpack::Decoder;
use crate::codec::http2::{
    FRAME_HEADER_LEN, FrameHeader, Priority, flag, frame_type, settings_params,
};

pub(super) fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// grpcio 1.85.3 (Python, C-core) health server, `Check("tend.test")` while
/// NOT_SERVING: SETTINGS, WINDOW_UPDATE, SETTINGS ACK, WINDOW_UPDATE, PING,
/// HEADERS (literals with incremental indexing, no Huffman), DATA, trailers.
const GRPCIO_NOT_SERVING: &str = "000018040000000000000400400000000500400000000600004000fe030000\
    0001000004080000000000003f00010000000401000000000000040800000000000000001000000806000000\
    000058e8dc0bef9e447000004e01040000000188400c636f6e74656e742d74797065106170706c6963617469\
    6f6e2f677270634014677270632d6163636570742d656e636f64696e67176964656e746974792c206465666c\
    6174652c20677a69700000070000000000010000000002080200001e010500000001400b677270632d737461\
    7475730130000c677270632d6d65737361676500";
/// The same server once SERVING.
const GRPCIO_SERVING: &str = "000018040000000000000400400000000500400000000600004000fe030000\
    0001000004080000000000003f0001000000040100000000000004080000000000000000100000080600000000\
    000aea81b21d19eb7a00004e01040000000188400c636f6e74656e742d74797065106170706c69636174696f6e\
    2f677270634014677270632d6163636570742d656e636f64696e67176964656e746974792c206465666c617465\
    2c20677a69700000070000000000010000000002080100001e010500000001400b677270632d7374617475730130\
    000c677270632d6d65737361676500";
/// The same server asked about an unknown service: an empty message, then
/// grpc-status 5 (NOT_FOUND).
const GRPCIO_UNKNOWN_SERVICE: &str = "000018040000000000000400400000000500400000000600004000fe03\
    00000001000004080000000000003f000100000004010000000000000408000000000000000016000008060000\
    000000431fe9443ba854b500004e01040000000188400c636f6e74656e742d74797065106170706c6963617469\
    6f6e2f677270634014677270632d6163636570742d656e636f64696e67176964656e746974792c206465666c61\
    74652c20677a6970000005000000000001000000000000001e010500000001400b677270632d73746174757301\
    35000c677270632d6d65737361676500";
/// Node 20's `http2` (nghttp2) answering SERVING (tests/integration/grpc_codec.rs):
/// an empty SETTINGS, a table size update, Huffman strings, dynamic-table indexing.
const NODE_SERVING: &str = "0000000400000000000000000401000000000000690104000000013fe11f885f8b1d\
    75d0620d263d4c4d6564408e9acac8b0c842d6958b510f21aa9b863485a9264faf4088f2b0ed4ce7b0c9f58b08\
    9d5c0b8170dc69979a674089f2b5a82d8b0e62d49f87496a91802e15c16196e4593e940094be52282009c502cd\
    c6dcb8cbaa62d1bf0000070000000000010000000002080100001801050000000140889acac8b21234da8f0130\
    40899acac8b5254207317f00";

// --- building server conversations ---

pub(super) fn frame(frame: Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    frame.write(&mut out);
    out
}

pub(super) fn settings() -> Vec<u8> {
    let params = settings_payload(&[(setting::MAX_CONCURRENT_STREAMS, 100)]);
    frame(Frame::Settings {
        ack: false,
        params: &params,
    })
}

pub(super) fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        hpack::encode_literal(
            &mut out,
            Name::Literal(name.as_bytes()),
            value.as_bytes(),
            true,
        );
    }
    out
}

pub(super) fn headers_on(stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
    frame(Frame::Headers {
        stream,
        end_stream,
        end_headers: true,
        priority: None,
        block: &block(fields),
        padding: None,
    })
}

pub(super) fn headers(fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
    headers_on(STREAM, fields, end_stream)
}

pub(super) fn data(bytes: &[u8], end_stream: bool) -> Vec<u8> {
    frame(Frame::Data {
        stream: STREAM,
        end_stream,
        data: bytes,
        padding: None,
    })
}

pub(super) const OK_HEADERS: &[(&str, &str)] =
    &[(":status", "200"), ("content-type", "application/grpc")];

pub(super) fn message(protobuf: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(protobuf.len() as u32).to_be_bytes());
    out.extend_from_slice(protobuf);
    out
}

/// A complete, well-formed answer carrying this protobuf response.
pub(super) fn answer(protobuf: &[u8]) -> Vec<u8> {
    [
        settings(),
        headers(OK_HEADERS, false),
        data(&message(protobuf), false),
        headers(&[("grpc-status", "0")], true),
    ]
    .concat()
}

pub(super) fn trailers_only(fields: &[(&str, &str)]) -> Vec<u8> {
    [settings(), headers(fields, true)].concat()
}

pub(super) fn failed(failure: Failure) -> Outcome {
    Outcome::Failed(failure)
}

pub(super) fn protocol_error(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Failed(Failure::Protocol(what)) => what.clone(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// Feed `bytes` in the given pieces; the outcome (from `finish` if the bytes
/// did not decide it) and everything the check asked to send.
pub(super) fn run_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Outcome, Vec<u8>) {
    let mut check = HealthCheck::new("127.0.0.1:50051", "tend.test");
    let mut sent = Vec::new();
    let mut fed = 0;
    for piece in pieces {
        let step = check.feed(piece);
        fed += piece.len();
        sent.extend_from_slice(&step.send);
        assert!(sent.len() <= fed, "replies never outgrow input");
        if let Some(outcome) = step.outcome {
            // Over: later input changes nothing and sends nothing.
            assert_eq!(
                check.feed(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00").send,
                b""
            );
            assert_eq!(check.finish(), outcome);
            return (outcome, sent);
        }
    }
    (check.finish(), sent)
}

/// Run `bytes` whole, split in two at every position, and one byte at a time;
/// all must agree. Returns the outcome and what was sent.
pub(super) fn run(bytes: &[u8]) -> (Outcome, Vec<u8>) {
    let whole = run_pieces([bytes]);
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        assert_eq!(run_pieces([a, b]), whole, "split at {at}");
    }
    assert_eq!(run_pieces(bytes.chunks(1)), whole, "byte by byte");
    whole
}

pub(super) fn outcome(bytes: &[u8]) -> Outcome {
    run(bytes).0
}

// --- the request ---

/// Our bytes, parsed back: the frames after the preface, and the decoded headers.
type Frames = Vec<(FrameHeader, Vec<u8>)>;
type Fields = Vec<(String, String)>;

fn parse_request(bytes: &[u8]) -> (Frames, Fields) {
    assert!(bytes.starts_with(PREFACE));
    let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE);
    let mut frames = Vec::new();
    let mut rest = &bytes[PREFACE.len()..];
    while !rest.is_empty() {
        rest = &rest[reader.fill(rest).unwrap()..];
        if let Some((header, payload)) = reader.frame() {
            frames.push((header, payload.to_vec()));
            reader.clear();
        }
    }
    assert_eq!(reader.buffered(), 0);
    let block: Vec<u8> = frames
        .iter()
        .filter(|(h, _)| h.kind == frame_type::HEADERS || h.kind == frame_type::CONTINUATION)
        .flat_map(|(_, p)| p.clone())
        .collect();
    let list = Decoder::new(4096, 1 << 20).decode(&block).unwrap();
    let list = list
        .iter()
        .map(|h| {
            (
                String::from_utf8(h.name.clone()).unwrap(),
                String::from_utf8(h.value.clone()).unwrap(),
            )
        })
        .collect();
    (frames, list)
}

#[test]
fn the_request_is_preface_settings_headers_and_one_message() {
    let check = HealthCheck::new("db.local:50051", "tend.test");
    let (frames, list) = parse_request(&check.initial_bytes());
    let kinds: Vec<(u8, u8, u32)> = frames
        .iter()
        .map(|(h, _)| (h.kind, h.flags, h.stream))
        .collect();
    assert_eq!(
        kinds,
        [
            (frame_type::SETTINGS, 0, 0),
            (frame_type::HEADERS, flag::END_HEADERS, 1),
            (frame_type::DATA, flag::END_STREAM, 1),
        ]
    );
    let params: Vec<_> = settings_params(&frames[0].1).collect();
    assert_eq!(
        params,
        [
            (setting::HEADER_TABLE_SIZE, 4096),
            (setting::ENABLE_PUSH, 0),
            (setting::MAX_HEADER_LIST_SIZE, 16_384)
        ]
    );
    let user_agent = format!("tend/{}", env!("CARGO_PKG_VERSION"));
    let expected = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/grpc.health.v1.Health/Check"),
        (":authority", "db.local:50051"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("user-agent", user_agent.as_str()),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(list, expected);
    assert_eq!(frames[2].1, b"\x00\x00\x00\x00\x0b\x0a\x09tend.test");
    // The whole server: an empty request message, as proto3 encodes it.
    let (frames, _) = parse_request(&HealthCheck::new("h:1", "").initial_bytes());
    assert_eq!(frames[2].1, [0, 0, 0, 0, 0]);
}

#[test]
fn long_names_are_split_into_continuation_and_data_frames() {
    let authority: String = (0..60_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let service = "s".repeat(20_000);
    let check = HealthCheck::new(&authority, &service);
    let (frames, list) = parse_request(&check.initial_bytes());
    let shape: Vec<(u8, u8)> = frames.iter().map(|(h, _)| (h.kind, h.flags)).collect();
    assert_eq!(
        shape,
        [
            (frame_type::SETTINGS, 0),
            (frame_type::HEADERS, 0),
            (frame_type::CONTINUATION, 0),
            (frame_type::CONTINUATION, flag::END_HEADERS),
            (frame_type::DATA, 0),
            (frame_type::DATA, flag::END_STREAM),
        ]
    );
    assert!(
        frames
            .iter()
            .all(|(h, _)| h.length <= DEFAULT_MAX_FRAME_SIZE)
    );
    assert_eq!(list[3].1, authority);
    let body: Vec<u8> = frames[4..].iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(body.len(), 5 + 4 + 20_000);
    assert_eq!(&body[5..9], &[0x0a, 0xa0, 0x9c, 0x01]); // tag, varint 20000
}

// --- real transcripts ---

/// The ACKs a transcript calls for: one per SETTINGS, one per PING (same payload).
pub(super) fn expected_acks(transcript: &[u8]) -> Vec<u8> {
    let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE);
    let mut acks = Vec::new();
    let mut rest = transcript;
    while !rest.is_empty() {
        rest = &rest[reader.fill(rest).unwrap()..];
        if let Some((header, payload)) = reader.frame() {
            match Frame::parse(&header, payload).unwrap() {
                Frame::Settings { ack: false, .. } => acks.extend(frame(Frame::Settings {
                    ack: true,
                    params: &[],
                })),
                Frame::Ping {
                    ack: false,
                    payload,
                } => acks.extend(frame(Frame::Ping { ack: true, payload })),
                _ => {}
            }
            reader.clear();
        }
    }
    acks
}

#[test]
fn grpcio_transcripts() {
    for (transcript, expected) in [
        (GRPCIO_NOT_SERVING, failed(Failure::NotServing)),
        (GRPCIO_SERVING, Outcome::Serving),
        (
            GRPCIO_UNKNOWN_SERVICE,
            failed(Failure::GrpcStatus {
                code: 5,
                message: String::new(),
            }),
        ),
    ] {
        let bytes = unhex(transcript);
        let (outcome, sent) = run(&bytes);
        assert_eq!(outcome, expected);
        let acks = expected_acks(&bytes);
        assert_eq!(acks.len(), 9 + 17, "one SETTINGS, one PING");
        assert_eq!(sent, acks);
    }
}

#[test]
fn node_transcript_with_huffman_and_dynamic_table() {
    let bytes = unhex(NODE_SERVING);
    let (outcome, sent) = run(&bytes);
    assert_eq!(outcome, Outcome::Serving);
    assert_eq!(sent, expected_acks(&bytes));
}

// --- scripted conversations that succeed ---

#[test]
fn serving_in_the_plain_shape() {
    let (outcome, sent) = run(&answer(&[0x08, 0x01]));
    assert_eq!(outcome, Outcome::Serving);
    assert_eq!(
        sent,
        frame(Frame::Settings {
            ack: true,
            params: &[]
        })
    );
}

#[test]
fn serving_through_every_frame_a_server_may_add() {
    let block = block(OK_HEADERS);
    let (first, rest) = block.split_at(3);
    let (second, third) = rest.split_at(5);
    let conversation = [
        settings(),
        frame(Frame::Settings {
            ack: true,
            params: &[],
        }),
        frame(Frame::WindowUpdate {
            stream: 0,
            increment: 1 << 20,
        }),
        frame(Frame::Ping {
            ack: false,
            payload: *b"pingpong",
        }),
        frame(Frame::Ping {
            ack: true,
            payload: *b"whatever",
        }),
        raw_frame(0x42, 0xff, 7, b"an extension frame"),
        frame(Frame::Priority {
            stream: 1,
            priority: Priority {
                exclusive: false,
                dependency: 0,
                weight: 16,
            },
        }),
        // 100 Continue, then the real headers in HEADERS + 2 CONTINUATIONs,
        // padded and with a priority block.
        headers(&[(":status", "100")], false),
        frame(Frame::Headers {
            stream: 1,
            end_stream: false,
            end_headers: false,
            priority: Some(Priority {
                exclusive: true,
                dependency: 0,
                weight: 1,
            }),
            block: first,
            padding: Some(4),
        }),
        frame(Frame::Continuation {
            stream: 1,
            end_headers: false,
            block: second,
        }),
        frame(Frame::Continuation {
            stream: 1,
            end_headers: true,
            block: third,
        }),
        frame(Frame::WindowUpdate {
            stream: 1,
            increment: 100,
        }),
        // The message in three DATA frames, one padded, one empty.
        frame(Frame::Data {
            stream: 1,
            end_stream: false,
            data: &[0, 0, 0],
            padding: Some(9),
        }),
        data(&[], false),
        data(&[0, 4, 0x08, 0x01, 0x10, 0x05], false),
        // A graceful GOAWAY that still lets stream 1 finish.
        frame(Frame::GoAway {
            last_stream: 1,
            code: error_code::NO_ERROR,
            debug: b"draining",
        }),
        // Trailers: grpc-status 0 among others.
        headers(
            &[("grpc-status", "0"), ("grpc-message", ""), ("x-extra", "1")],
            true,
        ),
    ]
    .concat();
    // Fields 1 (status) then 2 (unknown varint), skipped.
    let (outcome, sent) = run(&conversation);
    assert_eq!(outcome, Outcome::Serving);
    assert_eq!(sent, expected_acks(&conversation));
}

pub(super) fn raw_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        length: payload.len(),
        kind,
        flags,
        stream,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

#[test]
fn content_type_variants() {
    for ct in ["application/grpc+proto", "application/grpc;charset=utf-8"] {
        let conversation = [
            settings(),
            headers(&[(":status", "200"), ("content-type", ct)], false),
            data(&message(&[0x08, 1]), false),
            headers(&[("grpc-status", "0")], true),
        ]
        .concat();
        assert_eq!(run_pieces([&conversation[..]]).0, Outcome::Serving, "{ct}");
    }
}

// --- fuzz ---

/// What the check may hold at most, whatever the input: one frame, one header
/// block, the table, one message, the first bytes.
const HELD_BOUND: usize = FRAME_HEADER_LEN
    + DEFAULT_MAX_FRAME_SIZE
    + MAX_HEADER_BLOCK
    + HEADER_TABLE_SIZE
    + 5
    + MAX_MESSAGE_SIZE
    + 64;

#[test]
fn fuzz_mutated_conversations_and_garbage_never_panic_and_stay_bounded() {
    let seeds: Vec<Vec<u8>> = vec![
        unhex(GRPCIO_NOT_SERVING),
        unhex(GRPCIO_SERVING),
        unhex(GRPCIO_UNKNOWN_SERVICE),
        unhex(NODE_SERVING),
        answer(&[0x08, 0x01]),
        trailers_only(&[
            (":status", "200"),
            ("grpc-status", "5"),
            ("grpc-message", "x%20y"),
        ]),
    ];
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut serving, mut failed_count) = (0, 0);
    for round in 0..120_000u32 {
        let bytes: Vec<u8> = if round % 3 == 0 {
            let len = (next() % 200) as usize;
            (0..len)
                .map(|_| if next() % 4 == 0 { 0 } else { next() as u8 })
                .collect()
        } else {
            let mut bytes = seeds[(next() % seeds.len() as u64) as usize].clone();
            for _ in 0..=(next() % 3) {
                let at = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes[at] ^= 1 << (next() % 8),
                    2 => bytes.insert(at, next() as u8),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            bytes
        };
        let mut check = HealthCheck::new("h:1", "s");
        let mut rest = &bytes[..];
        let mut decided = None;
        let (mut fed, mut sent) = (0, 0);
        while !rest.is_empty() {
            let n = 1 + (next() % 64) as usize;
            let (piece, after) = rest.split_at(n.min(rest.len()));
            rest = after;
            let step = check.feed(piece);
            fed += piece.len();
            sent += step.send.len();
            assert!(sent <= fed);
            assert!(check.held_bytes() <= HELD_BOUND);
            if step.outcome.is_some() {
                decided = step.outcome;
                break;
            }
        }
        match decided.unwrap_or_else(|| check.finish()) {
            Outcome::Serving => serving += 1,
            Outcome::Failed(failure) => {
                assert!(!failure.to_string().is_empty());
                failed_count += 1;
            }
        }
    }
    // The mutations leave many conversations intact: both ends are exercised.
    assert!(serving > 1_000, "serving {serving}");
    assert!(failed_count > 50_000, "failed {failed_count}");
}
