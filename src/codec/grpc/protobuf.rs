//! The two messages of `grpc/health/v1/health.proto`, by hand: encoding
//! `HealthCheckRequest { string service = 1; }` and decoding
//! `HealthCheckResponse { ServingStatus status = 1; }` per the protobuf encoding
//! spec (varints, the four wire types, groups). Bounded by the message it reads;
//! no allocation but the group stack (at most 32 deep).

/// The gRPC message: uncompressed flag, 4-byte length, then the protobuf
/// `HealthCheckRequest { string service = 1; }` (field omitted when empty, as
/// proto3 does).
pub(super) fn request_message(service: &str) -> Vec<u8> {
    let mut protobuf = Vec::new();
    if !service.is_empty() {
        protobuf.push(0x0a); // field 1, wire type 2 (length-delimited)
        let mut len = service.len() as u64;
        while len >= 0x80 {
            protobuf.push(0x80 | (len & 0x7f) as u8);
            len >>= 7;
        }
        protobuf.push(len as u8);
        protobuf.extend_from_slice(service.as_bytes());
    }
    let mut message = vec![0];
    message.extend_from_slice(&(protobuf.len() as u32).to_be_bytes());
    message.extend_from_slice(&protobuf);
    message
}

/// A protobuf varint (at most 10 bytes, at most 64 bits).
fn varint(bytes: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *bytes.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return Err("varint longer than 64 bits");
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes")
}

/// `HealthCheckResponse.status` (field 1, an enum: int32 varint), skipping
/// unknown fields of every wire type, groups included (nesting bounded).
/// Absent means 0 (proto3 default); repeated means the last wins, and values are
/// truncated to 32 bits, as protobuf parsers do.
pub(super) fn health_status(message: &[u8]) -> Result<i32, &'static str> {
    const MAX_GROUP_DEPTH: usize = 32;
    let mut groups: Vec<u64> = Vec::new();
    let mut status = 0u64;
    let mut pos = 0;
    while pos < message.len() {
        let key = varint(message, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 || field > 0x1fff_ffff {
            return Err("invalid field number");
        }
        if field == 1 && groups.is_empty() && wire != 0 {
            return Err("status is not a varint");
        }
        let skip = match wire {
            0 => {
                let value = varint(message, &mut pos)?;
                if field == 1 && groups.is_empty() {
                    status = value;
                }
                0
            }
            1 => 8,
            2 => usize::try_from(varint(message, &mut pos)?).map_err(|_| "length too large")?,
            3 if groups.len() < MAX_GROUP_DEPTH => {
                groups.push(field);
                0
            }
            3 => return Err("groups nested too deeply"),
            4 if groups.last() == Some(&field) => {
                groups.pop();
                0
            }
            4 => return Err("unmatched end of group"),
            5 => 4,
            _ => return Err("invalid wire type"),
        };
        pos = pos
            .checked_add(skip)
            .filter(|&end| end <= message.len())
            .ok_or("field runs past the end")?;
    }
    if !groups.is_empty() {
        return Err("unterminated group");
    }
    Ok(status as u32 as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_status_skips_unknown_fields_of_every_wire_type() {
        let message = [
            0x10, 0x96, 0x01, // field 2 varint 150
            0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3 fixed64
            0x22, 0x03, b'a', b'b', b'c', // field 4 bytes
            0x2d, 1, 2, 3, 4, // field 5 fixed32
            0x33, 0x08, 0x02, 0x3b, 0x3c, 0x34, // group 6 { field 1 = 2; group 7 {} }
            0x08, 0x01, // status SERVING
            0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00, // field 2^29-1 varint 0
        ];
        assert_eq!(health_status(&message), Ok(1));
        assert_eq!(health_status(&[]), Ok(0));
        assert_eq!(
            health_status(&[0x08, 0x02, 0x08, 0x01]),
            Ok(1),
            "the last value wins"
        );
        assert_eq!(
            health_status(&[0x08, 0x81, 0x80, 0x80, 0x80, 0x10]),
            Ok(1),
            "int32 truncation"
        );
        for (bad, why) in [
            (&[0x08][..], "truncated varint"),
            (&[0x08, 0x80][..], "truncated varint"),
            (&[0x0a, 0x01, 0x01][..], "status is not a varint"),
            (&[0x00, 0x01][..], "invalid field number"),
            (&[0x16][..], "invalid wire type"),
            (&[0x22, 0x05, b'a'][..], "field runs past the end"),
            (&[0x19, 1, 2][..], "field runs past the end"),
            (&[0x34][..], "unmatched end of group"),
            (&[0x33, 0x08, 0x01][..], "unterminated group"),
            (&[0x33, 0x3c][..], "unmatched end of group"),
            (
                &[
                    0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                ][..],
                "varint longer than 64 bits",
            ),
            (
                &[
                    0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00,
                ][..],
                "varint longer than 64 bits",
            ),
        ] {
            assert_eq!(health_status(bad), Err(why), "{bad:02x?}");
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x33, 40).collect();
        assert_eq!(health_status(&deep), Err("groups nested too deeply"));
    }
}
