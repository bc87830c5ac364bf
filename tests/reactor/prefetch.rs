//! `Service::prefetch`: the loop names, ahead of a connection's event, the
//! state that event's callback will get, so the service can start fetching
//! what it will read.

use netloop::{BytesMut, ConnId, Cx, ListenOptions, Reactor, ServerId, Service};
use std::cell::RefCell;
use std::io::Write;
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Connections written to at once, so their events come in one batch.
const CONNS: u32 = 8;
/// Upper bound on the test.
const LIMIT: Duration = Duration::from_secs(10);

/// What happened, in order: `('p', n)` for a prefetch of connection `n`'s
/// state, `('d', n)` for its data callback.
type Log = Rc<RefCell<Vec<(char, u32)>>>;

/// Numbers its connections and logs prefetches and data callbacks.
struct Numbered {
    next: u32,
    log: Log,
}

impl Service for Numbered {
    type Conn = u32;
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<u32> {
        self.next += 1;
        Some(self.next)
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, n: &mut u32, data: &mut BytesMut) {
        data.clear();
        self.log.borrow_mut().push(('d', *n));
    }
    fn prefetch(&self, n: &u32) {
        self.log.borrow_mut().push(('p', *n));
    }
}

#[test]
fn the_state_of_a_coming_event_is_named_before_its_callback() {
    let log = Log::default();
    let mut r = Reactor::new().expect("reactor");
    let svc = Numbered {
        next: 0,
        log: log.clone(),
    };
    let sid = r.serve(ListenOptions::port(0), svc).expect("serve");
    let addr = r.server_addr(sid).expect("addr");
    let mut clients: Vec<_> = (0..CONNS)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let start = Instant::now();
    // Accept them all (an accept logs nothing) before any byte is sent.
    let mut probe = TcpStream::connect(addr).expect("connect");
    probe.write_all(b"x").expect("write");
    while !log.borrow().iter().any(|&(k, _)| k == 'd') {
        assert!(start.elapsed() < LIMIT, "the probe never arrived");
        r.run_until(Instant::now() + Duration::from_millis(5))
            .expect("run");
    }
    log.borrow_mut().clear();
    for c in &mut clients {
        c.write_all(b"y").expect("write");
    }
    let seen = |log: &Log| log.borrow().iter().filter(|&&(k, _)| k == 'd').count();
    while seen(&log) < CONNS as usize {
        assert!(start.elapsed() < LIMIT, "data missing: {:?}", log.borrow());
        r.run_until(Instant::now() + Duration::from_millis(5))
            .expect("run");
    }
    let log = log.borrow();
    let prefetched: Vec<u32> = log.iter().filter(|e| e.0 == 'p').map(|e| e.1).collect();
    // Eight sockets written before the loop ran again come back from one
    // `epoll_wait` (or a few): every event after the first of a batch is
    // named ahead.
    assert!(!prefetched.is_empty(), "no prefetch: {log:?}");
    for (i, &(kind, n)) in log.iter().enumerate() {
        if kind == 'p' {
            // Named before its own callback, and only once for it.
            let later = &log[i + 1..];
            assert!(
                later.contains(&('d', n)),
                "{n} prefetched, no data after: {log:?}"
            );
            assert!(
                !log[..i].contains(&('d', n)),
                "{n} prefetched after its data: {log:?}"
            );
        }
    }
}
