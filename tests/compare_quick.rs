//! `benches/compare/run.sh --quick` works on the builds `cargo test` made:
//! one pingpong cell, every peer it can start, a summary table.

use std::process::Command;

#[test]
fn quick_comparison_runs() {
    let bin = env!("CARGO_BIN_EXE_netloop");
    // Examples are built next to the binaries' deps directory by `cargo test`.
    let tokio = std::path::Path::new(bin)
        .parent()
        .map(|d| d.join("examples").join("tokio_echo"))
        .unwrap_or_default();
    let out = std::env::temp_dir().join(format!("netloop-compare-{}", std::process::id()));
    let res = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/compare/run.sh"
        ))
        .args(["--quick", "--no-build", "--cells", "pp64x50"])
        .args(["--duration", "300ms", "--warmup", "100ms"])
        .arg("--out")
        .arg(&out)
        .env("NETLOOP_BIN", bin)
        .env("TOKIO_BIN", &tokio)
        .output()
        .expect("run.sh");
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    let raw = std::fs::read_to_string(out.join("results.jsonl")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(res.status.success(), "run.sh failed:\n{stdout}\n{stderr}");
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
