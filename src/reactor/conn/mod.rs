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

/// Cache lines of a connection's slab entry that every event reads (the
/// generation and the hot fields below; a test checks), which the dispatch
/// fetches ahead.
pub const HOT_LINES: usize = 2;

/// A connection as the reactor stores it.
///
/// `repr(C)` keeps the declared order: the fields every event, read and
/// write touch come first, within the first 120 bytes (the write queue's
/// length leads the queue), so with the slab entry's generation before
/// them they fill the first two of the entry's five cache lines. The
/// slab keeps an entry's occupied/vacant mark in a niche of the queue's
/// `VecDeque` (its capacity), which follows the queue's length in the
/// second line; with the unread bytes boxed, nothing an event reads lies
/// further on. Rust's own order had spread those fields over all five. In Rust's own order the
/// booleans and the state went last and the counters in the middle, so
/// one ping-pong round trip touched all five lines: with a thousand
/// connections those were cache misses, the largest item of the reactor's
/// own samples in a `perf record` of the load generator.
#[derive(Debug)]
#[repr(C)]
pub struct Conn {
    // Hot: read or written for every event, read and write.
    /// Lifecycle.
    pub state: State,
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
    /// `close(had_error)` argument.
    pub had_error: bool,
    /// The socket; `None` once closed (the fd is released at once, the entry
    /// stays until the close phase has delivered `close`).
    pub stream: Option<TcpStream>,
    /// Node's cork count: while above 0, `write()` queues and the end of the
    /// phase does not flush, so everything leaves in one `writev` at
    /// `uncork()`.
    pub corked: u32,
    /// The service its events go to, and where its state is. `None` only
    /// for an outbound connection until the callback that opened it returns
    /// (its events meanwhile are dropped, with a debug log).
    pub(crate) owner: Option<crate::reactor::Owner>,
    /// Idle timeout in ms (`set_timeout`), 0 = off.
    pub idle_ms: u32,
    /// The TLS session of a TLS connection; `None` for plain TCP (boxed:
    /// a plain connection pays one pointer, see `reactor::tls`).
    pub tls: Option<Box<crate::reactor::tls::TlsSession>>,
    /// Tick of the last read or write.
    pub last_activity: Tick,
    /// `opts.high_water_mark`, copied here at creation (the options never
    /// change afterwards): every write compares the queue with it, and
    /// `opts` is a cache line further on.
    pub high_water_mark: usize,
    /// Bytes received from the socket.
    pub bytes_read: u64,
    /// Bytes handed to the socket.
    pub bytes_written: u64,
    /// Bytes read but not yet consumed by the application (a partial
    /// message it left, or data held while paused); `None` when there are
    /// none, never an empty buffer. Boxed: every read asks whether
    /// something waits, and one word answers it where a `BytesMut` took
    /// four, a cache line further on (see above).
    pub rbuf: Option<Box<BytesMut>>,
    /// Bytes queued for the socket.
    pub wq: WriteQueue,
    /// Options (watermarks, cap, half-open).
    pub opts: SocketOptions,
    // Cold: set up, timers, close.
    /// Armed idle timer, if any (re-armed lazily, see `reactor::timers`).
    pub idle_timer: Option<TimerKey>,
    /// Connect timeout timer of an outbound connection.
    pub connect_timer: Option<TimerKey>,
    /// The server that accepted it; `None` for outbound connections.
    pub server: Option<ServerId>,
    /// Remote address (known after accept or connect).
    pub peer: Option<SocketAddr>,
    /// The error that closed it, delivered before `close` (boxed: rare, and
    /// an idle connection should stay small).
    pub error: Option<Box<NetError>>,
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
            rbuf: None,
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
            high_water_mark: opts.high_water_mark,
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

    /// Take the bytes that wait for the application (empty if none).
    #[inline]
    pub fn take_unread(&mut self) -> BytesMut {
        self.rbuf.take().map(|b| *b).unwrap_or_default()
    }

    /// Keep `rest` for the application's next `data` (nothing if empty).
    #[inline]
    pub fn keep_unread(&mut self, rest: BytesMut) {
        self.rbuf = (!rest.is_empty()).then(|| Box::new(rest));
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
#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn the_fields_of_every_event_fit_in_two_cache_lines() {
        // The write queue's length is its first field.
        let ends = [
            offset_of!(Conn, state) + 1,
            offset_of!(Conn, stream) + std::mem::size_of::<Option<TcpStream>>(),
            offset_of!(Conn, owner) + std::mem::size_of::<Option<crate::reactor::Owner>>(),
            offset_of!(Conn, tls) + 8,
            offset_of!(Conn, bytes_written) + 8,
            offset_of!(Conn, rbuf) + 8,
            offset_of!(Conn, high_water_mark) + 8,
            offset_of!(Conn, idle_ms) + 4,
            offset_of!(Conn, last_activity) + 8,
            offset_of!(Conn, corked) + 4,
            offset_of!(Conn, wq) + 8,
        ];
        let last = ends.iter().max().copied().unwrap_or(0);
        // In debug builds mio adds a selector id to every socket (a 16-byte
        // `TcpStream`, 4 in release), which moves everything after it.
        let debug_extra = (std::mem::size_of::<Option<TcpStream>>() - 4).next_multiple_of(8);
        // The slab entry puts 8 bytes (the generation) before the value.
        assert!(
            8 + last <= HOT_LINES * 64 + debug_extra,
            "hot fields end at byte {last}"
        );
    }

    #[test]
    fn the_dispatch_prefetches_where_connections_are() {
        use crate::reactor::config::SocketOptions;
        use crate::reactor::token::{GenCounter, GenSlab};
        let mut gens = GenCounter::default();
        let mut slab = GenSlab::default();
        let new = || Conn::new(None, State::Open, None, None, SocketOptions::default(), 0);
        let keys: Vec<_> = (0..40).map(|_| slab.insert(&mut gens, new())).collect();
        slab.remove(keys[3]);
        slab.insert(&mut gens, new());
        assert!(slab.prefetch_addresses_hold());
    }
}
