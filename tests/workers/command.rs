//! `netloop serve command --workers 3`: connection ids unique in the
//! process over 1,000 connections, and `/list` of the whole process.

use crate::lineclient::LineClient;
use crate::spread;
use crate::util::wait_until;
use std::collections::BTreeSet;

fn welcome_id(c: &mut LineClient) -> u64 {
    let l = c.line();
    l.strip_prefix("Welcome! Connection ID: ")
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("a welcome, got {l:?}"))
}

/// The ids of a `/list` reply.
fn list(c: &mut LineClient) -> BTreeSet<u64> {
    c.send("/list");
    let l = c.line();
    let ids = l
        .strip_prefix("Active connections: ")
        .unwrap_or_else(|| panic!("a list, got {l:?}"))
        .trim_end();
    ids.split(", ").map(|i| i.parse().unwrap()).collect()
}

#[test]
fn ids_are_unique_over_a_thousand_connections_and_list_sees_every_worker() {
    const CONNS: usize = 1000;
    let w = spread::start("command", 3, &[]);
    let mut clients: Vec<(LineClient, u64)> = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let mut c = LineClient::connect(w.addr());
        let id = welcome_id(&mut c);
        clients.push((c, id));
    }
    let ids: BTreeSet<u64> = clients.iter().map(|c| c.1).collect();
    assert_eq!(ids.len(), CONNS, "ids unique in the process");
    assert_eq!(
        ids,
        (1..=CONNS as u64).collect(),
        "one counter for the process"
    );
    let per_worker = w.accepted();
    eprintln!("connections per worker: {per_worker:?}");
    assert_eq!(per_worker.iter().sum::<u64>(), CONNS as u64);
    assert_eq!(spread::busy(&per_worker), 3, "{per_worker:?}");

    // Whichever worker a client is on, its `/list` is the process's: the
    // ids the other workers accepted too.
    for i in [0, CONNS / 2, CONNS - 1] {
        assert_eq!(list(&mut clients[i].0), ids, "/list from client {i}");
    }

    // Half of them leave (on every worker); the list follows once each
    // worker has seen its closes.
    let stay: Vec<(LineClient, u64)> = clients
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| (i % 2 == 0).then_some(c))
        .collect();
    let left: BTreeSet<u64> = stay.iter().map(|c| c.1).collect();
    let mut stay = stay;
    wait_until("the list drops the closed connections", || {
        list(&mut stay[0].0) == left
    });
    // A new connection gets a fresh id, whichever worker takes it.
    let mut c = LineClient::connect(w.addr());
    let id = welcome_id(&mut c);
    assert_eq!(id, CONNS as u64 + 1);
    let mut now = left.clone();
    now.insert(id);
    assert_eq!(list(&mut stay[1].0), now);
}
