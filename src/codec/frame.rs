//! Length-prefixed frames and their JSON messages (program 06, the tutorial's JSON framing server
//! and client, `06-stream-framing.js`).
//!
//! **Format.** A frame is a 4-byte big-endian `u32` body length N, then N body bytes. N = 0 is a
//! valid, empty frame. In program 06 the body is `JSON.stringify(value)` in UTF-8, and the value
//! is an object with a string field `type` ([`parse_message`]).
//!
//! **Limits.** A body is at most `max_len` bytes, by default [`DEFAULT_MAX_FRAME`], and never more
//! than `u32::MAX` (the largest length the header can carry). The declared length is checked as
//! soon as the 4 header bytes are in the buffer, before any body byte is waited for, so a peer
//! cannot wedge the connection or grow memory with a huge prefix (the tutorial accepted any length
//! up to 4 GiB; see docs/TUTORIAL-DEFECTS.md). The decoder never
//! reserves capacity from the declared length: the buffer only grows by what actually arrived.
//!
//! **Caller's contract.** Append each read to the connection's buffer and call
//! [`FrameDecoder::decode`] until it returns `Ok(None)` or an error.
//!
//! * `Ok(Some(body))`: one frame (header and body) was consumed; `body` excludes the header.
//!   It shares the read buffer's allocation (no copy); copy it if it is kept for long.
//! * `Ok(None)`: the frame is incomplete; everything stays in the buffer.
//! * `Err(FrameError::TooLong { .. })`: the declared length exceeds the limit. Nothing is
//!   consumed; the caller should send an error and close the connection.
//!
//! The decoder keeps no state between calls: it re-reads the header each time, so there is no
//! "0 means no header yet" sentinel and bodies shorter than 4 bytes are returned as soon as they
//! are complete (the tutorial's loop needed 4 buffered bytes even for a body, so `{}` waited for the
//! next frame). Bytes are never copied while a frame accumulates (the tutorial concatenated the
//! whole buffer on every read, copying a large frame once per chunk).

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

/// Size of the length header: a big-endian `u32`, as written by `Buffer.writeUInt32BE` in 06.
pub const FRAME_HEADER_LEN: usize = 4;

/// Default maximum body length: 1 MiB, far above program 06's JSON messages, which are a few
/// hundred bytes (the tutorial had no maximum at all).
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;

/// The largest body length a `u32` header can describe; limits are clamped to it (tokio #5080).
const MAX_REPRESENTABLE: usize = match usize::BITS {
    // On 16-bit targets every usize fits in a u32.
    0..=32 => usize::MAX,
    _ => u32::MAX as usize,
};

/// Why a frame could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The body length (declared by the peer, or of the body to encode) exceeds the limit.
    TooLong {
        /// The body length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Incremental decoder for `u32`-length-prefixed frames. One per connection.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    /// Maximum body length, already clamped to what a `u32` header can carry.
    max_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that accepts bodies of at most `max_len` bytes (clamped to `u32::MAX`).
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.min(MAX_REPRESENTABLE),
        }
    }

    /// The maximum body length this decoder accepts, after clamping.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Decodes and consumes the next complete frame from the front of `buf`, returning its body.
    ///
    /// See the [module documentation](self) for the meaning of each result.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let declared = u32::from_be_bytes(*header);
        let len = usize::try_from(declared).unwrap_or(usize::MAX);
        if len > self.max_len {
            return Err(FrameError::TooLong {
                len,
                max: self.max_len,
            });
        }
        match FRAME_HEADER_LEN.checked_add(len) {
            Some(total) if buf.len() >= total => {
                buf.advance(FRAME_HEADER_LEN);
                Ok(Some(buf.split_to(len).freeze()))
            }
            _ => Ok(None),
        }
    }
}

/// Encodes `body` as one frame (header and body in a single allocation).
///
/// Fails with [`FrameError::TooLong`] if `body` is longer than `max_len` (clamped to
/// `u32::MAX`), so a sender cannot emit a frame its peer must reject.
pub fn encode_frame(body: &[u8], max_len: usize) -> Result<Bytes, FrameError> {
    let max = max_len.min(MAX_REPRESENTABLE);
    let too_long = FrameError::TooLong {
        len: body.len(),
        max,
    };
    if body.len() > max {
        return Err(too_long);
    }
    let header = u32::try_from(body.len()).map_err(|_| too_long)?;
    let mut out = BytesMut::with_capacity(FRAME_HEADER_LEN + body.len());
    out.put_u32(header);
    out.extend_from_slice(body);
    Ok(out.freeze())
}

/// Why a frame body is not a valid program-06 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The body is not valid UTF-8.
    NotUtf8,
    /// The body is not valid JSON; the parser's description (which quotes no input).
    NotJson(String),
    /// The body is JSON but not an object (`null`, an array, a number, ...). The tutorial's server
    /// crashed reading `.type` of such a body.
    NotObject,
    /// The object has no `type` field.
    MissingType,
    /// The object's `type` field is not a string.
    TypeNotString,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::NotUtf8 => f.write_str("message is not valid UTF-8"),
            MessageError::NotJson(reason) => write!(f, "message is not valid JSON: {reason}"),
            MessageError::NotObject => f.write_str("message must be a JSON object"),
            MessageError::MissingType => f.write_str("message has no \"type\" field"),
            MessageError::TypeNotString => f.write_str("message field \"type\" must be a string"),
        }
    }
}

impl std::error::Error for MessageError {}

/// Parses a frame body as a program-06 message: UTF-8 JSON, an object, with a string `type`.
///
/// Returns the type and the whole object (`type` included, since the `pong` reply echoes the
/// original message). serde_json's recursion limit (128 levels) bounds nesting, so a deeply
/// nested body is an error, not a stack overflow.
pub fn parse_message(body: &[u8]) -> Result<(String, Map<String, Value>), MessageError> {
    let text = std::str::from_utf8(body).map_err(|_| MessageError::NotUtf8)?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(MessageError::NotObject);
    };
    let kind = match map.get("type") {
        None => return Err(MessageError::MissingType),
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(MessageError::TypeNotString),
    };
    Ok((kind, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = Result<Bytes, FrameError>;

    /// Feeds `chunks` one by one, decoding after each; stops at the first error.
    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<Item>, BytesMut) {
        let mut dec = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(body)) => out.push(Ok(body)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return (out, buf);
                    }
                }
            }
        }
        (out, buf)
    }

    use crate::codec::test_rng::Rng;

    fn assert_split_invariant(max: usize, input: &[u8]) -> Vec<Item> {
        let (whole, _) = run(max, &[input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(max, &bytes).0, whole, "byte by byte");
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(run(max, &[a, b]).0, whole, "split at {i}");
        }
        let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
        for _ in 0..50 {
            let mut chunks = Vec::new();
            let mut rest = input;
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(9));
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            assert_eq!(run(max, &chunks).0, whole, "random split");
        }
        whole
    }

    fn frames(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            out.extend_from_slice(&encode_frame(body, DEFAULT_MAX_FRAME).expect("small body"));
        }
        out
    }

    fn ok(body: &[u8]) -> Item {
        Ok(Bytes::copy_from_slice(body))
    }

    #[test]
    fn wire_format_is_big_endian_u32() {
        let frame = encode_frame(b"null", 16).expect("fits");
        assert_eq!(&frame[..], b"\x00\x00\x00\x04null");
    }

    #[test]
    fn coalesced_frames_including_empty_and_short_bodies() {
        let bodies: [&[u8]; 6] = [b"", b"a", b"{}", b"abc", b"", br#"{"type":"ping"}"#];
        let input = frames(&bodies);
        let out = assert_split_invariant(DEFAULT_MAX_FRAME, &input);
        assert_eq!(out, bodies.iter().map(|b| ok(b)).collect::<Vec<_>>());
    }

    #[test]
    fn short_body_after_header_is_not_stalled() {
        // Header of a 2-byte body, then `{}` in a later read: the tutorial stalled here until the
        // next frame arrived, because it waited for 4 buffered bytes.
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x02"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"{}");
        assert_eq!(dec.decode(&mut buf), ok(b"{}").map(Some));
        assert!(buf.is_empty());
    }

    #[test]
    fn zero_length_frame_alone() {
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0u8; 4][..]);
        assert_eq!(dec.decode(&mut buf), Ok(Some(Bytes::new())));
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn one_large_frame_over_many_reads() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let input = frames(&[&body, b"next"]);
        let chunks: Vec<&[u8]> = input.chunks(1000).collect();
        let (out, rest) = run(DEFAULT_MAX_FRAME, &chunks);
        assert_eq!(out, vec![ok(&body), ok(b"next")]);
        assert!(rest.is_empty());
    }

    #[test]
    fn limit_is_inclusive() {
        let (out, _) = run(10, &[&frames(&[&[7u8; 10]])]);
        assert_eq!(out, vec![ok(&[7u8; 10])]);
        let (out, _) = run(10, &[&frames(&[&[7u8; 11]])]);
        assert_eq!(out, vec![Err(FrameError::TooLong { len: 11, max: 10 })]);
    }

    #[test]
    fn oversized_prefix_rejected_at_once_with_nothing_reserved() {
        // A 2 GiB prefix is rejected as soon as the 4 header bytes are in, before any body (the
        // tutorial accepted it and the connection was wedged).
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        for byte in [0x80u8, 0, 0] {
            buf.extend_from_slice(&[byte]);
            assert_eq!(dec.decode(&mut buf), Ok(None));
        }
        buf.extend_from_slice(&[0]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::TooLong {
                len: 0x8000_0000,
                max: DEFAULT_MAX_FRAME
            })
        );
        assert!(buf.capacity() < 1024, "capacity {}", buf.capacity());
        assert_eq!(buf.len(), 4, "nothing consumed");

        // The seed's wedge: prefix 0x7FFFFFF0 followed by data, then a valid frame.
        let mut input = b"\x7f\xff\xff\xf0".to_vec();
        input.extend_from_slice(&[b'x'; 4096]);
        input.extend_from_slice(&frames(&[b"{\"type\":\"ping\"}"]));
        let (out, rest) = run(DEFAULT_MAX_FRAME, &[&input]);
        assert_eq!(
            out,
            vec![Err(FrameError::TooLong {
                len: 0x7FFF_FFF0,
                max: DEFAULT_MAX_FRAME
            })]
        );
        assert!(rest.capacity() < 2 * input.len());
    }

    #[test]
    fn pending_frame_reserves_nothing() {
        // A legal 1 MiB declaration with 10 body bytes: the buffer holds 14 bytes' worth.
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"\x00\x10\x00\x00abcdefghij");
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.capacity() < 1024, "capacity {}", buf.capacity());
    }

    #[test]
    fn max_len_clamped_to_u32() {
        let dec = FrameDecoder::new(usize::MAX);
        assert!(dec.max_len() <= u32::MAX as usize);
        let mut dec = FrameDecoder::new(usize::MAX);
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(None),
            "max u32 is legal, just incomplete"
        );
    }

    #[test]
    fn encode_decode_identity() {
        let mut rng = Rng(42);
        let mut bodies = Vec::new();
        for _ in 0..200 {
            let len = rng.below(300);
            bodies.push((0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>());
        }
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let input = frames(&refs);
        let chunks: Vec<&[u8]> = input.chunks(37).collect();
        let (out, rest) = run(DEFAULT_MAX_FRAME, &chunks);
        assert_eq!(out, refs.iter().map(|b| ok(b)).collect::<Vec<_>>());
        assert!(rest.is_empty());
    }

    #[test]
    fn encode_rejects_oversized_body() {
        assert_eq!(
            encode_frame(&[0; 11], 10),
            Err(FrameError::TooLong { len: 11, max: 10 })
        );
        let frame = encode_frame(&[1; 10], 10).expect("at the limit");
        assert_eq!(frame.len(), 14);
    }

    #[test]
    fn message_non_objects_are_errors() {
        // The tutorial's server crashed (uncaught TypeError) on a `null` body.
        for body in [&b"null"[..], b"[]", b"[1,2]", b"42", b"\"ping\"", b"true"] {
            assert_eq!(
                parse_message(body),
                Err(MessageError::NotObject),
                "{body:?}"
            );
        }
    }

    #[test]
    fn message_type_checks() {
        assert_eq!(parse_message(b"{}"), Err(MessageError::MissingType));
        assert_eq!(
            parse_message(br#"{"data":"x"}"#),
            Err(MessageError::MissingType)
        );
        for body in [
            &br#"{"type":1}"#[..],
            br#"{"type":null}"#,
            br#"{"type":["ping"]}"#,
            br#"{"type":{}}"#,
        ] {
            assert_eq!(
                parse_message(body),
                Err(MessageError::TypeNotString),
                "{body:?}"
            );
        }
    }

    #[test]
    fn message_bad_encoding_and_syntax() {
        assert_eq!(parse_message(b"\xff{}"), Err(MessageError::NotUtf8));
        assert!(matches!(parse_message(b""), Err(MessageError::NotJson(_))));
        assert!(matches!(
            parse_message(b"{\"type\":"),
            Err(MessageError::NotJson(_))
        ));
        assert!(matches!(
            parse_message(b"{} {}"),
            Err(MessageError::NotJson(_))
        ));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_message(deep.as_bytes()),
            Err(MessageError::NotJson(_))
        ));
    }

    #[test]
    fn message_ok_keeps_whole_object() {
        let (kind, map) =
            parse_message(r#"{"type":"ping","message":"心跳","timestamp":1}"#.as_bytes())
                .expect("valid");
        assert_eq!(kind, "ping");
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("message"), Some(&Value::from("心跳")));
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            FrameError::TooLong { len: 5, max: 4 }.to_string(),
            "frame of 5 bytes exceeds the limit of 4 bytes"
        );
        assert_eq!(
            MessageError::NotObject.to_string(),
            "message must be a JSON object"
        );
        assert_eq!(
            MessageError::MissingType.to_string(),
            "message has no \"type\" field"
        );
    }
}
