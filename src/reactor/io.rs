//! The per-connection I/O paths: read, deliver, flush, half-close, close.
//!
//! Read path: `read()` into the spare capacity of the loop's read buffer (no
//! zeroing: `read_buf.rs`); if the connection has nothing buffered, the
//! filled buffer becomes the connection's (no copy), else the bytes are
//! appended to what waits. An emptied connection buffer goes back to the
//! loop, and a small rest in a big buffer is copied out so the big one can
//! go back: idle connections hold no read memory, a slow peer's partial
//! message costs its own size, and a small echo through `write_from`
//! allocates nothing. Hand the buffer to `on_data`, repeat until
//! `WouldBlock`, a FIN, `pause()`, or the budget (then the ready list).
//! Delivering after every read, not once per wakeup, lets a `pause()` issued
//! inside `on_data` take effect before the next read, which is what keeps
//! memory bounded for a pipe-like app such as the echo server.
//!
//! Write path: `write()` appends a `Bytes` to the connection's queue, and
//! the queue is written at the end of the phase (`flush_written`): a
//! connection that gets sixteen messages in one phase costs one `writev`,
//! not sixteen `write`s (Redis writes its replies once per client before the
//! loop sleeps; Node's stream buffers what is written while a write is in
//! flight). One exception keeps request-response as cheap as before: the
//! first reply to the connection whose `data` is being handled goes to the
//! kernel at once, straight from the caller's buffer, and only what the
//! kernel does not take is queued (libuv's `uv_try_write`). What the
//! kernel refuses waits for the next writable edge. A flush that empties an
//! `Ending` queue issues `shutdown(Write)`. Small writes are copied into one
//! contiguous tail of the queue (`write_queue.rs`), so such a flush is
//! usually one buffer and one `send(2)`; several buffers go with one
//! `sendmsg(2)` (both skip the VFS layer `writev` goes through).

use super::config::{
    KEEP_READ_BUFFER_MIN_FILL, READ_BUDGET_BYTES, READ_BUDGET_CALLS, READ_CHUNK,
    SPARE_READ_BUFFER_MAX, WRITE_BUDGET_BYTES,
};
use super::loopstats::{Callback, Site};
use super::timers::TimerEntry;
use super::token::{ConnId, Key, Kind};
use super::{read_buf, Pending, Reactor};
use crate::reactor::conn::state::State;
use crate::reactor::conn::write_queue::Flush;
use crate::reactor::conn::Conn;
use crate::reactor::net::error::NetError;
use crate::timer::{Tick, Wheel};
use bytes::BytesMut;
use rustix::io::Errno;
use std::io::{self, Write};
use std::net::Shutdown;

impl Reactor {
    /// Hand over what waits for redelivery, then read from the socket until
    /// `WouldBlock`, FIN, pause or budget.
    ///
    /// Bytes left in the buffer by a paused application come first: a
    /// `read()` here may return 0, and a FIN acted on while they wait would
    /// close the connection with requests nobody saw (`end` must come after
    /// the last `data`). So while `redeliver` is set nothing is read.
    pub(crate) fn read(&mut self, key: Key) {
        let mut calls = 0;
        let mut bytes = 0;
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.paused || !c.state.reads_open() {
                return;
            }
            if calls >= READ_BUDGET_CALLS || bytes >= READ_BUDGET_BYTES {
                // Budget spent with data possibly left: no new edge will
                // come for it, so serve it next iteration (mio #45).
                self.park(Kind::Conn, key);
                return;
            }
            if c.redeliver {
                c.redeliver = false;
                if c.rbuf.is_some() {
                    // Counted as a call: an application that pauses and
                    // resumes inside every `data` cannot spin here.
                    calls += 1;
                    let buf = c.take_unread();
                    self.deliver_data(key, buf);
                    continue;
                }
            }
            if !c.readable {
                return;
            }
            let Some(stream) = c.stream.as_ref() else {
                return;
            };
            // The loop's buffer is empty here; make room for one chunk (a
            // no-op unless it was handed to a connection and not returned).
            self.read_buf.reserve(READ_CHUNK);
            let asked = self.read_buf.capacity() - self.read_buf.len();
            match read_buf::read_into(stream, &mut self.read_buf) {
                Ok(0) => {
                    c.readable = false;
                    if c.tls.is_some() {
                        self.tls_eof(key);
                    } else {
                        self.on_fin(key);
                    }
                    return;
                }
                Ok(n) => {
                    calls += 1;
                    bytes += n;
                    c.bytes_read += n as u64;
                    if c.tls.is_some() {
                        // Ciphertext: through rustls (reactor::tls).
                        let drained = n < asked && !c.fin_hint;
                        if drained {
                            c.readable = false;
                        }
                        self.stats.bytes_read += n as u64;
                        Self::touch(c, &mut self.wheel, self.now_tick, key);
                        if !self.tls_read(key) || drained {
                            return;
                        }
                        continue;
                    }
                    let buf = match c.rbuf.take() {
                        // The common case: hand the filled buffer over whole.
                        None => std::mem::take(&mut self.read_buf),
                        // A partial message waits: append (one copy).
                        Some(mut waiting) => {
                            waiting.extend_from_slice(&self.read_buf);
                            self.read_buf.clear();
                            *waiting
                        }
                    };
                    // A short read drained the socket: the next read() could
                    // only say WouldBlock, so skip it (tokio clears readiness
                    // the same way). New data, or a FIN, raises a new edge.
                    // Unless this edge reported the peer's FIN (RDHUP): then
                    // read on to see the 0 that closes the read side.
                    let drained = n < asked && !c.fin_hint;
                    if drained {
                        c.readable = false;
                    }
                    self.stats.bytes_read += n as u64;
                    Self::touch(c, &mut self.wheel, self.now_tick, key);
                    self.deliver_data(key, buf);
                    if drained {
                        return;
                    }
                }
                Err(Errno::AGAIN) => {
                    c.readable = false;
                    return;
                }
                Err(Errno::INTR) => {}
                Err(e) => {
                    let e = io::Error::from(e);
                    self.close_conn(key, Some(NetError::from_io("read", &e)));
                    return;
                }
            }
        }
    }

    /// Hand `buf` (what waited for the application plus what was just
    /// read) to `on_data`, then keep what the app left.
    pub(crate) fn deliver_data(&mut self, key: Key, mut buf: BytesMut) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let owner = c.owner;
        self.current = Some(key);
        let id = ConnId(key);
        match owner {
            Some(o) => {
                self.with_host_raw(o.service, Site::conn(Callback::Data, id), |host, r| {
                    host.conn_event(r, id, o.slot, super::service::ConnEvent::Data(&mut buf))
                });
            }
            None => {
                log::debug!("{id} has no service: {} bytes dropped", buf.len());
                buf.clear();
            }
        }
        self.current = None;
        if buf.is_empty() {
            // An empty buffer leaves the connection (idle connections hold
            // no read memory) and goes back to the loop.
            self.recycle_read_buf(buf);
        } else if let Some(c) = self.conns.get_mut(key) {
            if c.state == State::Closed {
                // Nothing more will be read: the rest is dropped.
            } else if buf.len() * KEEP_READ_BUFFER_MIN_FILL < buf.capacity() {
                // A small rest in a big buffer: keep a copy of the rest, so
                // a slow peer's partial message costs its own size.
                c.keep_unread(BytesMut::from(&buf[..]));
                buf.clear();
                self.recycle_read_buf(buf);
            } else {
                c.keep_unread(buf);
            }
        }
        // The boundary of the `data` callback, once the connection has its
        // unread rest back (a `drain` it caused may resume and redeliver).
        self.deliver_pending();
    }

    /// Give an emptied connection buffer back to the loop, if the loop's own
    /// was handed out and this one is not oversized.
    #[inline]
    fn recycle_read_buf(&mut self, mut buf: BytesMut) {
        if buf.capacity() > SPARE_READ_BUFFER_MAX {
            return;
        }
        if self.read_buf.capacity() == 0 {
            buf.clear();
            self.read_buf = buf;
        } else if self.plain_spare.capacity() == 0 {
            // A TLS connection's plaintext buffer (the loop's own read
            // buffer never left): kept for the next decryption.
            buf.clear();
            self.plain_spare = buf;
        }
    }

    /// `read() == 0`: the peer's FIN, the only evidence we trust (for TLS:
    /// its `close_notify`).
    pub(crate) fn on_fin(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Ok(next) = c.state.on_peer_fin() else {
            return;
        };
        c.state = next;
        self.emit_conn(key, super::service::ConnEvent::End);
        if next == State::Closed {
            // We had already sent our FIN: both directions are done.
            self.close_conn(key, None);
            return;
        }
        if let Some(c) = self.conns.get(key) {
            if !c.opts.allow_half_open && c.state == State::ReadClosed {
                // Node's allowHalfOpen=false: end our side ourselves.
                let _ = self.end_conn(key);
            }
        }
    }

    /// Flush the write queue within the write budget.
    pub(crate) fn flush(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(stream) = c.stream.as_ref() else {
            return;
        };
        let mut s = CountCalls {
            stream,
            calls: &mut self.stats.write_calls,
        };
        let before = c.wq.len();
        let res = c.wq.flush_to(&mut s, WRITE_BUDGET_BYTES);
        // From the queue's length, not the count returned: an error discards
        // the count of what was written before it.
        self.stats.queued_sub(before - c.wq.len());
        match res {
            Ok((n, how)) => {
                c.bytes_written += n as u64;
                self.stats.bytes_written += n as u64;
                if n > 0 {
                    Self::touch(c, &mut self.wheel, self.now_tick, key);
                }
                match how {
                    Flush::Done => {}
                    Flush::Blocked => c.writable = false,
                    Flush::Budget => self.park(Kind::Conn, key),
                }
                self.after_flush(key);
            }
            Err(e) => self.close_conn(key, Some(NetError::from_io("write", &e))),
        }
    }

    /// The end of a phase: write what the phase's callbacks queued, one
    /// `writev` per connection however many messages it got (Redis writes
    /// its replies once per client before the loop sleeps,
    /// `handleClientsWithPendingWrites`; Node's stream buffers what is
    /// written while a write is in flight and sends it with `writev`). Then
    /// deliver the `drain` events those writes caused; what their callbacks
    /// write waits for the next phase's end (the poll does not block while
    /// the list is not empty).
    pub(crate) fn flush_written(&mut self) {
        if self.flush_list.is_empty() {
            return;
        }
        let mut list = std::mem::take(&mut self.flush_list);
        for key in list.drain(..) {
            let Some(c) = self.conns.get_mut(key) else {
                continue; // closed meanwhile (stale key)
            };
            c.in_flush_list = false;
            if c.writable && c.corked == 0 && !c.wq.is_empty() {
                self.flush(key);
            }
        }
        if self.flush_list.is_empty() {
            // Keep the list's memory for the next phase.
            self.flush_list = list;
        }
        self.deliver_pending();
    }

    /// The fast path of `write()` on an empty queue: hand the bytes to the
    /// kernel at once and queue only what it did not take. The common case,
    /// a socket with room, costs one `write` and no queue slot. Returns how
    /// many bytes the kernel took, or `None` if the connection failed and
    /// was closed.
    pub(crate) fn write_direct(&mut self, key: Key, data: &[u8]) -> Option<usize> {
        let Some(c) = self.conns.get_mut(key) else {
            return Some(0);
        };
        let Some(stream) = c.stream.as_ref() else {
            return Some(0);
        };
        let mut written = 0;
        while written < data.len() {
            self.stats.write_calls += 1;
            match read_buf::send(stream, &data[written..]) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    self.close_conn(key, Some(NetError::from_io("write", &e)));
                    return None;
                }
                Ok(n) => written += n,
                // Only WouldBlock proves the buffer is full: a short write
                // alone does not, and clearing `writable` without it would
                // wait for an edge that never comes.
                Err(Errno::AGAIN) => {
                    c.writable = false;
                    break;
                }
                Err(Errno::INTR) => {}
                Err(e) => {
                    let e = io::Error::from(e);
                    self.close_conn(key, Some(NetError::from_io("write", &e)));
                    return None;
                }
            }
        }
        c.bytes_written += written as u64;
        self.stats.bytes_written += written as u64;
        if written > 0 {
            Self::touch(c, &mut self.wheel, self.now_tick, key);
        }
        Some(written)
    }

    /// Drain notification and the deferred FIN of `end()`.
    fn after_flush(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        // Below the low-water mark, and at the latest when the queue is
        // empty: with a high-water mark of 0 or 1 the low one is 0, and
        // "less than 0" never holds (Node emits `drain` on an empty buffer).
        let queued = c.queued();
        if c.need_drain && (queued == 0 || queued < c.opts.low_water_mark()) {
            c.need_drain = false;
            self.pending.push_back(Pending::Drain(ConnId(key)));
        }
        // A TLS handshake still running holds `close_notify` back: no FIN
        // before it.
        if c.wq.is_empty() && matches!(c.state, State::Ending { .. }) && !c.tls_handshaking() {
            self.shutdown_write(key);
        }
    }

    /// Our queue is empty after `end()`: send FIN.
    fn shutdown_write(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(s) = c.stream.as_ref() {
            // ENOTCONN here means the peer already reset: the next read or
            // the close below reports it.
            let _ = s.shutdown(Shutdown::Write);
        }
        c.state = c.state.on_flushed();
        if c.state == State::Closed {
            self.close_conn(key, None);
        }
    }

    /// `end()`: no more writes; FIN once the queue is flushed.
    pub(crate) fn end_conn(&mut self, key: Key) -> Result<(), super::api::EndError> {
        let Some(c) = self.conns.get_mut(key) else {
            return Err(super::api::EndError::NotFound);
        };
        if c.state == State::Connecting {
            if c.end_after_connect {
                return Err(super::api::EndError::AlreadyEnded);
            }
            c.end_after_connect = true;
            return Ok(());
        }
        c.state = c
            .state
            .on_end()
            .map_err(|_| super::api::EndError::AlreadyEnded)?;
        c.corked = 0; // Node: end() uncorks
        if let Some(t) = c.tls.as_mut() {
            // close_notify before the FIN (after the handshake if it runs).
            t.close();
            let out = t.take_output();
            if !out.is_empty() {
                self.stats.queued_add(out.len());
                c.wq.push(out);
            }
            if c.wq.is_empty() && t.is_handshaking() {
                return Ok(()); // the handshake's end sends both
            }
        }
        if c.wq.is_empty() {
            self.shutdown_write(key);
        } else if c.writable {
            self.flush(key);
        }
        Ok(())
    }

    /// Close the socket now (destroy, error, or both directions done). The
    /// fd is released at once; `error` and `close` are delivered in the
    /// close phase, exactly once.
    pub(crate) fn close_conn(&mut self, key: Key, err: Option<NetError>) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.state == State::Closed && c.stream.is_none() {
            return;
        }
        // Dropping the stream closes the fd, and closing removes it from
        // epoll's interest list (the reactor never duplicates a socket's
        // descriptor), so no `epoll_ctl(DEL)` first: one system call less
        // per connection. Events already fetched for it in this iteration
        // are dropped by the token's generation check (mio #172).
        drop(c.stream.take());
        let was = c.state;
        c.state = State::Closed;
        self.stats.queued_sub(c.wq.len());
        c.wq.clear();
        c.rbuf = None;
        c.paused = false;
        if let Some(t) = c.idle_timer.take() {
            self.wheel.cancel(t);
        }
        if let Some(t) = c.connect_timer.take() {
            self.wheel.cancel(t);
        }
        if let Some(t) = c.tls.take().and_then(|t| t.handshake_timer) {
            self.wheel.cancel(t);
        }
        if let Some(e) = &err {
            log::debug!("{} error in state {was}: {e}", ConnId(key));
            if e.code == crate::reactor::net::error::ErrorCode::SlowConsumer {
                self.stats.slow_consumers += 1;
            }
        }
        c.had_error = err.is_some();
        c.error = err.map(Box::new);
        self.closing.push(key);
    }

    /// Record activity for the idle timeout: a field write, and a wheel insert
    /// only if the timer is not armed (it is re-armed lazily when it fires,
    /// Netty's IdleStateHandler; per-activity timer work was node #268).
    /// Takes the connection its callers already hold: no second lookup on
    /// the per-read and per-write path.
    pub(crate) fn touch(c: &mut Conn, wheel: &mut Wheel<TimerEntry>, now: Tick, key: Key) {
        c.last_activity = now;
        if c.idle_ms > 0 && c.idle_timer.is_none() {
            c.idle_timer = Some(wheel.insert(
                now.saturating_add(u64::from(c.idle_ms)),
                TimerEntry::Idle(key),
            ));
        }
    }
}

/// The socket as a writer that counts its system calls into the loop's
/// statistics (one field increment per call).
///
/// Vectored writes go out with `sendmsg(2)`, and a single buffer (the usual
/// case since small writes share the queue's tail) with `send(2)`, not with
/// `writev(2)`: on a socket they do the same, but `writev` goes through the
/// VFS layer (`vfs_writev`, `sock_write_iter`) first, 2-3 % of a fan-out
/// server's samples under `perf record`. Both carry `MSG_NOSIGNAL`, as std's
/// `send` does.
struct CountCalls<'a> {
    stream: &'a mio::net::TcpStream,
    calls: &'a mut u64,
}

impl Write for CountCalls<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        *self.calls += 1;
        Ok(read_buf::send(self.stream, buf)?)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        *self.calls += 1;
        match bufs {
            [one] => Ok(read_buf::send(self.stream, one)?),
            _ => socket2::SockRef::from(self.stream).send_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
