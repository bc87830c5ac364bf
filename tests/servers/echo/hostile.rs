//! Hostile peers against the echo server binary and its reactor (the reliability suite, RELIABILITY.md).
//!
//! Each test starts `netloop serve echo` as a child process and attacks it the way a bad or
//! broken peer would, while a healthy client keeps checking that it is still served:
//!
//! * slowloris: hundreds of connections that trickle one byte at a time or send nothing; the
//!   healthy client's echo latency is measured unloaded and under attack;
//! * silent peers and half-open peers (FIN sent, never reading again while the server writes)
//!   are reaped by `--idle-timeout`;
//! * stuck readers: clients that write without reading are held by echo's backpressure, so the
//!   server's RSS stays bounded, and they lose nothing once they read;
//! * a connection flood beyond `--max-connections`;
//! * peers that reset (SO_LINGER 0) while the server is writing to them;
//! * SIGTERM while 200 clients have data in flight: each receives an exact prefix of what it
//!   sent, then FIN, and the server exits 0.
//!
//! Figures are printed with `--nocapture` (RELIABILITY.md quotes them). Bounds are generous:
//! CI machines are small and shared; the point is "no collapse", not a benchmark.

use crate::util;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::*;

/// The tests in this file run one at a time: each measures latency and memory, and several
/// hundred sockets per test at once would measure the other tests.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Echo one small message and return the round-trip time.
fn rtt(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t0 = Instant::now();
    s.write_all(msg).expect("healthy write");
    assert_eq!(read_exact(s, msg.len()), msg, "healthy echo corrupted");
    t0.elapsed()
}

/// Median and 99th percentile of `n` round trips of 64 bytes.
fn latency(s: &mut TcpStream, n: usize) -> (Duration, Duration) {
    let msg = random_bytes(64, 5);
    let mut v: Vec<Duration> = (0..n).map(|_| rtt(s, &msg)).collect();
    v.sort();
    (v[n / 2], v[n * 99 / 100])
}

/// Asserts that the loaded median is within 10x of the unloaded one, or under 50 ms.
fn assert_latency_ok(what: &str, unloaded: Duration, loaded: Duration) {
    assert!(
        loaded <= unloaded * 10 || loaded < Duration::from_millis(50),
        "{what}: healthy p50 {loaded:?} under load vs {unloaded:?} unloaded"
    );
}

/// Number of open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// True once the server has closed `s` (EOF or reset); data before it is discarded.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true, // reset
        }
    }
}

/// A connection whose own socket buffers are small (16 KiB each way), so that the bytes it
/// pushes pile up on the server's side rather than in the client's kernel buffers.
fn connect_small(addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    sock.set_send_buffer_size(16 * 1024).unwrap();
    sock.connect_timeout(&addr.into(), TIMEOUT)
        .expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// `len` bytes of a deterministic stream identified by `seed`, from `offset` on; cheap to
/// regenerate, so a test can push many MiB without holding them.
fn pattern(seed: u8, offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9) >> 11) as u8 ^ seed)
        .collect()
}

/// Open `n` plain connections.
fn open_many(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| connect(addr)).collect()
}

#[test]
fn slowloris_does_not_slow_a_healthy_client() {
    let _serial = serial();
    let srv = Server::start(&["serve", "echo", "--port", "0", "--idle-timeout", "60s"]);
    let base_fds = open_fds(srv.pid());
    let mut healthy = connect(srv.addr);
    let _ = latency(&mut healthy, 50); // warm up
    let (p50_idle, p99_idle) = latency(&mut healthy, 300);

    // 200 tricklers (one byte per round) and 200 that send nothing.
    let mut tricklers = open_many(srv.addr, 200);
    let silent = open_many(srv.addr, 200);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let trickle = std::thread::spawn(move || {
        let mut rounds = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            for s in &mut tricklers {
                s.write_all(b"x").expect("trickle");
            }
            rounds += 1;
            // Pacing of the attack, not synchronisation.
            std::thread::sleep(Duration::from_millis(2));
        }
        (rounds, tricklers)
    });
    // Wait until every attacker has been accepted (so the load is really there).
    wait_until("attackers accepted", || {
        open_fds(srv.pid()) > base_fds + 400
    });
    // Measure for at least a second of attack (and 300 samples), not just a burst.
    let t0 = Instant::now();
    let (mut p50_load, mut p99_load) = latency(&mut healthy, 300);
    while t0.elapsed() < Duration::from_secs(1) {
        let (p50, p99) = latency(&mut healthy, 300);
        p50_load = p50_load.max(p50);
        p99_load = p99_load.max(p99);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (rounds, mut tricklers) = trickle.join().unwrap();
    // The tricklers were served too: each gets its bytes back.
    let n = rounds as usize;
    for s in tricklers.iter_mut().take(5) {
        assert_eq!(read_exact(s, n), vec![b'x'; n]);
    }
    eprintln!(
        "slowloris: healthy rtt p50/p99 unloaded {p50_idle:?}/{p99_idle:?}, \
         with 200 trickling + 200 silent peers {p50_load:?}/{p99_load:?} (worst batch of \
         300; {rounds} trickle rounds = {} one-byte echoes)",
        rounds * 200
    );
    assert_latency_ok("slowloris", p50_idle, p50_load);
    drop(silent);
}

#[test]
fn silent_and_half_open_peers_are_reaped_by_the_idle_timeout() {
    let _serial = serial();
    let idle = Duration::from_millis(400);
    let srv = Server::start(&["serve", "echo", "--port", "0", "--idle-timeout", "400ms"]);
    let base_fds = open_fds(srv.pid());
    let mut healthy = connect(srv.addr);
    // 150 peers that send nothing at all.
    let mut silent = open_many(srv.addr, 150);
    rtt(&mut healthy, b"ping");
    // 50 peers that send a lot, then FIN, and never read again while the server writes to
    // them: their echo backs up, the server pauses reading, and only the timeout frees them.
    let mut half_open = Vec::new();
    for i in 0..50 {
        let s = connect_small(srv.addr);
        s.set_nonblocking(true).unwrap();
        let data = random_bytes(256 * 1024, 100 + i);
        let mut sent = 0;
        let t0 = Instant::now();
        while sent < data.len() && t0.elapsed() < Duration::from_millis(200) {
            match (&s).write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("half-open write: {e}"),
            }
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        half_open.push(s);
        rtt(&mut healthy, b"ping"); // stay active while the attackers are set up
    }
    let t0 = Instant::now();
    // Meanwhile the healthy client, active more often than the timeout, is never reaped.
    wait_until("every hostile peer reaped", || {
        rtt(&mut healthy, b"ping");
        open_fds(srv.pid()) <= base_fds + 1
    });
    let reaped_after = t0.elapsed();
    // From the peers' side: the silent ones got FIN (EOF); the half-open ones were closed.
    for s in &mut silent {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(
            s.read(&mut b).expect("FIN, not a reset"),
            0,
            "silent peer got EOF"
        );
    }
    for s in &mut half_open {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(closed_by_server(s), "half-open peer was not closed");
    }
    eprintln!(
        "idle timeout {idle:?}: 150 silent + 50 half-open peers reaped after {reaped_after:?}; \
         the healthy client was served throughout"
    );
    assert!(reaped_after < idle * 10, "reaping took {reaped_after:?}");
    rtt(&mut healthy, b"still here");
}

#[test]
fn stuck_readers_are_held_by_backpressure_and_rss_stays_bounded() {
    let _serial = serial();
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let mut healthy = connect(srv.addr);
    let _ = latency(&mut healthy, 20);
    let rss0 = srv.rss_kib();
    // 20 clients each try to push 16 MiB without reading a byte. Their own socket buffers are
    // small, so what TCP holds is mostly on the server's side.
    const CLIENTS: usize = 20;
    const EACH: usize = 16 << 20;
    let mut stuck: Vec<(TcpStream, usize)> = (0..CLIENTS)
        .map(|_| {
            let s = connect_small(srv.addr);
            s.set_nonblocking(true).unwrap();
            (s, 0)
        })
        .collect();
    // Push until every client's socket refuses more, three rounds in a row with the server
    // given time to read in between: then the server has stopped reading (paused).
    let mut stalls = 0;
    let t0 = Instant::now();
    while stalls < 3 {
        let mut progressed = false;
        for (i, (s, sent)) in stuck.iter_mut().enumerate() {
            while *sent < EACH {
                let chunk = pattern(i as u8, *sent, (EACH - *sent).min(64 * 1024));
                match (&*s).write(&chunk) {
                    Ok(n) => {
                        *sent += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("stuck client write: {e}"),
                }
            }
        }
        stalls = if progressed { 0 } else { stalls + 1 };
        rtt(&mut healthy, b"served while others are stuck");
        // Pacing: give the server a chance to read more if it wanted to.
        std::thread::sleep(Duration::from_millis(50));
        assert!(t0.elapsed() < TIMEOUT, "stuck clients never stalled");
    }
    let pushed: usize = stuck.iter().map(|c| c.1).sum();
    let rss1 = srv.rss_kib();
    let (p50, _) = latency(&mut healthy, 100);
    eprintln!(
        "stuck readers: {CLIENTS} clients pushed {} KiB in total before TCP stopped them \
         (they tried {} KiB); server RSS {rss0} KiB -> {rss1} KiB; healthy p50 {p50:?}",
        pushed / 1024,
        CLIENTS * EACH / 1024
    );
    assert!(
        pushed < CLIENTS * EACH,
        "nothing held the stuck clients back"
    );
    // Per connection the server holds about one high-water mark (64 KiB) plus one read
    // (64 KiB); 20 connections: a few MiB. Allow 32 MiB for allocator slack.
    assert!(
        rss1 < rss0 + 32 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
    // Once a stuck client reads, it gets back exactly what it sent, nothing lost.
    let (s, sent) = stuck.swap_remove(0);
    s.set_nonblocking(false).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut off = sent;
        while off < EACH {
            let chunk = pattern(0, off, (EACH - off).min(64 * 1024));
            w.write_all(&chunk).unwrap();
            off += chunk.len();
        }
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut s = s;
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = s.read(&mut buf).expect("read back");
        if n == 0 {
            break;
        }
        assert!(
            buf[..n] == pattern(0, got, n)[..],
            "stuck client's echo corrupted at byte {got}"
        );
        got += n;
    }
    writer.join().unwrap();
    assert_eq!(got, EACH, "stuck client lost data once it read");
}

#[test]
fn connection_flood_beyond_max_connections_leaves_healthy_clients_alone() {
    let _serial = serial();
    let srv = Server::start(&["serve", "echo", "--port", "0", "--max-connections", "50"]);
    let base_fds = open_fds(srv.pid());
    let mut healthy: Vec<TcpStream> = open_many(srv.addr, 10);
    for (i, h) in healthy.iter_mut().enumerate() {
        rtt(h, format!("hello {i}").as_bytes());
    }
    let (p50_idle, _) = latency(&mut healthy[0], 200);
    // 400 more connections, held open, plus churn: connect and drop at once.
    let flood = open_many(srv.addr, 400);
    for _ in 0..300 {
        drop(TcpStream::connect(srv.addr));
    }
    let (p50_load, p99_load) = latency(&mut healthy[0], 200);
    for (i, h) in healthy.iter_mut().enumerate() {
        rtt(h, format!("still {i}").as_bytes());
    }
    // The server never holds more than the limit (plus its own descriptors).
    let fds = open_fds(srv.pid());
    assert!(
        fds <= base_fds + 51,
        "{fds} descriptors open with a limit of 50"
    );
    // Connections past the limit were closed: at most 40 of the flood were admitted.
    let mut served = 0;
    for mut s in flood {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if s.write_all(b"?").is_ok() && matches!(s.read(&mut [0u8; 1]), Ok(1)) {
            served += 1;
        }
    }
    eprintln!(
        "flood: 400 held + 300 churned connections over --max-connections 50: healthy p50 \
         {p50_idle:?} -> {p50_load:?} (p99 {p99_load:?}), {fds} server fds, {served} flood \
         connections served"
    );
    assert!(served <= 40, "{served} connections served over the limit");
    assert_latency_ok("flood", p50_idle, p50_load);
}

#[test]
fn peers_that_reset_mid_write_do_not_hurt_the_server() {
    let _serial = serial();
    let mut srv = Server::start(&["serve", "echo", "--port", "0"]);
    let base_fds = open_fds(srv.pid());
    let mut healthy = connect(srv.addr);
    let data = random_bytes(512 * 1024, 300);
    for round in 0..100 {
        let s = connect(srv.addr);
        s.set_nonblocking(true).unwrap();
        // Push what the socket takes: the server is now echoing into our full receive buffer.
        let mut sent = 0;
        while sent < data.len() {
            match (&s).write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        // Half of them read a little first, so the reset lands between writes.
        if round % 2 == 0 {
            let _ = (&s).read(&mut [0u8; 1000]);
        }
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s); // RST
        if round % 10 == 0 {
            rtt(&mut healthy, b"alive");
        }
    }
    wait_until("reset connections released", || {
        open_fds(srv.pid()) <= base_fds + 1
    });
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "server died on resets"
    );
    let (p50, _) = latency(&mut healthy, 50);
    eprintln!("resets: 100 peers reset mid-write; no descriptor leaked; healthy p50 {p50:?}");
}

#[test]
fn sigterm_under_load_gives_every_client_a_prefix_then_fin_and_exits_zero() {
    let _serial = serial();
    use mio::net::TcpStream as MioStream;
    use mio::{Events, Interest, Poll, Token};

    const CLIENTS: usize = 200;
    const EACH: usize = 256 * 1024;
    let mut srv = Server::start(&["serve", "echo", "--port", "0", "--grace", "10s"]);

    struct Client {
        s: MioStream,
        data: Vec<u8>,
        sent: usize,
        got: usize,
        fin: bool,
    }
    let mut poll = Poll::new().unwrap();
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|i| {
            // Small client buffers: the echo backs up and the server holds data in flight.
            let std = connect_small(srv.addr);
            std.set_nonblocking(true).unwrap();
            let mut s = MioStream::from_std(std);
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                .unwrap();
            Client {
                s,
                data: random_bytes(EACH, 1000 + i as u64),
                sent: 0,
                got: 0,
                fin: false,
            }
        })
        .collect();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut signalled = false;
    let mut in_flight_at_signal = 0;
    let t0 = Instant::now();
    // Before the signal each client writes all it can but reads only its first 1 KiB, so its
    // echo backs up; after it, each reads everything until FIN. Edge-triggered: every event
    // does all it can (a sweep of every client on an empty poll guards against a lost edge).
    while clients.iter().any(|c| !c.fin) {
        assert!(t0.elapsed() < TIMEOUT, "clients did not all get FIN");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        let ready: Vec<usize> = if events.is_empty() {
            (0..CLIENTS).collect()
        } else {
            events.iter().map(|e| e.token().0).collect()
        };
        for i in ready {
            let c = &mut clients[i];
            if c.fin {
                continue;
            }
            while c.sent < c.data.len() {
                let end = (c.sent + 16 * 1024).min(c.data.len());
                match c.s.write(&c.data[c.sent..end]) {
                    Ok(n) => c.sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // The server closed after its FIN: nothing more to send.
                    Err(_) => c.sent = c.data.len(),
                }
            }
            loop {
                let want = if signalled { buf.len() } else { 1024 - c.got };
                if want == 0 {
                    break;
                }
                match c.s.read(&mut buf[..want]) {
                    Ok(0) => {
                        c.fin = true;
                        break;
                    }
                    Ok(n) => {
                        assert!(
                            c.got + n <= c.sent && buf[..n] == c.data[c.got..c.got + n],
                            "client {i}: received bytes are not a prefix of what it sent"
                        );
                        c.got += n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => panic!("client {i}: {e} before FIN (after {} bytes)", c.got),
                }
            }
        }
        // Signal once every client's echo is flowing and it has written all it could.
        if !signalled && clients.iter().all(|c| c.got == 1024) {
            srv.signal("TERM");
            signalled = true;
            in_flight_at_signal = clients.iter().filter(|c| c.sent > c.got).count();
        }
    }
    let received: usize = clients.iter().map(|c| c.got).sum();
    let unechoed: usize = clients.iter().map(|c| c.sent - c.got).sum();
    for c in &clients {
        let _ = c.s.shutdown(std::net::Shutdown::Write);
    }
    let code = srv.wait_exit();
    eprintln!(
        "shutdown under load: {CLIENTS} clients ({in_flight_at_signal} with data in flight at \
         SIGTERM), {} KiB echoed as exact prefixes, {} KiB sent but not echoed, every client \
         got FIN, exit {code:?} after {:?}",
        received / 1024,
        unechoed / 1024,
        t0.elapsed()
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        in_flight_at_signal, CLIENTS,
        "some client had nothing in flight"
    );
}

/// The reactor's own guard, below any application: a producer that ignores `write()`'s
/// backpressure (unlike echo) and a peer that never reads. The hard cap
/// (`max_write_buffer`) destroys that peer as a slow consumer, the queue never passes the
/// cap by more than one write, and a peer that does read keeps receiving.
#[test]
fn reactor_hard_cap_destroys_a_stuck_reader_under_a_careless_producer() {
    let _serial = serial();
    use netloop::{
        BytesMut, ConnId, Cx, ErrorCode, ListenOptions, NetError, ServerId, Service, SocketOptions,
        TimerId,
    };
    use std::sync::{Arc, Mutex};

    const CAP: usize = 1 << 20;
    const CHUNK: usize = 16 * 1024;
    #[derive(Default)]
    struct Seen {
        conns: Vec<ConnId>,
        max_queued: usize,
        slow_consumers: usize,
        closed_with_error: usize,
    }
    struct Firehose {
        seen: Arc<Mutex<Seen>>,
        chunk: netloop::Bytes,
        timer: Option<TimerId>,
    }
    impl Service for Firehose {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
            self.seen.lock().unwrap().conns.push(c);
            if self.timer.is_none() {
                self.timer = Some(r.set_interval(Duration::from_millis(2), ()));
            }
            Some(())
        }
        fn on_data(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), d: &mut BytesMut) {
            d.clear();
        }
        fn on_timer(&mut self, r: &mut Cx<Self>, _t: TimerId, _tag: ()) {
            let mut seen = self.seen.lock().unwrap();
            for c in seen.conns.clone() {
                // Careless on purpose: Ok(false) is ignored.
                let _ = r.write(c, self.chunk.clone());
                seen.max_queued = seen.max_queued.max(r.buffer_size(c));
            }
        }
        fn on_error(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), e: &NetError) {
            if e.code == ErrorCode::SlowConsumer {
                self.seen.lock().unwrap().slow_consumers += 1;
            }
        }
        fn on_close(&mut self, _r: &mut Cx<Self>, c: ConnId, _: (), had_error: bool) {
            let mut seen = self.seen.lock().unwrap();
            seen.conns.retain(|&x| x != c);
            if had_error {
                seen.closed_with_error += 1;
            }
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
    let lp = TestLoop::start(opts, move || Firehose {
        seen: s2,
        chunk: netloop::Bytes::from(vec![b'z'; CHUNK]),
        timer: None,
    });
    // The healthy peer reads everything on its own thread.
    let mut healthy = connect(lp.addr);
    let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let g2 = got.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = healthy.read(&mut buf) {
            if n == 0 {
                break;
            }
            g2.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let _stuck = connect_small(lp.addr);
    let t0 = Instant::now();
    wait_until("the stuck reader is destroyed", || {
        seen.lock().unwrap().slow_consumers == 1
    });
    let took = t0.elapsed();
    let before = got.load(std::sync::atomic::Ordering::Relaxed);
    wait_until("the healthy reader keeps receiving", || {
        got.load(std::sync::atomic::Ordering::Relaxed) > before + 10 * CHUNK
    });
    let s = seen.lock().unwrap();
    eprintln!(
        "hard cap: stuck reader destroyed as a slow consumer after {took:?}; largest queue \
         {} KiB (cap {} KiB); healthy reader got {} KiB and counting",
        s.max_queued / 1024,
        CAP / 1024,
        before / 1024
    );
    // The cap counts what the peer left us holding: the write that finds the
    // socket full and more than the cap queued is refused, so the queue
    // passes the cap by at most the one write before it.
    let bound = CAP + CHUNK + netloop::conn::write_queue::ENTRY_OVERHEAD;
    assert!(
        s.max_queued <= bound,
        "queue reached {} bytes, more than the cap plus one write ({bound})",
        s.max_queued
    );
    assert_eq!(s.closed_with_error, 1);
    assert_eq!(s.conns.len(), 1, "the healthy peer is still connected");
    drop(s);
    drop(lp);
    let _ = reader.join();
}
