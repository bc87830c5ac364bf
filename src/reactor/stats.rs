//! Counters kept by the loop (cheap field increments on the hot path).
//!
//! Everything here is written by the loop thread only, with plain field
//! updates: no atomics, no allocation. Derived figures (utilisation,
//! quantiles, connections by state) are computed when someone asks, by
//! the exporter's `LoopMetrics`.
//!
//! # Phase timing
//!
//! The loop reads the clock at a phase boundary only when the phase did some
//! work (a timer fired, the ready list was not empty, an event was
//! dispatched, ...) and always around `poll`. The time of an empty phase (a
//! few nanoseconds of bookkeeping) is counted in the next phase that is
//! measured, so an idle phase costs no clock read (about 20-25 ns with the
//! vDSO). With `--trace-loop` every boundary is measured.

use super::histogram::Histogram;
use std::fmt;
use std::time::{Duration, Instant};

/// The phases of one loop iteration, in order.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Due timers.
    Timers = 0,
    /// The ready list.
    Ready = 1,
    /// Blocked in `epoll_wait`.
    Poll = 2,
    /// The I/O events `poll` returned.
    Dispatch = 3,
    /// `set_immediate` callbacks.
    Check = 4,
    /// `error`/`close` callbacks.
    Close = 5,
}

impl Phase {
    /// Every phase, in loop order.
    pub const ALL: [Phase; 6] = [
        Phase::Timers,
        Phase::Ready,
        Phase::Poll,
        Phase::Dispatch,
        Phase::Check,
        Phase::Close,
    ];

    /// Stable lower-case name (log lines, metric labels).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Timers => "timers",
            Phase::Ready => "ready",
            Phase::Poll => "poll",
            Phase::Dispatch => "dispatch",
            Phase::Check => "check",
            Phase::Close => "close",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the loop has done since it started.
#[derive(Clone, Debug)]
pub struct LoopStats {
    /// When the loop was created.
    pub started: Instant,
    /// Loop iterations.
    pub iterations: u64,
    /// I/O events dispatched.
    pub events: u64,
    /// I/O events per iteration (one sample per iteration that polled).
    pub events_per_iteration: Histogram,
    /// Time spent blocked in `poll`.
    pub poll_blocked: Duration,
    /// Time spent in each phase, indexed by [`Phase`] (`Poll` = `poll_blocked`).
    pub phase_time: [Duration; 6],
    /// Connections accepted.
    pub accepted: u64,
    /// Connections accepted and closed at once for `max_connections`.
    pub dropped: u64,
    /// Connections shed by the EMFILE trick (refused while accepting backs off).
    pub shed: u64,
    /// EMFILE/ENFILE episodes (each starts an accept backoff).
    pub fd_exhaustion: u64,
    /// Connections closed (`close` delivered).
    pub closed: u64,
    /// Bytes read from sockets.
    pub bytes_read: u64,
    /// Bytes written to sockets.
    pub bytes_written: u64,
    /// `write`/`writev` system calls made on connections: with bytes
    /// written, how well writes were coalesced.
    pub write_calls: u64,
    /// Bytes queued for writing across all connections now.
    pub queued_bytes: u64,
    /// Largest value `queued_bytes` has had.
    pub queued_bytes_peak: u64,
    /// Times `pause()` stopped reading from a connection.
    pub pauses: u64,
    /// Times a connection or listener was parked on the ready list.
    pub ready_parks: u64,
    /// Slow consumers destroyed.
    pub slow_consumers: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// Of those, handshakes that resumed an earlier session.
    pub tls_resumed: u64,
    /// Timers armed by applications.
    pub timers_armed: u64,
    /// Timers fired (all kinds: application, idle, connect, backoff, grace).
    pub timers_fired: u64,
    /// Application timers fired.
    pub app_timers_fired: u64,
    /// Application timers cancelled.
    pub timers_cancelled: u64,
    /// Wakeups from other threads (resolver, workers).
    pub wakeups: u64,
    /// Messages those wakeups carried (wakes coalesce: this can be larger).
    pub wakeup_messages: u64,
    /// Largest lateness of an application timer, in ms.
    pub max_timer_lateness_ms: u64,
    /// How late application timers fired, in microseconds after their
    /// deadline (Node's `monitorEventLoopDelay`).
    pub timer_lateness_us: Histogram,
    /// The last completed iteration, for `--trace-loop`.
    pub last: IterationSample,
}

/// One iteration as `--trace-loop` prints it.
#[derive(Clone, Debug, Default)]
pub struct IterationSample {
    /// Iteration number.
    pub iteration: u64,
    /// Time in each phase, indexed by [`Phase`].
    pub phase_time: [Duration; 6],
    /// I/O events dispatched.
    pub events: u64,
    /// Timers fired (all kinds).
    pub timers_fired: u64,
    /// Ready-list entries served in the ready phase.
    pub ready_served: usize,
    /// Ready-list length at the end of the iteration.
    pub ready_len: usize,
}

impl Default for LoopStats {
    fn default() -> Self {
        LoopStats {
            started: Instant::now(),
            iterations: 0,
            events: 0,
            events_per_iteration: Histogram::new(),
            poll_blocked: Duration::ZERO,
            phase_time: [Duration::ZERO; 6],
            accepted: 0,
            dropped: 0,
            shed: 0,
            fd_exhaustion: 0,
            closed: 0,
            bytes_read: 0,
            bytes_written: 0,
            write_calls: 0,
            queued_bytes: 0,
            queued_bytes_peak: 0,
            pauses: 0,
            ready_parks: 0,
            slow_consumers: 0,
            tls_handshakes: 0,
            tls_resumed: 0,
            timers_armed: 0,
            timers_fired: 0,
            app_timers_fired: 0,
            timers_cancelled: 0,
            wakeups: 0,
            wakeup_messages: 0,
            max_timer_lateness_ms: 0,
            timer_lateness_us: Histogram::new(),
            last: IterationSample::default(),
        }
    }
}

impl LoopStats {
    /// Record how late an application timer fired, in ms (kept for
    /// callers of the foundation's API; [`LoopStats::record_late`] is finer).
    pub fn record_lateness(&mut self, ms: u64) {
        self.max_timer_lateness_ms = self.max_timer_lateness_ms.max(ms);
    }

    /// Record how late an application timer fired.
    pub fn record_late(&mut self, late: Duration) {
        let us = late.as_micros().min(u64::MAX as u128) as u64;
        self.timer_lateness_us.record(us);
        self.record_lateness(us / 1000);
    }

    /// `n` more bytes queued for writing.
    #[inline]
    pub(crate) fn queued_add(&mut self, n: usize) {
        self.queued_bytes += n as u64;
        if self.queued_bytes > self.queued_bytes_peak {
            self.queued_bytes_peak = self.queued_bytes;
        }
    }

    /// `n` bytes left the write queues (written or dropped).
    #[inline]
    pub(crate) fn queued_sub(&mut self, n: usize) {
        self.queued_bytes = self.queued_bytes.saturating_sub(n as u64);
    }
}

/// The clock of the phase boundaries (see the module docs).
#[derive(Debug)]
pub(crate) struct PhaseClock {
    /// Last boundary at which the clock was read.
    pub(crate) mark: Instant,
    /// Read at every boundary (`--trace-loop`).
    pub(crate) measure_all: bool,
}

impl PhaseClock {
    pub(crate) fn new(now: Instant) -> Self {
        PhaseClock {
            mark: now,
            measure_all: false,
        }
    }
}
