//! Outbound connections on the loop: lookup, connect, ready, data, and
//! Node's error codes for the failures.

use crate::util;
use netloop::servers::echo::Echo;
use netloop::{
    BytesMut, ConnId, ConnectOptions, Cx, ErrorCode, Exit, ListenOptions, NetError, Reactor,
    Service,
};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use util::*;

/// What the client saw, read by the test after the loop returns.
#[derive(Default)]
struct Record {
    events: Vec<String>,
    got: Vec<u8>,
}

struct Client {
    want: usize,
    out: Rc<RefCell<Record>>,
}

impl Service for Client {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_lookup(
        &mut self,
        _r: &mut Cx<Self>,
        _c: ConnId,
        _: &mut (),
        res: Result<SocketAddr, &NetError>,
    ) {
        self.out
            .borrow_mut()
            .events
            .push(format!("lookup:{}", res.is_ok()));
    }
    /// Node's `connect` and `ready`, emitted back to back: both recorded.
    fn on_connect(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut ()) {
        self.out.borrow_mut().events.push("connect".into());
        assert!(r.local_addr(c).is_some());
        assert!(r.peer_addr(c).is_some());
        self.out.borrow_mut().events.push("ready".into());
        r.write(c, vec![b'z'; self.want]).unwrap();
    }
    fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        let mut out = self.out.borrow_mut();
        out.got.extend_from_slice(&d.split());
        if out.got.len() == self.want {
            r.end(c).unwrap();
        }
    }
    fn on_end(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut ()) {
        self.out.borrow_mut().events.push("end".into());
    }
    fn on_error(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), e: &NetError) {
        self.out
            .borrow_mut()
            .events
            .push(format!("error:{}", e.code));
    }
    fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), had_error: bool) {
        self.out
            .borrow_mut()
            .events
            .push(format!("close:{had_error}"));
    }
}

/// Connect once with service `s` (5 s timeout, plus `local`'s source
/// address if given) and run the loop until it has nothing left to do.
fn run_connect<S: Service<Conn = ()>>(s: S, host: &str, port: u16, local: Option<&str>) {
    let mut r = Reactor::new().unwrap();
    let opts = ConnectOptions {
        timeout: Duration::from_secs(5),
        local_address: local.map(|a| a.parse().unwrap()),
        ..Default::default()
    };
    r.connect_with(host, port, opts, s, ());
    assert_eq!(r.run().unwrap(), Exit::Idle);
}

fn run_client(host: &str, port: u16, want: usize) -> Record {
    let out = Rc::new(RefCell::new(Record::default()));
    let c = Client {
        want,
        out: out.clone(),
    };
    run_connect(c, host, port, None);
    out.take()
}

#[test]
fn connect_by_ip_echoes_and_closes_cleanly() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    let c = run_client("127.0.0.1", lp.addr.port(), 100_000);
    assert_eq!(c.got.len(), 100_000);
    assert_eq!(c.events, ["connect", "ready", "end", "close:false"]);
}

#[test]
fn connect_by_name_reports_lookup() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    let c = run_client("localhost", lp.addr.port(), 10);
    assert_eq!(c.events[0], "lookup:true");
    assert_eq!(&c.events[1..], ["connect", "ready", "end", "close:false"]);
}

#[test]
fn refused_gives_econnrefused() {
    // Bind then drop a listener to find a port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = run_client("127.0.0.1", port, 1);
    assert_eq!(c.events, ["error:ECONNREFUSED", "close:true"]);
}

#[test]
fn unknown_host_gives_enotfound() {
    let c = run_client("no-such-host.invalid", 80, 1);
    assert_eq!(c.events, ["lookup:false", "error:ENOTFOUND", "close:true"]);
}

#[test]
fn error_codes_are_node_spelled() {
    assert_eq!(ErrorCode::TimedOut.as_str(), "ETIMEDOUT");
    assert_eq!(ErrorCode::ConnReset.as_str(), "ECONNRESET");
}

/// The local address each connection was given.
#[derive(Default)]
struct Locals {
    locals: Vec<SocketAddr>,
    errors: Vec<String>,
}

/// Records the local address each connection was given.
struct Local(Rc<RefCell<Locals>>);

impl Service for Local {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connect(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut ()) {
        if let Some(a) = r.local_addr(c) {
            self.0.borrow_mut().locals.push(a);
        }
        r.destroy(c);
    }
    fn on_data(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), d: &mut BytesMut) {
        d.clear();
    }
    fn on_error(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), e: &NetError) {
        self.0.borrow_mut().errors.push(format!("{}", e.code));
    }
}

fn connect_from(host: &str, port: u16, local: &str) -> Locals {
    let out = Rc::new(RefCell::new(Locals::default()));
    run_connect(Local(out.clone()), host, port, Some(local));
    out.take()
}

#[test]
fn local_address_binds_the_source_by_ip_and_by_name() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    // 127.0.0.0/8 is all local on Linux: the server sees the chosen source.
    let h = connect_from("127.0.0.1", lp.addr.port(), "127.0.0.7");
    assert_eq!(h.errors, Vec::<String>::new());
    assert_eq!(h.locals.len(), 1);
    assert_eq!(h.locals[0].ip().to_string(), "127.0.0.7");
    assert_ne!(h.locals[0].port(), 0);
    // Through the resolver thread: the address travels with the lookup.
    let h = connect_from("localhost", lp.addr.port(), "127.0.0.9");
    assert_eq!(h.locals.len(), 1, "{:?}", h.errors);
    assert_eq!(h.locals[0].ip().to_string(), "127.0.0.9");
}

#[test]
fn local_address_that_is_not_ours_is_an_error_event() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    // TEST-NET-1 is never a local address: bind fails with EADDRNOTAVAIL,
    // reported as an error event, not a panic.
    let h = connect_from("127.0.0.1", lp.addr.port(), "192.0.2.1");
    assert!(h.locals.is_empty());
    assert_eq!(h.errors.len(), 1, "{:?}", h.errors);
}

/// Records what arrives on a connection that only reads.
struct Listens {
    got: Rc<RefCell<Vec<u8>>>,
}

impl Service for Listens {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        self.got.borrow_mut().extend_from_slice(&d.split());
        r.end(c).unwrap();
    }
}

#[test]
fn a_greeting_that_came_with_the_connect_is_read() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (wrote, written) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.write_all(b"hello").expect("write");
        wrote.send(()).expect("signal");
        // Hold the socket until the client has closed its side.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let got = Rc::new(RefCell::new(Vec::new()));
    let mut r = Reactor::new().unwrap();
    let svc = Listens { got: got.clone() };
    // An IP literal: connect(2) is issued here, before the loop runs.
    r.connect_with("127.0.0.1", port, ConnectOptions::default(), svc, ());
    // Established and greeted before the loop's first poll, so that poll
    // reports write and read readiness on one edge: the read side gets no
    // edge of its own.
    written
        .recv_timeout(Duration::from_secs(5))
        .expect("the server never wrote");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while got.borrow().len() < 5 && std::time::Instant::now() < deadline {
        r.run_until(std::time::Instant::now() + Duration::from_millis(10))
            .unwrap();
    }
    assert_eq!(&got.borrow()[..], b"hello");
    drop(r);
    server.join().expect("server thread");
}
