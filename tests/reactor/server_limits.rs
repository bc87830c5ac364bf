//! max_connections and descriptor exhaustion.

use crate::util;
use netloop::servers::echo::Echo;
use netloop::ListenOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use util::*;

fn echo_once(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    assert_eq!(read_exact(s, msg.len()), msg);
}

#[test]
fn connections_over_the_limit_are_dropped() {
    let opts = ListenOptions {
        max_connections: Some(2),
        ..Default::default()
    };
    let lp = TestLoop::start_service(opts, || Echo);
    let mut a = connect(lp.addr);
    let mut b = connect(lp.addr);
    echo_once(&mut a, b"a");
    echo_once(&mut b, b"b");
    // The third is accepted and closed at once: EOF (or reset), no echo.
    let mut c = connect(lp.addr);
    let _ = c.write_all(b"c");
    let mut buf = [0u8; 1];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a connection over the limit was served");
    // The first two are unaffected, and a slot frees when one leaves.
    echo_once(&mut a, b"still");
    drop(b);
    let start = Instant::now();
    loop {
        let mut d = connect(lp.addr);
        let _ = d.write_all(b"d");
        let mut buf = [0u8; 1];
        if d.read(&mut buf).unwrap_or(0) == 1 {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "slot never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn binary_reports_drops_with_max_connections() {
    let srv = Server::start(&["serve", "echo", "--port", "0", "--max-connections", "1"]);
    let mut a = connect(srv.addr);
    echo_once(&mut a, b"hello");
    let mut b = connect(srv.addr);
    let mut buf = [0u8; 1];
    assert_eq!(b.read(&mut buf).unwrap_or(0), 0);
    echo_once(&mut a, b"again");
}

/// EMFILE: with RLIMIT_NOFILE 64 and a flood of connections, the server keeps
/// serving its existing client, does not spin, and accepts again once
/// descriptors are free.
#[test]
fn descriptor_exhaustion_neither_spins_nor_stalls() {
    let srv = Server::start_shell("ulimit -n 64;", &["serve", "echo", "--port", "0"]);
    let mut existing = connect(srv.addr);
    echo_once(&mut existing, b"before");
    // A few hundred connection attempts, held open.
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = TcpStream::connect_timeout(&srv.addr, Duration::from_secs(2)) {
            flood.push(s);
        }
    }
    let cpu0 = srv.cpu_ticks();
    let t0 = Instant::now();
    // While flooded, the existing client is still served, repeatedly.
    while t0.elapsed() < Duration::from_secs(1) {
        echo_once(&mut existing, b"during");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = srv.cpu_ticks() - cpu0;
    let ticks_per_sec = 100; // USER_HZ on Linux
    let elapsed_ticks = t0.elapsed().as_secs_f64() * ticks_per_sec as f64;
    assert!(
        (cpu as f64) < elapsed_ticks * 0.5,
        "server used {cpu} CPU ticks in {elapsed_ticks:.0}: spinning"
    );
    // Free the descriptors; a new client is accepted again.
    drop(flood);
    let start = Instant::now();
    loop {
        let mut s = connect(srv.addr);
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = s.write_all(b"after");
        let mut buf = [0u8; 5];
        if s.read_exact(&mut buf).is_ok() && &buf == b"after" {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "the server never accepted again");
    }
    echo_once(&mut existing, b"end");
}
