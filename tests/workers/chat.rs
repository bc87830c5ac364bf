//! `netloop serve chat --workers 3`: one room with members on every worker,
//! nicknames unique across workers, whispers that cross workers, and a slow
//! consumer evicted on its worker while the others go on.

use crate::lineclient::LineClient;
use crate::spread;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};

/// The reply to an unknown command: a marker that every line sent before
/// it to that client has been read (each worker answers in order).
const MARKER_REPLY: &str = "Unknown command: /sync-marker. Type /help for help\n";

/// The id in the welcome box line `║ Your ID: 12   ║`.
fn id_of(banner: &str) -> u64 {
    let rest = banner.split("Your ID: ").nth(1).expect("the id line");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// Connect and read the welcome box (8 lines); the member id.
fn member(addr: SocketAddr) -> (LineClient, u64) {
    let mut c = LineClient::connect(addr);
    let mut banner = String::new();
    for _ in 0..8 {
        banner.push_str(&c.line());
    }
    (c, id_of(&banner))
}

/// The lines `c` received before the reply to a marker.
fn sync(c: &mut LineClient) -> Vec<String> {
    c.send("/sync-marker");
    let mut seen = Vec::new();
    loop {
        let l = c.line();
        if l == MARKER_REPLY {
            return seen;
        }
        seen.push(l);
    }
}

#[test]
fn thirty_members_on_three_workers_get_every_message_once_in_order() {
    const MEMBERS: usize = 30;
    const SENDERS: [usize; 5] = [0, 7, 14, 21, 29];
    const K: u32 = 100;
    let w = spread::start("chat", 3, &[]);
    let mut members: Vec<(LineClient, u64)> = (0..MEMBERS).map(|_| member(w.addr())).collect();
    let ids: Vec<u64> = members.iter().map(|m| m.1).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        MEMBERS,
        "ids unique in the process: {ids:?}"
    );
    let per_worker = w.accepted();
    assert_eq!(per_worker.iter().sum::<u64>(), MEMBERS as u64);
    assert!(spread::busy(&per_worker) >= 2, "spread: {per_worker:?}");
    eprintln!("members per worker: {per_worker:?}");

    // Everyone joins, one after the other: the reply comes first (a member
    // in the lobby hears nothing of the room); the notices of later joins
    // arrive at each member from whichever worker the joiner is on.
    // Any case names the one room, on every worker.
    for (i, (c, _)) in members.iter_mut().enumerate() {
        c.send(&format!("/join {}", cased("hall", i)));
        c.expect("Joined room: hall\n");
    }
    // The last to join hears no join notice: `/rooms` comes next, counting
    // the members of every worker.
    let last = &mut members[MEMBERS - 1].0;
    last.send("/rooms");
    last.expect(&format!(
        "\nRooms:\n──────────────────────────────\nhall ({MEMBERS} members)\n"
    ));

    let senders: Vec<(TcpStream, u64)> = SENDERS
        .iter()
        .map(|&i| (members[i].0.w.try_clone().unwrap(), ids[i]))
        .collect();
    let sender_ids: Vec<u64> = senders.iter().map(|s| s.1).collect();
    let readers: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, (mut c, me))| {
            let later: BTreeSet<u64> = ids[i + 1..].iter().copied().collect();
            let from: Vec<u64> = sender_ids.iter().copied().filter(|&s| s != me).collect();
            std::thread::spawn(move || {
                let mut next: BTreeMap<u64, u32> = from.iter().map(|&s| (s, 0)).collect();
                let mut joined = BTreeSet::new();
                while next.values().any(|&n| n < K) || joined.len() < later.len() {
                    let l = c.line();
                    if let Some(nick) = l.strip_suffix(" joined the room\n") {
                        let j: u64 = nick.strip_prefix("user").unwrap().parse().unwrap();
                        assert!(later.contains(&j), "user{me}: unexpected {l:?}");
                        assert!(joined.insert(j), "user{me}: twice {l:?}");
                        continue;
                    }
                    let (nick, text) = l
                        .strip_prefix("[user")
                        .and_then(|r| r.split_once("]: "))
                        .unwrap_or_else(|| panic!("user{me}: unexpected {l:?}"));
                    let s: u64 = nick.parse().unwrap();
                    let want = next
                        .get_mut(&s)
                        .unwrap_or_else(|| panic!("user{me}: from a non-sender {l:?}"));
                    assert_eq!(
                        text,
                        format!("msg {s}.{}\n", *want),
                        "user{me}: user{s}'s messages once each, in order"
                    );
                    *want += 1;
                }
                assert_eq!(sync(&mut c), Vec::<String>::new(), "user{me}: nothing more");
                c // kept open until every member is done
            })
        })
        .collect();
    let writers: Vec<_> = senders
        .into_iter()
        .map(|(mut s, id)| {
            std::thread::spawn(move || {
                for seq in 0..K {
                    s.write_all(format!("msg {id}.{seq}\n").as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for t in writers {
        t.join().unwrap();
    }
    let done: Vec<LineClient> = readers
        .into_iter()
        .map(|t| t.join().expect("a member's messages"))
        .collect();
    drop(done);
}

/// `name` in the case `k` picks: nicknames are unique ignoring case.
fn cased(name: &str, k: usize) -> String {
    match k % 3 {
        0 => name.to_string(),
        1 => name.to_uppercase(),
        _ => name[..1].to_uppercase() + &name[1..],
    }
}

#[test]
fn twenty_clients_racing_for_one_nickname_one_wins() {
    const CLIENTS: usize = 20;
    let w = spread::start("chat", 3, &[]);
    let mut clients: Vec<(LineClient, u64)> = (0..CLIENTS).map(|_| member(w.addr())).collect();
    let per_worker = w.accepted();
    assert!(spread::busy(&per_worker) >= 2, "spread: {per_worker:?}");
    let mut winner = 0;
    for round in 0..3 {
        let name = format!("same{round}");
        let start = Arc::new(Barrier::new(CLIENTS));
        let racers: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(k, (mut c, id))| {
                let start = start.clone();
                // Round 1 races in three cases of one name.
                let mine = if round == 1 {
                    cased(&name, k)
                } else {
                    name.clone()
                };
                let key = name.clone();
                std::thread::spawn(move || {
                    start.wait();
                    c.send(&format!("/nick {mine}"));
                    let won = format!("Nickname changed to: {mine}\n");
                    let lost = "Invalid nickname: already in use\n";
                    let notice = format!(" is now known as {key}\n");
                    let mut heard = 0;
                    let won = loop {
                        let l = c.line();
                        if l == won {
                            break true;
                        } else if l == lost {
                            break false;
                        } else if l.to_lowercase().ends_with(&notice) {
                            heard += 1;
                        } else {
                            panic!("unexpected {l:?}");
                        }
                    };
                    (c, id, won, heard)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<usize> = (0..CLIENTS).filter(|&k| results[k].2).collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        winner = winners[0];
        // Every other client, on any worker, hears the winner exactly once.
        clients = Vec::new();
        for (mut c, id, won, mut heard) in results {
            if !won && heard == 0 {
                let l = c.line();
                assert!(
                    l.to_lowercase()
                        .ends_with(&format!(" is now known as {name}\n")),
                    "{l:?}"
                );
                heard = 1;
            }
            assert_eq!(heard, usize::from(!won), "user{id}");
            assert_eq!(sync(&mut c), Vec::<String>::new(), "user{id}: nothing more");
            clients.push((c, id));
        }
    }
    // The process's list: the last name once, everyone there.
    let c = &mut clients[(winner + 1) % CLIENTS].0;
    c.send("/list");
    let mut list = Vec::new();
    loop {
        let l = c.line();
        let done = l.starts_with("Total:");
        list.push(l);
        if done {
            break;
        }
    }
    assert_eq!(list.last().unwrap(), &format!("Total: {CLIENTS} online\n"));
    let named = list.iter().filter(|l| l.contains(". same2 [")).count();
    assert_eq!(named, 1, "{list:?}");
    // The winner leaves: its name is free again for every worker's members.
    let (mut gone, _) = clients.remove(winner);
    gone.send("/quit");
    gone.expect("Goodbye!\n");
    for (c, _) in clients.iter_mut() {
        c.expect("same2 left the server\n");
    }
    let c = &mut clients[CLIENTS / 2].0;
    c.send("/nick SAME2");
    c.expect("Nickname changed to: SAME2\n");
    for (k, (c, id)) in clients.iter_mut().enumerate() {
        if k != CLIENTS / 2 {
            let l = c.line();
            assert!(l.ends_with(" is now known as SAME2\n"), "user{id}: {l:?}");
        }
    }
}

#[test]
fn whispers_cross_workers_and_reach_only_their_target() {
    const CLIENTS: usize = 12;
    let w = spread::start("chat", 3, &[]);
    let mut clients: Vec<(LineClient, u64, usize)> = (0..CLIENTS)
        .map(|_| {
            let ((c, id), worker) = w.tracked(|| member(w.addr()));
            (c, id, worker)
        })
        .collect();
    let workers: BTreeSet<usize> = clients.iter().map(|c| c.2).collect();
    assert!(workers.len() >= 2, "spread over {workers:?}");
    let mut crossing = 0;
    for i in 0..CLIENTS {
        for j in 0..CLIENTS {
            if i == j {
                continue;
            }
            let (to, to_worker) = (clients[j].1, clients[j].2);
            let (from, from_worker) = (clients[i].1, clients[i].2);
            crossing += usize::from(from_worker != to_worker);
            let text = format!("from {from} on {from_worker} to {to} on {to_worker}");
            clients[i].0.send(&format!("/w USER{to} {text}"));
            clients[i]
                .0
                .expect(&format!("[whisper to user{to}]: {text}\n"));
            clients[j]
                .0
                .expect(&format!("[whisper from user{from}]: {text}\n"));
        }
    }
    assert!(crossing > 0);
    for (c, id, _) in clients.iter_mut() {
        assert_eq!(sync(c), Vec::<String>::new(), "user{id}: only its whispers");
    }
    // A member that left is offline for whispers from every worker, once
    // its departure has been told.
    let (mut gone, gone_id, _) = clients.pop().unwrap();
    gone.send("/quit");
    gone.expect("Goodbye!\n");
    for (c, _, _) in clients.iter_mut() {
        c.expect(&format!("user{gone_id} left the server\n"));
        c.send(&format!("/w user{gone_id} are you there"));
        c.expect(&format!("User \"user{gone_id}\" is not online\n"));
    }
}

/// A client with a tiny receive buffer that reads its welcome and then
/// never reads again.
fn non_reader(addr: SocketAddr) -> (TcpStream, u64) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(crate::lineclient::READ_TIMEOUT))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&got).ends_with("╝\n\n") {
        let n = s.read(&mut buf).expect("welcome");
        assert!(n > 0, "EOF before the welcome");
        got.extend_from_slice(&buf[..n]);
    }
    let id = id_of(&String::from_utf8(got).unwrap());
    (s, id)
}

#[test]
fn a_slow_consumer_on_one_worker_is_evicted_without_stalling_the_others() {
    let w = spread::start("chat", 3, &["--max-write-buffer", "256KiB"]);
    let ((mut stalled, stalled_id), stalled_worker) = w.tracked(|| non_reader(w.addr()));
    // Roles by worker: the flooder elsewhere (its messages reach the
    // stalled member through the backplane), one reader beside the stalled
    // member (its worker must keep serving it), one reader elsewhere.
    let mut flooder = None;
    let mut near = None;
    let mut far = None;
    let mut spare = Vec::new();
    for _ in 0..60 {
        if flooder.is_some() && near.is_some() && far.is_some() {
            break;
        }
        let ((c, id), worker) = w.tracked(|| member(w.addr()));
        if worker == stalled_worker && near.is_none() {
            near = Some((c, id));
        } else if worker != stalled_worker && flooder.is_none() {
            flooder = Some((c, id));
        } else if worker != stalled_worker && far.is_none() {
            far = Some((c, id));
        } else {
            spare.push(c); // stays in the lobby, away from the flood
        }
    }
    let (mut flooder, flooder_id) = flooder.expect("a member on another worker");
    let (mut near, near_id) = near.expect("a member on the stalled member's worker");
    let (mut far, far_id) = far.expect("a second member on another worker");

    near.send("/join flood");
    near.expect("Joined room: flood\n");
    far.send("/join flood");
    far.expect("Joined room: flood\n");
    near.expect(&format!("user{far_id} joined the room\n"));
    stalled.write_all(b"/join flood\n").unwrap();
    for c in [&mut near, &mut far] {
        c.expect(&format!("user{stalled_id} joined the room\n"));
    }
    flooder.send("/join flood");
    flooder.expect("Joined room: flood\n");
    for c in [&mut near, &mut far] {
        c.expect(&format!("user{flooder_id} joined the room\n"));
    }

    // 12 MiB in 1 KiB lines: far more than the cap plus the kernel's
    // buffers of the stalled connection.
    const LINES: usize = 12 * 1024;
    let payload = "m".repeat(1000);
    let evicted = format!("user{stalled_id} was disconnected: not reading\n");
    let readers: Vec<_> = [(near, near_id), (far, far_id)]
        .into_iter()
        .map(|(mut c, id)| {
            let payload = payload.clone();
            let evicted = evicted.clone();
            let left_room = format!("user{stalled_id} left the room\n");
            std::thread::spawn(move || {
                let mut got = 0;
                let mut told = 0;
                let mut left = 0;
                while got < LINES || told == 0 {
                    let l = c.line();
                    if l == evicted {
                        assert_eq!(left, 1, "user{id}: the room is told first");
                        told += 1;
                        continue;
                    }
                    if l == left_room {
                        left += 1;
                        continue;
                    }
                    let want = format!("[user{flooder_id}]: {got:06}{payload}\n");
                    if l != want {
                        let short: String = l.chars().take(40).collect();
                        panic!(
                            "user{id}: message {got} in order, got {short:?} ({} bytes)",
                            l.len()
                        );
                    }
                    got += 1;
                }
                assert_eq!(told, 1, "user{id}");
                assert_eq!(sync(&mut c), Vec::<String>::new(), "user{id}: nothing more");
                c
            })
        })
        .collect();
    let mut out = flooder.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut batch = String::new();
        for i in 0..LINES {
            batch.push_str(&format!("{i:06}{payload}\n"));
            if batch.len() > 64 * 1024 {
                out.write_all(batch.as_bytes()).unwrap();
                batch.clear();
            }
        }
        out.write_all(batch.as_bytes()).unwrap();
    });
    writer.join().unwrap();
    let readers: Vec<LineClient> = readers
        .into_iter()
        .map(|r| {
            r.join()
                .expect("a reader got everything and the notice once")
        })
        .collect();
    // The flooder, on another worker than the evicted member, is told too.
    flooder.expect(&format!("user{stalled_id} left the room\n{evicted}"));
    assert_eq!(sync(&mut flooder), Vec::<String>::new());
    w.srv.wait_log("slow consumer");
    // The stalled connection was closed by its worker.
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match stalled.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    drop((readers, spare));
}

#[test]
fn members_behind_the_token_guard_share_a_room_across_workers() {
    const CLIENTS: usize = 12;
    const TOKEN: &str = "w0rkers-Tok3n-51";
    let dir = std::env::temp_dir().join(format!("netloop-workers-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let w = spread::start("chat", 3, &["--token", file.to_str().unwrap()]);
    let mut clients: Vec<(LineClient, u64, usize)> = (0..CLIENTS)
        .map(|_| {
            let ((c, id), worker) = w.tracked(|| {
                let mut c = LineClient::connect(w.addr());
                c.send(&format!("/auth {TOKEN}"));
                // The guard's prompt may come first.
                assert_eq!(c.until("authenticated"), "authenticated\n");
                let mut banner = String::new();
                for _ in 0..8 {
                    banner.push_str(&c.line());
                }
                let id = id_of(&banner);
                (c, id)
            });
            (c, id, worker)
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let workers: BTreeSet<usize> = clients.iter().map(|c| c.2).collect();
    assert!(workers.len() >= 2, "spread over {workers:?}");
    for (i, (c, _, _)) in clients.iter_mut().enumerate() {
        c.send(&format!("/join {}", cased("dev", i)));
        c.expect("Joined room: dev\n");
    }
    let ids: Vec<u64> = clients.iter().map(|c| c.1).collect();
    for (i, (c, me, _)) in clients.iter_mut().enumerate() {
        for j in &ids[i + 1..] {
            c.expect(&format!("user{j} joined the room\n"));
        }
        c.send(&format!("hello from {me}"));
    }
    for (i, (c, me, _)) in clients.iter_mut().enumerate() {
        let mut got: Vec<String> = (0..CLIENTS - 1).map(|_| c.line()).collect();
        got.sort();
        let mut want: Vec<String> = ids
            .iter()
            .filter(|&&j| j != *me)
            .map(|j| format!("[user{j}]: hello from {j}\n"))
            .collect();
        want.sort();
        assert_eq!(got, want, "member {i}");
    }
}

#[test]
fn shutdown_tells_every_member_on_every_worker_once_and_exits_0() {
    const MEMBERS: usize = 30;
    let mut w = spread::start("chat", 3, &["--grace", "5s"]);
    let mut members: Vec<(LineClient, u64)> = (0..MEMBERS).map(|_| member(w.addr())).collect();
    let per_worker = w.accepted();
    assert!(spread::busy(&per_worker) >= 2, "spread: {per_worker:?}");
    // Half in a room, half in the lobby.
    for (c, _) in members.iter_mut().skip(MEMBERS / 2) {
        c.send("/join late");
        c.expect("Joined room: late\n");
    }
    // Room members hear the later joins (from any worker, in any order).
    let ids: Vec<u64> = members.iter().map(|m| m.1).collect();
    for (i, (c, id)) in members.iter_mut().enumerate() {
        let mut later: BTreeSet<String> = BTreeSet::new();
        if i >= MEMBERS / 2 {
            later = ids[i + 1..]
                .iter()
                .map(|j| format!("user{j} joined the room\n"))
                .collect();
        }
        while !later.is_empty() {
            let l = c.line();
            assert!(later.remove(&l), "user{id}: {l:?}");
        }
        assert_eq!(sync(c), Vec::<String>::new(), "user{id}");
    }
    // Every member reads to the end and closes at once, as a real client
    // does: its worker then sees it leave while the others shut down.
    let readers: Vec<_> = members
        .into_iter()
        .map(|(mut c, id)| std::thread::spawn(move || (c.rest(), id)))
        .collect();
    w.srv.signal("TERM");
    // Each member hears the notice, then the end: not the departures of
    // members on the other workers, which shut down at the same time.
    for r in readers {
        let (rest, id) = r.join().unwrap();
        assert_eq!(rest, "Server shutting down\n", "user{id}");
    }
    assert_eq!(w.srv.wait_exit(), Some(0));
}

#[test]
fn the_room_cap_is_for_the_whole_process() {
    const ROOMS: usize = netloop::servers::chat::MAX_ROOMS;
    let w = spread::start("chat", 3, &[]);
    let mut members: Vec<LineClient> = Vec::with_capacity(ROOMS);
    for i in 0..ROOMS {
        let (mut c, _) = member(w.addr());
        c.send(&format!("/join r{i}"));
        c.expect(&format!("Joined room: r{i}\n"));
        members.push(c);
    }
    let per_worker = w.accepted();
    assert_eq!(spread::busy(&per_worker), 3, "{per_worker:?}");
    // Whichever worker asks, one room more is refused (not 3 × the cap).
    for i in [0, ROOMS / 2, ROOMS - 1] {
        members[i].send("/join extra");
        members[i].expect("Too many rooms; join an existing one\n");
    }
    let (mut late, _) = member(w.addr());
    late.send("/join EXTRA");
    late.expect("Too many rooms; join an existing one\n");
    // An existing room, in any case, is always open.
    late.send("/join R7");
    late.expect("Joined room: r7\n");
    members[7].expect(&format!("user{} joined the room\n", ROOMS + 1));
    // One room emptied: one new room may be made, from any worker.
    members[0].send("/leave");
    members[0].expect("Left room: r0\n");
    late.send("/join extra"); // r7 stays, with members[7]
    late.expect("Joined room: extra\n");
    members[ROOMS - 1].send("/join another");
    members[ROOMS - 1].expect("Too many rooms; join an existing one\n");
    members[1].send("/join another");
    members[1].expect("Too many rooms; join an existing one\n");
}

/// The next line that is not another member's departure or rename notice
/// (which reach every member, from every worker, in their own time).
fn reply(c: &mut LineClient) -> String {
    loop {
        let l = c.line();
        if !l.ends_with(" left the server\n") && !l.contains(" is now known as ") {
            return l;
        }
    }
}

#[test]
fn a_member_that_quits_is_gone_on_every_worker_by_its_goodbye() {
    const CLIENTS: usize = 12;
    let w = spread::start("chat", 3, &[]);
    let mut clients: Vec<(LineClient, u64, usize)> = (0..CLIENTS)
        .map(|_| {
            let ((c, id), worker) = w.tracked(|| member(w.addr()));
            (c, id, worker)
        })
        .collect();
    let (mut observer, _, at) = clients.remove(0);
    // The members beside the observer stay (and stay connected).
    let (quitters, _beside): (Vec<_>, Vec<_>) = clients.into_iter().partition(|c| c.2 != at);
    assert!(!quitters.is_empty(), "members on another worker than {at}");
    let mut online = CLIENTS;
    for (k, (mut q, id, worker)) in quitters.into_iter().enumerate() {
        let name = format!("gone{k}");
        q.send(&format!("/nick {name}"));
        assert_eq!(reply(&mut q), format!("Nickname changed to: {name}\n"));
        q.send("/quit");
        assert_eq!(reply(&mut q), "Goodbye!\n");
        online -= 1;
        // Right after the goodbye, another worker's member neither lists
        // it nor finds its name taken.
        observer.send("/list");
        let mut list = vec![reply(&mut observer)];
        while !list.last().unwrap().starts_with("Total:") {
            list.push(reply(&mut observer));
        }
        assert!(
            !list.iter().any(|l| l.contains(&format!(" {name} ["))),
            "user{id} (worker {worker}) listed on worker {at} after its goodbye: {list:?}"
        );
        assert_eq!(list.last().unwrap(), &format!("Total: {online} online\n"));
        observer.send(&format!("/nick {name}"));
        assert_eq!(
            reply(&mut observer),
            format!("Nickname changed to: {name}\n"),
            "user{id}'s name is free on worker {at} after its goodbye"
        );
    }
}

#[test]
fn a_member_that_times_out_is_gone_on_every_worker_by_its_notice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let w = spread::start("chat", 3, &["--idle-timeout", "1s"]);
    for round in 0..2 {
        let ((mut idle, idle_id), idle_at) = w.tracked(|| member(w.addr()));
        let name = format!("idle{round}");
        idle.send(&format!("/nick {name}"));
        assert_eq!(reply(&mut idle), format!("Nickname changed to: {name}\n"));
        // An observer on another worker, kept busy (round trips, never
        // idle) until the idle member is told it timed out.
        let mut others = Vec::new();
        let (mut observer, at) = loop {
            assert!(others.len() < 40, "a member on another worker");
            let ((c, _), at) = w.tracked(|| member(w.addr()));
            if at != idle_at {
                break (c, at);
            }
            others.push(c);
        };
        let stop = Arc::new(AtomicBool::new(false));
        let busy = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    observer.send("/rooms");
                    observer.until("No active rooms");
                }
                observer
            })
        };
        assert_eq!(reply(&mut idle), "Connection timed out, disconnecting\n");
        stop.store(true, Ordering::SeqCst);
        let mut observer = busy.join().unwrap();
        observer.send("/list");
        let mut list = vec![reply(&mut observer)];
        while !list.last().unwrap().starts_with("Total:") {
            list.push(reply(&mut observer));
        }
        assert!(
            !list.iter().any(|l| l.contains(&format!(" {name} ["))),
            "user{idle_id} (worker {idle_at}) listed on worker {at} after its timeout: {list:?}"
        );
        drop((observer, others));
    }
}
