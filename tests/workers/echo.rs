//! `netloop serve echo --workers N`: connections spread over every worker,
//! every byte echoed, backpressure per connection as with one loop.

use super::util::{connect, Server, TIMEOUT};
use super::{accepted_per_worker, scrape, start_with_metrics};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Connections per test: enough that the kernel's hash gives every worker
/// some (with 3 workers, the chance that one gets none of 500 is 3·(2/3)^500).
const CONNS: usize = 500;

fn pattern(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (conn * 31 + i * 7) as u8).collect()
}

fn spread_and_echo(workers: usize) {
    let (srv, mport) = start_with_metrics("echo", workers, &[]);
    // All open at once, so each is accepted while the others are alive.
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(srv.addr)).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(&pattern(i, 1000)).expect("send");
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let mut got = vec![0u8; 1000];
        s.read_exact(&mut got).expect("echo back");
        assert_eq!(got, pattern(i, 1000), "connection {i} got another's bytes");
    }
    let text = scrape(mport);
    let per = accepted_per_worker(&text, workers);
    eprintln!("{workers} workers: accepted per worker {per:?}");
    for (i, n) in per.iter().enumerate() {
        assert!(*n > 0.0, "worker {i} got no connection: {per:?}");
    }
    // The scrape itself is a connection of the last worker's endpoint.
    let total = super::sample(&text, "netloop_connections_accepted_total").expect("total");
    assert_eq!(total, per.iter().sum::<f64>());
    assert!(total >= CONNS as f64, "total {total}");
    drop(conns);
}

#[test]
fn two_workers_share_500_connections_and_echo_every_byte() {
    spread_and_echo(2);
}

#[test]
fn three_workers_share_500_connections_and_echo_every_byte() {
    spread_and_echo(3);
}

/// Clients that send without reading are held by backpressure on every
/// worker: the server's memory stays bounded, and a client that reads at
/// last gets back exactly what it sent.
#[test]
fn stuck_readers_on_several_workers_are_held_by_backpressure() {
    let srv = Server::start(&["serve", "echo", "--port", "0", "--workers", "2"]);
    let mut healthy = connect(srv.addr);
    let rtt = |s: &mut TcpStream| {
        s.write_all(b"ping").expect("healthy write");
        let mut b = [0u8; 4];
        s.read_exact(&mut b).expect("healthy read");
    };
    rtt(&mut healthy);
    let rss0 = srv.rss_kib();
    const CLIENTS: usize = 12;
    const EACH: usize = 16 << 20;
    let mut stuck: Vec<(TcpStream, usize)> = (0..CLIENTS)
        .map(|_| {
            let s = connect(srv.addr);
            s.set_nonblocking(true).expect("nonblocking");
            (s, 0)
        })
        .collect();
    // Push until no client's socket takes more for three rounds in a row,
    // each round separated by a round trip on the healthy connection (the
    // server has read what it was going to read).
    let t0 = Instant::now();
    let mut stalls = 0;
    while stalls < 3 {
        let mut progressed = false;
        for (i, (s, sent)) in stuck.iter_mut().enumerate() {
            while *sent < EACH {
                let chunk = pattern(i, 64 * 1024);
                match s.write(&chunk[..(EACH - *sent).min(chunk.len())]) {
                    Ok(n) => {
                        *sent += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("stuck client write: {e}"),
                }
            }
        }
        stalls = if progressed { 0 } else { stalls + 1 };
        rtt(&mut healthy);
        assert!(t0.elapsed() < TIMEOUT, "stuck clients never stalled");
    }
    let pushed: usize = stuck.iter().map(|c| c.1).sum();
    let rss1 = srv.rss_kib();
    eprintln!(
        "stuck readers on 2 workers: pushed {} KiB of {} KiB; RSS {rss0} -> {rss1} KiB",
        pushed / 1024,
        CLIENTS * EACH / 1024
    );
    assert!(pushed < CLIENTS * EACH, "nothing held the stuck clients");
    // About a high-water mark plus a read per connection; 32 MiB of slack.
    assert!(rss1 < rss0 + 32 * 1024, "RSS grew {rss0} -> {rss1} KiB");
}
