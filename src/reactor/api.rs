//! The socket operations applications call: Node's `net.Socket` methods.

use super::config::{KEEP_READ_BUFFER_MIN_FILL, MAX_IDLE_TIMEOUT_MS, WRITE_COPY_MAX};
use super::timers::TimerEntry;
use super::token::ConnId;
use super::{Pending, Reactor};
use crate::reactor::conn::state::State;
use crate::reactor::conn::write_queue::ENTRY_OVERHEAD;
use crate::reactor::net::error::{ErrorCode, NetError, WriteError};
use bytes::{Buf, Bytes, BytesMut};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Why `end()` refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EndError {
    /// No such connection.
    NotFound,
    /// `end()` was already called, or the connection is closed.
    AlreadyEnded,
}

impl fmt::Display for EndError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndError::NotFound => "no such connection",
            EndError::AlreadyEnded => "already ended",
        })
    }
}

impl std::error::Error for EndError {}

/// What a write leaves for the queue: a buffer it can share, or bytes it
/// borrows and the queue must copy (once: small ones straight into its tail).
pub(crate) enum Rest<'a> {
    Shared(Bytes),
    Copied(&'a [u8]),
}

impl Rest<'_> {
    fn len(&self) -> usize {
        match self {
            Rest::Shared(b) => b.len(),
            Rest::Copied(s) => s.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Reactor {
    /// Queue `data` on `conn`; it is written at the end of the current
    /// phase, together with whatever else the phase writes to `conn`, in
    /// one `writev`. The first reply to the connection whose `data` is being
    /// handled goes to the kernel at once instead (see `admit_write`).
    /// Returns `Ok(true)` while the queue is below the high-water mark and
    /// `Ok(false)` once it reaches it (then wait for `drain`), like Node's
    /// `socket.write`.
    ///
    /// The hard cap (`max_write_buffer`) counts only what the peer has left
    /// us holding: when a write finds the socket full and more than the cap
    /// already queued, the connection is destroyed as a slow consumer
    /// (`error` ERR_SLOW_CONSUMER, then `close(true)`) and `Err(Closed)` is
    /// returned. Bytes the kernel takes at once never count, so a peer that
    /// keeps up is never evicted, whatever the size of one write; a write
    /// that would take a queue the kernel has not yet been offered past the
    /// cap offers it at once instead of at the end of the phase. Memory held
    /// for one peer is at most the cap plus the one write that crossed it.
    pub fn write(&mut self, conn: ConnId, data: impl Into<Bytes>) -> Result<bool, WriteError> {
        let mut data = data.into();
        let (at_once, tls) = self.admit_write(conn)?;
        if tls {
            return self.tls_write(conn, &data, at_once);
        }
        if at_once {
            let written = self.write_direct(conn.0, &data).ok_or(WriteError::Closed)?;
            data.advance(written);
        }
        self.queue_rest(conn, Rest::Shared(data))
    }

    /// `write()` of bytes the caller keeps: the kernel takes what it can
    /// straight from `data`, and only what it does not take is copied into
    /// the queue. For a message built in a scratch buffer, or a slice of a
    /// buffer that outlives the call, this skips making a `Bytes` (an
    /// allocation, or a shared reference count to bump and drop). Results
    /// as for [`Reactor::write`].
    pub fn write_slice(&mut self, conn: ConnId, data: &[u8]) -> Result<bool, WriteError> {
        let (at_once, tls) = self.admit_write(conn)?;
        if tls {
            return self.tls_write(conn, data, at_once);
        }
        let written = if at_once {
            self.write_direct(conn.0, data).ok_or(WriteError::Closed)?
        } else {
            0
        };
        self.queue_rest(conn, Rest::Copied(&data[written..]))
    }

    /// `write()` from a borrowed buffer, typically the read buffer `on_data`
    /// was given: the kernel takes what it can straight from `data`; only
    /// the rest is queued. A rest of at most [`WRITE_COPY_MAX`] bytes, or one
    /// that fills less than a [`KEEP_READ_BUFFER_MIN_FILL`]th of the buffer,
    /// is copied (a small view would keep the whole read allocation alive
    /// while it waits); a larger one is split off without a copy. `data` is
    /// empty afterwards, whatever the result, and keeps its capacity when
    /// nothing was split off, so the loop can reuse it for the next read: an
    /// echo of small messages allocates nothing. Results as for
    /// [`Reactor::write`].
    pub fn write_from(&mut self, conn: ConnId, data: &mut BytesMut) -> Result<bool, WriteError> {
        let written = match self.admit_write(conn) {
            Ok((at_once, true)) => {
                let res = self.tls_write(conn, data, at_once);
                data.clear();
                return res;
            }
            Ok((true, false)) => self.write_direct(conn.0, data),
            Ok((false, false)) => Some(0),
            Err(e) => {
                data.clear();
                return Err(e);
            }
        };
        let Some(written) = written else {
            data.clear();
            return Err(WriteError::Closed);
        };
        let left = data.len() - written;
        if left <= WRITE_COPY_MAX || left * KEEP_READ_BUFFER_MIN_FILL < data.capacity() {
            let res = self.queue_rest(conn, Rest::Copied(&data[written..]));
            data.clear();
            return res;
        }
        data.advance(written);
        let rest = data.split().freeze();
        self.queue_rest(conn, Rest::Shared(rest))
    }

    /// The checks before a write: `Ok((true, _))` when the bytes may go to
    /// the kernel at once, `Ok((false, _))` when they are queued for the end
    /// of the phase (or behind others). The second field says the
    /// connection is TLS (its plaintext goes through `tls_write`).
    ///
    /// At once means: the first reply to the connection whose `data` is
    /// being handled, with nothing queued before it, the socket writable and
    /// not corked. A request-response peer gets its answer with one `write` and
    /// no queue entry, as before coalescing. Writes to any other connection
    /// (a broadcast, a timer's ping, a message from another thread) wait
    /// for the end of the phase, so a member that gets sixteen messages in
    /// one phase costs one `writev`, not sixteen `write`s.
    fn admit_write(&mut self, conn: ConnId) -> Result<(bool, bool), WriteError> {
        let replying = self.current == Some(conn.0);
        let Some(c) = self.conns.get_mut(conn.0) else {
            return Err(WriteError::NotFound);
        };
        if !c.state.accepts_writes() || c.end_after_connect {
            return Err(match c.state {
                State::Closed => WriteError::Closed,
                _ => WriteError::AfterEnd,
            });
        }
        let at_once = replying
            && c.wq.is_empty()
            && c.writable
            && c.corked == 0
            && c.state != State::Connecting;
        if at_once {
            // Only the first reply of a callback: a burst of writes to the
            // connection being served leaves as one `write` and one `writev`.
            self.current = None;
        }
        Ok((at_once, c.tls.is_some()))
    }

    /// Queue what the kernel did not take, enforce the hard cap and report
    /// the high-water mark.
    pub(crate) fn queue_rest(&mut self, conn: ConnId, rest: Rest<'_>) -> Result<bool, WriteError> {
        if !rest.is_empty() {
            self.queue_bytes(conn, rest)?;
        }
        let Some(c) = self.conns.get_mut(conn.0) else {
            return Err(WriteError::Closed);
        };
        if c.state == State::Closed {
            return Err(WriteError::Closed);
        }
        let queued = c.queued();
        let below = queued < c.high_water_mark;
        if !below && !c.need_drain {
            c.need_drain = true;
            if queued == 0 {
                // A zero high-water mark reports backpressure on every
                // write, even one the kernel took whole; no flush will come
                // to emit `drain`, so it is queued now (Node emits `drain`
                // once the buffer is empty). `need_drain` stays set until it
                // is delivered, so a burst of writes queues one.
                self.pending.push_back(Pending::Drain(conn));
            }
        }
        Ok(below)
    }

    /// The queueing part of [`Reactor::queue_rest`], for a non-empty rest:
    /// the slow-consumer check, the push, and the flush it schedules.
    fn queue_bytes(&mut self, conn: ConnId, rest: Rest<'_>) -> Result<(), WriteError> {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return Err(WriteError::Closed);
        };
        if c.state == State::Closed {
            return Err(WriteError::Closed);
        }
        let cap = c.opts.max_write_buffer;
        // The socket said `WouldBlock` since the last flush and what is
        // queued already passes the cap: the peer is not taking what we
        // send. (A writable socket only means the queue waits for the
        // phase's flush, not that the peer is slow.)
        let held = c.wq.footprint() + (c.queued() - c.wq.len());
        if !c.writable && held > cap {
            log::warn!("{conn} slow consumer: {held} bytes queued, cap {cap}; destroying");
            let err = NetError::new(
                ErrorCode::SlowConsumer,
                "write",
                format!("{held} bytes queued, cap {cap}"),
            );
            self.close_conn(conn.0, Some(err));
            return Err(WriteError::Closed);
        }
        let offer_now = c.writable && held + rest.len() + ENTRY_OVERHEAD > cap;
        self.stats.queued_add(rest.len());
        match rest {
            Rest::Shared(b) => c.wq.push(b),
            Rest::Copied(s) => c.wq.push_slice(s),
        }
        if offer_now {
            // Past the cap without the kernel having been asked: offer
            // the queue now rather than at the end of the phase, so a
            // burst to a peer that reads goes through, and one to a peer
            // that does not finds the socket full at its next write
            // (memory stays within the cap plus one write). A flush that
            // fails closes the connection: `queue_rest` looks again.
            self.flush(conn.0);
        } else if c.writable && c.corked == 0 && !c.in_flush_list {
            // Written at the end of the phase. (A socket that said
            // `WouldBlock` is flushed by its writable edge instead; a
            // corked one at `uncork()`.)
            c.in_flush_list = true;
            self.flush_list.push(conn.0);
        }
        Ok(())
    }

    /// Node's `pipe` step: write `data` to `dst`; when that reaches the
    /// high-water mark, pause reading `src` until `dst` drains (then `src`
    /// is resumed before `dst`'s `drain` is delivered). `src == dst` is an
    /// echo. Memory per pipe stays near the high-water mark however fast
    /// `src` sends and however slowly `dst` reads.
    pub fn pipe_write(
        &mut self,
        src: ConnId,
        dst: ConnId,
        data: impl Into<Bytes>,
    ) -> Result<bool, WriteError> {
        let below = self.write(dst, data)?;
        if !below {
            self.pause_until_drain(src, dst);
        }
        Ok(below)
    }

    /// [`Reactor::pipe_write`] from a borrowed buffer (see
    /// [`Reactor::write_from`]).
    pub fn pipe_write_from(
        &mut self,
        src: ConnId,
        dst: ConnId,
        data: &mut BytesMut,
    ) -> Result<bool, WriteError> {
        let below = self.write_from(dst, data)?;
        if !below {
            self.pause_until_drain(src, dst);
        }
        Ok(below)
    }

    fn pause_until_drain(&mut self, src: ConnId, dst: ConnId) {
        if self.conns.get(dst.0).is_none() {
            return;
        }
        // Kept beside the connections, not in each: an idle connection
        // should not pay for a pipe it is not in.
        self.piped.insert(dst.0, src.0);
        self.pause(src);
    }

    /// `cork()`: until the matching [`Reactor::uncork`], `write()` only
    /// queues, not even the first reply goes at once and the end of the
    /// phase does not flush: Node's `socket.cork()`. Writes are coalesced
    /// per phase anyway (see [`Reactor::write`]); cork is for a callback
    /// that answers a pipelined batch and wants the whole answer in one
    /// `writev`, the first reply included. Calls nest. A writable edge may
    /// still flush what is queued; `end()` uncorks. No-op on an unknown id.
    pub fn cork(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.corked = c.corked.saturating_add(1);
        }
    }

    /// `uncork()`: undo one `cork()`; at the last one, send what was queued.
    pub fn uncork(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        if c.corked == 0 {
            return;
        }
        c.corked -= 1;
        if c.corked == 0 && c.writable && !c.wq.is_empty() && c.state != State::Closed {
            self.flush(conn.0);
        }
    }

    /// `end()`: refuse further writes, flush the queue, then send FIN
    /// (`shutdown(Write)`). Reading goes on until the peer's FIN.
    pub fn end(&mut self, conn: ConnId) -> Result<(), EndError> {
        self.end_conn(conn.0)
    }

    /// `end(data)`: write `data`, then end.
    pub fn end_with(&mut self, conn: ConnId, data: impl Into<Bytes>) -> Result<(), EndError> {
        match self.write(conn, data) {
            Ok(_) => {}
            Err(WriteError::NotFound) => return Err(EndError::NotFound),
            Err(_) => return Err(EndError::AlreadyEnded),
        }
        self.end_conn(conn.0)
    }

    /// `destroy()`: close at once, dropping whatever is queued. `close(false)`
    /// follows in the close phase. No-op on a closed or unknown id.
    pub fn destroy(&mut self, conn: ConnId) {
        self.close_conn(conn.0, None);
    }

    /// `resetAndDestroy()`: close at once with `SO_LINGER` 0, so the kernel
    /// sends RST instead of FIN and drops unsent data. `close(false)` follows.
    pub fn reset_and_destroy(&mut self, conn: ConnId) {
        if let Some(s) = self.conns.get(conn.0).and_then(|c| c.stream.as_ref()) {
            // Best effort: if the option cannot be set, this is a plain destroy.
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
        self.close_conn(conn.0, None);
    }

    /// `destroy(err)`: close at once and report `err` before `close(true)`.
    pub fn destroy_with_error(&mut self, conn: ConnId, err: NetError) {
        self.close_conn(conn.0, Some(err));
    }

    /// `pause()`: stop reading. The kernel buffer fills and TCP flow control
    /// slows the peer down.
    pub fn pause(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn.0) {
            if !c.paused {
                c.paused = true;
                self.stats.pauses += 1;
            }
        }
    }

    /// `resume()`: read again. Data that was already readable (or already
    /// buffered) is delivered from the ready list in the next iteration, not
    /// left waiting for an edge that will not come.
    pub fn resume(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        if !c.paused {
            return;
        }
        c.paused = false;
        // Whatever the buffer holds when the ready list serves the
        // connection is handed over again. Set even if the buffer looks
        // empty: inside this connection's own `data` callback the bytes are
        // out on loan to the callback and come back when it returns.
        c.redeliver = true;
        self.park(super::token::Kind::Conn, conn.0);
    }

    /// Is `conn` paused?
    pub fn is_paused(&self, conn: ConnId) -> bool {
        self.conns.get(conn.0).is_some_and(|c| c.paused)
    }

    /// Take the bytes read but not consumed (for example a final line
    /// without a terminator, at `end`).
    pub fn take_unread(&mut self, conn: ConnId) -> BytesMut {
        self.conns
            .get_mut(conn.0)
            .map(|c| c.take_unread())
            .unwrap_or_default()
    }

    /// Node's `socket.setTimeout(ms)`: emit `timeout` after `after` of
    /// inactivity in either direction (`None` or zero: off). The connection is
    /// not closed. Activity only records a timestamp; the timer re-arms itself
    /// for the remainder when it fires.
    pub fn set_idle_timeout(&mut self, conn: ConnId, after: Option<Duration>) {
        let key = conn.0;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(t) = c.idle_timer.take() {
            self.wheel.cancel(t);
        }
        // Clamped to MAX_IDLE_TIMEOUT_MS (see there).
        let ms = after.map(super::timers::ms_ceil).unwrap_or(0);
        let ms = u32::try_from(ms).unwrap_or(MAX_IDLE_TIMEOUT_MS);
        c.idle_ms = ms;
        c.last_activity = self.now_tick;
        if ms > 0 && c.state != State::Closed {
            c.idle_timer = Some(self.wheel.insert(
                self.now_tick.saturating_add(u64::from(ms)),
                TimerEntry::Idle(key),
            ));
        }
    }

    /// The idle timeout in force on `conn` (Node's `socket.timeout`); `None` when it is off or
    /// `conn` is gone. An application that ends a connection on `timeout` re-arms with it to
    /// give the peer one more period: the timeout is one-shot until activity, and a FIN sent
    /// is no activity.
    pub fn idle_timeout(&self, conn: ConnId) -> Option<Duration> {
        self.conns
            .get(conn.0)
            .filter(|c| c.idle_ms > 0)
            .map(|c| Duration::from_millis(u64::from(c.idle_ms)))
    }

    /// `TCP_NODELAY` on or off.
    pub fn set_no_delay(&mut self, conn: ConnId, on: bool) -> std::io::Result<()> {
        match self.conns.get(conn.0).and_then(|c| c.stream.as_ref()) {
            Some(s) => s.set_nodelay(on),
            None => Ok(()),
        }
    }

    /// TCP keep-alive with the first probe after `initial_delay`.
    pub fn set_keep_alive(
        &mut self,
        conn: ConnId,
        enable: bool,
        initial_delay: Duration,
    ) -> std::io::Result<()> {
        let Some(s) = self.conns.get(conn.0).and_then(|c| c.stream.as_ref()) else {
            return Ok(());
        };
        let sock = socket2::SockRef::from(s);
        if enable {
            let ka =
                socket2::TcpKeepalive::new().with_time(initial_delay.max(Duration::from_secs(1)));
            sock.set_tcp_keepalive(&ka)
        } else {
            sock.set_keepalive(false)
        }
    }

    /// Lifecycle state of `conn`.
    pub fn state(&self, conn: ConnId) -> Option<State> {
        self.conns.get(conn.0).map(|c| c.state)
    }

    /// Can `write()` be called (Node's `socket.writable`)?
    pub fn is_writable(&self, conn: ConnId) -> bool {
        self.conns
            .get(conn.0)
            .is_some_and(|c| c.state.accepts_writes() && !c.end_after_connect)
    }

    /// Bytes received (`socket.bytesRead`).
    pub fn bytes_read(&self, conn: ConnId) -> u64 {
        self.conns.get(conn.0).map_or(0, |c| c.bytes_read)
    }

    /// Bytes handed to the kernel (`socket.bytesWritten` minus the queue).
    pub fn bytes_written(&self, conn: ConnId) -> u64 {
        self.conns.get(conn.0).map_or(0, |c| c.bytes_written)
    }

    /// Bytes queued and not yet sent (`socket.writableLength`).
    pub fn buffer_size(&self, conn: ConnId) -> usize {
        self.conns.get(conn.0).map_or(0, |c| c.queued())
    }

    /// Is `conn` a TLS connection whose handshake is complete? `None` for
    /// plain TCP or an unknown id; `Some(false)` while the handshake runs.
    pub fn tls_established(&self, conn: ConnId) -> Option<bool> {
        let t = self.conns.get(conn.0)?.tls.as_ref()?;
        Some(!t.is_handshaking())
    }

    /// Did `conn`'s TLS handshake resume an earlier session? `None` for
    /// plain TCP, an unknown id, or while the handshake runs.
    pub fn tls_resumed(&self, conn: ConnId) -> Option<bool> {
        self.conns.get(conn.0)?.tls.as_ref()?.resumed()
    }

    /// Remote address.
    pub fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(conn.0).and_then(|c| c.peer)
    }

    /// Local address.
    pub fn local_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns
            .get(conn.0)
            .and_then(|c| c.stream.as_ref())
            .and_then(|s| s.local_addr().ok())
    }

    /// The server that accepted `conn`, if any.
    pub fn server_of(&self, conn: ConnId) -> Option<super::token::ServerId> {
        self.conns.get(conn.0).and_then(|c| c.server)
    }
}
