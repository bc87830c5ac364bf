//! Metrics of a process running several loops (`--workers N`): every figure
//! per worker with a `worker` label, and the process totals.
//!
//! # Algorithm
//!
//! Each worker's figures live in its own loop, on its own thread, in plain
//! fields (no atomics on the hot path). So a scrape asks: the endpoint (on
//! the last worker, set up once every agent is on the board) posts a request to a small [`MetricsAgent`] service in every
//! worker through the [`WorkerBoard`]; each agent answers from its own loop
//! with a [`LoopMetrics`] snapshot; once all have answered, or after
//! [`GATHER_TIMEOUT`], the endpoint renders them with [`render`]. Nothing
//! runs between scrapes: no sampling timer keeps an idle worker awake.
//!
//! [`render`] renders each worker with [`super::prometheus::render`] and
//! merges the texts family by family: the worker's samples with
//! `worker="i"` added, then one unlabelled sample, the process total:
//! counters and most gauges are summed; `uptime_seconds`, the `_max` and
//! `_peak` gauges take the largest; `loop_utilization` the mean; summary
//! quantiles have no total (a quantile of quantiles means nothing), their
//! `_sum` and `_count` are summed. In PromQL, `x{worker!=""}` selects the
//! per-worker series and `x{worker=""}` the total.
//!
//! # How even is the spread
//!
//! With `SO_REUSEPORT` the kernel picks a worker by a hash of each
//! connection's addresses and ports, not by load: many short connections
//! spread evenly, but a handful of long-lived ones can land on the same
//! worker while another has none (`netloop_connections_accepted_total` per
//! worker shows it). Nothing moves a connection once accepted.

use super::LoopMetrics;
use crate::{BytesMut, Cx, Reactor, Remote, Service};
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a scrape waits for the workers' answers. A worker whose loop
/// is stuck in a long callback answers late; the scrape then reports the
/// workers that did answer (`netloop_workers_answered`) instead of hanging
/// the scraper.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// A request for a worker's figures: the gather it belongs to and where to
/// answer.
#[derive(Debug)]
pub struct SnapshotRequest {
    /// The endpoint's gather id.
    pub gather: u64,
    /// The endpoint.
    pub reply: Remote<Snapshot>,
}

/// A worker's answer to a [`SnapshotRequest`].
#[derive(Debug)]
pub struct Snapshot {
    /// The gather it answers.
    pub gather: u64,
    /// The worker.
    pub worker: usize,
    /// Its loop's figures.
    pub metrics: Box<LoopMetrics>,
}

/// Where the endpoint finds every worker's agent. Cloned into each worker's
/// setup; [`WorkerBoard::join`] adds the agent to a worker's loop.
#[derive(Clone, Debug)]
pub struct WorkerBoard {
    agents: Arc<Mutex<Vec<Option<Remote<SnapshotRequest>>>>>,
}

impl WorkerBoard {
    /// A board for `count` workers.
    pub fn new(count: usize) -> WorkerBoard {
        WorkerBoard {
            agents: Arc::new(Mutex::new(vec![None; count])),
        }
    }

    /// Add the agent of worker `worker` to its loop `r`.
    pub fn join(&self, worker: usize, r: &mut Reactor) {
        let (_, remote) = r.add_service_with_remote(MetricsAgent { worker });
        let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = agents.get_mut(worker) {
            *slot = Some(remote);
        }
    }

    /// The workers' agents, by worker index (`None`: not started yet).
    pub fn agents(&self) -> Vec<Option<Remote<SnapshotRequest>>> {
        self.agents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Answers [`SnapshotRequest`]s with its loop's figures.
#[derive(Debug)]
pub struct MetricsAgent {
    worker: usize,
}

impl Service for MetricsAgent {
    type Conn = ();
    type Tag = ();
    type Message = SnapshotRequest;

    fn on_data(&mut self, _: &mut Cx<'_, Self>, _: crate::ConnId, _: &mut (), d: &mut BytesMut) {
        d.clear(); // the agent has no connections
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, req: SnapshotRequest) {
        req.reply.post(Snapshot {
            gather: req.gather,
            worker: self.worker,
            metrics: Box::new(cx.metrics()),
        });
    }
}

/// How the process total of a sample is formed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Total {
    Sum,
    Max,
    Mean,
    None,
}

fn total_of(kind: &str, sample: &str, labels: &str) -> Total {
    let base = sample.strip_prefix("netloop_").unwrap_or(sample);
    if labels.contains("quantile=") {
        Total::None
    } else if base == "uptime_seconds" || base.ends_with("_max") || base.ends_with("_peak") {
        Total::Max
    } else if base == "loop_utilization" {
        Total::Mean
    } else if matches!(kind, "counter" | "gauge" | "summary") {
        Total::Sum
    } else {
        Total::None
    }
}

/// One family of the text format: its comment lines and samples.
#[derive(Default)]
struct Family {
    name: String,
    kind: String,
    comments: Vec<String>,
    /// (sample name, labels without braces, value).
    samples: Vec<(String, String, String)>,
}

fn parse(text: &str) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default().to_string();
            out.push(Family {
                name,
                comments: vec![line.to_string()],
                ..Family::default()
            });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(f) = out.last_mut() {
                f.kind = rest.rsplit(' ').next().unwrap_or_default().to_string();
                f.comments.push(line.to_string());
            }
        } else if let Some((series, value)) = line.rsplit_once(' ') {
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            if let Some(f) = out.last_mut() {
                f.samples
                    .push((name.to_string(), labels.to_string(), value.to_string()));
            }
        }
    }
    out
}

fn series(name: &str, labels: &str) -> String {
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    }
}

/// The Prometheus text of several workers' figures, by worker index: each
/// sample per worker with a `worker` label, then the process total (see
/// the module docs), and `netloop_workers_answered`.
pub fn render(workers: &[(usize, LoopMetrics)]) -> String {
    let texts: Vec<(usize, Vec<Family>)> = workers
        .iter()
        .map(|(i, m)| (*i, parse(&super::prometheus::render(m))))
        .collect();
    let mut out = String::with_capacity(16 * 1024 * texts.len().max(1));
    let _ = writeln!(
        out,
        "# HELP netloop_workers_answered Workers whose figures this scrape holds."
    );
    let _ = writeln!(out, "# TYPE netloop_workers_answered gauge");
    let _ = writeln!(out, "netloop_workers_answered {}", texts.len());
    let Some((_, first)) = texts.first() else {
        return out;
    };
    for (fi, fam) in first.iter().enumerate() {
        for c in &fam.comments {
            out.push_str(c);
            out.push('\n');
        }
        for (si, (name, labels, _)) in fam.samples.iter().enumerate() {
            let mut values = Vec::with_capacity(texts.len());
            for (worker, fams) in &texts {
                let Some((_, _, v)) = fams
                    .get(fi)
                    .filter(|f| f.name == fam.name)
                    .and_then(|f| f.samples.get(si))
                else {
                    continue;
                };
                let labelled = if labels.is_empty() {
                    format!("worker=\"{worker}\"")
                } else {
                    format!("worker=\"{worker}\",{labels}")
                };
                let _ = writeln!(out, "{} {v}", series(name, &labelled));
                values.push(v.parse::<f64>().unwrap_or(0.0));
            }
            let total = match total_of(&fam.kind, name, labels) {
                Total::Sum => Some(values.iter().sum::<f64>()),
                Total::Max => values.iter().copied().reduce(f64::max),
                Total::Mean if !values.is_empty() => {
                    Some(values.iter().sum::<f64>() / values.len() as f64)
                }
                Total::Mean | Total::None => None,
            };
            if let Some(t) = total {
                let _ = writeln!(out, "{} {t}", series(name, labels));
            }
        }
    }
    out
}

/// The `/stats` JSON of several workers: the same document as one loop's
/// ([`super::live::stats_json`]), its figures the process totals by the
/// rules of [`render`] (sums; peaks, maxima and quantiles the largest
/// worker's; utilisation the mean; lists such as the slowest callbacks
/// concatenated), plus `workers`: each worker's own document with its
/// `worker` index.
pub fn stats_json(workers: &[(usize, LoopMetrics)]) -> String {
    let docs: Vec<serde_json::Value> = workers
        .iter()
        .map(|(i, m)| {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("worker".into(), (*i).into());
            }
            v
        })
        .collect();
    let mut total = merge(None, &docs);
    if let Some(o) = total.as_object_mut() {
        o.remove("worker");
        o.insert("workers".into(), serde_json::Value::Array(docs));
    }
    serde_json::to_string(&total).unwrap_or_else(|_| "{}".into())
}

/// How the process total of the JSON field `key` is formed.
fn json_total(key: Option<&str>) -> Total {
    match key {
        Some("max" | "p50" | "p99" | "mean" | "uptime_seconds") => Total::Max,
        Some(k) if k.ends_with("_peak") || k.ends_with("_max") => Total::Max,
        Some("utilization") => Total::Mean,
        _ => Total::Sum,
    }
}

/// Merge the same field of every worker's document (see [`stats_json`]).
fn merge(key: Option<&str>, vals: &[serde_json::Value]) -> serde_json::Value {
    use serde_json::Value;
    let Some(first) = vals.first() else {
        return Value::Null;
    };
    match first {
        Value::Object(o) => {
            let mut out = serde_json::Map::new();
            for k in o.keys() {
                let field: Vec<Value> = vals.iter().filter_map(|v| v.get(k).cloned()).collect();
                out.insert(k.clone(), merge(Some(k), &field));
            }
            Value::Object(out)
        }
        Value::Array(_) => Value::Array(
            vals.iter()
                .filter_map(|v| v.as_array())
                .flatten()
                .cloned()
                .collect(),
        ),
        Value::Number(_) => {
            let nums: Vec<f64> = vals.iter().filter_map(Value::as_f64).collect();
            let all_int = vals.iter().all(|v| v.is_u64());
            let t = match json_total(key) {
                Total::Max => nums.iter().copied().fold(f64::MIN, f64::max),
                Total::Mean => nums.iter().sum::<f64>() / nums.len().max(1) as f64,
                Total::Sum | Total::None => nums.iter().sum(),
            };
            if all_int && t >= 0.0 {
                Value::from(t as u64)
            } else {
                Value::from(t)
            }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two workers' figures: 3 and 4 accepted, peaks 10 and 7, uptimes 5
    /// and 6 s.
    fn two_workers() -> [(usize, LoopMetrics); 2] {
        let mut a = LoopMetrics::default();
        let mut b = LoopMetrics::default();
        a.connections.accepted = 3;
        b.connections.accepted = 4;
        a.bytes.queued_peak = 10;
        b.bytes.queued_peak = 7;
        a.uptime_seconds = 5.0;
        b.uptime_seconds = 6.0;
        [(0, a), (1, b)]
    }

    #[test]
    fn stats_totals_have_the_one_loop_shape_and_every_worker() {
        let v: serde_json::Value = serde_json::from_str(&stats_json(&two_workers())).unwrap();
        assert_eq!(v["connections"]["accepted"], 7);
        assert_eq!(v["bytes"]["queued_peak"], 10);
        assert_eq!(v["workers"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["workers"][1]["worker"], 1);
        assert_eq!(v["workers"][1]["connections"]["accepted"], 4);
        assert!(v.get("worker").is_none());
    }

    #[test]
    fn totals_sum_counters_and_keep_the_largest_max() {
        let text = render(&two_workers());
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has("netloop_workers_answered 2"), "{text}");
        assert!(has("netloop_connections_accepted_total{worker=\"0\"} 3"));
        assert!(has("netloop_connections_accepted_total{worker=\"1\"} 4"));
        assert!(has("netloop_connections_accepted_total 7"));
        assert!(has("netloop_write_queue_bytes_peak 10"));
        assert!(has("netloop_uptime_seconds 6"));
        // Quantiles per worker only.
        assert!(text
            .lines()
            .filter(|l| l.starts_with("netloop_timer_lateness_seconds{quantile"))
            .all(|l| l.contains("worker=")));
        // Every family's HELP once.
        assert_eq!(
            text.matches("# HELP netloop_connections_accepted_total ")
                .count(),
            1
        );
    }
}
