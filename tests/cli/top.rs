//! `netloop top --once` against a running server: one frame of the loop's
//! live view as plain text, with the server's figures in it; a clear error
//! where there is no endpoint.

use crate::util::*;
use std::io::Write;

#[test]
fn top_once_prints_a_frame_of_a_loaded_server() {
    let srv = Server::start(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--metrics",
        "127.0.0.1:0",
        "--slow-callback",
        "0",
    ]);
    let line = srv.wait_log("metrics endpoint at http://");
    let maddr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    // Traffic before the first poll and between the two: 3 connections
    // doing round trips.
    let mut conns: Vec<_> = (0..3).map(|_| connect(srv.addr)).collect();
    let echo = |conns: &mut Vec<std::net::TcpStream>| {
        for c in conns.iter_mut() {
            c.write_all(&[7u8; 64]).unwrap();
            assert_eq!(read_exact(c, 64), [7u8; 64]);
        }
    };
    for _ in 0..200 {
        echo(&mut conns);
    }
    let mut top = Proc::netloop(&["top", &maddr, "--once", "--interval", "300ms"]);
    for _ in 0..200 {
        echo(&mut conns);
    }
    assert_eq!(top.wait_exit(), Some(0), "{}", top.err_text());
    let out = top.out_text();
    for want in [
        &format!("netloop top {maddr}"),
        "utilisation ",
        "ms per second, by phase",
        "dispatch",
        "iteration busy time (loop delay)",
        "every timer's lateness",
        "busy time by service",
        "slow callbacks: 0 in all (detection off)",
    ] {
        assert!(out.contains(want), "{want:?} missing from\n{out}");
    }
    // Our 3 connections and top's own scrape (an earlier scrape may still
    // be closing).
    let live: u64 = out
        .split("connections ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection count in\n{out}"));
    assert!((4..=5).contains(&live), "{live} connections in\n{out}");
    // The echo's row: a callback count of at least the 1,200 round trips
    // and the connections.
    let row = out
        .lines()
        .find(|l| l.contains("│echo "))
        .unwrap_or_else(|| panic!("no echo row in\n{out}"));
    let callbacks: u64 = row
        .trim_matches('│')
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("callbacks in {row:?}"));
    assert!(callbacks >= 1200, "{row}");
    let samples = out
        .lines()
        .find(|l| l.contains("samples "))
        .expect("samples line");
    let n: u64 = samples
        .split("samples ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0, "{samples}");
}

#[test]
fn top_without_an_endpoint_says_why() {
    // A port nothing listens on: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut top = Proc::netloop(&["top", &format!("127.0.0.1:{port}"), "--once"]);
    assert_eq!(top.wait_exit(), Some(1));
    let err = top.err_text();
    assert!(
        err.starts_with("error: cannot reach the metrics endpoint: 127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
