//! Outbound connections on the loop: lookup, connect, ready, data, and
//! Node's error codes for the failures.

mod util;

use netloop::apps::echo::Echo;
use netloop::{
    BytesMut, ConnId, ConnectOptions, ErrorCode, Exit, Handler, ListenOptions, NetError, Reactor,
};
use std::net::SocketAddr;
use std::time::Duration;
use util::*;

#[derive(Default)]
struct Client {
    events: Vec<String>,
    got: Vec<u8>,
    want: usize,
}

impl Handler for Client {
    fn on_lookup(&mut self, _r: &mut Reactor, _c: ConnId, res: Result<SocketAddr, &NetError>) {
        self.events.push(format!("lookup:{}", res.is_ok()));
    }
    fn on_connect(&mut self, r: &mut Reactor, c: ConnId) {
        self.events.push("connect".into());
        assert!(r.local_addr(c).is_some());
        assert!(r.peer_addr(c).is_some());
    }
    fn on_ready(&mut self, r: &mut Reactor, c: ConnId) {
        self.events.push("ready".into());
        r.write(c, vec![b'z'; self.want]).unwrap();
    }
    fn on_data(&mut self, r: &mut Reactor, c: ConnId, d: &mut BytesMut) {
        self.got.extend_from_slice(&d.split());
        if self.got.len() == self.want {
            r.end(c).unwrap();
        }
    }
    fn on_end(&mut self, _r: &mut Reactor, _c: ConnId) {
        self.events.push("end".into());
    }
    fn on_error(&mut self, _r: &mut Reactor, _c: ConnId, e: &NetError) {
        self.events.push(format!("error:{}", e.code));
    }
    fn on_close(&mut self, _r: &mut Reactor, _c: ConnId, had_error: bool) {
        self.events.push(format!("close:{had_error}"));
    }
}

/// Connect once with `h` (5 s timeout, plus `local`'s source address if
/// given) and run the loop until it has nothing left to do.
fn run_connect<H: Handler>(mut h: H, host: &str, port: u16, local: Option<&str>) -> H {
    let mut r = Reactor::new().unwrap();
    let opts = ConnectOptions {
        timeout: Duration::from_secs(5),
        local_address: local.map(|a| a.parse().unwrap()),
        ..Default::default()
    };
    r.connect(host, port, opts);
    assert_eq!(r.run_with(&mut h).unwrap(), Exit::Idle);
    h
}

fn run_client(host: &str, port: u16, want: usize) -> Client {
    let c = Client {
        want,
        ..Default::default()
    };
    run_connect(c, host, port, None)
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

/// Records the local address each connection was given.
#[derive(Default)]
struct Local {
    locals: Vec<SocketAddr>,
    errors: Vec<String>,
}

impl Handler for Local {
    fn on_connect(&mut self, r: &mut Reactor, c: ConnId) {
        if let Some(a) = r.local_addr(c) {
            self.locals.push(a);
        }
        r.destroy(c);
    }
    fn on_data(&mut self, _r: &mut Reactor, _c: ConnId, d: &mut BytesMut) {
        d.clear();
    }
    fn on_error(&mut self, _r: &mut Reactor, _c: ConnId, e: &NetError) {
        self.errors.push(format!("{}", e.code));
    }
}

fn connect_from(host: &str, port: u16, local: &str) -> Local {
    run_connect(Local::default(), host, port, Some(local))
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
