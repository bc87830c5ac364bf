//! A tokio `current_thread` echo server: the tokio peer of
//! `benches/compare/run.sh`.
//!
//! `cargo run --release --example tokio_echo -- PORT [THREADS]` binds
//! 127.0.0.1:PORT (0 = any), prints `listening on ADDR`, and echoes every
//! connection with
//! the usual tokio pattern: one task per connection, `read` into a buffer,
//! `write_all` it back. The buffer is 64 KiB, allocated when the task starts
//! (what the tokio examples and most servers do; it is why an idle tokio
//! connection costs tens of KB). `TCP_NODELAY` is set, as in the other peers.
//!
//! With THREADS, the runtime is tokio's `multi_thread` scheduler with that
//! many worker threads (the peer of `benches/compare/scaling.sh`); without,
//! `current_thread`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Per-connection read buffer.
const BUF: usize = 64 * 1024;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let threads: Option<usize> = std::env::args().nth(2).and_then(|t| t.parse().ok());
    let rt = match threads {
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_io()
            .build()?,
        None => tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?,
    };
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("tokio echo listening on {}", listener.local_addr()?);
        loop {
            let (mut s, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; BUF];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
