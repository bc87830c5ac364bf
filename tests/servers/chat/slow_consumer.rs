//! Broadcast never waits on one consumer: a chat member that never reads is
//! disconnected once its queue passes the write-buffer cap, the room is told,
//! the other members get every message, and the server's memory stays bounded.

use crate::{lineclient, util};
use lineclient::LineClient;
use std::io::Read;
use std::net::TcpStream;
use util::Server;

/// A client with a tiny receive buffer that never reads.
fn non_reader(addr: std::net::SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.into()
}

#[test]
fn a_member_that_never_reads_is_evicted_and_memory_stays_bounded() {
    let srv = Server::start(&["serve", "chat", "--port", "0", "--max-write-buffer", "1MiB"]);
    let rss_before = srv.rss_kib();
    let stalled = non_reader(srv.addr); // user1, lobby, never reads
    let mut reader = LineClient::connect(srv.addr); // user2
    reader.until("/help");
    let mut flooder = LineClient::connect(srv.addr); // user3
    flooder.until("/help");
    reader.expect("╚══════════════════════════════════╝\n\n");
    flooder.expect("╚══════════════════════════════════╝\n\n");

    // 16 MiB of chat in 1 KiB lines: far more than the cap plus every kernel buffer.
    const LINES: usize = 16 * 1024;
    let payload = "m".repeat(1000);
    let mut w = flooder.w.try_clone().unwrap();
    let p2 = payload.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut batch = String::new();
        for i in 0..LINES {
            batch.push_str(&format!("{i:06}{p2}\n"));
            if batch.len() > 64 * 1024 {
                w.write_all(batch.as_bytes()).unwrap();
                batch.clear();
            }
        }
        w.write_all(batch.as_bytes()).unwrap();
    });

    // The reader gets every message, in order, and the eviction notice on the way.
    let mut got = 0;
    let mut evicted = false;
    let mut peak_rss = 0;
    while got < LINES {
        let l = reader.line();
        if l == "user1 was disconnected: not reading\n" {
            evicted = true;
            continue;
        }
        assert_eq!(l, format!("[user3]: {got:06}{payload}\n"));
        got += 1;
        if got % 1024 == 0 {
            peak_rss = peak_rss.max(srv.rss_kib());
        }
    }
    writer.join().unwrap();
    if !evicted {
        reader.expect("user1 was disconnected: not reading\n");
    }
    srv.wait_log("slow consumer");
    eprintln!(
        "server RSS: {rss_before} KiB idle, peak {peak_rss} KiB while 16 MiB were broadcast past a non-reader"
    );
    assert!(
        peak_rss < rss_before + 64 * 1024,
        "memory bounded: peak {peak_rss} KiB"
    );
    // The evicted socket was closed by the server (EOF or reset after what it buffered).
    let mut s = stalled;
    s.set_read_timeout(Some(lineclient::READ_TIMEOUT)).unwrap();
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
