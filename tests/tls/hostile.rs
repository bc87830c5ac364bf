//! Hostile peers on a TLS server: plain text and garbage instead of a
//! ClientHello, a handshake that stalls (closed at the handshake timeout),
//! a stream truncated by a FIN without close_notify (an error, not an
//! end), a client that never reads (evicted at the hard cap, memory
//! bounded), and 200 handshakes at once.

use crate::common::*;
use crate::util::{TestLoop, TIMEOUT};
use netloop::reactor::tls::ServerTls;
use netloop::{
    ConnId, ConnectOptions, Cx, ErrorCode, ListenOptions, NetError, Reactor, ServerId, Service,
    SocketOptions,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn tls_opts(tls: ServerTls) -> ListenOptions {
    ListenOptions {
        tls: Some(tls),
        ..ListenOptions::default()
    }
}

/// Read until EOF or reset; true if the server closed within the timeout.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an alert
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("not closed: {e}"),
        }
    }
}

fn still_serves(addr: std::net::SocketAddr, certs: &Certs) {
    let mut s = tls_connect(addr, certs);
    assert_eq!(echo_in_steps(&mut s, b"still here"), b"still here");
}

#[test]
fn plain_text_client_gets_a_clean_close() {
    let certs = Certs::new("plain");
    let srv = TestLoop::start(tls_opts(certs.server_tls()), || {
        netloop::servers::echo::Echo
    });
    for _ in 0..3 {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(closed_by_server(&mut s));
    }
    still_serves(srv.addr, &certs);
}

#[test]
fn garbage_instead_of_client_hello() {
    let certs = Certs::new("garbage");
    let srv = TestLoop::start(tls_opts(certs.server_tls()), || {
        netloop::servers::echo::Echo
    });
    let mut junk = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    junk.extend(crate::util::random_bytes(64, 3));
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(&junk).unwrap();
    assert!(closed_by_server(&mut s));
    // Pure random bytes too.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(&crate::util::random_bytes(100_000, 4))
        .unwrap_or(());
    assert!(closed_by_server(&mut s));
    still_serves(srv.addr, &certs);
}

/// The first bytes of a real ClientHello, the rest never sent.
fn partial_client_hello(certs: &Certs) -> Vec<u8> {
    let mut c = rustls::ClientConnection::new(
        certs.client_config(),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    c.write_tls(&mut hello).unwrap();
    hello.truncate(hello.len() / 2);
    hello
}

#[test]
fn stalled_handshake_is_closed_at_the_timeout() {
    let certs = Certs::new("stall");
    let mut tls = certs.server_tls();
    tls.handshake_timeout = Duration::from_millis(300);
    let srv = TestLoop::start(tls_opts(tls), || netloop::servers::echo::Echo);
    let start = Instant::now();
    let mut idle = TcpStream::connect(srv.addr).unwrap();
    let mut half = TcpStream::connect(srv.addr).unwrap();
    half.write_all(&partial_client_hello(&certs)).unwrap();
    assert!(closed_by_server(&mut half));
    assert!(closed_by_server(&mut idle));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(290),
        "closed before the timeout: {took:?}"
    );
    still_serves(srv.addr, &certs);
}

/// Echoes, and reports every `end` and `error` it sees.
struct Recorder(mpsc::Sender<Result<(), ErrorCode>>);

impl Service for Recorder {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<'_, Self>, _: ServerId, _: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, _: &mut (), d: &mut netloop::BytesMut) {
        let _ = cx.write_from(c, d);
    }
    fn on_end(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut ()) {
        let _ = self.0.send(Ok(()));
    }
    fn on_error(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut (), e: &NetError) {
        let _ = self.0.send(Err(e.code));
    }
}

#[test]
fn fin_without_close_notify_is_an_error() {
    let certs = Certs::new("truncate");
    let (tx, rx) = mpsc::channel();
    let srv = TestLoop::start(tls_opts(certs.server_tls()), move || Recorder(tx));
    // Clean: close_notify, then the server's own close_notify comes back.
    let mut s = tls_connect(srv.addr, &certs);
    assert_eq!(echo_in_steps(&mut s, b"abc"), b"abc");
    send_close_notify(&mut s);
    assert_eq!(read_to_close_notify(&mut s).unwrap(), b"");
    assert_eq!(rx.recv_timeout(TIMEOUT).unwrap(), Ok(()));
    // Truncated: TCP FIN without close_notify.
    let mut s = tls_connect(srv.addr, &certs);
    assert_eq!(echo_in_steps(&mut s, b"abc"), b"abc");
    s.sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        rx.recv_timeout(TIMEOUT).unwrap(),
        Err(ErrorCode::TlsTruncated)
    );
}

/// Writes a chunk every millisecond, ignoring backpressure, and reports
/// the largest queue it saw and the error that ended it.
struct Flood {
    report: mpsc::Sender<(usize, ErrorCode)>,
    peak: usize,
    conn: Option<ConnId>,
}

const FLOOD_CHUNK: usize = 256 * 1024;
const FLOOD_CAP: usize = 1 << 20;

impl Service for Flood {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, cx: &mut Cx<'_, Self>, _: ServerId, c: ConnId) -> Option<()> {
        self.conn = Some(c);
        cx.set_interval(Duration::from_millis(1), ());
        Some(())
    }
    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: netloop::TimerId, _: ()) {
        let Some(c) = self.conn else { return };
        let _ = cx.write(c, vec![b'x'; FLOOD_CHUNK]);
        self.peak = self.peak.max(cx.buffer_size(c));
    }
    fn on_data(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut (), d: &mut netloop::BytesMut) {
        d.clear();
    }
    fn on_error(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, _: &mut (), e: &NetError) {
        let _ = self.report.send((self.peak, e.code));
        cx.stop();
    }
}

#[test]
fn client_that_never_reads_is_evicted_with_memory_bounded() {
    let certs = Certs::new("noread");
    let (tx, rx) = mpsc::channel();
    let opts = ListenOptions {
        tls: Some(certs.server_tls()),
        socket: SocketOptions {
            max_write_buffer: FLOOD_CAP,
            ..SocketOptions::default()
        },
        ..ListenOptions::default()
    };
    let srv = TestLoop::start(opts, move || Flood {
        report: tx,
        peak: 0,
        conn: None,
    });
    let s = tls_connect(srv.addr, &certs);
    let (peak, code) = rx.recv_timeout(TIMEOUT).expect("evicted");
    assert_eq!(code, ErrorCode::SlowConsumer);
    // The cap, plus the one write that crossed it, plus TLS framing.
    assert!(
        peak <= FLOOD_CAP + FLOOD_CHUNK + FLOOD_CHUNK / 50,
        "queue peaked at {peak}"
    );
    drop(s);
}

/// Opens `n` TLS connections at once; each sends a line and ends once it
/// is echoed. Reports how many completed.
struct Swarm {
    tls: netloop::reactor::tls::ClientTls,
    port: u16,
    n: usize,
    done: usize,
    failed: usize,
    out: mpsc::Sender<(usize, usize)>,
}

impl Service for Swarm {
    type Conn = Vec<u8>;
    type Tag = ();
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        for _ in 0..self.n {
            let opts = ConnectOptions {
                tls: Some(self.tls.clone()),
                ..ConnectOptions::default()
            };
            cx.connect("127.0.0.1", self.port, opts, Vec::new());
        }
    }
    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, _: &mut Vec<u8>) {
        let _ = cx.write(c, &b"ping\n"[..]);
    }
    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        c: ConnId,
        got: &mut Vec<u8>,
        d: &mut netloop::BytesMut,
    ) {
        got.extend_from_slice(d);
        d.clear();
        if got == b"ping\n" {
            self.done += 1;
            let _ = cx.end(c);
        }
    }
    fn on_error(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut Vec<u8>, e: &NetError) {
        eprintln!("swarm: {e}");
        self.failed += 1;
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, _: Vec<u8>, _: bool) {
        self.n -= 1;
        if self.n == 0 {
            let _ = self.out.send((self.done, self.failed));
            cx.stop();
        }
    }
}

#[test]
fn two_hundred_handshakes_at_once() {
    let certs = Certs::new("swarm");
    let srv = TestLoop::start(tls_opts(certs.server_tls()), || {
        netloop::servers::echo::Echo
    });
    let mut tls = certs.client_tls();
    tls.server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let (tx, rx) = mpsc::channel();
    let port = srv.addr.port();
    let client = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        r.add_service(Swarm {
            tls,
            port,
            n: 200,
            done: 0,
            failed: 0,
            out: tx,
        });
        r.run().unwrap();
    });
    let (done, failed) = rx.recv_timeout(TIMEOUT * 2).expect("swarm finished");
    client.join().unwrap();
    assert_eq!((done, failed), (200, 0));
}

/// The plain-text clients are logged at debug level at the 1st, 2nd, 4th,
/// 8th... occurrence only: a scanner cannot flood the log.
#[test]
fn plain_text_clients_are_logged_rate_limited() {
    let certs = Certs::new("plain-log");
    let srv = crate::util::Server::start_shell(
        "RUST_LOG=netloop::reactor=debug,info",
        &[
            "serve",
            "echo",
            "--port",
            "0",
            "--tls-cert",
            certs.cert(),
            "--tls-key",
            certs.key(),
        ],
    );
    for _ in 0..5 {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"hello?\n").unwrap();
        assert!(closed_by_server(&mut s));
    }
    // And it still serves TLS clients.
    still_serves(srv.addr, &certs);
    let mut counts = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while counts.last() != Some(&4) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = srv.log.recv_timeout(left).expect("log line");
        if let Some(pos) = line.find("not a TLS client, closed (") {
            let rest = &line[pos + "not a TLS client, closed (".len()..];
            let n: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            counts.push(n);
        }
    }
    assert_eq!(counts, vec![1, 2, 4]);
}

/// `--tls-handshake-timeout` on the binary: an idle TCP connection that
/// never starts its handshake is closed at that timeout.
#[test]
fn handshake_timeout_option_of_the_binary() {
    let certs = Certs::new("hs-timeout-cli");
    let srv = crate::util::Server::start(&[
        "serve",
        "chat",
        "--port",
        "0",
        "--tls-cert",
        certs.cert(),
        "--tls-key",
        certs.key(),
        "--tls-handshake-timeout",
        "200ms",
    ]);
    let start = Instant::now();
    let mut idle = TcpStream::connect(srv.addr).unwrap();
    assert!(closed_by_server(&mut idle));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(190), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
