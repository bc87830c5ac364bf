//! The heartbeat client binary against scripted servers: it adopts the
//! announced interval, detects a silent server, reconnects once per failure
//! and stops after `server_shutdown`.

use crate::util;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

/// A scripted server: runs `script` for every accepted connection, on its
/// own thread; counts accepts.
fn fake_server<F>(script: F) -> (std::net::SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let script = Arc::new(script);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            c.fetch_add(1, Ordering::SeqCst);
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let script = script.clone();
            std::thread::spawn(move || script(s));
        }
    });
    (addr, count)
}

fn send(s: &mut TcpStream, v: Value) {
    let _ = s.write_all(format!("{v}\n").as_bytes());
}

fn client(addr: std::net::SocketAddr, extra: &[&str]) -> Output {
    let mut args = vec!["heartbeat".to_string(), addr.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every scenario ends by itself (duration, giving up, or shutdown);
    // the output is small, so the pipes cannot fill meanwhile.
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the client did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn adopts_the_announced_interval_and_measures_rtt() {
    let pings = Arc::new(AtomicUsize::new(0));
    let p = pings.clone();
    let (addr, _) = fake_server(move |mut s| {
        send(
            &mut s,
            json!({"type": "welcome", "clientId": "c1", "heartbeatInterval": 50}),
        );
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "ping" {
                p.fetch_add(1, Ordering::SeqCst);
                send(
                    &mut s,
                    json!({"type": "pong", "timestamp": v["timestamp"], "serverTime": 0}),
                );
            }
            line.clear();
        }
    });
    // The client's own default is 30 s: any ping at all proves adoption.
    let out = client(addr, &["--duration", "600ms"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("heartbeat interval 50ms"), "{text}");
    let n = pings.load(Ordering::SeqCst);
    assert!((5..=13).contains(&n), "{n} pings in 600 ms at 50 ms");
    let stats = text.lines().find(|l| l.starts_with("stats:")).unwrap();
    assert!(!stats.contains("(0 samples)"), "{stats}");
}

#[test]
fn answers_server_pings_with_the_server_timestamp() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (addr, _) = fake_server(move |mut s| {
        send(
            &mut s,
            json!({"type": "welcome", "heartbeatInterval": 1000}),
        );
        send(
            &mut s,
            json!({"type": "ping", "timestamp": 123456, "urgent": true}),
        );
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "pong" {
                let _ = tx.send(v);
            }
            line.clear();
        }
    });
    let out = client(addr, &["--duration", "300ms"]);
    assert!(out.status.success());
    let pong = rx.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(pong["timestamp"], 123456);
    assert!(pong["clientTime"].as_u64().is_some());
}

#[test]
fn reconnects_once_per_failure_then_gives_up() {
    // Accept and close at once, without a welcome.
    let (addr, accepts) = fake_server(drop);
    let out = client(
        addr,
        &["--reconnect-delay", "20ms", "--max-reconnects", "3"],
    );
    let text = stdout(&out);
    assert_eq!(
        accepts.load(Ordering::SeqCst),
        4,
        "1 + 3 reconnects: {text}"
    );
    for n in 1..=3 {
        assert_eq!(
            text.matches(&format!("reconnect {n}/3")).count(),
            1,
            "{text}"
        );
    }
    assert!(!text.contains("reconnect 4/"), "{text}");
    assert!(text.contains("giving up"), "{text}");
}

#[test]
fn a_refused_connection_is_one_failure_not_two() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let out = client(
        addr,
        &["--reconnect-delay", "10ms", "--max-reconnects", "2"],
    );
    let text = stdout(&out);
    assert_eq!(text.matches("reconnect 1/2").count(), 1, "{text}");
    assert_eq!(text.matches("reconnect 2/2").count(), 1, "{text}");
    assert_eq!(text.matches("connecting to").count(), 3, "{text}");
    assert!(text.contains("giving up"), "{text}");
    assert!(!out.status.success(), "never connected");
}

#[test]
fn a_silent_server_is_detected_and_replaced() {
    // First connection: welcome with a 50 ms interval, then silence with the
    // socket open. Later connections are closed at once.
    let first = Arc::new(AtomicUsize::new(0));
    let (addr, accepts) = fake_server(move |mut s| {
        if first.fetch_add(1, Ordering::SeqCst) > 0 {
            return;
        }
        send(&mut s, json!({"type": "welcome", "heartbeatInterval": 50}));
        let mut r = BufReader::new(s);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            line.clear();
        }
    });
    let t0 = Instant::now();
    let out = client(
        addr,
        &["--reconnect-delay", "10ms", "--max-reconnects", "1"],
    );
    let text = stdout(&out);
    assert_eq!(text.matches("server silent for").count(), 1, "{text}");
    assert_eq!(text.matches("reconnect 1/1").count(), 1, "{text}");
    assert!(text.contains("giving up"), "{text}");
    assert_eq!(accepts.load(Ordering::SeqCst), 2);
    // 3 intervals of silence = 150 ms, plus process start and slack.
    assert!(t0.elapsed() >= Duration::from_millis(150));
}

#[test]
fn server_shutdown_stops_reconnecting() {
    let (addr, accepts) = fake_server(|mut s| {
        send(&mut s, json!({"type": "welcome", "heartbeatInterval": 50}));
        send(&mut s, json!({"type": "server_shutdown", "message": "bye"}));
        drop(s);
    });
    let out = client(addr, &["--reconnect-delay", "10ms"]);
    let text = stdout(&out);
    assert!(text.contains("server shutting down: bye"), "{text}");
    assert!(!text.contains("reconnect 1/"), "{text}");
    assert_eq!(accepts.load(Ordering::SeqCst), 1);
    assert!(out.status.success());
}

/// Terminal escapes a hostile server might send: OSC (retitle), CSI (clear
/// the screen), their one-byte C1 forms, and a bidi override.
const ESCAPES: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{9d}0;t\u{202e}";

/// No byte of `out` starts a terminal escape or reorders the display.
fn assert_no_escapes(out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    assert!(
        !text.chars().any(|c| c == '\u{1b}'
            || c == '\u{7}'
            || c == '\u{9b}'
            || c == '\u{9d}'
            || c == '\u{202e}'),
        "escape printed: {text:?}"
    );
}

#[test]
fn server_text_is_printed_without_terminal_escapes() {
    let (addr, _) = fake_server(|mut s| {
        let id = format!("c{ESCAPES}1");
        send(
            &mut s,
            json!({"type": "welcome", "clientId": id, "heartbeatInterval": 50}),
        );
        send(&mut s, json!({"type": "other", "x": ESCAPES}));
        send(
            &mut s,
            json!({"type": "server_shutdown", "message": ESCAPES}),
        );
        drop(s);
    });
    let out = client(addr, &["--reconnect-delay", "10ms"]);
    let text = stdout(&out);
    assert!(text.contains("welcome: c\u{fffd}]0;pwned"), "{text}");
    assert!(text.contains("server shutting down: \u{fffd}"), "{text}");
    assert_no_escapes(&out.stdout);
    assert_no_escapes(&out.stderr);
}
