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

use super::control::{ns_since, Outbox, Shared, ThreadStats};
use super::Load;
use crate::codec::LineDecoder;
use crate::framed::{Flow, Framed};
use crate::{ConnId, ConnectOptions, Cx, Reactor, Service, TimerId};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest line accepted from the heartbeat server.
const MAX_LINE: usize = 64 * 1024;

/// What a client's ping timer shares with its connection: a timer's
/// callback is not lent the connection's state, so the two meet here.
#[derive(Debug, Default)]
pub struct Beat {
    /// When the ping awaiting its pong went out.
    ping_sent: Cell<Option<Instant>>,
    /// The connection has closed: its timer stops.
    closed: Cell<bool>,
}

/// One heartbeat client.
#[derive(Debug)]
pub struct Client {
    lines: Framed<LineDecoder>,
    beat: Rc<Beat>,
    /// A ping or pong has come from the server: it speaks the protocol.
    ready: bool,
}

/// The heartbeat load's timers.
#[derive(Clone, Debug)]
pub enum Timer {
    /// Time for this client's next ping.
    Ping(ConnId, Rc<Beat>),
}

/// The service of one load thread.
#[derive(Debug)]
pub struct HeartbeatLoad {
    shared: Arc<Shared>,
    thread: usize,
    target: SocketAddr,
    count: usize,
    interval: Duration,
    stats: ThreadStats,
    out: Outbox,
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
            stats: ThreadStats::default(),
            out: Outbox::default(),
            auth: None,
            refused: false,
        }
    }

    fn send(r: &mut Reactor, conn: ConnId, v: &Value) -> bool {
        let mut line = v.to_string();
        line.push('\n');
        r.write(conn, line).is_ok()
    }

    /// Present `token` first on every client (the guard answers
    /// `auth_ok`, which the clients ignore).
    pub fn with_token(mut self, token: Option<&crate::protocol::auth::Token>) -> HeartbeatLoad {
        self.auth = token.map(|t| {
            let mut line = crate::clients::auth::json_request(t).to_string();
            line.push('\n');
            Bytes::from(line)
        });
        self
    }

    fn on_line(
        &mut self,
        r: &mut Reactor,
        conn: ConnId,
        ready: &mut bool,
        beat: &Beat,
        line: &str,
    ) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.stats.add_extra("unparsed_lines", 1);
            return;
        };
        let kind = v.get("type").and_then(Value::as_str);
        if matches!(kind, Some("ping" | "pong")) && !*ready {
            *ready = true;
            self.shared.ready.fetch_add(1, Relaxed);
        }
        match kind {
            Some("ping") => {
                let ts = v.get("timestamp").cloned().unwrap_or(Value::Null);
                if Self::send(r, conn, &json!({"type": "pong", "timestamp": ts})) {
                    self.stats.add_extra("server_pings_answered", 1);
                }
            }
            Some("pong") => {
                if let Some(t) = beat.ping_sent.take() {
                    self.stats.op(&self.shared, self.thread, ns_since(t));
                }
            }
            Some("error") if !self.refused => {
                let msg = v.get("message").and_then(Value::as_str).unwrap_or("");
                if crate::clients::auth::is_auth_refusal(msg) {
                    // The clients never become ready: the setup times out.
                    self.refused = true;
                    eprintln!(
                        "netloop bench: the server refused the token: {}",
                        crate::protocol::text::sanitize(msg)
                    );
                }
            }
            _ => {}
        }
    }
}

impl Load for HeartbeatLoad {
    fn outbox(&self) -> &Outbox {
        &self.out
    }
}

impl Drop for HeartbeatLoad {
    fn drop(&mut self) {
        self.out.put(self.stats.take());
    }
}

impl Service for HeartbeatLoad {
    type Conn = Client;
    type Tag = Timer;
    type Message = ();

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        let host = self.target.ip().to_string();
        for _ in 0..self.count {
            let client = Client {
                lines: Framed::new(LineDecoder::new(MAX_LINE)),
                beat: Rc::default(),
                ready: false,
            };
            let opts = ConnectOptions {
                tls: self.shared.tls.clone(),
                ..ConnectOptions::default()
            };
            cx.connect(&host, self.target.port(), opts, client);
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, c: &mut Client) {
        if let Some(a) = &self.auth {
            let _ = cx.write(conn, a.clone());
        }
        // Ready only once the server has answered in the heartbeat protocol
        // (on_line): a server of another kind never becomes ready, and the
        // setup times out with a message saying so.
        let n = self.count.max(1) as u128;
        let slot = (conn.to_u64() as u128 % n) * self.interval.as_nanos() / n;
        cx.set_timeout(
            Duration::from_nanos(slot as u64),
            Timer::Ping(conn, c.beat.clone()),
        );
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        c: &mut Client,
        data: &mut BytesMut,
    ) {
        let Client { lines, beat, ready } = c;
        let mut bad = false;
        lines.decode_all(cx, conn, data, |cx, item| match item {
            Ok(line) => {
                self.on_line(cx.reactor(), conn, ready, beat, &line);
                Flow::Continue
            }
            Err(_) => {
                bad = true;
                Flow::Stop
            }
        });
        if bad {
            data.clear();
            self.stats.add_extra("unparsed_lines", 1);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Timer) {
        let Timer::Ping(conn, beat) = tag;
        if beat.closed.get() {
            return;
        }
        if beat.ping_sent.get().is_some() {
            // The last ping is still unanswered after a whole interval.
            if self.shared.measuring() {
                self.stats.add_extra("pongs_late", 1);
            }
        }
        beat.ping_sent.set(Some(Instant::now()));
        let ping = json!({"type": "ping", "timestamp": unix_ms()});
        if Self::send(cx.reactor(), conn, &ping) {
            cx.set_timeout(self.interval, Timer::Ping(conn, beat));
        }
    }

    fn on_error(
        &mut self,
        _: &mut Cx<'_, Self>,
        conn: ConnId,
        _: &mut Client,
        err: &crate::NetError,
    ) {
        log::debug!("{conn}: {err}");
        self.shared.note_error(err);
    }

    fn on_close(&mut self, _: &mut Cx<'_, Self>, _: ConnId, c: Client, _had_error: bool) {
        c.beat.closed.set(true);
        self.stats.errors += 1;
        if !c.ready {
            self.shared.fail(None);
        }
    }
}
