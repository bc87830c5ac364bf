//! What every line server does with `on_data`: cut the read buffer into lines
//! and answer the two line errors the same way.
//!
//! Algorithm: [`LineReader`] is a [`Framed`] session over a [`LineDecoder`]
//! that also counts the bytes each line took off the wire (terminator
//! included, for byte counters). [`LineReader::read_all`] decodes every
//! complete line of the connection's read buffer, corked, and hands each to
//! the caller; a partial line stays in the buffer for the next read, so two
//! commands in one segment are two lines and one command split over segments
//! is one line. UTF-8 is decoded on whole lines only (a character split over
//! two reads is never mangled).
//!
//! Error policy: on a line that is not UTF-8 the reader writes the
//! catalogue's error line and goes on with the next line. On an overlong line
//! it writes the error line, calls `end()` and empties the buffer: the
//! connection is finished (it is no longer writable). At the peer's FIN,
//! [`LineReader::read_eof`] also delivers a last line that had no terminator.
//!
//! Peer text embedded in a server line goes through
//! [`crate::protocol::text::sanitize`], so a peer cannot put terminal escapes on
//! another client's screen.

use crate::codec::lines::{LineDecoder, LineError};
use crate::codec::Decoder;
use crate::framed::{Flow, Framed};
use crate::protocol::catalog::Catalog;
use crate::{ConnId, Cx, Reactor, Service, TimerId};
use bytes::BytesMut;
use std::fmt;
use std::ops::DerefMut;

/// One decoded line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The text, without its terminator.
    pub text: String,
    /// Bytes consumed from the wire, terminator included.
    pub wire_len: usize,
}

/// A line error with the bytes it took off the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFault {
    /// What was wrong.
    pub error: LineError,
    /// Bytes consumed from the wire.
    pub wire_len: usize,
}

impl fmt::Display for LineFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.error, self.wire_len)
    }
}

/// A [`LineDecoder`] that reports each line's length on the wire.
#[derive(Clone, Debug)]
pub struct CountedLines(LineDecoder);

impl CountedLines {
    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Option<Line>, LineFault> {
        let before = buf.len();
        let res = if eof {
            self.0.decode_eof(buf)
        } else {
            self.0.decode(buf)
        };
        let wire_len = before - buf.len();
        match res {
            Ok(Some(text)) => Ok(Some(Line { text, wire_len })),
            Ok(None) => Ok(None),
            Err(error) => Err(LineFault { error, wire_len }),
        }
    }
}

impl Decoder for CountedLines {
    type Item = Line;
    type Error = LineFault;
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, LineFault> {
        self.step(buf, false)
    }
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, LineFault> {
        self.step(buf, true)
    }
}

/// A line session plus the servers' error policy. One per connection.
#[derive(Clone, Debug)]
pub struct LineReader {
    framed: Framed<CountedLines>,
}

impl LineReader {
    /// A reader for lines of at most `max_line` bytes.
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            framed: Framed::new(CountedLines(LineDecoder::new(max_line))),
        }
    }

    /// Decode every complete line in `data`, corked, handing each to `f`
    /// (which returns [`Flow::Stop`] to stop early); the line errors are
    /// answered as the module docs say. Decoding stops by itself once the
    /// connection no longer accepts writes, or is paused. True if the
    /// reader itself ended the connection (an overlong line).
    pub fn read_all<C, F>(
        &mut self,
        cx: &mut C,
        conn: ConnId,
        data: &mut BytesMut,
        cat: &Catalog,
        f: F,
    ) -> bool
    where
        C: DerefMut<Target = Reactor>,
        F: FnMut(&mut C, Line) -> Flow,
    {
        self.read(cx, conn, data, cat, f, false)
    }

    /// [`LineReader::read_all`] at the end of the stream: also a last line
    /// without its terminator.
    pub fn read_eof<C, F>(
        &mut self,
        cx: &mut C,
        conn: ConnId,
        data: &mut BytesMut,
        cat: &Catalog,
        f: F,
    ) -> bool
    where
        C: DerefMut<Target = Reactor>,
        F: FnMut(&mut C, Line) -> Flow,
    {
        self.read(cx, conn, data, cat, f, true)
    }

    fn read<C, F>(
        &mut self,
        cx: &mut C,
        conn: ConnId,
        data: &mut BytesMut,
        cat: &Catalog,
        mut f: F,
        eof: bool,
    ) -> bool
    where
        C: DerefMut<Target = Reactor>,
        F: FnMut(&mut C, Line) -> Flow,
    {
        let mut ended = false;
        let each = |cx: &mut C, item: Result<Line, LineFault>| match item {
            Ok(line) => f(cx, line),
            Err(fault) => {
                let flow = apply_policy(cx, conn, fault, cat);
                ended |= flow == Flow::Stop;
                flow
            }
        };
        if eof {
            self.framed.decode_eof(cx, conn, data, each);
        } else {
            self.framed.decode_all(cx, conn, data, each);
        }
        if !cx.is_writable(conn) {
            data.clear();
        }
        ended
    }
}

/// Answer a line error: not UTF-8 → the error line, go on; overlong → the
/// error line and `end()`, stop.
fn apply_policy(r: &mut Reactor, conn: ConnId, fault: LineFault, cat: &Catalog) -> Flow {
    match fault.error {
        LineError::InvalidUtf8 => {
            log::debug!(
                "{conn} invalid UTF-8 line ({} bytes) skipped",
                fault.wire_len
            );
            let _ = r.write(conn, cat.invalid_utf8());
            Flow::Continue
        }
        LineError::TooLong { max } => {
            log::info!("{conn} line longer than {max} bytes: closing");
            let _ = r.end_with(conn, cat.line_too_long(max));
            Flow::Stop
        }
    }
}

/// Time a peer gets to close after our idle notice and FIN before it is
/// destroyed: long enough for a live client to read the notice, short enough
/// that a vanished one does not hold a descriptor for another idle period.
pub const IDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The line servers' idle policy on a service: write `notice`, end, and
/// arm a grace timer named `tag` (after [`IDLE_GRACE`] the
/// connection is destroyed by [`grace_expired`] unless it closed). A
/// connection already ended is destroyed at once. Returns the grace timer,
/// to clear at `close`.
pub fn close_idle<S: Service>(
    cx: &mut Cx<'_, S>,
    conn: ConnId,
    notice: String,
    tag: S::Tag,
) -> Option<TimerId> {
    if cx.is_writable(conn) {
        log::info!("{conn} idle: notice, end, destroy in {IDLE_GRACE:?} unless closed");
        let _ = cx.end_with(conn, notice);
        // From now on the grace timer decides, not another idle period.
        cx.set_idle_timeout(conn, None);
        Some(cx.set_timeout(IDLE_GRACE, tag))
    } else {
        log::info!("{conn} idle after end: destroying");
        cx.destroy(conn);
        None
    }
}

/// A grace timer of [`close_idle`] fired: destroy the connection if it still
/// exists (a stale id is a no-op: ids are generation-tagged).
pub fn grace_expired(r: &mut Reactor, conn: ConnId) {
    if r.state(conn).is_some() {
        log::info!("{conn} did not close within the grace period: destroying");
        r.destroy(conn);
    }
}
