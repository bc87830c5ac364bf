//! socket.setTimeout semantics: `timeout` after inactivity, no close, pushed
//! back by activity in either direction.

use crate::util;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service, SocketOptions};
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

impl Service for Idle {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _r: &mut Cx<Self>, _s: ServerId, _c: ConnId) -> Option<()> {
        self.seen.lock().unwrap().connected = Some(Instant::now());
        Some(())
    }
    fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        let b = d.split().freeze();
        let _ = r.write(c, b);
    }
    fn on_timeout(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut ()) {
        self.seen.lock().unwrap().timeouts.push(Instant::now());
        // Still open: prove it by writing.
        r.write(c, &b"timeout\n"[..])
            .expect("connection still open");
    }
    fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), _e: bool) {
        self.seen.lock().unwrap().closed = true;
    }
}

const IDLE: Duration = Duration::from_millis(200);

fn start() -> (ServiceLoop, Arc<Mutex<Seen>>) {
    let seen: Arc<Mutex<Seen>> = Default::default();
    let s2 = seen.clone();
    let opts = ListenOptions {
        socket: SocketOptions {
            idle_timeout: Some(IDLE),
            ..Default::default()
        },
        ..Default::default()
    };
    (ServiceLoop::start(opts, move || Idle { seen: s2 }), seen)
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
    // No tight upper bound: on a loaded machine the loop thread may be
    // scheduled late, and lateness is not what this test is about.
    assert!(after < util::TIMEOUT, "fired late: {after:?}");
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

/// An idle timeout too long for the loop's millisecond ticks (what
/// `--idle-timeout 18446744073709551615ms` gives) means "never", not an
/// overflow of the deadline arithmetic that makes it fire at once. The
/// connections with a short timeout are the clock: the first makes the
/// loop's tick count non-zero before the huge one is armed, the last one's
/// `timeout` comes after the huge one has had time to misfire.
#[test]
fn a_huge_idle_timeout_saturates_instead_of_firing_at_once() {
    struct Three {
        conns: Vec<ConnId>,
        fired: Arc<Mutex<Vec<usize>>>,
    }
    impl Service for Three {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
            let after = if self.conns.len() == 1 {
                Duration::from_millis(u64::MAX)
            } else {
                Duration::from_millis(100)
            };
            r.set_idle_timeout(c, Some(after));
            self.conns.push(c);
            Some(())
        }
        fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
            // Activity: the lazy timer re-arms from `last_activity`.
            let b = d.split().freeze();
            let _ = r.write(c, b);
        }
        fn on_timeout(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut ()) {
            let which = self.conns.iter().position(|&x| x == c).unwrap_or(99);
            self.fired.lock().unwrap().push(which);
            let _ = r.write(c, &b"timeout\n"[..]);
        }
    }
    let fired: Arc<Mutex<Vec<usize>>> = Default::default();
    let f2 = fired.clone();
    let lp = ServiceLoop::start(ListenOptions::default(), move || Three {
        conns: Vec::new(),
        fired: f2,
    });
    let read_timeout = |s: &mut std::net::TcpStream| {
        let mut buf = [0u8; 8];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"timeout\n");
    };
    let mut first = connect(lp.addr);
    read_timeout(&mut first);
    let mut huge = connect(lp.addr);
    huge.write_all(b"x").unwrap();
    let mut buf = [0u8; 1];
    huge.read_exact(&mut buf).unwrap();
    let mut last = connect(lp.addr);
    read_timeout(&mut last);
    let fired = fired.lock().unwrap().clone();
    assert!(fired.contains(&2), "{fired:?}");
    assert!(!fired.contains(&1), "the huge timeout fired: {fired:?}");
}
