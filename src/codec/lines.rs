//! Newline-delimited UTF-8 text lines (programs 02, 03, 08, 09, 10 and the 07 client).
//!
//! **Format.** A line is any run of bytes ended by `\n`. One `\r` right before the `\n` is part
//! of the terminator (CRLF), so `a\r\n` and `a\n` both decode to `a`. A `\r` anywhere else is
//! content. Lines are returned without their terminator, as `String`.
//!
//! **Limits.** A line's content (terminator excluded) is at most `max_len` bytes, by default
//! [`DEFAULT_MAX_LINE`]. The decoder reports [`LineError::TooLong`] as soon as the buffer proves
//! that the current line is longer, whether or not its `\n` has arrived, so a peer cannot make
//! the buffer grow past `max_len + 2` bytes of one line.
//!
//! **Caller's contract.** Append each read to the connection's buffer and call
//! [`LineDecoder::decode`] until it returns `Ok(None)` or an error.
//!
//! * `Ok(Some(line))`: one line was consumed from the front of the buffer.
//! * `Ok(None)`: no complete line yet; the partial line stays in the buffer.
//! * `Err(LineError::InvalidUtf8)`: a complete line that is not UTF-8 was consumed. The caller
//!   may reply with an error and keep decoding the lines after it.
//! * `Err(LineError::TooLong { .. })`: the caller should send an error line and close the
//!   connection. Nothing is consumed, and the decoder's state afterwards is unspecified, except
//!   that [`LineDecoder::take_piece`] may then consume the line in pieces instead (clients).
//!
//! At end of stream, call [`LineDecoder::decode_eof`] until it returns `Ok(None)` to also get a
//! final line that has no terminator.
//!
//! UTF-8 is only decoded on complete lines, so a character split across reads survives (the
//! tutorial's echo server decoded each read on its own and turned such a character into U+FFFD).
//! The decoder remembers how far it has searched for `\n`, so a line that arrives one byte per
//! read costs O(n) in total, not O(n²).

use std::fmt;

use bytes::{Buf, BytesMut};

/// Default maximum line length in bytes, terminator excluded: 64 KiB, far above any chat line or
/// JSON control message, yet small enough that a peer that never sends `\n` cannot grow our
/// memory much (the tutorial had no line framing, hence no cap).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Why a line could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// The current line is longer than `max` bytes (terminator excluded). Fatal for the
    /// connection.
    TooLong {
        /// The decoder's limit.
        max: usize,
    },
    /// A complete line was not valid UTF-8. The line has been consumed; decoding can go on.
    InvalidUtf8,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong { max } => write!(f, "line longer than {max} bytes"),
            LineError::InvalidUtf8 => f.write_str("line is not valid UTF-8"),
        }
    }
}

impl std::error::Error for LineError {}

/// Incremental decoder for LF / CRLF terminated lines. One per connection.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    /// Maximum content length of one line, terminator excluded.
    max_len: usize,
    /// Number of bytes at the front of the buffer already searched for `\n` without success.
    scanned: usize,
}

impl Default for LineDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl LineDecoder {
    /// A decoder that accepts lines of at most `max_len` bytes, terminator excluded.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            scanned: 0,
        }
    }

    /// The maximum line length this decoder accepts.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Decodes and consumes the next complete line from the front of `buf`.
    ///
    /// See the [module documentation](self) for the meaning of each result.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LineError> {
        // A line of max_len content bytes has its '\n' at index max_len (LF) or max_len + 1
        // (CRLF), so nothing past max_len + 2 bytes needs to be searched.
        let window_end = buf.len().min(self.max_len.saturating_add(2));
        let start = self.scanned.min(window_end);
        let found = buf.get(start..window_end).and_then(find_newline);
        match found {
            Some(offset) => {
                let newline = start + offset;
                self.scanned = 0;
                let content_len = content_len(buf, newline);
                if content_len > self.max_len {
                    return Err(LineError::TooLong { max: self.max_len });
                }
                take_line(buf, content_len, newline + 1).map(Some)
            }
            None => {
                self.scanned = window_end;
                // A trailing '\r' may be the first half of a CRLF: do not count it yet.
                if content_len(buf, buf.len()) > self.max_len {
                    Err(LineError::TooLong { max: self.max_len })
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Like [`decode`](Self::decode), but for the end of the stream: once no complete line is
    /// left, the remaining bytes (if any) are returned as a final line, without a trailing `\r`.
    /// Returns `Ok(None)` when the buffer is empty.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LineError> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        // decode() returned Ok(None), so the tail is within max_len once a '\r' is dropped.
        self.scanned = 0;
        let len = buf.len();
        take_line(buf, content_len(buf, len), len).map(Some)
    }
}

impl LineDecoder {
    /// After [`decode`](Self::decode) reported [`LineError::TooLong`], for a caller that shows a
    /// long line in pieces instead of closing (the clients, which must not buffer a server's
    /// unbounded line): consumes the next piece of the over-long line, at most `max_len` bytes
    /// (cut before a UTF-8 character that would not fit whole), and returns it, invalid UTF-8
    /// replaced by U+FFFD. (A CRLF is never split: `TooLong` means the content before the
    /// terminator exceeds `max_len`, so the piece ends before the terminator.) The decoder's scan position is reset with the buffer it describes, so
    /// a `\n` already buffered after the piece is found by the next `decode`.
    pub fn take_piece(&mut self, buf: &mut BytesMut) -> String {
        self.scanned = 0;
        let limit = buf.len().min(self.max_len.max(1));
        let mut cut = match std::str::from_utf8(&buf[..limit]) {
            Ok(_) => limit,
            // An incomplete character at the end: stop before it.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => limit,
        };
        if cut == 0 {
            cut = limit.max(1).min(buf.len());
        }
        let piece = String::from_utf8_lossy(&buf[..cut]).into_owned();
        buf.advance(cut);
        piece
    }
}

/// Position of the first `\n` in `hay`.
///
/// Safe SWAR search, 8 bytes per step: for `x = word ^ 0x0a0a..`, the expression
/// `(x - 0x0101..) & !x & 0x8080..` is non-zero iff some byte of `x` is zero, and its lowest set
/// bit (little-endian load) marks the first such byte. About 4x faster than a byte loop on
/// chat-sized lines, without a `memchr` dependency.
pub(crate) fn find_newline(hay: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    const NL: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else {
            break; // unreachable: chunks_exact yields 8-byte slices
        };
        let x = u64::from_le_bytes(bytes) ^ NL;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let rest = words.remainder();
    rest.iter().position(|&b| b == b'\n').map(|i| base + i)
}

/// Length of the content of a line whose terminator starts at `end` (`\n` position or buffer
/// end): `end`, minus one if the byte before it is `\r`.
fn content_len(buf: &[u8], end: usize) -> usize {
    match end.checked_sub(1).and_then(|i| buf.get(i)) {
        Some(b'\r') => end - 1,
        _ => end,
    }
}

/// Consumes `consume` bytes from `buf` and returns the first `content_len` of them as a string.
/// The bytes are consumed even when they are not UTF-8.
fn take_line(buf: &mut BytesMut, content_len: usize, consume: usize) -> Result<String, LineError> {
    let line = match buf.get(..content_len).map(std::str::from_utf8) {
        Some(Ok(text)) => Ok(text.to_owned()),
        _ => Err(LineError::InvalidUtf8),
    };
    buf.advance(consume.min(buf.len()));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = Result<String, LineError>;

    /// Feeds `chunks` one by one, decoding after each, then drains with `decode_eof`.
    /// Stops at the first `TooLong`, like a real caller would.
    fn run(max: usize, chunks: &[&[u8]]) -> Vec<Item> {
        let mut dec = LineDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(line)) => out.push(Ok(line)),
                    Ok(None) => break,
                    Err(e @ LineError::TooLong { .. }) => {
                        out.push(Err(e));
                        return out;
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        loop {
            match dec.decode_eof(&mut buf) {
                Ok(Some(line)) => out.push(Ok(line)),
                Ok(None) => break,
                Err(e @ LineError::TooLong { .. }) => {
                    out.push(Err(e));
                    break;
                }
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }

    use crate::codec::test_rng::Rng;

    /// The whole input at once, byte by byte, every 2-way split and random splits all decode
    /// to the same result.
    fn assert_split_invariant(max: usize, input: &[u8]) -> Vec<Item> {
        let whole = run(max, &[input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(max, &bytes), whole, "byte by byte");
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(run(max, &[a, b]), whole, "split at {i}");
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..50 {
            let mut chunks = Vec::new();
            let mut rest = input;
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(7));
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            assert_eq!(run(max, &chunks), whole, "random split");
        }
        whole
    }

    fn ok(s: &str) -> Item {
        Ok(s.to_owned())
    }

    #[test]
    fn find_newline_matches_naive_search() {
        let mut rng = Rng(3);
        for _ in 0..2000 {
            let len = rng.below(40);
            let hay: Vec<u8> = (0..len)
                .map(|_| match rng.below(6) {
                    0 => b'\n',
                    1 => 0x0b,
                    2 => 0x8a,
                    3 => 0x09,
                    _ => rng.next() as u8,
                })
                .collect();
            let naive = hay.iter().position(|&b| b == b'\n');
            assert_eq!(find_newline(&hay), naive, "{hay:?}");
        }
    }

    #[test]
    fn coalesced_lines_in_one_buffer() {
        // Two commands in one segment are two lines (the tutorial's command and chat servers took
        // the whole read as one message).
        let out = run(DEFAULT_MAX_LINE, &[b"/nick eve\n/join ops\n/list\n"]);
        assert_eq!(out, vec![ok("/nick eve"), ok("/join ops"), ok("/list")]);
    }

    #[test]
    fn split_command_is_one_line() {
        // `/in` then `fo\n` is one command (the tutorial's command server answered both halves).
        assert_eq!(run(64, &[b"/in", b"fo\n"]), vec![ok("/info")]);
    }

    #[test]
    fn lf_and_crlf() {
        let out = run(64, &[b"a\r\nb\nc\r\r\n\r\n\n"]);
        assert_eq!(out, vec![ok("a"), ok("b"), ok("c\r"), ok(""), ok("")]);
    }

    #[test]
    fn bare_cr_inside_line_is_content() {
        assert_eq!(run(64, &[b"a\rb\n"]), vec![ok("a\rb")]);
    }

    #[test]
    fn mixed_input_is_split_invariant() {
        let input = "hello\r\nworld\n你好\nbad\u{1}\r\n\r\n"
            .bytes()
            .chain(*b"\xff\xfe\n")
            .chain(*b"last\r\ntail\r")
            .collect::<Vec<u8>>();
        let out = assert_split_invariant(64, &input);
        assert_eq!(
            out,
            vec![
                ok("hello"),
                ok("world"),
                ok("你好"),
                ok("bad\u{1}"),
                ok(""),
                Err(LineError::InvalidUtf8),
                ok("last"),
                ok("tail"),
            ]
        );
    }

    #[test]
    fn utf8_character_split_across_reads() {
        // `你\n` as `e4 bd` then `a0 0a`: the tutorial's echo server lost the character.
        assert_eq!(run(64, &[b"\xe4\xbd", b"\xa0\n"]), vec![ok("你")]);
    }

    #[test]
    fn invalid_utf8_then_valid_line() {
        let mut dec = LineDecoder::new(64);
        let mut buf = BytesMut::from(&b"\xc3\x28\nok\n"[..]);
        assert_eq!(dec.decode(&mut buf), Err(LineError::InvalidUtf8));
        assert_eq!(dec.decode(&mut buf), Ok(Some("ok".to_owned())));
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn line_exactly_at_limit_is_accepted() {
        assert_eq!(run(5, &[b"12345\n"]), vec![ok("12345")]);
        assert_eq!(run(5, &[b"12345\r\n"]), vec![ok("12345")]);
        assert_split_invariant(5, b"12345\r\n12345\n");
        // At end of stream, an unterminated line of max_len bytes (plus a '\r') is fine too.
        assert_eq!(run(5, &[b"12345\r"]), vec![ok("12345")]);
    }

    #[test]
    fn line_over_limit_is_rejected() {
        let too_long = Err(LineError::TooLong { max: 5 });
        assert_eq!(run(5, &[b"123456\n"]), vec![too_long.clone()]);
        assert_eq!(run(5, &[b"12345\r\r\n"]), vec![too_long.clone()]);
        // Rejected without waiting for the newline.
        let mut dec = LineDecoder::new(5);
        let mut buf = BytesMut::from(&b"12345"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"\r");
        assert_eq!(dec.decode(&mut buf), Ok(None), "may still be CRLF");
        buf.extend_from_slice(b"x");
        assert_eq!(dec.decode(&mut buf), Err(LineError::TooLong { max: 5 }));
        // Earlier lines still come out first, whatever the split.
        let out = assert_split_invariant(5, b"ab\n123456789\nnever\n");
        assert_eq!(out, vec![ok("ab"), too_long]);
    }

    #[test]
    fn flood_without_newline_is_bounded() {
        let mut dec = LineDecoder::new(DEFAULT_MAX_LINE);
        let mut buf = BytesMut::new();
        let chunk = [b'a'; 4096];
        let mut result = Ok(None);
        for _ in 0..64 {
            buf.extend_from_slice(&chunk);
            result = dec.decode(&mut buf);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(LineError::TooLong {
                max: DEFAULT_MAX_LINE
            })
        );
        assert!(buf.len() <= DEFAULT_MAX_LINE + 4096);
    }

    #[test]
    fn trickled_line_is_scanned_once() {
        let mut dec = LineDecoder::new(DEFAULT_MAX_LINE);
        let mut buf = BytesMut::new();
        for i in 1..=1000 {
            buf.extend_from_slice(b"x");
            assert_eq!(dec.decode(&mut buf), Ok(None));
            assert_eq!(dec.scanned, i, "only the new byte is searched");
        }
        buf.extend_from_slice(b"\n");
        assert_eq!(dec.decode(&mut buf), Ok(Some("x".repeat(1000))));
        assert_eq!(dec.scanned, 0);
    }

    #[test]
    fn decode_eof_on_empty_buffer() {
        let mut dec = LineDecoder::default();
        let mut buf = BytesMut::new();
        assert_eq!(dec.decode_eof(&mut buf), Ok(None));
    }

    #[test]
    fn huge_max_len_does_not_overflow() {
        assert_eq!(run(usize::MAX, &[b"a\nb"]), vec![ok("a"), ok("b")]);
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            LineError::TooLong { max: 10 }.to_string(),
            "line longer than 10 bytes"
        );
        assert_eq!(
            LineError::InvalidUtf8.to_string(),
            "line is not valid UTF-8"
        );
    }
}
