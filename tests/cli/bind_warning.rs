//! Binding anything but loopback prints a warning that the service has no encryption;
//! the default bind (127.0.0.1) prints none. Checked on the binary for three servers and for
//! the metrics endpoint.
//!
//! The warning is logged by the reactor when the socket is bound (`Reactor::serve`), before the loop runs;
//! the server's own "… server listening on ADDR" line comes from the loop's `listening` event,
//! after it. So the stderr lines up to that line are all there is to check (no waiting for a
//! line that should not come). Sockets bound to 0.0.0.0 use port 0 and the process is killed
//! as soon as it has listened.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Upper bound for the server to start.
const TIMEOUT: Duration = Duration::from_secs(20);

/// What the warning says (src/net/server.rs).
const WARNING: &str = "this service has no encryption";

/// Runs `netloop serve APP ARGS --port 0`, returns its stderr lines up to and including the
/// server's own listening line, then kills it.
fn startup_log(app: &str, args: &[&str]) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["serve", app, "--port", "0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netloop");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + TIMEOUT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`serve {app}` did not report listening; stderr: {lines:#?}");
        };
        let done = line.contains("server listening on ");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

fn warnings(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains(WARNING)).collect()
}

#[test]
fn non_loopback_bind_warns_for_every_server() {
    for app in ["echo", "chat", "heartbeat"] {
        let lines = startup_log(app, &["--host", "0.0.0.0"]);
        let w = warnings(&lines);
        assert_eq!(w.len(), 1, "serve {app} --host 0.0.0.0: {lines:#?}");
        assert!(w[0].contains("WARN"), "not a warning: {}", w[0]);
        assert!(w[0].contains("0.0.0.0:"), "no address: {}", w[0]);
    }
}

#[test]
fn default_loopback_bind_does_not_warn() {
    for app in ["echo", "chat", "heartbeat"] {
        let lines = startup_log(app, &[]);
        assert!(lines.last().is_some_and(|l| l.contains("127.0.0.1:")));
        assert!(
            warnings(&lines).is_empty(),
            "serve {app} on loopback: {lines:#?}"
        );
    }
}

#[test]
fn metrics_endpoint_off_loopback_warns_too() {
    let lines = startup_log("echo", &["--metrics", "0.0.0.0:0"]);
    assert_eq!(warnings(&lines).len(), 1, "{lines:#?}");
    let lines = startup_log("echo", &["--metrics", "127.0.0.1:0"]);
    assert!(warnings(&lines).is_empty(), "{lines:#?}");
}
