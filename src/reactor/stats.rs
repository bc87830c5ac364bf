//! Counters kept by the loop (cheap field increments on the hot path).

use std::time::Duration;

/// What the loop has done since it started.
#[derive(Clone, Debug, Default)]
pub struct LoopStats {
    /// Loop iterations.
    pub iterations: u64,
    /// I/O events dispatched.
    pub events: u64,
    /// Time spent blocked in `poll`.
    pub poll_blocked: Duration,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections accepted and closed at once for `max_connections`.
    pub dropped: u64,
    /// Connections shed by the EMFILE trick.
    pub shed: u64,
    /// EMFILE/ENFILE episodes (each starts an accept backoff).
    pub fd_exhaustion: u64,
    /// Connections closed (`close` delivered).
    pub closed: u64,
    /// Bytes read from sockets.
    pub bytes_read: u64,
    /// Bytes written to sockets.
    pub bytes_written: u64,
    /// Times a connection or listener was parked on the ready list.
    pub ready_parks: u64,
    /// Slow consumers destroyed.
    pub slow_consumers: u64,
    /// Timers armed by applications.
    pub timers_armed: u64,
    /// Timers fired (all kinds).
    pub timers_fired: u64,
    /// Application timers cancelled.
    pub timers_cancelled: u64,
    /// Wakeups from other threads (resolver, workers).
    pub wakeups: u64,
    /// Largest lateness of an application timer, in ms.
    pub max_timer_lateness_ms: u64,
}

impl LoopStats {
    /// Record how late a timer fired.
    pub fn record_lateness(&mut self, ms: u64) {
        self.max_timer_lateness_ms = self.max_timer_lateness_ms.max(ms);
    }
}
