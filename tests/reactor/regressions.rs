//! Reproductions of known traps, each citing the issue it guards against.

use crate::util;
use netloop::{
    BytesMut, ConnId, ConnectOptions, Cx, ListenOptions, Reactor, ServerId, Service, WriteError,
};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use util::*;

/// mio #219: a connection id (token) of a closed connection must not reach
/// the connection that reuses its slab slot.
#[test]
fn stale_id_after_slot_reuse_does_not_reach_the_new_connection() {
    #[derive(Default)]
    struct Ids {
        all: Vec<ConnId>,
        closed: usize,
        stale_write: Option<Result<bool, WriteError>>,
    }
    struct H(Arc<Mutex<Ids>>);
    impl Service for H {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
            let mut ids = self.0.lock().unwrap();
            if let Some(&old) = ids.all.first() {
                // The first connection is closed by now; its slot is reused.
                ids.stale_write = Some(r.write(old, &b"stale\n"[..]));
                r.destroy(old);
                r.write(c, &b"fresh\n"[..]).unwrap();
            }
            ids.all.push(c);
            Some(())
        }
        fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
            let _ = r.write(c, d.split().freeze());
        }
        fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), _e: bool) {
            self.0.lock().unwrap().closed += 1;
        }
    }
    let ids: Arc<Mutex<Ids>> = Default::default();
    let i2 = ids.clone();
    let lp = TestLoop::start(ListenOptions::default(), move || H(i2));
    let mut a = connect(lp.addr);
    a.write_all(b"a").unwrap();
    assert_eq!(read_exact(&mut a, 1), b"a");
    drop(a);
    // A second connection only once the first is fully gone.
    wait_until("first closed", || ids.lock().unwrap().closed == 1);
    let mut b = connect(lp.addr);
    assert_eq!(read_exact(&mut b, 6), b"fresh\n");
    let ids = ids.lock().unwrap();
    assert_eq!(ids.all.len(), 2);
    assert_eq!(
        ids.all[0].to_u64() & 0xFFFF_FFFF,
        ids.all[1].to_u64() & 0xFFFF_FFFF,
        "slot reused"
    );
    assert_eq!(ids.stale_write, Some(Err(WriteError::NotFound)));
}

/// A connect that never completes fails with ETIMEDOUT after its timeout,
/// instead of hanging (the reconnecting clients depend on it).
#[test]
fn connect_timeout_gives_etimedout() {
    use socket2::{Domain, Socket, Type};
    // A listener whose socket filter drops every packet (a one-instruction
    // classic BPF program, `ret #0`) never answers a SYN: the connect can
    // only time out. (A full accept queue was used before; under load the
    // kernel sometimes let a SYN through.)
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    l.listen(16).unwrap();
    const BPF_RET_K: u16 = 0x06;
    l.attach_filter(&[socket2::SockFilter::new(BPF_RET_K, 0, 0, 0)])
        .unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    struct C(Arc<Mutex<Vec<String>>>);
    impl Service for C {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_data(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), _d: &mut BytesMut) {}
        fn on_connect(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut ()) {
            self.0.lock().unwrap().push("connect".into());
        }
        fn on_error(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), e: &netloop::NetError) {
            self.0.lock().unwrap().push(e.code.to_string());
        }
        fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), had_error: bool) {
            self.0.lock().unwrap().push(format!("close:{had_error}"));
        }
    }
    let mut r = Reactor::new().unwrap();
    let opts = ConnectOptions {
        timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let log: Arc<Mutex<Vec<String>>> = Default::default();
    r.connect_with("127.0.0.1", addr.port(), opts, C(log.clone()), ());
    let t0 = std::time::Instant::now();
    r.run().unwrap();
    let c = log.lock().unwrap().clone();
    assert_eq!(c, ["ETIMEDOUT", "close:true"]);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    drop(l);
}

/// A closed server emits `close` once its last connection has gone (Node's
/// `server.close()`), and stops accepting at once.
#[test]
fn server_close_waits_for_its_last_connection() {
    struct H {
        log: Arc<Mutex<Vec<String>>>,
    }
    impl Service for H {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(&mut self, r: &mut Cx<Self>, s: ServerId, _c: ConnId) -> Option<()> {
            r.close_server(s);
            self.log
                .lock()
                .unwrap()
                .push("connection; server closed".into());
            Some(())
        }
        fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
            let _ = r.write(c, d.split().freeze());
        }
        fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), _e: bool) {
            self.log.lock().unwrap().push("conn close".into());
        }
        fn on_server_close(&mut self, _r: &mut Cx<Self>, _s: ServerId) {
            self.log.lock().unwrap().push("server close".into());
        }
    }
    let log: Arc<Mutex<Vec<String>>> = Default::default();
    let l2 = log.clone();
    let lp = TestLoop::start(ListenOptions::default(), move || H { log: l2 });
    let mut a = connect(lp.addr);
    a.write_all(b"x").unwrap();
    assert_eq!(read_exact(&mut a, 1), b"x");
    // No longer accepting.
    assert!(std::net::TcpStream::connect(lp.addr).is_err());
    assert_eq!(*log.lock().unwrap(), ["connection; server closed"]);
    drop(a);
    wait_until("server close", || log.lock().unwrap().len() == 3);
    assert_eq!(
        *log.lock().unwrap(),
        ["connection; server closed", "conn close", "server close"]
    );
}

/// Found by `tests/servers/echo/hostile.rs` (silent peers reaped by the idle timeout): the echo
/// server ended an idle connection (FIN) on its first `timeout` and meant to destroy it on a
/// second one, but the reactor's idle timeout is one-shot like Node's (re-armed only by
/// activity), and sending FIN is no activity. A peer that never answered the FIN (a silent
/// or vanished peer) was kept open forever, one descriptor each.
#[test]
fn echo_destroys_an_idle_peer_that_never_answers_its_fin() {
    use netloop::servers::echo::Echo;
    use netloop::{Cx, Service, SocketOptions};
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(Echo, Arc<AtomicUsize>);
    impl Service for Counting {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(
            &mut self,
            _cx: &mut Cx<'_, Self>,
            _s: ServerId,
            _c: ConnId,
        ) -> Option<()> {
            Some(())
        }
        fn on_data(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, st: &mut (), d: &mut BytesMut) {
            let echo = &mut self.0;
            cx.lift::<Echo, _>(|t| t, |s| s, |cx| echo.on_data(cx, c, st, d))
        }
        fn on_drain(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, st: &mut ()) {
            let echo = &mut self.0;
            cx.lift::<Echo, _>(|t| t, |s| s, |cx| echo.on_drain(cx, c, st))
        }
        fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, st: &mut ()) {
            let echo = &mut self.0;
            cx.lift::<Echo, _>(|t| t, |s| s, |cx| echo.on_timeout(cx, c, st))
        }
        fn on_close(&mut self, _cx: &mut Cx<'_, Self>, _c: ConnId, _st: (), _e: bool) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let closed = Arc::new(AtomicUsize::new(0));
    let c2 = closed.clone();
    let opts = ListenOptions {
        socket: SocketOptions {
            idle_timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        },
        ..Default::default()
    };
    let lp = TestLoop::start_service(opts, move || Counting(Echo, c2));
    let mut silent = connect(lp.addr);
    // First timeout: a clean FIN.
    assert_eq!(silent.read(&mut [0u8; 1]).unwrap(), 0, "FIN after idle");
    // We neither answer nor close: one more timeout later the server lets go.
    wait_until("idle peer destroyed", || closed.load(Ordering::SeqCst) == 1);
    drop(silent);
}

/// Found while fuzzing `metrics_http` (the target ran at ~270 execs/s): the endpoint
/// re-parsed the whole buffer after every read, so a head trickled in a byte at a time cost
/// up to 8 KiB scans of up to 8 KiB each per connection. `RequestScanner` now looks only at
/// the bytes not scanned before (its equivalence with `parse_request` for every split is a
/// unit test in `src/metrics/http.rs` and a check of the fuzz target). Here the real endpoint
/// gets a head of almost 8 KiB one byte per write: it must still be answered, with the right
/// status, and a head that never ends within 8 KiB still gets 431.
#[test]
fn metrics_answers_a_head_trickled_byte_by_byte() {
    use std::io::Read;
    let srv = Server::start(&["serve", "echo", "--port", "0", "--metrics", "127.0.0.1:0"]);
    let line = srv.wait_log("metrics endpoint at http://");
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .expect("metrics address in the log");
    let trickle = |head: &[u8]| -> String {
        let mut s = connect(addr);
        s.set_nodelay(true).unwrap();
        for b in head {
            if s.write_all(std::slice::from_ref(b)).is_err() {
                break; // answered and closed before the last byte
            }
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while head.len() < 8 * 1024 - 40 {
        head.extend_from_slice(b"X-Pad: 0123456789\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let out = trickle(&head);
    assert!(out.starts_with("HTTP/1.1 200 "), "{out:.80}");
    assert!(out.contains("netloop_"), "a metrics body");

    let mut endless = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while endless.len() < 8 * 1024 + 64 {
        endless.extend_from_slice(b"X-Pad: 0123456789\r\n");
    }
    let out = trickle(&endless);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out:.80}");
}
