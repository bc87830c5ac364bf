//! A client that writes without reading cannot grow the server's memory past
//! the cap, and loses nothing once it reads.

use crate::util;
use netloop::reactor::config;
use netloop::servers::echo::Echo;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use util::*;

/// Echo (the application's, which keeps no state of its own: its callbacks
/// are called with the loop), recording the largest write queue ever seen.
struct Probe {
    echo: Echo,
    max_queued: Arc<AtomicUsize>,
    paused: Arc<AtomicUsize>,
}

impl Service for Probe {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _cx: &mut Cx<'_, Self>, _s: ServerId, _c: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, st: &mut (), d: &mut BytesMut) {
        let echo = &mut self.echo;
        cx.lift::<Echo, _>(|t| t, |s| s, |cx| echo.on_data(cx, c, st, d));
        self.max_queued
            .fetch_max(cx.buffer_size(c), Ordering::SeqCst);
        if cx.is_paused(c) {
            self.paused.fetch_add(1, Ordering::SeqCst);
        }
    }
}

const TOTAL: usize = 64 << 20;

/// Write `TOTAL` bytes without reading until the writer is stuck, then read
/// everything back and compare.
fn stuck_writer_then_read(addr: std::net::SocketAddr, total: usize) {
    let data = Arc::new(random_bytes(total, 3));
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let (d2, sent2) = (data.clone(), sent.clone());
    let writer = std::thread::spawn(move || {
        for chunk in d2.chunks(64 * 1024) {
            w.write_all(chunk).expect("write");
            sent2.fetch_add(chunk.len(), Ordering::SeqCst);
        }
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    // Wait until the writer has stalled: flow control has reached it.
    let mut last = usize::MAX;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = sent.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last < total, "the writer never stalled: no backpressure");
    let mut got = Vec::with_capacity(total);
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), total);
    assert!(got == *data, "bytes differ");
}

#[test]
fn queue_stays_bounded_and_nothing_is_lost() {
    let max_queued = Arc::new(AtomicUsize::new(0));
    let paused = Arc::new(AtomicUsize::new(0));
    let (m, p) = (max_queued.clone(), paused.clone());
    let lp = TestLoop::start_service(ListenOptions::default(), move || Probe {
        echo: Echo,
        max_queued: m,
        paused: p,
    });
    stuck_writer_then_read(lp.addr, TOTAL);
    let max = max_queued.load(Ordering::SeqCst);
    // High-water mark (64 KiB) plus at most one read chunk (256 KiB).
    let bound = config::DEFAULT_HIGH_WATER_MARK + config::READ_CHUNK;
    assert!(max <= bound, "queue reached {max} bytes (bound {bound})");
    assert!(paused.load(Ordering::SeqCst) > 0, "echo never paused");
}

#[test]
fn server_rss_stays_bounded() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let before = srv.rss_kib();
    let addr = srv.addr;
    let data = random_bytes(TOTAL, 5);
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in data.chunks(64 * 1024) {
            if w.write_all(chunk).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let during = srv.rss_kib();
    assert!(
        during < before + 16 * 1024,
        "server RSS grew from {before} KiB to {during} KiB while the client did not read"
    );
    // Now read everything so the writer finishes.
    let mut buf = vec![0; 1 << 20];
    let mut total = 0;
    while total < TOTAL {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        total += n;
    }
    writer.join().unwrap();
}

/// Echo with a write cap far below one read: a peer that reads while it
/// writes is never evicted, because bytes the kernel takes at once do not
/// count toward the cap (only what the peer leaves us holding does).
#[test]
fn a_reader_that_keeps_up_is_never_evicted_by_a_small_cap() {
    let opts = ListenOptions {
        socket: netloop::SocketOptions {
            max_write_buffer: 128 * 1024,
            ..Default::default()
        },
        ..Default::default()
    };
    let lp = TestLoop::start_service(opts, || Echo);
    let data = random_bytes(4 << 20, 11);
    let got = echo_roundtrip(lp.addr, data.clone());
    assert_eq!(got.len(), data.len(), "connection cut short");
    assert!(got == data, "bytes differ");
}

/// One write larger than the cap into an empty queue, to a peer that reads:
/// delivered whole, not refused as a slow consumer.
#[test]
fn one_write_larger_than_the_cap_reaches_a_reading_peer() {
    const CAP: usize = 64 * 1024;
    const BIG: usize = 4 << 20;
    struct Big;
    impl Service for Big {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
            let _ = r.write(c, random_bytes(BIG, 13));
            let _ = r.end(c);
            Some(())
        }
        fn on_data(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), d: &mut BytesMut) {
            d.clear();
        }
    }
    let opts = ListenOptions {
        socket: netloop::SocketOptions {
            max_write_buffer: CAP,
            ..Default::default()
        },
        ..Default::default()
    };
    let lp = ServiceLoop::start(opts, || Big);
    let mut s = connect(lp.addr);
    let got = read_to_end(&mut s);
    assert_eq!(got.len(), BIG, "the write was refused or cut short");
    assert!(got == random_bytes(BIG, 13));
}

/// A high-water mark of 0 or 1 makes the low one 0: `drain` must still come
/// once the queue is empty, or a pipe that paused never resumes.
#[test]
fn drain_comes_with_a_high_water_mark_of_zero_or_one() {
    for hwm in [0, 1] {
        let opts = ListenOptions {
            socket: netloop::SocketOptions {
                high_water_mark: hwm,
                ..Default::default()
            },
            ..Default::default()
        };
        let lp = TestLoop::start_service(opts, || Echo);
        stuck_writer_then_read(lp.addr, TOTAL);
    }
}
