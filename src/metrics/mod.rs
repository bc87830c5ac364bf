//! Loop metrics: what the reactor counts, as a snapshot users can read.
//!
//! The reactor keeps raw counters in [`crate::reactor::stats::LoopStats`]
//! (plain field increments, two histograms, a clock read per phase that did
//! work). [`LoopMetrics`] is a snapshot built from them on request
//! ([`crate::Reactor::metrics`]), with the derived figures computed then:
//! utilisation, quantiles, connections by state. It is what every view
//! shows:
//!
//! * JSON (`serde_json::to_value(r.metrics())`): the command server's
//!   `/stats`;
//! * Prometheus text ([`prometheus::render`]) on `GET /metrics` of the
//!   `--metrics HOST:PORT` responder ([`http::MetricsEndpoint`]), followed by
//!   the process's own figures ([`process`]) and those applications
//!   register ([`app`]);
//! * the summary logged at graceful shutdown ([`LoopMetrics::summary`]);
//! * `--trace-loop`, one line per iteration ([`trace`]).
//!
//! Units: durations in seconds in JSON and Prometheus (Prometheus's base
//! unit); the timer lateness summary also in milliseconds for humans.

pub mod app;
pub mod http;
pub mod live;
pub mod observe;
pub mod process;
pub mod procstat;
pub mod prometheus;
pub mod workers;

// The loop's own statistics live with the loop; re-exported here, where
// the exporters read them.
pub use crate::reactor::{histogram, trace};

use crate::conn::state::State;
use crate::reactor::stats::Phase;
use crate::Reactor;
use histogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

/// Count, sum, mean, p50, p99 and max of a histogram, in one unit.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Sum of the samples.
    pub sum: f64,
    /// Mean sample.
    pub mean: f64,
    /// Median (within 12.5 %, never below the true value).
    pub p50: f64,
    /// 99th percentile (within 12.5 %).
    pub p99: f64,
    /// Largest sample (exact).
    pub max: f64,
}

impl Summary {
    /// The histogram's figures, each multiplied by `scale` (unit change).
    pub fn of(h: &Histogram, scale: f64) -> Summary {
        Summary {
            count: h.count(),
            sum: h.sum() as f64 * scale,
            mean: h.mean() * scale,
            p50: h.quantile(0.5) as f64 * scale,
            p99: h.quantile(0.99) as f64 * scale,
            max: h.max() as f64 * scale,
        }
    }
}

/// Seconds spent in each phase since the loop started.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseSeconds {
    /// Due timers.
    pub timers: f64,
    /// The ready list.
    pub ready: f64,
    /// Blocked in `poll` (idle).
    pub poll: f64,
    /// I/O callbacks.
    pub dispatch: f64,
    /// `set_immediate` callbacks.
    pub check: f64,
    /// `error`/`close` callbacks.
    pub close: f64,
}

/// Connection figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Connections {
    /// Live connections now (every state, including closing).
    pub live: usize,
    /// Live connections by lifecycle state (every state listed, 0 included).
    pub by_state: BTreeMap<&'static str, usize>,
    /// Accepted since start.
    pub accepted: u64,
    /// Accepted and closed at once because of `max_connections`.
    pub dropped: u64,
    /// Accepted and closed at once during a descriptor-exhaustion backoff.
    pub refused_backoff: u64,
    /// Descriptor-exhaustion episodes (each pauses accepting).
    pub accept_backoffs: u64,
    /// Servers whose accepting is paused now.
    pub accept_paused_servers: usize,
    /// Closed since start (`close` delivered).
    pub closed: u64,
    /// Connections paused now (reading stopped by backpressure).
    pub paused: usize,
    /// Times a connection was paused since start.
    pub pauses: u64,
    /// Slow consumers destroyed since start.
    pub slow_consumers_destroyed: u64,
    /// TLS handshakes completed since start.
    pub tls_handshakes: u64,
    /// Of those, handshakes that resumed an earlier session.
    pub tls_resumed: u64,
}

/// Byte figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ByteCounts {
    /// Read from sockets since start.
    pub read: u64,
    /// Written to sockets since start.
    pub written: u64,
    /// `write`/`writev` system calls on connections since start.
    pub write_calls: u64,
    /// Queued for writing now, all connections.
    pub queued: u64,
    /// Largest `queued` seen.
    pub queued_peak: u64,
}

/// Timer figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timers {
    /// Timers of every kind in the wheel now.
    pub pending: usize,
    /// Application timers armed now.
    pub app_pending: usize,
    /// Application timers armed since start.
    pub armed: u64,
    /// Timers fired since start, every kind (application, idle, connect,
    /// accept backoff, grace).
    pub fired: u64,
    /// Application timers fired since start.
    pub app_fired: u64,
    /// Application timers cancelled since start.
    pub cancelled: u64,
}

/// Every loop metric at one moment. Serialises to the JSON that `/stats`
/// carries.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoopMetrics {
    /// Seconds since the loop was created.
    pub uptime_seconds: f64,
    /// Loop iterations.
    pub iterations: u64,
    /// I/O events dispatched.
    pub events: u64,
    /// I/O events per iteration.
    pub events_per_iteration: Summary,
    /// Seconds in each phase.
    pub phase_seconds: PhaseSeconds,
    /// Seconds blocked in `poll` (idle), as Node's ELU `idle`.
    pub idle_seconds: f64,
    /// Seconds not blocked in `poll`, as Node's ELU `active`.
    pub busy_seconds: f64,
    /// `busy / (busy + idle)`, Node's `eventLoopUtilization().utilization`.
    pub utilization: f64,
    /// How late application timers fired after their deadline, in
    /// milliseconds (Node's `monitorEventLoopDelay`).
    pub timer_lateness_ms: Summary,
    /// Connections.
    pub connections: Connections,
    /// Bytes.
    pub bytes: ByteCounts,
    /// Timers.
    pub timers: Timers,
    /// Ready-list length now.
    pub ready_list_len: usize,
    /// Times something was parked on the ready list.
    pub ready_list_parks: u64,
    /// Wakeups from other threads (DNS resolver, workers).
    pub wakeups: u64,
    /// Messages those wakeups delivered.
    pub wakeup_messages: u64,
    /// Loop delay measured every iteration (no sampling timer).
    pub loop_delay: observe::LoopDelay,
    /// Time each service kept the loop busy, busiest first.
    pub services: Vec<observe::ServiceBusy>,
    /// Slow callbacks: counts and the slowest of the last minute.
    pub slow_callbacks: observe::SlowCallbacks,
}

impl LoopMetrics {
    /// Snapshot of `r` now.
    pub fn from_reactor(r: &Reactor) -> LoopMetrics {
        let s = r.stats();
        let uptime = Instant::now().saturating_duration_since(s.started);
        let idle = s.poll_blocked;
        let busy = uptime.saturating_sub(idle);
        let total = (busy + idle).as_secs_f64();
        let pt = |p: Phase| s.phase_time[p as usize].as_secs_f64();
        let states = r.connections_by_state();
        let by_state = State::NAMES
            .iter()
            .zip(states.iter())
            .map(|(n, c)| (*n, *c))
            .collect();
        LoopMetrics {
            uptime_seconds: uptime.as_secs_f64(),
            iterations: s.iterations,
            events: s.events,
            events_per_iteration: Summary::of(&s.events_per_iteration, 1.0),
            phase_seconds: PhaseSeconds {
                timers: pt(Phase::Timers),
                ready: pt(Phase::Ready),
                poll: pt(Phase::Poll),
                dispatch: pt(Phase::Dispatch),
                check: pt(Phase::Check),
                close: pt(Phase::Close),
            },
            idle_seconds: idle.as_secs_f64(),
            busy_seconds: busy.as_secs_f64(),
            utilization: if total > 0.0 {
                busy.as_secs_f64() / total
            } else {
                0.0
            },
            timer_lateness_ms: Summary::of(&s.timer_lateness_us, 1e-3),
            connections: Connections {
                live: r.connection_count(),
                by_state,
                accepted: s.accepted,
                dropped: s.dropped,
                refused_backoff: s.shed,
                accept_backoffs: s.fd_exhaustion,
                accept_paused_servers: r.accept_paused_count(),
                closed: s.closed,
                paused: r.paused_count(),
                pauses: s.pauses,
                slow_consumers_destroyed: s.slow_consumers,
                tls_handshakes: s.tls_handshakes,
                tls_resumed: s.tls_resumed,
            },
            bytes: ByteCounts {
                read: s.bytes_read,
                written: s.bytes_written,
                write_calls: s.write_calls,
                queued: s.queued_bytes,
                queued_peak: s.queued_bytes_peak,
            },
            timers: Timers {
                pending: r.timer_count(),
                app_pending: r.app_timer_count(),
                armed: s.timers_armed,
                fired: s.timers_fired,
                app_fired: s.app_timers_fired,
                cancelled: s.timers_cancelled,
            },
            ready_list_len: r.ready_len(),
            ready_list_parks: s.ready_parks,
            wakeups: s.wakeups,
            wakeup_messages: s.wakeup_messages,
            loop_delay: observe::LoopDelay::of(r.observer()),
            services: observe::services(r.observer()),
            slow_callbacks: observe::SlowCallbacks::of(r.observer(), Instant::now()),
        }
    }

    /// The multi-line block logged at graceful shutdown.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let c = &self.connections;
        let b = &self.bytes;
        let e = &self.events_per_iteration;
        let l = &self.timer_lateness_ms;
        let p = &self.phase_seconds;
        let _ = writeln!(o, "loop summary after {:.1}s:", self.uptime_seconds);
        let _ = writeln!(
            o,
            "  iterations {}  events {}  events/iteration p50 {} p99 {} max {}",
            self.iterations, self.events, e.p50, e.p99, e.max
        );
        let _ = writeln!(
            o,
            "  utilization {:.1}%  busy {:.3}s  idle {:.3}s  (timers {:.3}s ready {:.3}s dispatch {:.3}s check {:.3}s close {:.3}s)",
            self.utilization * 100.0,
            self.busy_seconds,
            self.idle_seconds,
            p.timers,
            p.ready,
            p.dispatch,
            p.check,
            p.close
        );
        let _ = writeln!(
            o,
            "  connections accepted {}  closed {}  dropped {}  refused (backoff) {}  slow consumers {}  pauses {}",
            c.accepted, c.closed, c.dropped, c.refused_backoff, c.slow_consumers_destroyed, c.pauses
        );
        let _ = writeln!(
            o,
            "  bytes read {}  written {}  queued peak {}",
            b.read, b.written, b.queued_peak
        );
        let _ = write!(
            o,
            "  timers armed {}  fired {} (app {})  cancelled {}  lateness p50 {:.3}ms p99 {:.3}ms max {:.3}ms  wakeups {}",
            self.timers.armed,
            self.timers.fired,
            self.timers.app_fired,
            self.timers.cancelled,
            l.p50,
            l.p99,
            l.max,
            self.wakeups
        );
        let d = &self.loop_delay;
        let (ib, td) = (&d.iteration_busy_ms, &d.timer_delay_ms);
        let _ = write!(
            o,
            "\n  loop delay: iteration busy p50 {:.3}ms p99 {:.3}ms max {:.3}ms ({} iterations)  every timer's lateness p50 {:.3}ms p99 {:.3}ms max {:.3}ms ({} timers)",
            ib.p50, ib.p99, ib.max, ib.count, td.p50, td.p99, td.max, td.count
        );
        let sc = &self.slow_callbacks;
        let _ = write!(o, "\n  slow callbacks {}", sc.total);
        match sc.threshold_ms {
            Some(ms) => {
                let _ = write!(o, " (threshold {ms}ms)");
            }
            None => o.push_str(" (detection off)"),
        }
        if !self.services.is_empty() {
            o.push_str("\n  busy by service:");
            for s in &self.services {
                let _ = write!(
                    o,
                    " {} {:.3}s ({} callbacks, {} slow)",
                    s.name, s.busy_seconds, s.callbacks, s.slow_callbacks
                );
            }
        }
        o
    }
}

impl crate::Reactor {
    /// A snapshot of every loop metric, serialisable as JSON
    /// (`serde_json::to_value(r.metrics())`) or Prometheus text. (Defined
    /// here, by the exporter, so the loop itself knows nothing of it.)
    pub fn metrics(&self) -> LoopMetrics {
        LoopMetrics::from_reactor(self)
    }
}
