//! `heartbeat`: N clients of `netloop serve heartbeat` (JSON lines).
//!
//! Each client answers the server's `{"type":"ping",...}` with
//! `{"type":"pong","timestamp":<the ping's timestamp>}` and sends its own
//! `{"type":"ping","timestamp":<Unix ms>}` every `interval` (the first one
//! staggered across the interval so the clients do not beat in step). The
//! round trip to the next `pong` is the operation measured; the RTT is
//! timed locally, so it does not depend on what the server puts in the
//! pong. With `--server-pid` the figure that matters is the server's CPU
//! share while holding N clients at this beat.

use super::control::{conn_map, consume, ns_since, ConnMap, Shared, Stop, ThreadStats};
use super::Load;
use crate::codec::LineDecoder;
use crate::{ConnId, ConnectOptions, Handler, Reactor, TimerId};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest line accepted from the heartbeat server.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Client {
    lines: LineDecoder,
    ping_sent: Option<Instant>,
    /// A ping or pong has come from the server: it speaks the protocol.
    ready: bool,
}

/// The handler of one load thread.
#[derive(Debug)]
pub struct HeartbeatLoad {
    shared: Arc<Shared>,
    thread: usize,
    target: SocketAddr,
    count: usize,
    interval: Duration,
    clients: ConnMap<Client>,
    stats: ThreadStats,
    /// The `auth` message each client sends first, for a server started
    /// with a token.
    auth: Option<Bytes>,
    /// A refusal of the token was reported (once per thread).
    refused: bool,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl HeartbeatLoad {
    /// `count` clients pinging every `interval`.
    pub fn new(
        shared: Arc<Shared>,
        thread: usize,
        target: SocketAddr,
        count: usize,
        interval: Duration,
    ) -> HeartbeatLoad {
        HeartbeatLoad {
            shared,
            thread,
            target,
            count,
            interval: interval.max(Duration::from_millis(1)),
            clients: conn_map(count),
            stats: ThreadStats::default(),
            auth: None,
            refused: false,
        }
    }

    fn send(&mut self, r: &mut Reactor, conn: ConnId, v: &Value) -> bool {
        let mut line = v.to_string();
        line.push('\n');
        r.write(conn, line).is_ok()
    }

    /// Present `token` first on every client (the guard answers
    /// `auth_ok`, which the clients ignore).
    pub fn with_token(mut self, token: Option<&crate::apps::auth::Token>) -> HeartbeatLoad {
        self.auth = token.map(|t| {
            let mut line = crate::client::auth::json_request(t).to_string();
            line.push('\n');
            Bytes::from(line)
        });
        self
    }

    fn on_line(&mut self, r: &mut Reactor, conn: ConnId, line: &str) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.stats.add_extra("unparsed_lines", 1);
            return;
        };
        let kind = v.get("type").and_then(Value::as_str);
        if matches!(kind, Some("ping" | "pong")) {
            if let Some(c) = self.clients.get_mut(&conn) {
                if !c.ready {
                    c.ready = true;
                    self.shared.ready.fetch_add(1, Relaxed);
                }
            }
        }
        match kind {
            Some("ping") => {
                let ts = v.get("timestamp").cloned().unwrap_or(Value::Null);
                if self.send(r, conn, &json!({"type": "pong", "timestamp": ts})) {
                    self.stats.add_extra("server_pings_answered", 1);
                }
            }
            Some("pong") => {
                let sent = self.clients.get_mut(&conn).and_then(|c| c.ping_sent.take());
                if let Some(t) = sent {
                    self.stats.op(&self.shared, self.thread, ns_since(t));
                }
            }
            Some("error") if !self.refused => {
                let msg = v.get("message").and_then(Value::as_str).unwrap_or("");
                if crate::client::auth::is_auth_refusal(msg) {
                    // The clients never become ready: the setup times out.
                    self.refused = true;
                    eprintln!(
                        "netloop bench: the server refused the token: {}",
                        crate::apps::text::sanitize(msg)
                    );
                }
            }
            _ => {}
        }
    }
}

impl Load for HeartbeatLoad {
    fn start(&mut self, r: &mut Reactor) {
        let host = self.target.ip().to_string();
        for _ in 0..self.count {
            let id = r.connect(&host, self.target.port(), ConnectOptions::default());
            self.clients.insert(id, Client::default());
        }
    }

    fn finish(self) -> ThreadStats {
        self.stats
    }
}

impl Handler for HeartbeatLoad {
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {
        if let Some(a) = &self.auth {
            let _ = r.write(conn, a.clone());
        }
        // Ready only once the server has answered in the heartbeat protocol
        // (on_line): a server of another kind never becomes ready, and the
        // setup times out with a message saying so.
        if let Some(c) = self.clients.get_mut(&conn) {
            c.lines = LineDecoder::new(MAX_LINE);
        }
        let n = self.count.max(1) as u128;
        let slot = (conn.to_u64() as u128 % n) * self.interval.as_nanos() / n;
        r.set_timeout(Duration::from_nanos(slot as u64), conn.to_u64());
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let mut lines = Vec::new();
        match self.clients.get_mut(&conn) {
            Some(c) => loop {
                match c.lines.decode(data) {
                    Ok(Some(line)) => lines.push(line),
                    Ok(None) => break,
                    Err(_) => {
                        consume(data);
                        self.stats.add_extra("unparsed_lines", 1);
                        break;
                    }
                }
            },
            None => consume(data),
        }
        for line in lines {
            self.on_line(r, conn, &line);
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, tag: u64) {
        let conn = ConnId::from_u64(tag);
        let Some(c) = self.clients.get_mut(&conn) else {
            return; // closed meanwhile
        };
        if c.ping_sent.is_some() {
            // The last ping is still unanswered after a whole interval.
            if self.shared.measuring() {
                self.stats.add_extra("pongs_late", 1);
            }
        }
        c.ping_sent = Some(Instant::now());
        let ping = json!({"type": "ping", "timestamp": unix_ms()});
        if self.send(r, conn, &ping) {
            r.set_timeout(self.interval, tag);
        }
    }

    fn on_error(&mut self, _r: &mut Reactor, conn: ConnId, err: &crate::NetError) {
        log::debug!("{conn}: {err}");
        self.shared.note_error(err);
    }

    fn on_close(&mut self, _r: &mut Reactor, conn: ConnId, _had_error: bool) {
        if let Some(c) = self.clients.remove(&conn) {
            self.stats.errors += 1;
            if !c.ready {
                self.shared.fail(None);
            }
        }
    }

    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn std::any::Any + Send>) {
        if msg.is::<Stop>() {
            r.stop();
        }
    }
}
