//! The SVG charts: `netloop bench … --plot FILE.svg` (HDR percentile plot)
//! and `netloop bench-plot RESULTS.jsonl --out DIR` (bar charts of run.sh's
//! rounds). Each SVG is parsed and its series checked: names in the
//! legend, a line with the points of every series, a bar and a dot per
//! round for every peer.

use crate::util::*;
use crate::workloads::bench_cli;
use netloop::bench::plot::{bars_svg, latency_svg, quantiles, Bar, Series};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netloop-plot-{}-{name}", std::process::id()))
}

fn parse(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("not XML: {e}\n{text}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    text
}

fn texts(text: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(text).expect("xml");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

/// Point counts of every `<polyline>` (plotters draws a line series as one).
fn polylines(text: &str) -> Vec<usize> {
    let doc = roxmltree::Document::parse(text).expect("xml");
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter_map(|n| n.attribute("points"))
        .map(|p| p.split_whitespace().count())
        .collect()
}

fn count(text: &str, tag: &str) -> usize {
    let doc = roxmltree::Document::parse(text).expect("xml");
    doc.descendants().filter(|n| n.has_tag_name(tag)).count()
}

#[test]
fn latency_plot_has_a_named_line_per_series() {
    let path = tmp("two.svg");
    let a: Vec<(f64, f64)> = quantiles(10_000)
        .into_iter()
        .map(|q| (q, 10.0 + 100.0 * q))
        .collect();
    let b: Vec<(f64, f64)> = quantiles(100)
        .into_iter()
        .map(|q| (q, 50.0 + 500.0 * q))
        .collect();
    let series = [
        Series {
            name: "fast run".into(),
            points: a.clone(),
        },
        Series {
            name: "slow run".into(),
            points: b.clone(),
        },
    ];
    latency_svg(&path, "two runs", &series).expect("plot");
    let text = parse(&path);
    let _ = std::fs::remove_file(&path);
    let t = texts(&text);
    for want in ["two runs", "fast run", "slow run", "99%", "latency (µs)"] {
        assert!(t.iter().any(|x| x == want), "{want} not in {t:?}");
    }
    let lines = polylines(&text);
    assert!(lines.contains(&a.len()), "{lines:?} vs {}", a.len());
    assert!(lines.contains(&b.len()), "{lines:?} vs {}", b.len());
    // Nothing to draw is an error, not an empty chart.
    assert!(latency_svg(&tmp("none.svg"), "x", &[]).is_err());
}

#[test]
fn bar_chart_shows_every_round() {
    let path = tmp("bars.svg");
    let bars = [
        Bar {
            peer: "netloop".into(),
            rounds: vec![100.0, 110.0, 105.0],
        },
        Bar {
            peer: "tokio".into(),
            rounds: vec![90.0, 95.0, 80.0, 85.0],
        },
    ];
    bars_svg(&path, "pp64x50", "operations/s", &bars).expect("plot");
    let text = parse(&path);
    let _ = std::fs::remove_file(&path);
    let t = texts(&text);
    for want in [
        "pp64x50",
        "netloop",
        "tokio",
        "netloop: median 105.0",
        "tokio: median 87.5",
    ] {
        assert!(t.iter().any(|x| x == want), "{want} not in {t:?}");
    }
    // A dot per round.
    assert_eq!(count(&text, "circle"), 7, "{text}");
}

#[test]
fn plot_option_writes_the_runs_percentiles() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let path = tmp("run.svg");
    let p = path.to_string_lossy().into_owned();
    let t = srv.addr.to_string();
    let (ok, out, err) = bench_cli(&[
        "pingpong", "-t", &t, "-c", "2", "-d", "300ms", "--warmup", "50ms", "--json", "--plot", &p,
    ]);
    assert!(ok, "{out}{err}");
    let rep: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let points = rep["percentiles"].as_array().expect("percentiles").len();
    assert!(points >= 10, "{rep}");
    let text = parse(&path);
    let _ = std::fs::remove_file(&path);
    assert!(
        polylines(&text).contains(&points),
        "{:?} vs {points}",
        polylines(&text)
    );
    assert!(
        texts(&text).iter().any(|x| x == "pingpong 64 B × 2"),
        "{:?}",
        texts(&text)
    );
}

#[test]
fn bench_plot_draws_throughput_and_cpu_per_cell() {
    let dir = tmp("compare");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let results = dir.join("results.jsonl");
    let mut lines = String::new();
    for round in 1..=3 {
        for (peer, ops, cpu) in [("netloop", 1000.0, 2.0), ("epoll", 1200.0, 1.5)] {
            let ops = ops + round as f64;
            lines += &format!(
                "{{\"round\":{round},\"cell\":\"pp64x50\",\"peer\":\"{peer}\",\"report\":{{\"ops_per_sec\":{ops},\"server\":{{\"cpu_us_per_op\":{cpu}}}}}}}\n"
            );
        }
    }
    lines += "{\"round\":4,\"cell\":\"pp64x50\",\"peer\":\"netloop\",\"failed\":true,\"report\":{\"ops_per_sec\":1}}\n";
    std::fs::write(&results, lines).expect("write");
    let out = dir.join("charts");
    let res = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("bench-plot")
        .arg(&results)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("bench-plot");
    let err = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(res.status.success(), "{err}");
    assert!(
        err.contains("2 charts from 6 reports (1 lines skipped)"),
        "{err}"
    );
    for kind in ["throughput", "cpu"] {
        let text = parse(&out.join(format!("pp64x50-{kind}.svg")));
        let t = texts(&text);
        assert!(
            t.iter().any(|x| x == "netloop") && t.iter().any(|x| x == "epoll"),
            "{t:?}"
        );
        // Three rounds per peer, the failed one left out.
        assert_eq!(count(&text, "circle"), 6, "{kind}");
    }
    let bad = dir.join("empty.jsonl");
    std::fs::write(&bad, "nothing\n").expect("write");
    let res = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("bench-plot")
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("bench-plot");
    let err = String::from_utf8_lossy(&res.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !res.status.success() && err.contains("nothing to plot"),
        "{err}"
    );
}

#[test]
fn a_single_bar_is_drawn_once() {
    let path = tmp("one.svg");
    let bars = [Bar {
        peer: "only".into(),
        rounds: vec![5.0, 6.0],
    }];
    bars_svg(&path, "one peer", "operations/s", &bars).expect("plot");
    let text = parse(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(count(&text, "circle"), 2);
    assert!(
        texts(&text).iter().any(|x| x == "only"),
        "{:?}",
        texts(&text)
    );
}

/// Every `.svg` under `dir`, relative to it, sorted.
fn svgs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "svg") {
                out.push(p.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_committed_charts_are_what_charts_sh_draws_from_the_committed_results() {
    let out = tmp("charts");
    let _ = std::fs::remove_dir_all(&out);
    let res = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/compare/charts.sh"
        ))
        .arg(&out)
        .env("NETLOOP_BIN", env!("CARGO_BIN_EXE_netloop"))
        .output()
        .expect("charts.sh");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/charts");
    let (want, got) = (svgs(&committed), svgs(&out));
    assert_eq!(
        want, got,
        "the set of charts differs: run bash benches/compare/charts.sh"
    );
    for f in &want {
        let a = std::fs::read(committed.join(f)).expect("committed");
        let b = std::fs::read(out.join(f)).expect("drawn");
        assert!(
            a == b,
            "{} is stale: run bash benches/compare/charts.sh",
            f.display()
        );
        parse(&out.join(f));
    }
    let _ = std::fs::remove_dir_all(&out);
}
