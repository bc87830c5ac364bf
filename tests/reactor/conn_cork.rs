//! `cork()`/`uncork()`: while corked, writes are queued, not sent; the last
//! `uncork()` sends them (in order); calls nest; `end()` uncorks.

use crate::util;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service};
use std::io::Read;
use std::sync::{Arc, Mutex};
use util::*;

/// Queued bytes seen at each step.
#[derive(Debug, Default, Clone)]
struct Seen {
    corked: usize,
    nested_after_one_uncork: usize,
    after_uncork: usize,
    before_end: usize,
}

struct Corker {
    seen: Arc<Mutex<Seen>>,
}

fn msg(i: usize) -> Vec<u8> {
    format!("message {i:04}\n").into_bytes()
}

impl Service for Corker {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_data(&mut self, _: &mut Cx<Self>, _c: ConnId, _: &mut (), data: &mut BytesMut) {
        data.clear();
    }
    fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
        let mut seen = Seen::default();
        // 1. Corked: all 100 writes wait in the queue.
        r.cork(c);
        for i in 0..100 {
            r.write(c, msg(i)).expect("write");
        }
        seen.corked = r.buffer_size(c);
        // 2. Nested: one uncork of two holds them still.
        r.cork(c);
        r.write(c, msg(100)).expect("write");
        r.uncork(c);
        seen.nested_after_one_uncork = r.buffer_size(c);
        r.uncork(c);
        seen.after_uncork = r.buffer_size(c);
        // 3. end() while corked sends what is queued, then FIN.
        r.cork(c);
        for i in 101..200 {
            r.write(c, msg(i)).expect("write");
        }
        seen.before_end = r.buffer_size(c);
        // Recorded before end(): the client may see the FIN at once.
        *self.seen.lock().unwrap() = seen;
        r.end(c).expect("end");
        Some(())
    }
}

#[test]
fn corked_writes_wait_for_the_last_uncork_and_end_sends_them() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let lp = ServiceLoop::start(ListenOptions::default(), move || Corker { seen: s2 });
    let mut s = connect(lp.addr);
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to FIN");
    let expected: Vec<u8> = (0..200).flat_map(msg).collect();
    assert!(got == expected, "bytes differ or out of order");

    let seen = seen.lock().unwrap().clone();
    let one = msg(0).len();
    assert_eq!(seen.corked, 100 * one, "{seen:?}");
    assert_eq!(seen.nested_after_one_uncork, 101 * one, "{seen:?}");
    assert_eq!(
        seen.after_uncork, 0,
        "a fresh socket takes 1.6 KB: {seen:?}"
    );
    assert_eq!(seen.before_end, 99 * one, "{seen:?}");
}
