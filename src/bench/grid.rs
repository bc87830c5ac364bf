//! `netloop bench pingpong --grid`: rust_echo_bench's matrix in one command.
//!
//! rust_echo_bench (the Rust ecosystem's usual echo benchmark) is run once
//! per message size and connection count; the figures people publish are
//! its grid of sizes [`GRID_SIZES`] × connections [`GRID_CONNECTIONS`].
//! This runs every cell of that grid (or of `--grid-sizes` ×
//! `--grid-connections`) as one ordinary closed-loop ping-pong run with the
//! other options as given, one after the other against the same target,
//! and prints one table: a row per connection count, a column per size,
//! each cell the round trips per second and the p99 latency. `--json`
//! prints one object holding every cell's full report.
//!
//! A cell that cannot be run (descriptors, refused connections) is shown
//! with its error and the remaining cells still run; the exit status is
//! then failure, as it is when any cell saw a wrong byte or completed no
//! round trip in its window.

use super::report::{group, Report};
use super::{execute, BenchArgs};
use serde::Serialize;
use std::fmt::Write as _;

/// rust_echo_bench's message sizes, bytes.
pub const GRID_SIZES: [usize; 3] = [128, 512, 1000];

/// rust_echo_bench's connection counts.
pub const GRID_CONNECTIONS: [usize; 6] = [1, 50, 150, 300, 500, 1000];

/// Most cells one grid may have: each takes at least warm-up + duration,
/// and a grid an afternoon long is a mistake in the lists.
pub const MAX_CELLS: usize = 64;

/// One cell of the grid.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cell {
    /// Message size, bytes.
    pub size: usize,
    /// Connections.
    pub connections: usize,
    /// The run's report, if it could be made.
    pub report: Option<Report>,
    /// Why it could not, if it could not.
    pub error: Option<String>,
}

/// Every cell, in the order run (sizes outer, connections inner).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Grid {
    /// Always `"pingpong-grid"`.
    pub workload: String,
    /// Sizes, as columns.
    pub sizes: Vec<usize>,
    /// Connection counts, as rows.
    pub connections: Vec<usize>,
    /// The cells.
    pub cells: Vec<Cell>,
}

impl Grid {
    /// Did every cell run, complete round trips in its window, and get
    /// every byte right? (A cell with none measured nothing.)
    pub fn ok(&self) -> bool {
        self.cells
            .iter()
            .all(|c| c.report.as_ref().is_some_and(|r| r.ok() && r.ops > 0))
    }

    fn cell(&self, size: usize, conns: usize) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.size == size && c.connections == conns)
    }

    /// The table: a row per connection count, a column per size.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "netloop bench pingpong --grid  (round trips/s, p99 µs in brackets; closed loop, 1 in flight per conn)"
        );
        let _ = write!(s, "| conns |");
        for size in &self.sizes {
            let _ = write!(s, " {size} B |");
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "|---:|{}", "---:|".repeat(self.sizes.len()));
        for &conns in &self.connections {
            let _ = write!(s, "| {conns} |");
            for &size in &self.sizes {
                let text = match self.cell(size, conns) {
                    Some(Cell {
                        report: Some(r), ..
                    }) => {
                        let p99 = r
                            .latency_us
                            .as_ref()
                            .map_or(String::new(), |l| format!(" ({:.0})", l.p99));
                        let bad = match (r.ok(), r.ops) {
                            (false, _) => " WRONG BYTES",
                            (true, 0) => " NO ROUND TRIP",
                            _ => "",
                        };
                        format!("{}{p99}{bad}", group(r.ops_per_sec.round() as u64))
                    }
                    Some(Cell { error: Some(e), .. }) => format!("failed: {e}"),
                    _ => "-".into(),
                };
                let _ = write!(s, " {text} |");
            }
            let _ = writeln!(s);
        }
        s
    }
}

/// Check the grid's lists.
pub fn check(sizes: &[usize], conns: &[usize]) -> Result<(), String> {
    if sizes.is_empty() || conns.is_empty() {
        return Err("--grid-sizes and --grid-connections need at least one value each".into());
    }
    if sizes.len() * conns.len() > MAX_CELLS {
        return Err(format!("a grid has at most {MAX_CELLS} cells"));
    }
    Ok(())
}

/// Run every cell; `progress` prints which cell is running on stderr.
pub fn measure(args: &BenchArgs, progress: bool) -> Result<Grid, String> {
    let sizes = args.grid_sizes.clone();
    let conns = args.grid_connections.clone();
    check(&sizes, &conns)?;
    let total = sizes.len() * conns.len();
    let mut cells = Vec::with_capacity(total);
    for &size in &sizes {
        for &c in &conns {
            if progress {
                eprintln!(
                    "cell {}/{total}: {size} B × {c} connections",
                    cells.len() + 1
                );
            }
            let mut a = args.clone();
            a.grid = false;
            a.size = size;
            a.connections = c;
            let (report, error) = match execute(&a) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            };
            cells.push(Cell {
                size,
                connections: c,
                report,
                error,
            });
        }
    }
    Ok(Grid {
        workload: "pingpong-grid".into(),
        sizes,
        connections: conns,
        cells,
    })
}

/// `netloop bench pingpong --grid`: run, print, exit status.
pub fn run(args: &BenchArgs) -> std::process::ExitCode {
    let progress = super::show_progress(args.json);
    match measure(args, progress) {
        Ok(g) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&g).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
                );
            } else {
                print!("{}", g.to_table());
            }
            if let Some(path) = &args.plot {
                let series: Vec<_> = g
                    .cells
                    .iter()
                    .filter_map(|c| {
                        c.report.as_ref().map(|r| super::plot::Series {
                            name: format!("{} B × {}", c.size, c.connections),
                            points: r.percentiles.clone(),
                        })
                    })
                    .collect();
                if let Err(e) = super::plot::latency_svg(path, "pingpong grid", &series) {
                    eprintln!("netloop bench: --plot {}: {e}", path.display());
                    return std::process::ExitCode::FAILURE;
                }
            }
            if g.ok() {
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!(
                    "netloop bench: a grid cell failed, saw wrong bytes or completed no round trip"
                );
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("netloop bench: bad options: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
