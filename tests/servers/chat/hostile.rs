//! Hostile peers against `netloop serve chat` under load (the reliability suite, RELIABILITY.md), gathered here after
//! `tests/servers/echo/hostile.rs`; a healthy pair of members is measured throughout.
//!
//! * a busy room (50 members, two of them broadcasting continuously) with a member that
//!   stops reading and ten members that reset (SO_LINGER 0) mid-broadcast: the stalled one is
//!   destroyed at the write-buffer cap, the others receive every message in order, the
//!   healthy pair's latency stays within a small factor of unloaded, RSS stays bounded by the
//!   cap (not by members × messages), no descriptor leaks;
//! * one member flooding lines and unknown commands, then an over-long line: a clear error
//!   and a close for it, no slowdown for others, the server survives;
//! * invalid UTF-8, bad names (too long, control characters, reserved, `[ ] : "`), and one
//!   peer hopping through 2,000 rooms: every one answered with a clear error, rooms do not
//!   pile up, the session goes on.
//!
//! The services' own suites (`chat_server.rs`, `chat_slow_consumer.rs`) test each of these
//! on an idle server; this file repeats them under load. Figures are printed with
//! `--nocapture` (RELIABILITY.md quotes them).

use crate::{hostile_common, lineclient, util};
use hostile_common::*;
use lineclient::LineClient;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use util::*;

const ROOM: &str = "busy";

/// Connect, skip the banner (8 lines), take the nickname `nick`, join `room`.
fn member(addr: SocketAddr, nick: &str, room: &str) -> LineClient {
    let mut c = LineClient::connect(addr);
    for _ in 0..8 {
        c.line();
    }
    c.send(&format!("/nick {nick}"));
    c.until(&format!("Nickname changed to: {nick}\n"));
    c.send(&format!("/join {room}"));
    c.until(&format!("Joined room: {room}\n"));
    c
}

/// Checks the per-sender order of broadcast lines `[sK]: NNNNNN ...`: every message of
/// every sender arrives once, in order.
#[derive(Default)]
struct Order {
    next: HashMap<String, u64>,
    /// Every other line seen (notices), so a later check does not wait for one already read.
    other: Vec<String>,
}

impl Order {
    /// Feed one line; returns true if it was a sender's message.
    fn feed(&mut self, who: &str, l: &str) -> bool {
        let parsed = l.strip_prefix("[s").and_then(|rest| {
            let (sender, text) = rest.split_once("]: ")?;
            let seq = text.get(..6).and_then(|d| d.parse::<u64>().ok())?;
            Some((sender, seq))
        });
        let Some((sender, seq)) = parsed else {
            self.other.push(l.to_string());
            return false;
        };
        let next = self.next.entry(sender.to_string()).or_default();
        assert_eq!(
            seq, *next,
            "{who}: message of s{sender} out of order or lost"
        );
        *next += 1;
        true
    }
    fn got(&self, sender: &str) -> u64 {
        self.next.get(sender).copied().unwrap_or(0)
    }
}

/// A member that reads until it has `n` messages from each of `senders` (sender names
/// without the `s`), checking the order. Returns its client (still connected).
fn spawn_reader(
    mut c: LineClient,
    who: String,
    senders: Vec<String>,
    n: u64,
) -> JoinHandle<LineClient> {
    std::thread::spawn(move || {
        let mut order = Order::default();
        while senders.iter().any(|s| order.got(s) < n) {
            let mut l = String::new();
            match std::io::BufRead::read_line(&mut c.r, &mut l) {
                Ok(n) if n > 0 => {}
                other => panic!(
                    "{who}: {other:?} after s1 {} s2 {} messages; notices {:?}",
                    order.got("1"),
                    order.got("2"),
                    order.other
                ),
            }
            order.feed(&who, &l);
        }
        c
    })
}

/// One sender: `n` lines of ~`len` bytes, in batches of 10 every 10 ms (the pacing of the
/// load, not synchronisation), so the broadcast lasts a few seconds.
fn spawn_sender(mut w: std::net::TcpStream, n: u64, len: usize) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let payload = "p".repeat(len);
        let mut batch = String::new();
        for seq in 0..n {
            batch.push_str(&format!("{seq:06} {payload}\n"));
            if seq % 10 == 9 || seq + 1 == n {
                w.write_all(batch.as_bytes()).expect("sender write");
                batch.clear();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    })
}

/// One probe: `p` says `probe <i>`, `q` reads until it arrives (through whatever broadcast
/// lines come before it, checked for order). Returns the one-way relay time.
fn probe(p: &mut LineClient, q: &mut LineClient, order: &mut Order, i: usize) -> Duration {
    probe_w(&mut p.w, q, order, i)
}

/// [`probe`] with only the speaker's writing half (its reading half drained elsewhere).
fn probe_w(
    p: &mut std::net::TcpStream,
    q: &mut LineClient,
    order: &mut Order,
    i: usize,
) -> Duration {
    let want = format!("[pp]: probe {i}\n");
    let t0 = Instant::now();
    p.write_all(format!("probe {i}\n").as_bytes())
        .expect("probe write");
    loop {
        let l = q.line();
        if l == want {
            return t0.elapsed();
        }
        order.feed("q", &l);
    }
}

#[test]
fn busy_room_with_a_stalled_member_and_resetting_members() {
    let _serial = serial();
    const MEMBERS: usize = 50;
    const RESETTERS: usize = 10;
    const PER_SENDER: u64 = 4000;
    const LEN: usize = 1000;
    let srv = Server::start(&[
        "serve",
        "chat",
        "--port",
        "0",
        "--max-write-buffer",
        "512KiB",
    ]);
    let base_fds = open_fds(srv.pid());
    // The healthy pair: pp speaks, qq listens; both are in the room like everyone else.
    let mut p = member(srv.addr, "pp", ROOM);
    let mut q = member(srv.addr, "qq", ROOM);
    let mut q_order = Order::default();
    // A member that stops reading: tiny receive buffer, never reads a byte after joining.
    // (Loopback lets the server's kernel send buffer grow to a few MiB on top of the
    // 512 KiB cap, hence 8 MiB of broadcast below.)
    let mut stalled = connect_small(srv.addr);
    stalled.write_all(b"/nick stalled\n/join busy\n").unwrap();
    // Two senders, the resetters and the readers: 50 members in all.
    let s1 = member(srv.addr, "s1", ROOM);
    let s2 = member(srv.addr, "s2", ROOM);
    let resetters: Vec<LineClient> = (0..RESETTERS)
        .map(|i| member(srv.addr, &format!("r{i}"), ROOM))
        .collect();
    let readers: Vec<LineClient> = (0..MEMBERS - 5 - RESETTERS)
        .map(|i| member(srv.addr, &format!("m{i}"), ROOM))
        .collect();
    // Make sure the stalled member's join went through before the load starts.
    p.send("/rooms");
    p.until(&format!("{ROOM} ({MEMBERS} members)"));
    let rss0 = srv.rss_kib();

    // Unloaded: 100 probes.
    let mut idle: Vec<Duration> = (0..100)
        .map(|i| probe(&mut p, &mut q, &mut q_order, i))
        .collect();
    let (p50_idle, p99_idle) = p50_p99(&mut idle);

    // The load: every reader (and each sender, for the other's messages, and the speaker of
    // the healthy pair) on its own thread.
    let both = vec!["1".to_string(), "2".to_string()];
    let mut pw = p.w.try_clone().unwrap();
    let p_reader = spawn_reader(p, "pp".into(), both.clone(), PER_SENDER);
    let mut readers: Vec<JoinHandle<LineClient>> = readers
        .into_iter()
        .enumerate()
        .map(|(i, c)| spawn_reader(c, format!("m{i}"), both.clone(), PER_SENDER))
        .collect();
    let w1 = s1.w.try_clone().unwrap();
    let w2 = s2.w.try_clone().unwrap();
    readers.push(spawn_reader(s1, "s1".into(), vec!["2".into()], PER_SENDER));
    readers.push(spawn_reader(s2, "s2".into(), vec!["1".into()], PER_SENDER));
    let t_load = Instant::now();
    let senders = [
        spawn_sender(w1, PER_SENDER, LEN),
        spawn_sender(w2, PER_SENDER, LEN),
    ];
    // Resetters: each reads a little of the broadcast, then resets while the server is
    // writing to it.
    let resets: Vec<JoinHandle<()>> = resetters
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                let mut order = Order::default();
                let mut n = 0;
                while n < 20 + 30 * i {
                    if order.feed("resetter", &c.line()) {
                        n += 1;
                    }
                }
                drop(c.r);
                reset(c.w);
            })
        })
        .collect();
    // Probe and sample RSS while the senders are busy.
    let mut loaded = Vec::new();
    let mut peak_rss = rss0;
    let mut i = 100;
    while !senders.iter().all(|s| s.is_finished()) {
        loaded.push(probe_w(&mut pw, &mut q, &mut q_order, i));
        i += 1;
        peak_rss = peak_rss.max(srv.rss_kib());
        assert!(t_load.elapsed() < TIMEOUT, "the senders never finished");
    }
    let load_time = t_load.elapsed();
    for s in senders {
        s.join().unwrap();
    }
    for r in resets {
        r.join().unwrap();
    }
    // The healthy listener got every message, in order.
    while q_order.got("1") < PER_SENDER || q_order.got("2") < PER_SENDER {
        let l = q.line();
        q_order.feed("q", &l);
    }
    // So did every reader and each sender.
    let mut clients: Vec<LineClient> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    clients.push(p_reader.join().unwrap());
    // The stalled member was destroyed as a slow consumer and the room was told.
    let evicted = srv.wait_log("slow consumer");
    let notice = "stalled was disconnected: not reading\n";
    if !q_order.other.iter().any(|l| l == notice) {
        q.until(notice);
    }
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        closed_by_server(&mut stalled),
        "the stalled member is still connected"
    );
    // No descriptor leaks: the stalled member and the ten resetters are gone.
    let live = MEMBERS - 1 - RESETTERS;
    wait_until("stalled and reset members released", || {
        open_fds(srv.pid()) <= base_fds + live
    });
    q.send("/rooms");
    q.until(&format!("{ROOM} ({live} members)"));
    // Everyone left is still served.
    clients[0].send("still here");
    q.until("[m0]: still here\n");
    let (p50_load, p99_load) = p50_p99(&mut loaded);
    let fan_out_mib = ((PER_SENDER * 2) as usize * (LEN + 13) * (MEMBERS - 1)) >> 20;
    eprintln!(
        "chat busy room: {MEMBERS} members, 2 senders x {PER_SENDER} lines of {} B over \
         {load_time:?} (fan-out {fan_out_mib} MiB); healthy relay p50/p99 unloaded \
         {p50_idle:?}/{p99_idle:?}, loaded {p50_load:?}/{p99_load:?} ({} probes); server RSS \
         {rss0} KiB -> peak {peak_rss} KiB; stalled member evicted at --max-write-buffer \
         512KiB ({evicted:?}), {RESETTERS} resets, all {} remaining members got every message in order",
        LEN + 8,
        loaded.len(),
        live,
    );
    assert_latency_ok("chat busy room", p50_idle, p50_load);
    // Per member the server holds at most one cap (512 KiB) of shared `Bytes` handles; a
    // copy per member would be ~100 MiB. Allow 32 MiB for allocator slack.
    assert!(
        peak_rss < rss0 + 32 * 1024,
        "RSS {rss0} KiB -> {peak_rss} KiB"
    );
    drop(clients.drain(..));
}

#[test]
fn a_flooding_member_and_an_over_long_line_do_not_slow_others() {
    let _serial = serial();
    let srv = Server::start(&["serve", "chat", "--port", "0", "--max-line", "4KiB"]);
    let base_fds = open_fds(srv.pid());
    let mut p = member(srv.addr, "pp", ROOM);
    let mut q = member(srv.addr, "qq", ROOM);
    let mut order = Order::default();
    let mut idle: Vec<Duration> = (0..100)
        .map(|i| probe(&mut p, &mut q, &mut order, i))
        .collect();
    let (p50_idle, _) = p50_p99(&mut idle);
    let rss0 = srv.rss_kib();

    // The flooder has a room of its own (its chat costs parsing, not fan-out) and sends
    // 20,000 chat lines and 20,000 unknown commands without reading a single reply: the
    // replies pause its reading at the high-water mark, so it slows only itself.
    let mut flooder = member(srv.addr, "flood", "floodroom");
    let mut fw = flooder.w.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let mut batch = String::new();
        for i in 0..20_000 {
            batch.push_str(&format!("flood line {i}\n/bogus{i} arg\n"));
            if batch.len() > 32 * 1024 {
                fw.write_all(batch.as_bytes()).expect("flood");
                batch.clear();
            }
        }
        fw.write_all(batch.as_bytes()).expect("flood");
    });
    let t0 = Instant::now();
    let mut loaded = Vec::new();
    let mut i = 100;
    while !flood.is_finished() || loaded.len() < 100 {
        loaded.push(probe(&mut p, &mut q, &mut order, i));
        i += 1;
        assert!(t0.elapsed() < TIMEOUT, "flood never finished");
    }
    flood.join().unwrap();
    // Now it reads: every unknown command was answered, in order, nothing lost.
    for i in 0..20_000 {
        flooder.until(&format!("Unknown command: /bogus{i}."));
    }
    let (p50_load, p99_load) = p50_p99(&mut loaded);
    let rss_flood = srv.rss_kib();

    // Over-long lines: 64 KiB without a terminator from a member in the busy room. It gets
    // the error and a close; the room hears that it left; nothing of it is relayed.
    let mut long = member(srv.addr, "longline", ROOM);
    q.until("longline joined the room\n");
    let blob = vec![b'x'; 64 * 1024];
    let _ = long.w.write_all(&blob); // the server may close before it has read it all
    long.until("error: line longer than 4096 bytes, closing\n");
    assert!(
        closed_by_server(long.r.get_mut()),
        "over-long line: not closed"
    );
    q.until("longline left the server\n");
    // An over-long line in the middle of a pipelined batch: the lines before it are relayed,
    // nothing after it.
    let mut mixed = member(srv.addr, "mixed", ROOM);
    q.until("mixed joined the room\n");
    let mut batch = b"before\n".to_vec();
    batch.extend_from_slice(&vec![b'y'; 5000]);
    batch.extend_from_slice(b"\nafter\n");
    let _ = mixed.w.write_all(&batch);
    mixed.until("error: line longer than 4096 bytes, closing\n");
    let seen: Vec<String> = (0..3).map(|_| q.line()).collect();
    assert_eq!(
        seen,
        [
            "[mixed]: before\n",
            "mixed left the room\n",
            "mixed left the server\n"
        ]
    );
    // The server is alive, the pair still fast.
    let mut after: Vec<Duration> = (0..50)
        .map(|k| probe(&mut p, &mut q, &mut order, 100_000 + k))
        .collect();
    let (p50_after, _) = p50_p99(&mut after);
    drop((flooder, long, mixed));
    wait_until("flooder and over-long peers released", || {
        open_fds(srv.pid()) <= base_fds + 2
    });
    eprintln!(
        "chat flood: 20,000 lines + 20,000 unknown commands from a non-reading member in \
         {:?}; healthy relay p50 {p50_idle:?} unloaded, {p50_load:?} (p99 {p99_load:?}) \
         during the flood over {} probes, {p50_after:?} after two over-long lines; RSS {rss0} \
         KiB -> {rss_flood} KiB",
        t0.elapsed(),
        loaded.len()
    );
    assert_latency_ok("chat flood", p50_idle, p50_load);
    assert!(
        rss_flood < rss0 + 32 * 1024,
        "RSS {rss0} -> {rss_flood} KiB"
    );
}

#[test]
fn invalid_utf8_bad_names_and_room_hopping_get_clear_errors() {
    let _serial = serial();
    let srv = Server::start(&["serve", "chat", "--port", "0"]);
    let mut a = member(srv.addr, "alice", ROOM);
    let mut b = member(srv.addr, "bob", ROOM);
    a.until("bob joined the room\n");
    // Invalid UTF-8: the line is skipped with an error, the session goes on, nothing relayed.
    a.send_raw(b"\xff\xfe bad \xc3\x28\n");
    a.expect("error: line is not valid UTF-8, ignored\n");
    a.send_raw(b"ok \xe2\x82\n"); // a truncated sequence
    a.expect("error: line is not valid UTF-8, ignored\n");
    a.send("fine");
    b.expect("[alice]: fine\n");
    // Names: too long, control characters (NUL, ESC, DEL, C1), reserved characters,
    // another connection's default name.
    let length = "Invalid nickname: must be 1 to 32 characters\n";
    let charset = "Invalid nickname: must not contain spaces, control characters or [ ] : \"\n";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (format!("/nick {}", "n".repeat(33)).into_bytes(), length),
        (format!("/nick {}", "字".repeat(33)).into_bytes(), length),
        (format!("/nick {}", "n".repeat(10_000)).into_bytes(), length),
        (b"/nick a\0b".to_vec(), charset),
        (b"/nick a\x1b[2Jb".to_vec(), charset),
        (b"/nick a\x7fb".to_vec(), charset),
        ("/nick a\u{85}b".as_bytes().to_vec(), charset),
        (b"/nick [admin]".to_vec(), charset),
        (b"/nick a:b".to_vec(), charset),
        (b"/nick \"q\"".to_vec(), charset),
        (b"/nick a\rb".to_vec(), charset),
        (b"/nick USER2".to_vec(), "Invalid nickname: reserved\n"),
        (b"/nick user999999".to_vec(), "Invalid nickname: reserved\n"),
        (b"/nick BOB".to_vec(), "Invalid nickname: already in use\n"),
    ];
    for (line, want) in &cases {
        let mut l = line.clone();
        l.push(b'\n');
        a.send_raw(&l);
        a.expect(want);
    }
    for (line, want) in [
        (
            format!("/join {}", "r".repeat(33)),
            "Invalid room name: must be 1 to 32 characters\n",
        ),
        (
            "/join a\u{1}b".to_string(),
            "Invalid room name: must not contain spaces, control characters or [ ] : \"\n",
        ),
        (
            "/join [x]".to_string(),
            "Invalid room name: must not contain spaces, control characters or [ ] : \"\n",
        ),
    ] {
        a.send(&line);
        a.expect(want);
    }
    // None of it reached bob, and alice is still alice in the room.
    a.send("still alice");
    b.expect("[alice]: still alice\n");

    // Room hopping: one peer joins 2,000 distinct rooms in one pipelined burst. Each join
    // leaves the previous room, which is removed once empty: rooms do not pile up towards
    // MAX_ROOMS, and the burst is answered in order.
    let mut h = member(srv.addr, "hopper", "start");
    let rss0 = srv.rss_kib();
    let mut burst = String::new();
    for i in 0..2000 {
        burst.push_str(&format!("/join hop{i}\n"));
    }
    burst.push_str("/rooms\n/zz-sync\n");
    let t0 = Instant::now();
    let mut w = h.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(burst.as_bytes()).unwrap());
    for i in 0..2000 {
        h.expect(&format!("Joined room: hop{i}\n"));
    }
    writer.join().unwrap();
    h.expect("\nRooms:\n──────────────────────────────\n");
    let mut rooms = Vec::new();
    loop {
        let l = h.line();
        if l.starts_with("Unknown command: /zz-sync") {
            break;
        }
        if l.contains("member") {
            rooms.push(l);
        }
    }
    rooms.sort();
    assert_eq!(
        rooms,
        [
            format!("{ROOM} (2 members)\n"),
            "hop1999 (1 members)\n".to_string()
        ],
        "rooms piled up"
    );
    let took = t0.elapsed();
    let rss1 = srv.rss_kib();
    a.send("after the hops");
    b.expect("[alice]: after the hops\n");
    eprintln!(
        "chat names: {} bad nicknames and 3 bad room names refused with a clear error, 2 \
         invalid UTF-8 lines skipped; 2,000 room hops answered in {took:?}, 2 rooms left; \
         RSS {rss0} KiB -> {rss1} KiB",
        cases.len()
    );
}
