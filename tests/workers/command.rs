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

/// `/list` from each observer is `want` (named differences otherwise).
fn assert_lists(observers: &mut [(LineClient, u64, usize)], want: &BTreeSet<u64>) {
    for (c, id, worker) in observers.iter_mut() {
        let seen = list(c);
        assert!(
            seen == *want,
            "/list from {id} on worker {worker}: extra {:?}, missing {:?}",
            seen.difference(want).collect::<Vec<_>>(),
            want.difference(&seen).collect::<Vec<_>>()
        );
    }
}

#[test]
fn ids_are_unique_over_a_thousand_connections_and_list_sees_every_worker() {
    const CONNS: usize = 1000;
    let w = spread::start("command", 3, &[]);
    // One observer on each worker (the first client each worker takes).
    let mut observers: Vec<(LineClient, u64, usize)> = Vec::new();
    let mut clients: Vec<(LineClient, u64)> = Vec::with_capacity(CONNS);
    while observers.len() < 3 {
        assert!(clients.len() < 60, "3 workers take connections");
        let ((c, id), worker) = w.tracked(|| {
            let mut c = LineClient::connect(w.addr());
            let id = welcome_id(&mut c);
            (c, id)
        });
        if observers.iter().any(|o| o.2 == worker) {
            clients.push((c, id));
        } else {
            observers.push((c, id, worker));
        }
    }
    while clients.len() + observers.len() < CONNS {
        let mut c = LineClient::connect(w.addr());
        let id = welcome_id(&mut c);
        clients.push((c, id));
    }
    let ids: BTreeSet<u64> = clients
        .iter()
        .map(|c| c.1)
        .chain(observers.iter().map(|o| o.1))
        .collect();
    assert_eq!(ids.len(), CONNS, "ids unique in the process");
    assert_eq!(
        ids,
        (1..=CONNS as u64).collect(),
        "one counter for the process"
    );
    let per_worker = w.accepted();
    eprintln!("connections per worker: {per_worker:?}");
    assert_eq!(per_worker.iter().sum::<u64>(), CONNS as u64);
    // Whichever worker a client is on, its `/list` is the process's: the
    // ids the other workers accepted too.
    assert_lists(&mut observers, &ids);

    // Half of the others leave (from every worker). Once one worker's list
    // has dropped them, every worker's has: a session leaves the process's
    // list when it ends, not later on one worker than on another.
    let stay: Vec<(LineClient, u64)> = clients
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| (i % 2 == 0).then_some(c))
        .collect();
    let left: BTreeSet<u64> = stay
        .iter()
        .map(|c| c.1)
        .chain(observers.iter().map(|o| o.1))
        .collect();
    wait_until("the list drops the closed connections", || {
        list(&mut observers[0].0) == left
    });
    assert_lists(&mut observers, &left);
    // A new connection gets a fresh id, whichever worker takes it, and is
    // listed by every worker at once.
    let mut c = LineClient::connect(w.addr());
    let id = welcome_id(&mut c);
    assert_eq!(id, CONNS as u64 + 1);
    let mut now = left.clone();
    now.insert(id);
    assert_lists(&mut observers, &now);
    // `/quit` takes a session off every worker's list by its goodbye.
    c.send("/quit");
    c.expect("Goodbye!\n");
    assert_lists(&mut observers, &left);
    drop(stay);
}
