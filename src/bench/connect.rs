//! `connect`: K concurrent connectors, each doing connect, one small
//! message, its echo, close, and again.
//!
//! A cycle's latency runs from the `connect()` call to the last echoed byte.
//! The connector closes with `destroy()` once the echo is in (nothing is
//! unread, so the kernel sends FIN, not RST) and starts the next cycle at
//! once, so K connections are always in progress. The closing side keeps
//! the TIME_WAIT; on loopback Linux reuses those ports
//! (`net.ipv4.tcp_tw_reuse = 2`, the default). A failed connect is retried
//! after [`RETRY_DELAY`] so a refused target does not spin the loop.
//!
//! Source addresses: at thousands of connections per second the closing
//! side's TIME_WAIT sockets fill the ephemeral port range (28,232 ports by
//! default) within seconds, and every `connect()` then searches it for a
//! free 4-tuple: on this generator that search (`__inet_hash_connect`,
//! `__inet_check_established`) was the largest cost, capping every server
//! at ~14 k connections/s (BENCHMARKS.md, "Connect rate"). Against an IPv4
//! loopback target the connectors therefore bind in turn to
//! [`LOOPBACK_SOURCES`] addresses of 127.0.0.0/8 (all local on Linux), each
//! with a port range of its own; another target is connected from the
//! kernel's choice.

use super::control::{ns_since, Outbox, Shared, ThreadStats};
use super::pattern::Pattern;
use super::Load;
use crate::{ConnId, ConnectOptions, Cx, Service, SocketOptions, TimerId};
use bytes::{Bytes, BytesMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Loopback source addresses the connectors rotate over (127.0.0.1 up):
/// each multiplies the 4-tuples free of TIME_WAIT.
pub const LOOPBACK_SOURCES: u32 = 64;

/// The `n`th source address for `target`: 127.0.0.1 + `n` mod
/// [`LOOPBACK_SOURCES`] for an IPv4 loopback target, else `None`.
fn source_for(target: IpAddr, n: u32) -> Option<IpAddr> {
    match target {
        IpAddr::V4(t) if t.is_loopback() => Some(IpAddr::V4(Ipv4Addr::from(
            u32::from(Ipv4Addr::LOCALHOST) + n % LOOPBACK_SOURCES,
        ))),
        _ => None,
    }
}

/// Pause before replacing a connector whose connect failed.
pub const RETRY_DELAY: Duration = Duration::from_millis(10);

/// One connector's cycle: connect, send, read the echo, close.
#[derive(Debug)]
pub struct Cycle {
    started: Instant,
    received: u64,
    done: bool,
}

/// The service of one load thread.
#[derive(Debug)]
pub struct ConnectLoad {
    shared: Arc<Shared>,
    thread: usize,
    target: SocketAddr,
    /// The target's address as `connect()` takes it, formatted once.
    host: String,
    count: usize,
    seed: u64,
    msg: Bytes,
    pattern: Pattern,
    /// Connections opened, for the source address rotation.
    opened: u32,
    stats: ThreadStats,
    out: Outbox,
}

/// The connect load's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Replace a connector whose cycle failed.
    Reopen,
}

impl ConnectLoad {
    /// `count` concurrent connectors sending `size`-byte messages.
    pub fn new(
        shared: Arc<Shared>,
        thread: usize,
        target: SocketAddr,
        size: usize,
        count: usize,
    ) -> ConnectLoad {
        let pattern = Pattern::new();
        let seed = thread as u64;
        // One buffer for the whole message, whatever its size (the
        // pattern hands out slices of at most one period).
        let mut msg = Vec::with_capacity(size.max(1));
        for chunk in pattern.slices(seed, 0, size.max(1)) {
            msg.extend_from_slice(chunk);
        }
        let msg = Bytes::from(msg);
        ConnectLoad {
            shared,
            thread,
            target,
            host: target.ip().to_string(),
            count,
            seed,
            msg,
            pattern,
            opened: 0,
            stats: ThreadStats::default(),
            out: Outbox::default(),
        }
    }

    /// The next source address: rotating over 127.0.0.0/8 for an IPv4
    /// loopback target, the kernel's choice otherwise.
    fn next_source(&mut self) -> Option<IpAddr> {
        // Threads start at different addresses so they do not contend.
        let n = self.opened.wrapping_add(self.thread as u32 * 7);
        self.opened = self.opened.wrapping_add(1);
        source_for(self.target.ip(), n)
    }

    fn open(&mut self, cx: &mut Cx<'_, Self>) {
        let opts = ConnectOptions {
            local_address: self.next_source(),
            // One write per connection, on a connection with nothing
            // unacknowledged: Nagle's algorithm never holds it back, so
            // TCP_NODELAY would only cost a `setsockopt` per connection.
            // Not so over TLS: the handshake writes several times, and Nagle
            // would hold the Finished back behind an unacknowledged flight.
            socket: SocketOptions {
                no_delay: self.shared.tls.is_some(),
                ..SocketOptions::default()
            },
            tls: self.shared.tls.clone(),
            ..ConnectOptions::default()
        };
        let cycle = Cycle {
            started: Instant::now(),
            received: 0,
            done: false,
        };
        cx.connect(&self.host, self.target.port(), opts, cycle);
    }
}

impl Load for ConnectLoad {
    fn outbox(&self) -> &Outbox {
        &self.out
    }
}

impl Drop for ConnectLoad {
    fn drop(&mut self) {
        self.out.put(self.stats.take());
    }
}

impl Service for ConnectLoad {
    type Conn = Cycle;
    type Tag = Retry;
    type Message = ();

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        for _ in 0..self.count {
            self.open(cx);
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Cycle) {
        if cx.write(conn, self.msg.clone()).is_err() {
            cx.destroy(conn);
        }
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, c: &mut Cycle, data: &mut BytesMut) {
        self.stats.mismatched += self
            .pattern
            .verify_arrival(self.seed, &mut c.received, data);
        let want = self.msg.len() as u64;
        if c.received >= want && !c.done {
            self.stats.mismatched += c.received - want;
            c.done = true;
            let ns = ns_since(c.started);
            if self.shared.measuring() {
                self.stats.bytes += want;
            }
            self.stats.op(&self.shared, self.thread, ns);
            if self.shared.ready.load(Relaxed) == 0 {
                self.shared.ready.fetch_add(1, Relaxed);
            }
            cx.destroy(conn);
            self.open(cx);
        }
    }

    fn on_error(
        &mut self,
        _: &mut Cx<'_, Self>,
        conn: ConnId,
        _: &mut Cycle,
        err: &crate::NetError,
    ) {
        log::debug!("{conn}: {err}");
        self.shared.note_error(err);
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, c: Cycle, _had_error: bool) {
        if !c.done {
            self.stats.errors += 1;
            if self.shared.ready.load(Relaxed) == 0 {
                // No cycle has completed yet: the setup is failing.
                self.shared.fail(None);
            }
            cx.set_timeout(RETRY_DELAY, Retry::Reopen);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Retry) {
        match tag {
            Retry::Reopen => self.open(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_rotate_over_loopback_only() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let got: Vec<String> = [0, 1, 63, 64, u32::MAX]
            .iter()
            .map(|&n| source_for(lo, n).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.64",
                "127.0.0.1",
                "127.0.0.64"
            ]
        );
        // Any loopback target, the same rotation; anything else: the kernel's choice.
        assert!(source_for("127.0.0.5".parse().unwrap(), 3).is_some());
        assert_eq!(source_for("192.0.2.1".parse().unwrap(), 3), None);
        assert_eq!(source_for("::1".parse().unwrap(), 3), None);
    }
}
