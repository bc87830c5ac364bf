//! Hostile peers against `netloop serve heartbeat` with short intervals (the reliability suite, RELIABILITY.md), after
//! `tests/servers/echo/hostile.rs`: silent peers, half-open peers (FIN, never read), peers that
//! flood pings with and without reading the pongs, malformed JSON and over-long lines, all
//! at once, while ten healthy clients answer every ping and measure their own pings.
//!
//! Checked: every silent peer is reaped within `timeout + 3 × interval` (the documented
//! worst case) after its last line, having received exactly three urgent pings first; the
//! others are closed or reaped too; the healthy clients are never dropped and get a pong for
//! every ping; RSS stays bounded. `tests/servers/heartbeat/server.rs` covers dead-peer detection
//! for one peer on an idle server.

use crate::{hostile_common, util};
use hostile_common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

const INTERVAL: Duration = Duration::from_millis(200);
const HB_TIMEOUT: Duration = Duration::from_millis(600);
/// Pings each of five healthy clients sends in one burst at the start (and reads every pong).
const BURST: u64 = 2000;

/// What a healthy client saw.
#[derive(Debug, Default)]
struct Healthy {
    pings_answered: u64,
    pongs: u64,
    burst_pongs: u64,
    rtts: Vec<Duration>,
}

/// A healthy client: answers every ping with a pong echoing its timestamp, sends its own
/// ping every 50 ms and checks the pong, until `stop`. With `burst`, it first sends that
/// many pings in one go and reads every pong, in order. Panics on EOF: it must never be
/// dropped.
fn healthy(addr: SocketAddr, burst: u64, stop: Arc<AtomicBool>) -> Healthy {
    let s = connect(addr);
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut h = Healthy::default();
    let mut buf = Vec::new();
    let next_line = |r: &mut BufReader<TcpStream>, buf: &mut Vec<u8>| -> Option<Value> {
        match r.read_until(b'\n', buf) {
            Ok(0) => panic!("healthy client dropped (EOF)"),
            Ok(_) if buf.ends_with(b"\n") => {
                let v = serde_json::from_slice(buf).expect("JSON line");
                buf.clear();
                Some(v)
            }
            Ok(_) => None,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            Err(e) => panic!("healthy client: {e}"),
        }
    };
    let answer = |w: &mut TcpStream, v: &Value, h: &mut Healthy| {
        if v["type"] == "ping" {
            let pong = json!({"type": "pong", "timestamp": v["timestamp"]});
            w.write_all(format!("{pong}\n").as_bytes()).unwrap();
            h.pings_answered += 1;
        }
    };
    if burst > 0 {
        let mut wb = w.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let mut b = String::new();
            for i in 0..burst {
                b.push_str(&format!("{{\"type\":\"ping\",\"timestamp\":{i}}}\n"));
            }
            wb.write_all(b.as_bytes()).unwrap();
        });
        let t0 = Instant::now();
        while h.burst_pongs < burst {
            assert!(t0.elapsed() < TIMEOUT, "burst pongs missing");
            if let Some(v) = next_line(&mut r, &mut buf) {
                if v["type"] == "pong" {
                    assert_eq!(v["timestamp"], h.burst_pongs, "burst pong out of order");
                    h.burst_pongs += 1;
                }
                answer(&mut w, &v, &mut h);
            }
        }
        writer.join().unwrap();
    }
    let mut n = 1_000_000u64;
    let mut sent: Option<(u64, Instant)> = None;
    let mut last = Instant::now() - Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        if sent.is_none() && last.elapsed() >= Duration::from_millis(50) {
            n += 1;
            let ping = json!({"type": "ping", "timestamp": n});
            w.write_all(format!("{ping}\n").as_bytes()).unwrap();
            sent = Some((n, Instant::now()));
            last = Instant::now();
        }
        if let Some(v) = next_line(&mut r, &mut buf) {
            if v["type"] == "pong" {
                let (want, t) = sent.take().expect("a pong for a ping we sent");
                assert_eq!(v["timestamp"], want);
                h.rtts.push(t.elapsed());
                h.pongs += 1;
            }
            answer(&mut w, &v, &mut h);
        }
    }
    h
}

/// Reads everything the server sent to `s` until it closes; returns the JSON lines.
fn drain_lines(s: &mut TcpStream) -> Vec<Value> {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("drain: {e}"),
        }
    }
    all.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("JSON line"))
        .collect()
}

/// Five ping flooders that never read: each pushes up to 100,000 pings until its socket
/// refuses more three rounds in a row (or the server has already reaped it). Returns the
/// sockets and the bytes pushed in all.
fn flood_without_reading(addr: SocketAddr) -> (Vec<TcpStream>, usize) {
    let mut flooders = Vec::new();
    let flood: Vec<u8> = (0..100_000)
        .flat_map(|i| format!("{{\"type\":\"ping\",\"timestamp\":{i}}}\n").into_bytes())
        .collect();
    for _ in 0..5 {
        let s = connect_small(addr);
        s.set_nonblocking(true).unwrap();
        flooders.push((s, 0usize));
    }
    // Push until every flooder's socket refuses more three rounds in a row.
    let mut stalls = 0;
    let t0 = Instant::now();
    while stalls < 3 {
        let mut progressed = false;
        for (s, sent) in flooders.iter_mut() {
            while *sent < flood.len() {
                match (&*s).write(&flood[*sent..]) {
                    Ok(n) => {
                        *sent += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // Already reaped (the server stopped reading it long enough ago).
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
                        ) =>
                    {
                        *sent = flood.len();
                        break;
                    }
                    Err(e) => panic!("flooder: {e}"),
                }
            }
        }
        stalls = if progressed { 0 } else { stalls + 1 };
        std::thread::sleep(Duration::from_millis(20)); // pacing: let the server read
        assert!(t0.elapsed() < TIMEOUT, "flooders never stalled");
    }
    let flooded: usize = flooders.iter().map(|f| f.1).sum();
    (flooders.into_iter().map(|f| f.0).collect(), flooded)
}

/// The heartbeat server with a 200 ms interval and a 600 ms timeout.
fn server() -> Server {
    Server::start(&[
        "serve",
        "heartbeat",
        "--port",
        "0",
        "--heartbeat-interval",
        "200ms",
        "--heartbeat-timeout",
        "600ms",
        "--status-interval",
        "0",
        "--max-line",
        "4KiB",
    ])
}

/// Ten healthy clients, five of which start with a burst of pings.
fn start_healthy(
    addr: SocketAddr,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Healthy>> {
    (0..10)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || healthy(addr, if i < 5 { BURST } else { 0 }, stop))
        })
        .collect()
}

#[test]
fn silent_half_open_and_malformed_peers_are_reaped_in_time_healthy_ones_stay() {
    let _serial = serial();
    let worst = HB_TIMEOUT + INTERVAL * 3;
    let srv = server();
    let base_fds = open_fds(srv.pid());
    let rss0 = srv.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = start_healthy(srv.addr, &stop);
    wait_until("healthy clients connected", || {
        open_fds(srv.pid()) >= base_fds + 10
    });

    // Ten peers that send malformed lines, each answered with an error, then go silent.
    let bad: [&[u8]; 6] = [
        b"{\n",
        b"[1,2]\n",
        b"\"ping\"\n",
        b"{\"type\":5}\n",
        b"\xff\xfe{}\n",
        b"not json at all\n",
    ];
    let mut malformed = Vec::new();
    for _ in 0..10 {
        let mut s = connect(srv.addr);
        for b in bad {
            s.write_all(b).unwrap();
        }
        malformed.push(s);
    }
    // Five peers with an over-long line (8 KiB, no newline; the limit is 4 KiB).
    let mut overlong = Vec::new();
    for _ in 0..5 {
        let mut s = connect(srv.addr);
        let _ = s.write_all(&[b'{'; 8192]);
        overlong.push(s);
    }
    // Ten half-open peers: one heartbeat, then FIN, and they never read.
    let mut half_open = Vec::new();
    for _ in 0..10 {
        let mut s = connect(srv.addr);
        s.write_all(b"{\"type\":\"heartbeat\"}\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        half_open.push(s);
    }
    // Thirty silent peers: they connect and say nothing (and read nothing until the end).
    let mut silent = Vec::new();
    for _ in 0..30 {
        silent.push(connect(srv.addr));
    }
    // connect() returns before the server accepts: wait until it holds the silent ones. Every
    // peer's last line (or accept) is before this instant.
    wait_until("silent peers accepted", || {
        open_fds(srv.pid()) >= base_fds + 10 + 30
    });
    let set_up = Instant::now();
    let rss1 = srv.rss_kib();
    // Every attacker is released; only the ten healthy clients remain.
    wait_until("every hostile peer released", || {
        open_fds(srv.pid()) <= base_fds + 10
    });
    let reaped = set_up.elapsed();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<Healthy> = healthy.into_iter().map(|h| h.join().unwrap()).collect();

    // What the silent peers saw: the welcome, regular pings, exactly three urgent pings, EOF.
    for s in &mut silent {
        let lines = drain_lines(s);
        assert_eq!(lines[0]["type"], "welcome");
        let urgent = lines
            .iter()
            .filter(|v| v["type"] == "ping" && v["urgent"] == true)
            .count();
        let regular = lines
            .iter()
            .filter(|v| v["type"] == "ping" && v["urgent"] == false)
            .count();
        assert_eq!(urgent, 3, "{lines:?}");
        assert!(regular >= 1, "{lines:?}");
        assert_eq!(
            lines.last().unwrap()["urgent"],
            true,
            "nothing after the last ping"
        );
    }
    // The malformed ones: an error for each bad line (the invalid UTF-8 one included).
    for s in &mut malformed {
        let lines = drain_lines(s);
        let errors = lines.iter().filter(|v| v["type"] == "error").count();
        assert_eq!(errors, bad.len(), "{lines:?}");
    }
    // The over-long ones: an error, then the close.
    for s in &mut overlong {
        let lines = drain_lines(s);
        let err = lines
            .iter()
            .find(|v| v["type"] == "error")
            .expect("an error");
        assert!(err["message"].as_str().unwrap().contains("4096"), "{err}");
    }
    for s in &mut half_open {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(closed_by_server(s), "half-open peer not closed");
    }
    let mut rtts: Vec<Duration> = results.iter().flat_map(|h| h.rtts.clone()).collect();
    let (p50, p99) = p50_p99(&mut rtts);
    let answered: u64 = results.iter().map(|h| h.pings_answered).sum();
    let pongs: u64 = results.iter().map(|h| h.pongs).sum();
    let burst: u64 = results.iter().map(|h| h.burst_pongs).sum();
    eprintln!(
        "heartbeat (interval {INTERVAL:?}, timeout {HB_TIMEOUT:?}, worst case {worst:?}): 30 \
         silent, 10 half-open, 10 malformed, 5 over-long all released {reaped:?} after the last was set up; silent peers got 3 urgent \
         pings each before the close; 10 healthy clients stayed, answered {answered} server \
         pings, got {pongs} pongs (p50/p99 {p50:?}/{p99:?}) + {burst} burst pongs in order; \
         RSS {rss0} KiB -> {rss1} KiB"
    );
    // Everyone's last line came before `set_up`, so `worst` after it bounds every reaping;
    // 300 ms on top for the timer wheel and a busy machine.
    assert!(
        reaped <= worst + Duration::from_millis(300),
        "reaped after {reaped:?}, worst case {worst:?}"
    );
    for h in &results {
        assert!(h.pings_answered >= 2, "{h:?}");
        assert!(h.pongs >= 10, "{h:?}");
    }
    assert!(rss1 < rss0 + 32 * 1024, "RSS {rss0} KiB -> {rss1} KiB");
}

/// Five peers flood pings and never read the pongs. Loopback lets the server's kernel send
/// buffers take a few MiB of pongs per peer before `write()` reports backpressure, so the
/// server really answers a few hundred thousand pings; then it pauses reading them, they
/// are silent as far as liveness can tell, and they are reaped. The ten healthy clients stay
/// connected and keep getting pongs throughout.
#[test]
fn ping_flooders_that_never_read_are_paused_then_reaped_healthy_ones_stay() {
    let _serial = serial();
    let srv = server();
    let base_fds = open_fds(srv.pid());
    let rss0 = srv.rss_kib();
    let cpu0 = srv.cpu_ticks();
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = start_healthy(srv.addr, &stop);
    wait_until("healthy clients connected", || {
        open_fds(srv.pid()) >= base_fds + 10
    });
    let t0 = Instant::now();
    let (mut flooders, flooded) = flood_without_reading(srv.addr);
    let rss1 = srv.rss_kib();
    wait_until("every flooder released", || {
        open_fds(srv.pid()) <= base_fds + 10
    });
    let reaped = t0.elapsed();
    let cpu = srv.cpu_ticks() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let results: Vec<Healthy> = healthy.into_iter().map(|h| h.join().unwrap()).collect();
    for s in &mut flooders {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(closed_by_server(s), "non-reading flooder not closed");
    }
    let mut rtts: Vec<Duration> = results.iter().flat_map(|h| h.rtts.clone()).collect();
    let (p50, p99) = p50_p99(&mut rtts);
    let pongs: u64 = results.iter().map(|h| h.pongs).sum();
    eprintln!(
        "heartbeat ping flood: 5 non-reading flooders pushed {} KiB of pings; all reaped \
         {reaped:?} after the flood began; server CPU {cpu} ticks meanwhile; 10 healthy \
         clients stayed and got {pongs} pongs (p50/p99 {p50:?}/{p99:?}); RSS {rss0} KiB -> \
         {rss1} KiB",
        flooded / 1024
    );
    for h in &results {
        assert!(h.pings_answered >= 2, "{h:?}");
        assert!(h.pongs >= 5, "{h:?}");
    }
    assert!(rss1 < rss0 + 32 * 1024, "RSS {rss0} KiB -> {rss1} KiB");
}
