//! `netloop serve framed`: length-prefixed JSON messages (seed program 06).
//!
//! **Wire format**, both directions: a `u32` big-endian body length, then that
//! many bytes of UTF-8 JSON ([`crate::codec::frame`]). Every message is an
//! object with a string `type`.
//!
//! | client sends | server replies |
//! |---|---|
//! | (connect) | `welcome` {message, clientId, timestamp} |
//! | `ping` | `pong` {timestamp, original} |
//! | `echo` | `echo_response` {data, timestamp} |
//! | `broadcast` | `broadcast_message` {sender, data, timestamp} to every *other* client |
//! | other type | `error` {message, timestamp} |
//! | not JSON / not an object / no string `type` | `error` {message}; the connection goes on |
//! | a length over `--max-frame` | `error` {message}, then the connection is ended |
//!
//! **Algorithm.** `on_data` decodes complete frames from the front of the
//! connection's read buffer with a [`FramedSession`] and leaves a partial
//! frame in it. The frame decoder checks the declared length on the header,
//! before a body byte is awaited (a huge declared length is refused at
//! once, not buffered), and never reserves from it, so the buffer grows only
//! with what arrived. A reply that meets the high-water mark pauses reading
//! from that connection until `drain`, so a client that does not read its
//! replies cannot grow our memory. A broadcast is encoded once and the same
//! `Bytes` is queued for every recipient; a recipient that does not read is
//! destroyed by the reactor's hard cap, never blocking the others.
//!
//! Fixed seed defects: a `null` body crashed the server (every body is now
//! validated by [`parse_message`]); the length limit, the byte order and
//! partial frames (see the codec); bad JSON now gets an `error` frame;
//! `sender` is an opaque id, not the peer's address; idle peers time out
//! with `--idle-timeout`.

use crate::codec::{encode_frame, parse_message, FrameDecoder, FrameError, DEFAULT_MAX_FRAME};
use crate::framed::{Flow, Framed as FramedSession};
use crate::protocol::catalog::{Catalog, Lang};
use crate::protocol::json_reply::error_message as error_msg;
use crate::protocol::wall_clock::unix_ms;
use crate::reactor::Reactor;
use crate::{ConnId, Cx, ServerId, Service};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// Settings of the framed server.
#[derive(Clone, Debug)]
pub struct FramedConfig {
    /// Largest frame body accepted (and sent), in bytes.
    pub max_frame: usize,
    /// Language of the `message` texts ([`Catalog`]).
    pub lang: Lang,
}

impl Default for FramedConfig {
    fn default() -> Self {
        FramedConfig {
            max_frame: DEFAULT_MAX_FRAME,
            lang: Lang::En,
        }
    }
}

/// Per-connection state.
#[derive(Debug)]
pub struct Client {
    /// Opaque id shown to other clients (never the peer's address).
    id: String,
    framed: FramedSession<FrameDecoder>,
    /// An oversized frame was seen: input is discarded until the close.
    closing: bool,
}

/// The framed JSON server.
#[derive(Debug, Default)]
pub struct Framed {
    cfg: FramedConfig,
    cat: Catalog,
    /// Open connections, for broadcasts.
    open: BTreeSet<ConnId>,
    next_id: u64,
}

impl Framed {
    /// A server with `cfg`.
    pub fn new(cfg: FramedConfig) -> Self {
        Framed {
            cat: Catalog::new(cfg.lang),
            cfg,
            open: BTreeSet::new(),
            next_id: 1,
        }
    }

    /// Encode `msg` as one frame. A reply that would exceed our own frame
    /// limit (a huge `echo`) is replaced by an `error`, so we never send what
    /// the peer must reject.
    fn frame(&self, msg: &Value) -> Bytes {
        let body = serde_json::to_vec(msg).unwrap_or_default();
        match encode_frame(&body, self.cfg.max_frame) {
            Ok(b) => b,
            Err(FrameError::TooLong { len, max }) => {
                let err = error_msg(&self.cat.reply_too_long(len, max));
                let body = serde_json::to_vec(&err).unwrap_or_default();
                let mut out = BytesMut::with_capacity(4 + body.len());
                out.extend_from_slice(&(body.len() as u32).to_be_bytes());
                out.extend_from_slice(&body);
                out.freeze()
            }
        }
    }

    /// Send to `conn`; returns false when the caller should stop reading
    /// (backpressure or a closed connection).
    fn send(&self, r: &mut Reactor, conn: ConnId, msg: &Value) -> bool {
        match r.write(conn, self.frame(msg)) {
            Ok(true) => true,
            Ok(false) => {
                r.pause(conn);
                false
            }
            Err(_) => false,
        }
    }

    /// Handle one decoded message; returns false to stop reading for now.
    fn handle(&mut self, r: &mut Reactor, conn: ConnId, sender: &str, body: &[u8]) -> bool {
        let (kind, msg) = match parse_message(body) {
            Ok(m) => m,
            Err(e) => return self.send(r, conn, &error_msg(&e.to_string())),
        };
        let now = unix_ms();
        match kind.as_str() {
            "ping" => {
                let reply =
                    json!({"type": "pong", "timestamp": now, "original": Value::Object(msg)});
                self.send(r, conn, &reply)
            }
            "echo" => {
                let data = msg.get("data").cloned().unwrap_or(Value::Null);
                let reply = json!({"type": "echo_response", "data": data, "timestamp": now});
                self.send(r, conn, &reply)
            }
            "broadcast" => self.broadcast(r, conn, sender, msg, now),
            _ => {
                let reply =
                    json!({"type": "error", "message": self.cat.unknown_type(), "timestamp": now});
                self.send(r, conn, &reply)
            }
        }
    }

    /// Relay `msg` to every other client; returns false when the sender's
    /// reading should stop (as [`Framed::send`]).
    fn broadcast(
        &mut self,
        r: &mut Reactor,
        from: ConnId,
        sender: &str,
        msg: Map<String, Value>,
        now: u64,
    ) -> bool {
        let data = msg.get("data").cloned().unwrap_or(Value::Null);
        let out =
            json!({"type": "broadcast_message", "sender": sender, "data": data, "timestamp": now});
        // Encode once; every queue shares the same bytes. A message that
        // fits the limit on the way in can exceed it once wrapped (sender,
        // timestamp): that is the sender's error, and nothing is relayed
        // (the recipients never sent it, so an error to them would be noise).
        let body = serde_json::to_vec(&out).unwrap_or_default();
        let frame = match encode_frame(&body, self.cfg.max_frame) {
            Ok(f) => f,
            Err(FrameError::TooLong { len, max }) => {
                let err = error_msg(&self.cat.broadcast_too_long(len, max));
                return self.send(r, from, &err);
            }
        };
        // A connection that sent an oversized frame was ended: it is not
        // writable, so it gets nothing more.
        for &id in &self.open {
            if id != from && r.is_writable(id) {
                // Ok(false) only means this recipient is slow: the hard cap
                // bounds its queue, and the others are not held back.
                let _ = r.write(id, frame.clone());
            }
        }
        true
    }
}

impl Service for Framed {
    type Conn = Client;
    type Tag = ();
    type Message = ();

    fn name(&self) -> &'static str {
        "framed"
    }

    fn on_listening(&mut self, _: &mut Cx<'_, Self>, _: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "framed server listening on {addr} (max frame {} bytes)",
            self.cfg.max_frame
        );
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _: ServerId,
        conn: ConnId,
    ) -> Option<Client> {
        let id = format!("client-{}", self.next_id);
        self.next_id += 1;
        log::debug!("{conn} is {id}");
        let welcome = json!({"type": "welcome", "message": self.cat.framed_welcome(), "clientId": id, "timestamp": unix_ms()});
        self.open.insert(conn);
        self.send(cx, conn, &welcome);
        Some(Client {
            id,
            framed: FramedSession::new(FrameDecoder::new(self.cfg.max_frame)),
            closing: false,
        })
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        c: &mut Client,
        data: &mut BytesMut,
    ) {
        if c.closing {
            data.clear();
            return;
        }
        // Corked by the session: the replies to a pipelined batch leave in
        // one writev, not one write() each.
        let Client {
            id,
            framed,
            closing,
        } = c;
        framed.decode_all(cx, conn, data, |cx, item| match item {
            Ok(body) => {
                // False: paused or closed, which the session sees itself.
                self.handle(cx, conn, id, &body);
                Flow::Continue
            }
            Err(e) => {
                log::debug!("{conn}: {e}; closing");
                *closing = true;
                let _ = cx.write(conn, self.frame(&error_msg(&e.to_string())));
                let _ = cx.end(conn);
                Flow::Stop
            }
        });
        if c.closing {
            data.clear();
        }
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Client) {
        cx.resume(conn);
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Client) {
        if cx.is_writable(conn) {
            let _ = cx.write(conn, self.frame(&error_msg(self.cat.idle_timeout())));
            let _ = cx.end(conn);
        } else {
            cx.destroy(conn);
        }
    }

    fn on_close(&mut self, _: &mut Cx<'_, Self>, conn: ConnId, _: Client, _had_error: bool) {
        self.open.remove(&conn);
    }
}
