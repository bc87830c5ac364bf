//! Echo server, Node's `socket.pipe(socket)`: `pipe_write` pauses reading a
//! peer whose write queue is full until it drains, so a client that sends
//! without reading is slowed by TCP flow control, not kept in our memory.
//! Run: `cargo run --example echo [PORT]` (default 7000); Ctrl-C to stop.

use netloop::{BytesMut, ConnId, Cx, ListenOptions, Reactor, ServerId, Service};
use std::{net::SocketAddr, time::Duration};

struct Echo;

impl Service for Echo {
    type Conn = (); // no per-connection state
    type Tag = (); // no timers
    type Message = (); // no messages from other threads
    fn on_listening(&mut self, _: &mut Cx<Self>, _: ServerId, addr: SocketAddr) {
        println!("listening on {addr}");
    }
    fn on_connection(&mut self, cx: &mut Cx<Self>, _: ServerId, c: ConnId) -> Option<()> {
        println!("{c} connected from {:?}", cx.peer_addr(c));
        Some(())
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, _: &mut (), data: &mut BytesMut) {
        let _ = cx.pipe_write_from(c, c, data); // pauses `c` until it drains
    }
    fn on_close(&mut self, _: &mut Cx<Self>, c: ConnId, _: (), had_error: bool) {
        println!("{c} closed (had_error: {had_error})");
    }
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok());
    let mut r = Reactor::new()?;
    r.handle_signals(Duration::from_secs(2))?;
    let opts = ListenOptions::port(port.unwrap_or(7000));
    r.serve(opts, Echo).map_err(std::io::Error::other)?;
    println!("loop exited: {:?}", r.run()?);
    Ok(())
}
