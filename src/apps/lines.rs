//! What every line server does with `on_data`: cut the read buffer into lines
//! and answer the two line errors the same way.
//!
//! Algorithm: [`LineReader::next`] runs the sans-IO [`LineDecoder`] over the
//! connection's read buffer and returns one complete line at a time, with the
//! number of bytes it took off the wire (terminator included, for byte
//! counters). A partial line stays in the buffer for the next read, so two
//! commands in one segment are two lines and one command split over segments
//! is one line (D-X3, D2.1, D2.2); UTF-8 is decoded on whole lines only (D1.1).
//!
//! Caller's contract: call `next` in a loop from `on_data` until it returns
//! `None`. On a line that is not UTF-8 the reader writes the catalogue's error
//! line and goes on with the next line. On an overlong line it writes the error
//! line, calls `end()` and empties the buffer: the caller must treat the
//! connection as finished (it is no longer writable). At the peer's FIN, call
//! [`LineReader::finish`] to get a last line that had no terminator.
//!
//! Peer text embedded in a server line goes through
//! [`super::text::sanitize`], so a peer cannot put terminal escapes on
//! another client's screen.

use super::catalog::Catalog;
use crate::codec::lines::{LineDecoder, LineError};
use crate::{ConnId, Reactor};
use bytes::BytesMut;

/// One decoded line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The text, without its terminator.
    pub text: String,
    /// Bytes consumed from the wire, terminator included.
    pub wire_len: usize,
}

/// A [`LineDecoder`] plus the servers' error policy. One per connection.
#[derive(Clone, Debug)]
pub struct LineReader {
    dec: LineDecoder,
}

impl LineReader {
    /// A reader for lines of at most `max_line` bytes.
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            dec: LineDecoder::new(max_line),
        }
    }

    /// The next complete line in `data`, or `None` (wait for more, or the
    /// connection was ended because of an overlong line).
    pub fn next(
        &mut self,
        r: &mut Reactor,
        conn: ConnId,
        data: &mut BytesMut,
        cat: &Catalog,
    ) -> Option<Line> {
        self.step(r, conn, data, cat, false)
    }

    /// Like [`LineReader::next`] at end of stream: also returns a final line
    /// without a terminator. Call until `None`.
    pub fn finish(
        &mut self,
        r: &mut Reactor,
        conn: ConnId,
        data: &mut BytesMut,
        cat: &Catalog,
    ) -> Option<Line> {
        self.step(r, conn, data, cat, true)
    }

    fn step(
        &mut self,
        r: &mut Reactor,
        conn: ConnId,
        data: &mut BytesMut,
        cat: &Catalog,
        eof: bool,
    ) -> Option<Line> {
        loop {
            let before = data.len();
            let res = if eof {
                self.dec.decode_eof(data)
            } else {
                self.dec.decode(data)
            };
            let wire_len = before - data.len();
            match res {
                Ok(Some(text)) => return Some(Line { text, wire_len }),
                Ok(None) => return None,
                Err(LineError::InvalidUtf8) => {
                    log::debug!("{conn} invalid UTF-8 line ({wire_len} bytes) skipped");
                    let _ = r.write(conn, cat.invalid_utf8());
                }
                Err(LineError::TooLong { max }) => {
                    log::info!("{conn} line longer than {max} bytes: closing");
                    data.clear();
                    let _ = r.end_with(conn, cat.line_too_long(max));
                    return None;
                }
            }
        }
    }
}
