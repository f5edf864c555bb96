//! Every way the health check fails, each conversation fed whole, split at every
//! byte and one byte at a time (see `tests::run`), with the exact message a user
//! reads where it matters.

use super::tests::*;
use super::*;
use crate::codec::http2::frame_type;

#[test]
fn health_statuses_other_than_serving() {
    assert_eq!(outcome(&answer(&[0x08, 0x02])), failed(Failure::NotServing));
    assert_eq!(
        outcome(&answer(&[0x08, 0x03])),
        failed(Failure::ServiceUnknown)
    );
    assert_eq!(
        outcome(&answer(&[0x08, 0x00])),
        failed(Failure::StatusUnknown)
    );
    assert_eq!(outcome(&answer(&[])), failed(Failure::StatusUnknown));
    assert_eq!(
        outcome(&answer(&[0x08, 0x07])),
        failed(Failure::UnrecognizedStatus(7))
    );
    let minus_one = [
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    assert_eq!(
        outcome(&answer(&minus_one)),
        failed(Failure::UnrecognizedStatus(-1))
    );
    assert_eq!(
        failed(Failure::NotServing).to_string(),
        "the service is NOT_SERVING"
    );
    assert_eq!(Outcome::Serving.to_string(), "SERVING");
}

#[test]
fn grpc_status_errors_carry_the_decoded_message() {
    let result = outcome(&trailers_only(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "14"),
        ("grpc-message", "backend%20down%3A%20%C3%A9t%C3%A9%zz%"),
    ]));
    assert_eq!(
        result,
        failed(Failure::GrpcStatus {
            code: 14,
            message: "backend down: été%zz%".into()
        })
    );
    assert_eq!(
        result.to_string(),
        "grpc-status 14 (UNAVAILABLE): backend down: été%zz%"
    );
    // Trailers-only without content-type is still judged by grpc-status.
    let result = outcome(&trailers_only(&[(":status", "200"), ("grpc-status", "12")]));
    assert_eq!(
        result.to_string(),
        "grpc-status 12 (UNIMPLEMENTED) (the server has no grpc.health.v1.Health service)"
    );
    // After a message, in the trailers.
    let conversation = [
        settings(),
        headers(OK_HEADERS, false),
        data(&message(&[0x08, 1]), false),
        headers(&[("grpc-status", "2"), ("grpc-message", "boom\n")], true),
    ]
    .concat();
    assert_eq!(
        outcome(&conversation),
        failed(Failure::GrpcStatus {
            code: 2,
            message: "boom\\n".into()
        })
    );
}

#[test]
fn http_statuses_and_content_types_that_are_not_grpc() {
    let result = outcome(&trailers_only(&[(":status", "404")]));
    assert_eq!(result, failed(Failure::HttpStatus(404)));
    assert_eq!(result.to_string(), "HTTP status 404, expected 200");
    let conversation = [settings(), headers(&[(":status", "503")], false)].concat();
    assert_eq!(outcome(&conversation), failed(Failure::HttpStatus(503)));
    let conversation = [
        settings(),
        headers(&[(":status", "200"), ("content-type", "text/html")], false),
    ]
    .concat();
    let result = outcome(&conversation);
    assert_eq!(
        result,
        failed(Failure::NotGrpc {
            content_type: "text/html".into()
        })
    );
    assert_eq!(
        result.to_string(),
        "not a gRPC response: content-type \"text/html\""
    );
    let conversation = [settings(), headers(&[(":status", "200")], false)].concat();
    assert_eq!(
        outcome(&conversation),
        failed(Failure::NotGrpc {
            content_type: "none".into()
        })
    );
    let grpcish = [
        settings(),
        headers(
            &[(":status", "200"), ("content-type", "application/grpcx")],
            false,
        ),
    ]
    .concat();
    assert!(matches!(
        outcome(&grpcish),
        Outcome::Failed(Failure::NotGrpc { .. })
    ));
}

#[test]
fn goaway_and_rst_stream() {
    let goaway = |last_stream, code, debug: &[u8]| {
        [
            settings(),
            frame(Frame::GoAway {
                last_stream,
                code,
                debug,
            }),
        ]
        .concat()
    };
    let result = outcome(&goaway(1, error_code::ENHANCE_YOUR_CALM, b"too many pings"));
    assert_eq!(
        result,
        failed(Failure::GoAway {
            code: error_code::ENHANCE_YOUR_CALM,
            debug: "too many pings".into()
        })
    );
    assert_eq!(
        result.to_string(),
        "the server sent GOAWAY (ENHANCE_YOUR_CALM): too many pings"
    );
    assert_eq!(
        outcome(&goaway(0, error_code::NO_ERROR, b"")),
        failed(Failure::GoAway {
            code: error_code::NO_ERROR,
            debug: String::new()
        })
    );
    // Graceful, then EOF without an answer.
    assert_eq!(
        outcome(&goaway(1, error_code::NO_ERROR, b"")),
        failed(Failure::Closed {
            before: "the response headers",
            after_goaway: true
        })
    );
    let reset = [
        settings(),
        headers(OK_HEADERS, false),
        frame(Frame::RstStream {
            stream: 1,
            code: error_code::REFUSED_STREAM,
        }),
    ]
    .concat();
    let result = outcome(&reset);
    assert_eq!(
        result,
        failed(Failure::Reset {
            code: error_code::REFUSED_STREAM
        })
    );
    assert_eq!(
        result.to_string(),
        "the server reset the call (REFUSED_STREAM)"
    );
}

#[test]
fn protocol_errors() {
    let s = settings();
    let ok = headers(OK_HEADERS, false);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            [s.clone(), raw_frame(frame_type::PING, 0, 0, &[0; 7])].concat(),
            "PING frame of 7 bytes",
        ),
        (
            [s.clone(), raw_frame(frame_type::HEADERS, 5, 1, &[0x80])].concat(),
            "COMPRESSION_ERROR",
        ),
        (
            [s.clone(), raw_frame(0, 0, 1, &[0; 17000])].concat(),
            "exceeds the maximum",
        ),
        (
            [s.clone(), data(b"x", false)].concat(),
            "DATA before the response headers",
        ),
        (
            [s.clone(), ok.clone(), raw_frame(0, 0, 3, b"x")].concat(),
            "DATA on stream 3",
        ),
        (
            [s.clone(), headers_on(3, OK_HEADERS, false)].concat(),
            "HEADERS on stream 3",
        ),
        (
            [s.clone(), frame(Frame::RstStream { stream: 5, code: 0 })].concat(),
            "RST_STREAM on stream 5",
        ),
        (
            [s.clone(), frame(Frame::PushPromise { stream: 1 })].concat(),
            "PUSH_PROMISE",
        ),
        (
            [
                s.clone(),
                frame(Frame::Continuation {
                    stream: 1,
                    end_headers: true,
                    block: b"",
                }),
            ]
            .concat(),
            "CONTINUATION without HEADERS",
        ),
        (
            [
                s.clone(),
                frame(Frame::Headers {
                    stream: 1,
                    end_stream: false,
                    end_headers: false,
                    priority: None,
                    block: &[0x88],
                    padding: None,
                }),
                frame(Frame::Ping {
                    ack: false,
                    payload: [0; 8],
                }),
            ]
            .concat(),
            "interrupted before END_HEADERS",
        ),
        (
            [
                s.clone(),
                headers(&[("content-type", "application/grpc")], false),
            ]
            .concat(),
            "without :status",
        ),
        (
            [s.clone(), headers(&[(":status", "2000")], false)].concat(),
            "not a status code",
        ),
        (
            [s.clone(), headers(&[(":status", "20x")], false)].concat(),
            "not a status code",
        ),
        (
            [s.clone(), headers(&[(":status", "100")], true)].concat(),
            "informational",
        ),
        (
            [
                s.clone(),
                ok.clone(),
                headers(&[("grpc-status", "0")], false),
            ]
            .concat(),
            "trailers without END_STREAM",
        ),
        (
            [
                s.clone(),
                ok.clone(),
                headers(&[(":status", "200"), ("grpc-status", "0")], true),
            ]
            .concat(),
            "pseudo-header in trailers",
        ),
        (
            [s.clone(), ok.clone(), headers(&[("x", "y")], true)].concat(),
            "without grpc-status",
        ),
        (
            [
                s.clone(),
                ok.clone(),
                headers(&[("grpc-status", "zero")], true),
            ]
            .concat(),
            "not a number",
        ),
        (
            [
                s.clone(),
                ok.clone(),
                headers(&[("grpc-status", "0")], true),
            ]
            .concat(),
            "without a response message",
        ),
        (
            [
                s.clone(),
                ok.clone(),
                data(&[0, 0, 0, 0, 2, 8], false),
                headers(&[("grpc-status", "0")], true),
            ]
            .concat(),
            "cut short",
        ),
        (
            [s.clone(), ok.clone(), data(&message(&[8, 1]), true)].concat(),
            "without trailers",
        ),
        (
            [s.clone(), ok.clone(), data(&[1, 0, 0, 0, 2, 8, 1], false)].concat(),
            "compressed",
        ),
        (
            [s.clone(), ok.clone(), data(&[0, 0, 1, 0, 0], false)].concat(),
            "response message of 65536 bytes",
        ),
        (
            [s.clone(), ok.clone(), data(&[0; 5000], false)].concat(),
            "larger than 4096",
        ),
        (
            [
                s.clone(),
                ok.clone(),
                data(&[message(&[8, 1]), message(&[8, 1])].concat(), false),
            ]
            .concat(),
            "more than one",
        ),
        (
            [
                s.clone(),
                ok.clone(),
                data(&message(&[8, 1, 0x0a]), false),
                headers(&[("grpc-status", "0")], true),
            ]
            .concat(),
            "malformed HealthCheckResponse",
        ),
        (
            frame(Frame::Ping {
                ack: false,
                payload: [0; 8],
            }),
            "first frame is type 6",
        ),
        (
            raw_frame(frame_type::SETTINGS, 0, 0, &[0; 5]),
            "SETTINGS frame of 5 bytes",
        ),
    ];
    for (conversation, needle) in cases {
        let what = protocol_error(&outcome(&conversation));
        assert!(what.contains(needle), "{what:?} should mention {needle:?}");
    }
}

#[test]
fn flow_control_window_overrun() {
    // 65535 bytes of padding-only DATA frames are within the window; one more is not.
    let padding_only = frame(Frame::Data {
        stream: 1,
        end_stream: false,
        data: &[],
        padding: Some(254),
    });
    let mut conversation = [settings(), headers(OK_HEADERS, false)].concat();
    for _ in 0..(65_535 / 255) {
        conversation.extend_from_slice(&padding_only);
    }
    assert_eq!(
        run_pieces([&conversation[..]]).0,
        failed(Failure::Closed {
            before: "the response trailers",
            after_goaway: false
        })
    );
    conversation.extend_from_slice(&padding_only);
    let what = protocol_error(&run_pieces([&conversation[..]]).0);
    assert!(what.contains("FLOW_CONTROL_ERROR"), "{what}");
}

#[test]
fn servers_that_do_not_speak_http2() {
    let result = outcome(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        result.to_string(),
        "the server answered in HTTP/1, not HTTP/2: \"HTTP/1.1 400 Bad Request\""
    );
    // Cut off before the end of the status line: what there is.
    assert_eq!(
        outcome(b"HTTP/1.0 505 HTTP Vers").to_string(),
        "the server answered in HTTP/1, not HTTP/2: \"HTTP/1.0 505 HTTP Vers\""
    );
    assert_eq!(
        outcome(b"SSH-2.0-OpenSSH_9.6\r\n").to_string(),
        "not an HTTP/2 server: it sent \"SSH-2.0-OpenSSH_9.6\""
    );
    assert_eq!(
        outcome(b"\x15\x03\x03\x00\x02\x02\x46").to_string(),
        "the server speaks TLS; the grpc probe uses cleartext HTTP/2 (h2c)"
    );
    assert_eq!(
        outcome(b"<!DOCTYPE HTML>\n<html>").to_string(),
        "not an HTTP/2 server: it sent \"<!DOCTYPE HTML>\""
    );
    assert_eq!(
        outcome(b"\x00\x01").to_string(),
        "the connection closed before the server's SETTINGS"
    );
    let long_line = [b"HTTP/1.1 200 OK ".as_slice(), &[b'x'; 200]].concat();
    let Outcome::Failed(Failure::NotHttp2 { first_bytes }) = outcome(&long_line) else {
        panic!("expected NotHttp2");
    };
    assert_eq!(first_bytes.len(), 64);
}

#[test]
fn end_of_file_before_the_answer() {
    let closed = |before| {
        failed(Failure::Closed {
            before,
            after_goaway: false,
        })
    };
    assert_eq!(outcome(b""), closed("the server sent anything"));
    assert_eq!(outcome(&settings()), closed("the response headers"));
    let conversation = [
        settings(),
        headers(OK_HEADERS, false),
        data(&message(&[8, 1]), false),
    ]
    .concat();
    assert_eq!(outcome(&conversation), closed("the response trailers"));
    assert_eq!(
        closed("the response trailers").to_string(),
        "the connection closed before the response trailers"
    );
}
