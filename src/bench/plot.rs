//! Charts of benchmark results, as SVG files drawn with `plotters`.
//!
//! * [`latency_svg`]: the HDR percentile plot of one or more runs
//!   (`netloop bench … --plot FILE.svg`). The x axis is the percentile on
//!   a scale of nines (x = −log10(1 − q): 0 is the minimum, 1 is the 90th
//!   percentile, 2 the 99th, 3 the 99.9th), so the tail gets as much room
//!   as the median; the y axis is the latency in µs, logarithmic. A line
//!   per run, named in the legend.
//! * [`compare_dir`]: from the raw reports of `benches/compare/run.sh`
//!   (`results.jsonl`, one `{"round", "cell", "peer", "report"}` object a
//!   line; or of `benches/compare/libuv.sh`, whose `bench` is the cell and
//!   `client → server` the peer), two bar charts per cell: round trips (or the cell's operation)
//!   per second, and server CPU µs per operation. A bar per peer is the
//!   median over the rounds; a whisker spans the lowest to the highest
//!   round and a dot marks every round, so the spread is seen, not implied.
//!   Runs marked `"failed"` are left out, as `summarize.py` leaves them out.
//!
//! Text is written as SVG `<text>` elements (plotters' SVG backend) and
//! measured with plotters' built-in estimate, so no font files are read.
//! The caller's contract: paths are written whole or the error says why;
//! input lines that are not reports are counted and skipped, never guessed.

use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Size of every chart, pixels.
pub const SIZE: (u32, u32) = (800, 480);

/// Height of one legend row, of the legend's padding, and of the plotting
/// area of a [`SIZE`] chart, pixels (to keep the legend clear of the bars).
const LEGEND_ROW_PX: f64 = 18.0;
const LEGEND_PAD_PX: f64 = 24.0;
const PLOT_HEIGHT_PX: f64 = 380.0;

/// Deepest percentile plotted, in nines (99.999 %): beyond it a run of a
/// few seconds has too few samples for the point to mean anything.
pub const MAX_NINES: f64 = 5.0;

/// Step between plotted percentiles, in nines.
pub const NINES_STEP: f64 = 0.1;

/// Longest raw results file read (a full matrix of 11 cells × 6 peers ×
/// 7 rounds is about 600 KB).
pub const MAX_RESULTS_BYTES: u64 = 64 << 20;

/// One run's latency distribution: (quantile q in 0..1, latency µs), q rising.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// One peer's bar: every round's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Peer name (the x label).
    pub peer: String,
    /// The rounds' values, in any order.
    pub rounds: Vec<f64>,
}

impl Bar {
    /// (median, lowest, highest) of the rounds; `None` without any.
    pub fn spread(&self) -> Option<(f64, f64, f64)> {
        let mut v: Vec<f64> = self
            .rounds
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some((median, v[0], v[n - 1]))
    }
}

/// Why a chart could not be written.
#[derive(Debug)]
pub enum PlotError {
    /// Reading the input or creating the output directory.
    Io(String),
    /// Nothing to draw (no series, no points, no valid report).
    Empty(String),
    /// The drawing backend failed (writing the file, mostly).
    Draw(String),
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::Io(s) => write!(f, "{s}"),
            PlotError::Empty(s) => write!(f, "nothing to plot: {s}"),
            PlotError::Draw(s) => write!(f, "drawing failed: {s}"),
        }
    }
}

impl std::error::Error for PlotError {}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// x position of quantile `q` on the scale of nines.
pub fn nines(q: f64) -> f64 {
    if q >= 1.0 {
        MAX_NINES
    } else {
        (-(1.0 - q).log10()).clamp(0.0, MAX_NINES)
    }
}

/// The percentile label at `x` nines: 0 → "0%", 2 → "99%", 3 → "99.9%".
fn nines_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = (x - 2.0).ceil().max(0.0) as usize;
    format!("{p:.digits$}%")
}

/// The quantiles to sample a distribution of `count` values at: every
/// [`NINES_STEP`] nines while at least one value lies beyond, then 1.0.
pub fn quantiles(count: u64) -> Vec<f64> {
    let deepest = if count == 0 {
        0.0
    } else {
        (count as f64).log10().min(MAX_NINES)
    };
    let steps = (deepest / NINES_STEP).floor() as usize;
    let mut qs: Vec<f64> = (0..=steps)
        .map(|i| 1.0 - 10f64.powf(-(i as f64) * NINES_STEP))
        .collect();
    qs.push(1.0);
    qs
}

/// Write the HDR percentile plot of `series` to `path`.
pub fn latency_svg(path: &Path, title: &str, series: &[Series]) -> Result<(), PlotError> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    if all().next().is_none() {
        return Err(PlotError::Empty("no latency samples".into()));
    }
    let lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min).max(0.01);
    let hi = all().map(|p| p.1).fold(0.0, f64::max).max(lo * 10.0);
    let x_hi = all().map(|p| nines(p.0)).fold(1.0, f64::max).ceil();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_hi, (lo / 1.5..hi * 1.5).log_scale())
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_labels(x_hi as usize + 1)
        .x_label_formatter(&|x| nines_label(*x))
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .draw()
        .map_err(draw_err)?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|&(q, v)| (nines(q), v.max(lo))),
                color.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

/// Write a bar chart of `bars` (median bar, whisker from the lowest to the
/// highest round, a dot per round) to `path`.
pub fn bars_svg(path: &Path, title: &str, y_desc: &str, bars: &[Bar]) -> Result<(), PlotError> {
    let spreads: Vec<_> = bars.iter().filter_map(|b| Some((b, b.spread()?))).collect();
    if spreads.is_empty() {
        return Err(PlotError::Empty(format!("{title}: no values")));
    }
    let top = spreads.iter().map(|(_, s)| s.2).fold(0.0, f64::max);
    // Headroom for the legend (a row per peer, upper right) above the
    // highest whisker, so it never covers a bar: its share of the plot's
    // height, from plotters' row height and padding at this size.
    let legend = (spreads.len() as f64 * LEGEND_ROW_PX + LEGEND_PAD_PX) / PLOT_HEIGHT_PX;
    let top = if top > 0.0 {
        top * 1.05 / (1.0 - legend.min(0.6))
    } else {
        1.0
    };
    let names: Vec<String> = spreads.iter().map(|(b, _)| b.peer.clone()).collect();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        // plotters' integer ranges include their end: 0..n-1 is n bars.
        .build_cartesian_2d((0..names.len() as i32 - 1).into_segmented(), 0f64..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| axis(*v))
        .y_desc(y_desc)
        .draw()
        .map_err(draw_err)?;
    for (i, (b, (median, lo, hi))) in spreads.iter().enumerate() {
        let i = i as i32;
        let color = Palette99::pick(i as usize).to_rgba();
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), *median),
            ],
            color.mix(0.6).filled(),
        );
        bar.set_margin(0, 0, 20, 20);
        chart
            .draw_series(std::iter::once(bar))
            .map_err(draw_err)?
            .label(format!("{}: median {}", b.peer, short(*median)))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(std::iter::once::<PathElement<(SegmentValue<i32>, f64)>>(
                PathElement::new(
                    vec![
                        (SegmentValue::CenterOf(i), *lo),
                        (SegmentValue::CenterOf(i), *hi),
                    ],
                    BLACK.stroke_width(2),
                ),
            ))
            .map_err(draw_err)?;
        chart
            .draw_series(
                b.rounds
                    .iter()
                    .filter(|v| v.is_finite())
                    .map(|&v| Circle::new((SegmentValue::CenterOf(i), v), 3, BLACK.filled())),
            )
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

/// An axis label: thousands grouped, no needless decimals.
fn axis(v: f64) -> String {
    if v.abs() >= 1000.0 {
        super::report::group(v.round() as u64)
    } else if v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A figure in three significant digits, for legends.
fn short(v: f64) -> String {
    if v >= 1000.0 {
        super::report::group(v.round() as u64)
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// What [`compare_dir`] read and wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// Charts written.
    pub files: Vec<PathBuf>,
    /// Reports used.
    pub reports: usize,
    /// Lines skipped: failed runs and lines that are not reports.
    pub skipped: usize,
}

/// One peer's rounds in one cell: (operations/s, server CPU µs per op).
type PeerRounds = (Vec<f64>, Vec<f64>);

/// Per cell, per peer, the rounds.
type Rounds = BTreeMap<String, BTreeMap<String, PeerRounds>>;

/// The cell and peer of one raw line: run.sh's `cell` and `peer`, or
/// libuv.sh's `bench` and `client` → `server` (each loop as client and
/// as server).
fn cell_and_peer(v: &serde_json::Value) -> Option<(String, String)> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str());
    if let (Some(c), Some(p)) = (s("cell"), s("peer")) {
        return Some((c.to_string(), p.to_string()));
    }
    let (bench, client, server) = (s("bench")?, s("client")?, s("server")?);
    Some((bench.to_string(), format!("{client} → {server}")))
}

/// Read `results.jsonl` of run.sh into per-cell, per-peer rounds.
fn read_rounds(text: &str) -> (Rounds, usize, usize) {
    let mut by: Rounds = BTreeMap::new();
    let (mut used, mut skipped) = (0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            skipped += 1;
            continue;
        };
        let failed = v.get("failed").and_then(|f| f.as_bool()).unwrap_or(false);
        let (Some((cell, peer)), Some(rep)) = (cell_and_peer(&v), v.get("report")) else {
            skipped += 1;
            continue;
        };
        if failed {
            skipped += 1;
            continue;
        }
        let Some(ops) = rep.get("ops_per_sec").and_then(|x| x.as_f64()) else {
            skipped += 1;
            continue;
        };
        // run.sh: the report's server figures; libuv.sh: the server's CPU
        // seconds over the run beside the report, over its operations.
        let cpu = rep
            .get("server")
            .and_then(|s| s.get("cpu_us_per_op"))
            .and_then(|x| x.as_f64())
            .or_else(|| {
                let secs = v.get("server_cpu_s")?.as_f64()?;
                let ops = rep.get("ops")?.as_f64()?;
                (ops > 0.0).then(|| secs * 1e6 / ops)
            });
        let e = by.entry(cell).or_default().entry(peer).or_default();
        // Idle cells have no throughput: leave their zeros out.
        if ops > 0.0 {
            e.0.push(ops);
        }
        if let Some(c) = cpu {
            e.1.push(c);
        }
        used += 1;
    }
    (by, used, skipped)
}

/// File-name-safe form of a cell name.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Write `CELL-throughput.svg` and `CELL-cpu.svg` into `out` for every cell
/// of the run.sh results in `results`; `title` prefixes each caption.
pub fn compare_dir(results: &Path, out: &Path, title: &str) -> Result<Written, PlotError> {
    let meta = std::fs::metadata(results)
        .map_err(|e| PlotError::Io(format!("{}: {e}", results.display())))?;
    if meta.len() > MAX_RESULTS_BYTES {
        return Err(PlotError::Io(format!(
            "{}: larger than {MAX_RESULTS_BYTES} bytes",
            results.display()
        )));
    }
    let text = std::fs::read_to_string(results)
        .map_err(|e| PlotError::Io(format!("{}: {e}", results.display())))?;
    let (by, reports, skipped) = read_rounds(&text);
    if by.is_empty() {
        return Err(PlotError::Empty(format!(
            "{}: no report of run.sh",
            results.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| PlotError::Io(format!("{}: {e}", out.display())))?;
    let mut w = Written {
        reports,
        skipped,
        ..Written::default()
    };
    for (cell, peers) in &by {
        let bars = |pick: fn(&PeerRounds) -> &Vec<f64>| -> Vec<Bar> {
            peers
                .iter()
                .filter(|(_, v)| !pick(v).is_empty())
                .map(|(p, v)| Bar {
                    peer: p.clone(),
                    rounds: pick(v).clone(),
                })
                .collect()
        };
        let charts = [
            (
                "throughput",
                "operations/s",
                format!("{title}{cell}: operations per second"),
                bars(|v| &v.0),
            ),
            (
                "cpu",
                "server CPU µs per operation",
                format!("{title}{cell}: server CPU per operation"),
                bars(|v| &v.1),
            ),
        ];
        for (kind, y, caption, bars) in charts {
            if bars.is_empty() {
                continue;
            }
            let path = out.join(format!("{}-{kind}.svg", safe(cell)));
            bars_svg(&path, &caption, y, &bars)?;
            w.files.push(path);
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_scale() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(nines(1.0), MAX_NINES);
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(4.0), "99.99%");
    }

    #[test]
    fn quantiles_stop_where_the_samples_do() {
        // 1,000 samples: down to 99.9 % (3 nines) in steps, then the max.
        let q = quantiles(1000);
        assert_eq!(q.len(), 32);
        assert_eq!(q[0], 0.0);
        assert!((nines(q[30]) - 3.0).abs() < 1e-9);
        assert_eq!(*q.last().unwrap(), 1.0);
        assert_eq!(quantiles(0), vec![0.0, 1.0]);
        assert_eq!(quantiles(u64::MAX).len(), 52);
    }

    #[test]
    fn spread_is_median_and_range() {
        let b = Bar {
            peer: "x".into(),
            rounds: vec![3.0, 1.0, 2.0, f64::NAN, 10.0],
        };
        assert_eq!(b.spread(), Some((2.5, 1.0, 10.0)));
        assert_eq!(
            Bar {
                peer: "y".into(),
                rounds: vec![]
            }
            .spread(),
            None
        );
    }

    #[test]
    fn results_lines_are_grouped_and_bad_ones_skipped() {
        let text = r#"{"round":1,"cell":"pp64x50","peer":"netloop","report":{"ops_per_sec":100.0,"server":{"cpu_us_per_op":2.0}}}
{"round":1,"cell":"pp64x50","peer":"tokio","report":{"ops_per_sec":90.0,"server":null}}
{"round":2,"cell":"pp64x50","peer":"netloop","failed":true,"report":{"ops_per_sec":1.0}}
not json
{"round":1,"bench":"pound100","client":"libuv","server":"netloop","server_cpu_s":0.5,"report":{"ops_per_sec":5.0,"ops":100000}}
{"round":2,"cell":"pp64x50","peer":"netloop","report":{"ops_per_sec":110.0,"server":{"cpu_us_per_op":2.5}}}
"#;
        let (by, used, skipped) = read_rounds(text);
        assert_eq!((used, skipped), (4, 2));
        assert_eq!(by["pound100"]["libuv → netloop"].0, vec![5.0]);
        assert_eq!(by["pound100"]["libuv → netloop"].1, vec![5.0]);
        let nl = &by["pp64x50"]["netloop"];
        assert_eq!(nl.0, vec![100.0, 110.0]);
        assert_eq!(nl.1, vec![2.0, 2.5]);
        assert!(by["pp64x50"]["tokio"].1.is_empty());
    }
}
