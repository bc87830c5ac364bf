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

use crate::apps::auth::Token;
use crate::apps::stdin_lines::{self, StdinEvent};
use crate::apps::text::sanitize;
use crate::apps::text::{eprint_line, print_line as out};
use crate::apps::wall_clock::unix_ms;
use crate::cli::target::host_port;
use crate::client::auth::{classify_json, json_request, AuthReply};
use crate::codec::{encode_frame, parse_message, FrameDecoder, DEFAULT_MAX_FRAME};
use crate::reactor::{Handler, Reactor};
use crate::{ConnId, ConnectOptions, NetError, SocketOptions, TimerId};
use bytes::BytesMut;
use serde_json::{json, Value};
use std::any::Any;
use std::process::ExitCode;
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

/// The client handler.
#[derive(Debug)]
pub struct FramedClient {
    cfg: FramedClientConfig,
    conn: Option<ConnId>,
    decoder: FrameDecoder,
    ping_timer: Option<TimerId>,
    phase: Phase,
    failed: bool,
    /// The token was sent and `auth_ok` has not arrived yet.
    awaiting_auth: bool,
}

impl FramedClient {
    /// A client for `cfg`; call [`FramedClient::start`] on a loop.
    pub fn new(cfg: FramedClientConfig) -> Self {
        let decoder = FrameDecoder::new(cfg.max_frame);
        FramedClient {
            cfg,
            conn: None,
            decoder,
            ping_timer: None,
            phase: Phase::Connecting,
            failed: false,
            awaiting_auth: false,
        }
    }

    /// Start connecting.
    pub fn start(&mut self, r: &mut Reactor) {
        let opts = ConnectOptions {
            socket: SocketOptions {
                allow_half_open: true,
                ..SocketOptions::default()
            },
            ..ConnectOptions::default()
        };
        self.conn = Some(r.connect(&self.cfg.host, self.cfg.port, opts));
    }

    /// Did the session fail (connect error, reset, bad frame)?
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn send(&mut self, r: &mut Reactor, msg: &Value) {
        let Some(conn) = self.conn else { return };
        if self.phase == Phase::Ending || self.phase == Phase::Closed {
            return;
        }
        let body = serde_json::to_vec(msg).unwrap_or_default();
        match encode_frame(&body, self.cfg.max_frame) {
            // The client sends little; its queue is bounded by the hard cap.
            Ok(frame) => {
                let _ = r.write(conn, frame);
            }
            Err(e) => eprintln!("not sent: {e}"),
        }
    }

    fn command(&mut self, r: &mut Reactor, line: &str) {
        let line = line.trim();
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match cmd {
            "" => {}
            "ping" => {
                let text = if rest.is_empty() { "manual ping" } else { rest };
                self.send(
                    r,
                    &json!({"type": "ping", "message": text, "timestamp": unix_ms()}),
                );
            }
            "echo" => self.send(r, &json!({"type": "echo", "data": rest})),
            "broadcast" => self.send(r, &json!({"type": "broadcast", "data": rest})),
            "raw" => match serde_json::from_str::<Value>(rest) {
                Ok(v) => self.send(r, &v),
                Err(e) => eprintln!("bad JSON: {e}"),
            },
            "quit" => self.finish(r),
            other => eprintln!(
                "unknown command '{other}' (ping [TEXT], echo TEXT, broadcast TEXT, raw JSON, quit)"
            ),
        }
    }

    /// The first ping, and the ping timer.
    fn start_pings(&mut self, r: &mut Reactor) {
        self.send(
            r,
            &json!({"type": "ping", "message": "Hello Server", "timestamp": unix_ms()}),
        );
        if !self.cfg.ping_interval.is_zero() && self.phase == Phase::Open {
            self.ping_timer = Some(r.set_interval(self.cfg.ping_interval, 0));
        }
    }

    /// A message from the server: printed, and an authentication answer
    /// acted on. `false`: the connection was closed (a refusal).
    fn server_message(
        &mut self,
        r: &mut Reactor,
        conn: ConnId,
        map: serde_json::Map<String, Value>,
    ) -> bool {
        match classify_json(&map) {
            AuthReply::Refused(why) => {
                eprintln!("error: authentication failed: {}", sanitize(&why));
                self.failed = true;
                r.destroy(conn);
                false
            }
            reply => {
                if self.awaiting_auth {
                    // auth_ok, or a welcome from a server without access
                    // control (it will answer the auth frame with an error,
                    // printed like any message): the session starts.
                    if reply != AuthReply::Accepted {
                        eprintln!("note: the server did not ask for a token");
                    }
                    self.awaiting_auth = false;
                    self.start_pings(r);
                }
                out(&format!("< {}", Value::Object(map)));
                true
            }
        }
    }

    /// Half-close: the server answers what it got, then closes.
    fn finish(&mut self, r: &mut Reactor) {
        if let Some(t) = self.ping_timer.take() {
            r.clear_timer(t);
        }
        if matches!(self.phase, Phase::Connecting | Phase::Open) {
            if let Some(conn) = self.conn {
                let _ = r.end(conn);
            }
            self.phase = Phase::Ending;
        }
    }
}

impl Handler for FramedClient {
    fn on_connect(&mut self, _r: &mut Reactor, _c: ConnId) {
        out(&format!(
            "connected to {}",
            host_port(&self.cfg.host, self.cfg.port)
        ));
        if self.phase == Phase::Connecting {
            self.phase = Phase::Open;
        }
    }

    fn on_ready(&mut self, r: &mut Reactor, _c: ConnId) {
        if let Some(t) = self.cfg.token.clone() {
            self.awaiting_auth = true;
            self.send(r, &json_request(&t));
            return; // the pings start on auth_ok
        }
        self.start_pings(r);
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        loop {
            match self.decoder.decode(data) {
                Ok(Some(body)) => match parse_message(&body) {
                    Ok((_, map)) => {
                        if !self.server_message(r, conn, map) {
                            data.clear();
                            return;
                        }
                    }
                    Err(e) => eprint_line(&format!("bad message from server: {e}")),
                },
                Ok(None) => return,
                Err(e) => {
                    eprint_line(&format!("server sent a bad frame: {e}"));
                    self.failed = true;
                    data.clear();
                    r.destroy(conn);
                    return;
                }
            }
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, _tag: u64) {
        self.send(
            r,
            &json!({"type": "ping", "message": "heartbeat", "timestamp": unix_ms()}),
        );
    }

    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn Any + Send>) {
        if let Ok(ev) = msg.downcast::<StdinEvent>() {
            match *ev {
                StdinEvent::Line(line) => self.command(r, &line),
                StdinEvent::Eof => self.finish(r),
            }
        }
    }

    fn on_error(&mut self, _r: &mut Reactor, _c: ConnId, err: &NetError) {
        eprintln!("connection error: {err}");
        self.failed = true;
    }

    fn on_close(&mut self, r: &mut Reactor, _c: ConnId, _had_error: bool) {
        if let Some(t) = self.ping_timer.take() {
            r.clear_timer(t);
        }
        self.phase = Phase::Closed;
        out("connection closed");
        r.stop();
    }
}

/// Run the client until the connection closes.
pub fn run(cfg: FramedClientConfig) -> ExitCode {
    let mut r = match crate::client::new_loop(crate::client::Signals::Default) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut client = FramedClient::new(cfg);
    client.start(&mut r);
    if !stdin_lines::spawn(r.remote()) {
        eprintln!("cannot start the stdin reader");
        return ExitCode::FAILURE;
    }
    match crate::client::run_loop(&mut r, &mut client) {
        Ok(_) if !client.failed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}
