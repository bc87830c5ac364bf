//! Writes coalesced per phase: what callbacks write to a connection during
//! one phase leaves in as few `writev` calls as the iovec limit allows,
//! intact and in order; a reply to the connection being served still goes
//! out at once. The loop counts its write system calls
//! (`LoopStats::write_calls`), so the tests count them exactly.

use crate::util;
use netloop::conn::write_queue::MAX_IOVECS;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service};
use std::io::{BufRead, BufReader, Write};
use util::{connect, ServiceLoop};

/// Messages in one burst: several iovec batches.
const N: usize = 1000;

/// A client that sends `listen\n` becomes the listener (answered `ok\n`).
/// When another sends `burst\n`, one callback writes `N` numbered lines to
/// the listener and `N` to the sender itself. `calls\n` is answered with
/// the write system calls made since the burst began.
#[derive(Default)]
struct Burst {
    listener: Option<ConnId>,
    calls_before: u64,
}

fn line(to: &str, i: usize) -> String {
    format!("{to} {i:05}\n")
}

impl Service for Burst {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
        let req = d.split();
        if &req[..] == b"listen\n" {
            self.listener = Some(c);
            let _ = r.write(c, "ok\n");
        } else if let (b"burst\n", Some(listener)) = (&req[..], self.listener) {
            self.calls_before = r.stats().write_calls;
            for i in 0..N {
                r.write(listener, line("to-listener", i)).expect("write");
                r.write(c, line("to-talker", i)).expect("write");
            }
        } else if &req[..] == b"calls\n" {
            let calls = r.stats().write_calls - self.calls_before;
            let _ = r.write(c, format!("calls {calls}\n"));
        }
    }
}

fn read_lines(r: &mut impl BufRead, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut l = String::new();
            r.read_line(&mut l).expect("line");
            l
        })
        .collect()
}

#[test]
fn a_burst_to_a_connection_costs_one_writev_per_iovec_batch() {
    let lp = ServiceLoop::start(ListenOptions::default(), Burst::default);
    let mut listener = connect(lp.addr);
    let mut lr = BufReader::new(listener.try_clone().expect("clone"));
    listener.write_all(b"listen\n").expect("listen");
    assert_eq!(read_lines(&mut lr, 1), ["ok\n"]);
    let mut talker = connect(lp.addr);
    let mut tr = BufReader::new(talker.try_clone().expect("clone"));
    talker.write_all(b"burst\n").expect("burst");
    let to_listener = read_lines(&mut lr, N);
    let to_talker = read_lines(&mut tr, N);
    for i in 0..N {
        assert_eq!(to_listener[i], line("to-listener", i), "listener line {i}");
        assert_eq!(to_talker[i], line("to-talker", i), "talker line {i}");
    }
    // The count is taken when `calls` arrives: after the burst has left.
    talker.write_all(b"calls\n").expect("calls");
    let reply = read_lines(&mut tr, 1).remove(0);
    let calls: u64 = reply
        .trim_end()
        .strip_prefix("calls ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad reply {reply:?}"));
    // The listener: every line queued, one writev per MAX_IOVECS lines.
    // The talker: the first line at once (a reply), the rest likewise.
    let per_batch = N.div_ceil(MAX_IOVECS) as u64;
    let bound = per_batch + 1 + per_batch;
    eprintln!(
        "{} lines to two connections in one callback: {calls} write calls",
        2 * N
    );
    assert!(
        calls <= bound,
        "{calls} write calls for 2 x {N} lines (bound {bound})"
    );
}

/// A reply to the connection being served goes out with one `write` and
/// no queue entry: a ping-pong peer costs one system call per round trip.
#[test]
fn a_reply_in_data_is_one_write() {
    struct Echo {
        seen: u64,
    }
    impl Service for Echo {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<()> {
            Some(())
        }
        fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), d: &mut BytesMut) {
            // Report the calls so far, then echo: the report is the reply.
            let calls = r.stats().write_calls - self.seen;
            self.seen = r.stats().write_calls;
            d.clear();
            let _ = r.write(c, format!("{calls}\n"));
        }
    }
    let lp = ServiceLoop::start(ListenOptions::default(), || Echo { seen: 0 });
    let mut s = connect(lp.addr);
    let mut rd = BufReader::new(s.try_clone().expect("clone"));
    let mut counts = Vec::new();
    for _ in 0..20 {
        s.write_all(b"ping").expect("ping");
        counts.push(read_lines(&mut rd, 1).remove(0));
    }
    // Each round trip: the previous reply's single write.
    assert!(counts[1..].iter().all(|c| c == "1\n"), "{counts:?}");
}

/// A burst queued in one callback to a peer that does not read is offered
/// to the kernel as soon as it would pass the cap, so the peer is still
/// evicted as a slow consumer, and the queue never holds more than the cap
/// plus one write.
#[test]
fn a_burst_to_a_stalled_peer_is_still_stopped_at_the_cap() {
    use netloop::{ErrorCode, NetError, SocketOptions};
    use std::sync::{Arc, Mutex};
    const CAP: usize = 4 << 20;
    const CHUNK: usize = 1 << 20;
    #[derive(Default)]
    struct Seen {
        max_queued: usize,
        refused_after: Option<usize>,
        slow: bool,
    }
    struct Flood(Arc<Mutex<Seen>>);
    impl Service for Flood {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
            let mut seen = self.0.lock().unwrap();
            for i in 0..64 {
                if r.write(c, vec![b'f'; CHUNK]).is_err() {
                    seen.refused_after = Some(i);
                    break;
                }
                seen.max_queued = seen.max_queued.max(r.buffer_size(c));
            }
            Some(())
        }
        fn on_data(&mut self, _: &mut Cx<Self>, _c: ConnId, _: &mut (), d: &mut BytesMut) {
            d.clear();
        }
        fn on_error(&mut self, _: &mut Cx<Self>, _c: ConnId, _: &mut (), e: &NetError) {
            self.0.lock().unwrap().slow |= e.code == ErrorCode::SlowConsumer;
        }
    }
    let seen: Arc<Mutex<Seen>> = Default::default();
    let s2 = seen.clone();
    let opts = ListenOptions {
        socket: SocketOptions {
            max_write_buffer: CAP,
            ..Default::default()
        },
        ..Default::default()
    };
    let lp = ServiceLoop::start(opts, move || Flood(s2));
    // Never reads: a 4 KiB receive buffer, so the kernel holds little.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&lp.addr.into()).unwrap();
    util::wait_until("the stalled peer is evicted", || seen.lock().unwrap().slow);
    let seen = seen.lock().unwrap();
    assert!(
        seen.refused_after.is_some(),
        "64 MiB were queued without eviction"
    );
    let bound = CAP + CHUNK + netloop::conn::write_queue::ENTRY_OVERHEAD;
    assert!(
        seen.max_queued <= bound,
        "queue reached {} (bound {bound})",
        seen.max_queued
    );
    drop(sock);
}
