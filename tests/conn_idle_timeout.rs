//! socket.setTimeout semantics: `timeout` after inactivity, no close, pushed
//! back by activity in either direction.

mod util;

use netloop::{BytesMut, ConnId, Handler, ListenOptions, Reactor, ServerId, SocketOptions};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::*;

#[derive(Default)]
struct Seen {
    timeouts: Vec<Instant>,
    connected: Option<Instant>,
    closed: bool,
}

struct Idle {
    seen: Arc<Mutex<Seen>>,
}

impl Handler for Idle {
    fn on_connection(&mut self, _r: &mut Reactor, _s: ServerId, _c: ConnId) {
        self.seen.lock().unwrap().connected = Some(Instant::now());
    }
    fn on_data(&mut self, r: &mut Reactor, c: ConnId, d: &mut BytesMut) {
        let b = d.split().freeze();
        let _ = r.write(c, b);
    }
    fn on_timeout(&mut self, r: &mut Reactor, c: ConnId) {
        self.seen.lock().unwrap().timeouts.push(Instant::now());
        // Still open: prove it by writing.
        r.write(c, &b"timeout\n"[..])
            .expect("connection still open");
    }
    fn on_close(&mut self, _r: &mut Reactor, _c: ConnId, _e: bool) {
        self.seen.lock().unwrap().closed = true;
    }
}

const IDLE: Duration = Duration::from_millis(200);

fn start() -> (TestLoop, Arc<Mutex<Seen>>) {
    let seen: Arc<Mutex<Seen>> = Default::default();
    let s2 = seen.clone();
    let opts = ListenOptions {
        socket: SocketOptions {
            idle_timeout: Some(IDLE),
            ..Default::default()
        },
        ..Default::default()
    };
    (TestLoop::start(opts, move || Idle { seen: s2 }), seen)
}

#[test]
fn fires_after_inactivity_and_does_not_close() {
    let (lp, seen) = start();
    let mut s = connect(lp.addr);
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"timeout\n");
    let g = seen.lock().unwrap();
    let after = g.timeouts[0] - g.connected.unwrap();
    assert!(after >= IDLE, "fired early: {after:?}");
    assert!(after < IDLE * 5, "fired late: {after:?}");
    assert!(!g.closed);
    drop(g);
    // Activity after the timeout re-arms it.
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pingtimeout\n");
    assert_eq!(seen.lock().unwrap().timeouts.len(), 2);
}

#[test]
fn activity_pushes_it_back() {
    let (lp, seen) = start();
    let mut s = connect(lp.addr);
    let start = Instant::now();
    let mut buf = [0u8; 1];
    // Activity every 50 ms for 600 ms: three idle periods without a timeout.
    while start.elapsed() < Duration::from_millis(600) {
        s.write_all(b"x").unwrap();
        s.read_exact(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen.lock().unwrap().timeouts.is_empty(),
        "timeout despite activity"
    );
    let quiet = Instant::now();
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"timeout\n");
    let t = seen.lock().unwrap().timeouts[0];
    assert!(
        t - quiet >= IDLE - Duration::from_millis(110),
        "{:?}",
        t - quiet
    );
}
