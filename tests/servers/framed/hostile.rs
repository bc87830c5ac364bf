//! Hostile peers against `netloop serve framed` (the reliability suite, RELIABILITY.md), after `tests/servers/echo/hostile.rs`; a
//! healthy client's ping round trip is measured before, during and after every attack.
//!
//! * hostile frames from 100 peers at once: huge length prefixes (2 GiB, `u32::MAX`), zero
//!   length, non-object JSON, invalid JSON, 100k-deep nesting (open and closed), invalid
//!   UTF-8: an `error` frame for each; a huge prefix also ends the connection; no RSS growth;
//! * stalled frames: a length prefix and part of the body, then silence, from 50 peers that
//!   never close: the idle timeout reaps every one (descriptors back to base);
//! * a subscriber that stops reading under a broadcast stream: destroyed at the write-buffer
//!   cap, the reading subscriber gets every broadcast in order, RSS bounded.
//!
//! `tests/servers/framed/server.rs` covers the single cases on an idle server (the 2 GiB prefix, the
//! `null` body); this file runs them in bulk and under load.

use crate::{hostile_common, util};
use hostile_common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::*;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn msg(v: Value) -> Vec<u8> {
    frame(v.to_string().as_bytes())
}

/// One reply frame (bounded: a reply over 1 MiB is a failure, not an allocation).
fn read_frame(s: &mut TcpStream) -> Value {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).expect("frame header");
    let len = u32::from_be_bytes(h) as usize;
    assert!(len < 1 << 20, "reply of {len} bytes");
    let body = read_exact(s, len);
    serde_json::from_slice(&body).expect("reply is JSON")
}

/// Connect and consume the welcome; returns the socket and its client id.
fn client(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = connect(addr);
    let w = read_frame(&mut s);
    assert_eq!(w["type"], "welcome");
    let id = w["clientId"].as_str().unwrap().to_string();
    (s, id)
}

/// One ping round trip.
fn rtt(s: &mut TcpStream) -> Duration {
    let t0 = Instant::now();
    s.write_all(&msg(json!({"type": "ping", "n": 1}))).unwrap();
    let r = read_frame(s);
    assert_eq!(r["type"], "pong", "{r}");
    t0.elapsed()
}

/// Median and p99 of `n` ping round trips.
fn latency(s: &mut TcpStream, n: usize) -> (Duration, Duration) {
    let mut v: Vec<Duration> = (0..n).map(|_| rtt(s)).collect();
    p50_p99(&mut v)
}

/// The hostile bodies that get an `error` frame and leave the connection open, with a word
/// the error message must contain.
fn bad_bodies() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut deep_open = b"{\"type\":\"ping\",\"x\":".to_vec();
    deep_open.extend(std::iter::repeat_n(b'[', 100_000));
    let mut deep_closed = b"{\"type\":\"ping\",\"x\":".to_vec();
    deep_closed.extend(std::iter::repeat_n(b'[', 100_000));
    deep_closed.extend(std::iter::repeat_n(b']', 100_000));
    deep_closed.push(b'}');
    vec![
        ("zero length", Vec::new(), "JSON"),
        ("null", b"null".to_vec(), "object"),
        ("array", b"[1,2,3]".to_vec(), "object"),
        ("string", b"\"ping\"".to_vec(), "object"),
        ("number", b"42".to_vec(), "object"),
        ("no type", b"{\"data\":1}".to_vec(), "type"),
        (
            "type not a string",
            b"{\"type\":[\"ping\"]}".to_vec(),
            "type",
        ),
        ("invalid JSON", b"{\"type\":\"ping\",".to_vec(), "JSON"),
        (
            "trailing garbage",
            b"{\"type\":\"ping\"} x".to_vec(),
            "JSON",
        ),
        ("100k [ unclosed", deep_open, "JSON"),
        ("100k [ closed", deep_closed, "JSON"),
        ("invalid UTF-8", b"{\"type\":\"p\xffng\"}".to_vec(), "UTF-8"),
        ("NUL bytes", b"\0\0\0\0".to_vec(), "JSON"),
    ]
}

#[test]
fn hostile_frames_from_many_peers_get_errors_and_a_healthy_client_keeps_its_round_trip() {
    let _serial = serial();
    let srv = Server::start(&["serve", "framed", "--port", "0"]);
    let base_fds = open_fds(srv.pid());
    let (mut healthy, _) = client(srv.addr);
    let _ = latency(&mut healthy, 50);
    let (p50_idle, p99_idle) = latency(&mut healthy, 300);
    let rss0 = srv.rss_kib();

    // 100 attackers, each on its own thread: every bad body in turn (each answered with an
    // error, the connection going on), a ping to prove it, then a huge length prefix.
    let bodies = std::sync::Arc::new(bad_bodies());
    let t0 = Instant::now();
    let attackers: Vec<_> = (0..100)
        .map(|i| {
            let bodies = bodies.clone();
            let addr = srv.addr;
            std::thread::spawn(move || {
                let (mut s, _) = client(addr);
                for (what, body, word) in bodies.iter() {
                    s.write_all(&frame(body)).unwrap();
                    let r = read_frame(&mut s);
                    assert_eq!(r["type"], "error", "{what}: {r}");
                    let m = r["message"].as_str().unwrap_or_default();
                    assert!(m.contains(word), "{what}: {m}");
                }
                s.write_all(&msg(json!({"type": "ping"}))).unwrap();
                assert_eq!(read_frame(&mut s)["type"], "pong");
                // Half 2 GiB, half u32::MAX, with some body behind it.
                let len: u32 = if i % 2 == 0 { 0x8000_0000 } else { u32::MAX };
                let mut b = len.to_be_bytes().to_vec();
                b.extend_from_slice(&[b'x'; 4096]);
                let _ = s.write_all(&b); // the server may close before it read all
                let r = read_frame(&mut s);
                assert_eq!(r["type"], "error");
                let m = r["message"].as_str().unwrap_or_default().to_string();
                assert!(m.contains("exceeds"), "{len}: {m}");
                assert!(closed_by_server(&mut s), "huge prefix: not closed");
            })
        })
        .collect();
    let mut loaded = Vec::new();
    while !attackers.iter().all(|a| a.is_finished()) {
        loaded.push(rtt(&mut healthy));
        assert!(t0.elapsed() < TIMEOUT, "attackers never finished");
    }
    for a in attackers {
        a.join().expect("attacker");
    }
    let took = t0.elapsed();
    let rss1 = srv.rss_kib();
    wait_until("attackers released", || open_fds(srv.pid()) <= base_fds + 1);
    let (p50_after, _) = latency(&mut healthy, 300);
    let (p50_load, p99_load) = if loaded.is_empty() {
        (p50_after, p50_after)
    } else {
        p50_p99(&mut loaded)
    };
    eprintln!(
        "framed hostile frames: 100 peers x {} bad bodies (each up to 200 KB) + a 2 GiB or \
         u32::MAX prefix in {took:?}; healthy ping p50/p99 unloaded {p50_idle:?}/{p99_idle:?}, \
         during {p50_load:?}/{p99_load:?} ({} samples), after {p50_after:?}; RSS {rss0} KiB -> \
         {rss1} KiB",
        bodies.len(),
        loaded.len()
    );
    assert_latency_ok("framed hostile frames (during)", p50_idle, p50_load);
    assert_latency_ok("framed hostile frames (after)", p50_idle, p50_after);
    // 100 connections each holding at most one 200 KB body: a few MiB, never the 2 GiB or
    // 4 GiB the prefixes announced.
    assert!(rss1 < rss0 + 64 * 1024, "RSS {rss0} KiB -> {rss1} KiB");
}

#[test]
fn stalled_frames_are_reaped_by_the_idle_timeout() {
    let _serial = serial();
    let idle = Duration::from_millis(400);
    let srv = Server::start(&["serve", "framed", "--port", "0", "--idle-timeout", "400ms"]);
    let base_fds = open_fds(srv.pid());
    let (mut healthy, _) = client(srv.addr);
    // 50 peers: a prefix announcing 1000 bytes and 10 of them, then silence; they read
    // nothing and never close (a vanished or malicious client).
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let (mut s, _) = client(srv.addr);
        let mut b = 1000u32.to_be_bytes().to_vec();
        b.extend_from_slice(b"{\"type\":\"p");
        s.write_all(&b).unwrap();
        stalled.push(s);
    }
    // 20 more that send only two bytes of a length prefix.
    for _ in 0..20 {
        let (mut s, _) = client(srv.addr);
        s.write_all(&[0, 0]).unwrap();
        stalled.push(s);
    }
    let t0 = Instant::now();
    // The healthy client, active more often than the timeout, is never reaped.
    wait_until("every stalled peer released", || {
        rtt(&mut healthy);
        open_fds(srv.pid()) <= base_fds + 1
    });
    let reaped = t0.elapsed();
    // From the peers' side: the timeout error, then EOF.
    for s in &mut stalled {
        let r = read_frame(s);
        assert_eq!(r["type"], "error", "{r}");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(closed_by_server(s), "stalled peer not closed");
    }
    eprintln!(
        "framed stalled frames: 70 peers (partial body or partial prefix, never closing) all \
         released {reaped:?} after the last was set up (idle timeout {idle:?})"
    );
    assert!(reaped < idle * 10, "reaping took {reaped:?}");
    rtt(&mut healthy);
}

#[test]
fn a_slow_subscriber_under_broadcast_is_destroyed_and_others_get_every_message() {
    let _serial = serial();
    let srv = Server::start(&[
        "serve",
        "framed",
        "--port",
        "0",
        "--max-write-buffer",
        "512KiB",
    ]);
    let base_fds = open_fds(srv.pid());
    let (mut sender, _) = client(srv.addr);
    let (mut sub, _) = client(srv.addr);
    let mut stalled = connect_small(srv.addr); // never reads, not even the welcome
    let rss0 = srv.rss_kib();
    let (p50_idle, _) = latency(&mut sub, 100);
    // 8000 broadcasts of ~1 KiB: 8 MiB to each subscriber, past the stalled one's cap plus
    // what loopback's kernel buffers absorb (a few MiB: the send buffer autotunes).
    const N: usize = 8000;
    let data = "b".repeat(1000);
    let mut w = sender.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..N {
            batch.extend(msg(
                json!({"type": "broadcast", "data": format!("{i:06}{d2}")}),
            ));
            if i % 20 == 19 {
                w.write_all(&batch).unwrap();
                batch.clear();
                std::thread::sleep(Duration::from_millis(2)); // pacing of the load
            }
        }
        w.write_all(&batch).unwrap();
    });
    // The reading subscriber gets every one, in order, and pings in between.
    let t0 = Instant::now();
    let mut peak = rss0;
    let mut loaded = Vec::new();
    let mut got = 0;
    while got < N {
        let r = read_frame(&mut sub);
        if r["type"] == "pong" {
            continue;
        }
        assert_eq!(r["type"], "broadcast_message", "{r}");
        assert_eq!(
            r["data"],
            format!("{got:06}{data}").as_str(),
            "broadcast {got}"
        );
        got += 1;
        if got % 100 == 0 {
            peak = peak.max(srv.rss_kib());
            // A round trip measured through the broadcast stream.
            let t = Instant::now();
            sub.write_all(&msg(json!({"type": "ping", "mark": got})))
                .unwrap();
            loop {
                let r = read_frame(&mut sub);
                if r["type"] == "pong" {
                    break;
                }
                assert_eq!(r["data"], format!("{got:06}{data}").as_str());
                got += 1;
            }
            loaded.push(t.elapsed());
        }
    }
    writer.join().unwrap();
    let took = t0.elapsed();
    let evicted = srv.wait_log("slow consumer");
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(closed_by_server(&mut stalled), "slow subscriber not closed");
    wait_until("slow subscriber released", || {
        open_fds(srv.pid()) <= base_fds + 2
    });
    let (p50_load, p99_load) = p50_p99(&mut loaded);
    rtt(&mut sender);
    eprintln!(
        "framed broadcast: {N} broadcasts of 1 KiB in {took:?}; slow subscriber destroyed at \
         --max-write-buffer 512KiB ({evicted:?}); reader got all in order; its ping p50 {p50_idle:?} idle, \
         {p50_load:?} (p99 {p99_load:?}) through the stream; RSS {rss0} KiB -> peak {peak} KiB"
    );
    assert!(peak < rss0 + 32 * 1024, "RSS {rss0} KiB -> {peak} KiB");
}
