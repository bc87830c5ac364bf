//! Wall-clock timestamps for the JSON protocols (Node's `Date.now()`).
//!
//! The protocols carry milliseconds since the Unix epoch. They are for
//! display and for echoing back only: every duration the services measure
//! (RTT, liveness, timeouts) uses the loop's monotonic clock instead, so a
//! clock step or a peer's clock cannot skew it (the tutorial's heartbeat
//! programs subtracted a peer's timestamp from their own clock, so a peer could
//! fake an RTT and a missing timestamp gave one of ~1.8·10¹² ms).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
