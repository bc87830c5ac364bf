//! `idle`: open N connections, exchange one small message on each (so the
//! server has allocated and then emptied its buffers), then hold them
//! silent while the server's memory is read.
//!
//! Connects are issued at most [`MAX_PENDING`] at a time per thread: a burst
//! of thousands of SYNs overflows the server's accept queue (Node's and our
//! backlog is 511), and a dropped SYN is retried only after a second. A
//! connection is *ready* once its echo is back and verified; the
//! coordinator waits for all of them before it opens the window. One
//! operation = one connection made ready (its latency: connect to echo).

use super::control::{ns_since, Outbox, Shared, ThreadStats};
use super::pattern::Pattern;
use super::Load;
use crate::{ConnId, ConnectOptions, Cx, Service};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// Connects in progress at once per thread.
pub const MAX_PENDING: usize = 128;

/// Bytes sent (and echoed) on each connection before it goes idle.
pub const HELLO_SIZE: usize = 16;

/// One held connection.
#[derive(Debug)]
pub struct Held {
    started: Instant,
    received: u64,
    ready: bool,
}

/// The service of one load thread.
#[derive(Debug)]
pub struct IdleLoad {
    shared: Arc<Shared>,
    thread: usize,
    target: SocketAddr,
    count: usize,
    opened: usize,
    pending: usize,
    seed: u64,
    msg: Bytes,
    pattern: Pattern,
    /// Connections past their hello and still open.
    held: u64,
    stats: ThreadStats,
    out: Outbox,
}

impl IdleLoad {
    /// Hold `count` connections to `target`.
    pub fn new(shared: Arc<Shared>, thread: usize, target: SocketAddr, count: usize) -> IdleLoad {
        let pattern = Pattern::new();
        let seed = 1000 + thread as u64;
        let msg = pattern
            .chunks(seed, 0, HELLO_SIZE)
            .next()
            .unwrap_or_default();
        IdleLoad {
            shared,
            thread,
            target,
            count,
            opened: 0,
            pending: 0,
            seed,
            msg,
            pattern,
            held: 0,
            stats: ThreadStats::default(),
            out: Outbox::default(),
        }
    }

    fn open_more(&mut self, cx: &mut Cx<'_, Self>) {
        let host = self.target.ip().to_string();
        while self.opened < self.count && self.pending < MAX_PENDING {
            let held = Held {
                started: Instant::now(),
                received: 0,
                ready: false,
            };
            let opts = ConnectOptions {
                tls: self.shared.tls.clone(),
                ..ConnectOptions::default()
            };
            cx.connect(&host, self.target.port(), opts, held);
            self.opened += 1;
            self.pending += 1;
        }
    }
}

impl Load for IdleLoad {
    fn outbox(&self) -> &Outbox {
        &self.out
    }
}

impl Drop for IdleLoad {
    fn drop(&mut self) {
        let mut stats = self.stats.take();
        stats.add_extra("held", self.held);
        self.out.put(stats);
    }
}

impl Service for IdleLoad {
    type Conn = Held;
    type Tag = ();
    type Message = ();

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        self.open_more(cx);
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Held) {
        if cx.write(conn, self.msg.clone()).is_err() {
            cx.destroy(conn);
        }
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, c: &mut Held, data: &mut BytesMut) {
        self.stats.mismatched += self
            .pattern
            .verify_arrival(self.seed, &mut c.received, data);
        let want = HELLO_SIZE as u64;
        if c.received > want {
            self.stats.mismatched += c.received - want;
        }
        if c.received >= want && !c.ready {
            c.ready = true;
            self.held += 1;
            self.pending -= 1;
            self.stats.bytes += want;
            // Ready-making is the operation here; count it whatever the phase.
            self.stats.ops += 1;
            self.stats
                .latency
                .saturating_record(ns_since(c.started).max(1));
            if let Some(p) = self.shared.progress.get(self.thread) {
                p.0.fetch_add(1, Relaxed);
            }
            self.shared.ready.fetch_add(1, Relaxed);
            self.open_more(cx);
        }
    }

    fn on_error(
        &mut self,
        _: &mut Cx<'_, Self>,
        conn: ConnId,
        _: &mut Held,
        err: &crate::NetError,
    ) {
        log::debug!("{conn}: {err}");
        self.shared.note_error(err);
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, c: Held, _had_error: bool) {
        self.stats.errors += 1;
        if c.ready {
            self.held -= 1;
        } else {
            self.pending -= 1;
            self.shared.failed.fetch_add(1, Relaxed);
            self.open_more(cx);
        }
    }
}
