//! [`LoopMetrics`] in the Prometheus text exposition format (version 0.0.4).
//!
//! Each family is a `# HELP` line, a `# TYPE` line, then its samples, one
//! per line: `name{label="value"} number`. Counters end in `_total`; times
//! are in seconds (Prometheus's base unit). The two histograms are exposed as
//! summaries (`{quantile="0.5"}`, `{quantile="0.99"}`, `_sum`, `_count`)
//! plus a `_max` gauge, since the p50/p99/max is what the loop computes.

use super::{LoopMetrics, Summary};
use std::fmt::{Display, Write};

/// `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prefix of every metric name.
const PREFIX: &str = "netloop_";

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(self.0, "# TYPE {PREFIX}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl Display) {
        let _ = write!(self.0, "{PREFIX}{name}");
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                // Label values here are our own constant names: no escaping
                // needed, but keep it correct if one ever holds a quote.
                let esc = val
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{esc}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, v: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }

    fn summary(&mut self, name: &str, help: &str, s: &Summary) {
        self.family(name, "summary", help);
        self.sample(name, &[("quantile", "0.5")], s.p50);
        self.sample(name, &[("quantile", "0.99")], s.p99);
        self.sample(&format!("{name}_sum"), &[], s.sum);
        self.sample(&format!("{name}_count"), &[], s.count);
        self.one(
            &format!("{name}_max"),
            "gauge",
            &format!("Largest sample of {PREFIX}{name}."),
            s.max,
        );
    }
}

/// Render `m` as Prometheus text.
pub fn render(m: &LoopMetrics) -> String {
    let mut o = Out(String::with_capacity(8 * 1024));
    o.one(
        "uptime_seconds",
        "gauge",
        "Seconds since the event loop was created.",
        m.uptime_seconds,
    );
    o.one(
        "loop_iterations_total",
        "counter",
        "Event loop iterations.",
        m.iterations,
    );
    o.one(
        "loop_events_total",
        "counter",
        "I/O events dispatched.",
        m.events,
    );
    o.summary(
        "loop_events_per_iteration",
        "I/O events dispatched per loop iteration.",
        &m.events_per_iteration,
    );
    o.family(
        "loop_phase_seconds_total",
        "counter",
        "Seconds spent in each loop phase (poll = blocked, idle).",
    );
    let p = &m.phase_seconds;
    for (phase, v) in [
        ("timers", p.timers),
        ("ready", p.ready),
        ("poll", p.poll),
        ("dispatch", p.dispatch),
        ("check", p.check),
        ("close", p.close),
    ] {
        o.sample("loop_phase_seconds_total", &[("phase", phase)], v);
    }
    o.one(
        "loop_idle_seconds_total",
        "counter",
        "Seconds blocked in poll.",
        m.idle_seconds,
    );
    o.one(
        "loop_busy_seconds_total",
        "counter",
        "Seconds not blocked in poll.",
        m.busy_seconds,
    );
    o.one(
        "loop_utilization",
        "gauge",
        "busy / (busy + idle) since start, as Node's eventLoopUtilization.",
        m.utilization,
    );
    let lateness = ms_to_s(&m.timer_lateness_ms);
    o.summary(
        "timer_lateness_seconds",
        "How late application timers fired after their deadline (event loop delay).",
        &lateness,
    );
    let c = &m.connections;
    o.family(
        "connections",
        "gauge",
        "Live connections by lifecycle state.",
    );
    for (state, n) in &c.by_state {
        o.sample("connections", &[("state", state)], n);
    }
    o.one(
        "connections_accepted_total",
        "counter",
        "Connections accepted.",
        c.accepted,
    );
    o.one(
        "connections_dropped_total",
        "counter",
        "Connections accepted and closed at once for max_connections.",
        c.dropped,
    );
    o.one(
        "connections_refused_backoff_total",
        "counter",
        "Connections accepted and closed at once during a descriptor-exhaustion backoff.",
        c.refused_backoff,
    );
    o.one(
        "accept_backoffs_total",
        "counter",
        "Descriptor-exhaustion episodes (each pauses accepting).",
        c.accept_backoffs,
    );
    o.one(
        "accept_paused_servers",
        "gauge",
        "Servers whose accepting is paused now.",
        c.accept_paused_servers,
    );
    o.one(
        "connections_closed_total",
        "counter",
        "Connections closed.",
        c.closed,
    );
    o.one(
        "connections_paused",
        "gauge",
        "Connections whose reading is paused now (backpressure).",
        c.paused,
    );
    o.one(
        "connection_pauses_total",
        "counter",
        "Times a connection's reading was paused.",
        c.pauses,
    );
    o.one(
        "slow_consumers_destroyed_total",
        "counter",
        "Connections destroyed because their write queue passed the hard cap.",
        c.slow_consumers_destroyed,
    );
    o.one(
        "tls_handshakes_total",
        "counter",
        "TLS handshakes completed.",
        c.tls_handshakes,
    );
    o.one(
        "tls_resumed_total",
        "counter",
        "TLS handshakes that resumed an earlier session.",
        c.tls_resumed,
    );
    let b = &m.bytes;
    o.one(
        "bytes_read_total",
        "counter",
        "Bytes read from sockets.",
        b.read,
    );
    o.one(
        "bytes_written_total",
        "counter",
        "Bytes written to sockets.",
        b.written,
    );
    o.one(
        "write_calls_total",
        "counter",
        "write/writev system calls on connections (coalescing: fewer per message is better).",
        b.write_calls,
    );
    o.one(
        "write_queue_bytes",
        "gauge",
        "Bytes queued for writing now, all connections.",
        b.queued,
    );
    o.one(
        "write_queue_bytes_peak",
        "gauge",
        "Largest number of bytes queued for writing at once.",
        b.queued_peak,
    );
    let t = &m.timers;
    o.one(
        "timers_pending",
        "gauge",
        "Timers of every kind armed now.",
        t.pending,
    );
    o.one(
        "timers_armed_total",
        "counter",
        "Application timers armed.",
        t.armed,
    );
    o.family(
        "timers_fired_total",
        "counter",
        "Timers fired, by kind (app: set_timeout/set_interval; internal: idle, connect, backoff, grace).",
    );
    o.sample("timers_fired_total", &[("kind", "app")], t.app_fired);
    o.sample(
        "timers_fired_total",
        &[("kind", "internal")],
        t.fired.saturating_sub(t.app_fired),
    );
    o.one(
        "timers_cancelled_total",
        "counter",
        "Application timers cancelled.",
        t.cancelled,
    );
    o.one(
        "ready_list_length",
        "gauge",
        "Connections and listeners parked on the ready list now.",
        m.ready_list_len,
    );
    o.one(
        "ready_list_parks_total",
        "counter",
        "Times something was parked on the ready list.",
        m.ready_list_parks,
    );
    o.one(
        "wakeups_total",
        "counter",
        "Wakeups of the loop from other threads (resolver, workers).",
        m.wakeups,
    );
    o.one(
        "wakeup_messages_total",
        "counter",
        "Messages delivered by wakeups from other threads.",
        m.wakeup_messages,
    );
    render_observe(&mut o, m);
    o.0
}

/// Scale a summary in ms to seconds.
fn ms_to_s(l: &Summary) -> Summary {
    Summary {
        count: l.count,
        sum: l.sum / 1e3,
        mean: l.mean / 1e3,
        p50: l.p50 / 1e3,
        p99: l.p99 / 1e3,
        max: l.max / 1e3,
    }
}

/// Loop delay, busy time by service, slow callbacks.
fn render_observe(o: &mut Out, m: &LoopMetrics) {
    let d = &m.loop_delay;
    o.summary(
        "loop_iteration_busy_seconds",
        "Busy time of each loop iteration, poll return to next poll: the longest an event ready in it waited (loop delay, every iteration).",
        &ms_to_s(&d.iteration_busy_ms),
    );
    o.summary(
        "loop_timer_delay_seconds",
        "How late every timer fired after its deadline, internal ones (idle, connect, backoff, grace) included.",
        &ms_to_s(&d.timer_delay_ms),
    );
    o.family(
        "service_busy_seconds_total",
        "counter",
        "Seconds the loop spent in each service's callbacks (and the I/O that led to them).",
    );
    for s in &m.services {
        o.sample(
            "service_busy_seconds_total",
            &[("service", s.name)],
            s.busy_seconds,
        );
    }
    o.family(
        "service_callbacks_total",
        "counter",
        "Callbacks run, by service.",
    );
    for s in &m.services {
        o.sample(
            "service_callbacks_total",
            &[("service", s.name)],
            s.callbacks,
        );
    }
    o.family(
        "service_slow_callbacks_total",
        "counter",
        "Callbacks that ran longer than the slow-callback threshold, by service.",
    );
    for s in &m.services {
        o.sample(
            "service_slow_callbacks_total",
            &[("service", s.name)],
            s.slow_callbacks,
        );
    }
    let sc = &m.slow_callbacks;
    o.family(
        "slow_callbacks_total",
        "counter",
        "Callbacks that ran longer than the slow-callback threshold, by event.",
    );
    for (event, n) in &sc.by_event {
        o.sample("slow_callbacks_total", &[("event", event)], n);
    }
    o.one(
        "slow_callback_threshold_seconds",
        "gauge",
        "The slow-callback threshold (0 = detection off).",
        sc.threshold_ms.unwrap_or(0.0) / 1e3,
    );
}
