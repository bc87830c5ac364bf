//! The Service API over real loopback sockets: several services in one loop,
//! typed per-connection state, typed timers and messages, outbound
//! connections, `pipe_write`, `Framed`, `Cx::lift` and graceful shutdown.
//!
//! Every wait is bounded ([`util::TIMEOUT`]) and synchronised on an event a
//! service reports through a channel; nothing sleeps for a fixed time.

use crate::util;
use netloop::codec::{LineDecoder, LineError};
use netloop::framed::{Flow, Framed};
use netloop::Remote;
use netloop::{
    BytesMut, ConnId, ConnectOptions, Cx, Exit, ListenOptions, Reactor, ServerId, Service, TimerId,
};
use std::cell::Cell;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;
use util::TIMEOUT;

// ---------------------------------------------------------------------------
// Harness: a loop on its own thread, kept alive and stopped by a control
// service; services report what they see as strings on a channel.
// ---------------------------------------------------------------------------

/// What the control service is told to do.
enum Cmd {
    Stop,
    Shutdown(Duration),
}

/// Keeps the loop alive (it listens) and stops or shuts it down on request.
struct Ctl(Sender<Remote<Cmd>>);

impl Service for Ctl {
    type Conn = ();
    type Tag = ();
    type Message = Cmd;
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        self.0.send(cx.remote()).unwrap();
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), d: &mut BytesMut) {
        d.clear();
    }
    fn on_message(&mut self, cx: &mut Cx<Self>, m: Cmd) {
        match m {
            Cmd::Stop => cx.stop(),
            Cmd::Shutdown(grace) => cx.shutdown(grace),
        }
    }
}

struct Harness {
    ctl: Remote<Cmd>,
    done: Receiver<std::io::Result<Exit>>,
    thread: Option<JoinHandle<()>>,
}

impl Harness {
    /// Run a loop whose services `setup` adds; `setup`'s result comes back.
    fn start<T: Send + 'static>(
        setup: impl FnOnce(&mut Reactor) -> T + Send + 'static,
    ) -> (Harness, T) {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut r = Reactor::new().expect("reactor");
            let (ctx, crx) = mpsc::channel();
            r.serve(ListenOptions::port(0), Ctl(ctx)).expect("ctl");
            let ctl = crx.recv().unwrap();
            let t = setup(&mut r);
            tx.send((ctl, t)).ok();
            let _ = done_tx.send(r.run());
        });
        let (ctl, t) = rx.recv_timeout(TIMEOUT).expect("loop started");
        (
            Harness {
                ctl,
                done,
                thread: Some(thread),
            },
            t,
        )
    }

    /// Wait for the loop to return by itself.
    fn wait_exit(mut self) -> Exit {
        let exit = self
            .done
            .recv_timeout(TIMEOUT)
            .expect("loop exited in time")
            .expect("run ok");
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        exit
    }

    /// Stop the loop and wait for it.
    fn stop(self) -> Exit {
        self.ctl.post(Cmd::Stop);
        self.wait_exit()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.ctl.post(Cmd::Stop);
        }
    }
}

/// The next reported event.
fn next(rx: &Receiver<String>) -> String {
    rx.recv_timeout(TIMEOUT).expect("event in time")
}

/// Wait for `want`, returning the events seen before it.
fn wait_for(rx: &Receiver<String>, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let ev = rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("no {want:?} in time; seen {seen:?}"));
        if ev == want {
            return seen;
        }
        seen.push(ev);
    }
}

/// Every event still queued (after the loop stopped).
fn rest(rx: &Receiver<String>) -> Vec<String> {
    rx.try_iter().collect()
}

fn port_of(r: &Reactor, sid: ServerId) -> SocketAddr {
    r.server_addr(sid).expect("server addr")
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------
// Two services, two ports, typed per-connection state.
// ---------------------------------------------------------------------------

/// Echoes; its state counts the bytes of each connection.
struct Echo {
    ev: Sender<String>,
    mine: HashSet<ConnId>,
}

impl Service for Echo {
    type Conn = usize;
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, c: ConnId) -> Option<usize> {
        self.mine.insert(c);
        Some(0)
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, st: &mut usize, d: &mut BytesMut) {
        if !self.mine.contains(&c) {
            self.ev.send(format!("echo got foreign {c}")).unwrap();
        }
        *st += d.len();
        let _ = cx.write_from(c, d);
    }
    fn on_close(&mut self, _: &mut Cx<Self>, c: ConnId, st: usize, had_error: bool) {
        let mine = self.mine.remove(&c);
        self.ev
            .send(format!("echo close {st} {had_error} {mine}"))
            .unwrap();
    }
}

/// Echoes in upper case; its state keeps everything a connection sent.
struct Upper {
    ev: Sender<String>,
    mine: HashSet<ConnId>,
}

impl Service for Upper {
    type Conn = Vec<u8>;
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, c: ConnId) -> Option<Vec<u8>> {
        self.mine.insert(c);
        Some(Vec::new())
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, st: &mut Vec<u8>, d: &mut BytesMut) {
        if !self.mine.contains(&c) {
            self.ev.send(format!("upper got foreign {c}")).unwrap();
        }
        st.extend_from_slice(d);
        let up = d.to_ascii_uppercase();
        d.clear();
        let _ = cx.write(c, up);
    }
    fn on_close(&mut self, _: &mut Cx<Self>, c: ConnId, st: Vec<u8>, had_error: bool) {
        let mine = self.mine.remove(&c);
        self.ev
            .send(format!(
                "upper close {} {had_error} {mine}",
                String::from_utf8_lossy(&st)
            ))
            .unwrap();
    }
}

fn roundtrip(s: &mut std::net::TcpStream, send: &[u8], want: &[u8]) {
    s.write_all(send).unwrap();
    assert_eq!(util::read_exact(s, want.len()), want);
}

#[test]
fn two_services_two_ports_keep_their_own_connections_and_state() {
    let (ev, rx) = mpsc::channel();
    let (h, (echo, upper)) = Harness::start(move |r| {
        let e = r
            .serve(
                ListenOptions::port(0),
                Echo {
                    ev: ev.clone(),
                    mine: HashSet::new(),
                },
            )
            .unwrap();
        let u = r
            .serve(
                ListenOptions::port(0),
                Upper {
                    ev,
                    mine: HashSet::new(),
                },
            )
            .unwrap();
        (port_of(r, e), port_of(r, u))
    });
    let mut a = util::connect(echo);
    let mut b = util::connect(upper);
    roundtrip(&mut a, b"abc", b"abc");
    roundtrip(&mut b, b"hi ", b"HI ");
    roundtrip(&mut a, b"defg", b"defg");
    roundtrip(&mut b, b"there", b"THERE");
    drop(a);
    assert_eq!(next(&rx), "echo close 7 false true");
    drop(b);
    assert_eq!(next(&rx), "upper close hi there false true");
    assert_eq!(h.stop(), Exit::Stopped);
    // Exactly one close each, and nothing crossed.
    assert_eq!(rest(&rx), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// Typed timers.
// ---------------------------------------------------------------------------

/// Arms a long timer and publishes its id for the other service to try.
struct TimerB {
    ev: Sender<String>,
    shared: Rc<Cell<Option<TimerId>>>,
}

impl Service for TimerB {
    type Conn = ();
    type Tag = u32;
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        let long = cx.set_timeout(Duration::from_millis(40), 99);
        self.shared.set(Some(long));
        cx.set_timeout(Duration::from_millis(5), 7);
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_timer(&mut self, _: &mut Cx<Self>, _: TimerId, tag: u32) {
        self.ev.send(format!("B timer {tag}")).unwrap();
    }
}

/// Same tag values as `TimerB`; an interval; an immediate from a timer.
struct TimerA {
    ev: Sender<String>,
    shared: Rc<Cell<Option<TimerId>>>,
    interval: Option<TimerId>,
    ticks: u32,
    fired_in: u64,
}

impl Service for TimerA {
    type Conn = ();
    type Tag = u32;
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        let theirs = self.shared.get().expect("B started first");
        let cleared = cx.clear_timer(theirs);
        self.ev.send(format!("A clears B's: {cleared}")).unwrap();
        cx.set_timeout(Duration::from_millis(5), 7);
        self.interval = Some(cx.set_interval(Duration::from_millis(3), 3));
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_timer(&mut self, cx: &mut Cx<Self>, id: TimerId, tag: u32) {
        match tag {
            3 => {
                assert_eq!(Some(id), self.interval, "the interval keeps its id");
                self.ticks += 1;
                self.ev.send(format!("A interval {}", self.ticks)).unwrap();
                if self.ticks == 3 {
                    let cleared = cx.clear_timer(id);
                    self.ev
                        .send(format!("A cleared interval: {cleared}"))
                        .unwrap();
                    // From the timers phase: the immediate runs in this
                    // iteration's check phase, before a 1 ms timeout.
                    self.fired_in = cx.stats().iterations;
                    cx.set_immediate(50);
                    cx.set_timeout(Duration::from_millis(1), 60);
                }
            }
            _ => self.ev.send(format!("A timer {tag}")).unwrap(),
        }
    }
    fn on_immediate(&mut self, cx: &mut Cx<Self>, tag: u32) {
        let same = cx.stats().iterations == self.fired_in;
        self.ev
            .send(format!("A immediate {tag} same iteration: {same}"))
            .unwrap();
        if tag == 50 {
            // Queued from the check phase: waits for the next iteration.
            cx.set_immediate(51);
        }
    }
}

#[test]
fn typed_timers_of_two_services_do_not_cross() {
    let (ev, rx) = mpsc::channel::<String>();
    // No server: the loop runs until its timers are done, then exits Idle.
    let (done_tx, done) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        let shared = Rc::new(Cell::new(None));
        r.add_service(TimerB {
            ev: ev.clone(),
            shared: shared.clone(),
        });
        r.add_service(TimerA {
            ev,
            shared,
            interval: None,
            ticks: 0,
            fired_in: 0,
        });
        done_tx.send(r.run().unwrap()).unwrap();
    });
    assert_eq!(done.recv_timeout(TIMEOUT).unwrap(), Exit::Idle);
    t.join().unwrap();
    let evs = rest(&rx);
    let count = |s: &str| evs.iter().filter(|e| *e == s).count();
    assert_eq!(evs[0], "A clears B's: false", "{evs:?}");
    assert_eq!(count("A timer 7"), 1, "{evs:?}");
    assert_eq!(count("B timer 7"), 1, "{evs:?}");
    assert_eq!(
        count("B timer 99"),
        1,
        "B's timer was not cancelled: {evs:?}"
    );
    assert!(!evs.iter().any(|e| e == "A timer 99"), "{evs:?}");
    for i in 1..=3 {
        assert_eq!(count(&format!("A interval {i}")), 1, "{evs:?}");
    }
    assert_eq!(count("A interval 4"), 0, "cleared interval fired: {evs:?}");
    assert_eq!(count("A cleared interval: true"), 1, "{evs:?}");
    let pos = |s: &str| evs.iter().position(|e| e == s).unwrap_or(usize::MAX);
    assert!(
        pos("A immediate 50 same iteration: true") < pos("A timer 60"),
        "{evs:?}"
    );
    assert!(
        pos("A immediate 51 same iteration: false") < usize::MAX,
        "{evs:?}"
    );
}

// ---------------------------------------------------------------------------
// Refusing a connection.
// ---------------------------------------------------------------------------

/// Refuses the first connection, accepts the rest.
struct Picky {
    ev: Sender<String>,
    seen: usize,
}

impl Service for Picky {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, c: ConnId) -> Option<()> {
        self.seen += 1;
        self.ev.send(format!("connection {c}")).unwrap();
        (self.seen > 1).then_some(())
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        self.ev.send(format!("data {c}")).unwrap();
        let _ = cx.write_from(c, d);
    }
    fn on_end(&mut self, _: &mut Cx<Self>, c: ConnId, _: &mut ()) {
        self.ev.send(format!("end {c}")).unwrap();
    }
    fn on_close(&mut self, _: &mut Cx<Self>, c: ConnId, _: (), _: bool) {
        self.ev.send(format!("close {c}")).unwrap();
    }
}

#[test]
fn on_connection_none_refuses_and_silences_the_connection() {
    let (ev, rx) = mpsc::channel();
    let (h, addr) = Harness::start(move |r| {
        let s = r
            .serve(ListenOptions::port(0), Picky { ev, seen: 0 })
            .unwrap();
        port_of(r, s)
    });
    let mut refused = util::connect(addr);
    let first = next(&rx);
    let _ = refused.write_all(b"hello?");
    let mut buf = [0u8; 16];
    match refused.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("refused connection got {n} bytes"),
        Err(e) => panic!("refused connection not closed: {e}"),
    }
    // A second one is served, and closes; the first never shows up again.
    let mut ok = util::connect(addr);
    let second = next(&rx);
    roundtrip(&mut ok, b"x", b"x");
    drop(ok);
    let id = second.strip_prefix("connection ").unwrap().to_string();
    wait_for(&rx, &format!("close {id}"));
    drop(refused);
    h.stop();
    let first_id = first.strip_prefix("connection ").unwrap();
    let mut evs = rest(&rx);
    evs.retain(|e| e.ends_with(&format!(" {first_id}")));
    assert_eq!(
        evs,
        Vec::<String>::new(),
        "events of the refused connection"
    );
}

// ---------------------------------------------------------------------------
// Outbound connections.
// ---------------------------------------------------------------------------

/// A plain echo server for the clients below.
struct PlainEcho;

impl Service for PlainEcho {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        let _ = cx.write_from(c, d);
    }
}

/// Outbound client: its state is the connection's name.
struct Client {
    ev: Sender<String>,
    port: u16,
    dead_port: u16,
}

impl Service for Client {
    type Conn = String;
    type Tag = ();
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        cx.connect(
            "127.0.0.1",
            self.dead_port,
            ConnectOptions::default(),
            "dead".into(),
        );
    }
    fn on_connect(&mut self, cx: &mut Cx<Self>, c: ConnId, st: &mut String) {
        self.ev.send(format!("connect {st}")).unwrap();
        let _ = cx.write(c, format!("ping-{st}"));
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, st: &mut String, d: &mut BytesMut) {
        let want = format!("ping-{st}");
        if d.len() < want.len() {
            return;
        }
        let text = String::from_utf8_lossy(&d.split_to(want.len())).into_owned();
        self.ev.send(format!("data {st} {text}")).unwrap();
        if st == "first" {
            cx.connect(
                "127.0.0.1",
                self.port,
                ConnectOptions::default(),
                "second".into(),
            );
        }
        let _ = cx.end(c);
    }
    fn on_error(&mut self, _: &mut Cx<Self>, _: ConnId, st: &mut String, _: &netloop::NetError) {
        self.ev.send(format!("error {st}")).unwrap();
    }
    fn on_close(&mut self, _: &mut Cx<Self>, _: ConnId, st: String, had_error: bool) {
        self.ev.send(format!("close {st} {had_error}")).unwrap();
    }
}

#[test]
fn outbound_connections_carry_their_state() {
    let (ev, rx) = mpsc::channel();
    let dead_port = closed_port();
    let (h, ()) = Harness::start(move |r| {
        let s = r.serve(ListenOptions::port(0), PlainEcho).unwrap();
        let port = port_of(r, s).port();
        r.connect_with(
            "127.0.0.1",
            port,
            ConnectOptions::default(),
            Client {
                ev,
                port,
                dead_port,
            },
            "first".into(),
        );
    });
    let mut evs = Vec::new();
    while !(evs.contains(&"close second false".to_string())
        && evs.contains(&"close dead true".to_string())
        && evs.contains(&"close first false".to_string()))
    {
        evs.push(next(&rx));
    }
    h.stop();
    evs.extend(rest(&rx));
    let of = |name: &str| -> Vec<&String> {
        evs.iter()
            .filter(|e| e.split(' ').nth(1) == Some(name))
            .collect()
    };
    assert_eq!(
        of("first"),
        [
            "connect first",
            "data first ping-first",
            "close first false"
        ],
        "{evs:?}"
    );
    assert_eq!(
        of("second"),
        [
            "connect second",
            "data second ping-second",
            "close second false"
        ],
        "{evs:?}"
    );
    assert_eq!(of("dead"), ["error dead", "close dead true"], "{evs:?}");
}

// ---------------------------------------------------------------------------
// Typed messages from other threads.
// ---------------------------------------------------------------------------

struct Numbers {
    ev: Sender<String>,
    out: Sender<Remote<u32>>,
}

impl Service for Numbers {
    type Conn = ();
    type Tag = ();
    type Message = u32;
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        self.out.send(cx.remote()).unwrap();
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_message(&mut self, _: &mut Cx<Self>, m: u32) {
        self.ev.send(format!("n {m}")).unwrap();
    }
}

struct Words {
    ev: Sender<String>,
    out: Sender<Remote<String>>,
}

impl Service for Words {
    type Conn = ();
    type Tag = ();
    type Message = String;
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        self.out.send(cx.remote()).unwrap();
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_message(&mut self, _: &mut Cx<Self>, m: String) {
        self.ev.send(format!("w {m}")).unwrap();
    }
}

#[test]
fn remote_messages_arrive_in_order_at_their_own_service() {
    let (ev, rx) = mpsc::channel();
    let (ntx, nrx) = mpsc::channel();
    let (wtx, wrx) = mpsc::channel();
    let (h, ()) = Harness::start(move |r| {
        r.add_service(Numbers {
            ev: ev.clone(),
            out: ntx,
        });
        r.add_service(Words { ev, out: wtx });
    });
    let n = nrx.recv_timeout(TIMEOUT).unwrap();
    let w = wrx.recv_timeout(TIMEOUT).unwrap();
    const N: u32 = 500;
    let t1 = std::thread::spawn(move || {
        for i in 0..N {
            assert!(n.post(i));
        }
    });
    let t2 = std::thread::spawn(move || {
        for i in 0..N {
            assert!(w.post(format!("word{i}")));
        }
    });
    t1.join().unwrap();
    t2.join().unwrap();
    let (mut ns, mut ws) = (Vec::new(), Vec::new());
    while ns.len() < N as usize || ws.len() < N as usize {
        let e = next(&rx);
        if let Some(x) = e.strip_prefix("n ") {
            ns.push(x.parse::<u32>().unwrap());
        } else if let Some(x) = e.strip_prefix("w ") {
            ws.push(x.to_string());
        } else {
            panic!("unexpected {e}");
        }
    }
    h.stop();
    assert_eq!(ns, (0..N).collect::<Vec<_>>());
    assert_eq!(ws, (0..N).map(|i| format!("word{i}")).collect::<Vec<_>>());
    assert_eq!(rest(&rx), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// pipe_write: Node's pipe backpressure.
// ---------------------------------------------------------------------------

enum Role {
    Sink,
    Source,
}

/// The first connection is the sink, the second the source piped into it.
struct Pipe {
    ev: Sender<String>,
    sink: Option<ConnId>,
    src: Option<ConnId>,
    out: Sender<Remote<()>>,
}

impl Service for Pipe {
    type Conn = Role;
    type Tag = ();
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        self.out.send(cx.remote()).unwrap();
    }
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, c: ConnId) -> Option<Role> {
        if self.sink.is_none() {
            self.sink = Some(c);
            self.ev.send("sink".into()).unwrap();
            Some(Role::Sink)
        } else {
            self.src = Some(c);
            Some(Role::Source)
        }
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, st: &mut Role, d: &mut BytesMut) {
        match st {
            Role::Sink => d.clear(),
            Role::Source => {
                let sink = self.sink.unwrap();
                let _ = cx.pipe_write_from(c, sink, d);
            }
        }
    }
    fn on_end(&mut self, cx: &mut Cx<Self>, _: ConnId, st: &mut Role) {
        if let Role::Source = st {
            let _ = cx.end(self.sink.unwrap());
        }
    }
    fn on_drain(&mut self, cx: &mut Cx<Self>, _: ConnId, _: &mut Role) {
        let paused = self.src.is_some_and(|s| cx.is_paused(s));
        self.ev.send(format!("drain paused={paused}")).unwrap();
    }
    /// A probe: report the source's pause and the sink's queue.
    fn on_message(&mut self, cx: &mut Cx<Self>, _: ()) {
        let (Some(src), Some(sink)) = (self.src, self.sink) else {
            self.ev.send("probe none".into()).unwrap();
            return;
        };
        self.ev
            .send(format!(
                "probe {} {}",
                cx.is_paused(src),
                cx.buffer_size(sink)
            ))
            .unwrap();
    }
}

#[test]
fn pipe_write_pauses_the_source_and_bounds_memory() {
    const TOTAL: usize = 32 << 20;
    let hwm = netloop::reactor::config::DEFAULT_HIGH_WATER_MARK;
    let budget = netloop::reactor::config::READ_BUDGET_BYTES;
    let (ev, rx) = mpsc::channel();
    let (otx, orx) = mpsc::channel();
    let (h, addr) = Harness::start(move |r| {
        let s = r
            .serve(
                ListenOptions::port(0),
                Pipe {
                    ev,
                    sink: None,
                    src: None,
                    out: otx,
                },
            )
            .unwrap();
        port_of(r, s)
    });
    let probe = orx.recv_timeout(TIMEOUT).unwrap();
    let mut sink = util::connect(addr);
    // A small receive buffer: the kernel cannot absorb the whole transfer.
    socket2::SockRef::from(&sink)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    assert_eq!(next(&rx), "sink");
    let src = util::connect(addr);
    let data = util::random_bytes(TOTAL, 42);
    let expect = data.clone();
    let writer = std::thread::spawn(move || {
        let mut src = src;
        src.write_all(&data).unwrap();
        src.shutdown(std::net::Shutdown::Write).unwrap();
        src
    });
    // The sink does not read: the source ends up paused, the sink's queue
    // near the high-water mark.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let queued = loop {
        assert!(std::time::Instant::now() < deadline, "source never paused");
        probe.post(());
        let e = loop {
            let e = next(&rx);
            if e.starts_with("probe") {
                break e;
            }
        };
        let parts: Vec<&str> = e.split(' ').collect();
        if parts.len() == 3 && parts[1] == "true" {
            break parts[2].parse::<usize>().unwrap();
        }
        std::thread::yield_now();
    };
    assert!(
        queued <= hwm + budget,
        "queue {queued} above high-water mark {hwm} + one read {budget}"
    );
    // The sink reads: drain resumes the source, every byte arrives intact.
    let got = util::read_to_end(&mut sink);
    assert_eq!(got.len(), TOTAL);
    assert!(got == expect, "content differs");
    let _src = writer.join().unwrap();
    h.stop();
    let evs = rest(&rx);
    assert!(
        evs.iter().any(|e| e == "drain paused=false"),
        "no drain that resumed the source: {:?}",
        evs.iter()
            .filter(|e| e.starts_with("drain"))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// Framed<LineDecoder>.
// ---------------------------------------------------------------------------

struct Lines {
    ev: Sender<String>,
}

impl Service for Lines {
    type Conn = Framed<LineDecoder>;
    type Tag = ();
    type Message = ();
    fn on_connection(
        &mut self,
        _: &mut Cx<Self>,
        _: ServerId,
        _: ConnId,
    ) -> Option<Framed<LineDecoder>> {
        Some(Framed::new(LineDecoder::new(16)))
    }
    fn on_data(
        &mut self,
        cx: &mut Cx<Self>,
        c: ConnId,
        st: &mut Framed<LineDecoder>,
        d: &mut BytesMut,
    ) {
        self.ev
            .send(format!(
                "data {} writes={}",
                d.len(),
                cx.stats().write_calls
            ))
            .unwrap();
        let ev = self.ev.clone();
        st.decode_all(cx, c, d, |cx, item| match item {
            Ok(line) => {
                ev.send(format!("item {line}")).unwrap();
                let _ = cx.write(c, format!("<{line}>\n"));
                Flow::Continue
            }
            Err(LineError::TooLong { max }) => {
                ev.send(format!("too long {max}")).unwrap();
                let _ = cx.end_with(c, "ERR too long\n");
                Flow::Stop
            }
            Err(e) => {
                ev.send(format!("error {e}")).unwrap();
                Flow::Continue
            }
        });
    }
}

fn wait_prefix(rx: &Receiver<String>, prefix: &str) -> String {
    loop {
        let e = next(rx);
        if e.starts_with(prefix) {
            return e;
        }
    }
}

fn writes_of(e: &str) -> u64 {
    e.rsplit("writes=").next().unwrap().parse().unwrap()
}

#[test]
fn framed_lines_cork_join_and_apply_the_error_policy() {
    let (ev, rx) = mpsc::channel();
    let (h, addr) = Harness::start(move |r| {
        let s = r.serve(ListenOptions::port(0), Lines { ev }).unwrap();
        port_of(r, s)
    });
    let mut c = util::connect(addr);
    // Pipelined lines in one segment: one reply batch (one write call).
    c.write_all(b"a\nbb\nccc\n").unwrap();
    let before = writes_of(&wait_prefix(&rx, "data 9 "));
    assert_eq!(util::read_exact(&mut c, 15), b"<a>\n<bb>\n<ccc>\n");
    // A line split across segments is one item; the first part alone
    // produces none.
    c.write_all(b"hel").unwrap();
    let e = wait_prefix(&rx, "data ");
    assert_eq!(
        writes_of(&e) - before,
        1,
        "replies to a pipelined batch left in one write"
    );
    assert!(e.starts_with("data 3 "), "{e}");
    c.write_all(b"lo\n").unwrap();
    assert_eq!(util::read_exact(&mut c, 8), b"<hello>\n");
    let before_hello = wait_for(&rx, "item hello");
    assert!(
        !before_hello.iter().any(|e| e.starts_with("item ")),
        "the first part alone made an item: {before_hello:?}"
    );
    // An overlong line reaches the closure as an error: reply and end.
    c.write_all(b"this line is much longer than sixteen bytes\nnext\n")
        .unwrap();
    let tail = util::read_to_end(&mut c);
    assert_eq!(tail, b"ERR too long\n");
    wait_for(&rx, "too long 16");
    h.stop();
    let all = rest(&rx);
    assert!(
        !all.iter().any(|e| e == "item next"),
        "decoding went on after Stop: {all:?}"
    );
}

// ---------------------------------------------------------------------------
// Cx::lift: a wrapper around an inner service.
// ---------------------------------------------------------------------------

/// The inner service: arms a timer with its own tag type.
struct Inner {
    ev: Sender<String>,
}

impl Service for Inner {
    type Conn = u8;
    type Tag = u16;
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        cx.set_timeout(Duration::from_millis(3), 42);
        let t = cx.set_timeout(Duration::from_millis(3), 43);
        let cleared = cx.clear_timer(t);
        self.ev
            .send(format!("inner cleared own: {cleared}"))
            .unwrap();
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut u8, _: &mut BytesMut) {}
    fn on_timer(&mut self, _: &mut Cx<Self>, _: TimerId, tag: u16) {
        self.ev.send(format!("inner timer {tag}")).unwrap();
    }
}

#[derive(Clone, Debug)]
enum WTag {
    Own,
    Inner(u16),
}

#[allow(dead_code)]
enum WConn {
    Own,
    Inner(u8),
}

/// Forwards the inner service's timers back to it.
struct Wrapper {
    ev: Sender<String>,
    inner: Inner,
}

impl Service for Wrapper {
    type Conn = WConn;
    type Tag = WTag;
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        cx.set_timeout(Duration::from_millis(1), WTag::Own);
        let inner = &mut self.inner;
        cx.lift(WTag::Inner, WConn::Inner, |icx| inner.on_start(icx));
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut WConn, _: &mut BytesMut) {}
    fn on_timer(&mut self, cx: &mut Cx<Self>, id: TimerId, tag: WTag) {
        match tag {
            WTag::Own => self.ev.send("wrapper own".into()).unwrap(),
            WTag::Inner(t) => {
                self.ev.send(format!("wrapper forwards {t}")).unwrap();
                let inner = &mut self.inner;
                cx.lift(WTag::Inner, WConn::Inner, |icx| inner.on_timer(icx, id, t));
            }
        }
    }
}

#[test]
fn lift_forwards_an_inner_timer_to_the_inner_service() {
    let (ev, rx) = mpsc::channel::<String>();
    let (done_tx, done) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        r.add_service(Wrapper {
            ev: ev.clone(),
            inner: Inner { ev },
        });
        done_tx.send(r.run().unwrap()).unwrap();
    });
    assert_eq!(done.recv_timeout(TIMEOUT).unwrap(), Exit::Idle);
    t.join().unwrap();
    let mut evs = rest(&rx);
    evs.sort();
    assert_eq!(
        evs,
        [
            "inner cleared own: true",
            "inner timer 42",
            "wrapper forwards 42",
            "wrapper own"
        ]
    );
}

// ---------------------------------------------------------------------------
// Graceful shutdown.
// ---------------------------------------------------------------------------

/// Says goodbye to its connections at shutdown.
struct Bye {
    name: &'static str,
    ev: Sender<String>,
    conns: HashSet<ConnId>,
}

impl Service for Bye {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, c: ConnId) -> Option<()> {
        self.conns.insert(c);
        self.ev.send(format!("{} connection", self.name)).unwrap();
        Some(())
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), d: &mut BytesMut) {
        d.clear();
    }
    fn on_close(&mut self, _: &mut Cx<Self>, c: ConnId, _: (), _: bool) {
        self.conns.remove(&c);
    }
    fn on_shutdown(&mut self, cx: &mut Cx<Self>) {
        self.ev.send(format!("{} shutdown", self.name)).unwrap();
        for &c in &self.conns {
            let _ = cx.write(c, format!("bye from {}\n", self.name));
        }
    }
}

#[test]
fn shutdown_reaches_every_service_and_exits_graceful() {
    let (ev, rx) = mpsc::channel();
    let (h, (a, b)) = Harness::start(move |r| {
        let mk = |name| Bye {
            name,
            ev: ev.clone(),
            conns: HashSet::new(),
        };
        let a = r.serve(ListenOptions::port(0), mk("one")).unwrap();
        let b = r.serve(ListenOptions::port(0), mk("two")).unwrap();
        (port_of(r, a), port_of(r, b))
    });
    let mut ca = util::connect(a);
    assert_eq!(next(&rx), "one connection");
    let mut cb = util::connect(b);
    assert_eq!(next(&rx), "two connection");
    h.ctl.post(Cmd::Shutdown(Duration::from_secs(10)));
    assert_eq!(util::read_to_end(&mut ca), b"bye from one\n");
    assert_eq!(util::read_to_end(&mut cb), b"bye from two\n");
    drop(ca);
    drop(cb);
    assert_eq!(h.wait_exit(), Exit::Graceful);
    let mut evs = rest(&rx);
    evs.sort();
    assert_eq!(evs, ["one shutdown", "two shutdown"]);
}
