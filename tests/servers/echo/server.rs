//! The echo server returns every byte, in order, over loopback.

use crate::util;
use netloop::servers::echo::Echo;
use netloop::ListenOptions;
use util::*;

#[test]
fn ten_mib_over_one_connection() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    let data = random_bytes(10 << 20, 1);
    let got = echo_roundtrip(lp.addr, data.clone());
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo differs");
}

#[test]
fn hundred_concurrent_connections() {
    let lp = TestLoop::start_service(ListenOptions::default(), || Echo);
    let per = 128 * 1024; // 100 × 128 KiB = 12.5 MiB in all
    let threads: Vec<_> = (0..100u64)
        .map(|i| {
            let addr = lp.addr;
            std::thread::spawn(move || {
                let data = random_bytes(per, 100 + i);
                let got = echo_roundtrip(addr, data.clone());
                assert!(got == data, "connection {i}: echo differs");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

#[test]
fn binary_echo_is_byte_exact() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let data = random_bytes(10 << 20, 7);
    let got = echo_roundtrip(srv.addr, data.clone());
    assert!(got == data, "echo differs");
}
