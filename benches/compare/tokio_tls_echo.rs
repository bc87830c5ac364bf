//! A tokio `current_thread` echo over tokio-rustls: the TLS peer of
//! `netloop serve echo --tls-cert .. --tls-key ..` in
//! `benches/compare/run.sh` (cells `tls*`).
//!
//! `tokio_tls_echo PORT CERT KEY` binds 127.0.0.1:PORT, prints `listening
//! on ADDR`, and echoes every connection as `examples/tokio_echo.rs` does
//! (one task, a 64 KiB buffer, `read` then `write_all`), through a
//! `TlsAcceptor`. Same rustls configuration as netloop's
//! (`netloop::reactor::tls::config::server_config`: ring provider, TLS 1.3
//! and 1.2, tickets), so both negotiate the same suite with the same
//! client. At EOF it sends close_notify (`shutdown`), as netloop's `end()`.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Per-connection read buffer.
const BUF: usize = 64 * 1024;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let (Some(cert), Some(key)) = (args.next(), args.next()) else {
        eprintln!("usage: tokio_tls_echo PORT CERT KEY");
        std::process::exit(2);
    };
    let config = netloop::reactor::tls::config::server_config(
        std::path::Path::new(&cert),
        std::path::Path::new(&key),
        None,
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let acceptor = TlsAcceptor::from(Arc::clone(&config));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("tokio-rustls echo listening on {}", listener.local_addr()?);
        loop {
            let (s, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = vec![0u8; BUF];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => {
                            let _ = s.shutdown().await;
                            return;
                        }
                        Err(_) => return,
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
