//! `pingpong` and `stream`: connections that send the verification pattern
//! and read back its echo.
//!
//! Each connection keeps the count of messages issued and in flight, the
//! `received` stream offset, and the send times, oldest first; the `sent`
//! offset is `issued × size`.
//! Messages all have `size` bytes, so the oldest in flight ends at
//! `(issued - in_flight + 1) × size` (one more than those completed). Every
//! byte that comes back is compared with the pattern at `received`; when
//! `received` reaches that end the oldest message is complete and its
//! round-trip time is recorded.
//!
//! The hot path reads the clock once per event, and keeps a connection's
//! entry in one cache line with the oldest send time inline: in a
//! ping-pong profile with 1,000 connections the generator's own samples
//! were dominated by cache misses on the connection table and on each
//! connection's separately allocated queue of send times.
//!
//! The connections' entries live in one `Vec` of the thread's service, and
//! each connection's state in the loop ([`crate::Service::Conn`]) is its
//! index there: the open loop's tick visits every connection, which a
//! timer cannot do with states the loop keeps, and an index finds the
//! entry without hashing.
//!
//! * `pingpong`: at most `pipeline` messages of `size` bytes in flight; a
//!   completed message is replaced at once. One operation = one round trip.
//! * `stream`: chunks of `size` bytes are written while `write()` accepts
//!   them (pausing on backpressure until `drain`) and while less than
//!   [`STREAM_MAX_IN_FLIGHT`] is unechoed; reading goes on concurrently.
//!   One operation = one chunk echoed; the figure is bytes per second.
//!
//! Both are closed-loop by default: a message goes out when an earlier one
//! is complete, so a stalled server also holds back the messages that
//! would have waited on it, and their waiting is never measured
//! (coordinated omission). With a [`Schedule`] (`--rate`, ping-pong only)
//! the load is open-loop, as in wrk2: connection `j` of `C` owes its `k`th
//! message at `epoch + (k + j / C) × C / rate`, sends it as soon as it is
//! due and fewer than `pipeline` are in flight, and its latency runs from
//! that intended time, so time spent waiting to be sent counts too.

use super::control::{consume, ns_between, Outbox, Shared, ThreadStats};
use super::pattern::Pattern;
use super::Load;
use crate::{ConnId, ConnectOptions, Cx, Reactor, Service, TimerId, WriteError};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Unechoed bytes a stream connection may have outstanding: enough to keep
/// both directions' loopback socket buffers busy, bounded so memory (and
/// the queueing delay in the chunk latency) is too.
pub const STREAM_MAX_IN_FLIGHT: u64 = 1 << 20;

/// How often an open-loop thread sends the messages that have fallen due
/// (the timer wheel's resolution). Each message is still stamped with its
/// own intended time, so the tick delays sends but does not hide the delay.
/// Each tick visits every connection of the thread (a division and a
/// comparison each when nothing is due), so 1,000 connections cost about a
/// million such checks a second.
pub const OPEN_LOOP_TICK: Duration = Duration::from_millis(1);

/// The open-loop schedule of a run (`--rate`).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Common origin of every connection's schedule.
    pub epoch: Instant,
    /// Nanoseconds between two messages of one connection:
    /// connections / rate.
    pub period_ns: f64,
    /// Connections in the whole run (for the phase of each).
    pub connections: usize,
}

impl Schedule {
    /// Phase of connection `j`, in periods: the connections' sends are
    /// spread evenly over one period instead of all falling due together.
    fn phase(&self, j: u64) -> f64 {
        j as f64 / self.connections.max(1) as f64
    }

    /// Nanoseconds after the epoch at which connection `j` owes message `k`.
    pub fn intended_ns(&self, j: u64, k: u64) -> u64 {
        ((k as f64 + self.phase(j)) * self.period_ns) as u64
    }

    /// How many messages connection `j` owes `elapsed_ns` after the epoch.
    pub fn due(&self, j: u64, elapsed_ns: u64) -> u64 {
        let periods = elapsed_ns as f64 / self.period_ns - self.phase(j);
        if periods < 0.0 {
            0
        } else {
            periods as u64 + 1
        }
    }
}

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

/// One connection's entry: 64 bytes, one cache line (with a thousand
/// connections the entries do not stay in cache between two events of one
/// connection, so each line touched is a miss). Send times of messages
/// behind the oldest live in [`EchoLoad::later`], touched only with more
/// than one in flight.
#[derive(Debug)]
#[repr(align(64))]
struct EchoConn {
    /// The connection.
    id: ConnId,
    /// Index of the connection in the whole run: its stream's seed
    /// ([`seed`]) and its schedule's phase.
    index: u64,
    /// Messages sent so far (open loop: the next one owed is this one).
    issued: u64,
    received: u64,
    /// Send time of the oldest message in flight, if any.
    oldest: Option<Instant>,
    /// Messages in flight (at most `--pipeline`, or a stream's window in
    /// chunks).
    in_flight: u32,
    /// Not closed yet (the open loop's tick skips closed ones).
    open: bool,
    /// `write()` returned false: wait for `drain`.
    blocked: bool,
}

impl EchoConn {
    /// Stream offset of the next byte to send: every message (or stream
    /// chunk) issued has `size` bytes.
    fn sent(&self, size: usize) -> u64 {
        self.issued * size as u64
    }
}

/// The pattern seed of the connection with run index `index`.
fn seed(index: u64) -> u64 {
    index.wrapping_mul(7919)
}

/// A connection's state in the loop: the index of its entry in
/// `EchoLoad::conns`, and where in the pattern its next echoed byte falls,
/// so that [`Service::prefetch`], which sees only this, can start fetching
/// both the entry and the pattern bytes the callback compares (and the
/// next message's, which follow them) before the connection's event.
#[derive(Copy, Clone, Debug)]
pub struct Slot {
    index: u32,
    next: u32,
}

/// Pattern lines fetched ahead of an event: a small message and the next
/// one (64 bytes each, at any offset, span at most three lines); a larger
/// message is not worth it.
const PREFETCH_PATTERN_LINES: usize = 3;

/// The service of one load thread.
#[derive(Debug)]
pub struct EchoLoad {
    shared: Arc<Shared>,
    thread: usize,
    target: SocketAddr,
    count: usize,
    first_seed: u64,
    plan: Plan,
    /// Every connection of the thread, in the order opened.
    conns: Vec<EchoConn>,
    /// Send times of each connection's messages in flight after its
    /// oldest, oldest first (empty unless `--pipeline` is above 1).
    later: Vec<VecDeque<Instant>>,
    stats: ThreadStats,
    out: Outbox,
}

/// The echo load's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Open loop: send what has fallen due on every connection.
    OpenLoop,
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
            count,
            first_seed,
            plan: Plan {
                mode,
                size: size.max(1),
                pattern: Pattern::new(),
                schedule: None,
            },
            conns: Vec::with_capacity(count),
            later: Vec::with_capacity(count),
            stats: ThreadStats::default(),
            out: Outbox::default(),
        }
    }

    /// Make the load open-loop on `schedule` (ping-pong only).
    pub fn with_schedule(mut self, schedule: Schedule) -> EchoLoad {
        self.plan.schedule = Some(schedule);
        self
    }

    /// Send on connection `i` until the mode's limit on messages in flight.
    fn fill(&mut self, r: &mut Reactor, i: u32, now: Instant) {
        let i = i as usize;
        if let (Some(c), Some(later)) = (self.conns.get_mut(i), self.later.get_mut(i)) {
            self.plan.fill(c, later, r, now);
        }
    }
}

/// What every connection of a thread sends, and when.
#[derive(Debug)]
struct Plan {
    mode: Mode,
    size: usize,
    pattern: Pattern,
    /// Open loop: the schedule.
    schedule: Option<Schedule>,
}

impl Plan {
    /// Send on `c` until the mode's limit on messages in flight and, open
    /// loop, what has fallen due by `now`; `now` stamps closed-loop
    /// messages. A method of the plan, not of the load, so the data callback
    /// can call it with the connection it has already looked up (one lookup
    /// per event, not two).
    fn fill(&self, c: &mut EchoConn, later: &mut VecDeque<Instant>, r: &mut Reactor, now: Instant) {
        let id = c.id;
        let owed = self.schedule.map(|s| {
            let elapsed = ns_between(s.epoch, now);
            (s, s.due(c.index, elapsed))
        });
        loop {
            let more = match self.mode {
                Mode::PingPong { pipeline } => (c.in_flight as usize) < pipeline.max(1),
                Mode::Stream => !c.blocked && c.sent(self.size) - c.received < STREAM_MAX_IN_FLIGHT,
            };
            if !more || owed.is_some_and(|(_, due)| c.issued >= due) {
                return;
            }
            // A stream chunk the kernel does not take whole is queued by
            // reference; a small message is written from the pattern in
            // place. `false`: the connection is closing (`on_close` counts
            // it).
            let (s, at) = (seed(c.index), c.sent(self.size));
            let mut went = |res: Result<bool, WriteError>| match res {
                Ok(below) => {
                    c.blocked |= !below;
                    true
                }
                Err(_) => false,
            };
            let all = match self.mode {
                Mode::Stream => self
                    .pattern
                    .chunks(s, at, self.size)
                    .all(|chunk| went(r.write(id, chunk))),
                Mode::PingPong { .. } => self
                    .pattern
                    .slices(s, at, self.size)
                    .all(|chunk| went(r.write_slice(id, chunk))),
            };
            if !all {
                return;
            }
            // Open loop: the latency runs from when the message was owed.
            let stamp = match owed {
                Some((s, _)) => s.epoch + Duration::from_nanos(s.intended_ns(c.index, c.issued)),
                None => now,
            };
            c.issued += 1;
            if c.oldest.is_none() {
                c.oldest = Some(stamp);
            } else {
                later.push_back(stamp);
            }
            c.in_flight += 1;
        }
    }
}

impl Load for EchoLoad {
    fn outbox(&self) -> &Outbox {
        &self.out
    }
}

impl Drop for EchoLoad {
    fn drop(&mut self) {
        self.out.put(self.stats.take());
    }
}

impl Service for EchoLoad {
    type Conn = Slot;
    type Tag = Tick;
    type Message = ();

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        let host = self.target.ip().to_string();
        for i in 0..self.count {
            let id = cx.connect(
                &host,
                self.target.port(),
                ConnectOptions {
                    tls: self.shared.tls.clone(),
                    ..ConnectOptions::default()
                },
                Slot {
                    index: self.conns.len() as u32,
                    next: Pattern::offset(seed(self.first_seed + i as u64), 0) as u32,
                },
            );
            self.conns.push(EchoConn {
                id,
                open: true,
                index: self.first_seed + i as u64,
                issued: 0,
                received: 0,
                oldest: None,
                in_flight: 0,
                blocked: false,
            });
            self.later.push(VecDeque::new());
        }
        if self.plan.schedule.is_some() {
            cx.set_interval(OPEN_LOOP_TICK, Tick::OpenLoop);
        }
    }

    fn prefetch(&self, st: &Slot) {
        if let Some(c) = self.conns.get(st.index as usize) {
            crate::reactor::prefetch_lines(c, 1);
        }
        if self.plan.size <= 64 {
            self.plan
                .pattern
                .prefetch(st.next as usize, PREFETCH_PATTERN_LINES);
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, _conn: ConnId, st: &mut Slot) {
        self.shared.ready.fetch_add(1, Relaxed);
        self.fill(cx.reactor(), st.index, Instant::now());
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _conn: ConnId,
        st: &mut Slot,
        data: &mut BytesMut,
    ) {
        let (Some(c), Some(later)) = (
            self.conns.get_mut(st.index as usize),
            self.later.get_mut(st.index as usize),
        ) else {
            consume(data);
            return;
        };
        let n = data.len() as u64;
        let bad = self
            .plan
            .pattern
            .mismatches(seed(c.index), c.received, data);
        consume(data);
        self.stats.mismatched += bad;
        let sent = c.sent(self.plan.size);
        if c.received + n > sent {
            // More came back than was sent: count the excess as wrong.
            self.stats.mismatched += c.received + n - sent;
        }
        c.received += n;
        st.next = Pattern::offset(seed(c.index), c.received) as u32;
        if self.shared.measuring() {
            self.stats.bytes += n;
        }
        let now = Instant::now();
        let size = self.plan.size as u64;
        while let Some(t) = c.oldest {
            // End of the oldest message in flight.
            let end = (c.issued - u64::from(c.in_flight) + 1) * size;
            if end > c.received {
                break;
            }
            // `later` is another cache line: only touched when it holds
            // something.
            c.oldest = if c.in_flight > 1 {
                later.pop_front()
            } else {
                None
            };
            c.in_flight -= 1;
            self.stats.op(&self.shared, self.thread, ns_between(t, now));
        }
        self.plan.fill(c, later, cx.reactor(), now);
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, _conn: ConnId, st: &mut Slot) {
        if let Some(c) = self.conns.get_mut(st.index as usize) {
            c.blocked = false;
        }
        self.fill(cx.reactor(), st.index, Instant::now());
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Tick) {
        match tag {
            Tick::OpenLoop => {
                let now = Instant::now();
                for (c, later) in self.conns.iter_mut().zip(&mut self.later) {
                    if c.open {
                        self.plan.fill(c, later, cx.reactor(), now);
                    }
                }
            }
        }
    }

    fn on_error(
        &mut self,
        _cx: &mut Cx<'_, Self>,
        conn: ConnId,
        _: &mut Slot,
        err: &crate::NetError,
    ) {
        log::debug!("{conn}: {err}");
        self.shared.note_error(err);
    }

    fn on_close(&mut self, _cx: &mut Cx<'_, Self>, _conn: ConnId, st: Slot, _had_error: bool) {
        // Every close before the run stops is unexpected: the server dropped
        // us, or the connect failed.
        if let Some(c) = self.conns.get_mut(st.index as usize) {
            c.open = false;
            self.stats.errors += 1;
            if c.issued == 0 && c.received == 0 {
                self.shared.failed.fetch_add(1, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<EchoConn>(), 64);
    }

    #[test]
    fn open_loop_schedule_spreads_connections_over_a_period() {
        // 1,000 messages/s over 4 connections: each owes one every 4 ms,
        // connection j first at j ms.
        let s = Schedule {
            epoch: Instant::now(),
            period_ns: 4e6,
            connections: 4,
        };
        assert_eq!(
            (0..4).map(|j| s.intended_ns(j, 0)).collect::<Vec<_>>(),
            [0, 1_000_000, 2_000_000, 3_000_000]
        );
        assert_eq!(s.intended_ns(1, 2), 9_000_000);
        assert_eq!(s.due(0, 0), 1);
        assert_eq!(s.due(1, 999_999), 0);
        assert_eq!(s.due(1, 1_000_000), 1);
        assert_eq!(s.due(1, 8_999_999), 2);
        assert_eq!(s.due(1, 9_000_000), 3);
        // Over one second the four owe 1,000 together.
        let total: u64 = (0..4).map(|j| s.due(j, 1_000_000_000 - 1)).sum();
        assert_eq!(total, 1000);
    }
}
