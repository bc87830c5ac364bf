//! Slow callbacks: a test service that sleeps on one input is reported
//! once (log line, counters, the `/stats` table) with its event, phase,
//! service, connection and peer; its fast callbacks are not.

use crate::util::*;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, Reactor, ServerId, Service, TimerId};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long the slow input holds the loop, and the threshold: far enough
/// apart that neither a fast callback on a loaded machine reaches the
/// threshold nor the slow one misses it.
const SLEEP: Duration = Duration::from_millis(80);
const THRESHOLD: Duration = Duration::from_millis(30);

/// The slow-callback log lines of this test binary.
fn captured() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target() == "netloop::slow"
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            captured().lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn install_capture() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_boxed_logger(Box::new(Capture)).expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Line service: says its connection id on connect, answers `ok` to each
/// line, and sleeps [`SLEEP`] before answering `slow`.
struct SlowTest;

impl Service for SlowTest {
    type Conn = Vec<u8>;
    type Tag = ();
    type Message = ();
    fn name(&self) -> &'static str {
        "slow-test"
    }
    fn on_connection(&mut self, cx: &mut Cx<'_, Self>, _: ServerId, c: ConnId) -> Option<Vec<u8>> {
        let _ = cx.write(c, format!("{c}\n").into_bytes());
        Some(Vec::new())
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, buf: &mut Vec<u8>, d: &mut BytesMut) {
        buf.extend_from_slice(d);
        d.clear();
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if line == b"slow\n" {
                std::thread::sleep(SLEEP);
            }
            let _ = cx.write(c, b"ok\n".to_vec());
        }
    }
}

/// Stops the loop when the flag is set (checked every 20 ms).
struct Stopper(Arc<AtomicBool>);

impl Service for Stopper {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        cx.set_interval(Duration::from_millis(20), ());
    }
    fn on_data(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: TimerId, _: ()) {
        if self.0.load(Ordering::Relaxed) {
            cx.stop();
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = connect(addr);
    s.write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
        .unwrap();
    let raw = String::from_utf8(read_to_end(&mut s)).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body.to_string()
}

#[test]
fn one_slow_callback_is_reported_once_with_its_event_and_connection() {
    install_capture();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut r = Reactor::new().expect("reactor");
        r.set_slow_callback(Some(THRESHOLD));
        let sid = r.serve(ListenOptions::port(0), SlowTest).expect("listen");
        let maddr = "127.0.0.1:0".parse().unwrap();
        let mid = netloop::metrics::http::listen(&mut r, &maddr).expect("metrics");
        tx.send((r.server_addr(sid).unwrap(), r.server_addr(mid).unwrap()))
            .unwrap();
        r.add_service(Stopper(stop2));
        r.run().expect("run");
    });
    let (addr, maddr) = rx.recv_timeout(TIMEOUT).expect("loop started");

    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let peer = s.local_addr().unwrap();
    let mut w = s.try_clone().unwrap();
    let mut lines = BufReader::new(s);
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    let conn = line.trim().to_string();
    assert!(conn.starts_with("conn#"), "{conn}");
    let mut say = |what: &str| {
        w.write_all(format!("{what}\n").as_bytes()).unwrap();
        let mut l = String::new();
        lines.read_line(&mut l).unwrap();
        assert_eq!(l, "ok\n");
    };
    for _ in 0..5 {
        say("fast");
    }
    say("slow");
    for _ in 0..5 {
        say("fast");
    }

    let v: serde_json::Value = serde_json::from_str(&get(maddr, "/stats")).unwrap();
    let sc = &v["slow_callbacks"];
    assert_eq!(sc["total"], 1, "{sc}");
    assert_eq!(sc["by_event"]["data"], 1, "{sc}");
    assert_eq!(sc["threshold_ms"], 30.0);
    let table = sc["slowest"].as_array().unwrap();
    assert_eq!(table.len(), 1, "{sc}");
    let row = &table[0];
    assert_eq!(row["event"], "data");
    assert_eq!(row["phase"], "dispatch");
    assert_eq!(row["service"], "slow-test");
    assert_eq!(row["conn"], conn.as_str());
    assert_eq!(row["peer"], peer.to_string().as_str());
    let took = row["took_ms"].as_f64().unwrap();
    assert!(took >= SLEEP.as_millis() as f64, "took {took} ms");
    let svc = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "slow-test")
        .expect("the service's busy time")
        .clone();
    assert_eq!(svc["slow_callbacks"], 1, "{svc}");
    // listening + connection + one data per line (one round trip at a
    // time, so no two lines share a read).
    assert_eq!(svc["callbacks"], 13, "{svc}");
    assert!(svc["busy_seconds"].as_f64().unwrap() >= SLEEP.as_secs_f64());

    let prom = get(maddr, "/metrics");
    assert!(prom.contains("\nnetloop_slow_callbacks_total{event=\"data\"} 1\n"));
    assert!(prom.contains("\nnetloop_slow_callbacks_total{event=\"timer\"} 0\n"));
    assert!(prom.contains("\nnetloop_service_slow_callbacks_total{service=\"slow-test\"} 1\n"));

    // Exactly one log line for this service, naming what the table names.
    let mine: Vec<String> = captured()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("service slow-test"))
        .cloned()
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let l = &mine[0];
    assert!(l.starts_with("slow callback: data took "), "{l}");
    for want in [
        "in phase dispatch",
        &format!(", {conn},"),
        &format!("peer {peer}"),
    ] {
        assert!(l.contains(want), "{want:?} not in {l:?}");
    }

    stop.store(true, Ordering::Relaxed);
    let mut rest = Vec::new();
    let _ = lines.read_to_end(&mut rest);
    thread.join().expect("loop thread");
}

#[test]
fn zero_turns_detection_off() {
    let mut r = Reactor::new().unwrap();
    assert_eq!(
        r.observer().slow_threshold(),
        Some(netloop::reactor::loopstats::DEFAULT_SLOW_CALLBACK)
    );
    r.set_slow_callback(Some(Duration::ZERO));
    assert_eq!(r.observer().slow_threshold(), None);
    let m = r.metrics();
    assert_eq!(m.slow_callbacks.threshold_ms, None);
    assert!(m.summary().contains("slow callbacks 0 (detection off)"));
}
