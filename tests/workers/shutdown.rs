//! SIGTERM with clients connecting all the time: every connection whose
//! handshake completed gets its data echoed or a clean FIN, none a reset,
//! and the process exits 0 within the grace period: with one worker and
//! with several.

use super::util::{Server, TIMEOUT};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Connections each run makes.
const CONNECTIONS: usize = 200;
/// Client threads connecting in a loop.
const THREADS: usize = 16;

/// How one connection ended, as its client saw it.
#[derive(Debug, Default)]
struct Outcomes {
    echoed: usize,
    fin: usize,
    refused: usize,
    reset: Vec<String>,
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// One client: connect, send a line, read until EOF. The echo of the line
/// then EOF, or EOF with a prefix of it (the server was draining), are
/// clean; a reset anywhere is not.
fn one(addr: SocketAddr, n: usize, out: &Mutex<Outcomes>) {
    let mut s = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            out.lock().unwrap().refused += 1;
            return;
        }
        Err(e) => panic!("connect: {e}"),
    };
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let msg = format!("hello {n}\n");
    if let Err(e) = s.write_all(msg.as_bytes()) {
        if is_reset(&e) {
            out.lock().unwrap().reset.push(format!("write: {e}"));
            return;
        }
        panic!("write: {e}");
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                got.extend_from_slice(&buf[..k]);
                if got.len() >= msg.len() {
                    // Echoed: close our side and read to the server's FIN.
                    let _ = s.shutdown(std::net::Shutdown::Write);
                }
            }
            Err(e) if is_reset(&e) => {
                out.lock().unwrap().reset.push(format!("read: {e}"));
                return;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    assert!(
        msg.as_bytes().starts_with(&got),
        "connection {n} got {got:?}, not a prefix of its line"
    );
    let mut o = out.lock().unwrap();
    if got.len() == msg.len() {
        o.echoed += 1;
    } else {
        o.fin += 1;
    }
}

fn sigterm_while_clients_connect(workers: usize) {
    let w = workers.to_string();
    let mut srv = Server::start(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--workers",
        &w,
        "--grace",
        "10s",
    ]);
    let addr = srv.addr;
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..THREADS)
        .map(|_| {
            let (out, next) = (out.clone(), next.clone());
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= CONNECTIONS {
                    return;
                }
                one(addr, n, &out);
            })
        })
        .collect();
    // The signal lands while clients are mid-stream: after a quarter of
    // the connections were handed out.
    while next.load(Ordering::SeqCst) < CONNECTIONS / 4 {
        assert!(started.elapsed() < TIMEOUT, "clients made no progress");
        std::thread::yield_now();
    }
    srv.signal("TERM");
    for c in clients {
        c.join().expect("client thread");
    }
    let code = srv.wait_exit();
    let o = out.lock().unwrap();
    eprintln!("{workers} worker(s): {o:?}");
    assert!(o.reset.is_empty(), "connections were reset: {:?}", o.reset);
    assert!(o.echoed > 0, "no connection was served before the signal");
    assert_eq!(o.echoed + o.fin + o.refused, CONNECTIONS);
    assert_eq!(code, Some(0), "exit status after SIGTERM");
}

#[test]
fn sigterm_with_one_worker_resets_no_established_connection() {
    sigterm_while_clients_connect(1);
}

#[test]
fn sigterm_with_three_workers_resets_no_established_connection() {
    sigterm_while_clients_connect(3);
}
