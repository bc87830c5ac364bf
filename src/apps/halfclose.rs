//! `netloop serve halfclose`: the seed's half-close demo server (program 08),
//! with half-open really on.
//!
//! The seed never set `allowHalfOpen` (D8.1), so Node ended its side at the
//! client's FIN and the "send after the peer's FIN" path never ran. This
//! server must be listened with `SocketOptions::allow_half_open = true` (the
//! CLI does that). Protocol, one line at a time (LF or CRLF, trimmed; lines
//! are framed, so `CLOSE_WRITE` sharing a segment with other text is still a
//! command, D8.3):
//! * `CLOSE_WRITE`: the confirmation line, then our side is ended;
//! * `SHUTDOWN`: the three closing lines, then end;
//! * any other line: echoed with the prefix.
//!
//! After the peer's FIN the server waits [`AFTER_FIN_DELAY`], sends its one
//! extra line if it has not ended yet, then ends. Nothing is ever written after
//! our own end (D8.2): a line that arrives then is logged and dropped. The
//! delay timer is cleared when the connection closes (D8.4).

use super::catalog::Catalog;
use super::lines::LineReader;
use super::text::sanitize;
use crate::metrics::trace::TraceLimiter;
use crate::{ConnId, Handler, Reactor, ServerId, TimerId};
use bytes::BytesMut;
use std::collections::HashMap;
use std::time::Duration;

/// Delay between the peer's FIN and our extra line: the seed's 500 ms.
pub const AFTER_FIN_DELAY: Duration = Duration::from_millis(500);

/// "Line after our end" notices logged per second at most, over all
/// connections: enough to see that it happens, too few to flood the log.
pub const AFTER_END_LOGS_PER_SEC: u32 = 5;

#[derive(Debug)]
struct Session {
    reader: LineReader,
    after_fin: Option<TimerId>,
}

/// The half-close demo server.
#[derive(Debug)]
pub struct HalfCloseServer {
    cat: Catalog,
    max_line: usize,
    sessions: HashMap<ConnId, Session>,
    /// Limits the "line after our end" notice, which a peer can repeat.
    after_end_log: TraceLimiter,
}

impl HalfCloseServer {
    /// A server speaking `cat`'s language, with lines of at most `max_line` bytes.
    pub fn new(cat: Catalog, max_line: usize) -> HalfCloseServer {
        HalfCloseServer {
            cat,
            max_line,
            sessions: HashMap::new(),
            after_end_log: TraceLimiter::with_limit(AFTER_END_LOGS_PER_SEC),
        }
    }

    fn handle_line(&mut self, r: &mut Reactor, conn: ConnId, line: &str) {
        let text = line.trim();
        // Per line: debug, as the command server's (the peer controls the
        // volume; at info, 400 KB of input made 34 MB of log).
        log::debug!("{conn} received: {}", sanitize(text));
        if !r.is_writable(conn) {
            // D8.2: the seed echoed here and hit ERR_STREAM_WRITE_AFTER_END.
            // A peer can send any number of such lines: rate-limited.
            if let Some(suppressed) = self.after_end_log.admit(r.now()) {
                log::info!(
                    "{conn} line after our end: not answered ({suppressed} such lines not logged)"
                );
            }
            return;
        }
        let cat = self.cat;
        match text {
            "CLOSE_WRITE" => {
                log::info!("{conn} CLOSE_WRITE: ending our write side");
                let _ = r.end_with(conn, cat.close_write_ack());
            }
            "SHUTDOWN" => {
                log::info!("{conn} SHUTDOWN: closing lines, then end");
                for l in cat.shutdown_lines() {
                    let _ = r.write(conn, l);
                }
                let _ = r.end(conn);
            }
            _ => {
                if r.write(conn, cat.echo(&sanitize(text))) == Ok(false) {
                    r.pause(conn);
                }
            }
        }
    }
}

impl Handler for HalfCloseServer {
    fn on_listening(&mut self, _r: &mut Reactor, _s: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "half-close server listening on {addr} (lang {})",
            self.cat.lang
        );
    }

    fn on_connection(&mut self, r: &mut Reactor, _s: ServerId, conn: ConnId) {
        log::info!(
            "{conn} client connected: {}",
            r.peer_addr(conn)
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        );
        self.sessions.insert(
            conn,
            Session {
                reader: LineReader::new(self.max_line),
                after_fin: None,
            },
        );
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let cat = self.cat;
        loop {
            if r.is_paused(conn) {
                return;
            }
            let Some(s) = self.sessions.get_mut(&conn) else {
                data.clear();
                return;
            };
            let Some(line) = s.reader.next(r, conn, data, &cat) else {
                return;
            };
            self.handle_line(r, conn, &line.text);
        }
    }

    fn on_end(&mut self, r: &mut Reactor, conn: ConnId) {
        log::info!("{conn} client closed its write side");
        let mut rest = r.take_unread(conn);
        let cat = self.cat;
        loop {
            let Some(s) = self.sessions.get_mut(&conn) else {
                return;
            };
            let Some(line) = s.reader.finish(r, conn, &mut rest, &cat) else {
                break;
            };
            self.handle_line(r, conn, &line.text);
        }
        if r.is_writable(conn) {
            let t = r.set_timeout(AFTER_FIN_DELAY, conn.to_u64());
            if let Some(s) = self.sessions.get_mut(&conn) {
                s.after_fin = Some(t);
            }
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, tag: u64) {
        let conn = ConnId::from_u64(tag);
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.after_fin = None;
        }
        if r.is_writable(conn) {
            let _ = r.end_with(conn, self.cat.after_fin());
        }
    }

    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        r.resume(conn);
    }

    fn on_timeout(&mut self, r: &mut Reactor, conn: ConnId) {
        // Only with --idle-timeout: the demo has no notice for it.
        if r.is_writable(conn) {
            let _ = r.end(conn);
        } else {
            r.destroy(conn);
        }
    }

    fn on_close(&mut self, r: &mut Reactor, conn: ConnId, had_error: bool) {
        if let Some(s) = self.sessions.remove(&conn) {
            if let Some(t) = s.after_fin {
                r.clear_timer(t);
            }
        }
        let err = if had_error { " (error)" } else { "" };
        log::info!("{conn} connection fully closed{err}");
    }
}
