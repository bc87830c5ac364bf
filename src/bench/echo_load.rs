//! `pingpong` and `stream`: connections that send the verification pattern
//! and read back its echo.
//!
//! Each connection keeps `sent` and `received` stream offsets and a FIFO of
//! `(end offset, send time)` per message in flight. Every byte that comes
//! back is compared with the pattern at `received`; when `received` passes a
//! message's end offset the message is complete and its round-trip time is
//! recorded.
//!
//! * `pingpong`: at most `pipeline` messages of `size` bytes in flight; a
//!   completed message is replaced at once. One operation = one round trip.
//! * `stream`: chunks of `size` bytes are written while `write()` accepts
//!   them (pausing on backpressure until `drain`) and while less than
//!   [`STREAM_MAX_IN_FLIGHT`] is unechoed; reading goes on concurrently.
//!   One operation = one chunk echoed; the figure is bytes per second.

use super::control::{consume, ns_since, Shared, Stop, ThreadStats};
use super::pattern::Pattern;
use super::Load;
use crate::{ConnId, ConnectOptions, Handler, Reactor};
use bytes::BytesMut;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// Unechoed bytes a stream connection may have outstanding: enough to keep
/// both directions' loopback socket buffers busy, bounded so memory (and
/// the queueing delay in the chunk latency) is too.
pub const STREAM_MAX_IN_FLIGHT: u64 = 1 << 20;

/// Which echo workload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Request/response with this many messages in flight.
    PingPong {
        /// Messages in flight per connection.
        pipeline: usize,
    },
    /// Continuous writing, concurrent reading.
    Stream,
}

#[derive(Debug)]
struct EchoConn {
    seed: u64,
    sent: u64,
    received: u64,
    in_flight: VecDeque<(u64, Instant)>,
    /// `write()` returned false: wait for `drain`.
    blocked: bool,
}

/// The handler of one load thread.
#[derive(Debug)]
pub struct EchoLoad {
    shared: Arc<Shared>,
    thread: usize,
    target: SocketAddr,
    mode: Mode,
    size: usize,
    count: usize,
    first_seed: u64,
    pattern: Pattern,
    conns: HashMap<ConnId, EchoConn>,
    stats: ThreadStats,
}

impl EchoLoad {
    /// `count` connections to `target`; seeds start at `first_seed` so no
    /// two connections of the run share a stream.
    pub fn new(
        shared: Arc<Shared>,
        thread: usize,
        target: SocketAddr,
        mode: Mode,
        size: usize,
        count: usize,
        first_seed: u64,
    ) -> EchoLoad {
        EchoLoad {
            shared,
            thread,
            target,
            mode,
            size: size.max(1),
            count,
            first_seed,
            pattern: Pattern::new(),
            conns: HashMap::with_capacity(count),
            stats: ThreadStats::default(),
        }
    }

    fn fill(&mut self, r: &mut Reactor, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        loop {
            let more = match self.mode {
                Mode::PingPong { pipeline } => c.in_flight.len() < pipeline.max(1),
                Mode::Stream => !c.blocked && c.sent - c.received < STREAM_MAX_IN_FLIGHT,
            };
            if !more {
                return;
            }
            for chunk in self.pattern.chunks(c.seed, c.sent, self.size) {
                match r.write(id, chunk) {
                    Ok(true) => {}
                    Ok(false) => c.blocked = true,
                    Err(_) => return, // closing: on_close counts it
                }
            }
            c.sent += self.size as u64;
            c.in_flight.push_back((c.sent, now));
        }
    }
}

impl Load for EchoLoad {
    fn start(&mut self, r: &mut Reactor) {
        let host = self.target.ip().to_string();
        for i in 0..self.count {
            let id = r.connect(&host, self.target.port(), ConnectOptions::default());
            self.conns.insert(
                id,
                EchoConn {
                    seed: (self.first_seed + i as u64).wrapping_mul(7919),
                    sent: 0,
                    received: 0,
                    in_flight: VecDeque::new(),
                    blocked: false,
                },
            );
        }
    }

    fn finish(self) -> ThreadStats {
        self.stats
    }
}

impl Handler for EchoLoad {
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {
        self.shared.ready.fetch_add(1, Relaxed);
        self.fill(r, conn);
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let Some(c) = self.conns.get_mut(&conn) else {
            consume(data);
            return;
        };
        let n = data.len() as u64;
        let bad = self.pattern.mismatches(c.seed, c.received, data);
        consume(data);
        self.stats.mismatched += bad;
        if c.received + n > c.sent {
            // More came back than was sent: count the excess as wrong.
            self.stats.mismatched += c.received + n - c.sent;
        }
        c.received += n;
        if self.shared.measuring() {
            self.stats.bytes += n;
        }
        while let Some(&(end, t)) = c.in_flight.front() {
            if end > c.received {
                break;
            }
            c.in_flight.pop_front();
            self.stats.op(&self.shared, self.thread, ns_since(t));
        }
        self.fill(r, conn);
    }

    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.blocked = false;
        }
        self.fill(r, conn);
    }

    fn on_error(&mut self, _r: &mut Reactor, conn: ConnId, err: &crate::NetError) {
        log::debug!("{conn}: {err}");
    }

    fn on_close(&mut self, _r: &mut Reactor, conn: ConnId, _had_error: bool) {
        // Every close before the run stops is unexpected: the server dropped
        // us, or the connect failed.
        if let Some(c) = self.conns.remove(&conn) {
            self.stats.errors += 1;
            if c.sent == 0 && c.received == 0 {
                self.shared.failed.fetch_add(1, Relaxed);
            }
        }
    }

    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn std::any::Any + Send>) {
        if msg.is::<Stop>() {
            r.stop();
        }
    }
}
