//! One connection's state: socket, buffers, lifecycle and readiness.
//!
//! The reactor owns these in a slab; applications see them only through a
//! `ConnId` and the `Reactor` methods. Memory held by an idle connection is
//! this struct alone: the read buffer and the write queue allocate only while
//! data is in them and give their memory back when they empty (an idle
//! connection costs a few hundred bytes, not two 64 KiB buffers).

pub mod state;
pub mod write_queue;

use crate::reactor::config::SocketOptions;
use crate::reactor::net::error::NetError;
use crate::reactor::token::ServerId;
use crate::timer::{Tick, TimerKey};
use bytes::BytesMut;
use mio::net::TcpStream;
use state::State;
use std::net::SocketAddr;
use write_queue::WriteQueue;

/// A connection as the reactor stores it.
#[derive(Debug)]
pub struct Conn {
    /// The socket; `None` once closed (the fd is released at once, the entry
    /// stays until the close phase has delivered `close`).
    pub stream: Option<TcpStream>,
    /// Lifecycle.
    pub state: State,
    /// The server that accepted it; `None` for outbound connections.
    pub server: Option<ServerId>,
    /// The service its events go to, and where its state is. `None` only
    /// for an outbound connection until the callback that opened it returns
    /// (its events meanwhile are dropped, with a debug log).
    pub(crate) owner: Option<crate::reactor::Owner>,
    /// Bytes read but not yet consumed by the application.
    pub rbuf: BytesMut,
    /// Bytes queued for the socket.
    pub wq: WriteQueue,
    /// Edge cache: the last read ended for budget, not `WouldBlock`.
    pub readable: bool,
    /// Edge cache: the last write did not hit `WouldBlock`.
    pub writable: bool,
    /// The last readiness event carried RDHUP or an error: a short read is
    /// not proof of a drained socket, read on to the FIN (mio PR #1110: the
    /// flag is a hint, the 0 from `read` is the truth).
    pub fin_hint: bool,
    /// `pause()` was called: do not read.
    pub paused: bool,
    /// Already on the ready list.
    pub in_ready: bool,
    /// `resume()` found buffered data: deliver it from the ready list.
    pub redeliver: bool,
    /// `write()` returned false; emit `drain` below the low-water mark.
    pub need_drain: bool,
    /// On the loop's flush list: bytes queued by a callback wait for the
    /// end of the phase, to leave in one `writev`.
    pub in_flush_list: bool,
    /// `end()` was called while still connecting.
    pub end_after_connect: bool,
    /// Node's cork count: while above 0, `write()` queues and the end of the
    /// phase does not flush, so everything leaves in one `writev` at
    /// `uncork()`.
    pub corked: u32,
    /// Options (watermarks, cap, half-open).
    pub opts: SocketOptions,
    /// Idle timeout in ms (`set_timeout`), 0 = off.
    pub idle_ms: u64,
    /// Armed idle timer, if any (re-armed lazily, see `reactor::timers`).
    pub idle_timer: Option<TimerKey>,
    /// Tick of the last read or write.
    pub last_activity: Tick,
    /// Connect timeout timer of an outbound connection.
    pub connect_timer: Option<TimerKey>,
    /// Bytes received from the socket.
    pub bytes_read: u64,
    /// Bytes handed to the socket.
    pub bytes_written: u64,
    /// Remote address (known after accept or connect).
    pub peer: Option<SocketAddr>,
    /// The error that closed it, delivered before `close` (boxed: rare, and
    /// an idle connection should stay small).
    pub error: Option<Box<NetError>>,
    /// `close(had_error)` argument.
    pub had_error: bool,
    /// The TLS session of a TLS connection; `None` for plain TCP (boxed:
    /// a plain connection pays one pointer, see `reactor::tls`).
    pub tls: Option<Box<crate::reactor::tls::TlsSession>>,
}

impl Conn {
    /// A fresh connection record.
    pub fn new(
        stream: Option<TcpStream>,
        state: State,
        server: Option<ServerId>,
        peer: Option<SocketAddr>,
        opts: SocketOptions,
        now: Tick,
    ) -> Conn {
        Conn {
            stream,
            state,
            server,
            owner: None,
            rbuf: BytesMut::new(),
            wq: WriteQueue::new(),
            readable: false,
            writable: false,
            fin_hint: false,
            paused: false,
            in_ready: false,
            redeliver: false,
            need_drain: false,
            in_flush_list: false,
            end_after_connect: false,
            corked: 0,
            opts,
            idle_ms: 0,
            idle_timer: None,
            last_activity: now,
            connect_timer: None,
            bytes_read: 0,
            bytes_written: 0,
            peer,
            error: None,
            had_error: false,
            tls: None,
        }
    }

    /// Bytes waiting to be sent, as the watermarks count them: the queue,
    /// plus plaintext a TLS session holds until its handshake is done.
    #[inline]
    pub fn queued(&self) -> usize {
        match &self.tls {
            None => self.wq.len(),
            Some(t) => self.wq.len() + t.held_plaintext(),
        }
    }

    /// A TLS handshake is still running (always false for plain TCP).
    #[inline]
    pub fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }
}
