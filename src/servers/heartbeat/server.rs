//! The heartbeat server (the seed's heartbeat program, its defects fixed).
//!
//! | client sends | server does |
//! |---|---|
//! | (connect) | `welcome` {message, clientId, heartbeatInterval (ms)} |
//! | any line | counts as liveness (the seed ignored a client's own pings) |
//! | `pong`, `heartbeat` | `heartbeatCount += 1`; a `pong` echoing one of *our* ping timestamps gives an RTT (a client cannot spoof it) |
//! | `ping` | `pong` {timestamp (the client's, else now), serverTime} |
//! | `status` | `status_response` {clientId, connectTime, uptime, lastHeartbeat, rtt, heartbeatCount, missedHeartbeats, isAlive} |
//! | other type | `echo` {original, timestamp} |
//! | invalid JSON, not an object, no string `type` | `error` {message} |
//! | a line over the limit | `error` {message}, then the connection is ended |
//!
//! Each line is classified by the sans-IO [`crate::protocol::heartbeat::message::classify`]
//! (through [`crate::protocol::heartbeat::wire::classify_fast`], which reads the common lines
//! without building a JSON tree).
//!
//! **Timers.** Each client has exactly one timer on the wheel, armed at its
//! [`Liveness::next_deadline`]; inbound traffic only stores a time, and the
//! timer re-arms lazily when it fires (see [`super::liveness`]). The timer's
//! tag carries a handle on the client's state ([`ClientRef`]), because a
//! service's timer callback is not lent any connection's state. So 10,000
//! clients cost 10,000 wheel entries and one O(1) insert per ping, not a
//! sweep over every client per interval as in the seed. Worst-case detection
//! of a silent client: `timeout + 3 × interval` (60 s with the defaults).
//!
//! **Per ping.** Each client's pings sit at its own [`stable_offset`] in the
//! interval, so a burst of clients that connected together is pinged spread
//! over the interval rather than all in one millisecond (which made every
//! reply in that millisecond wait behind thousands of writes). A ping line is
//! rendered from a [`LineTemplate`] once per millisecond and shared by every
//! client pinged in that millisecond (a `Bytes` clone, no allocation); a
//! pong to a client's ping is rendered from a template too. A reply that is
//! going out anyway carries a ping that is due within the slack
//! ([`Liveness::ride_along`]), so a client that beats at our interval costs
//! one `writev` a round instead of two.
//!
//! `server_status` goes to every client each `status_interval` with the
//! client count, the uptime, the intervals and `memory: {rss}` (the one
//! field of Node's `process.memoryUsage()` the tutorial's client prints; the
//! resident size reveals nothing beyond it). The loop's figures stay on
//! `/metrics` and `/stats`. On shutdown every client gets `server_shutdown`; the reactor
//! then ends each connection and destroys what is left after the grace
//! period (the seed never cleared its status interval and ended sockets
//! after a fixed second, with no destroy for those that stayed). Client ids are opaque (`client-N`), not addresses.

use super::liveness::{stable_offset, Due, Liveness};
use crate::codec::{LineDecoder, LineError, DEFAULT_MAX_LINE};
use crate::framed::{Flow, Framed};
use crate::metrics::process::ProcessMetrics;
use crate::protocol::catalog::{Catalog, Lang};
use crate::protocol::heartbeat::message::Inbound;
use crate::protocol::heartbeat::rtt::IssuedPings;
use crate::protocol::heartbeat::wire::{classify_fast, LineTemplate};
use crate::protocol::json_reply::{error_message, json_line as line};
use crate::protocol::wall_clock::unix_ms;
use crate::reactor::Reactor;
use crate::{ConnId, Cx, ServerId, Service, TimerId};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Number, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default interval between pings (the seed's usage value).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Default silence after which urgent pings start.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// `x` rounded to 3 decimals: seconds to the millisecond in `uptime`,
/// milliseconds to the microsecond in `rtt` (a float's binary noise, as in
/// `0.6407459999999999`, says nothing).
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Default interval of the `server_status` broadcast.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(60);

/// The heartbeat server's timers.
#[derive(Clone, Debug)]
pub enum HeartbeatTag {
    /// The `server_status` broadcast.
    Status,
    /// A client's liveness deadline.
    Client(ClientRef),
}

/// Settings of the heartbeat server.
#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    /// Interval between pings to each client.
    pub interval: Duration,
    /// Silence after which a client gets urgent pings.
    pub timeout: Duration,
    /// Interval of `server_status` (0 = off).
    pub status_interval: Duration,
    /// Longest accepted line, in bytes.
    pub max_line: usize,
    /// Language of the `message` texts ([`Catalog`]).
    pub lang: Lang,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: DEFAULT_HEARTBEAT_INTERVAL,
            timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            status_interval: DEFAULT_STATUS_INTERVAL,
            max_line: DEFAULT_MAX_LINE,
            lang: Lang::En,
        }
    }
}

/// The server's own ping lines, each rendered once per millisecond.
#[derive(Debug)]
struct PingLines {
    /// Regular and urgent ping, `timestamp` a hole.
    templates: [LineTemplate; 2],
    /// The last line rendered of each, with its timestamp.
    last: [Option<(u64, Bytes)>; 2],
}

impl PingLines {
    fn new(lang: Lang) -> PingLines {
        let template = |urgent: bool| {
            let text = Catalog::new(lang).heartbeat_ping(urgent);
            let ping = json!({"type": "ping", "timestamp": 0, "urgent": urgent, "message": text});
            // Cannot fail: an object with a numeric `timestamp` and no other number.
            LineTemplate::new(&ping, &["timestamp"]).expect("ping template")
        };
        PingLines {
            templates: [template(false), template(true)],
            last: [None, None],
        }
    }

    /// The ping line with wire timestamp `ts`: the same `Bytes` for every
    /// client pinged in the same millisecond.
    fn line(&mut self, ts: u64, urgent: bool) -> Bytes {
        let i = usize::from(urgent);
        match &self.last[i] {
            Some((at, line)) if *at == ts => line.clone(),
            _ => {
                let line = self.templates[i].render(&[&Number::from(ts)]);
                self.last[i] = Some((ts, line.clone()));
                line
            }
        }
    }
}

#[derive(Debug)]
struct Client {
    conn: ConnId,
    id: String,
    live: Liveness,
    pings: IssuedPings,
    rtt: Option<Duration>,
    connect_ms: u64,
    connected_at: Instant,
    last_heartbeat_ms: u64,
    heartbeat_count: u64,
    timer: Option<TimerId>,
    closing: bool,
}

/// A handle on one client's state, shared by its connection and its
/// liveness timer (whose callback gets no connection state of its own).
#[derive(Clone, Debug)]
pub struct ClientRef(Rc<RefCell<Client>>);

/// The state of a heartbeat connection.
#[derive(Debug)]
pub struct HeartbeatConn {
    framed: Framed<LineDecoder>,
    client: ClientRef,
}

/// What the workers of one process (`--workers N`) share: client ids
/// unique in the process, and the client count `server_status` reports.
#[derive(Debug, Default)]
pub struct SharedClients {
    next_id: AtomicU64,
    connected: AtomicUsize,
}

/// The heartbeat server.
#[derive(Debug)]
pub struct HeartbeatServer {
    /// With several workers: the process's clients.
    shared: Option<Arc<SharedClients>>,
    cfg: HeartbeatConfig,
    /// Open connections, for `server_status` and the shutdown notice.
    open: BTreeSet<ConnId>,
    next_id: u64,
    status_timer: Option<TimerId>,
    started: Option<Instant>,
    /// Graceful shutdown began: no more pings, input is dropped.
    shutting_down: bool,
    ping_lines: PingLines,
    /// `pong` {timestamp, serverTime}, both holes.
    pong_template: LineTemplate,
}

impl HeartbeatServer {
    /// A server with `cfg`.
    pub fn new(cfg: HeartbeatConfig) -> Self {
        HeartbeatServer {
            shared: None,
            open: BTreeSet::new(),
            next_id: 1,
            status_timer: None,
            started: None,
            shutting_down: false,
            ping_lines: PingLines::new(cfg.lang),
            pong_template: LineTemplate::new(
                &json!({"type": "pong", "timestamp": 0, "serverTime": 0}),
                &["timestamp", "serverTime"],
            )
            // Cannot fail: an object with both fields and no other number.
            .expect("pong template"),
            cfg,
        }
    }

    /// A server that is one worker of several sharing `shared`.
    pub fn with_shared(cfg: HeartbeatConfig, shared: Arc<SharedClients>) -> Self {
        let mut s = HeartbeatServer::new(cfg);
        s.shared = Some(shared);
        s
    }

    /// Connected clients (of the whole process with several workers).
    pub fn client_count(&self) -> usize {
        match &self.shared {
            Some(sh) => sh.connected.load(Ordering::Relaxed),
            None => self.open.len(),
        }
    }

    /// Move `c`'s timer to its next deadline.
    fn arm(cx: &mut Cx<'_, Self>, me: &ClientRef, c: &mut Client) {
        let now = cx.now();
        if let Some(t) = c.timer.take() {
            cx.clear_timer(t);
        }
        let after = c.live.next_deadline().saturating_duration_since(now);
        c.timer = Some(cx.set_timeout(after, HeartbeatTag::Client(me.clone())));
    }

    /// Write one line; pause reading from a client that does not read its
    /// replies, so it cannot grow our memory.
    fn send(r: &mut Reactor, conn: ConnId, line: Bytes) {
        if r.write(conn, line) == Ok(false) {
            r.pause(conn);
        }
    }

    fn client_tick(&mut self, cx: &mut Cx<'_, Self>, me: &ClientRef) {
        if self.shutting_down {
            return; // no pings after the goodbye
        }
        let now = cx.now();
        let mut c = me.0.borrow_mut();
        let c = &mut *c;
        let conn = c.conn;
        c.timer = None;
        while let Some(due) = c.live.poll(now) {
            let urgent = match due {
                Due::Ping => false,
                Due::UrgentPing(n) => {
                    log::debug!("{} silent: urgent ping {n}", c.id);
                    true
                }
                Due::Dead => {
                    log::info!(
                        "{} silent for {:?}: destroying",
                        c.id,
                        now.saturating_duration_since(c.live.last_seen())
                    );
                    c.closing = true;
                    cx.destroy(conn);
                    return;
                }
            };
            send_ping(cx, conn, c, &mut self.ping_lines, urgent, now);
        }
        Self::arm(cx, me, c);
    }

    fn broadcast_status(&mut self, r: &mut Reactor) {
        let uptime = self
            .started
            .map_or(0.0, |s| r.now().saturating_duration_since(s).as_secs_f64());
        let msg = json!({
            "type": "server_status",
            "timestamp": unix_ms(),
            "connectedClients": self.client_count(),
            "uptime": round3(uptime),
            "heartbeatInterval": self.cfg.interval.as_millis() as u64,
            "heartbeatTimeout": self.cfg.timeout.as_millis() as u64,
            // The tutorial's client prints `memory.rss` (Node's
            // `process.memoryUsage()` name): the resident size, nothing more.
            // The loop's figures are on `/metrics` and the command server's
            // `/stats`, not broadcast to every client.
            "memory": {"rss": ProcessMetrics::resident_bytes().unwrap_or(0)},
        });
        let bytes = line(&msg);
        for &id in &self.open {
            if r.is_writable(id) {
                Self::send(r, id, bytes.clone());
            }
        }
    }

    /// Answers one line; true if a reply was written.
    fn handle(&mut self, r: &mut Reactor, conn: ConnId, c: &mut Client, text: &str) -> bool {
        let now = r.now();
        // Any inbound line is liveness, even one we cannot parse.
        c.live.seen(now);
        let msg = match classify_fast(text) {
            Ok(m) => m,
            Err(e) => {
                Self::send(r, conn, error_line(&e.to_string()));
                return true;
            }
        };
        let wall = unix_ms();
        match msg {
            Inbound::Blank => false,
            Inbound::Heartbeat | Inbound::Pong { .. } => {
                c.heartbeat_count += 1;
                c.last_heartbeat_ms = wall;
                // Only a pong can answer one of our pings: a `heartbeat`
                // carrying a timestamp must not fake an RTT.
                if let Inbound::Pong {
                    timestamp: Some(ts),
                } = msg
                {
                    if let Some(rtt) = c.pings.answer(ts, now) {
                        c.rtt = Some(rtt);
                    }
                }
                false
            }
            Inbound::Ping { timestamp } => {
                let wall = Number::from(wall);
                let ts = timestamp.as_ref().unwrap_or(&wall);
                Self::send(r, conn, self.pong_template.render(&[ts, &wall]));
                true
            }
            Inbound::Status => {
                let reply = json!({
                    "type": "status_response",
                    "clientId": c.id,
                    "connectTime": c.connect_ms,
                    "uptime": now.saturating_duration_since(c.connected_at).as_millis() as u64,
                    "lastHeartbeat": c.last_heartbeat_ms,
                    // Milliseconds to 3 decimals, as `server_status`
                    // rounds its `uptime`.
                    "rtt": c.rtt.map(|d| round3(d.as_secs_f64() * 1000.0)),
                    "heartbeatCount": c.heartbeat_count,
                    "missedHeartbeats": c.live.missed(),
                    "isAlive": c.live.is_alive(),
                });
                Self::send(r, conn, line(&reply));
                true
            }
            Inbound::Other(msg) => {
                let reply =
                    json!({"type": "echo", "original": Value::Object(msg), "timestamp": wall});
                Self::send(r, conn, line(&reply));
                true
            }
        }
    }

    /// A reply to `conn` is queued: send the ping that is almost due with it
    /// (same `writev`), if there is one, and move the client's timer to its
    /// new deadline. (Left where it was, the timer would fire once a round
    /// for nothing and re-arm: a wheel removal plus a callback per client and
    /// round, against one cancel here.)
    fn ride_along(&mut self, cx: &mut Cx<'_, Self>, me: &ClientRef, c: &mut Client) {
        if c.closing || self.shutting_down {
            return;
        }
        let now = cx.now();
        let before = c.live.next_deadline();
        if c.live.ride_along(now) {
            send_ping(cx, c.conn, c, &mut self.ping_lines, false, now);
        }
        if c.live.next_deadline() != before {
            Self::arm(cx, me, c);
        }
    }
}

/// Sends `c` a ping stamped with the wall clock and remembers it for the RTT.
fn send_ping(
    r: &mut Reactor,
    conn: ConnId,
    c: &mut Client,
    lines: &mut PingLines,
    urgent: bool,
    now: Instant,
) {
    let ts = unix_ms();
    c.pings.issue(ts, now);
    HeartbeatServer::send(r, conn, lines.line(ts, urgent));
}

fn error_line(text: &str) -> Bytes {
    line(&error_message(text))
}

impl Service for HeartbeatServer {
    type Conn = HeartbeatConn;
    type Tag = HeartbeatTag;
    type Message = ();

    fn name(&self) -> &'static str {
        "heartbeat"
    }

    fn on_listening(&mut self, cx: &mut Cx<'_, Self>, _: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "heartbeat server listening on {addr} (interval {:?}, timeout {:?})",
            self.cfg.interval,
            self.cfg.timeout
        );
        self.started.get_or_insert(cx.now());
        if self.status_timer.is_none() && !self.cfg.status_interval.is_zero() {
            self.status_timer =
                Some(cx.set_interval(self.cfg.status_interval, HeartbeatTag::Status));
        }
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _: ServerId,
        conn: ConnId,
    ) -> Option<HeartbeatConn> {
        let seq = match &self.shared {
            Some(sh) => {
                sh.connected.fetch_add(1, Ordering::Relaxed);
                sh.next_id.fetch_add(1, Ordering::Relaxed) + 1
            }
            None => {
                self.next_id += 1;
                self.next_id - 1
            }
        };
        let id = format!("client-{seq}");
        let now = cx.now();
        let welcome = json!({
            "type": "welcome",
            "message": Catalog::new(self.cfg.lang).heartbeat_welcome(),
            "clientId": id,
            "heartbeatInterval": self.cfg.interval.as_millis() as u64,
        });
        let wall = unix_ms();
        let client = ClientRef(Rc::new(RefCell::new(Client {
            conn,
            id,
            live: Liveness::new(
                now,
                self.cfg.interval,
                self.cfg.timeout,
                stable_offset(seq, self.cfg.interval),
            ),
            pings: IssuedPings::default(),
            rtt: None,
            connect_ms: wall,
            connected_at: now,
            last_heartbeat_ms: wall,
            heartbeat_count: 0,
            timer: None,
            closing: false,
        })));
        self.open.insert(conn);
        Self::send(cx, conn, line(&welcome));
        Self::arm(cx, &client, &mut client.0.borrow_mut());
        Some(HeartbeatConn {
            framed: Framed::new(LineDecoder::new(self.cfg.max_line)),
            client,
        })
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut HeartbeatConn,
        data: &mut BytesMut,
    ) {
        let HeartbeatConn { framed, client } = st;
        let mut c = client.0.borrow_mut();
        let c = &mut *c;
        if c.closing || self.shutting_down {
            data.clear();
            return;
        }
        // Corked around the session's own cork: the replies to a pipelined
        // batch, and the ping that rides along with them (below), leave in
        // one writev, not one write() each.
        cx.cork(conn);
        let mut replied = false;
        let lang = self.cfg.lang;
        framed.decode_all(cx, conn, data, |cx, item| match item {
            Ok(text) => {
                replied |= self.handle(cx, conn, c, &text);
                Flow::Continue
            }
            Err(LineError::InvalidUtf8) => {
                replied = true;
                c.live.seen(cx.now());
                Self::send(cx, conn, error_line(Catalog::new(lang).line_not_utf8()));
                Flow::Continue
            }
            Err(e) => {
                c.closing = true;
                let _ = cx.write(conn, error_line(&e.to_string()));
                let _ = cx.end(conn);
                Flow::Stop
            }
        });
        if c.closing {
            data.clear();
            cx.uncork(conn);
            return;
        }
        // Paused: the rest is delivered again at resume, and answered then.
        if replied && !cx.is_paused(conn) {
            self.ride_along(cx, client, c);
        }
        cx.uncork(conn);
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut HeartbeatConn) {
        cx.resume(conn);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: TimerId, tag: HeartbeatTag) {
        match tag {
            HeartbeatTag::Status => self.broadcast_status(cx),
            HeartbeatTag::Client(me) => self.client_tick(cx, &me),
        }
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut HeartbeatConn) {
        // The heartbeat already bounds silence; an explicit --idle-timeout
        // closes at once.
        cx.destroy(conn);
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(t) = self.status_timer.take() {
            cx.clear_timer(t);
        }
        // From now on the clients' timers do nothing and input is dropped
        // (each timer is cleared when its connection closes).
        self.shutting_down = true;
        let bye = line(
            &json!({"type": "server_shutdown", "message": Catalog::new(self.cfg.lang).heartbeat_shutdown(), "timestamp": unix_ms()}),
        );
        for &id in &self.open {
            if cx.is_writable(id) {
                let _ = cx.write(id, bye.clone());
            }
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: HeartbeatConn, _: bool) {
        if self.open.remove(&conn) {
            if let Some(sh) = &self.shared {
                sh.connected.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let timer = st.client.0.borrow_mut().timer.take();
        if let Some(t) = timer {
            cx.clear_timer(t);
        }
    }
}
