//! The echo server, written only against netloop's public API.
//!
//! Every byte read is written back. `write()` returns `false` once the
//! connection's write queue reaches the high-water mark: we then `pause()`
//! reading from that peer, and `resume()` on `drain`. That is Node's
//! `socket.pipe(socket)`, and it is what keeps a client that sends without
//! reading from growing our memory: TCP flow control slows it down instead.
//!
//! Run: `cargo run --example echo [PORT]` (default 7000), then
//! `nc 127.0.0.1 7000`. Ctrl-C shuts down gracefully.

use netloop::{BytesMut, ConnId, Handler, ListenOptions, Reactor, ServerId};
use std::net::SocketAddr;
use std::time::Duration;

struct Echo;

impl Handler for Echo {
    fn on_listening(&mut self, _r: &mut Reactor, _s: ServerId, addr: SocketAddr) {
        println!("listening on {addr}");
    }
    fn on_connection(&mut self, r: &mut Reactor, _s: ServerId, conn: ConnId) {
        println!("{conn} connected from {:?}", r.peer_addr(conn));
    }
    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        // Take everything read so far; the queue shares its memory, no copy.
        if r.write(conn, data.split().freeze()) == Ok(false) {
            r.pause(conn); // queue full: stop reading until 'drain'
        }
    }
    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        r.resume(conn);
    }
    fn on_close(&mut self, _r: &mut Reactor, conn: ConnId, had_error: bool) {
        println!("{conn} closed (had_error: {had_error})");
    }
}

fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(7000);
    let mut r = Reactor::new()?;
    r.handle_signals(Duration::from_secs(2))?;
    let opts = ListenOptions {
        port,
        ..Default::default()
    };
    r.listen(opts)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let exit = r.run(&mut Echo)?;
    println!("loop exited: {exit:?}");
    Ok(())
}
