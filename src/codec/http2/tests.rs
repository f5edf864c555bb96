//! HTTP/2 frame tests: every frame round-trips, every §6 check fires, the reader
//! reassembles frames split anywhere and never buffers past one frame.

use super::*;

fn parse_one(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let header = FrameHeader::parse(bytes).expect("a header");
    assert_eq!(
        bytes.len(),
        FRAME_HEADER_LEN + header.length,
        "one whole frame"
    );
    Frame::parse(&header, &bytes[FRAME_HEADER_LEN..])
}

fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
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
fn frame_header_round_trips_and_ignores_the_reserved_bit() {
    let header = FrameHeader {
        length: 0x01_02_03,
        kind: 0xfe,
        flags: 0xa5,
        stream: 0x7fff_fffe,
    };
    let mut out = Vec::new();
    header.write(&mut out);
    assert_eq!(out, [1, 2, 3, 0xfe, 0xa5, 0x7f, 0xff, 0xff, 0xfe]);
    assert_eq!(FrameHeader::parse(&out), Some(header));
    out[5] |= 0x80;
    assert_eq!(FrameHeader::parse(&out), Some(header));
    assert_eq!(FrameHeader::parse(&out[..8]), None);
}

#[test]
fn every_frame_round_trips() {
    let settings = settings_payload(&[(setting::HEADER_TABLE_SIZE, 4096), (0xabcd, 7)]);
    let priority = Priority {
        exclusive: true,
        dependency: 3,
        weight: 200,
    };
    let frames = [
        Frame::Data {
            stream: 1,
            end_stream: true,
            data: b"hello",
            padding: None,
        },
        Frame::Data {
            stream: 1,
            end_stream: false,
            data: b"",
            padding: Some(7),
        },
        Frame::Headers {
            stream: 1,
            end_stream: false,
            end_headers: true,
            priority: None,
            block: b"\x88",
            padding: None,
        },
        Frame::Headers {
            stream: 3,
            end_stream: true,
            end_headers: false,
            priority: Some(priority),
            block: b"\x82\x86",
            padding: Some(2),
        },
        Frame::Priority {
            stream: 5,
            priority,
        },
        Frame::RstStream {
            stream: 1,
            code: error_code::CANCEL,
        },
        Frame::Settings {
            ack: false,
            params: &settings,
        },
        Frame::Settings {
            ack: true,
            params: b"",
        },
        Frame::PushPromise { stream: 1 },
        Frame::Ping {
            ack: true,
            payload: *b"12345678",
        },
        Frame::GoAway {
            last_stream: 1,
            code: error_code::ENHANCE_YOUR_CALM,
            debug: b"calm down",
        },
        Frame::WindowUpdate {
            stream: 0,
            increment: 0x7fff_ffff,
        },
        Frame::Continuation {
            stream: 1,
            end_headers: true,
            block: b"\x40\x01a\x01b",
        },
    ];
    for frame in frames {
        let mut out = Vec::new();
        frame.write(&mut out);
        if matches!(frame, Frame::PushPromise { .. }) {
            // Written as an empty shell; parsing keeps only the stream.
            assert_eq!(parse_one(&out), Ok(frame));
            continue;
        }
        assert_eq!(parse_one(&out), Ok(frame.clone()), "{frame:?}");
    }
    let mut out = Vec::new();
    Frame::Unknown {
        kind: 0x42,
        stream: 0,
    }
    .write(&mut out);
    assert!(out.is_empty());
    assert_eq!(
        parse_one(&raw(0x42, 0xff, 9, b"whatever")),
        Ok(Frame::Unknown {
            kind: 0x42,
            stream: 9
        })
    );
    let params: Vec<_> = settings_params(&settings).collect();
    assert_eq!(params, [(setting::HEADER_TABLE_SIZE, 4096), (0xabcd, 7)]);
}

#[test]
fn section_6_violations_are_errors_with_the_right_code() {
    use error_code::{FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, PROTOCOL_ERROR};
    let cases: &[(&str, Vec<u8>, u32)] = &[
        (
            "DATA on 0",
            raw(frame_type::DATA, 0, 0, b"x"),
            PROTOCOL_ERROR,
        ),
        (
            "DATA pad too long",
            raw(frame_type::DATA, flag::PADDED, 1, &[3, b'a', 0]),
            PROTOCOL_ERROR,
        ),
        (
            "DATA padded, empty",
            raw(frame_type::DATA, flag::PADDED, 1, b""),
            FRAME_SIZE_ERROR,
        ),
        (
            "HEADERS on 0",
            raw(frame_type::HEADERS, 0, 0, b"\x88"),
            PROTOCOL_ERROR,
        ),
        (
            "HEADERS pad too long",
            raw(frame_type::HEADERS, flag::PADDED, 1, &[2, 0x88]),
            PROTOCOL_ERROR,
        ),
        (
            "HEADERS priority cut",
            raw(frame_type::HEADERS, flag::PRIORITY, 1, &[0, 0, 0]),
            FRAME_SIZE_ERROR,
        ),
        (
            "PRIORITY length",
            raw(frame_type::PRIORITY, 0, 1, &[0; 4]),
            FRAME_SIZE_ERROR,
        ),
        (
            "PRIORITY on 0",
            raw(frame_type::PRIORITY, 0, 0, &[0; 5]),
            PROTOCOL_ERROR,
        ),
        (
            "RST_STREAM length",
            raw(frame_type::RST_STREAM, 0, 1, &[0; 5]),
            FRAME_SIZE_ERROR,
        ),
        (
            "RST_STREAM on 0",
            raw(frame_type::RST_STREAM, 0, 0, &[0; 4]),
            PROTOCOL_ERROR,
        ),
        (
            "SETTINGS on 1",
            raw(frame_type::SETTINGS, 0, 1, b""),
            PROTOCOL_ERROR,
        ),
        (
            "SETTINGS length",
            raw(frame_type::SETTINGS, 0, 0, &[0; 5]),
            FRAME_SIZE_ERROR,
        ),
        (
            "SETTINGS ACK payload",
            raw(frame_type::SETTINGS, flag::ACK, 0, &[0; 6]),
            FRAME_SIZE_ERROR,
        ),
        (
            "ENABLE_PUSH 2",
            raw(
                frame_type::SETTINGS,
                0,
                0,
                &settings_payload(&[(setting::ENABLE_PUSH, 2)]),
            ),
            PROTOCOL_ERROR,
        ),
        (
            "INITIAL_WINDOW_SIZE 2^31",
            raw(
                frame_type::SETTINGS,
                0,
                0,
                &settings_payload(&[(setting::INITIAL_WINDOW_SIZE, 1 << 31)]),
            ),
            FLOW_CONTROL_ERROR,
        ),
        (
            "MAX_FRAME_SIZE too small",
            raw(
                frame_type::SETTINGS,
                0,
                0,
                &settings_payload(&[(setting::MAX_FRAME_SIZE, 16_383)]),
            ),
            PROTOCOL_ERROR,
        ),
        (
            "MAX_FRAME_SIZE too large",
            raw(
                frame_type::SETTINGS,
                0,
                0,
                &settings_payload(&[(setting::MAX_FRAME_SIZE, 1 << 24)]),
            ),
            PROTOCOL_ERROR,
        ),
        (
            "PUSH_PROMISE on 0",
            raw(frame_type::PUSH_PROMISE, 0, 0, &[0; 4]),
            PROTOCOL_ERROR,
        ),
        (
            "PING length",
            raw(frame_type::PING, 0, 0, &[0; 7]),
            FRAME_SIZE_ERROR,
        ),
        (
            "PING on 1",
            raw(frame_type::PING, 0, 1, &[0; 8]),
            PROTOCOL_ERROR,
        ),
        (
            "GOAWAY short",
            raw(frame_type::GOAWAY, 0, 0, &[0; 7]),
            FRAME_SIZE_ERROR,
        ),
        (
            "GOAWAY on 1",
            raw(frame_type::GOAWAY, 0, 1, &[0; 8]),
            PROTOCOL_ERROR,
        ),
        (
            "WINDOW_UPDATE length",
            raw(frame_type::WINDOW_UPDATE, 0, 0, &[0; 5]),
            FRAME_SIZE_ERROR,
        ),
        (
            "WINDOW_UPDATE 0",
            raw(frame_type::WINDOW_UPDATE, 0, 1, &[0; 4]),
            PROTOCOL_ERROR,
        ),
        (
            "CONTINUATION on 0",
            raw(frame_type::CONTINUATION, 0, 0, b""),
            PROTOCOL_ERROR,
        ),
    ];
    for (name, bytes, code) in cases {
        let error = parse_one(bytes).expect_err(name);
        assert_eq!(error.code, *code, "{name}: {error}");
        assert!(!error.to_string().is_empty());
    }
    // Valid edge cases: padding filling the whole frame, unknown settings.
    assert!(parse_one(&raw(frame_type::DATA, flag::PADDED, 1, &[2, 0, 0])).is_ok());
    assert!(
        parse_one(&raw(
            frame_type::SETTINGS,
            0,
            0,
            &settings_payload(&[(99, 1 << 31)])
        ))
        .is_ok()
    );
    assert_eq!(
        error_code::name(error_code::HTTP_1_1_REQUIRED),
        "HTTP_1_1_REQUIRED"
    );
    assert_eq!(error_code::name(0xdead), "unknown error code");
}

/// Feed `bytes` in chunks of `chunk` and collect the frames as raw bytes.
fn reassemble(bytes: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE);
    let mut frames = Vec::new();
    for piece in bytes.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let taken = reader.fill(rest)?;
            rest = &rest[taken..];
            if let Some((header, payload)) = reader.frame() {
                let mut frame = Vec::new();
                header.write(&mut frame);
                frame.extend_from_slice(payload);
                frames.push(frame);
                reader.clear();
            }
            assert!(reader.buffered() <= FRAME_HEADER_LEN + DEFAULT_MAX_FRAME_SIZE);
        }
    }
    assert_eq!(reader.buffered(), 0, "no partial frame left");
    Ok(frames)
}

#[test]
fn reader_reassembles_frames_split_anywhere() {
    let frames = vec![
        raw(frame_type::SETTINGS, 0, 0, b""),
        raw(frame_type::DATA, 0, 1, &[7; 100]),
        raw(frame_type::PING, 0, 0, b"abcdefgh"),
        raw(frame_type::DATA, 0, 1, &vec![9; DEFAULT_MAX_FRAME_SIZE]),
    ];
    let stream = frames.concat();
    for chunk in [1, 2, 8, 9, 10, 17, 1000, stream.len()] {
        assert_eq!(reassemble(&stream, chunk).unwrap(), frames, "chunk {chunk}");
    }
}

#[test]
fn reader_refuses_an_oversized_frame_before_its_payload() {
    let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE);
    let header = raw(frame_type::DATA, 0, 1, b"");
    let mut big = header.clone();
    big[0..3].copy_from_slice(&[0x00, 0x40, 0x01]); // 16385
    assert_eq!(reader.fill(&big[..8]), Ok(8));
    let error = reader.fill(&big[8..]).unwrap_err();
    assert_eq!(error.code, error_code::FRAME_SIZE_ERROR);
    assert!(reader.buffered() <= FRAME_HEADER_LEN);
    // An HTTP/1.1 answer read as a frame header: 0x485454 bytes.
    let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE);
    assert!(reader.fill(b"HTTP/1.1 400 Bad Request\r\n").is_err());
}

#[test]
fn fuzz_random_bytes_never_panic_and_stay_bounded() {
    let mut state = 0xdead_beef_cafe_f00du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let valid = [
        raw(
            frame_type::SETTINGS,
            0,
            0,
            &settings_payload(&[(1, 4096), (4, 1 << 20)]),
        ),
        raw(
            frame_type::HEADERS,
            flag::PADDED | flag::PRIORITY,
            1,
            &[1, 0, 0, 0, 3, 9, 0x88, 0],
        ),
        raw(
            frame_type::DATA,
            flag::PADDED | flag::END_STREAM,
            1,
            &[1, 0, 0, 0, 0, 2, 8, 0, 0],
        ),
        raw(frame_type::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0, b'x']),
        raw(frame_type::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]),
    ]
    .concat();
    let mut parsed = 0;
    for round in 0..100_000 {
        let bytes: Vec<u8> = if round % 2 == 0 {
            let len = (next() % 80) as usize;
            (0..len)
                .map(|_| if next() % 3 == 0 { 0 } else { next() as u8 })
                .collect()
        } else {
            let mut bytes = valid.clone();
            for _ in 0..=(next() % 3) {
                let at = (next() as usize) % bytes.len();
                bytes[at] ^= 1 << (next() % 8);
            }
            bytes
        };
        let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let Ok(taken) = reader.fill(rest) else { break };
            rest = &rest[taken..];
            if let Some((header, payload)) = reader.frame() {
                if let Ok(frame) = Frame::parse(&header, payload) {
                    parsed += 1;
                    let mut out = Vec::new();
                    frame.write(&mut out);
                }
                reader.clear();
            }
            assert!(reader.buffered() <= FRAME_HEADER_LEN + DEFAULT_MAX_FRAME_SIZE);
        }
    }
    assert!(
        parsed > 10_000,
        "the mutations keep most frames valid: {parsed}"
    );
}
