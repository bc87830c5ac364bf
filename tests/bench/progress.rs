//! The progress line of `netloop bench`: drawn when stdout and stderr are a
//! terminal (a pseudo-terminal here), absent when they are pipes or with
//! `--json`.

use crate::util::*;
use crate::workloads::bench_cli;
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use std::io::Read;
use std::process::{Command, Stdio};

/// Run `netloop bench ARGS` with stdout and stderr on a pseudo-terminal;
/// everything it wrote there.
fn on_a_terminal(args: &[&str]) -> String {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("utf-8 pts name"))
        .expect("open pts");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("spawn");
    // Read until the child's end of the terminal closes (EIO on Linux).
    let mut m = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = m.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let status = child.wait().expect("wait");
    let text = reader.join().expect("reader");
    assert!(status.success(), "{text}");
    text
}

#[test]
fn a_terminal_sees_elapsed_of_total_and_the_current_rate() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let t = srv.addr.to_string();
    let run = [
        "pingpong", "-t", &t, "-c", "2", "-d", "1200ms", "--warmup", "100ms",
    ];
    let text = on_a_terminal(&run);
    assert!(text.contains("measure "), "{text}");
    assert!(text.contains("/1.2 s"), "{text}");
    assert!(text.contains("/s now"), "{text}");
    // The final table is still there, after the line was cleared.
    assert!(text.contains("round trips/s"), "{text}");
    // --json on a terminal: no progress line.
    let mut json = run.to_vec();
    json.push("--json");
    let text = on_a_terminal(&json);
    assert!(!text.contains("/s now"), "{text}");
    // Pipes: no progress line either.
    let (ok, out, err) = bench_cli(&run);
    assert!(ok, "{out}{err}");
    assert!(
        !out.contains("/s now") && !err.contains("/s now"),
        "{out}{err}"
    );
}
