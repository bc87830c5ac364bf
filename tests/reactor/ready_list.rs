//! A connection with more than one budget of data is fully served, and other
//! connections make progress meanwhile (the ready list at work).

use crate::util;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, Service};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use util::*;

/// Echo that counts the ready-list parks the loop reports.
struct CountingEcho {
    parks: Arc<AtomicU64>,
}

impl Service for CountingEcho {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: netloop::ServerId, _: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, cx: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        // Node's pipe: paused while the echo's queue is over the mark.
        let _ = cx.pipe_write(c, c, d.split().freeze());
        self.parks.store(cx.stats().ready_parks, Ordering::SeqCst);
    }
}

#[test]
fn big_sender_is_served_fully_and_small_ones_progress() {
    let parks = Arc::new(AtomicU64::new(0));
    let p2 = parks.clone();
    let lp = ServiceLoop::start(ListenOptions::default(), move || CountingEcho { parks: p2 });
    let addr = lp.addr;
    // The big one: 32 MiB in 1 MiB writes, read concurrently.
    let big = std::thread::spawn(move || {
        let data = random_bytes(32 << 20, 11);
        let got = echo_roundtrip(addr, data.clone());
        assert!(got == data, "big transfer corrupted");
    });
    // Small ping-pongs while the big transfer runs.
    let mut small = connect(addr);
    let mut rounds = 0;
    while !big.is_finished() || rounds < 20 {
        small.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        small.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        rounds += 1;
        if big.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    big.join().unwrap();
    assert!(rounds >= 20);
    assert!(
        parks.load(Ordering::SeqCst) > 0,
        "the budget never parked a connection"
    );
}
