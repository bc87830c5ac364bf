//! Shared plumbing for the fuzz targets: turning one fuzzer input into a decoder setting, a
//! byte stream and a way to split that stream into reads, plus the three decoder drivers with
//! their invariant checks. The same invariants run as property tests in
//! `tests/codec_properties.rs`; here libFuzzer's coverage feedback explores them for hours.
//!
//! Input layout: byte 0 picks the decoder's limit, byte 1 the number `n` (1–8) of read sizes,
//! the next `n` bytes the sizes (cycled), and the rest is the stream. Deriving the splits from
//! the input lets the fuzzer minimise a crash to the exact reads that cause it.

use bytes::BytesMut;
use netloop::codec::{
    FrameDecoder, FrameError, HeaderDecoder, HeaderError, LineDecoder, LineError, UploadHeader,
    FRAME_HEADER_LEN, MAX_HEADER_BYTES,
};

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
        let mut out = Vec::new();
        let mut rest = self.stream;
        for &size in self.sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at(size.min(rest.len()));
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
