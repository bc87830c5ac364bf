//! Backpressure: `write()` returning `false`, then `drain`.
//!
//! The server writes 64 KiB chunks to a client that does not read yet. The
//! kernel's socket buffers take the first megabytes; then our write queue
//! grows, and at the high-water mark (64 KiB) `write()` returns `false`: the
//! producer must stop (Node's `socket.write() === false`). The bytes are not
//! lost, only queued. When the client reads, the queue empties, and below
//! the low-water mark (32 KiB) `on_drain` fires: the producer may go on.
//! Run: `cargo run --example backpressure`.

use netloop::{Bytes, BytesMut, ConnId, Handler, ListenOptions, Reactor, ServerId};
use std::io::Read;

struct Producer {
    chunk: Bytes,
}

impl Handler for Producer {
    fn on_data(&mut self, _r: &mut Reactor, _c: ConnId, _d: &mut BytesMut) {}
    fn on_connection(&mut self, r: &mut Reactor, server: ServerId, conn: ConnId) {
        r.close_server(server); // one client is all this demo serves
        let mut sent = 0;
        while let Ok(true) = r.write(conn, self.chunk.clone()) {
            sent += self.chunk.len();
        }
        let queued = r.buffer_size(conn);
        println!(
            "write() returned false after {} KiB: {} KiB wait in our queue",
            (sent + self.chunk.len()) / 1024,
            queued / 1024
        );
    }
    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        println!(
            "drain: queue down to {} KiB; ending",
            r.buffer_size(conn) / 1024
        );
        let _ = r.end(conn);
    }
}

fn main() -> std::io::Result<()> {
    let mut r = Reactor::new()?;
    let server = r
        .listen(ListenOptions::default())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let addr = r.server_addr(server).expect("bound");
    let client = std::thread::spawn(move || -> std::io::Result<usize> {
        let mut s = std::net::TcpStream::connect(addr)?;
        std::thread::sleep(std::time::Duration::from_millis(200)); // not reading yet
        let mut all = Vec::new();
        s.read_to_end(&mut all)?;
        Ok(all.len())
    });
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    r.run_with(&mut Producer { chunk })?;
    let got = client.join().expect("client thread")?;
    println!("client read {} KiB in all", got / 1024);
    Ok(())
}
