//! The result of a run: one JSON object (`--json`) or a human table.
//!
//! Rates are over the measured window only. Server figures (with
//! `--server-pid`) are differences of `/proc` readings taken at the window's
//! edges: CPU per operation is the server's CPU time in the window divided
//! by the operations completed in it, the figure that still separates two
//! servers when the generator's core is what limits the rate. RSS per
//! connection (idle) is the growth of the server's RSS since before the
//! first connect, divided by the connections held.
//!
//! Latency is closed-loop unless the run was open-loop (`--rate`): each
//! connection sends its next message only when a reply is in, so a server
//! that stalls also stops the requests that would have waited on it, and
//! the percentiles leave that waiting out (coordinated omission). Both the
//! table and the JSON say which kind a run measured.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Latency percentiles in µs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The generator's own CPU use in the window.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Generator {
    /// CPU seconds used by the whole generator process.
    pub cpu_s: f64,
    /// As a percentage of the cores its load threads can use.
    pub cpu_pct: f64,
    /// True at or above [`SATURATED_PCT`]: the generator, not the server,
    /// may be what limits the rate.
    pub saturated: bool,
}

/// `n` with a comma every three digits: `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Generator CPU share at which it counts as saturated.
pub const SATURATED_PCT: f64 = 90.0;

/// The server's figures in the window (`--server-pid`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Server {
    /// Its pid.
    pub pid: u32,
    /// CPU seconds used in the window.
    pub cpu_s: f64,
    /// CPU share of one core in the window, in %.
    pub cpu_pct: f64,
    /// µs of server CPU per operation.
    pub cpu_us_per_op: Option<f64>,
    /// µs of server CPU per MB (10^6 bytes) echoed.
    pub cpu_us_per_mb: Option<f64>,
    /// RSS before the first connect, KiB.
    pub rss_kib_start: u64,
    /// RSS at the end of the window, KiB.
    pub rss_kib_end: u64,
    /// (end − start) RSS in bytes per connection held (idle only).
    pub rss_bytes_per_conn: Option<f64>,
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Workload name.
    pub workload: String,
    /// What one operation is.
    pub op: String,
    /// Target address.
    pub target: String,
    /// Load threads (reactors).
    pub threads: usize,
    /// Connections (members, clients, connectors) asked for.
    pub connections: usize,
    /// Message or chunk size in bytes.
    pub size: usize,
    /// Messages in flight per connection (pingpong), or in the room
    /// (fanout).
    pub pipeline: usize,
    /// `"closed-loop"` (a message goes out when a reply is in),
    /// `"open-loop"` (messages go out on a schedule, `--rate`), `"paced"`
    /// (heartbeat: a ping per client per interval) or `"none"` (idle).
    pub load: String,
    /// The open-loop schedule: requests per second across all connections.
    pub rate_target: Option<f64>,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Connections ready when the window opened.
    pub ready: usize,
    /// Connections that failed before becoming ready.
    pub failed: usize,
    /// Operations in the window.
    pub ops: u64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Echoed payload bytes in the window.
    pub bytes: u64,
    /// Echoed payload in MB/s (10^6 bytes).
    pub mb_per_sec: f64,
    /// Errors and unexpected closes.
    pub errors: u64,
    /// Echoed bytes that were wrong.
    pub mismatched_bytes: u64,
    /// Fan-out deliveries duplicated, missing or out of order.
    pub delivery_errors: u64,
    /// Longest time in the window in which no operation completed, ms
    /// (`None` for workloads whose operations are not continuous).
    pub longest_stall_ms: Option<f64>,
    /// Latency of an operation.
    pub latency_us: Option<Latency>,
    /// The latency distribution: (quantile, µs) from the minimum (0) by
    /// tenths of a nine to the deepest percentile the samples reach, then
    /// the maximum (1); what `--plot` draws. Empty without samples.
    pub percentiles: Vec<(f64, f64)>,
    /// The generator's own CPU.
    pub generator: Generator,
    /// The server's CPU and memory.
    pub server: Option<Server>,
    /// Workload-specific counters.
    pub extra: BTreeMap<String, u64>,
    /// Remarks (saturation, skipped checks).
    pub notes: Vec<String>,
}

impl Report {
    /// Did every echoed byte and every delivery check out?
    pub fn ok(&self) -> bool {
        self.mismatched_bytes == 0 && self.delivery_errors == 0
    }

    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human table; `grouped` writes counts with thousands separators
    /// (for a terminal: scripts get plain digits).
    pub fn to_table(&self, grouped: bool) -> String {
        let n = |v: u64| if grouped { group(v) } else { v.to_string() };
        let f = |v: f64| n(v.round().max(0.0) as u64);
        let mut s = String::new();
        let schedule = match (self.rate_target, self.load.as_str()) {
            (Some(r), _) => format!("open loop at {}/s, ", f(r)),
            (None, "closed-loop") => "closed loop, ".to_string(),
            _ => String::new(),
        };
        // The size means something only where the generator sends it.
        let size = match self.workload.as_str() {
            "pingpong" | "stream" | "connect" | "ping_pongs" | "pound" => {
                format!("{} B, ", n(self.size as u64))
            }
            _ => String::new(),
        };
        // Messages in flight mean something only where --pipeline applies.
        let flight = match self.workload.as_str() {
            "fanout" => format!("{} in flight in the room, ", self.pipeline),
            "pingpong" | "ping_pongs" => format!("{} in flight per conn, ", self.pipeline),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "netloop bench {} → {}  ({} conns, {size}{flight}{schedule}{} thread(s), {:.1} s)",
            self.workload,
            self.target,
            n(self.connections as u64),
            self.threads,
            self.duration_s
        );
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, "  {k:<24} {v}");
        };
        row(
            &mut s,
            "ready / failed",
            format!("{} / {}", n(self.ready as u64), n(self.failed as u64)),
        );
        if self.workload == "idle" {
            row(&mut s, "connections made", n(self.ops));
        } else {
            row(
                &mut s,
                &format!("{}/s", self.op),
                format!("{}  ({} in all)", f(self.ops_per_sec), n(self.ops)),
            );
        }
        if self.bytes > 0 && self.workload != "idle" {
            row(&mut s, "throughput", format!("{:.1} MB/s", self.mb_per_sec));
        }
        if let Some(l) = &self.latency_us {
            let what = match self.load.as_str() {
                "open-loop" => "latency µs (open loop)",
                "closed-loop" => "latency µs (closed loop)",
                _ => "latency µs",
            };
            row(
                &mut s,
                what,
                format!(
                    "p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                    l.p50, l.p99, l.p999, l.max
                ),
            );
        }
        row(
            &mut s,
            "errors / bad bytes",
            format!("{} / {}", n(self.errors), n(self.mismatched_bytes)),
        );
        if self.workload == "fanout" {
            row(
                &mut s,
                "bad deliveries",
                format!(
                    "{} (duplicated, missing or reordered)",
                    n(self.delivery_errors)
                ),
            );
        }
        row(
            &mut s,
            "generator CPU",
            format!(
                "{:.0} %{}",
                self.generator.cpu_pct,
                if self.generator.saturated {
                    "  (SATURATED: the generator may be the limit; try --threads)"
                } else {
                    ""
                }
            ),
        );
        if let Some(sv) = &self.server {
            row(
                &mut s,
                "server CPU",
                format!("{:.0} % of a core", sv.cpu_pct),
            );
            if let Some(v) = sv.cpu_us_per_op {
                row(&mut s, "server CPU per op", format!("{v:.2} µs"));
            }
            if let Some(v) = sv.cpu_us_per_mb {
                row(&mut s, "server CPU per MB", format!("{} µs", f(v)));
            }
            row(
                &mut s,
                "server RSS",
                format!("{} → {} KiB", n(sv.rss_kib_start), n(sv.rss_kib_end)),
            );
            if let Some(v) = sv.rss_bytes_per_conn {
                row(&mut s, "server RSS per conn", format!("{} B", f(v)));
            }
        }
        for (k, v) in &self.extra {
            row(&mut s, k, n(*v));
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        if let Some(line) = self.libuv_line() {
            let _ = writeln!(s, "  as libuv prints it: {line}");
        }
        s
    }

    /// The figure in the words of libuv's own benchmark program, for the
    /// workloads that repeat one of its benchmarks (`ping_pongs`: round
    /// trips/s; `pound`: closed connections/s and failures).
    pub fn libuv_line(&self) -> Option<String> {
        match self.workload.as_str() {
            "ping_pongs" => Some(format!("ping_pongs: {:.0} roundtrips/s", self.ops_per_sec)),
            "pound" => Some(format!(
                "tcp-conn-pound-{}: {:.0} accepts/s ({} failed)",
                self.connections, self.ops_per_sec, self.errors
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        let got: Vec<String> = [0, 7, 999, 1000, 12_345, 1_234_567, u64::MAX]
            .iter()
            .map(|&v| group(v))
            .collect();
        assert_eq!(
            got,
            [
                "0",
                "7",
                "999",
                "1,000",
                "12,345",
                "1,234,567",
                "18,446,744,073,709,551,615"
            ]
        );
    }
}
