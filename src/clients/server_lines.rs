//! What every line client (`netloop connect`, `netloop halfclose`) does with
//! the bytes a server sends: cut them into lines with the servers'
//! [`LineDecoder`], show an over-long line in pieces of at most
//! [`MAX_SERVER_LINE`] bytes instead of buffering it, and go on after a line
//! that is not UTF-8.
//!
//! Algorithm: [`ServerLines::next`] calls `decode`; on `TooLong` it takes one
//! piece with [`LineDecoder::take_piece`], which consumes it and resets the
//! decoder's scan position together (a client that advanced the buffer
//! itself left that position stale, so lines already buffered behind the
//! long one were missed until more data came). Memory per connection stays
//! below `MAX_SERVER_LINE + 2` bytes whatever the server sends.
//!
//! Caller's contract: call `next` until `None` after each read, and
//! [`ServerLines::next_eof`] until `None` at the server's FIN. Everything
//! returned came from the network: pass it through
//! [`crate::protocol::text::sanitize`] before printing.

use crate::codec::lines::{LineDecoder, LineError};
use bytes::BytesMut;

/// Longest server line shown as one line; a longer one is shown in pieces of
/// this size (a client must not buffer a server's unbounded line). 1 MiB: far
/// above any line of the tutorial's servers, small next to a terminal's
/// scrollback.
pub const MAX_SERVER_LINE: usize = 1024 * 1024;

/// One thing to show from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerText {
    /// A complete line, without its terminator.
    Line(String),
    /// A piece of a line longer than the limit (more of it follows).
    Piece(String),
    /// A line that was not UTF-8 (consumed).
    NotUtf8,
}

/// A client's decoder of server lines. One per connection.
#[derive(Clone, Debug)]
pub struct ServerLines {
    dec: LineDecoder,
}

impl Default for ServerLines {
    fn default() -> Self {
        ServerLines::new(MAX_SERVER_LINE)
    }
}

impl ServerLines {
    /// A decoder showing lines of at most `max` bytes whole.
    pub fn new(max: usize) -> ServerLines {
        ServerLines {
            dec: LineDecoder::new(max),
        }
    }

    /// The next thing to show from `buf`, consumed; `None`: wait for more.
    pub fn next(&mut self, buf: &mut BytesMut) -> Option<ServerText> {
        self.step(buf, false)
    }

    /// Like [`ServerLines::next`] at the server's FIN: a last line without
    /// a terminator is returned too.
    pub fn next_eof(&mut self, buf: &mut BytesMut) -> Option<ServerText> {
        self.step(buf, true)
    }

    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Option<ServerText> {
        let res = if eof {
            self.dec.decode_eof(buf)
        } else {
            self.dec.decode(buf)
        };
        match res {
            Ok(Some(line)) => Some(ServerText::Line(line)),
            Ok(None) => None,
            Err(LineError::InvalidUtf8) => Some(ServerText::NotUtf8),
            Err(LineError::TooLong { .. }) => Some(ServerText::Piece(self.dec.take_piece(buf))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(max: usize, chunks: &[&[u8]]) -> (Vec<ServerText>, usize) {
        let mut d = ServerLines::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(t) = d.next(&mut buf) {
                out.push(t);
            }
        }
        (out, buf.len())
    }

    #[test]
    fn lines_behind_an_overlong_one_come_at_once() {
        // The long line and the two short ones arrive in one segment: both
        // short lines are shown now, not when the next segment comes.
        let mut seg = vec![b'a'; 20];
        seg.extend_from_slice(b"\nhello\nworld\n");
        let (out, left) = all(8, &[&seg]);
        let l = |s: &str| ServerText::Line(s.into());
        let p = |s: &str| ServerText::Piece(s.into());
        assert_eq!(
            out,
            vec![
                p("aaaaaaaa"),
                p("aaaaaaaa"),
                l("aaaa"),
                l("hello"),
                l("world")
            ]
        );
        assert_eq!(left, 0);
    }

    #[test]
    fn a_line_after_an_invalid_one_in_the_same_segment_comes_at_once() {
        let (out, left) = all(64, &[b"\xff\xfe\nok\n"]);
        assert_eq!(
            out,
            vec![ServerText::NotUtf8, ServerText::Line("ok".into())]
        );
        assert_eq!(left, 0);
    }

    #[test]
    fn pieces_keep_characters_whole() {
        // 'é' is two bytes; a cut inside it moves before it.
        let (out, _) = all(5, &["abcdé\r\n".as_bytes()]);
        assert_eq!(
            out,
            vec![
                ServerText::Piece("abcd".into()),
                ServerText::Line("é".into())
            ]
        );
        // Joined, the pieces and the tail are the line.
        let (out, _) = all(4, &[b"abc\rdefgh\r\n"]);
        let joined: String = out
            .iter()
            .map(|t| match t {
                ServerText::Piece(s) | ServerText::Line(s) => s.as_str(),
                ServerText::NotUtf8 => "?",
            })
            .collect();
        assert_eq!(joined, "abc\rdefgh");
    }
}
