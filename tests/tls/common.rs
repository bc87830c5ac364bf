//! What the TLS tests share: certificates in a temporary directory, a
//! blocking rustls client, TLS servers (in-process and the binary), and
//! the check for external tools.
#![allow(dead_code)]

use crate::util::{Server, TIMEOUT};
use netloop::reactor::tls::config::{client_config, server_config, Trust};
use netloop::reactor::tls::{ClientTls, ServerTls};
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

static DIRS: AtomicU32 = AtomicU32::new(0);

/// A fresh temporary directory for one test.
pub fn tmpdir(tag: &str) -> PathBuf {
    let n = DIRS.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("netloop-tls-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A CA and a server certificate signed by it, as files.
pub struct Certs {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    /// Valid for localhost and 127.0.0.1, written by `netloop cert`.
    pub fn new(tag: &str) -> Certs {
        let dir = tmpdir(tag);
        let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
            .args(["cert", "--out"])
            .arg(&dir)
            .output()
            .expect("run netloop cert");
        assert!(out.status.success(), "netloop cert: {out:?}");
        Certs::at(dir)
    }

    fn at(dir: PathBuf) -> Certs {
        Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            dir,
        }
    }

    /// Generated in-process with the given names and validity.
    pub fn generated(tag: &str, hosts: &[&str], from: SystemTime, until: SystemTime) -> Certs {
        let dir = tmpdir(tag);
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let g = netloop::cli::tls_args::generate_valid(&hosts, from, until).unwrap();
        std::fs::write(dir.join("ca.pem"), &g.ca_pem).unwrap();
        std::fs::write(
            dir.join("server.pem"),
            format!("{}{}", g.server_pem, g.ca_pem),
        )
        .unwrap();
        std::fs::write(dir.join("server.key"), &g.server_key_pem).unwrap();
        Certs::at(dir)
    }

    pub fn ca(&self) -> &str {
        self.ca.to_str().unwrap()
    }
    pub fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }
    pub fn key(&self) -> &str {
        self.key.to_str().unwrap()
    }

    /// Server TLS for in-process loops.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls::new(server_config(&self.cert, &self.key, None).unwrap())
    }

    /// A rustls client configuration trusting this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config(&Trust::CaFile(self.ca.clone()), None).unwrap()
    }

    /// Client TLS for in-process loops, for "localhost".
    pub fn client_tls(&self) -> ClientTls {
        ClientTls::new(
            self.client_config(),
            ServerName::try_from("localhost").unwrap(),
        )
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking TLS client stream.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connect to `addr` with TLS, trusting `certs`' CA; the handshake is
/// completed before returning.
pub fn tls_connect(addr: SocketAddr, certs: &Certs) -> TlsStream {
    tls_connect_with(addr, certs.client_config())
}

/// [`tls_connect`] with a given configuration (connections sharing one
/// resume each other's sessions).
pub fn tls_connect_with(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> TlsStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
    let conn =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("handshake");
    }
    s
}

/// Read until the peer's close_notify; `Err` if TCP ends without it.
pub fn read_to_close_notify(s: &mut TlsStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e),
        }
    }
}

/// Read one line (up to and including '\n').
pub fn read_line(s: &mut TlsStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.last() != Some(&b'\n') {
        let n = s.read(&mut b).expect("read line");
        assert!(n > 0, "EOF after {:?}", String::from_utf8_lossy(&out));
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

/// Send our close_notify (our end of the stream), then flush it.
pub fn send_close_notify(s: &mut TlsStream) {
    s.conn.send_close_notify();
    while s.conn.wants_write() {
        s.conn.write_tls(&mut s.sock).unwrap();
    }
    s.flush().unwrap();
}

/// `netloop serve APP --port 0 --tls-cert .. --tls-key .. EXTRA...`.
pub fn serve_tls(certs: &Certs, app: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve",
        app,
        "--port",
        "0",
        "--tls-cert",
        certs.cert(),
        "--tls-key",
        certs.key(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Is `tool` runnable? Prints why the calling test skips if not.
pub fn have(tool: &str, test: &str) -> bool {
    let ok = Command::new(tool)
        .arg(if tool == "openssl" {
            "version"
        } else {
            "--version"
        })
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP {test}: `{tool}` is not installed");
    }
    ok
}

/// Address as `HOST:PORT` for the clients, with "localhost" so the
/// certificate's name matches.
pub fn localhost(addr: SocketAddr) -> String {
    format!("localhost:{}", addr.port())
}

/// Bounded wait for a child to exit.
pub fn wait_child(child: &mut std::process::Child) -> Option<i32> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        assert!(std::time::Instant::now() < deadline, "child did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Write `text` to `path`.
pub fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Send `data` and read the echo in 64 KiB steps over one TLS stream.
pub fn echo_in_steps(s: &mut TlsStream, data: &[u8]) -> Vec<u8> {
    let mut back = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 64 * 1024];
    for chunk in data.chunks(64 * 1024) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
        let want = back.len() + chunk.len();
        while back.len() < want {
            let n = s.read(&mut buf).expect("read echo");
            assert!(n > 0, "EOF in the echo");
            back.extend_from_slice(&buf[..n]);
        }
    }
    back
}
