//! Read-path edge cases under edge triggering: data and FIN arriving in one
//! burst must produce the data, then `end` (a read path that stopped at a
//! short read would miss the FIN queued behind it), and a long run of small
//! request/response messages on one connection never stalls.

use crate::util;
use netloop::servers::echo::Echo;
use netloop::ListenOptions;
use std::io::Write;
use util::*;

#[test]
fn data_then_fin_in_one_burst_is_echoed_and_closed() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    for i in 0..200u64 {
        let mut s = connect(lp.addr);
        let msg = random_bytes(1 + (i as usize % 300), i);
        s.write_all(&msg).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        // The echo, then EOF: the server saw the FIN behind the data.
        assert_eq!(read_to_end(&mut s), msg, "round {i}");
    }
}

#[test]
fn many_small_messages_on_one_connection() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    let mut s = connect(lp.addr);
    for i in 0..2000u64 {
        let msg = random_bytes(1 + (i as usize % 100), i);
        s.write_all(&msg).expect("write");
        assert_eq!(read_exact(&mut s, msg.len()), msg, "message {i}");
    }
}
