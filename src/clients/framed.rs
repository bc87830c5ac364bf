//! `netloop framed HOST:PORT`: the client of the framed JSON server (the
//! tutorial's `06-stream-framing.js` client).
//!
//! Connects, sends a `ping` at once and every `--ping-interval` (30 s by
//! default) while connected, and turns stdin lines into messages:
//!
//! | stdin | sent |
//! |---|---|
//! | `ping [TEXT]` | `{type:"ping", message, timestamp}` |
//! | `echo TEXT` | `{type:"echo", data}` |
//! | `broadcast TEXT` | `{type:"broadcast", data}` |
//! | `raw JSON` | the JSON value as it is (any value, to probe the server) |
//! | `quit`, or end of input | half-close: the replies still in flight are printed, then the server's FIN ends the program |
//!
//! Every message that arrives is printed on stdout as `< ` followed by its
//! compact JSON. Input works piped: the socket is half-open (we keep reading
//! after our FIN), so `echo ping | netloop framed ...` prints the replies
//! before it exits, without a fixed wait (the seed runner slept 300 ms).
//!
//! With a token (`--token FILE` or `NETLOOP_TOKEN`) the first frame is
//! `{type:"auth", token}`, and the pings start once `auth_ok` arrives. An
//! authentication refusal (with or without a token) is one line on stderr,
//! the connection is closed, and the exit status is 1.
//!
//! The ping timer is cleared on every close path (the tutorial's client cleared
//! it only in `disconnect()`, so its interval kept the process alive after the
//! server went away). A frame over `--max-frame` or a body that is not a JSON
//! object is reported, never fatal (the tutorial's client, like its server,
//! threw on reading `.type` of a `null` body). See docs/TUTORIAL-DEFECTS.md.

use crate::clients::auth::{classify_json, json_request, AuthReply};
use crate::clients::stdin_lines::StdinEvent;
use crate::codec::{encode_frame, parse_message, FrameDecoder, DEFAULT_MAX_FRAME};
use crate::protocol::auth::Token;
use crate::protocol::target::host_port;
use crate::protocol::text::sanitize;
use crate::protocol::text::{eprint_line, print_line as out};
use crate::protocol::wall_clock::unix_ms;
use crate::{ConnId, ConnectOptions, Cx, NetError, Service, SocketOptions, TimerId};
use bytes::BytesMut;
use serde_json::{json, Value};
use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

/// Default interval of the client's pings (the seed's 30 s).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Settings of the framed client.
#[derive(Clone, Debug)]
pub struct FramedClientConfig {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Interval of the automatic pings (0 = off).
    pub ping_interval: Duration,
    /// Largest frame accepted and sent.
    pub max_frame: usize,
    /// The token to authenticate with, if any.
    pub token: Option<Token>,
    /// TLS, if any.
    pub tls: Option<crate::reactor::tls::ClientTls>,
}

impl FramedClientConfig {
    /// Defaults for `host:port`.
    pub fn new(host: &str, port: u16) -> Self {
        FramedClientConfig {
            host: host.to_string(),
            port,
            ping_interval: DEFAULT_PING_INTERVAL,
            max_frame: DEFAULT_MAX_FRAME,
            token: None,
            tls: None,
        }
    }
}

/// Where the client is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    /// We sent FIN; waiting for the server's.
    Ending,
    Closed,
}

/// The client's one timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    /// The interval of the automatic pings.
    Ping,
}

/// The connection's state: its frame decoder and where authentication is.
///
/// The decode loop is written out rather than run by
/// [`crate::framed::Framed`]: `Framed` stops (and drops the rest) once the
/// connection no longer accepts writes, but this client keeps reading and
/// printing the server's replies after its own FIN (`quit`, end of input).
#[derive(Debug)]
pub struct Session {
    decoder: FrameDecoder,
    /// The token was sent and `auth_ok` has not arrived yet.
    awaiting_auth: bool,
}

/// The client service.
#[derive(Debug)]
pub struct FramedClient {
    cfg: FramedClientConfig,
    /// The one connection, for the stdin commands (they have no connection
    /// callback to borrow it from).
    conn: Option<ConnId>,
    ping_timer: Option<TimerId>,
    phase: Phase,
    /// Set when the session fails (read by [`run`] after the loop).
    failed: Rc<Cell<bool>>,
}

impl FramedClient {
    /// A client for `cfg`; [`FramedClient::start`] puts it on a loop.
    pub fn new(cfg: FramedClientConfig) -> Self {
        FramedClient {
            cfg,
            conn: None,
            ping_timer: None,
            phase: Phase::Connecting,
            failed: Rc::new(Cell::new(false)),
        }
    }

    /// Add the client to `r`: it connects and starts its stdin reader.
    /// The returned flag says, once the loop has run, whether the session
    /// failed (connect error, reset, bad frame, refused authentication, no
    /// stdin reader).
    pub fn start(self, r: &mut crate::Reactor) -> Rc<Cell<bool>> {
        let failed = self.failed.clone();
        r.add_service(self);
        failed
    }

    fn send(&mut self, cx: &mut Cx<'_, Self>, msg: &Value) {
        let Some(conn) = self.conn else { return };
        if self.phase == Phase::Ending || self.phase == Phase::Closed {
            return;
        }
        let body = serde_json::to_vec(msg).unwrap_or_default();
        match encode_frame(&body, self.cfg.max_frame) {
            // The client sends little; its queue is bounded by the hard cap.
            Ok(frame) => {
                let _ = cx.write(conn, frame);
            }
            Err(e) => eprintln!("not sent: {e}"),
        }
    }

    fn command(&mut self, cx: &mut Cx<'_, Self>, line: &str) {
        let line = line.trim();
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match cmd {
            "" => {}
            "ping" => {
                let text = if rest.is_empty() { "manual ping" } else { rest };
                self.send(
                    cx,
                    &json!({"type": "ping", "message": text, "timestamp": unix_ms()}),
                );
            }
            "echo" => self.send(cx, &json!({"type": "echo", "data": rest})),
            "broadcast" => self.send(cx, &json!({"type": "broadcast", "data": rest})),
            "raw" => match serde_json::from_str::<Value>(rest) {
                Ok(v) => self.send(cx, &v),
                Err(e) => eprintln!("bad JSON: {e}"),
            },
            "quit" => self.finish(cx),
            other => eprintln!(
                "unknown command '{other}' (ping [TEXT], echo TEXT, broadcast TEXT, raw JSON, quit)"
            ),
        }
    }

    /// The first ping, and the ping timer.
    fn start_pings(&mut self, cx: &mut Cx<'_, Self>) {
        self.send_hello(cx);
        self.arm_pings(cx);
    }

    /// The session's first ping.
    fn send_hello(&mut self, cx: &mut Cx<'_, Self>) {
        self.send(
            cx,
            &json!({"type": "ping", "message": "Hello Server", "timestamp": unix_ms()}),
        );
    }

    /// The ping timer, once the connection is open.
    fn arm_pings(&mut self, cx: &mut Cx<'_, Self>) {
        if !self.cfg.ping_interval.is_zero() && self.phase == Phase::Open {
            self.ping_timer = Some(cx.set_interval(self.cfg.ping_interval, Tag::Ping));
        }
    }

    /// A message from the server: printed, and an authentication answer
    /// acted on. `false`: the connection was closed (a refusal).
    fn server_message(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Session,
        map: serde_json::Map<String, Value>,
    ) -> bool {
        match classify_json(&map) {
            AuthReply::Refused(why) => {
                eprintln!("error: authentication failed: {}", sanitize(&why));
                self.failed.set(true);
                cx.destroy(conn);
                false
            }
            reply => {
                if st.awaiting_auth {
                    // auth_ok, or a welcome from a server without access
                    // control (it will answer the auth frame with an error,
                    // printed like any message): the session starts.
                    if reply != AuthReply::Accepted {
                        eprintln!("note: the server did not ask for a token");
                    }
                    st.awaiting_auth = false;
                    self.start_pings(cx);
                }
                out(&format!("< {}", Value::Object(map)));
                true
            }
        }
    }

    /// Half-close: the server answers what it got, then closes.
    fn finish(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(t) = self.ping_timer.take() {
            cx.clear_timer(t);
        }
        if matches!(self.phase, Phase::Connecting | Phase::Open) {
            if let Some(conn) = self.conn {
                let _ = cx.end(conn);
            }
            self.phase = Phase::Ending;
        }
    }
}

impl Service for FramedClient {
    type Conn = Session;
    type Tag = Tag;
    type Message = StdinEvent;

    /// Start the stdin reader, then connect. Both happen here rather than
    /// through `Reactor::connect_with`: the stdin commands need the
    /// connection's id (a `quit` before the connect completes still ends
    /// it), and the reader needs this service's `Remote`, which only a
    /// callback can give.
    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        if !crate::clients::stdin_lines::spawn(cx.remote()) {
            eprintln!("cannot start the stdin reader");
            self.failed.set(true);
            cx.stop();
            return;
        }
        let opts = ConnectOptions {
            socket: SocketOptions {
                allow_half_open: true,
                ..SocketOptions::default()
            },
            tls: self.cfg.tls.clone(),
            ..ConnectOptions::default()
        };
        let session = Session {
            decoder: FrameDecoder::new(self.cfg.max_frame),
            awaiting_auth: self.cfg.token.is_some(),
        };
        let (host, port) = (self.cfg.host.clone(), self.cfg.port);
        self.conn = Some(cx.connect(&host, port, opts, session));
        // The session's first frame (the auth frame, or the first ping) is
        // queued now, ahead of anything: stdin lines (and their end) can
        // arrive before the connect completes, and what they queue must
        // not reach the server first.
        match self.cfg.token.clone() {
            Some(t) => self.send(cx, &json_request(&t)),
            None => self.send_hello(cx),
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, _c: ConnId, st: &mut Session) {
        out(&format!(
            "connected to {}",
            host_port(&self.cfg.host, self.cfg.port)
        ));
        if self.phase == Phase::Connecting {
            self.phase = Phase::Open;
        }
        if st.awaiting_auth {
            return; // the auth frame went first; the pings start on auth_ok
        }
        self.arm_pings(cx); // the first ping went with the connect
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Session,
        data: &mut BytesMut,
    ) {
        loop {
            match st.decoder.decode(data) {
                Ok(Some(body)) => match parse_message(&body) {
                    Ok((_, map)) => {
                        if !self.server_message(cx, conn, st, map) {
                            data.clear();
                            return;
                        }
                    }
                    Err(e) => eprint_line(&format!("bad message from server: {e}")),
                },
                Ok(None) => return,
                Err(e) => {
                    eprint_line(&format!("server sent a bad frame: {e}"));
                    self.failed.set(true);
                    data.clear();
                    cx.destroy(conn);
                    return;
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Tag) {
        match tag {
            Tag::Ping => self.send(
                cx,
                &json!({"type": "ping", "message": "heartbeat", "timestamp": unix_ms()}),
            ),
        }
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, ev: StdinEvent) {
        match ev {
            StdinEvent::Line(line) => self.command(cx, &line),
            StdinEvent::Eof => self.finish(cx),
        }
    }

    fn on_error(&mut self, _cx: &mut Cx<'_, Self>, _c: ConnId, _st: &mut Session, err: &NetError) {
        eprintln!("connection error: {err}");
        self.failed.set(true);
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _c: ConnId, _st: Session, _had_error: bool) {
        if let Some(t) = self.ping_timer.take() {
            cx.clear_timer(t);
        }
        self.conn = None;
        self.phase = Phase::Closed;
        out("connection closed");
        cx.stop();
    }
}

/// Run the client until the connection closes.
pub fn run(cfg: FramedClientConfig) -> ExitCode {
    let mut r = match crate::clients::new_loop(crate::clients::Signals::Default) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let failed = FramedClient::new(cfg).start(&mut r);
    match crate::clients::run_loop(&mut r) {
        Ok(_) if !failed.get() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}
