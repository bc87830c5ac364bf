//! A bare mio echo: the floor `netloop serve echo` is measured against
//! (BENCHMARKS.md, "Loop overhead vs a bare poll loop").
//!
//! `cargo run --release --example bare_echo -- PORT` binds 127.0.0.1:PORT
//! (0 = any), prints `listening on ADDR`, and echoes every connection.
//!
//! The algorithm is the least a correct edge-triggered echo needs, and
//! nothing more: one `Poll`, a `Slab` of `TcpStream`s; on a readable edge,
//! read into one shared 64 KiB buffer until `WouldBlock` and write each read
//! straight back; whatever the socket does not take is kept in that
//! connection's `Vec` and written on the next writable edge (reading from the
//! connection stops while it holds any, so a client that does not read
//! cannot grow it past one buffer). No metrics, no timers, no ready list, no
//! write queue, no shutdown: Ctrl-C ends it. It uses only the crate's own
//! dependencies (mio, slab).

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

/// Token of the listener; connections use their slab index.
const LISTENER: Token = Token(usize::MAX);
/// Size of the one read buffer, as netloop's scratch buffer.
const BUF: usize = 64 * 1024;
/// Events taken per `poll`, as netloop's default.
const EVENTS: usize = 1024;

struct Conn {
    sock: TcpStream,
    /// Echo bytes the socket did not take yet.
    unsent: Vec<u8>,
}

/// Write `data` (after any older unsent bytes); false when the peer is gone.
fn send(c: &mut Conn, data: &[u8]) -> bool {
    let mut off = 0;
    if c.unsent.is_empty() {
        while off < data.len() {
            match c.sock.write(&data[off..]) {
                Ok(0) => return false,
                Ok(n) => off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
    c.unsent.extend_from_slice(&data[off..]);
    true
}

/// Flush the unsent rest; false when the peer is gone.
fn flush(c: &mut Conn) -> bool {
    while !c.unsent.is_empty() {
        match c.sock.write(&c.unsent) {
            Ok(0) => return false,
            Ok(n) => {
                c.unsent.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Read until `WouldBlock` (edge-triggered), echoing each read; false to close.
fn pump(c: &mut Conn, buf: &mut [u8]) -> bool {
    if !flush(c) {
        return false;
    }
    // Unsent bytes left: stop reading (TCP flow control holds the sender);
    // the writable edge that empties the Vec brings us back here.
    while c.unsent.is_empty() {
        match c.sock.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                if !send(c, &buf[..n]) {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(7000);
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Events::with_capacity(EVENTS);
    let mut buf = vec![0u8; BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            let _ = sock.set_nodelay(true);
                            let entry = conns.vacant_entry();
                            let mut c = Conn {
                                sock,
                                unsent: Vec::new(),
                            };
                            let tok = Token(entry.key());
                            if poll
                                .registry()
                                .register(&mut c.sock, tok, Interest::READABLE | Interest::WRITABLE)
                                .is_ok()
                            {
                                entry.insert(c);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        // EMFILE, ECONNABORTED...: try again on the next edge.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            // A writable edge with nothing unsent needs no work (no read:
            // that would only return WouldBlock).
            let wanted =
                ev.is_readable() || ev.is_read_closed() || ev.is_error() || !c.unsent.is_empty();
            if wanted && !pump(c, &mut buf) {
                let mut c = conns.remove(key);
                let _ = poll.registry().deregister(&mut c.sock);
            }
        }
    }
}
