//! `netloop heartbeat HOST:PORT`: the heartbeat client (the tutorial's
//! `10-heartbeat-client.js`, with its defects fixed; see docs/TUTORIAL-DEFECTS.md).
//!
//! * Adopts the `heartbeatInterval` the server announces in `welcome` and
//!   restarts its ping timer with it (the tutorial stored it and kept the
//!   old timer). Values are clamped to [`crate::protocol::heartbeat::MIN_INTERVAL_MS`] ..
//!   [`crate::protocol::heartbeat::MAX_INTERVAL_MS`].
//! * Answers server pings with `pong` {timestamp (the server's), clientTime};
//!   sends its own `ping` every interval and measures RTT only against the
//!   timestamps it issued ([`crate::protocol::heartbeat::rtt`]; the tutorial turned a pong without
//!   a timestamp into an RTT of ~1.8·10¹² ms): average of the last 20,
//!   min, max.
//! * Lines are framed by [`LineDecoder`] (the tutorial split each read on
//!   `\n`, so a line cut across two reads was lost).
//! * A server silent for [`SILENT_INTERVALS`] intervals is treated as dead:
//!   the socket is destroyed and the reconnect logic runs (the tutorial never
//!   checked that pongs came back).
//! * Reconnects once per failure, from `close` only (the tutorial reconnected
//!   from both `close` and `error`, two attempts per failure), after a
//!   [`Backoff`] delay with jitter ([`Reconnect`], shared with `netloop connect`); at most `--max-reconnects` in a row; never
//!   after `server_shutdown`. A pending reconnect is a stored timer, so
//!   quitting cancels it.
//! * `--duration S` prints the statistics and exits after S; otherwise stdin
//!   takes `status` (asks the server), `stats` (prints ours) and `quit`.
//!   SIGINT/SIGTERM print the statistics and exit.
//!
//! * With a token (`--token FILE` or `NETLOOP_TOKEN`) the first line on each
//!   connection is `{type:"auth", token}`; a refusal (with or without a
//!   token) is one line on stderr, no reconnect, and exit status 1.
//!
//! Output goes to stdout, one event per line.

use crate::clients::auth::{classify_json, json_request, AuthReply};
use crate::clients::backoff::{Backoff, BackoffConfig};
use crate::clients::reconnect::Reconnect;
use crate::clients::stdin_lines::StdinEvent;
use crate::codec::{parse_message, LineDecoder, DEFAULT_MAX_LINE};
use crate::protocol::auth::Token;
use crate::protocol::heartbeat::rtt::{IssuedPings, RttStats};
use crate::protocol::heartbeat::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use crate::protocol::json_reply::json_line;
use crate::protocol::target::host_port;
use crate::protocol::text::print_line as out;
use crate::protocol::text::sanitize;
use crate::protocol::wall_clock::unix_ms;
use crate::reactor::Reactor;
use crate::{ConnId, ConnectOptions, Cx, NetError, Service, TimerId};
use bytes::BytesMut;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A server silent for this many intervals is dead.
pub const SILENT_INTERVALS: u32 = 3;
/// Default ping interval until the server announces its own (the seed's 30 s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default first reconnect delay.
pub const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Default reconnects in a row (the seed's 5).
pub const DEFAULT_MAX_RECONNECTS: u32 = 5;
/// Longest reconnect delay: a heartbeat client may wait out a server restart.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);
/// Shortest first reconnect delay, so `--reconnect-delay 0` cannot spin.
pub const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(1);

/// The client's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    /// Our next ping (an interval).
    Ping,
    /// Check whether the server has been silent too long.
    Watchdog,
    /// The reconnect backoff expired: connect again.
    Reconnect,
    /// `--duration` is over: print the statistics and quit.
    Duration,
    /// After `quit`, the server did not close within [`QUIT_GRACE`].
    ForceClose,
}

/// After `quit`, the server has this long to close before we destroy.
pub const QUIT_GRACE: Duration = Duration::from_secs(1);

/// Settings of the heartbeat client.
#[derive(Clone, Debug)]
pub struct HeartbeatClientConfig {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Ping interval until the server's `welcome` says otherwise.
    pub interval: Duration,
    /// First reconnect delay (doubles per failure, with jitter).
    pub reconnect_delay: Duration,
    /// Reconnects in a row before giving up (0 = never reconnect).
    pub max_reconnects: u32,
    /// Print the statistics and exit after this long.
    pub duration: Option<Duration>,
    /// Longest accepted line.
    pub max_line: usize,
    /// The token to authenticate with, if any.
    pub token: Option<Token>,
    /// TLS, if any.
    pub tls: Option<crate::reactor::tls::ClientTls>,
}

impl HeartbeatClientConfig {
    /// Defaults for `host:port`.
    pub fn new(host: &str, port: u16) -> Self {
        HeartbeatClientConfig {
            host: host.to_string(),
            port,
            interval: DEFAULT_INTERVAL,
            reconnect_delay: DEFAULT_RECONNECT_DELAY,
            max_reconnects: DEFAULT_MAX_RECONNECTS,
            duration: None,
            max_line: DEFAULT_MAX_LINE,
            token: None,
            tls: None,
        }
    }
}

/// The reconnect backoff of `cfg`: from `reconnect_delay` (at least
/// [`MIN_RECONNECT_DELAY`]) doubling up to [`MAX_RECONNECT_DELAY`], at most
/// `max_reconnects` in a row (0 = never reconnect).
pub fn backoff_config(cfg: &HeartbeatClientConfig) -> BackoffConfig {
    let base = cfg.reconnect_delay.max(MIN_RECONNECT_DELAY);
    BackoffConfig {
        base,
        cap: MAX_RECONNECT_DELAY.max(base),
        max_attempts: cfg.max_reconnects,
    }
}

/// The client's counters.
#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    /// Our pings sent.
    pub pings_sent: u64,
    /// Server pings answered.
    pub pings_received: u64,
    /// Connections established.
    pub connects: u64,
    /// Reconnect attempts started.
    pub reconnects: u64,
    /// RTT samples.
    pub rtt: RttStats,
}

/// The connection's state: its line decoder and where authentication is.
///
/// The decode loop is written out rather than run by
/// [`crate::framed::Framed`]: `Framed` stops (and drops the rest) once the
/// connection no longer accepts writes, but after `quit` ends our side this
/// client still reads what the server sends until it closes.
#[derive(Debug)]
pub struct Session {
    decoder: LineDecoder,
    /// The token was sent on this connection and not yet accepted.
    awaiting_auth: bool,
}

/// What [`run`] reads once the loop has returned.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The counters.
    pub stats: ClientStats,
    /// Authentication was refused: exit 1.
    pub auth_failed: bool,
}

/// The heartbeat client service.
#[derive(Debug)]
pub struct HeartbeatClient {
    cfg: HeartbeatClientConfig,
    /// The current connection, for the timers and the stdin commands (they
    /// have no connection callback to borrow it from).
    conn: Option<ConnId>,
    interval: Duration,
    ping_timer: Option<TimerId>,
    watchdog: Option<TimerId>,
    last_rx: Instant,
    pings: IssuedPings,
    reconnect: Reconnect,
    auto_reconnect: bool,
    done: bool,
    /// Read stdin commands (no `--duration`).
    with_stdin: bool,
    /// Counters and the authentication verdict, shared with [`run`].
    outcome: Rc<RefCell<Outcome>>,
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}ms", d.as_secs_f64() * 1000.0))
}

impl HeartbeatClient {
    /// A client for `cfg`; call [`HeartbeatClient::start`] on a loop.
    pub fn new(cfg: HeartbeatClientConfig) -> Self {
        let seed = unix_ms() ^ (u64::from(std::process::id()) << 32);
        HeartbeatClient {
            with_stdin: cfg.duration.is_none(),
            interval: cfg.interval,
            reconnect: Reconnect::new(Backoff::new(backoff_config(&cfg), seed)),
            cfg,
            conn: None,
            ping_timer: None,
            watchdog: None,
            last_rx: Instant::now(),
            pings: IssuedPings::default(),
            auto_reconnect: true,
            done: false,
            outcome: Rc::default(),
        }
    }

    /// Add the client to `r`: it arms the `--duration` timer, connects and
    /// (without `--duration`) starts its stdin reader. The returned outcome
    /// is final once the loop has returned.
    pub fn start(self, r: &mut Reactor) -> Rc<RefCell<Outcome>> {
        let outcome = self.outcome.clone();
        r.add_service(self);
        outcome
    }

    fn connect(&mut self, cx: &mut Cx<'_, Self>) {
        out(&format!(
            "connecting to {}",
            host_port(&self.cfg.host, self.cfg.port)
        ));
        let session = Session {
            decoder: LineDecoder::new(self.cfg.max_line),
            awaiting_auth: false,
        };
        let (host, port) = (self.cfg.host.clone(), self.cfg.port);
        let opts = ConnectOptions {
            tls: self.cfg.tls.clone(),
            ..ConnectOptions::default()
        };
        self.conn = Some(cx.connect(&host, port, opts, session));
    }

    fn send(&mut self, r: &mut Reactor, msg: &Value) {
        let Some(conn) = self.conn else { return };
        let _ = r.write(conn, json_line(msg));
    }

    fn send_ping(&mut self, r: &mut Reactor) {
        let ts = unix_ms();
        self.pings.issue(ts, r.now());
        self.outcome.borrow_mut().stats.pings_sent += 1;
        self.send(
            r,
            &json!({"type": "ping", "timestamp": ts, "message": "client ping"}),
        );
    }

    fn restart_ping_timer(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(t) = self.ping_timer.take() {
            cx.clear_timer(t);
        }
        self.ping_timer = Some(cx.set_interval(self.interval, Tag::Ping));
    }

    fn arm_watchdog(&mut self, cx: &mut Cx<'_, Self>, after: Duration) {
        if let Some(t) = self.watchdog.take() {
            cx.clear_timer(t);
        }
        self.watchdog = Some(cx.set_timeout(after, Tag::Watchdog));
    }

    fn stop_timers(&mut self, cx: &mut Cx<'_, Self>) {
        for t in [self.ping_timer.take(), self.watchdog.take()]
            .into_iter()
            .flatten()
        {
            cx.clear_timer(t);
        }
    }

    /// Print the statistics.
    pub fn print_stats(&self) {
        let o = self.outcome.borrow();
        let s = &o.stats;
        out(&format!(
            "stats: pings sent {}, server pings {}, connects {}, reconnects {}, rtt avg {} min {} max {} ({} samples)",
            s.pings_sent,
            s.pings_received,
            s.connects,
            s.reconnects,
            ms(s.rtt.average()),
            ms(s.rtt.min()),
            ms(s.rtt.max()),
            s.rtt.count()
        ));
    }

    /// Print the statistics and cancel every timer and any reconnect: the
    /// part `quit` and a signal share.
    fn wind_down(&mut self, cx: &mut Cx<'_, Self>) {
        self.print_stats();
        self.done = true;
        self.auto_reconnect = false;
        self.stop_timers(cx);
        self.reconnect.cancel(cx);
    }

    /// Stop for good: no reconnect, end the connection, leave the loop.
    fn quit(&mut self, cx: &mut Cx<'_, Self>) {
        self.wind_down(cx);
        match self.conn {
            Some(c) => {
                let _ = cx.end(c);
                cx.set_timeout(QUIT_GRACE, Tag::ForceClose);
            }
            None => cx.stop(),
        }
    }

    fn handle(
        &mut self,
        cx: &mut Cx<'_, Self>,
        st: &mut Session,
        msg: Map<String, Value>,
        kind: &str,
    ) {
        let now = cx.now();
        match classify_json(&msg) {
            AuthReply::Refused(why) => {
                eprintln!("error: authentication failed: {}", sanitize(&why));
                self.outcome.borrow_mut().auth_failed = true;
                self.auto_reconnect = false;
                if let Some(c) = self.conn {
                    cx.destroy(c);
                }
                return;
            }
            AuthReply::Accepted if st.awaiting_auth => {
                st.awaiting_auth = false;
                out("authenticated");
                return;
            }
            _ if st.awaiting_auth => {
                // A guarded server answers the token first: this one has no
                // access control (its answer to the auth line is printed).
                st.awaiting_auth = false;
                out("note: the server did not ask for a token");
            }
            _ => {}
        }
        match kind {
            "welcome" => {
                self.reconnect.connected();
                let announced = msg.get("heartbeatInterval").and_then(Value::as_u64);
                if let Some(v) = announced {
                    let v = v.clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS);
                    self.interval = Duration::from_millis(v);
                    self.restart_ping_timer(cx);
                    self.arm_watchdog(cx, self.interval * SILENT_INTERVALS);
                }
                out(&format!(
                    "welcome: {} heartbeat interval {}ms",
                    msg.get("clientId").and_then(Value::as_str).unwrap_or("?"),
                    self.interval.as_millis()
                ));
            }
            "ping" => {
                self.outcome.borrow_mut().stats.pings_received += 1;
                let ts = msg.get("timestamp").cloned().unwrap_or(Value::Null);
                let urgent = msg.get("urgent").and_then(Value::as_bool) == Some(true);
                if urgent {
                    out("server ping (urgent)");
                }
                self.send(
                    cx,
                    &json!({"type": "pong", "timestamp": ts, "clientTime": unix_ms()}),
                );
            }
            "pong" => {
                let rtt = msg
                    .get("timestamp")
                    .and_then(Value::as_u64)
                    .and_then(|ts| self.pings.answer(ts, now));
                if let Some(rtt) = rtt {
                    self.outcome.borrow_mut().stats.rtt.record(rtt);
                }
            }
            "server_shutdown" => {
                out(&format!(
                    "server shutting down: {}",
                    msg.get("message").and_then(Value::as_str).unwrap_or("")
                ));
                self.auto_reconnect = false;
            }
            _ => out(&format!("< {}", Value::Object(msg))),
        }
    }
}

impl Service for HeartbeatClient {
    type Conn = Session;
    type Tag = Tag;
    type Message = StdinEvent;

    /// Arm `--duration`, connect, start the stdin reader. The connect is
    /// made here rather than through `Reactor::connect_with`: the timers and
    /// stdin commands need the connection's id from the start (a `quit`
    /// before the connect completes still ends it), and the reader needs
    /// this service's `Remote`, which only a callback can give.
    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(d) = self.cfg.duration {
            cx.set_timeout(d, Tag::Duration);
        }
        self.connect(cx);
        if self.with_stdin && !crate::clients::stdin_lines::spawn(cx.remote()) {
            eprintln!("cannot start the stdin reader");
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, _c: ConnId, st: &mut Session) {
        out("connected");
        if let Some(t) = self.cfg.token.clone() {
            st.awaiting_auth = true;
            self.send(cx, &json_request(&t));
        }
        self.outcome.borrow_mut().stats.connects += 1;
        self.last_rx = cx.now();
        self.restart_ping_timer(cx);
        self.arm_watchdog(cx, self.interval * SILENT_INTERVALS);
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Session,
        data: &mut BytesMut,
    ) {
        self.last_rx = cx.now();
        loop {
            match st.decoder.decode(data) {
                Ok(Some(line)) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match parse_message(line.as_bytes()) {
                        Ok((kind, msg)) => self.handle(cx, st, msg, &kind),
                        Err(e) => out(&format!("bad line from server: {e}")),
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    out(&format!("bad data from server: {e}"));
                    data.clear();
                    cx.destroy(conn);
                    return;
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Tag) {
        match tag {
            Tag::Ping => self.send_ping(cx),
            Tag::Watchdog => {
                self.watchdog = None;
                let limit = self.interval * SILENT_INTERVALS;
                let silent = cx.now().saturating_duration_since(self.last_rx);
                if silent >= limit {
                    out(&format!(
                        "server silent for {}ms: reconnecting",
                        silent.as_millis()
                    ));
                    if let Some(c) = self.conn {
                        cx.destroy(c);
                    }
                } else {
                    self.arm_watchdog(cx, limit - silent);
                }
            }
            Tag::Reconnect => {
                self.reconnect.fired();
                if !self.done {
                    self.connect(cx);
                }
            }
            Tag::Duration => self.quit(cx),
            Tag::ForceClose => {
                if let Some(c) = self.conn {
                    cx.destroy(c);
                }
                cx.stop();
            }
        }
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, ev: StdinEvent) {
        match ev {
            StdinEvent::Line(l) => match l.trim() {
                "status" => self.send(cx, &json!({"type": "status"})),
                "stats" => self.print_stats(),
                "quit" => self.quit(cx),
                "" => {}
                other => out(&format!("unknown command '{other}' (status, stats, quit)")),
            },
            // Without input the client keeps running (until SIGINT).
            StdinEvent::Eof => {}
        }
    }

    fn on_error(&mut self, _cx: &mut Cx<'_, Self>, _c: ConnId, _st: &mut Session, err: &NetError) {
        out(&format!("connection error: {err}"));
        if err.code == crate::ErrorCode::Tls {
            // A certificate or protocol failure: retrying cannot change it.
            out("not reconnecting: the TLS handshake failed");
            self.auto_reconnect = false;
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _c: ConnId, _st: Session, _had_error: bool) {
        out("connection closed");
        self.conn = None;
        self.stop_timers(cx);
        self.pings = IssuedPings::default();
        if self.done || !self.auto_reconnect {
            cx.stop();
            return;
        }
        // One reconnect per failure: only `close` schedules it (not `error`
        // too, which doubled the tutorial's attempts).
        match self.reconnect.schedule(cx, Tag::Reconnect) {
            Some(d) => {
                self.outcome.borrow_mut().stats.reconnects += 1;
                out(&format!(
                    "reconnect {}/{} in {}ms",
                    self.reconnect.attempts(),
                    self.reconnect.max_attempts(),
                    d.as_millis()
                ));
            }
            None => {
                out("giving up");
                cx.stop();
            }
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        self.wind_down(cx);
    }
}

/// Run the client until it quits or gives up.
pub fn run(cfg: HeartbeatClientConfig) -> ExitCode {
    let mut r = match crate::clients::new_loop(crate::clients::Signals::Handled) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let outcome = HeartbeatClient::new(cfg).start(&mut r);
    let res = crate::clients::run_loop(&mut r);
    let o = outcome.borrow();
    match res {
        Ok(_) if o.stats.connects > 0 && !o.auth_failed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_config_clamps_the_first_delay_and_caps_at_30s() {
        let mut cfg = HeartbeatClientConfig::new("127.0.0.1", 1);
        cfg.reconnect_delay = Duration::ZERO;
        cfg.max_reconnects = 0;
        let b = backoff_config(&cfg);
        assert_eq!(b.base, MIN_RECONNECT_DELAY);
        assert_eq!(b.cap, MAX_RECONNECT_DELAY);
        assert_eq!(b.max_attempts, 0, "0 = never reconnect");
        cfg.reconnect_delay = Duration::from_secs(60);
        assert_eq!(backoff_config(&cfg).cap, Duration::from_secs(60));
    }

    #[test]
    fn zero_reconnects_never_reconnects_and_seeds_differ() {
        let mut cfg = HeartbeatClientConfig::new("127.0.0.1", 1);
        cfg.max_reconnects = 0;
        let now = Instant::now();
        assert_eq!(Backoff::new(backoff_config(&cfg), 7).on_failure(now), None);
        cfg.max_reconnects = 5;
        let first = |seed| Backoff::new(backoff_config(&cfg), seed).on_failure(now);
        assert_ne!(first(1), first(2));
    }
}
