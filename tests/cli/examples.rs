//! The teaching examples build and run: each is started from the target
//! directory (`cargo test` builds examples; `cargo test --test examples_run`
//! alone builds them here first), bounded in time, and its output checked.

use crate::util;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Instant;
use util::*;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples_run-HASH -> target/<profile>/examples/NAME
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    static BUILD: Once = Once::new();
    if !path.exists() {
        BUILD.call_once(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "--examples"])
                .status()
                .expect("cargo build --examples")
                .success();
            assert!(ok, "examples failed to build");
        });
    }
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// Wait for `child` to exit within `TIMEOUT` (killed otherwise); its stdout.
fn finish(mut child: Child) -> String {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                std::io::Read::read_to_string(&mut o, &mut out).unwrap();
            }
            assert!(st.success(), "example failed: {st}\n{out}");
            return out;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("example did not exit in time");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn run(name: &str) -> String {
    let child = Command::new(example(name))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn example");
    finish(child)
}

#[test]
fn timers_example_prints_immediate_before_timeout_for_io() {
    let out = run("timers");
    let pos = |s: &str| {
        out.find(s)
            .unwrap_or_else(|| panic!("{s:?} missing:\n{out}"))
    };
    assert!(pos("I/O callback") < pos("io: setImmediate"));
    assert!(pos("io: setImmediate") < pos("io: setTimeout(0)"), "{out}");
    assert!(pos("main: setImmediate") > 0 && pos("main: setTimeout(0)") > 0);
}

#[test]
fn backpressure_example_shows_false_then_drain() {
    let out = run("backpressure");
    let f = out.find("write() returned false").expect(&out);
    let d = out.find("drain:").expect(&out);
    assert!(f < d, "{out}");
    // Everything the server wrote reached the client.
    let kib = |line: &str, after: &str| -> u64 {
        let l = out.lines().find(|l| l.starts_with(line)).expect(&out);
        let rest = l.split(after).nth(1).expect(&out);
        rest.split_whitespace().next().unwrap().parse().expect(&out)
    };
    assert_eq!(kib("write()", "after "), kib("client read", "read "));
}

#[test]
fn echo_example_echoes_and_shuts_down_on_sigterm() {
    let mut child = Command::new(example("echo"))
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn echo example");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let addr = first
        .strip_prefix("listening on ")
        .expect(&first)
        .parse()
        .expect("address");
    let mut s = connect(addr);
    s.write_all(b"hello, loop").unwrap();
    assert_eq!(read_exact(&mut s, 11), b"hello, loop");
    drop(s);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    // Bounded wait for the exit first; then the pipe is at EOF.
    finish(child);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("Graceful")), "{rest:?}");
}

#[test]
fn bare_echo_example_echoes_small_and_large_writes() {
    let mut child = Command::new(example("bare_echo"))
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bare_echo example");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let addr = first
        .strip_prefix("listening on ")
        .expect(&first)
        .parse()
        .expect("address");
    // Two connections at once: small request/response, then a 2 MiB
    // stream written while reading (exercises the unsent-rest path).
    let mut a = connect(addr);
    let mut b = connect(addr);
    for i in 0..20u8 {
        let msg = [i; 64];
        a.write_all(&msg).unwrap();
        assert_eq!(read_exact(&mut a, 64), msg);
    }
    let data = random_bytes(2 << 20, 7);
    assert_eq!(echo_roundtrip(addr, data.clone()), data);
    b.write_all(b"still here").unwrap();
    assert_eq!(read_exact(&mut b, 10), b"still here");
    // No graceful shutdown in the bare loop: it is killed.
    child.kill().expect("kill bare_echo");
    child.wait().expect("wait bare_echo");
}

#[test]
fn compose_example_runs_echo_chat_and_metrics_in_one_loop() {
    let mut child = Command::new(example("compose"))
        .args(["0", "0", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn compose example");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = |name: &str| -> std::net::SocketAddr {
        let line = lines.next().expect("a line").expect("utf-8");
        let rest = line.strip_prefix(&format!("{name} on ")).expect(&line);
        rest.parse().expect("address")
    };
    let (echo, chat, metrics) = (addr("echo"), addr("chat"), addr("metrics"));
    // Echo: bytes come back.
    let mut e = connect(echo);
    e.write_all(b"composed").unwrap();
    assert_eq!(read_exact(&mut e, 8), b"composed");
    // Chat: its own welcome (not an echo), with the member's id.
    let mut c = connect(chat);
    let mut welcome = BufReader::new(c.try_clone().unwrap());
    let mut seen = String::new();
    while !seen.contains("Your ID") {
        let mut line = String::new();
        let n = welcome.read_line(&mut line).expect("chat welcome");
        assert!(n > 0, "chat closed before its welcome: {seen:?}");
        seen.push_str(&line);
    }
    c.write_all(b"/quit\n").unwrap();
    // Metrics: the one loop counts the connections of all three servers.
    let mut m = connect(metrics);
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let body = String::from_utf8(read_to_end(&mut m)).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let accepted: u64 = body
        .lines()
        .find(|l| l.starts_with("netloop_connections_accepted_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect(&body);
    assert!(accepted >= 3, "accepted {accepted}:\n{body}");
    drop((e, c, welcome));
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    finish(child);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("Graceful")), "{rest:?}");
}
