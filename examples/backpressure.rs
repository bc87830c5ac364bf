//! Backpressure: `write()` returning `false`, then `drain`.
//!
//! The server writes 64 KiB chunks to a client that does not read yet. The
//! kernel's socket buffers take the first megabytes; then our write queue
//! grows, and at the high-water mark (64 KiB) `write()` returns `false`: the
//! producer must stop (Node's `socket.write() === false`). The bytes are not
//! lost, only queued. When the client reads, the queue empties, and below
//! the low-water mark (32 KiB) `on_drain` fires: the producer may go on.
//! Run: `cargo run --example backpressure`.

use netloop::{Bytes, BytesMut, ConnId, Cx, ListenOptions, Reactor, ServerId, Service};
use std::io::Read;

struct Producer {
    chunk: Bytes,
}

impl Service for Producer {
    type Conn = (); // no per-connection state
    type Tag = (); // no timers
    type Message = (); // no messages from other threads
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_connection(&mut self, cx: &mut Cx<Self>, server: ServerId, conn: ConnId) -> Option<()> {
        cx.close_server(server); // one client is all this demo serves
        let mut sent = 0;
        while let Ok(true) = cx.write(conn, self.chunk.clone()) {
            sent += self.chunk.len();
        }
        let queued = cx.buffer_size(conn);
        println!(
            "write() returned false after {} KiB: {} KiB wait in our queue",
            (sent + self.chunk.len()) / 1024,
            queued / 1024
        );
        Some(())
    }
    fn on_drain(&mut self, cx: &mut Cx<Self>, conn: ConnId, _: &mut ()) {
        println!(
            "drain: queue down to {} KiB; ending",
            cx.buffer_size(conn) / 1024
        );
        let _ = cx.end(conn);
    }
}

fn main() -> std::io::Result<()> {
    let mut r = Reactor::new()?;
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let server = r
        .serve(ListenOptions::default(), Producer { chunk })
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let addr = r.server_addr(server).expect("bound");
    let client = std::thread::spawn(move || -> std::io::Result<usize> {
        let mut s = std::net::TcpStream::connect(addr)?;
        std::thread::sleep(std::time::Duration::from_millis(200)); // not reading yet
        let mut all = Vec::new();
        s.read_to_end(&mut all)?;
        Ok(all.len())
    });
    r.run()?;
    let got = client.join().expect("client thread")?;
    println!("client read {} KiB in all", got / 1024);
    Ok(())
}
