//! Shared plumbing for the fuzz targets: turning one fuzzer input into a decoder setting, a
//! byte stream and a way to split that stream into reads, plus the decoder and parser drivers
//! with their invariant checks (lines, frames, upload header; chat commands, heartbeat
//! messages, framed JSON messages, the metrics HTTP request). The same invariants run as
//! property tests in `tests/codec/properties.rs` and `tests/codec/properties_more.rs`; here
//! libFuzzer's coverage feedback explores them for hours.
//!
//! Input layout: byte 0 picks the decoder's limit, byte 1 the number `n` (1–8) of read sizes,
//! the next `n` bytes the sizes (cycled), and the rest is the stream. Deriving the splits from
//! the input lets the fuzzer minimise a crash to the exact reads that cause it.

use bytes::BytesMut;
use netloop::servers::chat::validate_name;
use netloop::servers::chat_command::{self, Command, CommandError};
use netloop::protocol::heartbeat::message::{classify, Inbound};
use netloop::codec::{
    parse_message, FrameDecoder, FrameError, HeaderDecoder, HeaderError, LineDecoder, LineError,
    MessageError, UploadHeader, FRAME_HEADER_LEN, MAX_HEADER_BYTES,
};
use netloop::metrics::http::{parse_request, response, Reply, RequestScanner, MAX_REQUEST_BYTES};

/// One fuzzer input, decoded.
pub struct Case<'a> {
    /// Selects the decoder's limit.
    pub knob: u8,
    /// Read sizes, cycled; each at least 1.
    pub sizes: Vec<usize>,
    /// The byte stream.
    pub stream: &'a [u8],
}

impl<'a> Case<'a> {
    /// Splits `data` into knob, read sizes and stream.
    pub fn parse(data: &'a [u8]) -> Case<'a> {
        let knob = data.first().copied().unwrap_or(0);
        let n = 1 + usize::from(data.get(1).copied().unwrap_or(0) & 7);
        let rest = data.get(2..).unwrap_or_default();
        let (raw, stream) = rest.split_at(n.min(rest.len()));
        // Mostly tiny reads (boundaries inside headers and CRLFs), sometimes big ones.
        let sizes = raw
            .iter()
            .map(|&b| {
                if b >= 0xf0 {
                    usize::from(b) * 16
                } else {
                    1 + usize::from(b % 16)
                }
            })
            .collect::<Vec<_>>();
        Case {
            knob,
            sizes: if sizes.is_empty() { vec![1] } else { sizes },
            stream,
        }
    }

    /// The stream cut into reads.
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        self.chunks_of(self.stream, 1)
    }

    /// Another `stream` cut into reads of this case's sizes times `scale` (for streams built
    /// from the input, such as one padded to a limit, where 1-byte reads would be too slow).
    pub fn chunks_of<'b>(&self, stream: &'b [u8], scale: usize) -> Vec<&'b [u8]> {
        let mut out = Vec::new();
        let mut rest = stream;
        for &size in self.sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at((size * scale).clamp(1, rest.len()));
            out.push(a);
            rest = b;
        }
        out
    }
}

/// Line results.
pub type LineItem = Result<String, LineError>;

/// Drives a [`LineDecoder`] like a connection: append, decode until need-more, `decode_eof` at
/// the end, stop at `TooLong`. Panics if an invariant breaks.
pub fn run_lines(max: usize, chunks: &[&[u8]]) -> Vec<LineItem> {
    let mut dec = LineDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        assert!(buf.len() <= max + 1, "partial line over the limit");
        buf.extend_from_slice(chunk);
        loop {
            let (len, cap) = (buf.len(), buf.capacity());
            let got = dec.decode(&mut buf);
            assert!(buf.capacity() <= cap, "decode reserved capacity");
            match got {
                Ok(Some(line)) => {
                    let used = len - buf.len();
                    assert!(used == line.len() + 1 || used == line.len() + 2);
                    out.push(Ok(line));
                }
                Ok(None) => {
                    assert_eq!(buf.len(), len);
                    assert!(!buf.contains(&b'\n'));
                    assert!(buf.strip_suffix(b"\r").unwrap_or(&buf).len() <= max);
                    break;
                }
                Err(e @ LineError::TooLong { .. }) => {
                    assert_eq!(buf.len(), len);
                    out.push(Err(e));
                    return out;
                }
                Err(e) => {
                    assert!(buf.len() < len);
                    out.push(Err(e));
                }
            }
        }
    }
    loop {
        match dec.decode_eof(&mut buf) {
            Ok(Some(line)) => out.push(Ok(line)),
            Ok(None) => {
                assert!(buf.is_empty());
                break;
            }
            Err(e @ LineError::TooLong { .. }) => {
                out.push(Err(e));
                break;
            }
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// Naive whole-stream reference for lines.
pub fn model_lines(max: usize, input: &[u8]) -> Vec<LineItem> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        if content.len() > max {
            out.push(Err(LineError::TooLong { max }));
            return out;
        }
        out.push(
            std::str::from_utf8(content)
                .map(str::to_owned)
                .map_err(|_| LineError::InvalidUtf8),
        );
        rest = next;
    }
    out
}

/// Frame results and the bytes left buffered.
pub type FrameRun = (Vec<Result<Vec<u8>, FrameError>>, Vec<u8>);

/// Drives a [`FrameDecoder`]; stops at the first error. Panics if an invariant breaks.
pub fn run_frames(max: usize, chunks: &[&[u8]]) -> FrameRun {
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        assert!(
            buf.len() < FRAME_HEADER_LEN + max,
            "partial frame over the limit"
        );
        buf.extend_from_slice(chunk);
        loop {
            let (len, cap) = (buf.len(), buf.capacity());
            let got = dec.decode(&mut buf);
            assert!(buf.capacity() <= cap, "decode reserved capacity");
            match got {
                Ok(Some(body)) => {
                    assert_eq!(len - buf.len(), FRAME_HEADER_LEN + body.len());
                    assert!(body.len() <= max);
                    out.push(Ok(body.to_vec()));
                }
                Ok(None) => {
                    assert_eq!(buf.len(), len);
                    break;
                }
                Err(e) => {
                    assert_eq!(buf.len(), len);
                    out.push(Err(e));
                    return (out, buf.to_vec());
                }
            }
        }
    }
    (out, buf.to_vec())
}

/// Naive whole-stream reference for frames.
pub fn model_frames(max: usize, input: &[u8]) -> FrameRun {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(h) = rest.first_chunk::<4>() {
        let len = u32::from_be_bytes(*h) as usize;
        if len > max {
            out.push(Err(FrameError::TooLong { len, max }));
            break;
        }
        if rest.len() < 4 + len {
            break;
        }
        out.push(Ok(rest[4..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    (out, rest.to_vec())
}

/// A header result and how many bytes it consumed.
pub type HeaderRun = Option<(Result<UploadHeader, HeaderError>, usize)>;

/// Drives a [`HeaderDecoder`] until it returns a result. Panics if an invariant breaks.
pub fn run_header(max_file: u64, chunks: &[&[u8]]) -> HeaderRun {
    let mut dec = HeaderDecoder::new(max_file);
    let mut buf = BytesMut::new();
    for chunk in chunks {
        assert!(
            buf.len() < MAX_HEADER_BYTES,
            "partial header over the limit"
        );
        buf.extend_from_slice(chunk);
        let (len, cap) = (buf.len(), buf.capacity());
        let got = dec.decode(&mut buf);
        assert!(buf.capacity() <= cap, "decode reserved capacity");
        let used = len - buf.len();
        match got {
            Ok(None) => assert_eq!(used, 0),
            Err(e @ HeaderError::TooLarge { .. }) => {
                assert_eq!(used, 0);
                assert!(len >= MAX_HEADER_BYTES);
                return Some((Err(e), 0));
            }
            Ok(Some(h)) => {
                assert!(used <= MAX_HEADER_BYTES);
                assert!(h.filesize <= max_file);
                assert!(netloop::codec::validate_filename(&h.filename).is_ok());
                return Some((Ok(h), used));
            }
            Err(e) => {
                assert!(used <= MAX_HEADER_BYTES);
                return Some((Err(e), used));
            }
        }
    }
    None
}

/// End of the header block (past its blank line) by a naive search, within the limit.
pub fn model_block_end(input: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in input.iter().enumerate().take(MAX_HEADER_BYTES) {
        if b == b'\n' {
            let line = &input[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Line-framed application parsers: chat commands and heartbeat messages
// ---------------------------------------------------------------------------------------------

/// A parsed chat line, owned (the command's `Debug` form), or the line decoder's error.
pub type ChatItem = Result<Result<String, CommandError>, LineError>;

/// Parses one chat line and checks the parser's invariants; returns the command's `Debug`
/// form. Panics if an invariant breaks.
pub fn check_chat_line(line: &str) -> Result<String, CommandError> {
    let text = line.trim();
    let got = chat_command::parse(line);
    match &got {
        Ok(Command::Empty) => assert!(text.is_empty()),
        Ok(Command::Say(t)) => {
            assert_eq!(*t, text);
            assert!(!t.is_empty() && !t.starts_with('/'));
        }
        Ok(Command::Nick(name) | Command::Join(name)) => {
            assert!(validate_name(name).is_ok(), "accepted an invalid name");
            assert!(text.ends_with(name));
        }
        Ok(Command::Whisper { to, text: msg }) => {
            assert!(!to.is_empty() && !to.contains(char::is_whitespace));
            assert!(!msg.is_empty() && msg.trim() == *msg);
        }
        Ok(_) => assert!(text.starts_with('/')),
        Err(CommandError::Unknown(cmd)) => {
            assert!(cmd.starts_with('/') && !cmd.contains(char::is_whitespace));
            assert!(!matches!(
                cmd.as_str(),
                "/help"
                    | "/nick"
                    | "/list"
                    | "/rooms"
                    | "/join"
                    | "/leave"
                    | "/whisper"
                    | "/w"
                    | "/quit"
            ));
        }
        Err(_) => assert!(text.starts_with('/')),
    }
    if !text.is_empty() {
        assert!(!text.starts_with('/') || got != Ok(Command::Empty));
    }
    // Whatever parsed renders to a line that parses to the same command.
    if let Ok(cmd) = &got {
        let again = cmd.to_string();
        assert_eq!(
            chat_command::parse(&again).as_ref(),
            Ok(cmd),
            "render/parse differs"
        );
    }
    got.map(|c| format!("{c:?}"))
}

/// Drives the chat's framing and parser like the server: lines from the stream in `chunks`
/// ([`run_lines`], with its invariants), each line parsed ([`check_chat_line`]).
pub fn run_chat(max: usize, chunks: &[&[u8]]) -> Vec<ChatItem> {
    run_lines(max, chunks)
        .into_iter()
        .map(|item| item.map(|line| check_chat_line(&line)))
        .collect()
}

/// A classified heartbeat line (only what survives a JSON round trip exactly: the variant,
/// a pong's `u64` timestamp, the sorted keys of an echoed object), or the decoder's error.
pub type HeartbeatItem = Result<Result<String, MessageError>, LineError>;

/// The round-trip-stable part of a classification.
fn inbound_shape(m: &Inbound) -> String {
    match m {
        Inbound::Pong { timestamp } => format!("pong {timestamp:?}"),
        Inbound::Ping { timestamp } => format!("ping {}", timestamp.is_some()),
        Inbound::Other(map) => format!("other {:?}", map.keys().collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

/// Classifies one heartbeat line and checks the invariants. Panics if one breaks.
pub fn check_heartbeat_line(line: &str) -> Result<String, MessageError> {
    let got = classify(line);
    match &got {
        Ok(Inbound::Blank) => assert!(line.trim().is_empty()),
        Ok(m) => {
            let (kind, map) = parse_message(line.as_bytes()).expect("classified, so parses");
            assert_eq!(
                map.get("type"),
                Some(&serde_json::Value::from(kind.as_str()))
            );
            match m {
                Inbound::Heartbeat => assert_eq!(kind, "heartbeat"),
                Inbound::Pong { .. } => assert_eq!(kind, "pong"),
                Inbound::Ping { .. } => assert_eq!(kind, "ping"),
                Inbound::Status => assert_eq!(kind, "status"),
                Inbound::Other(o) => {
                    assert!(!["heartbeat", "pong", "ping", "status"].contains(&kind.as_str()));
                    assert_eq!(o, &map);
                }
                Inbound::Blank => unreachable!(),
            }
            // Re-serialised, the object classifies the same way.
            let text = serde_json::to_string(&map).expect("a Map serialises");
            let again = classify(&text).expect("re-serialised message parses");
            assert_eq!(inbound_shape(&again), inbound_shape(m), "JSON round trip");
        }
        Err(e) => {
            assert!(!line.trim().is_empty());
            assert_ne!(*e, MessageError::NotUtf8, "a &str is UTF-8");
            assert_eq!(parse_message(line.as_bytes()).err().as_ref(), Some(e));
            assert!(e.to_string().len() <= MAX_ERROR_TEXT, "error text too long");
        }
    }
    got.map(|m| inbound_shape(&m))
}

/// Longest error text a peer may get back: the parser's description, never its input.
pub const MAX_ERROR_TEXT: usize = 200;

/// Drives the heartbeat server's framing and classifier like the server.
pub fn run_heartbeat(max: usize, chunks: &[&[u8]]) -> Vec<HeartbeatItem> {
    run_lines(max, chunks)
        .into_iter()
        .map(|item| item.map(|line| check_heartbeat_line(&line)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Framed JSON messages (program 06)
// ---------------------------------------------------------------------------------------------

/// A parsed frame body (its type and sorted keys), or the message error; then the frame
/// decoder's error if it stopped at one.
pub type FramedItem = Result<Result<(String, Vec<String>), MessageError>, FrameError>;

/// Parses one frame body with [`parse_message`] and checks the invariants.
pub fn check_message(body: &[u8]) -> Result<(String, Vec<String>), MessageError> {
    let got = parse_message(body);
    match &got {
        Ok((kind, map)) => {
            assert_eq!(
                map.get("type"),
                Some(&serde_json::Value::from(kind.as_str()))
            );
            let text = serde_json::to_vec(map).expect("a Map serialises");
            let (kind2, map2) = parse_message(&text).expect("re-serialised message parses");
            assert_eq!(&kind2, kind);
            assert!(
                map2.keys().eq(map.keys()),
                "JSON round trip changed the keys"
            );
        }
        Err(e) => {
            assert_eq!(
                *e == MessageError::NotUtf8,
                std::str::from_utf8(body).is_err()
            );
            assert!(e.to_string().len() <= MAX_ERROR_TEXT, "error text too long");
        }
    }
    got.map(|(kind, map)| (kind, map.keys().cloned().collect()))
}

/// Drives the framed server's decoding like the server: frames from the stream in `chunks`
/// ([`run_frames`], with its invariants), each body parsed ([`check_message`]).
pub fn run_framed(max: usize, chunks: &[&[u8]]) -> Vec<FramedItem> {
    run_frames(max, chunks)
        .0
        .into_iter()
        .map(|item| item.map(|body| check_message(&body)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The metrics endpoint's request parser
// ---------------------------------------------------------------------------------------------

/// The naive reference for [`parse_request`]: look for the end of the head in the first
/// [`MAX_REQUEST_BYTES`], then judge the request line by its three space-separated words.
pub fn model_request(input: &[u8]) -> Option<Reply> {
    let window = &input[..input.len().min(MAX_REQUEST_BYTES)];
    let has_end = |pat: &[u8]| (0..window.len()).any(|i| window[i..].starts_with(pat));
    if !has_end(b"\r\n\r\n") && !has_end(b"\n\n") {
        return (input.len() >= MAX_REQUEST_BYTES).then_some(Reply::TooLarge);
    }
    let first = window.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let Ok(first) = std::str::from_utf8(first) else {
        return Some(Reply::BadRequest);
    };
    let words: Vec<&str> = first.split(' ').collect();
    let [method, target, version] = words[..] else {
        return Some(Reply::BadRequest);
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Some(Reply::BadRequest);
    }
    if method != "GET" && method != "HEAD" {
        return Some(Reply::MethodNotAllowed);
    }
    if target != "/metrics" && !target.starts_with("/metrics?") {
        return Some(Reply::NotFound);
    }
    Some(Reply::Metrics {
        head_only: method == "HEAD",
    })
}

/// Drives [`parse_request`] like the endpoint: the reads accumulate in one buffer and the
/// parser judges the whole buffer after each read, until it answers; the endpoint's
/// incremental [`RequestScanner`] must agree with it after every read. Checks on every call:
/// `None` only while no head end is in the buffer and it is under the limit; the answer equals
/// the model's on the same bytes and on the whole stream (reading on never changes it); the
/// response is well formed. Returns the answer and how many bytes had arrived.
pub fn run_request(chunks: &[&[u8]]) -> Option<(Reply, usize)> {
    let whole: Vec<u8> = chunks.concat();
    let mut buf = Vec::new();
    let mut scanner = RequestScanner::default();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let got = parse_request(&buf);
        assert_eq!(got, model_request(&buf), "parser differs from the model");
        assert_eq!(scanner.feed(&buf), got, "the incremental scanner differs");
        match got {
            None => assert!(buf.len() < MAX_REQUEST_BYTES),
            Some(reply) => {
                assert_eq!(parse_request(&whole), Some(reply), "more bytes changed it");
                check_response(reply);
                return Some((reply, buf.len()));
            }
        }
    }
    None
}

/// The response to `reply` is one HTTP/1.1 head with a correct `Content-Length`, and `close`.
pub fn check_response(reply: Reply) {
    let body = "m 1\n";
    let out = response(reply, || body.to_string());
    let text = std::str::from_utf8(&out).expect("responses are ASCII");
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 "));
    assert!(head.contains("\r\nConnection: close"));
    let len: usize = head
        .split("\r\n")
        .find_map(|h| h.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    match reply {
        Reply::Metrics { head_only: true } => assert!(rest.is_empty() && len == body.len()),
        _ => assert_eq!(rest.len(), len),
    }
}
