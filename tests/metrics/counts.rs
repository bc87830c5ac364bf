//! Loop metrics move as they should under a scripted workload: connections
//! opened, dropped and closed, bytes counted exactly, backpressure and a slow
//! consumer seen, a timer's lateness recorded.

use crate::util;
use netloop::metrics::LoopMetrics;
use netloop::Remote;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service, SocketOptions, TimerId};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;
use util::*;

/// Messages the test posts to the loop.
enum Msg {
    Query(mpsc::Sender<LoopMetrics>),
    /// Arm a 1 ms timer, then block the loop for this long: the timer fires late.
    LateTimer(Duration),
    /// Arm a timer and cancel it.
    ArmAndCancel,
}

/// The timers the messages arm.
#[derive(Clone, Debug)]
enum Tag {
    /// Fires late: the loop is blocked past its deadline.
    Late,
    /// Cancelled right after it is armed.
    Cancelled,
}

/// The echo (Node's `pipe`, as the application's echo server does), plus
/// `FLOOD` (writes past the cap: a slow consumer) and the test's messages.
struct Probe(mpsc::Sender<Remote<Msg>>);

impl Service for Probe {
    type Conn = ();
    type Tag = Tag;
    type Message = Msg;
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        self.0.send(cx.remote()).expect("send remote");
    }
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        if d.starts_with(b"FLOOD") {
            d.clear();
            // Careless: writes on past the cap to a peer that stopped
            // reading, until the reactor refuses (bounded, in case it never
            // does).
            for _ in 0..16 {
                if r.write(c, vec![0u8; 2 << 20]).is_err() {
                    break;
                }
            }
        } else {
            let _ = r.pipe_write_from(c, c, d);
        }
    }
    fn on_timer(&mut self, _r: &mut Cx<Self>, _t: TimerId, _tag: Tag) {}
    fn on_message(&mut self, r: &mut Cx<Self>, m: Msg) {
        match m {
            Msg::Query(tx) => {
                // The running total equals the sum over the queues.
                let sum: usize = r.connection_ids().iter().map(|&c| r.buffer_size(c)).sum();
                assert_eq!(r.queued_bytes(), sum, "queued-bytes total drifted");
                let _ = tx.send(r.metrics());
            }
            Msg::LateTimer(block) => {
                r.set_timeout(Duration::from_millis(1), Tag::Late);
                std::thread::sleep(block);
            }
            Msg::ArmAndCancel => {
                let t = r.set_timeout(Duration::from_secs(60), Tag::Cancelled);
                assert!(r.clear_timer(t));
            }
        }
    }
}

/// The test's loop and the handle its messages go through.
struct Lp {
    _lp: ServiceLoop,
    addr: std::net::SocketAddr,
    remote: Remote<Msg>,
}

impl Lp {
    fn post(&self, m: Msg) {
        assert!(self.remote.post(m), "loop gone");
    }
}

fn query(lp: &Lp) -> LoopMetrics {
    let (tx, rx) = mpsc::channel();
    lp.post(Msg::Query(tx));
    rx.recv_timeout(TIMEOUT).expect("metrics")
}

fn wait_metrics(lp: &Lp, what: &str, mut cond: impl FnMut(&LoopMetrics) -> bool) -> LoopMetrics {
    let mut last = None;
    wait_until(what, || {
        let m = query(lp);
        let ok = cond(&m);
        if std::env::var("DEBUG_METRICS").is_ok() {
            eprintln!("{:?} {:?}", m.bytes, m.connections);
        }
        last = Some(m);
        ok
    });
    last.expect("queried")
}

#[test]
fn metrics_follow_a_scripted_workload() {
    let opts = ListenOptions {
        max_connections: Some(2),
        socket: SocketOptions {
            max_write_buffer: 1 << 20,
            ..SocketOptions::default()
        },
        ..Default::default()
    };
    let (rtx, rrx) = mpsc::channel();
    let service_loop = ServiceLoop::start(opts, move || Probe(rtx));
    let lp = Lp {
        addr: service_loop.addr,
        remote: rrx.recv_timeout(TIMEOUT).expect("remote"),
        _lp: service_loop,
    };
    let m0 = query(&lp);
    assert_eq!(m0.connections.accepted, 0);
    assert_eq!(m0.bytes.read, 0);

    // Two clients, exact byte counts.
    let mut a = connect(lp.addr);
    let mut b = connect(lp.addr);
    a.write_all(&[7u8; 1000]).unwrap();
    assert_eq!(read_exact(&mut a, 1000), vec![7u8; 1000]);
    b.write_all(&[9u8; 234]).unwrap();
    assert_eq!(read_exact(&mut b, 234), vec![9u8; 234]);
    let m = query(&lp);
    assert_eq!(m.connections.accepted, 2);
    assert_eq!(m.connections.live, 2);
    assert_eq!(m.connections.by_state["open"], 2);
    assert_eq!(m.bytes.read, 1234);
    assert_eq!(m.bytes.written, 1234);
    assert_eq!(m.bytes.queued, 0);
    assert!(m.iterations > 0 && m.events >= 4, "{m:?}");
    assert!(m.events_per_iteration.count > 0 && m.events_per_iteration.max >= 1.0);
    assert!(
        m.wakeups >= 1 && m.wakeup_messages >= 1,
        "our queries are wakeups"
    );

    // A third is over max_connections: dropped, counted.
    let mut c = connect(lp.addr);
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    let m = wait_metrics(&lp, "drop counted", |m| m.connections.dropped == 1);
    assert_eq!(m.connections.accepted, 2);

    // Close both: closed counted, nothing live.
    drop(a);
    drop(b);
    let m = wait_metrics(&lp, "closes counted", |m| m.connections.live == 0);
    assert_eq!(m.connections.closed, 2);
    assert_eq!(m.connections.by_state["open"], 0);

    // Backpressure: a client that writes 16 MiB without reading (and with a
    // small receive buffer, so loopback's autotuned buffers do not absorb it
    // all) pauses its connection; once it reads, everything drains and the
    // queue is empty.
    let mut s = connect(lp.addr);
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    let mut w = s.try_clone().unwrap();
    let data = random_bytes(16 << 20, 3);
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        for chunk in d2.chunks(64 * 1024) {
            w.write_all(chunk).expect("write");
        }
    });
    let m = wait_metrics(&lp, "pause", |m| m.connections.paused == 1);
    assert!(m.connections.pauses >= 1);
    assert!(m.bytes.queued_peak >= 64 * 1024, "{:?}", m.bytes);
    assert_eq!(read_exact(&mut s, data.len()), data);
    writer.join().unwrap();
    let m = wait_metrics(&lp, "queue drained", |m| {
        m.bytes.queued == 0 && m.connections.paused == 0
    });
    assert_eq!(m.bytes.read, 1234 + data.len() as u64);
    assert_eq!(m.bytes.written, 1234 + data.len() as u64);
    drop(s);

    // A slow consumer: writes past the 1 MiB cap to a peer that stopped reading.
    let mut f = connect(lp.addr);
    f.write_all(b"FLOOD").unwrap();
    let _ = f.read(&mut buf);
    let m = wait_metrics(&lp, "slow consumer", |m| {
        m.connections.slow_consumers_destroyed == 1 && m.connections.live == 0
    });
    assert_eq!(m.bytes.queued, 0, "a destroyed queue leaves the total");

    // Timers: one fires at least 30 ms late; one is cancelled.
    lp.post(Msg::LateTimer(Duration::from_millis(40)));
    lp.post(Msg::ArmAndCancel);
    let m = wait_metrics(&lp, "late timer", |m| m.timers.app_fired == 1);
    assert_eq!(m.timers.armed, 2);
    assert_eq!(m.timers.cancelled, 1);
    assert_eq!(m.timer_lateness_ms.count, 1);
    let late = m.timer_lateness_ms.max;
    assert!((30.0..5000.0).contains(&late), "lateness {late} ms");
    assert!(m.timer_lateness_ms.p99 >= 30.0);

    // Derived figures are consistent.
    assert!(m.utilization > 0.0 && m.utilization <= 1.0);
    assert!(m.phase_seconds.poll > 0.0);
    assert!((m.phase_seconds.poll - m.idle_seconds).abs() < 1e-9);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["connections"]["dropped"], 1);
    assert_eq!(
        json["bytes"]["read"],
        1234 + data.len() as u64 + 5,
        "+ FLOOD"
    );
}
