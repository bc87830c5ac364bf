//! Every server over TLS with our own clients: echo, chat and command
//! through `connect`, `framed`, `heartbeat`, `upload` (sha256), `halfclose`
//! (close_notify as the half-close), the metrics endpoint over HTTPS, and
//! session resumption between two connections of one client.

use crate::common::*;
use crate::util::{Proc, TestLoop};
use netloop::{ConnId, ConnectOptions, Cx, ListenOptions, NetError, Reactor, Service};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::mpsc;

#[test]
fn echo_with_connect() {
    let certs = Certs::new("echo-connect");
    let srv = serve_tls(&certs, "echo", &[]);
    let mut c = Proc::netloop(&[
        "connect",
        &localhost(srv.addr),
        "--ca",
        certs.ca(),
        "--no-reconnect",
    ]);
    c.wait_err("connected");
    c.send("hello over tls\n");
    c.wait_out("hello over tls");
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
}

#[test]
fn chat_between_two_connect_clients() {
    let certs = Certs::new("chat");
    let srv = serve_tls(&certs, "chat", &[]);
    let addr = localhost(srv.addr);
    let args = ["connect", &addr, "--ca", certs.ca(), "--no-reconnect"];
    let mut a = Proc::netloop(&args);
    a.wait_out("Welcome");
    let mut b = Proc::netloop(&args);
    b.wait_out("Welcome");
    a.send("/nick alice\n");
    a.wait_out("alice");
    a.send("secret plans\n");
    b.wait_out("secret plans");
    assert_eq!(a.wait_exit(), Some(0), "{}", a.err_text());
    assert_eq!(b.wait_exit(), Some(0), "{}", b.err_text());
}

#[test]
fn command_with_connect() {
    let certs = Certs::new("command");
    let srv = serve_tls(&certs, "command", &[]);
    let mut c = Proc::netloop(&[
        "connect",
        &localhost(srv.addr),
        "--ca",
        certs.ca(),
        "--no-reconnect",
    ]);
    c.wait_out("Welcome");
    c.send("/list\n");
    c.wait_out("Active connections: 1");
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
}

#[test]
fn framed_client() {
    let certs = Certs::new("framed");
    let srv = serve_tls(&certs, "framed", &[]);
    let mut c = Proc::netloop(&[
        "framed",
        &localhost(srv.addr),
        "--ping-interval",
        "0",
        "--ca",
        certs.ca(),
    ]);
    c.wait_out("\"type\":\"welcome\"");
    c.wait_out("\"type\":\"pong\"");
    c.send("echo through tls\n");
    c.wait_out("\"data\":\"through tls\"");
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
}

#[test]
fn heartbeat_client_measures_rtt() {
    let certs = Certs::new("heartbeat");
    let srv = serve_tls(
        &certs,
        "heartbeat",
        &[
            "--heartbeat-interval",
            "100ms",
            "--status-interval",
            "200ms",
        ],
    );
    let mut c = Proc::netloop(&[
        "heartbeat",
        &localhost(srv.addr),
        "--duration",
        "1200ms",
        "--ca",
        certs.ca(),
    ]);
    c.wait_out("\"type\":\"server_status\"");
    let stats = c.wait_out("stats: ");
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
    assert!(!stats.contains("(0 samples)"), "RTT measured: {stats}");
}

#[test]
fn upload_client_sha256() {
    let certs = Certs::new("upload");
    let store = tmpdir("upload-store");
    let src = tmpdir("upload-src");
    let file = src.join("data.bin");
    let data = crate::util::random_bytes(3 << 20, 17);
    std::fs::write(&file, &data).unwrap();
    let srv = serve_tls(&certs, "upload", &["--upload-dir", store.to_str().unwrap()]);
    let mut c = Proc::netloop(&[
        "upload",
        &localhost(srv.addr),
        file.to_str().unwrap(),
        "--ca",
        certs.ca(),
    ]);
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
    let want = hex(&Sha256::digest(&data));
    assert!(c.out_text().contains(&want), "{}", c.out_text());
    assert_eq!(std::fs::read(store.join("data.bin")).unwrap(), data);
    let _ = std::fs::remove_dir_all(&store);
    let _ = std::fs::remove_dir_all(&src);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn halfclose_scenarios() {
    let certs = Certs::new("halfclose");
    let srv = serve_tls(&certs, "halfclose", &[]);
    for (scenario, want) in [
        ("normal", "received: Echo: How are you?"),
        ("half", "received: Server confirms: closing its write side"),
        ("shutdown", "received: Goodbye!"),
    ] {
        let mut c = Proc::netloop(&[
            "halfclose",
            &localhost(srv.addr),
            scenario,
            "--ca",
            certs.ca(),
        ]);
        assert_eq!(c.wait_exit(), Some(0), "{scenario}: {}", c.err_text());
        let out = c.out_text();
        assert!(out.contains(want), "{scenario}: {out}");
        assert!(out.contains("connection fully closed"), "{scenario}: {out}");
        assert!(!out.contains("(error)"), "{scenario}: {out}");
    }
}

#[test]
fn metrics_over_https() {
    let certs = Certs::new("metrics");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let maddr = format!("127.0.0.1:{port}");
    let _srv = crate::util::Server::start(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--metrics",
        &maddr,
        "--metrics-tls-cert",
        certs.cert(),
        "--metrics-tls-key",
        certs.key(),
    ]);
    // Bound before the service's "listening on" line is printed.
    let addr: std::net::SocketAddr = maddr.parse().unwrap();
    // Two scrapes with one client configuration: the second resumes the
    // first's session, and the counters say so.
    let config = certs.client_config();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let mut s = tls_connect_with(addr, config.clone());
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        s.flush().unwrap();
        let body = String::from_utf8(read_to_close_notify(&mut s).unwrap()).unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        bodies.push(body);
    }
    let value = |body: &str, name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value(&bodies[0], "netloop_tls_handshakes_total"), 1.0);
    assert_eq!(value(&bodies[0], "netloop_tls_resumed_total"), 0.0);
    assert_eq!(value(&bodies[1], "netloop_tls_handshakes_total"), 2.0);
    assert_eq!(value(&bodies[1], "netloop_tls_resumed_total"), 1.0);
}

/// A client service that connects twice with one configuration: the
/// second handshake resumes the first session.
struct Twice {
    tls: netloop::reactor::tls::ClientTls,
    port: u16,
    resumed: mpsc::Sender<Option<bool>>,
    round: u32,
}

impl Twice {
    fn open(&mut self, cx: &mut Cx<'_, Self>) {
        let opts = ConnectOptions {
            tls: Some(self.tls.clone()),
            ..ConnectOptions::default()
        };
        cx.connect("127.0.0.1", self.port, opts, ());
    }
}

impl Service for Twice {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        self.open(cx);
    }
    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut ()) {
        let _ = self.resumed.send(cx.tls_resumed(conn));
        let _ = cx.write(conn, &b"x"[..]);
    }
    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        _: &mut (),
        d: &mut netloop::BytesMut,
    ) {
        // The echo came back: the session tickets, sent right after the
        // handshake, are in.
        d.clear();
        let _ = cx.end(conn);
    }
    fn on_error(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut (), e: &NetError) {
        panic!("client error: {e}");
    }
    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, _: (), _: bool) {
        self.round += 1;
        if self.round < 2 {
            self.open(cx);
        }
    }
}

#[test]
fn second_connection_resumes_the_session() {
    let certs = Certs::new("resume");
    let opts = ListenOptions {
        tls: Some(certs.server_tls()),
        ..ListenOptions::default()
    };
    let srv = TestLoop::start(opts, || netloop::servers::echo::Echo);
    let (tx, rx) = mpsc::channel();
    let mut tls = certs.client_tls();
    tls.server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut r = Reactor::new().unwrap();
    r.add_service(Twice {
        tls,
        port: srv.addr.port(),
        resumed: tx,
        round: 0,
    });
    r.run().unwrap();
    let got: Vec<Option<bool>> = rx.try_iter().collect();
    assert_eq!(got, vec![Some(false), Some(true)]);
}
