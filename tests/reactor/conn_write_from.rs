//! `Reactor::write_from`: the kernel takes what it can straight from the
//! borrowed buffer, the rest is queued in order (copied when small, split off
//! when large), and the buffer is always left empty.

use crate::util;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service, SocketOptions, WriteError};
use std::io::Read;
use std::sync::{Arc, Mutex};
use util::*;

/// Big enough that loopback's autotuned send buffer cannot take it all, so
/// the rest must be split off and queued.
const BIG: usize = 16 << 20;

/// What each `write_from` call returned, and the buffer afterwards.
#[derive(Debug, Clone)]
struct Call {
    result: Result<bool, WriteError>,
    len_after: usize,
    cap_after: usize,
}

struct Writer {
    parts: Vec<Vec<u8>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Service for Writer {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_data(&mut self, _: &mut Cx<Self>, _c: ConnId, _: &mut (), data: &mut BytesMut) {
        data.clear();
    }
    fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
        for part in &self.parts {
            let mut buf = BytesMut::from(&part[..]);
            let result = r.write_from(c, &mut buf);
            self.calls.lock().unwrap().push(Call {
                result,
                len_after: buf.len(),
                cap_after: buf.capacity(),
            });
        }
        r.end(c).expect("end");
        // After end(): refused, and the buffer is still emptied.
        let mut late = BytesMut::from(&b"late"[..]);
        let result = r.write_from(c, &mut late);
        self.calls.lock().unwrap().push(Call {
            result,
            len_after: late.len(),
            cap_after: late.capacity(),
        });
        Some(())
    }
}

#[test]
fn direct_split_and_copied_rests_arrive_in_order() {
    let parts = vec![
        b"small first".to_vec(),
        random_bytes(BIG, 7),
        random_bytes(1000, 8),
        random_bytes(3 * 4096 + 5, 9),
    ];
    let expected: Vec<u8> = parts.concat();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (p2, c2) = (parts.clone(), calls.clone());
    let opts = ListenOptions {
        // Not a slow consumer here: the whole test is queued at once.
        socket: SocketOptions {
            max_write_buffer: 4 * BIG,
            ..SocketOptions::default()
        },
        ..ListenOptions::default()
    };
    let lp = ServiceLoop::start(opts, move || Writer {
        parts: p2,
        calls: c2,
    });
    let mut s = connect(lp.addr);
    let mut got = Vec::with_capacity(expected.len());
    s.read_to_end(&mut got).expect("read to FIN");
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes differ or are out of order");

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), parts.len() + 1, "{calls:?}");
    for (i, call) in calls.iter().enumerate() {
        assert_eq!(call.len_after, 0, "call {i} left bytes in the buffer");
    }
    assert_eq!(calls[0].result, Ok(true), "a small write on an empty queue");
    assert_eq!(calls[1].result, Ok(false), "16 MiB unread passes the mark");
    // Queued behind the big rest: copied (it is small), so the buffer keeps
    // its capacity for reuse.
    assert_eq!(calls[2].result, Ok(false));
    assert!(calls[2].cap_after >= 1000, "{:?}", calls[2]);
    assert_eq!(calls[3].result, Ok(false));
    assert_eq!(calls[4].result, Err(WriteError::AfterEnd));
}
