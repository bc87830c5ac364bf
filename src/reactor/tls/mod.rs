//! TLS inside the connection: rustls driven by the loop, not a proxy.
//!
//! rustls is sans-IO: it takes ciphertext (`read_tls`), turns it into
//! plaintext (`process_new_packets`, `reader`), takes plaintext (`writer`)
//! and hands back ciphertext (`write_tls`). The loop keeps doing the I/O, so
//! a TLS connection is the same slab entry, write queue, timers and state
//! machine as a plain one, with a [`TlsSession`] beside them
//! (`Conn::tls`, `None` for plain TCP: the plain path pays one branch on
//! that `Option`, and no copy).
//!
//! # Algorithm
//!
//! * **Read.** The bytes a `read()` brought go through [`TlsSession::receive`]:
//!   `read_tls` + `process_new_packets` until the chunk is consumed, the
//!   plaintext drained into the connection's read buffer after every record
//!   batch (rustls refuses more input while its plaintext buffer is full).
//!   Whatever rustls wants to send in answer (handshake flights, session
//!   tickets, alerts) is queued as ciphertext and flushed at once. The
//!   plaintext reaches `on_data` as plain TCP data would.
//! * **Write.** `write()` hands the plaintext to rustls and queues the
//!   ciphertext it produces; the queue, the direct write, `writev`, the
//!   budget and the ready list are unchanged. Plaintext written before the
//!   handshake is done (a banner in `on_connection`) waits inside rustls and
//!   is counted in [`TlsSession::held_plaintext`]; the high-water mark and
//!   `drain` see queued ciphertext plus that, and the hard cap
//!   (`max_write_buffer`) still evicts a peer that does not read.
//! * **Half-close.** `end()` queues `close_notify`, then the FIN follows the
//!   flushed queue as before. A received `close_notify` is the peer's `end`.
//!   A TCP FIN without `close_notify` is [`ErrorCode::TlsTruncated`]: the
//!   data may have been cut short. `end()` during the handshake waits for
//!   it: what was written first is sent, then `close_notify`.
//! * **Handshake timeout.** Each TLS connection arms a timer when its TCP
//!   connection is established ([`ServerTls::handshake_timeout`],
//!   [`ClientTls::handshake_timeout`], default
//!   [`DEFAULT_HANDSHAKE_TIMEOUT`]); a handshake still running when it
//!   fires is closed with `ETIMEDOUT` (slowloris on the handshake).
//! * **Not TLS at all.** A server whose first byte from the peer is not a
//!   TLS handshake record (a plain-text client) closes the connection
//!   without an `error` event and logs one debug line, rate-limited to
//!   powers of two of the count: a port scanner cannot flood the log.
//!
//! # Contract for callers
//!
//! * A server gets TLS with `ListenOptions::tls`, a client with
//!   `ConnectOptions::tls`. A server's `on_connection` fires when TCP is
//!   accepted, as for plain TCP; a client's `on_connect` once the handshake
//!   is done (Node's `secureConnect`), so a certificate the client refuses
//!   is a failed connect. Writes made before the handshake is complete are
//!   sent once it is. Certificate and protocol failures arrive as `error`
//!   ([`ErrorCode::Tls`], one-line detail) then `close(true)`.
//! * `bytes_read`/`bytes_written` count ciphertext (what crossed the
//!   socket); `buffer_size` counts queued ciphertext plus plaintext held
//!   during the handshake.

pub mod config;

use crate::reactor::conn::state::State;
use crate::reactor::net::error::{ErrorCode, NetError, WriteError};
use crate::reactor::timers::TimerEntry;
use crate::reactor::token::{ConnId, Key};
use crate::reactor::Reactor;
use crate::timer::TimerKey;
use bytes::{Bytes, BytesMut};
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a TLS handshake may take once TCP is up: long enough for a
/// slow link's few round trips, short enough that a peer which opens a
/// connection and never finishes the handshake (slowloris) holds its slot
/// briefly. The figure Go's `net/http` and nginx's defaults are near.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS record carrying a handshake message (RFC 8446
/// §5.1, `ContentType.handshake`): what a ClientHello starts with.
const HANDSHAKE_RECORD: u8 = 0x16;

/// Bytes a TLS 1.3 record adds to its plaintext at most (header, content
/// type, AEAD tag: 5 + 1 + 16, rounded up), per record of up to 16 KiB.
const RECORD_OVERHEAD: usize = 32;

/// Plaintext per TLS record (RFC 8446 §5.1).
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// Least capacity of a ciphertext output buffer (alerts, tickets).
const OUTPUT_MIN: usize = 512;

/// Plain-text clients seen by TLS servers of this process; logged at
/// powers of two only.
static NOT_TLS: AtomicU64 = AtomicU64::new(0);

/// TLS for a server's accepted connections (`ListenOptions::tls`).
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The rustls configuration: certificate, key, client verification,
    /// tickets ([`config::server_config`] builds one from PEM files).
    pub config: Arc<rustls::ServerConfig>,
    /// Close a connection whose handshake is not done after this long.
    pub handshake_timeout: Duration,
}

impl ServerTls {
    /// `config` with the default handshake timeout.
    pub fn new(config: Arc<rustls::ServerConfig>) -> ServerTls {
        ServerTls {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// TLS for an outbound connection (`ConnectOptions::tls`).
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The rustls configuration: trusted roots, resumption store
    /// ([`config::client_config`]). Share one `Arc` between connections
    /// to the same server so they can resume sessions.
    pub config: Arc<rustls::ClientConfig>,
    /// The name the certificate must be valid for; sent as SNI when it is
    /// a DNS name ([`config::server_name`]).
    pub server_name: ServerName<'static>,
    /// Close the connection if its handshake is not done after this long.
    pub handshake_timeout: Duration,
}

impl ClientTls {
    /// `config` for `server_name`, with the default handshake timeout.
    pub fn new(config: Arc<rustls::ClientConfig>, server_name: ServerName<'static>) -> ClientTls {
        ClientTls {
            config,
            server_name,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Why a TLS session failed.
#[derive(Debug, PartialEq)]
pub enum TlsError {
    /// The peer's first bytes are not a TLS handshake record: a plain-text
    /// client on a TLS port.
    NotTls,
    /// rustls rejected what the peer sent, or the peer sent an alert (a
    /// certificate problem shows here).
    Protocol(rustls::Error),
    /// rustls refused input (its buffers are full): a peer misbehaving.
    Input(String),
}

impl TlsError {
    /// As the error delivered to the application.
    pub fn to_net_error(&self) -> NetError {
        match self {
            TlsError::NotTls => NetError::new(ErrorCode::Tls, "tls", "the peer does not speak TLS"),
            TlsError::Protocol(e) => NetError::new(ErrorCode::Tls, "tls", e.to_string()),
            TlsError::Input(d) => NetError::new(ErrorCode::Tls, "tls", d.clone()),
        }
    }
}

/// What one [`TlsSession::receive`] brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The handshake completed during this call.
    pub handshake_done: bool,
    /// The peer's `close_notify` arrived: its clean `end`.
    pub peer_closed: bool,
}

/// The TLS half of a connection: a rustls session plus what the loop needs
/// to know about it. Sans-IO: bytes in, bytes out, no socket.
pub struct TlsSession {
    session: rustls::Connection,
    /// Plaintext accepted by `send` while the handshake runs (rustls holds
    /// it until it can encrypt it).
    held: usize,
    /// `end()` was called during the handshake: send `close_notify` once
    /// it is done.
    close_after_handshake: bool,
    /// Nothing received yet (the first byte is checked for a handshake
    /// record on the server side).
    first_byte_seen: bool,
    /// `close_notify` sent.
    close_sent: bool,
    /// Ciphertext expected from what `send` took since the last
    /// `take_output`: the capacity of the next output buffer.
    out_hint: usize,
    /// The handshake timer, while armed.
    pub(crate) handshake_timer: Option<TimerKey>,
    /// The handshake timeout to arm once TCP is established.
    pub(crate) handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.session.is_handshaking())
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    fn wrap(mut session: rustls::Connection, handshake_timeout: Duration) -> TlsSession {
        // No limit inside rustls: the loop's own accounting (high-water
        // mark, hard cap) bounds what is written, and a limit here would
        // make `writer()` take only part of a write.
        session.set_buffer_limit(None);
        TlsSession {
            session,
            held: 0,
            close_after_handshake: false,
            first_byte_seen: false,
            close_sent: false,
            out_hint: 0,
            handshake_timer: None,
            handshake_timeout,
        }
    }

    /// A server session.
    pub fn server(tls: &ServerTls) -> Result<TlsSession, TlsError> {
        let s = rustls::ServerConnection::new(tls.config.clone()).map_err(TlsError::Protocol)?;
        Ok(Self::wrap(s.into(), tls.handshake_timeout))
    }

    /// A client session; its ClientHello is ready in [`TlsSession::take_output`].
    pub fn client(tls: &ClientTls) -> Result<TlsSession, TlsError> {
        let s = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
            .map_err(TlsError::Protocol)?;
        Ok(Self::wrap(s.into(), tls.handshake_timeout))
    }

    /// The handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Plaintext written during the handshake, not yet encrypted.
    pub fn held_plaintext(&self) -> usize {
        self.held
    }

    /// The handshake resumed an earlier session (`None` while it runs).
    pub fn resumed(&self) -> Option<bool> {
        if self.session.is_handshaking() {
            return None;
        }
        Some(matches!(
            self.session.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        ))
    }

    /// The TLS version and cipher suite, once negotiated.
    pub fn describe(&self) -> Option<String> {
        let v = self.session.protocol_version()?;
        let s = self.session.negotiated_cipher_suite()?;
        Some(format!("{v:?} {:?}", s.suite()))
    }

    /// Feed ciphertext from the socket; append the plaintext it carried to
    /// `plain`. Data after a `close_notify` is ignored (RFC 8446 §6.1).
    pub fn receive(&mut self, mut ct: &[u8], plain: &mut BytesMut) -> Result<Received, TlsError> {
        let was_handshaking = self.session.is_handshaking();
        if !self.first_byte_seen && !ct.is_empty() {
            self.first_byte_seen = true;
            let server = matches!(self.session, rustls::Connection::Server(_));
            if server && ct[0] != HANDSHAKE_RECORD {
                return Err(TlsError::NotTls);
            }
        }
        let mut out = Received::default();
        while !ct.is_empty() {
            match self.session.read_tls(&mut ct) {
                Ok(0) => break, // close_notify already received
                Ok(_) => {}
                Err(e) => return Err(TlsError::Input(e.to_string())),
            }
            let state = self
                .session
                .process_new_packets()
                .map_err(TlsError::Protocol)?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                // rustls said `n` bytes are there: read_exact cannot fall
                // short; if it did, the rest of the buffer is dropped.
                if self
                    .session
                    .reader()
                    .read_exact(&mut plain[start..])
                    .is_err()
                {
                    plain.truncate(start);
                }
            }
            if state.peer_has_closed() {
                out.peer_closed = true;
                break;
            }
        }
        if was_handshaking && !self.session.is_handshaking() {
            out.handshake_done = true;
            // rustls has encrypted what it held; it is in the output now.
            self.held = 0;
            if self.close_after_handshake {
                self.close();
            }
        }
        Ok(out)
    }

    /// Encrypt `pt` (or hold it until the handshake is done).
    pub fn send(&mut self, pt: &[u8]) {
        if self.session.is_handshaking() {
            self.held += pt.len();
        }
        let records = pt.len().div_ceil(RECORD_PLAINTEXT);
        self.out_hint += pt.len() + records * RECORD_OVERHEAD;
        // With no buffer limit the writer takes everything.
        let _ = self.session.writer().write_all(pt);
    }

    /// Queue `close_notify` (at once, or after the handshake if it runs).
    pub fn close(&mut self) {
        if self.close_sent {
            return;
        }
        if self.session.is_handshaking() {
            self.close_after_handshake = true;
            return;
        }
        self.close_sent = true;
        self.session.send_close_notify();
    }

    /// `close_notify` has been queued.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Ciphertext waiting to be sent (handshake flights, records, alerts),
    /// as one buffer; empty when there is none.
    pub fn take_output(&mut self) -> Bytes {
        if !self.session.wants_write() {
            return Bytes::new();
        }
        // Sized for what `send` handed over, so a big write is not copied
        // again at every doubling of a growing Vec, and a small one does
        // not pin a big allocation while it waits in the queue.
        let mut out = Vec::with_capacity(std::mem::take(&mut self.out_hint).max(OUTPUT_MIN));
        while self.session.wants_write() {
            // Writing into a Vec cannot fail or stall.
            if self.session.write_tls(&mut out).is_err() {
                break;
            }
        }
        Bytes::from(out)
    }
}

impl Reactor {
    /// Give a freshly accepted connection its server session and arm its
    /// handshake timer. `false` if the session could not be made (the
    /// connection is closed).
    pub(crate) fn tls_attach_server(&mut self, key: Key, tls: &ServerTls) -> bool {
        match TlsSession::server(tls) {
            Ok(s) => {
                if let Some(c) = self.conns.get_mut(key) {
                    c.tls = Some(Box::new(s));
                }
                self.tls_arm_handshake(key);
                true
            }
            Err(e) => {
                self.close_conn(key, Some(e.to_net_error()));
                false
            }
        }
    }

    /// Give an outbound connection its client session; the ClientHello is
    /// queued and leaves when the connect completes.
    pub(crate) fn tls_attach_client(&mut self, key: Key, tls: &ClientTls) {
        match TlsSession::client(tls) {
            Ok(s) => {
                if let Some(c) = self.conns.get_mut(key) {
                    c.tls = Some(Box::new(s));
                }
                self.tls_queue_output(key);
            }
            Err(e) => self.close_conn(key, Some(e.to_net_error())),
        }
    }

    /// Arm the handshake timer (TCP is established).
    pub(crate) fn tls_arm_handshake(&mut self, key: Key) {
        let Some(after) = self
            .conns
            .get(key)
            .and_then(|c| c.tls.as_ref())
            .map(|t| t.handshake_timeout)
        else {
            return;
        };
        let timer = self.arm(after, TimerEntry::TlsHandshake(key));
        match self.conns.get_mut(key).and_then(|c| c.tls.as_mut()) {
            Some(t) => t.handshake_timer = Some(timer),
            None => {
                self.wheel.cancel(timer);
            }
        }
    }

    /// The handshake timer fired: close a handshake still running.
    pub(crate) fn tls_handshake_expired(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(t) = c.tls.as_mut() else {
            return;
        };
        t.handshake_timer = None;
        if t.is_handshaking() && c.state != State::Closed {
            let err = NetError::new(
                ErrorCode::TimedOut,
                "tls handshake",
                "the TLS handshake did not complete in time",
            );
            self.close_conn(key, Some(err));
        }
    }

    /// Queue what the session has to send and, if the socket has room,
    /// send it now (a handshake flight should not wait for the end of the
    /// phase, nor for `uncork`).
    pub(crate) fn tls_queue_output(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(t) = c.tls.as_mut() else {
            return;
        };
        let out = t.take_output();
        if out.is_empty() {
            return;
        }
        self.stats.queued_add(out.len());
        c.wq.push(out);
        if c.writable && c.state.is_established() {
            self.flush(key);
        }
    }

    /// The read path of a TLS connection: the ciphertext just read is in
    /// the loop's read buffer. Decrypt it into the connection's buffer,
    /// answer the handshake, deliver the plaintext. Returns whether to go
    /// on reading (false once closed or after the peer's `close_notify`).
    pub(crate) fn tls_read(&mut self, key: Key) -> bool {
        let Some(c) = self.conns.get_mut(key) else {
            self.read_buf.clear();
            return false;
        };
        let Some(t) = c.tls.as_mut() else {
            self.read_buf.clear();
            return false;
        };
        let res = match c.rbuf.as_deref_mut() {
            None => {
                // Decrypt into the loop's spare buffer and hand it over
                // whole (deliver_data gives it back once emptied).
                let mut plain = std::mem::take(&mut self.plain_spare);
                let res = t.receive(&self.read_buf, &mut plain);
                if plain.is_empty() {
                    // Handshake records only: the buffer stays with the
                    // loop, an idle connection holds no read memory.
                    self.plain_spare = plain;
                } else {
                    c.rbuf = Some(Box::new(plain));
                }
                res
            }
            Some(waiting) => t.receive(&self.read_buf, waiting),
        };
        self.read_buf.clear();
        let got = match res {
            Ok(got) => got,
            Err(e) => {
                // rustls queued an alert telling the peer why: one
                // best-effort write, the connection is closed either way.
                let alert = t.take_output();
                if let Some(mut s) = c.stream.as_ref() {
                    let _ = s.write(&alert);
                }
                if e == TlsError::NotTls {
                    log_not_tls(c.peer);
                    self.close_conn(key, None);
                } else {
                    self.close_conn(key, Some(e.to_net_error()));
                }
                return false;
            }
        };
        if got.handshake_done {
            if let Some(k) = t.handshake_timer.take() {
                self.wheel.cancel(k);
            }
            self.stats.tls_handshakes += 1;
            if t.resumed() == Some(true) {
                self.stats.tls_resumed += 1;
            }
            log::trace!(
                "{} TLS up: {}",
                ConnId(key),
                t.describe().unwrap_or_default()
            );
        }
        let outbound = c.server.is_none();
        self.tls_queue_output(key);
        if got.handshake_done && outbound {
            self.emit_conn(key, crate::reactor::service::ConnEvent::Connect);
        }
        let Some(c) = self.conns.get_mut(key) else {
            return false;
        };
        if c.state == State::Closed {
            return false;
        }
        if got.handshake_done && c.wq.is_empty() && matches!(c.state, State::Ending { .. }) {
            // `end()` came during the handshake and nothing is queued: the
            // flush's completion sends the FIN.
            self.flush(key);
        }
        if let Some(buf) = self
            .conns
            .get_mut(key)
            .filter(|c| c.rbuf.is_some())
            .map(|c| c.take_unread())
        {
            self.deliver_data(key, buf);
        }
        if got.peer_closed {
            // The peer's clean end: what `read() == 0` is for plain TCP.
            self.on_fin(key);
            return false;
        }
        self.conns
            .get(key)
            .is_some_and(|c| c.state != State::Closed)
    }

    /// `read() == 0` on a TLS connection: without `close_notify` first,
    /// the stream may have been cut short, so it is an error. A peer that
    /// closes before sending a single byte (a TCP health check, a port
    /// scan) is closed quietly.
    pub(crate) fn tls_eof(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(t) = c.tls.as_ref() else {
            return;
        };
        if !t.first_byte_seen && matches!(t.session, rustls::Connection::Server(_)) {
            self.close_conn(key, None);
            return;
        }
        let err = if t.is_handshaking() {
            NetError::new(
                ErrorCode::Tls,
                "tls",
                "the peer closed the connection during the TLS handshake",
            )
        } else {
            NetError::new(
                ErrorCode::TlsTruncated,
                "read",
                "the peer closed TCP without close_notify",
            )
        };
        self.close_conn(key, Some(err));
    }

    /// `write()` on a TLS connection: encrypt `data` (or hold it until the
    /// handshake is done), then the ciphertext takes the plain path: at
    /// once to the kernel when `at_once`, the rest queued.
    pub(crate) fn tls_write(
        &mut self,
        conn: ConnId,
        data: &[u8],
        at_once: bool,
    ) -> Result<bool, WriteError> {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return Err(WriteError::Closed);
        };
        let Some(t) = c.tls.as_mut() else {
            return Err(WriteError::Closed);
        };
        if t.is_handshaking() {
            // Held plaintext cannot reach the socket before the handshake
            // is done, so the socket's `WouldBlock` never comes to trigger
            // the hard cap: check it here.
            let held = t.held_plaintext() + c.wq.footprint();
            let cap = c.opts.max_write_buffer;
            if held + data.len() > cap {
                log::warn!("{conn} slow consumer: {held} bytes held during the TLS handshake, cap {cap}; destroying");
                let err = NetError::new(
                    ErrorCode::SlowConsumer,
                    "write",
                    format!("{held} bytes held during the TLS handshake, cap {cap}"),
                );
                self.close_conn(conn.0, Some(err));
                return Err(WriteError::Closed);
            }
        }
        t.send(data);
        if at_once && t.session.wants_write() {
            // The fast path: rustls' record buffers go to the kernel in one
            // writev, with no copy into a queue buffer; only what the
            // kernel does not take is queued.
            if let Some(mut s) = c.stream.as_ref() {
                let mut written = 0u64;
                let mut failed = None;
                while t.session.wants_write() {
                    self.stats.write_calls += 1;
                    match t.session.write_tls(&mut s) {
                        Ok(n) => written += n as u64,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            c.writable = false;
                            break;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                c.bytes_written += written;
                self.stats.bytes_written += written;
                if written > 0 {
                    Self::touch(c, &mut self.wheel, self.now_tick, conn.0);
                }
                if let Some(e) = failed {
                    self.close_conn(conn.0, Some(NetError::from_io("write", &e)));
                    return Err(WriteError::Closed);
                }
            }
        }
        let ct = match self.conns.get_mut(conn.0).and_then(|c| c.tls.as_mut()) {
            Some(t) => t.take_output(),
            None => return Err(WriteError::Closed),
        };
        self.queue_rest(conn, crate::reactor::api::Rest::Shared(ct))
    }
}

/// Log a plain-text client on a TLS port at debug level, at the 1st, 2nd,
/// 4th, 8th... occurrence only.
pub(crate) fn log_not_tls(peer: Option<std::net::SocketAddr>) {
    let n = NOT_TLS.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        match peer {
            Some(p) => log::debug!("{p}: not a TLS client, closed ({n} so far)"),
            None => log::debug!("not a TLS client, closed ({n} so far)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TlsSession, TlsSession) {
        let (cert, key) = fixture();
        let server_cfg = rustls::ServerConfig::builder_with_provider(config::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_cfg = rustls::ClientConfig::builder_with_provider(config::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let s = TlsSession::server(&ServerTls::new(Arc::new(server_cfg))).unwrap();
        let c = TlsSession::client(&ClientTls::new(
            Arc::new(client_cfg),
            ServerName::try_from("localhost").unwrap(),
        ))
        .unwrap();
        (s, c)
    }

    /// A self-signed certificate for "localhost" from the test fixtures.
    fn fixture() -> (
        rustls::pki_types::CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        use rustls::pki_types::pem::PemObject;
        let cert = rustls::pki_types::CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
        (cert, key)
    }

    const TEST_CERT: &str = include_str!("testdata/localhost.crt");
    const TEST_KEY: &str = include_str!("testdata/localhost.key");

    /// Move everything each side has to send to the other, until quiet.
    fn pump(a: &mut TlsSession, b: &mut TlsSession, pa: &mut BytesMut, pb: &mut BytesMut) {
        loop {
            let x = a.take_output();
            let y = b.take_output();
            if x.is_empty() && y.is_empty() {
                return;
            }
            b.receive(&x, pb).unwrap();
            a.receive(&y, pa).unwrap();
        }
    }

    #[test]
    fn handshake_then_data_both_ways_and_held_plaintext() {
        let (mut s, mut c) = pair();
        let (mut ps, mut pc) = (BytesMut::new(), BytesMut::new());
        s.send(b"banner");
        assert_eq!(s.held_plaintext(), 6, "held until the handshake is done");
        c.send(b"hello");
        pump(&mut c, &mut s, &mut pc, &mut ps);
        assert!(!s.is_handshaking() && !c.is_handshaking());
        assert_eq!(s.held_plaintext(), 0);
        assert_eq!(&ps[..], b"hello");
        assert_eq!(&pc[..], b"banner");
        assert_eq!(s.resumed(), Some(false));
    }

    #[test]
    fn close_notify_is_peer_closed() {
        let (mut s, mut c) = pair();
        let (mut ps, mut pc) = (BytesMut::new(), BytesMut::new());
        pump(&mut c, &mut s, &mut pc, &mut ps);
        c.send(b"last");
        c.close();
        let out = c.take_output();
        let r = s.receive(&out, &mut ps).unwrap();
        assert!(r.peer_closed);
        assert_eq!(&ps[..], b"last");
    }

    #[test]
    fn close_during_handshake_waits_for_it() {
        let (mut s, mut c) = pair();
        let (mut ps, mut pc) = (BytesMut::new(), BytesMut::new());
        s.send(b"bye");
        s.close();
        assert!(!s.close_sent());
        let hello = c.take_output();
        s.receive(&hello, &mut ps).unwrap();
        let flight = s.take_output();
        c.receive(&flight, &mut pc).unwrap();
        let fin = c.take_output();
        let r = s.receive(&fin, &mut ps).unwrap();
        assert!(r.handshake_done);
        assert!(s.close_sent());
        let rest = s.take_output();
        let r = c.receive(&rest, &mut pc).unwrap();
        assert_eq!(&pc[..], b"bye");
        assert!(r.peer_closed);
    }

    #[test]
    fn plain_text_is_not_tls() {
        let (mut s, _) = pair();
        let mut p = BytesMut::new();
        assert_eq!(
            s.receive(b"GET / HTTP/1.1\r\n", &mut p),
            Err(TlsError::NotTls)
        );
    }

    #[test]
    fn garbage_after_a_handshake_byte_is_a_protocol_error() {
        let (mut s, _) = pair();
        let mut p = BytesMut::new();
        let garbage = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5];
        assert!(matches!(
            s.receive(&garbage, &mut p),
            Err(TlsError::Protocol(_))
        ));
    }

    #[test]
    fn large_transfer_is_byte_exact() {
        let (mut s, mut c) = pair();
        let (mut ps, mut pc) = (BytesMut::new(), BytesMut::new());
        pump(&mut c, &mut s, &mut pc, &mut ps);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        c.send(&data);
        let ct = c.take_output();
        assert!(ct.len() > data.len());
        // Fed in odd-sized chunks, as a socket would deliver it.
        for chunk in ct.chunks(7919) {
            s.receive(chunk, &mut ps).unwrap();
        }
        assert_eq!(&ps[..], &data[..]);
    }
}
