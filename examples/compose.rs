//! Three services in one loop, each with its own handler and state: the
//! echo server, the chat server and the metrics endpoint, on three ports.
//! No forwarder: a connection's events go to the service that accepted it,
//! and `/metrics` counts the loop all three share.
//!
//! Run: `cargo run --example compose -- ECHO_PORT CHAT_PORT METRICS_PORT`
//! (0 picks a free port), then `nc 127.0.0.1 ECHO_PORT`, `nc 127.0.0.1
//! CHAT_PORT` and `curl http://127.0.0.1:METRICS_PORT/metrics`. Ctrl-C
//! shuts all three down gracefully.

use netloop::codec::lines::DEFAULT_MAX_LINE;
use netloop::metrics::http::{self, MetricsAddr};
use netloop::protocol::catalog::{Catalog, Lang};
use netloop::servers::chat::ChatServer;
use netloop::servers::echo::Echo;
use netloop::{ListenOptions, Reactor};
use std::io::Error;
use std::time::Duration;

/// The `i`th command-line argument as a port (0 when absent).
fn port(i: usize) -> Result<u16, Error> {
    match std::env::args().nth(i) {
        None => Ok(0),
        Some(p) => p
            .parse()
            .map_err(|_| Error::other(format!("bad port {p:?}"))),
    }
}

fn main() -> Result<(), Error> {
    let mut r = Reactor::new()?;
    r.handle_signals(Duration::from_secs(2))?;

    let echo = r.serve(ListenOptions::port(port(1)?), Echo);
    let chat = ChatServer::new(Catalog::new(Lang::En), DEFAULT_MAX_LINE);
    let chat = r.serve(ListenOptions::port(port(2)?), chat);
    let addr = MetricsAddr {
        host: "127.0.0.1".into(),
        port: port(3)?,
    };
    let metrics = http::listen(&mut r, &addr);

    for (name, server) in [("echo", echo), ("chat", chat), ("metrics", metrics)] {
        let server = server.map_err(|e| Error::other(format!("{name}: {e}")))?;
        let at = r.server_addr(server).ok_or_else(|| Error::other(name))?;
        println!("{name} on {at}");
    }
    println!("loop exited: {:?}", r.run()?);
    Ok(())
}
