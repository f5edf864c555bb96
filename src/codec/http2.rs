//! HTTP/2 framing (RFC 9113): the frame header, the frames a client of one
//! request meets, parsed with the checks §6 requires, and their serialization.
//!
//! Read first: RFC 9113 §4.1 (frame layout), §4.2 (frame size), §6 (each frame
//! type and what makes it a connection error), §3.4 (the client preface).
//!
//! - [`FrameHeader`]: the 9-byte header, parse and write.
//! - [`Frame`]: one frame's payload, borrowed from the input: parse (validating
//!   lengths, stream ids, padding and SETTINGS values) and write.
//! - [`FrameReader`]: takes bytes as they arrive and yields whole frames, never
//!   holding more than one frame (9 + max frame size bytes); a header announcing
//!   more than the maximum is a FRAME_SIZE_ERROR before any payload is buffered.
//!
//! Unknown frame types are returned as [`Frame::Unknown`] for the caller to
//! ignore (§4.1, §5.5); unknown flags and unknown SETTINGS are ignored.
//! Deliberately not here: stream state machines, priorities (PRIORITY and the
//! HEADERS priority block are parsed only to be skipped), server push
//! (PUSH_PROMISE is parsed only so the caller can refuse it), and flow-control
//! accounting, which belongs to the caller (the `grpc` probe never needs to
//! replenish a window: see its module doc).

use std::fmt;

/// What a client sends first (§3.4), before its SETTINGS.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The size of every frame header.
pub const FRAME_HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value (§6.5.2): every peer accepts frames
/// this large, and we never advertise more.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16_384;
/// The initial flow-control window of a connection and of each stream (§6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// Frame type codes (§6).
pub mod frame_type {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (§6); ACK shares END_STREAM's bit on SETTINGS and PING.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters (§6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// Error codes (§7).
pub mod error_code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const SETTINGS_TIMEOUT: u32 = 0x4;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const CONNECT_ERROR: u32 = 0xa;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
    pub const INADEQUATE_SECURITY: u32 = 0xc;
    pub const HTTP_1_1_REQUIRED: u32 = 0xd;

    /// The §7 name of an error code, for messages.
    pub fn name(code: u32) -> &'static str {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        usize::try_from(code)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("unknown error code")
    }
}

/// A frame that breaks §4 or §6: the error code the RFC assigns and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: u32,
    pub reason: String,
}

impl FrameError {
    fn new(code: u32, reason: impl Into<String>) -> FrameError {
        FrameError {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, error_code::name(self.code))
    }
}

/// §4.1: length (24 bits), type, flags, reserved bit + stream id (31 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub length: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    /// Parse the first 9 bytes; `None` if there are fewer. The reserved bit is
    /// ignored, as §4.1 requires.
    pub fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let &[l0, l1, l2, kind, flags, s0, s1, s2, s3, ..] = bytes else {
            return None;
        };
        Some(FrameHeader {
            length: usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2),
            kind,
            flags,
            stream: u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff,
        })
    }

    /// Append the 9 header bytes. `length` must fit 24 bits (callers write
    /// frames of at most [`DEFAULT_MAX_FRAME_SIZE`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        let length = (self.length as u32).to_be_bytes();
        out.extend_from_slice(&length[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & 0x7fff_ffff).to_be_bytes());
    }
}

/// The priority block of HEADERS and PRIORITY (§5.3.2 of RFC 7540; deprecated by
/// RFC 9113 §5.3.2, kept only to parse and skip it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub dependency: u32,
    pub weight: u8,
}

impl Priority {
    fn parse(bytes: &[u8]) -> Option<Priority> {
        let &[d0, d1, d2, d3, weight] = bytes else {
            return None;
        };
        let raw = u32::from_be_bytes([d0, d1, d2, d3]);
        Some(Priority {
            exclusive: raw & 0x8000_0000 != 0,
            dependency: raw & 0x7fff_ffff,
            weight,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let exclusive = if self.exclusive { 0x8000_0000 } else { 0 };
        out.extend_from_slice(&(self.dependency | exclusive).to_be_bytes());
        out.push(self.weight);
    }
}

/// One parsed frame; slices borrow the payload. `padding` is the pad length of a
/// PADDED frame (kept so a frame writes back byte for byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        padding: Option<u8>,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
        block: &'a [u8],
        padding: Option<u8>,
    },
    Priority {
        stream: u32,
        priority: Priority,
    },
    RstStream {
        stream: u32,
        code: u32,
    },
    /// `params` is a whole number of 6-byte entries; see [`settings_params`].
    Settings {
        ack: bool,
        params: &'a [u8],
    },
    /// Parsed only far enough to be refused (we disable push).
    PushPromise {
        stream: u32,
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: u32,
        debug: &'a [u8],
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// A type this module does not know: §4.1 says to ignore it.
    Unknown {
        kind: u8,
        stream: u32,
    },
}

/// The (identifier, value) pairs of a SETTINGS payload.
pub fn settings_params(params: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    params.chunks_exact(6).map(|p| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
        )
    })
}

/// Encode SETTINGS parameters into a payload for [`Frame::Settings`].
pub fn settings_payload(params: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(params.len() * 6);
    for (id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

fn protocol(reason: impl Into<String>) -> FrameError {
    FrameError::new(error_code::PROTOCOL_ERROR, reason)
}

fn frame_size(reason: impl Into<String>) -> FrameError {
    FrameError::new(error_code::FRAME_SIZE_ERROR, reason)
}

/// Split off a PADDED frame's pad length and padding (§6.1, §6.2): padding that
/// does not fit the payload is a PROTOCOL_ERROR.
fn unpad<'a>(
    flags: u8,
    payload: &'a [u8],
    name: &str,
) -> Result<(&'a [u8], Option<u8>), FrameError> {
    if flags & flag::PADDED == 0 {
        return Ok((payload, None));
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or_else(|| frame_size(format!("PADDED {name} frame without a pad length")))?;
    let end = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or_else(|| protocol(format!("{name} padding of {pad} longer than the frame")))?;
    Ok((&rest[..end], Some(pad)))
}

fn needs_stream(header: &FrameHeader, name: &str) -> Result<u32, FrameError> {
    if header.stream == 0 {
        return Err(protocol(format!("{name} frame on stream 0")));
    }
    Ok(header.stream)
}

fn needs_connection(header: &FrameHeader, name: &str) -> Result<(), FrameError> {
    if header.stream != 0 {
        return Err(protocol(format!(
            "{name} frame on stream {}",
            header.stream
        )));
    }
    Ok(())
}

fn exact_len(payload: &[u8], len: usize, name: &str) -> Result<(), FrameError> {
    if payload.len() != len {
        return Err(frame_size(format!(
            "{name} frame of {} bytes (must be {len})",
            payload.len()
        )));
    }
    Ok(())
}

fn read_u32(bytes: &[u8]) -> u32 {
    match bytes {
        &[a, b, c, d, ..] => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// §6.5.2: values that are connection errors.
fn check_settings(params: &[u8]) -> Result<(), FrameError> {
    for (id, value) in settings_params(params) {
        match id {
            setting::ENABLE_PUSH if value > 1 => {
                return Err(protocol(format!("SETTINGS_ENABLE_PUSH of {value}")));
            }
            setting::INITIAL_WINDOW_SIZE if value > 0x7fff_ffff => {
                return Err(FrameError::new(
                    error_code::FLOW_CONTROL_ERROR,
                    format!("SETTINGS_INITIAL_WINDOW_SIZE of {value}"),
                ));
            }
            setting::MAX_FRAME_SIZE if !(16_384..=0xff_ffff).contains(&value) => {
                return Err(protocol(format!("SETTINGS_MAX_FRAME_SIZE of {value}")));
            }
            _ => {}
        }
    }
    Ok(())
}

impl<'a> Frame<'a> {
    /// Parse a frame whose header and whole payload have arrived, with every
    /// check §6 makes a connection error. Stream-level problems (for example
    /// RST_STREAM on an idle stream) are the caller's.
    pub fn parse(header: &FrameHeader, payload: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let flags = header.flags;
        let frame = match header.kind {
            frame_type::DATA => {
                let stream = needs_stream(header, "DATA")?;
                let (data, padding) = unpad(flags, payload, "DATA")?;
                Frame::Data {
                    stream,
                    end_stream: flags & flag::END_STREAM != 0,
                    data,
                    padding,
                }
            }
            frame_type::HEADERS => {
                let stream = needs_stream(header, "HEADERS")?;
                let (rest, padding) = unpad(flags, payload, "HEADERS")?;
                let (priority, block) = if flags & flag::PRIORITY != 0 {
                    let (fields, block) = rest
                        .split_at_checked(5)
                        .ok_or_else(|| frame_size("HEADERS priority block cut short"))?;
                    (Priority::parse(fields), block)
                } else {
                    (None, rest)
                };
                Frame::Headers {
                    stream,
                    end_stream: flags & flag::END_STREAM != 0,
                    end_headers: flags & flag::END_HEADERS != 0,
                    priority,
                    block,
                    padding,
                }
            }
            frame_type::PRIORITY => {
                let stream = needs_stream(header, "PRIORITY")?;
                exact_len(payload, 5, "PRIORITY")?;
                let priority = Priority::parse(payload)
                    .ok_or_else(|| frame_size("PRIORITY frame cut short"))?;
                Frame::Priority { stream, priority }
            }
            frame_type::RST_STREAM => {
                let stream = needs_stream(header, "RST_STREAM")?;
                exact_len(payload, 4, "RST_STREAM")?;
                Frame::RstStream {
                    stream,
                    code: read_u32(payload),
                }
            }
            frame_type::SETTINGS => {
                needs_connection(header, "SETTINGS")?;
                let ack = flags & flag::ACK != 0;
                if ack && !payload.is_empty() {
                    return Err(frame_size("SETTINGS ACK with a payload"));
                }
                if !payload.len().is_multiple_of(6) {
                    return Err(frame_size(format!(
                        "SETTINGS frame of {} bytes (not a multiple of 6)",
                        payload.len()
                    )));
                }
                check_settings(payload)?;
                Frame::Settings {
                    ack,
                    params: payload,
                }
            }
            frame_type::PUSH_PROMISE => Frame::PushPromise {
                stream: needs_stream(header, "PUSH_PROMISE")?,
            },
            frame_type::PING => {
                needs_connection(header, "PING")?;
                let payload: [u8; 8] = payload.try_into().map_err(|_| {
                    frame_size(format!("PING frame of {} bytes (must be 8)", payload.len()))
                })?;
                Frame::Ping {
                    ack: flags & flag::ACK != 0,
                    payload,
                }
            }
            frame_type::GOAWAY => {
                needs_connection(header, "GOAWAY")?;
                if payload.len() < 8 {
                    return Err(frame_size("GOAWAY frame shorter than 8 bytes"));
                }
                Frame::GoAway {
                    last_stream: read_u32(payload) & 0x7fff_ffff,
                    code: read_u32(&payload[4..]),
                    debug: &payload[8..],
                }
            }
            frame_type::WINDOW_UPDATE => {
                exact_len(payload, 4, "WINDOW_UPDATE")?;
                let increment = read_u32(payload) & 0x7fff_ffff;
                if increment == 0 {
                    return Err(protocol("WINDOW_UPDATE with an increment of 0"));
                }
                Frame::WindowUpdate {
                    stream: header.stream,
                    increment,
                }
            }
            frame_type::CONTINUATION => Frame::Continuation {
                stream: needs_stream(header, "CONTINUATION")?,
                end_headers: flags & flag::END_HEADERS != 0,
                block: payload,
            },
            kind => Frame::Unknown {
                kind,
                stream: header.stream,
            },
        };
        Ok(frame)
    }

    /// Append the frame, header included. Payloads must fit the peer's maximum
    /// frame size (the caller splits; see `grpc`). `Unknown` writes nothing.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut payload = Vec::new();
        let (kind, flags, stream) = match self {
            Frame::Data {
                stream,
                end_stream,
                data,
                padding,
            } => {
                let flags = pad_flag(*padding) | if *end_stream { flag::END_STREAM } else { 0 };
                padded(&mut payload, *padding, data);
                (frame_type::DATA, flags, *stream)
            }
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                priority,
                block,
                padding,
            } => {
                let mut flags = pad_flag(*padding);
                flags |= if *end_stream { flag::END_STREAM } else { 0 };
                flags |= if *end_headers { flag::END_HEADERS } else { 0 };
                let mut body = Vec::new();
                if let Some(priority) = priority {
                    flags |= flag::PRIORITY;
                    priority.write(&mut body);
                }
                body.extend_from_slice(block);
                padded(&mut payload, *padding, &body);
                (frame_type::HEADERS, flags, *stream)
            }
            Frame::Priority { stream, priority } => {
                priority.write(&mut payload);
                (frame_type::PRIORITY, 0, *stream)
            }
            Frame::RstStream { stream, code } => {
                payload.extend_from_slice(&code.to_be_bytes());
                (frame_type::RST_STREAM, 0, *stream)
            }
            Frame::Settings { ack, params } => {
                payload.extend_from_slice(params);
                (frame_type::SETTINGS, if *ack { flag::ACK } else { 0 }, 0)
            }
            Frame::PushPromise { stream } => (frame_type::PUSH_PROMISE, 0, *stream),
            Frame::Ping { ack, payload: data } => {
                payload.extend_from_slice(data);
                (frame_type::PING, if *ack { flag::ACK } else { 0 }, 0)
            }
            Frame::GoAway {
                last_stream,
                code,
                debug,
            } => {
                payload.extend_from_slice(&last_stream.to_be_bytes());
                payload.extend_from_slice(&code.to_be_bytes());
                payload.extend_from_slice(debug);
                (frame_type::GOAWAY, 0, 0)
            }
            Frame::WindowUpdate { stream, increment } => {
                payload.extend_from_slice(&increment.to_be_bytes());
                (frame_type::WINDOW_UPDATE, 0, *stream)
            }
            Frame::Continuation {
                stream,
                end_headers,
                block,
            } => {
                payload.extend_from_slice(block);
                let flags = if *end_headers { flag::END_HEADERS } else { 0 };
                (frame_type::CONTINUATION, flags, *stream)
            }
            Frame::Unknown { .. } => return,
        };
        FrameHeader {
            length: payload.len(),
            kind,
            flags,
            stream,
        }
        .write(out);
        out.extend_from_slice(&payload);
    }
}

fn pad_flag(padding: Option<u8>) -> u8 {
    if padding.is_some() { flag::PADDED } else { 0 }
}

fn padded(out: &mut Vec<u8>, padding: Option<u8>, body: &[u8]) {
    if let Some(pad) = padding {
        out.push(pad);
        out.extend_from_slice(body);
        out.resize(out.len() + usize::from(pad), 0);
    } else {
        out.extend_from_slice(body);
    }
}

/// Reassembles frames from bytes as they arrive, one frame at a time.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    max_frame_size: usize,
}

impl FrameReader {
    /// A reader refusing payloads above `max_frame_size` (what we advertised as
    /// SETTINGS_MAX_FRAME_SIZE).
    pub fn new(max_frame_size: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            max_frame_size,
        }
    }

    /// Take bytes from `input` up to the end of the current frame; returns how
    /// many were taken. Fails as soon as a header announces an oversized frame.
    /// Call [`FrameReader::frame`] after each call, and [`FrameReader::clear`]
    /// once a complete frame is handled.
    pub fn fill(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let mut taken = 0;
        if self.buf.len() < FRAME_HEADER_LEN {
            let want = (FRAME_HEADER_LEN - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..want]);
            taken = want;
        }
        let Some(header) = FrameHeader::parse(&self.buf) else {
            return Ok(taken);
        };
        if header.length > self.max_frame_size {
            return Err(frame_size(format!(
                "frame of {} bytes exceeds the maximum of {}",
                header.length, self.max_frame_size
            )));
        }
        let missing = FRAME_HEADER_LEN + header.length - self.buf.len();
        let want = missing.min(input.len() - taken);
        self.buf.extend_from_slice(&input[taken..taken + want]);
        Ok(taken + want)
    }

    /// The buffered frame, once its payload is complete.
    pub fn frame(&self) -> Option<(FrameHeader, &[u8])> {
        let header = FrameHeader::parse(&self.buf)?;
        let payload = self.buf.get(FRAME_HEADER_LEN..)?;
        (payload.len() == header.length).then_some((header, payload))
    }

    /// Forget the handled frame (keeps the buffer's capacity).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Bytes of an incomplete frame held now.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests;
