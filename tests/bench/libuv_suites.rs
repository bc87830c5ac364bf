//! The workloads that repeat well-known suites, briefly, on loopback:
//! libuv's ping_pongs, tcp4_pound_N and million_timers, rust_echo_bench's
//! grid (`pingpong --grid`), and `benches/compare/libuv.sh --quick`, which
//! runs libuv's side beside ours when cc and libuv's headers are there.

use crate::util::*;
use crate::workloads::{args, bench_cli, clean};
use netloop::bench::{execute, Workload};
use serde_json::Value;
use std::process::Command;

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn ping_pongs_is_one_connection_of_five_byte_round_trips() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let t = srv.addr.to_string();
    let (ok, out, err) = bench_cli(&[
        "ping_pongs",
        "-t",
        &t,
        "-d",
        "300ms",
        "--warmup",
        "50ms",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let v = json(&out);
    assert_eq!(v["workload"], "ping_pongs");
    assert_eq!(v["connections"], 1, "libuv's one pinger: {v}");
    assert_eq!(v["size"], 5, "\"PING\\n\": {v}");
    assert_eq!(v["mismatched_bytes"], 0);
    assert!(v["ops"].as_u64().unwrap_or(0) > 0, "{v}");
    // The alias takes the same defaults.
    let (ok, out, err) = bench_cli(&[
        "ping-pongs",
        "-t",
        &t,
        "-d",
        "100ms",
        "--warmup",
        "50ms",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let v = json(&out);
    assert_eq!(
        (v["connections"].as_u64(), v["size"].as_u64()),
        (Some(1), Some(5)),
        "{v}"
    );
    // The table repeats the figure in libuv's words.
    let mut a = args(Workload::PingPongs, srv.addr, 1);
    a.size = 5;
    let rep = execute(&a).expect("ping_pongs run");
    clean(&rep);
    let line = rep.libuv_line().expect("libuv line");
    assert!(
        line.starts_with("ping_pongs: ") && line.ends_with(" roundtrips/s"),
        "{line}"
    );
    assert!(rep.to_table(false).contains(&line));
}

#[test]
fn pound_reconnects_a_hundred_clients_and_counts_failures() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let t = srv.addr.to_string();
    let (ok, out, err) = bench_cli(&[
        "pound", "-t", &t, "-d", "300ms", "--warmup", "50ms", "--json",
    ]);
    assert!(ok, "{out}{err}");
    let v = json(&out);
    assert_eq!(v["workload"], "pound");
    assert_eq!(v["connections"], 100, "tcp4_pound_100 by default: {v}");
    assert_eq!(v["size"], 1);
    assert_eq!(v["op"], "accepts");
    // Far more closed connections than clients: they reconnect.
    assert!(v["ops"].as_u64().unwrap_or(0) > 100, "{v}");
    assert_eq!(v["mismatched_bytes"], 0);
    let mut a = args(Workload::Pound, srv.addr, 20);
    a.size = 1;
    let rep = execute(&a).expect("pound run");
    clean(&rep);
    let line = rep.libuv_line().expect("libuv line");
    assert!(
        line.starts_with("tcp-conn-pound-20: ") && line.ends_with("(0 failed)"),
        "{line}"
    );
}

#[test]
fn million_timers_fires_every_timer_once() {
    let (ok, out, err) = bench_cli(&["million_timers", "--timers", "30000", "--json"]);
    assert!(ok, "{out}{err}");
    let v = json(&out);
    assert_eq!(v["timers"], 30000);
    assert_eq!(v["fired"], 30000);
    // The last timer is due 30 ms after arming began (to the millisecond).
    let waited = v["init_s"].as_f64().unwrap_or(0.0) + v["dispatch_s"].as_f64().unwrap_or(0.0);
    assert!(waited >= 0.029, "{v}");
    assert_eq!(v["last_timeout_s"], 0.03);
    let (ok, out, err) = bench_cli(&["million_timers", "--timers", "0"]);
    assert!(!ok && err.contains("--timers must be"), "{out}{err}");
}

#[test]
fn the_default_grid_is_rust_echo_benchs_eighteen_cells() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let t = srv.addr.to_string();
    let (ok, out, err) = bench_cli(&[
        "pingpong", "--grid", "-t", &t, "-d", "100ms", "--warmup", "50ms", "--json",
    ]);
    assert!(ok, "{out}{err}");
    let v = json(&out);
    let cells = v["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 18, "{v}");
    let mut seen = Vec::new();
    for c in cells {
        let rep = &c["report"];
        assert!(rep.is_object(), "cell failed: {c}");
        assert_eq!(rep["size"], c["size"]);
        assert_eq!(rep["connections"], c["connections"]);
        assert_eq!(rep["ready"], c["connections"], "{c}");
        assert_eq!(rep["mismatched_bytes"], 0);
        assert!(rep["ops"].as_u64().unwrap_or(0) > 0, "{c}");
        seen.push((
            c["size"].as_u64().unwrap(),
            c["connections"].as_u64().unwrap(),
        ));
    }
    for size in [128, 512, 1000] {
        for conns in [1, 50, 150, 300, 500, 1000] {
            assert!(seen.contains(&(size, conns)), "{size} × {conns} missing");
        }
    }
}

#[test]
fn the_grid_table_has_a_row_per_connection_count_and_a_column_per_size() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let t = srv.addr.to_string();
    let plot = std::env::temp_dir().join(format!("netloop-grid-{}.svg", std::process::id()));
    let plot_arg = plot.to_string_lossy().into_owned();
    let (ok, out, err) = bench_cli(&[
        "pingpong",
        "--grid",
        "--grid-sizes",
        "128,1000",
        "--grid-connections",
        "1,4",
        "-t",
        &t,
        "-d",
        "100ms",
        "--warmup",
        "50ms",
        "--plot",
        &plot_arg,
    ]);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"| conns | 128 B | 1000 B |"), "{out}");
    // --plot: one percentile line per cell, named after it.
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    let _ = std::fs::remove_file(&plot);
    let doc = roxmltree::Document::parse(&svg).expect("svg is XML");
    let lines_drawn = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines_drawn >= 4, "{lines_drawn} lines");
    for name in ["128 B × 1", "128 B × 4", "1000 B × 1", "1000 B × 4"] {
        assert!(
            doc.descendants()
                .any(|n| n.has_tag_name("text") && n.text().map(str::trim) == Some(name)),
            "{name} not in the legend"
        );
    }
    for conns in ["| 1 |", "| 4 |"] {
        let row = lines.iter().find(|l| l.starts_with(conns)).expect(conns);
        assert_eq!(row.matches('|').count(), 4, "{row}");
        assert!(!row.contains("failed"), "{row}");
    }
    // A grid of the wrong workload, or with an empty list, is refused.
    let (ok, _, err) = bench_cli(&["stream", "--grid", "-t", &t]);
    assert!(!ok && err.contains("--grid is for pingpong only"), "{err}");
    let (ok, _, err) = bench_cli(&["pingpong", "--grid", "--grid-sizes", "", "-t", &t]);
    assert!(!ok, "{err}");
}

#[test]
fn libuv_script_runs_both_loops_side_by_side() {
    let have = Command::new("sh")
        .args([
            "-c",
            "printf '#include <uv.h>\\nint main(void){return 0;}\\n' | cc -x c - -o /dev/null -luv",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!("skipped: cc or libuv's headers are missing (apt-get install gcc libuv1-dev)");
        return;
    }
    let out = std::env::temp_dir().join(format!("netloop-libuv-{}", std::process::id()));
    let res = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/compare/libuv.sh"
        ))
        .args(["--quick", "--no-build", "--timers", "20000", "--out"])
        .arg(&out)
        .env("NETLOOP_BIN", env!("CARGO_BIN_EXE_netloop"))
        .output()
        .expect("libuv.sh");
    let stdout = String::from_utf8_lossy(&res.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    let raw = std::fs::read_to_string(out.join("libuv.jsonl")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(res.status.success(), "{stdout}\n{stderr}");
    // Every pairing of client and server ran and measured something.
    for pair in [
        "netloop:netloop",
        "libuv:libuv",
        "netloop:libuv",
        "libuv:netloop",
    ] {
        let (c, s) = pair.split_once(':').unwrap();
        for bench in ["ping_pongs", "pound100"] {
            let line = raw
                .lines()
                .map(json)
                .find(|v| v["bench"] == bench && v["client"] == c && v["server"] == s)
                .unwrap_or_else(|| panic!("{bench} {pair} missing:\n{raw}"));
            assert!(
                line["report"]["ops_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
                "{line}"
            );
            // The server's CPU over the run, read from /proc.
            assert!(line["server_cpu_s"].as_f64().is_some(), "{line}");
        }
    }
    for who in ["netloop", "libuv"] {
        let v = raw
            .lines()
            .map(json)
            .find(|v| v["bench"] == "million_timers" && v["client"] == who)
            .unwrap_or_else(|| panic!("million_timers {who} missing:\n{raw}"));
        assert_eq!(v["report"]["fired"], 20000, "{v}");
        assert!(v["report"]["cpu_s"].as_f64().is_some(), "{v}");
    }
    if stdout.contains("python3 not found") {
        eprintln!("no summary table: python3 not found");
    } else {
        assert!(
            stdout.contains("| ping_pongs | libuv → libuv |"),
            "{stdout}"
        );
        assert!(
            stdout.contains(
                "| million_timers (20,000) init / dispatch / cleanup / total s | netloop |"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains("| ping_pongs: netloop → netloop / libuv → libuv, rate |"),
            "{stdout}"
        );
    }
}

#[test]
fn grid_script_runs_the_grid_against_each_server() {
    // A warm-up, however short, is extended until round trips flow (a
    // server pinned to a CPU busy with other tests can start slowly), so
    // every cell's window has some.
    let out = std::env::temp_dir().join(format!("netloop-grid-{}", std::process::id()));
    let res = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/compare/grid.sh"
        ))
        .args([
            "--no-build",
            "--rounds",
            "1",
            "--sizes",
            "128,1000",
            "--connections",
            "1,3",
        ])
        .args([
            "--duration",
            "150ms",
            "--warmup",
            "50ms",
            "--servers",
            "netloop libuv epoll",
        ])
        .arg("--out")
        .arg(&out)
        .env("NETLOOP_BIN", env!("CARGO_BIN_EXE_netloop"))
        .output()
        .expect("grid.sh");
    let stdout = String::from_utf8_lossy(&res.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    let raw = std::fs::read_to_string(out.join("grid.jsonl")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(res.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<Value> = raw.lines().map(json).collect();
    // netloop always; libuv and epoll where cc (and libuv's headers) are.
    let servers: Vec<&str> = lines.iter().filter_map(|v| v["server"].as_str()).collect();
    assert!(servers.contains(&"netloop"), "{raw}");
    for skipped in ["libuv", "epoll"] {
        if !servers.contains(&skipped) {
            assert!(stdout.contains(&format!("skipping {skipped}")), "{stdout}");
            eprintln!("{skipped} not run: {stdout}");
        }
    }
    for v in &lines {
        let cells = v["grid"]["cells"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(cells.len(), 4, "{v}");
        for c in cells {
            assert!(c["report"]["ops"].as_u64().unwrap_or(0) > 0, "{c}");
        }
    }
    if !stdout.contains("python3 not found") {
        assert!(stdout.contains("| 1000 B | 3 |"), "{stdout}");
    }
}
