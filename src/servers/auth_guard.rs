//! [`AuthGuard`]: a [`Service`] in front of a server's service that admits
//! a connection to it only after a valid token. Used by the command, chat,
//! framed and heartbeat servers; the upload server checks its `Token:` header
//! itself (the token rides in every header block).
//!
//! Algorithm: on accept the guard keeps the connection to itself
//! ([`GuardConn::Pending`]; the line servers get a prompt line, as the seed's
//! tutorial has the welcome precede the authentication step) and decodes its
//! first messages with its own small decoder ([`AuthWire`]):
//! * a right token: the `ok` reply, then the inner service's `on_connection`
//!   (its welcome, its timers: nothing of the service, pings included, exists
//!   before), then the rest of the buffer goes to its `on_data`; from then on
//!   the connection is [`GuardConn::Admitted`] and every event of it is
//!   forwarded;
//! * a wrong token (and, on the JSON wires, any other first message): the
//!   failure is counted and logged (never the token), reading is paused, and
//!   the reply is written after [`AUTH_FAILURE_DELAY`] by a timer; after
//!   [`MAX_AUTH_FAILURES`] the reply is followed by `end()`;
//! * line wire only: `/quit` gets the goodbye and `end()`; any other line the
//!   "authentication required" reply (not counted);
//! * no success within [`AUTH_DEADLINE`]: the connection is ended;
//! * every attempt first asks the server's [`AuthLimiter`] (failures per
//!   source address and in total, across connections): when it refuses, the
//!   token is not compared, the refusal is answered after the same delay and
//!   the connection closed.
//!
//! Contract: events of a connection that never authenticated never reach the
//! inner service (so it never sees its `on_close` either). Every other event
//! (server events, timers, immediates, watched descriptors, messages,
//! shutdown, outbound connections the inner service makes) is forwarded
//! through [`Cx::lift`]: the guard's own timers are [`GuardTag::Guard`], the
//! inner service's [`GuardTag::Inner`], so they cannot be confused.

use crate::codec::lines::{LineDecoder, LineError};
use crate::codec::{encode_frame, parse_message, FrameDecoder};
use crate::protocol::auth::{
    log_failure, log_limited, AuthGate, AuthLimiter, Token, Verdict, AUTH_DEADLINE,
    AUTH_FAILURE_DELAY, MAX_AUTH_FAILURES,
};
use crate::protocol::catalog::Catalog;
use crate::protocol::json_reply::{error_message, json_line};
use crate::protocol::wall_clock::unix_ms;
use crate::{ConnId, Cx, NetError, Reactor, ServerId, Service, TimerId};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// Largest message read before authentication: a token file is at most 4 KiB,
/// and an unauthenticated peer must not make us buffer more.
pub const MAX_AUTH_MESSAGE: usize = 8 * 1024;

/// How the token is carried, by server family.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AuthWire {
    /// Text lines: `/auth TOKEN` (command, chat).
    Line,
    /// `u32`-length-prefixed JSON: `{"type":"auth","token":...}` (framed).
    Frame,
    /// JSON lines: `{"type":"auth","token":...}` (heartbeat).
    JsonLine,
}

/// One decoded pre-authentication message.
enum PreAuth {
    Attempt(Vec<u8>),
    Quit,
    /// Not an authentication (line wire: answered, not counted).
    Other,
    /// Too long: answer and close.
    Fatal,
}

enum PreDecoder {
    Line(LineDecoder),
    Frame(FrameDecoder),
}

/// A connection still authenticating: the guard's own state.
#[derive(Debug)]
pub struct Pending {
    server: ServerId,
    who: String,
    /// The peer's address, for the failure limiter.
    ip: std::net::IpAddr,
    gate: AuthGate,
    dec: PreDecoder,
    deadline: Option<TimerId>,
    /// A delayed reply is armed: reading is paused until it is written
    /// (the timer resumes the connection).
    delayed: Option<TimerId>,
}

impl std::fmt::Debug for PreDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PreDecoder::Line(_) => "Line",
            PreDecoder::Frame(_) => "Frame",
        })
    }
}

/// The state of a connection of an [`AuthGuard`].
#[derive(Debug)]
pub enum GuardConn<C> {
    /// Not authenticated yet: the guard's own.
    Pending(Box<Pending>),
    /// Authenticated: the inner service's state.
    Admitted(C),
}

/// A timer of the guard itself.
#[derive(Clone, Debug)]
pub enum GuardTimer {
    /// No success within [`AUTH_DEADLINE`] of the accept.
    Deadline(ConnId),
    /// A failure's reply, written after [`AUTH_FAILURE_DELAY`] (then the
    /// close if `close`).
    Delayed {
        /// The connection.
        conn: ConnId,
        /// What it gets.
        reply: Bytes,
        /// End it after the reply.
        close: bool,
    },
}

/// The timer and immediate tags of an [`AuthGuard`].
#[derive(Clone, Debug)]
pub enum GuardTag<T> {
    /// The guard's own.
    Guard(GuardTimer),
    /// The inner service's.
    Inner(T),
}

/// A service behind a token check.
pub struct AuthGuard<S> {
    inner: S,
    token: Token,
    wire: AuthWire,
    cat: Catalog,
    limiter: AuthLimiter,
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthGuard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGuard")
            .field("inner", &self.inner)
            .field("wire", &self.wire)
            .finish()
    }
}

/// What one pre-authentication step decided.
enum Step {
    /// Decode the next message.
    Next,
    /// Stop for now (more bytes, a delay, the connection is over).
    Wait,
    /// Admitted: create the inner state.
    Admit,
}

impl<S: Service> AuthGuard<S> {
    /// `inner`, admitting only connections that present `token` over `wire`.
    pub fn new(inner: S, token: Token, wire: AuthWire, cat: Catalog) -> Self {
        AuthGuard {
            inner,
            token,
            wire,
            cat,
            limiter: AuthLimiter::new(),
        }
    }

    /// The inner service.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn json_reply(&self, v: &Value) -> Bytes {
        json_reply(self.wire, v)
    }

    fn ok_reply(&self) -> Bytes {
        match self.wire {
            AuthWire::Line => self.cat.auth_ok_line().into(),
            _ => self.json_reply(&json!({"type": "auth_ok", "timestamp": unix_ms()})),
        }
    }

    /// The reply to a failed attempt; `required`: it presented no token.
    fn fail_reply(wire: AuthWire, cat: Catalog, v: Verdict, required: bool) -> Bytes {
        match (wire, v) {
            (AuthWire::Line, Verdict::Closed) => cat.auth_closed_line().into(),
            (AuthWire::Line, Verdict::Rejected { failures }) => {
                cat.auth_wrong_line(failures, MAX_AUTH_FAILURES).into()
            }
            (_, Verdict::Closed) => json_reply(wire, &error_message(cat.auth_closed())),
            (_, _) if required => json_reply(wire, &error_message(cat.auth_required())),
            (_, _) => json_reply(wire, &error_message(cat.auth_wrong())),
        }
    }

    fn decode(wire: AuthWire, dec: &mut PreDecoder, data: &mut BytesMut) -> Option<PreAuth> {
        match dec {
            PreDecoder::Line(d) => match d.decode(data) {
                Ok(None) => None,
                Err(LineError::TooLong { .. }) => Some(PreAuth::Fatal),
                Err(LineError::InvalidUtf8) => Some(PreAuth::Other),
                Ok(Some(line)) if wire == AuthWire::Line => {
                    let mut words = line.split_whitespace();
                    let cmd = words.next().unwrap_or("").to_ascii_lowercase();
                    match cmd.as_str() {
                        "/auth" => Some(PreAuth::Attempt(
                            words.next().unwrap_or("").as_bytes().to_vec(),
                        )),
                        "/quit" => Some(PreAuth::Quit),
                        _ => Some(PreAuth::Other),
                    }
                }
                Ok(Some(line)) => Some(Self::json_attempt(line.as_bytes())),
            },
            PreDecoder::Frame(d) => match d.decode(data) {
                Ok(None) => None,
                Err(_) => Some(PreAuth::Fatal),
                Ok(Some(body)) => Some(Self::json_attempt(&body)),
            },
        }
    }

    /// `{"type":"auth","token":"..."}` → the token; anything else: `Other`.
    fn json_attempt(body: &[u8]) -> PreAuth {
        match parse_message(body) {
            Ok((kind, map)) if kind == "auth" => match map.get("token") {
                Some(Value::String(t)) => PreAuth::Attempt(t.as_bytes().to_vec()),
                _ => PreAuth::Attempt(Vec::new()),
            },
            _ => PreAuth::Other,
        }
    }

    fn clear_timers(cx: &mut Cx<'_, Self>, p: &mut Pending) {
        if let Some(t) = p.deadline.take() {
            cx.clear_timer(t);
        }
        if let Some(t) = p.delayed.take() {
            cx.clear_timer(t);
        }
    }

    /// One step of a pending connection's input.
    fn pending_step(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        p: &mut Pending,
        data: &mut BytesMut,
    ) -> Step {
        let wire = self.wire;
        if !cx.is_writable(conn) {
            data.clear();
            return Step::Wait;
        }
        if cx.is_paused(conn) {
            return Step::Wait; // redelivered on resume
        }
        // Reading is paused while a delayed reply is armed, and only its
        // timer resumes it: reading again means the reply went out.
        p.delayed = None;
        let Some(msg) = Self::decode(wire, &mut p.dec, data) else {
            return Step::Wait;
        };
        let verdict = match msg {
            PreAuth::Quit => {
                data.clear();
                let _ = cx.end_with(conn, self.cat.goodbye());
                return Step::Wait;
            }
            PreAuth::Fatal => {
                data.clear();
                log::info!("{}: oversized message before authentication", p.who);
                log_failure(&p.who, v_failures(p.gate.fail()));
                let reply = match wire {
                    AuthWire::Line => self.cat.line_too_long(MAX_AUTH_MESSAGE).into(),
                    _ => json_reply(
                        wire,
                        &error_message(&format!(
                            "message longer than {MAX_AUTH_MESSAGE} bytes before authentication"
                        )),
                    ),
                };
                let _ = cx.end_with(conn, reply);
                return Step::Wait;
            }
            PreAuth::Other if wire == AuthWire::Line => {
                let _ = cx.write(conn, self.cat.auth_required_line());
                return Step::Next;
            }
            PreAuth::Other | PreAuth::Attempt(_) => {
                // Failures are limited per address and in total across
                // connections; a refused attempt is not compared at all.
                let now = cx.now();
                if let Err(l) = self.limiter.admit(p.ip, now) {
                    log_limited(&p.who, l);
                    let reply = match wire {
                        AuthWire::Line => format!("error: {}\n", self.cat.auth_limited()).into(),
                        _ => json_reply(wire, &error_message(self.cat.auth_limited())),
                    };
                    Self::delay_reply(cx, conn, p, reply, true);
                    return Step::Wait;
                }
                let v = match msg {
                    PreAuth::Attempt(tok) => (p.gate.check(&self.token, &tok), false),
                    _ => (p.gate.fail(), true),
                };
                if v.0 != Verdict::Accepted {
                    self.limiter.failed(p.ip, now);
                }
                v
            }
        };
        match verdict {
            (Verdict::Accepted, _) => {
                Self::clear_timers(cx, p);
                log::info!("{}: authenticated", p.who);
                let _ = cx.write(conn, self.ok_reply());
                Step::Admit
            }
            (v, required) => {
                log_failure(&p.who, v_failures(v));
                let reply = Self::fail_reply(wire, self.cat, v, required);
                Self::delay_reply(cx, conn, p, reply, v == Verdict::Closed);
                Step::Wait
            }
        }
    }

    /// Pause reading and send `reply` after [`AUTH_FAILURE_DELAY`] (then
    /// close if `close`).
    fn delay_reply(
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        p: &mut Pending,
        reply: Bytes,
        close: bool,
    ) {
        cx.pause(conn);
        let tag = GuardTag::Guard(GuardTimer::Delayed { conn, reply, close });
        p.delayed = Some(cx.set_timeout(AUTH_FAILURE_DELAY, tag));
    }

    fn guard_timer(&mut self, r: &mut Reactor, t: GuardTimer) {
        // Both timers are cleared when the connection is admitted or
        // closes: the connection is still pending.
        match t {
            GuardTimer::Deadline(conn) => {
                let who = who(r, conn);
                log::info!("{who}: no authentication within {AUTH_DEADLINE:?}, closing");
                let msg = match self.wire {
                    AuthWire::Line => format!("error: {}\n", self.cat.auth_timeout()).into(),
                    _ => self.json_reply(&error_message(self.cat.auth_timeout())),
                };
                let _ = r.end_with(conn, msg);
            }
            GuardTimer::Delayed { conn, reply, close } => {
                if close {
                    log::info!("{}: too many failed attempts, closing", who(r, conn));
                    let _ = r.end_with(conn, reply);
                } else {
                    let _ = r.write(conn, reply);
                    r.resume(conn);
                }
            }
        }
    }
}

/// How a pending connection is named in the log.
fn who(r: &Reactor, conn: ConnId) -> String {
    let peer = r.peer_addr(conn).map(|a| a.to_string()).unwrap_or_default();
    format!("{conn} ({peer})")
}

/// `v` as one reply message of `wire` (a frame, or a JSON line).
fn json_reply(wire: AuthWire, v: &Value) -> Bytes {
    match wire {
        AuthWire::Frame => {
            let body = serde_json::to_vec(v).unwrap_or_default();
            encode_frame(&body, MAX_AUTH_MESSAGE).unwrap_or_default()
        }
        _ => json_line(v),
    }
}

fn v_failures(v: Verdict) -> u32 {
    match v {
        Verdict::Rejected { failures } => failures,
        Verdict::Closed => MAX_AUTH_FAILURES,
        Verdict::Accepted => 0,
    }
}

impl<S: Service> Service for AuthGuard<S> {
    type Conn = GuardConn<S::Conn>;
    type Tag = GuardTag<S::Tag>;
    type Message = S::Message;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            self.inner.on_start(icx)
        });
    }

    fn on_listening(&mut self, cx: &mut Cx<'_, Self>, s: ServerId, addr: SocketAddr) {
        cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            self.inner.on_listening(icx, s, addr)
        });
        log::info!("access control on: clients must authenticate");
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        server: ServerId,
        conn: ConnId,
    ) -> Option<Self::Conn> {
        let peer_addr = cx.peer_addr(conn);
        let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
        let ip = peer_addr.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
        let dec = match self.wire {
            AuthWire::Frame => PreDecoder::Frame(FrameDecoder::new(MAX_AUTH_MESSAGE)),
            _ => PreDecoder::Line(LineDecoder::new(MAX_AUTH_MESSAGE)),
        };
        if self.wire == AuthWire::Line {
            let _ = cx.write(conn, self.cat.auth_prompt());
        }
        let deadline = cx.set_timeout(AUTH_DEADLINE, GuardTag::Guard(GuardTimer::Deadline(conn)));
        Some(GuardConn::Pending(Box::new(Pending {
            server,
            who: format!("{conn} ({peer})"),
            ip,
            gate: AuthGate::new(),
            dec,
            deadline: Some(deadline),
            delayed: None,
        })))
    }

    fn on_drop(&mut self, cx: &mut Cx<'_, Self>, s: ServerId, peer: SocketAddr) {
        cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            self.inner.on_drop(icx, s, peer)
        });
    }

    fn on_server_error(&mut self, cx: &mut Cx<'_, Self>, s: ServerId, err: &NetError) {
        cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            self.inner.on_server_error(icx, s, err)
        });
    }

    fn on_server_close(&mut self, cx: &mut Cx<'_, Self>, s: ServerId) {
        cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            self.inner.on_server_close(icx, s)
        });
    }

    fn on_lookup(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Self::Conn,
        result: Result<SocketAddr, &NetError>,
    ) {
        if let GuardConn::Admitted(st) = st {
            cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_lookup(icx, conn, st, result)
            });
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {
        if let GuardConn::Admitted(st) = st {
            cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_connect(icx, conn, st)
            });
        }
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Self::Conn,
        data: &mut BytesMut,
    ) {
        let server = match st {
            GuardConn::Admitted(ist) => {
                cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                    self.inner.on_data(icx, conn, ist, data)
                });
                return;
            }
            GuardConn::Pending(p) => loop {
                match self.pending_step(cx, conn, p, data) {
                    Step::Next => continue,
                    Step::Wait => return,
                    Step::Admit => break p.server,
                }
            },
        };
        let inner = &mut self.inner;
        let created = cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            inner.on_connection(icx, server, conn)
        });
        let Some(ist) = created else {
            // The inner service refused it: its events must not reach it.
            cx.destroy(conn);
            return;
        };
        *st = GuardConn::Admitted(ist);
        if let GuardConn::Admitted(ist) = st {
            if !data.is_empty() {
                cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                    inner.on_data(icx, conn, ist, data)
                });
            }
        }
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {
        if let GuardConn::Admitted(st) = st {
            cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_end(icx, conn, st)
            });
        }
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {
        if let GuardConn::Admitted(st) = st {
            cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_drain(icx, conn, st)
            });
        }
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {
        match st {
            GuardConn::Pending(_) => {
                let _ = cx.end(conn);
            }
            GuardConn::Admitted(st) => cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_timeout(icx, conn, st)
            }),
        }
    }

    fn on_error(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Self::Conn,
        err: &NetError,
    ) {
        match st {
            GuardConn::Pending(p) => {
                log::info!("{}: socket error before authentication: {err}", p.who)
            }
            GuardConn::Admitted(st) => cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_error(icx, conn, st, err)
            }),
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: Self::Conn, had_error: bool) {
        match st {
            GuardConn::Pending(mut p) => {
                Self::clear_timers(cx, &mut p);
                if p.gate.is_authenticated() {
                    log::info!("{}: closed (refused by the server)", p.who);
                } else {
                    log::info!("{}: closed before authentication", p.who);
                }
            }
            GuardConn::Admitted(st) => cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_close(icx, conn, st, had_error)
            }),
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, timer: TimerId, tag: Self::Tag) {
        match tag {
            GuardTag::Guard(t) => self.guard_timer(cx, t),
            GuardTag::Inner(t) => cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_timer(icx, timer, t)
            }),
        }
    }

    fn on_immediate(&mut self, cx: &mut Cx<'_, Self>, tag: Self::Tag) {
        if let GuardTag::Inner(t) = tag {
            cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_immediate(icx, t)
            });
        }
    }

    fn on_fd_readable(&mut self, cx: &mut Cx<'_, Self>, tag: Self::Tag) {
        if let GuardTag::Inner(t) = tag {
            cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
                self.inner.on_fd_readable(icx, t)
            });
        }
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, msg: Self::Message) {
        cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            self.inner.on_message(icx, msg)
        });
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        cx.lift(GuardTag::Inner, GuardConn::Admitted, |icx| {
            self.inner.on_shutdown(icx)
        });
    }
}
