//! [`AuthGuard`]: a [`Handler`] in front of a server that admits a connection
//! to it only after a valid token (issue 7). Used by the command, chat,
//! framed and heartbeat servers; the upload server checks its `Token:` header
//! itself (the token rides in every header block).
//!
//! Algorithm: on accept the guard keeps the connection to itself
//! ([`AuthState::Pending`](super::auth::AuthState::Pending); the line servers get a prompt line, as the seed's
//! tutorial has the welcome precede the authentication step) and decodes its
//! first messages with its own small decoder ([`AuthWire`]):
//! * a right token: the `ok` reply, then the inner server's `on_connection`
//!   (its welcome, its timers: nothing of the service, pings included, exists
//!   before), then the rest of the buffer goes to its `on_data`; from then on
//!   every event of the connection is forwarded;
//! * a wrong token (and, on the JSON wires, any other first message): the
//!   failure is counted and logged (never the token), reading is paused, and
//!   the reply is written after [`AUTH_FAILURE_DELAY`] by a timer; after
//!   [`MAX_AUTH_FAILURES`] the reply is followed by `end()`;
//! * line wire only: `/quit` gets the goodbye and `end()`; any other line the
//!   "authentication required" reply (not counted);
//! * no success within [`AUTH_DEADLINE`]: the connection is ended.
//!
//! Contract: events of a connection that never authenticated never reach the
//! inner server (so it never sees its `on_close` either). The guard's timer
//! tags are [`auth_timer_tag`]s; every other timer is forwarded.

use super::auth::{
    auth_timer_conn, auth_timer_tag, log_failure, AuthGate, Token, Verdict, AUTH_DEADLINE,
    AUTH_FAILURE_DELAY, MAX_AUTH_FAILURES,
};
use super::catalog::Catalog;
use super::json_reply::{error_message, json_line};
use super::wall_clock::unix_ms;
use crate::codec::lines::{LineDecoder, LineError};
use crate::codec::{encode_frame, parse_message, FrameDecoder};
use crate::{ConnId, Handler, NetError, Reactor, ServerId, TimerId};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use std::any::Any;
use std::collections::HashMap;
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

/// A delayed reply in flight.
struct Delayed {
    timer: TimerId,
    reply: Bytes,
    close: bool,
}

struct Pending {
    server: ServerId,
    who: String,
    gate: AuthGate,
    dec: PreDecoder,
    deadline: Option<TimerId>,
    delayed: Option<Delayed>,
}

/// A server behind a token check.
pub struct AuthGuard<H> {
    inner: H,
    token: Token,
    wire: AuthWire,
    cat: Catalog,
    pending: HashMap<ConnId, Pending>,
}

impl<H: std::fmt::Debug> std::fmt::Debug for AuthGuard<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGuard")
            .field("inner", &self.inner)
            .field("wire", &self.wire)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<H: Handler> AuthGuard<H> {
    /// `inner`, admitting only connections that present `token` over `wire`.
    pub fn new(inner: H, token: Token, wire: AuthWire, cat: Catalog) -> Self {
        AuthGuard {
            inner,
            token,
            wire,
            cat,
            pending: HashMap::new(),
        }
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

    fn clear_timers(r: &mut Reactor, p: &mut Pending) {
        if let Some(t) = p.deadline.take() {
            r.clear_timer(t);
        }
        if let Some(d) = p.delayed.take() {
            r.clear_timer(d.timer);
        }
    }

    fn pending_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        loop {
            let wire = self.wire;
            let Some(p) = self.pending.get_mut(&conn) else {
                return;
            };
            if !r.is_writable(conn) {
                data.clear();
                return;
            }
            if p.delayed.is_some() || r.is_paused(conn) {
                return; // redelivered on resume
            }
            let Some(msg) = Self::decode(wire, &mut p.dec, data) else {
                return;
            };
            let verdict = match msg {
                PreAuth::Quit => {
                    data.clear();
                    let _ = r.end_with(conn, self.cat.goodbye());
                    return;
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
                    let _ = r.end_with(conn, reply);
                    return;
                }
                PreAuth::Other if wire == AuthWire::Line => {
                    let _ = r.write(conn, self.cat.auth_required_line());
                    continue;
                }
                PreAuth::Other => (p.gate.fail(), true),
                PreAuth::Attempt(tok) => (p.gate.check(&self.token, &tok), false),
            };
            match verdict {
                (Verdict::Accepted, _) => {
                    let Some(mut p) = self.pending.remove(&conn) else {
                        return;
                    };
                    Self::clear_timers(r, &mut p);
                    log::info!("{}: authenticated", p.who);
                    let _ = r.write(conn, self.ok_reply());
                    self.inner.on_connection(r, p.server, conn);
                    if !data.is_empty() {
                        self.inner.on_data(r, conn, data);
                    }
                    return;
                }
                (v, required) => {
                    log_failure(&p.who, v_failures(v));
                    let reply = Self::fail_reply(wire, self.cat, v, required);
                    r.pause(conn);
                    let timer = r.set_timeout(AUTH_FAILURE_DELAY, auth_timer_tag(conn));
                    p.delayed = Some(Delayed {
                        timer,
                        reply,
                        close: v == Verdict::Closed,
                    });
                    return;
                }
            }
        }
    }

    fn auth_timer(&mut self, r: &mut Reactor, timer: TimerId, conn: ConnId) {
        let Some(p) = self.pending.get_mut(&conn) else {
            return;
        };
        if p.deadline == Some(timer) {
            p.deadline = None;
            log::info!(
                "{}: no authentication within {AUTH_DEADLINE:?}, closing",
                p.who
            );
            let msg = match self.wire {
                AuthWire::Line => format!("error: {}\n", self.cat.auth_timeout()).into(),
                _ => self.json_reply(&error_message(self.cat.auth_timeout())),
            };
            let _ = r.end_with(conn, msg);
            return;
        }
        let Some(d) = p.delayed.take_if(|d| d.timer == timer) else {
            return;
        };
        if d.close {
            log::info!("{}: too many failed attempts, closing", p.who);
            let _ = r.end_with(conn, d.reply);
        } else {
            let _ = r.write(conn, d.reply);
            r.resume(conn);
        }
    }
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

impl<H: Handler> Handler for AuthGuard<H> {
    fn on_listening(&mut self, r: &mut Reactor, s: ServerId, addr: SocketAddr) {
        self.inner.on_listening(r, s, addr);
        log::info!("access control on: clients must authenticate");
    }

    fn on_connection(&mut self, r: &mut Reactor, server: ServerId, conn: ConnId) {
        let peer = r.peer_addr(conn).map(|a| a.to_string()).unwrap_or_default();
        let dec = match self.wire {
            AuthWire::Frame => PreDecoder::Frame(FrameDecoder::new(MAX_AUTH_MESSAGE)),
            _ => PreDecoder::Line(LineDecoder::new(MAX_AUTH_MESSAGE)),
        };
        if self.wire == AuthWire::Line {
            let _ = r.write(conn, self.cat.auth_prompt());
        }
        let deadline = Some(r.set_timeout(AUTH_DEADLINE, auth_timer_tag(conn)));
        self.pending.insert(
            conn,
            Pending {
                server,
                who: format!("{conn} ({peer})"),
                gate: AuthGate::new(),
                dec,
                deadline,
                delayed: None,
            },
        );
    }

    fn on_drop(&mut self, r: &mut Reactor, s: ServerId, peer: SocketAddr) {
        self.inner.on_drop(r, s, peer);
    }

    fn on_server_error(&mut self, r: &mut Reactor, s: ServerId, err: &NetError) {
        self.inner.on_server_error(r, s, err);
    }

    fn on_server_close(&mut self, r: &mut Reactor, s: ServerId) {
        self.inner.on_server_close(r, s);
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        if self.pending.contains_key(&conn) {
            self.pending_data(r, conn, data);
        } else {
            self.inner.on_data(r, conn, data);
        }
    }

    fn on_end(&mut self, r: &mut Reactor, conn: ConnId) {
        if !self.pending.contains_key(&conn) {
            self.inner.on_end(r, conn);
        }
    }

    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        if !self.pending.contains_key(&conn) {
            self.inner.on_drain(r, conn);
        }
    }

    fn on_timeout(&mut self, r: &mut Reactor, conn: ConnId) {
        if self.pending.contains_key(&conn) {
            let _ = r.end(conn);
        } else {
            self.inner.on_timeout(r, conn);
        }
    }

    fn on_error(&mut self, r: &mut Reactor, conn: ConnId, err: &NetError) {
        match self.pending.get(&conn) {
            Some(p) => log::info!("{}: socket error before authentication: {err}", p.who),
            None => self.inner.on_error(r, conn, err),
        }
    }

    fn on_close(&mut self, r: &mut Reactor, conn: ConnId, had_error: bool) {
        match self.pending.remove(&conn) {
            Some(mut p) => {
                Self::clear_timers(r, &mut p);
                log::info!("{}: closed before authentication", p.who);
            }
            None => self.inner.on_close(r, conn, had_error),
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, timer: TimerId, tag: u64) {
        match auth_timer_conn(tag) {
            Some(conn) => self.auth_timer(r, timer, conn),
            None => self.inner.on_timer(r, timer, tag),
        }
    }

    fn on_immediate(&mut self, r: &mut Reactor, tag: u64) {
        self.inner.on_immediate(r, tag);
    }

    fn on_shutdown(&mut self, r: &mut Reactor) {
        self.inner.on_shutdown(r);
    }

    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn Any + Send>) {
        self.inner.on_message(r, msg);
    }

    fn on_fd_readable(&mut self, r: &mut Reactor, tag: u64) {
        self.inner.on_fd_readable(r, tag);
    }
}
