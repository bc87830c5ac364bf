//! `netloop serve heartbeat --workers 3`: `server_status` counts the
//! clients of the whole process, on every worker.

use crate::spread;
use crate::util::{self, TIMEOUT};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

struct Peer {
    r: BufReader<TcpStream>,
}

impl Peer {
    /// Connect and read the welcome; the client id it gives.
    fn connect(addr: SocketAddr) -> (Peer, String) {
        let mut p = Peer {
            r: BufReader::new(util::connect(addr)),
        };
        let w = p.read();
        assert_eq!(w["type"], "welcome", "{w}");
        (p, w["clientId"].as_str().unwrap().to_string())
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.r.read_line(&mut line).expect("read");
        assert!(n > 0, "unexpected EOF");
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// Read until a `server_status` reports `want` clients (bounded);
    /// earlier ones may report fewer while others connect, never more.
    fn status_with(&mut self, want: u64) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no server_status with {want}");
            let v = self.read();
            if v["type"] != "server_status" {
                continue;
            }
            let n = v["connectedClients"].as_u64().expect("a count");
            if n == want {
                return;
            }
        }
    }
}

#[test]
fn server_status_counts_the_clients_of_every_worker() {
    const CLIENTS: usize = 15;
    let w = spread::start(
        "heartbeat",
        3,
        &["--status-interval", "50ms", "--heartbeat-interval", "10s"],
    );
    let mut peers = Vec::new();
    let mut ids = BTreeSet::new();
    for _ in 0..CLIENTS {
        let (p, id) = Peer::connect(w.addr());
        assert!(
            ids.insert(id.clone()),
            "client id {id} unique in the process"
        );
        peers.push(p);
    }
    let per_worker = w.accepted();
    assert_eq!(per_worker.iter().sum::<u64>(), CLIENTS as u64);
    assert!(spread::busy(&per_worker) >= 2, "spread: {per_worker:?}");
    // Every client, whichever worker broadcasts to it, sees the process's count.
    for p in &mut peers {
        p.status_with(CLIENTS as u64);
    }
    // Five leave: the count follows, on every worker.
    peers.truncate(CLIENTS - 5);
    for p in &mut peers {
        p.status_with(CLIENTS as u64 - 5);
    }
}
