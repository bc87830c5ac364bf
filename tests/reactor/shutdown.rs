//! SIGTERM while a client has data in flight: the client receives every byte
//! the server echoed, then FIN, and the server exits 0.

use crate::util;
use std::io::{Read, Write};
use std::time::Duration;
use util::*;

#[test]
fn sigterm_flushes_then_fins_then_exits_zero() {
    let mut srv = Server::start(&["serve", "echo", "--port", "0", "--grace", "5s"]);
    let mut s = connect(srv.addr);
    let data = random_bytes(4 << 20, 21);
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        // The client does not read while it writes: data piles up in flight.
        for chunk in d2.chunks(64 * 1024) {
            if w.write_all(chunk).is_err() {
                break;
            }
        }
    });
    // Make sure data is in flight before the signal.
    let mut first = [0u8; 1024];
    s.read_exact(&mut first).unwrap();
    srv.signal("TERM");
    srv.wait_log("graceful shutdown");
    let mut got = first.to_vec();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_to_end(&mut got).expect("clean FIN, not a reset");
    assert!(got.len() >= 1024);
    assert!(
        got == data[..got.len()],
        "echoed bytes are not a prefix of what was sent"
    );
    drop(s);
    let _ = writer.join();
    assert_eq!(srv.wait_exit(), Some(0));
}

#[test]
fn second_signal_exits_at_once() {
    let mut srv = Server::start(&["serve", "echo", "--port", "0", "--grace", "60s"]);
    // A client that never closes keeps the graceful shutdown waiting.
    let _s = connect(srv.addr);
    std::thread::sleep(Duration::from_millis(100));
    srv.signal("INT");
    srv.wait_log("graceful shutdown");
    srv.signal("INT");
    let code = srv.wait_exit();
    assert_eq!(code, Some(130), "128 + SIGINT");
}

#[test]
fn grace_period_destroys_what_is_left_then_exits_zero() {
    let mut srv = Server::start(&["serve", "echo", "--port", "0", "--grace", "300ms"]);
    // This client never closes its side: only the grace timer ends it.
    let mut s = connect(srv.addr);
    s.write_all(b"x").unwrap();
    assert_eq!(read_exact(&mut s, 1), b"x");
    let t0 = std::time::Instant::now();
    srv.signal("TERM");
    // Our FIN arrives first (end()), then the process exits after the grace.
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "FIN after end()");
    assert_eq!(srv.wait_exit(), Some(0));
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "exited before the grace period"
    );
    srv.wait_log("grace period over");
}
