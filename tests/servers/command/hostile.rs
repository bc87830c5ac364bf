//! Hostile peers against `netloop serve command` (the reliability suite, RELIABILITY.md), after `tests/servers/echo/hostile.rs`:
//! unknown-command floods from peers that read their replies and from peers that do not,
//! and over-long lines, while a healthy client's round trip is measured.
//! `tests/servers/command/server.rs` covers each line error once on an idle server.

use crate::{hostile_common, lineclient, util};
use hostile_common::*;
use lineclient::LineClient;
use std::io::Write;
use std::time::{Duration, Instant};
use util::*;

const FLOOD: usize = 20_000;

/// One echo round trip of the healthy client.
fn rtt(c: &mut LineClient, i: usize) -> Duration {
    let t0 = Instant::now();
    c.send(&format!("hello {i}"));
    c.expect(&format!("Echo: hello {i}\n"));
    t0.elapsed()
}

fn flood_bytes() -> Vec<u8> {
    (0..FLOOD)
        .flat_map(|i| format!("/bogus{i} with arguments\n").into_bytes())
        .collect()
}

/// Reads the `FLOOD` unknown-command replies, checking their order.
fn expect_flood_replies(c: &mut LineClient) {
    for i in 0..FLOOD {
        assert_eq!(
            c.line(),
            format!("Unknown command: /bogus{i} with arguments\n"),
            "reply {i}"
        );
    }
}

#[test]
fn unknown_command_floods_are_answered_in_order_and_do_not_slow_others() {
    let _serial = serial();
    let srv = Server::start(&["serve", "command", "--port", "0"]);
    let mut healthy = LineClient::connect(srv.addr);
    healthy.line(); // welcome
    let mut idle: Vec<Duration> = (0..200).map(|i| rtt(&mut healthy, i)).collect();
    let (p50_idle, p99_idle) = p50_p99(&mut idle);
    let rss0 = srv.rss_kib();
    // Two flooders that read their replies as they go, on threads.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let addr = srv.addr;
            std::thread::spawn(move || {
                let mut c = LineClient::connect(addr);
                c.line();
                let mut w = c.w.try_clone().unwrap();
                let writer = std::thread::spawn(move || w.write_all(&flood_bytes()).unwrap());
                expect_flood_replies(&mut c);
                writer.join().unwrap();
            })
        })
        .collect();
    // Three that never read: their replies reach the high-water mark and the server stops
    // reading them; their writers block in TCP.
    let stuck: Vec<_> = (0..3)
        .map(|_| {
            let mut c = LineClient::connect(srv.addr);
            c.line();
            let w = c.w.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                let mut w = w;
                w.write_all(&flood_bytes()).unwrap();
            });
            (c, writer)
        })
        .collect();
    let t0 = Instant::now();
    let mut loaded = Vec::new();
    let mut i = 1000;
    while !readers.iter().all(|r| r.is_finished()) || loaded.len() < 200 {
        loaded.push(rtt(&mut healthy, i));
        i += 1;
        assert!(t0.elapsed() < TIMEOUT, "reading flooders never finished");
    }
    for r in readers {
        r.join().unwrap();
    }
    let rss1 = srv.rss_kib();
    // The stuck ones read now: every reply, in order, nothing lost.
    for (mut c, writer) in stuck {
        expect_flood_replies(&mut c);
        writer.join().unwrap();
    }
    let (p50_load, p99_load) = p50_p99(&mut loaded);
    eprintln!(
        "command flood: 5 peers x {FLOOD} unknown commands (2 reading, 3 not reading until the \
         end) answered in order, nothing lost; healthy echo p50/p99 unloaded \
         {p50_idle:?}/{p99_idle:?}, during {p50_load:?}/{p99_load:?} ({} samples); RSS {rss0} \
         KiB -> {rss1} KiB",
        loaded.len()
    );
    assert_latency_ok("command flood", p50_idle, p50_load);
    assert!(rss1 < rss0 + 32 * 1024, "RSS {rss0} KiB -> {rss1} KiB");
}

#[test]
fn over_long_lines_get_an_error_and_a_close() {
    let _serial = serial();
    let srv = Server::start(&["serve", "command", "--port", "0", "--max-line", "4KiB"]);
    let base_fds = open_fds(srv.pid());
    let mut healthy = LineClient::connect(srv.addr);
    healthy.line();
    let rss0 = srv.rss_kib();
    // 50 peers: 1 MiB without a newline each, written from threads (the server closes
    // long before it has read it all).
    let t0 = Instant::now();
    let peers: Vec<_> = (0..50)
        .map(|i| {
            let addr = srv.addr;
            std::thread::spawn(move || {
                let mut c = LineClient::connect(addr);
                c.line();
                if i % 2 == 1 {
                    // A good line first: answered, then the over-long one ends the session.
                    c.send("first");
                    c.expect("Echo: first\n");
                }
                let mut w = c.w.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    let blob = vec![b'x'; 64 * 1024];
                    for _ in 0..16 {
                        if w.write_all(&blob).is_err() {
                            break;
                        }
                    }
                });
                c.expect("error: line longer than 4096 bytes, closing\n");
                assert!(closed_by_server(c.r.get_mut()), "not closed");
                writer.join().unwrap();
            })
        })
        .collect();
    let mut n = 0;
    while !peers.iter().all(|p| p.is_finished()) {
        rtt(&mut healthy, n);
        n += 1;
        assert!(t0.elapsed() < TIMEOUT, "over-long peers never finished");
    }
    for p in peers {
        p.join().unwrap();
    }
    // A pipelined batch: the lines before the over-long one are answered, none after it.
    let mut c = LineClient::connect(srv.addr);
    c.line();
    let mut batch = b"one\r\n/bogus\n".to_vec();
    batch.extend_from_slice(&[b'y'; 5000]);
    batch.extend_from_slice(b"\n/info\nafter\n");
    c.send_raw(&batch);
    assert_eq!(
        c.rest(),
        "Echo: one\nUnknown command: /bogus\nerror: line longer than 4096 bytes, closing\n"
    );
    drop(c); // a peer that keeps its socket after the error is the idle timeout's business
    wait_until("over-long peers released", || {
        open_fds(srv.pid()) <= base_fds + 1
    });
    let rss1 = srv.rss_kib();
    rtt(&mut healthy, 1_000_000);
    eprintln!(
        "command over-long lines: 50 peers pushing up to 1 MiB without a newline (limit 4 KiB) \
         each got the error and a close in {:?}; {n} healthy round trips meanwhile; RSS {rss0} \
         KiB -> {rss1} KiB",
        t0.elapsed()
    );
    assert!(rss1 < rss0 + 32 * 1024, "RSS {rss0} KiB -> {rss1} KiB");
}
