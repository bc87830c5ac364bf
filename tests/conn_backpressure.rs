//! A client that writes without reading cannot grow the server's memory past
//! the cap, and loses nothing once it reads.

mod util;

use netloop::apps::echo::Echo;
use netloop::reactor::config;
use netloop::{BytesMut, ConnId, Handler, ListenOptions, Reactor};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use util::*;

/// Echo, recording the largest write queue ever seen.
struct Probe {
    echo: Echo,
    max_queued: Arc<AtomicUsize>,
    paused: Arc<AtomicUsize>,
}

impl Handler for Probe {
    fn on_data(&mut self, r: &mut Reactor, c: ConnId, d: &mut BytesMut) {
        self.echo.on_data(r, c, d);
        self.max_queued
            .fetch_max(r.buffer_size(c), Ordering::SeqCst);
        if r.is_paused(c) {
            self.paused.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn on_drain(&mut self, r: &mut Reactor, c: ConnId) {
        self.echo.on_drain(r, c)
    }
}

const TOTAL: usize = 64 << 20;

/// Write `TOTAL` bytes without reading until the writer is stuck, then read
/// everything back and compare.
fn stuck_writer_then_read(addr: std::net::SocketAddr) {
    let data = Arc::new(random_bytes(TOTAL, 3));
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
    assert!(last < TOTAL, "the writer never stalled: no backpressure");
    let mut got = Vec::with_capacity(TOTAL);
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), TOTAL);
    assert!(got == *data, "bytes differ");
}

#[test]
fn queue_stays_bounded_and_nothing_is_lost() {
    let max_queued = Arc::new(AtomicUsize::new(0));
    let paused = Arc::new(AtomicUsize::new(0));
    let (m, p) = (max_queued.clone(), paused.clone());
    let lp = TestLoop::start(ListenOptions::default(), move || Probe {
        echo: Echo,
        max_queued: m,
        paused: p,
    });
    stuck_writer_then_read(lp.addr);
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
