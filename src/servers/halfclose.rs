//! `netloop serve halfclose`: the seed's half-close demo server (program 08),
//! with half-open really on.
//!
//! The seed never set `allowHalfOpen`, so Node ended its side at the client's
//! FIN and the "send after the peer's FIN" path never ran. This server must
//! be listened with `SocketOptions::allow_half_open = true` (the CLI does
//! that). Protocol, one line at a time (LF or CRLF, trimmed; lines are
//! framed, so `CLOSE_WRITE` sharing a segment with other text is still a
//! command):
//! * `CLOSE_WRITE`: the confirmation line, then our side is ended;
//! * `SHUTDOWN`: the three closing lines, then end;
//! * any other line: echoed with the prefix.
//!
//! After the peer's FIN the server waits [`AFTER_FIN_DELAY`], sends its one
//! extra line if it has not ended yet, then ends. Nothing is ever written
//! after our own end (the seed echoed there and hit
//! `ERR_STREAM_WRITE_AFTER_END`): a line that arrives then is still read,
//! logged (rate-limited) and dropped. The delay timer is cleared when the
//! connection closes, so no timer outlives its connection.

use super::banner_echo::answer_line_error;
use crate::codec::lines::{LineDecoder, LineError};
use crate::framed::{Flow, Framed};
use crate::metrics::trace::TraceLimiter;
use crate::protocol::catalog::Catalog;
use crate::protocol::text::sanitize;
use crate::{ConnId, Cx, Reactor, ServerId, Service, TimerId};
use bytes::BytesMut;
use std::time::Duration;

/// Delay between the peer's FIN and our extra line: the seed's 500 ms.
pub const AFTER_FIN_DELAY: Duration = Duration::from_millis(500);

/// "Line after our end" notices logged per second at most, over all
/// connections: enough to see that it happens, too few to flood the log.
pub const AFTER_END_LOGS_PER_SEC: u32 = 5;

/// A connection of the half-close server.
#[derive(Debug)]
pub struct Session {
    lines: Framed<LineDecoder>,
    after_fin: Option<TimerId>,
}

/// The half-close demo server.
#[derive(Debug)]
pub struct HalfCloseServer {
    cat: Catalog,
    max_line: usize,
    /// Limits the "line after our end" notice, which a peer can repeat.
    after_end_log: TraceLimiter,
}

impl HalfCloseServer {
    /// A server speaking `cat`'s language, with lines of at most `max_line` bytes.
    pub fn new(cat: Catalog, max_line: usize) -> HalfCloseServer {
        HalfCloseServer {
            cat,
            max_line,
            after_end_log: TraceLimiter::with_limit(AFTER_END_LOGS_PER_SEC),
        }
    }

    /// Answer one line; `Flow::Stop` once our side is ended by it. `eof`:
    /// at the peer's FIN nothing more will be read, so an echo never pauses
    /// reading (a pause would stop decoding the last lines).
    fn handle_line(&mut self, r: &mut Reactor, conn: ConnId, line: &str, eof: bool) -> Flow {
        let text = line.trim();
        // Per line: debug, as the command server's (the peer controls the
        // volume; at info, 400 KB of input made 34 MB of log).
        log::debug!("{conn} received: {}", sanitize(text));
        if !r.is_writable(conn) {
            self.not_answered(r, conn);
            return Flow::Stop;
        }
        let cat = self.cat;
        match text {
            "CLOSE_WRITE" => {
                log::info!("{conn} CLOSE_WRITE: ending our write side");
                let _ = r.end_with(conn, cat.close_write_ack());
                Flow::Stop
            }
            "SHUTDOWN" => {
                log::info!("{conn} SHUTDOWN: closing lines, then end");
                for l in cat.shutdown_lines() {
                    let _ = r.write(conn, l);
                }
                let _ = r.end(conn);
                Flow::Stop
            }
            _ => {
                // At the high-water mark reading pauses until the drain.
                let echo = cat.echo(&sanitize(text));
                let _ = if eof {
                    r.write(conn, echo)
                } else {
                    r.pipe_write(conn, conn, echo)
                };
                Flow::Continue
            }
        }
    }

    /// A line arrived after our end: it is not answered (writing would be
    /// a write after end). A peer can send any number of them, so the
    /// notice is rate-limited.
    fn not_answered(&mut self, r: &mut Reactor, conn: ConnId) {
        if let Some(suppressed) = self.after_end_log.admit(r.now()) {
            log::info!(
                "{conn} line after our end: not answered ({suppressed} such lines not logged)"
            );
        }
    }

    /// Decode and answer the lines in `data` (`eof`: at the peer's FIN).
    /// Framed while our side is open; after our end the lines are still
    /// read, one by one, only to be logged and dropped.
    fn lines(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Session,
        data: &mut BytesMut,
        eof: bool,
    ) {
        let cat = self.cat;
        if cx.is_writable(conn) {
            let mut answer = |cx: &mut Cx<'_, Self>, line: Result<String, LineError>| match line {
                Ok(text) => self.handle_line(cx, conn, &text, eof),
                Err(e) => {
                    // An overlong line ends the connection; decoding then
                    // drops the rest by itself.
                    answer_line_error(cx, conn, &cat, e);
                    Flow::Continue
                }
            };
            if eof {
                st.lines.decode_eof(cx, conn, data, &mut answer);
            } else {
                st.lines.decode_all(cx, conn, data, &mut answer);
            }
        }
        while !cx.is_writable(conn) && !cx.is_paused(conn) {
            let dec = &mut st.lines.decoder;
            let line = if eof {
                dec.decode_eof(data)
            } else {
                dec.decode(data)
            };
            match line {
                Ok(Some(text)) => {
                    log::debug!("{conn} received: {}", sanitize(text.trim()));
                    self.not_answered(cx, conn);
                }
                Ok(None) => break,
                Err(LineError::InvalidUtf8) => {}
                Err(LineError::TooLong { .. }) => {
                    data.clear();
                    break;
                }
            }
        }
    }
}

impl Service for HalfCloseServer {
    type Conn = Session;
    /// The after-FIN delay, by connection.
    type Tag = ConnId;
    type Message = ();

    fn name(&self) -> &'static str {
        "halfclose"
    }

    fn on_listening(&mut self, _: &mut Cx<'_, Self>, _: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "half-close server listening on {addr} (lang {})",
            self.cat.lang
        );
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _: ServerId,
        conn: ConnId,
    ) -> Option<Session> {
        log::info!(
            "{conn} client connected: {}",
            cx.peer_addr(conn)
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        );
        Some(Session {
            lines: Framed::new(LineDecoder::new(self.max_line)),
            after_fin: None,
        })
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Session,
        data: &mut BytesMut,
    ) {
        self.lines(cx, conn, st, data, false);
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Session) {
        log::info!("{conn} client closed its write side");
        let mut rest = cx.take_unread(conn);
        self.lines(cx, conn, st, &mut rest, true);
        if cx.is_writable(conn) {
            st.after_fin = Some(cx.set_timeout(AFTER_FIN_DELAY, conn));
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: TimerId, conn: ConnId) {
        // The timer is cleared at close, so `conn` is still open.
        if cx.is_writable(conn) {
            let _ = cx.end_with(conn, self.cat.after_fin());
        }
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Session) {
        // Only with --idle-timeout: the demo has no notice for it.
        if cx.is_writable(conn) {
            let _ = cx.end(conn);
        } else {
            cx.destroy(conn);
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: Session, had_error: bool) {
        if let Some(t) = st.after_fin {
            cx.clear_timer(t);
        }
        let err = if had_error { " (error)" } else { "" };
        log::info!("{conn} connection fully closed{err}");
    }
}
