//! `netloop serve command`: the seed's command server (program 02), line-framed.
//!
//! Protocol (one request per line, LF or CRLF, trimmed):
//! * on accept: the welcome with a connection id from a counter (never reused,
//!   unlike the loop's slot-based `ConnId`);
//! * `/info`: one line of compact JSON (no pretty-printing across lines, so a
//!   line reader gets it whole) with `connectionId`, `clientInfo`,
//!   `connectedAt` (ISO-8601 UTC), `bytesReceived` and `bytesSent` in bytes
//!   (the seed counted UTF-16 units), `uptime` (ms). Counters are taken
//!   before the reply, as in the seed;
//! * `/list`: the ids of the open sessions; `/quit`: goodbye, then `end()`;
//! * any other `/x`: the unknown-command reply; any other line, including an
//!   empty one, is echoed with the prefix.
//!
//! Grammar: the command is the first whitespace-separated word, matched
//! ignoring ASCII case (the seed compared the whole trimmed line, so
//! `/INFO` or `/info x` were unknown); these commands take no arguments and
//! ignore any.
//!
//! Flow control: a reply that takes the connection's queue to the high-water
//! mark pauses reading from it until `drain`, so a client that sends requests
//! without reading replies cannot grow our memory. After our own `end()`
//! (quit, idle, overlong line) input is dropped: nothing is written after
//! end. Idle: notice, end, destroy after a grace ([`close_idle`]). Shutdown:
//! the notice, then the loop ends every connection.

use super::lines::{close_idle, grace_expired, Line, LineReader};
use crate::framed::Flow;
use crate::protocol::catalog::Catalog;
use crate::protocol::text::sanitize;
use crate::{ConnId, Cx, NetError, ServerId, Service, TimerId};
use bytes::BytesMut;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

/// One client's session: the state of a command connection.
#[derive(Debug)]
pub struct Session {
    reader: LineReader,
    grace: Option<TimerId>,
    info: SessionInfo,
}

/// What `/info` reports of a session.
#[derive(Debug)]
struct SessionInfo {
    id: u64,
    client_info: String,
    connected_at: SystemTime,
    connected_mono: Instant,
    bytes_received: u64,
    bytes_sent: u64,
}

/// The `/info` reply body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info<'a> {
    connection_id: u64,
    client_info: &'a str,
    connected_at: String,
    bytes_received: u64,
    bytes_sent: u64,
    uptime: u64,
}

/// The sessions of every worker of a process (`--workers N`): ids unique in
/// the process, and `/list` of them all. One mutex, taken once per
/// connection and per `/list`, never per line.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    next_id: AtomicU64,
    open: Mutex<BTreeSet<u64>>,
}

impl SessionRegistry {
    fn open(&self) -> MutexGuard<'_, BTreeSet<u64>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CommandServer {
    /// Take session `id` off the process's list as soon as it ends (peer
    /// FIN, `/quit`, idle timeout), when its own worker stops listing it,
    /// not at its close, which can come later: otherwise the other workers'
    /// `/list` would still show it while this one's does not.
    fn unlist(&self, id: u64) {
        if let Some(reg) = &self.shared {
            reg.open().remove(&id);
        }
    }
}

/// The command server.
#[derive(Debug)]
pub struct CommandServer {
    cat: Catalog,
    max_line: usize,
    next_id: u64,
    /// Open sessions: connection → session id (for `/list` and the
    /// shutdown notice).
    open: BTreeMap<ConnId, u64>,
    /// With several workers: the process's sessions.
    shared: Option<Arc<SessionRegistry>>,
}

impl CommandServer {
    /// A server speaking `cat`'s language, with lines of at most `max_line` bytes.
    pub fn new(cat: Catalog, max_line: usize) -> CommandServer {
        CommandServer {
            cat,
            max_line,
            next_id: 0,
            open: BTreeMap::new(),
            shared: None,
        }
    }

    /// A server that is one worker of several sharing `registry`.
    pub fn with_registry(
        cat: Catalog,
        max_line: usize,
        registry: Arc<SessionRegistry>,
    ) -> CommandServer {
        let mut s = CommandServer::new(cat, max_line);
        s.shared = Some(registry);
        s
    }

    /// Write `msg` to `conn`, count it, pause reading at the high-water mark.
    fn send(cx: &mut Cx<'_, Self>, conn: ConnId, s: &mut SessionInfo, msg: String) {
        s.bytes_sent += msg.len() as u64;
        if cx.write(conn, msg) == Ok(false) {
            cx.pause(conn);
        }
    }

    fn handle_line(&self, cx: &mut Cx<'_, Self>, conn: ConnId, s: &mut SessionInfo, line: Line) {
        let cat = self.cat;
        s.bytes_received += line.wire_len as u64;
        let text = line.text.trim();
        // Debug, not info: at info a line flood was one stderr write per
        // line, log volume the peer controls (the seed logged every line).
        log::debug!(
            "[{}] received: {}",
            s.id,
            crate::protocol::auth::redact_auth(&sanitize(text))
        );
        if !text.starts_with('/') {
            let msg = cat.echo(&sanitize(text));
            Self::send(cx, conn, s, msg);
            return;
        }
        let cmd = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match cmd.as_str() {
            "/info" => {
                let info = Info {
                    connection_id: s.id,
                    client_info: &s.client_info,
                    connected_at: iso8601(s.connected_at),
                    bytes_received: s.bytes_received,
                    bytes_sent: s.bytes_sent,
                    uptime: s.connected_mono.elapsed().as_millis() as u64,
                };
                let json = serde_json::to_string(&info).unwrap_or_else(|_| "{}".into());
                Self::send(cx, conn, s, cat.command_info(&json));
            }
            "/list" => {
                // This worker's ended sessions are left out at once; every
                // worker takes its own off the registry when they end
                // (`unlist`).
                let ended = self
                    .open
                    .iter()
                    .filter(|(c, _)| !cx.is_writable(**c))
                    .map(|(_, id)| *id);
                let mut ids: Vec<u64> = match &self.shared {
                    Some(reg) => {
                        let mut all = reg.open().clone();
                        for id in ended {
                            all.remove(&id);
                        }
                        all.into_iter().collect()
                    }
                    None => self
                        .open
                        .iter()
                        .filter(|(c, _)| cx.is_writable(**c))
                        .map(|(_, id)| *id)
                        .collect(),
                };
                ids.sort_unstable();
                Self::send(cx, conn, s, cat.command_list(&ids));
            }
            "/stats" => {
                // The loop's own figures: the same snapshot the metrics
                // endpoint renders as Prometheus text.
                let json = serde_json::to_string(&cx.metrics()).unwrap_or_else(|_| "{}".into());
                Self::send(cx, conn, s, cat.command_stats(&json));
            }
            "/quit" => {
                let msg = cat.goodbye();
                s.bytes_sent += msg.len() as u64;
                // Off the list before the goodbye can be read.
                self.unlist(s.id);
                let _ = cx.end_with(conn, msg);
            }
            _ => Self::send(cx, conn, s, cat.command_unknown(&sanitize(text))),
        }
    }
}

impl Service for CommandServer {
    type Conn = Session;
    /// An idle connection's grace timer.
    type Tag = ConnId;
    type Message = ();

    fn name(&self) -> &'static str {
        "command"
    }

    fn on_listening(&mut self, _: &mut Cx<'_, Self>, _: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "command server listening on {addr} (lang {})",
            self.cat.lang
        );
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _: ServerId,
        conn: ConnId,
    ) -> Option<Session> {
        let id = match &self.shared {
            Some(reg) => {
                let id = reg.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                reg.open().insert(id);
                id
            }
            None => {
                self.next_id += 1;
                self.next_id
            }
        };
        let client_info = cx
            .peer_addr(conn)
            .map(|a| a.to_string())
            .unwrap_or_default();
        log::info!("[{id}] new connection: {client_info}");
        let mut s = Session {
            reader: LineReader::new(self.max_line),
            grace: None,
            info: SessionInfo {
                id,
                client_info,
                connected_at: SystemTime::now(),
                connected_mono: Instant::now(),
                bytes_received: 0,
                bytes_sent: 0,
            },
        };
        Self::send(cx, conn, &mut s.info, self.cat.command_welcome(id));
        self.open.insert(conn, id);
        Some(s)
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        s: &mut Session,
        data: &mut BytesMut,
    ) {
        // Corked (by the reader): the replies to a pipelined batch leave in
        // one writev, not one write() each.
        let cat = self.cat;
        let Session { reader, info, .. } = s;
        reader.read_all(cx, conn, data, &cat, |cx, line| {
            self.handle_line(cx, conn, info, line);
            Flow::Continue
        });
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, s: &mut Session) {
        // A last request without a terminator is still a request.
        let mut rest = cx.take_unread(conn);
        let cat = self.cat;
        let Session { reader, info, .. } = s;
        reader.read_eof(cx, conn, &mut rest, &cat, |cx, line| {
            self.handle_line(cx, conn, info, line);
            Flow::Continue
        });
        // Without half-open the loop ends our side now.
        self.unlist(s.info.id);
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Session) {
        cx.resume(conn);
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, s: &mut Session) {
        self.unlist(s.info.id);
        s.grace = close_idle(cx, conn, self.cat.command_timeout(), conn);
        log::info!("[{}] idle timeout", s.info.id);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: TimerId, conn: ConnId) {
        grace_expired(cx, conn);
    }

    fn on_error(&mut self, _: &mut Cx<'_, Self>, _: ConnId, s: &mut Session, err: &NetError) {
        log::info!("[{}] socket error: {err}", s.info.id);
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, s: Session, had_error: bool) {
        self.open.remove(&conn);
        self.unlist(s.info.id);
        if let Some(t) = s.grace {
            cx.clear_timer(t);
        }
        let err = if had_error { " (error)" } else { "" };
        log::info!("[{}] closed: {}{err}", s.info.id, s.info.client_info);
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        // The byte counters are not updated: no `/info` can be answered
        // after this (the loop ends every connection next).
        let msg = self.cat.command_shutdown();
        for &conn in self.open.keys() {
            if cx.is_writable(conn) {
                let _ = cx.write(conn, msg.clone());
            }
        }
    }
}

/// `t` as ISO-8601 UTC with milliseconds, like JavaScript's `toISOString()`.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso8601_matches_javascript() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_693_605_233);
        // new Date(1795693605233).toISOString()
        assert_eq!(iso8601(t), "2026-11-26T11:46:45.233Z");
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
    }
}
