//! `benches/compare/run.sh --quick` works on the builds `cargo test` made:
//! one pingpong cell, every peer it can start, a summary table.

use std::process::Command;

/// What a compare script printed and wrote.
struct ScriptRun {
    ok: bool,
    stdout: String,
    stderr: String,
    /// Its `results.jsonl`.
    raw: String,
}

/// Run `benches/compare/SCRIPT --no-build ARGS... --out TMP` on the builds
/// `cargo test` made (the examples are built next to the binaries' deps
/// directory), and collect what it left.
fn run_script(script: &str, args: &[&str]) -> ScriptRun {
    let bin = env!("CARGO_BIN_EXE_netloop");
    let tokio = std::path::Path::new(bin)
        .parent()
        .map(|d| d.join("examples").join("tokio_echo"))
        .unwrap_or_default();
    let out = std::env::temp_dir().join(format!(
        "netloop-{}-{}",
        script.trim_end_matches(".sh"),
        std::process::id()
    ));
    let res = Command::new("bash")
        .arg(format!(
            "{}/benches/compare/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg("--no-build")
        .args(args)
        .arg("--out")
        .arg(&out)
        .env("NETLOOP_BIN", bin)
        .env("TOKIO_BIN", &tokio)
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let raw = std::fs::read_to_string(out.join("results.jsonl")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    ScriptRun {
        ok: res.status.success(),
        stdout: String::from_utf8_lossy(&res.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&res.stderr).into_owned(),
        raw,
    }
}

#[test]
fn quick_comparison_runs() {
    let ScriptRun {
        ok,
        stdout,
        stderr,
        raw,
    } = run_script(
        "run.sh",
        &[
            "--quick",
            "--cells",
            "pp64x50",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
        ],
    );
    assert!(ok, "run.sh failed:\n{stdout}\n{stderr}");
    assert!(
        raw.contains("\"peer\":\"netloop\""),
        "no netloop report:\n{stdout}\n{stderr}"
    );
    // The table needs python3; without it the script says so.
    assert!(
        stdout.contains("| pp64x50 | netloop |") || stdout.contains("python3 not found"),
        "no netloop row:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("wrong bytes"), "{stdout}");
}

/// The scaling script end to end on this machine: `--workers 1` and every
/// power of two up to the cores, netloop beside its peers (a missing peer
/// is skipped with a message), one short round.
#[test]
fn scaling_script_runs_netloop_with_workers() {
    let ScriptRun {
        ok,
        stdout,
        stderr,
        raw,
    } = run_script(
        "scaling.sh",
        &[
            "--rounds",
            "1",
            "--cells",
            "connect50",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
        ],
    );
    assert!(ok, "scaling.sh failed:\n{stdout}\n{stderr}");
    assert!(
        raw.contains("\"cell\":\"connect50-w1\",\"peer\":\"netloop\""),
        "no netloop report for one worker:\n{raw}\n{stderr}"
    );
    assert!(
        !raw.contains("\"failed\":true"),
        "a failed run:\n{raw}\n{stderr}"
    );
}

/// Run a Python script of benches/compare with `args`; `None` without python3.
fn python(script: &str, args: &[&str]) -> Option<(bool, String)> {
    let path = format!("{}/benches/compare/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(path).args(args).output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

#[test]
fn interval_rule_self_test() {
    let Some((ok, text)) = python("stats.py", &[]) else {
        eprintln!("skipped: python3 not found");
        return;
    };
    assert!(ok, "{text}");
}

/// One run.sh result line.
fn result_line(round: u32, peer: &str, rate: f64, failed: bool) -> String {
    let rep = serde_json::json!({
        "ops": 1000, "ops_per_sec": rate, "mismatched_bytes": if failed { 3 } else { 0 },
        "generator": {"cpu_pct": 50.0, "saturated": false},
        "server": {"cpu_pct": 50.0, "cpu_us_per_op": 1e6 / rate},
    });
    format!("{{\"round\":{round},\"cell\":\"pp64x50\",\"peer\":\"{peer}\",\"report\":{rep}}}\n")
}

#[test]
fn summary_drops_failed_runs_and_decides_by_the_interval() {
    // Seven rounds: netloop 10 % above tokio in every round, level with
    // epoll (alternately above and below), and one extra netloop run with
    // wrong bytes whose huge rate must not count.
    let mut raw = String::new();
    for round in 1..=7u32 {
        let base = 100_000.0 + 1_000.0 * f64::from(round);
        raw += &result_line(round, "netloop", base, false);
        raw += &result_line(round, "tokio", base / 1.1, false);
        let wobble = if round % 2 == 0 { 1.03 } else { 0.97 };
        raw += &result_line(round, "epoll", base * wobble, false);
    }
    raw += &result_line(8, "netloop", 9e9, true);
    let file = std::env::temp_dir().join(format!("netloop-summary-{}.jsonl", std::process::id()));
    std::fs::write(&file, raw).expect("write results");
    let out = python("summarize.py", &[file.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&file);
    let Some((ok, text)) = out else {
        eprintln!("skipped: python3 not found");
        return;
    };
    assert!(ok, "{text}");
    assert!(text.contains("| pp64x50 | netloop | 7 (1) |"), "{text}");
    assert!(text.contains("Failed runs, dropped (1)"), "{text}");
    let row = |peer: &str| {
        text.lines()
            .find(|l| l.contains(&format!("netloop vs {peer} |")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("tokio").contains("1.10×") && row("tokio").contains("| ahead |"),
        "{text}"
    );
    assert!(row("epoll").contains("tie (not distinguishable)"), "{text}");
}

/// Run `. benches/compare/lib.sh` in bash under `prefix` (e.g. `chrt -r 1`);
/// `None` if the prefix cannot run here.
fn source_lib_under(prefix: &[&str]) -> Option<(bool, String)> {
    let script = format!(
        "set -euo pipefail; cd '{}'; . benches/compare/lib.sh; echo sourced",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg("bash");
            c
        }
        None => Command::new("bash"),
    };
    let out = cmd.arg("-c").arg(script).output().ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !stdout.contains("sourced") {
        eprintln!("{prefix:?} bash: {stderr}");
        return None;
    }
    Some((out.status.success(), stderr))
}

/// Under a real-time policy with the kernel's real-time throttle on, the
/// compare scripts say once that saturated runs get 95 % of a core; under
/// the normal policy they say nothing.
#[test]
fn real_time_throttling_is_noted_once_under_chrt_and_not_otherwise() {
    let (ok, quiet) = source_lib_under(&[]).expect("bash runs");
    assert!(ok);
    assert!(!quiet.contains("real-time"), "{quiet}");
    let runtime =
        std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us").unwrap_or_default();
    if runtime.trim() == "-1" || runtime.is_empty() {
        eprintln!("skipped: real-time throttling is off here (sched_rt_runtime_us {runtime:?})");
        return;
    }
    let Some((ok, note)) = source_lib_under(&["chrt", "-r", "1"]) else {
        eprintln!("skipped: chrt -r 1 is not allowed here (needs CAP_SYS_NICE)");
        return;
    };
    assert!(ok);
    assert_eq!(note.matches("real-time throttling on").count(), 1, "{note}");
    assert!(note.contains("sched_rt_runtime_us=-1"), "{note}");
}
