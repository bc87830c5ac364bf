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

use super::control::{consume, ns_since, Shared, Stop, ThreadStats};
use super::pattern::Pattern;
use super::Load;
use crate::{ConnId, ConnectOptions, Handler, Reactor};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// Connects in progress at once per thread.
pub const MAX_PENDING: usize = 128;

/// Bytes sent (and echoed) on each connection before it goes idle.
pub const HELLO_SIZE: usize = 16;

#[derive(Debug)]
struct Held {
    started: Instant,
    received: u64,
    ready: bool,
}

/// The handler of one load thread.
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
    conns: HashMap<ConnId, Held>,
    stats: ThreadStats,
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
            conns: HashMap::with_capacity(count),
            stats: ThreadStats::default(),
        }
    }

    fn open_more(&mut self, r: &mut Reactor) {
        let host = self.target.ip().to_string();
        while self.opened < self.count && self.pending < MAX_PENDING {
            let id = r.connect(&host, self.target.port(), ConnectOptions::default());
            self.conns.insert(
                id,
                Held {
                    started: Instant::now(),
                    received: 0,
                    ready: false,
                },
            );
            self.opened += 1;
            self.pending += 1;
        }
    }
}

impl Load for IdleLoad {
    fn start(&mut self, r: &mut Reactor) {
        self.open_more(r);
    }

    fn finish(mut self) -> ThreadStats {
        let held = self.conns.values().filter(|c| c.ready).count() as u64;
        self.stats.add_extra("held", held);
        self.stats
    }
}

impl Handler for IdleLoad {
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {
        if r.write(conn, self.msg.clone()).is_err() {
            r.destroy(conn);
        }
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let Some(c) = self.conns.get_mut(&conn) else {
            consume(data);
            return;
        };
        self.stats.mismatched += self
            .pattern
            .verify_arrival(self.seed, &mut c.received, data);
        let want = HELLO_SIZE as u64;
        if c.received > want {
            self.stats.mismatched += c.received - want;
        }
        if c.received >= want && !c.ready {
            c.ready = true;
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
            self.open_more(r);
        }
    }

    fn on_error(&mut self, _r: &mut Reactor, conn: ConnId, err: &crate::NetError) {
        log::debug!("{conn}: {err}");
        self.shared.note_error(err);
    }

    fn on_close(&mut self, r: &mut Reactor, conn: ConnId, _had_error: bool) {
        if let Some(c) = self.conns.remove(&conn) {
            self.stats.errors += 1;
            if !c.ready {
                self.pending -= 1;
                self.shared.failed.fetch_add(1, Relaxed);
                self.open_more(r);
            }
        }
    }

    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn std::any::Any + Send>) {
        if msg.is::<Stop>() {
            r.stop();
        }
    }
}
