//! `Reactor::run_until`: the loop runs in slices on the caller's thread,
//! returns at the deadline with its work kept, and returns early with the
//! reason when nothing is left.

use netloop::servers::echo::Echo;
use netloop::{BytesMut, ConnId, Cx, Exit, ListenOptions, Reactor, Service, TimerId};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Slice length of the tests.
const SLICE: Duration = Duration::from_millis(10);
/// Upper bound on any wait here.
const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn a_loop_run_in_slices_keeps_its_connections_between_them() {
    let mut r = Reactor::new().expect("reactor");
    let sid = r.serve(ListenOptions::port(0), Echo).expect("serve");
    let addr = r.server_addr(sid).expect("addr");
    // A client on this same thread: the loop only runs inside run_until.
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nonblocking(true).expect("nonblocking");
    let start = Instant::now();
    let mut got = Vec::new();
    for round in 0..3u8 {
        let msg = [b'a' + round; 5];
        c.write_all(&msg).expect("write");
        got.clear();
        while got.len() < msg.len() {
            assert!(start.elapsed() < LIMIT, "no echo of round {round}");
            let t = Instant::now();
            // A listening server keeps the loop alive: each slice ends at
            // its deadline, not before, and not long after.
            assert_eq!(r.run_until(t + SLICE).expect("run"), None);
            let took = t.elapsed();
            assert!(took >= SLICE, "returned early after {took:?}");
            assert!(took < SLICE * 50, "overslept: {took:?}");
            let mut buf = [0u8; 64];
            match c.read(&mut buf) {
                Ok(0) => panic!("server closed"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(got, msg, "round {round}");
    }
}

/// Arms one timer and nothing else.
struct Once;

impl Service for Once {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        cx.set_timeout(Duration::from_millis(5), ());
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_timer(&mut self, _: &mut Cx<Self>, _: TimerId, _: ()) {}
}

#[test]
fn run_until_returns_early_with_the_reason_when_nothing_is_left() {
    let mut r = Reactor::new().expect("reactor");
    r.add_service(Once);
    let t = Instant::now();
    assert_eq!(r.run_until(t + LIMIT).expect("run"), Some(Exit::Idle));
    assert!(t.elapsed() < LIMIT / 2, "waited for the deadline");
    // A deadline already past runs no iteration and keeps the loop.
    let mut r = Reactor::new().expect("reactor");
    r.add_service(Once);
    assert_eq!(r.run_until(Instant::now()).expect("run"), None);
    assert_eq!(r.app_timer_count(), 1, "the timer is still armed");
}
