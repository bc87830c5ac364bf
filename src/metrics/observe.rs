//! The loop's always-on observation ([`crate::reactor::loopstats`]) as
//! serialisable figures: loop delay, busy time by service, slow callbacks.
//!
//! Part of every [`super::LoopMetrics`] snapshot, so `/stats`, `/metrics`,
//! the live page, `netloop top` and the shutdown summary show the same
//! numbers. Everything here is an aggregate (a few dozen values however
//! many connections the loop holds), so the page stays usable at 10,000
//! connections.

use super::histogram::Histogram;
use super::Summary;
use crate::reactor::loopstats::{Callback, Observer, SlowCallback};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Instant, UNIX_EPOCH};

/// One range of a coarse histogram: samples up to `le` (in the unit of
/// the field), above the previous range's `le`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound of the range, inclusive.
    pub le: f64,
    /// Samples in the range.
    pub count: u64,
}

/// Loop delay measured every iteration, with no sampling timer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoopDelay {
    /// Busy time of each iteration (from one `poll`'s return to the next
    /// `poll`): the longest an event that became ready in it waited, in ms.
    pub iteration_busy_ms: Summary,
    /// How late every timer fired after its deadline, the loop's own
    /// (idle, connect, backoff, grace) included, in ms.
    pub timer_delay_ms: Summary,
    /// `iteration_busy_ms` by power-of-two range, in ms.
    pub iteration_busy_buckets: Vec<Bucket>,
    /// `timer_delay_ms` by power-of-two range, in ms.
    pub timer_delay_buckets: Vec<Bucket>,
}

/// Time one service (by name) kept the loop busy.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServiceBusy {
    /// The service's name (`Service::name`).
    pub name: &'static str,
    /// Seconds charged to its callbacks since start.
    pub busy_seconds: f64,
    /// Callbacks run.
    pub callbacks: u64,
    /// Of which slow.
    pub slow_callbacks: u64,
}

/// One slow callback of the table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SlowEntry {
    /// When it ended, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// Time charged to it, in ms.
    pub took_ms: f64,
    /// Which callback (`data`, `timer`, `drain`, ...).
    pub event: &'static str,
    /// The loop phase it ran in.
    pub phase: &'static str,
    /// Its service.
    pub service: &'static str,
    /// Its connection (`conn#3.1`), if a connection's.
    pub conn: Option<String>,
    /// The connection's peer.
    pub peer: Option<String>,
}

/// Slow callbacks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SlowCallbacks {
    /// Threshold in ms (`null` when off).
    pub threshold_ms: Option<f64>,
    /// Slow callbacks since start.
    pub total: u64,
    /// By callback kind (every kind listed, 0 included).
    pub by_event: BTreeMap<&'static str, u64>,
    /// The slowest of the last minute, slowest first (at most 20).
    pub slowest: Vec<SlowEntry>,
}

fn buckets(h: &Histogram, scale: f64) -> Vec<Bucket> {
    h.log2_buckets()
        .into_iter()
        .map(|(le, count)| Bucket {
            le: le as f64 * scale,
            count,
        })
        .collect()
}

impl LoopDelay {
    /// The delay figures of `o`.
    pub fn of(o: &Observer) -> LoopDelay {
        LoopDelay {
            iteration_busy_ms: Summary::of(&o.iteration_busy_ns, 1e-6),
            timer_delay_ms: Summary::of(&o.timer_delay_us, 1e-3),
            iteration_busy_buckets: buckets(&o.iteration_busy_ns, 1e-6),
            timer_delay_buckets: buckets(&o.timer_delay_us, 1e-3),
        }
    }
}

/// Busy time by service, busiest first.
pub fn services(o: &Observer) -> Vec<ServiceBusy> {
    o.services()
        .into_iter()
        .map(|s| ServiceBusy {
            name: s.name,
            busy_seconds: s.busy.as_secs_f64(),
            callbacks: s.callbacks,
            slow_callbacks: s.slow,
        })
        .collect()
}

impl SlowEntry {
    /// The table row of `s`.
    pub fn of(s: &SlowCallback) -> SlowEntry {
        SlowEntry {
            at_unix_ms: s
                .at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            took_ms: s.took.as_secs_f64() * 1e3,
            event: s.event.name(),
            phase: s.phase.name(),
            service: s.service,
            conn: s.conn.map(|c| c.to_string()),
            peer: s.peer.map(|p| p.to_string()),
        }
    }
}

impl SlowCallbacks {
    /// The slow-callback figures of `o` at `now`.
    pub fn of(o: &Observer, now: Instant) -> SlowCallbacks {
        SlowCallbacks {
            threshold_ms: o.slow_threshold().map(|d| d.as_secs_f64() * 1e3),
            total: o.slow_total,
            by_event: Callback::ALL
                .iter()
                .map(|c| (c.name(), o.slow_by_event[*c as usize]))
                .collect(),
            slowest: o.slowest(now).iter().map(SlowEntry::of).collect(),
        }
    }
}
