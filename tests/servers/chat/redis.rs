//! `netloop serve chat --redis`: several chat processes joined by a real
//! `redis-server` (started here on a free loopback port with a temporary
//! directory, stopped by pid). Without `redis-server` on the PATH each test
//! prints why it skipped and returns.

use crate::{lineclient, util};
use lineclient::LineClient;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::{wait_until, Server};

/// A `redis-server` of this test, on its own port and directory.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    /// Start one, or `None` (with the reason printed) if the binary is
    /// missing.
    fn start(test: &str) -> Option<Redis> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!(
                "SKIPPED {test}: redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("netloop-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server answers PING", || {
            ping(port).is_some_and(|r| r == "+PONG")
        });
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} redis-server");
    }

    /// Stop it (SIGKILL by pid) and reap it.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One command through `redis-cli`, its raw output lines.
    fn cli(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The room channels someone is subscribed to, as room keys.
    fn room_channels(&self) -> BTreeSet<String> {
        self.cli(&["PUBSUB", "CHANNELS", "netloop:chat:room:*"])
            .into_iter()
            .map(|c| c.trim_start_matches("netloop:chat:room:").to_string())
            .collect()
    }

    /// How many nodes subscribe to room `key`.
    fn room_subscribers(&self, key: &str) -> usize {
        let out = self.cli(&["PUBSUB", "NUMSUB", &format!("netloop:chat:room:{key}")]);
        out.get(1).and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A SIGSTOPped server must be continued to die of SIGKILL's reap.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(c.id().to_string())
                .status();
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `PING` over a fresh connection: the status line, if any.
fn ping(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"PING\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}

/// A chat node on `redis`, ready (connected, with its id block).
fn node(redis: &Redis, name: &str, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec![
        "serve",
        "chat",
        "--port",
        "0",
        "--redis",
        &url,
        "--node-id",
        name,
    ];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    srv.wait_log("redis: member ids from");
    srv
}

/// Connect and read the banner (8 lines).
fn join(srv: &Server) -> LineClient {
    let mut c = LineClient::connect(srv.addr);
    for _ in 0..8 {
        c.line();
    }
    c
}

/// `/nick name`, waiting for the confirmation (other lines skipped).
fn nick(c: &mut LineClient, name: &str) {
    c.send(&format!("/nick {name}"));
    c.until(&format!("Nickname changed to: {name}"));
}

/// `/join room`, waiting for the confirmation.
fn enter(c: &mut LineClient, room: &str) {
    c.send(&format!("/join {room}"));
    c.until(&format!("Joined room: {room}"));
}

/// Lines until one equals `last` (included).
fn collect_until(c: &mut LineClient, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let l = c.line();
        let done = l == last;
        seen.push(l);
        if done {
            return seen;
        }
    }
}

/// Lines until every line of `lasts` was seen.
fn collect_until_all(c: &mut LineClient, lasts: &[String]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut left: BTreeSet<&String> = lasts.iter().collect();
    while !left.is_empty() {
        let l = c.line();
        left.remove(&l);
        seen.push(l);
    }
    seen
}

/// Send `after-<k>` from `from` until `to` receives a line starting with
/// `want` (bounded by the test timeout).
fn resumes(from: &mut LineClient, to: &mut LineClient, want: &str) {
    let start = Instant::now();
    to.r.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut line = String::new();
    for k in 0.. {
        assert!(start.elapsed() < util::TIMEOUT, "delivery did not resume");
        from.send(&format!("after-{k}"));
        loop {
            match to.r.read_line(&mut line) {
                Ok(0) => panic!("EOF"),
                Ok(_) if line.starts_with(want) => {
                    to.r.get_ref()
                        .set_read_timeout(Some(lineclient::READ_TIMEOUT))
                        .unwrap();
                    return;
                }
                Ok(_) => line.clear(),
                // Partial data stays in `line` (BufRead::read_line's contract).
                Err(_) => break,
            }
        }
    }
}

/// Three nodes: room messages, join/leave/nick notices and whispers cross
/// them, each exactly once, one sender's in order; other rooms get nothing.
#[test]
fn three_nodes_relay_rooms_notices_and_whispers_exactly_once_in_order() {
    let Some(redis) = Redis::start("three_nodes") else {
        return;
    };
    let (na, nb, nc) = (
        node(&redis, "a", &[]),
        node(&redis, "b", &[]),
        node(&redis, "c", &[]),
    );
    let mut x = join(&na);
    let mut y = join(&nc);
    enter(&mut x, "other");
    enter(&mut y, "other");
    nick(&mut y, "yves");
    let mut a = join(&na);
    let mut b = join(&nb);
    let mut c = join(&nc);
    enter(&mut a, "dev");
    nick(&mut a, "alice");
    enter(&mut b, "dev");
    wait_until("two nodes subscribe to dev", || {
        redis.room_subscribers("dev") == 2
    });
    a.until("joined the room");
    nick(&mut b, "bob");
    a.until("is now known as bob");
    enter(&mut c, "dev");
    wait_until("three nodes subscribe to dev", || {
        redis.room_subscribers("dev") == 3
    });
    for p in [&mut a, &mut b] {
        p.until("joined the room");
    }
    nick(&mut c, "carol");
    // The nick notice crossed to both other nodes.
    for p in [&mut a, &mut b] {
        let l = p.until("is now known as carol");
        assert!(l.ends_with(" is now known as carol\n"), "{l}");
    }

    const N: usize = 30;
    for i in 0..N {
        a.send(&format!("m-a-{i}"));
        b.send(&format!("m-b-{i}"));
        c.send(&format!("m-c-{i}"));
    }
    x.send("secret-x");
    b.send("/w alice hi-from-bob");
    c.send("/w bob hi-from-carol");
    a.send("end-a");
    b.send("end-b");
    c.send("end-c");
    y.send("end-y");

    let who = [("a", "alice"), ("b", "bob"), ("c", "carol")];
    for (me, cl) in [("a", &mut a), ("b", &mut b), ("c", &mut c)] {
        let lasts: Vec<String> = who
            .iter()
            .filter(|(w, _)| *w != me)
            .map(|(w, n)| format!("[{n}]: end-{w}\n"))
            .collect();
        let seen = collect_until_all(cl, &lasts);
        for (w, n) in who.iter().filter(|(w, _)| *w != me) {
            let got: Vec<&String> = seen
                .iter()
                .filter(|l| l.starts_with(&format!("[{n}]: m-{w}-")))
                .collect();
            let want: Vec<String> = (0..N).map(|i| format!("[{n}]: m-{w}-{i}\n")).collect();
            assert_eq!(got, want.iter().collect::<Vec<_>>(), "{me} from {w}");
        }
        assert!(
            !seen.iter().any(|l| l.contains(&format!("m-{me}-"))),
            "{me}: own echo"
        );
        assert!(
            !seen
                .iter()
                .any(|l| l.contains("secret") || l.contains("end-y")),
            "{me}: {seen:?}"
        );
        let whispers: Vec<&String> = seen.iter().filter(|l| l.contains("whisper from")).collect();
        match me {
            "a" => assert_eq!(whispers, ["[whisper from bob]: hi-from-bob\n"]),
            "b" => assert_eq!(whispers, ["[whisper from carol]: hi-from-carol\n"]),
            _ => assert!(whispers.is_empty(), "{whispers:?}"),
        }
        // The sender's confirmation comes when Redis answered: maybe later.
        let confirm = match me {
            "b" => Some("[whisper to alice]: hi-from-bob\n"),
            "c" => Some("[whisper to bob]: hi-from-carol\n"),
            _ => None,
        };
        if let Some(want) = confirm {
            if !seen.iter().any(|l| l == want) {
                assert_eq!(cl.until("[whisper to"), want);
            }
        }
    }
    // The other room heard none of it.
    let seen = collect_until(&mut x, "[yves]: end-y\n");
    assert!(
        !seen.iter().any(|l| l.contains("m-") || l.contains("end-a")),
        "{seen:?}"
    );

    // Leave and departure notices cross too, once each.
    c.send("/leave");
    c.until("Left room: dev");
    c.send("/quit");
    c.until("Goodbye");
    for p in [&mut a, &mut b] {
        let seen = collect_until_all(p, &["carol left the server\n".to_string()]);
        let left: Vec<&String> = seen.iter().filter(|l| l.contains("carol left")).collect();
        assert_eq!(
            left,
            ["carol left the room\n", "carol left the server\n"],
            "{seen:?}"
        );
    }
    // /list and /rooms show every node's members.
    a.send("/list");
    let l = a.until("Total:");
    assert!(l.contains("4 online"), "{l}");
    a.send("/rooms");
    a.until("dev (2 members)");
    drop((nb, nc));
}

/// Twenty clients on three nodes claim one nickname at once: one wins.
#[test]
fn twenty_clients_on_three_nodes_race_for_a_nickname_and_one_wins() {
    let Some(redis) = Redis::start("nick_race") else {
        return;
    };
    let nodes = [
        node(&redis, "a", &[]),
        node(&redis, "b", &[]),
        node(&redis, "c", &[]),
    ];
    let mut clients: Vec<LineClient> = (0..20).map(|i| join(&nodes[i % 3])).collect();
    for c in clients.iter_mut() {
        c.send_raw(b"/nick racer\n");
    }
    let mut winners = 0;
    for c in clients.iter_mut() {
        loop {
            let l = c.line();
            if l == "Nickname changed to: racer\n" {
                winners += 1;
                break;
            }
            if l.contains("already in use") {
                break;
            }
        }
    }
    assert_eq!(winners, 1);
}

/// A node killed with SIGKILL frees its names within the claim expiry.
#[test]
fn a_killed_node_frees_its_names_within_the_expiry() {
    let Some(redis) = Redis::start("sigkill") else {
        return;
    };
    let ttl = ["--redis-claim-ttl", "1s"];
    let na = node(&redis, "a", &ttl);
    let nb = node(&redis, "b", &ttl);
    let mut a = join(&na);
    nick(&mut a, "ghost");
    let mut b = join(&nb);
    b.send("/nick ghost");
    b.until("already in use");
    na.signal("KILL");
    let killed = Instant::now();
    // Ask again until the claim expired (bounded: the expiry plus slack).
    loop {
        b.send("/nick ghost");
        let l = b.until("ickname");
        if l == "Nickname changed to: ghost\n" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "still taken: {l}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        killed.elapsed() >= Duration::from_millis(500),
        "freed before the expiry"
    );
}

/// Only rooms with members are channels, each subscribed by the nodes
/// holding its members.
#[test]
fn only_rooms_with_members_are_subscribed() {
    let Some(redis) = Redis::start("pubsub_channels") else {
        return;
    };
    let (na, nb) = (node(&redis, "a", &[]), node(&redis, "b", &[]));
    let mut a = join(&na);
    let mut b = join(&nb);
    let mut b2 = join(&nb);
    assert!(redis.room_channels().is_empty());
    enter(&mut a, "Dev");
    enter(&mut b, "ops");
    enter(&mut b2, "ops");
    let want: BTreeSet<String> = ["dev".to_string(), "ops".to_string()].into();
    wait_until("dev and ops", || redis.room_channels() == want);
    assert_eq!(redis.room_subscribers("dev"), 1, "only node a");
    assert_eq!(redis.room_subscribers("ops"), 1, "only node b, once");
    enter(&mut a, "ops");
    wait_until("dev gone, ops on both", || {
        redis.room_channels() == BTreeSet::from(["ops".to_string()])
            && redis.room_subscribers("ops") == 2
    });
    b.send("/leave");
    b.until("Left room: ops");
    assert_eq!(redis.room_subscribers("ops"), 2, "b2 still there");
    b2.send("/quit");
    b2.until("Goodbye");
    wait_until("ops on a only", || redis.room_subscribers("ops") == 1);
    a.send("/quit");
    a.until("Goodbye");
    wait_until("no room channels", || redis.room_channels().is_empty());
}

/// Redis stopped and restarted: local chat goes on, members are told once
/// each way, cross-node delivery resumes, the loss is counted.
#[test]
fn redis_restart_keeps_local_chat_tells_once_and_resumes() {
    let Some(mut redis) = Redis::start("restart") else {
        return;
    };
    let (na, nb) = (node(&redis, "a", &[]), node(&redis, "b", &[]));
    let mut a = join(&na);
    let mut a2 = join(&na);
    let mut b = join(&nb);
    for c in [&mut a, &mut a2, &mut b] {
        enter(c, "dev");
    }
    nick(&mut a, "alice");
    wait_until("both nodes on dev", || redis.room_subscribers("dev") == 2);
    a.send("before");
    b.until("[alice]: before");

    redis.stop();
    for c in [&mut a, &mut a2, &mut b] {
        c.until("Other servers are unreachable");
    }
    // Local chat throughout, while Redis is away (down for a while).
    let down = Instant::now();
    let mut i = 0;
    while down.elapsed() < Duration::from_secs(3) {
        a.send(&format!("local-{i}"));
        a2.until(&format!("[alice]: local-{i}"));
        i += 1;
    }
    redis.spawn();
    for c in [&mut a, &mut a2, &mut b] {
        let seen = collect_until(c, "Other servers are reachable again\n");
        assert!(
            !seen.iter().any(|l| l.contains("unreachable")),
            "told twice: {seen:?}"
        );
    }
    wait_until("both nodes back on dev", || {
        redis.room_subscribers("dev") == 2
    });
    a.send("after");
    let seen = collect_until(&mut b, "[alice]: after\n");
    assert!(!seen.iter().any(|l| l.contains("local-")), "{seen:?}");
    let line = na.wait_log("were not delivered");
    assert!(line.contains(&format!("{i} messages")), "{line}");
    // The name was claimed again: nobody else may take it.
    b.send("/nick alice");
    b.until("already in use");
}

/// A Redis that stops reading (SIGSTOP) does not stall local chat, and the
/// node's memory stays bounded while it publishes into it: the outbox
/// towards Redis is capped and what passes the cap is dropped and counted.
#[test]
fn a_stopped_redis_does_not_stall_local_chat_and_memory_stays_bounded() {
    let Some(redis) = Redis::start("sigstop") else {
        return;
    };
    // A long reply timeout: the link stays "up" while Redis sleeps, so only
    // the outbox cap bounds what node a holds for it.
    let na = node(&redis, "a", &["--redis-reply-timeout", "120s"]);
    let nb = node(&redis, "b", &[]);
    let mut a = join(&na);
    let mut a2 = join(&na);
    let mut b = join(&nb);
    for c in [&mut a, &mut a2, &mut b] {
        enter(c, "dev");
    }
    nick(&mut a, "alice");
    wait_until("both nodes on dev", || redis.room_subscribers("dev") == 2);
    a2.until("is now known as alice");
    let rss_before = na.rss_kib();
    redis.signal("STOP");
    // 40 MB of chat through node a while Redis reads nothing, in batches
    // the local reader takes in as they come.
    let body = "x".repeat(1000);
    const BATCH: usize = 500;
    for batch in 0..80 {
        let mut chunk = String::new();
        for i in 0..BATCH {
            chunk.push_str(&format!("{batch}-{i} {body}\n"));
        }
        a.send_raw(chunk.as_bytes());
        for i in 0..BATCH {
            // Notices (b's join) may come between; messages in order.
            let l = a2.until("[alice]: ");
            assert!(l.starts_with(&format!("[alice]: {batch}-{i} ")), "{l:.60}");
        }
    }
    let grown = na.rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "node a grew by {grown} KiB");
    redis.signal("CONT");
    // Cross-node delivery goes on (b may first get what was queued, and
    // node b may be reconnecting: Redis counts its stale subscriptions
    // until it has read their closes, so ask until one arrives).
    resumes(&mut a, &mut b, "[alice]: after-");
    na.signal("TERM");
    let summary = na.wait_log("redis node a:");
    let dropped: u64 = summary
        .split("dropped (queue full) ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("dropped count");
    assert!(dropped > 0, "{summary}");
    drop(nb);
}

/// While Redis is away a nickname is decided locally, so two nodes may
/// hand out the same one; when Redis is back one claim wins and the other
/// node's member is renamed to its default name and told.
#[test]
fn a_nickname_taken_twice_while_apart_is_resolved_when_redis_is_back() {
    let Some(mut redis) = Redis::start("partition_nick") else {
        return;
    };
    let (na, nb) = (node(&redis, "a", &[]), node(&redis, "b", &[]));
    let mut a = join(&na);
    let mut b = join(&nb);
    nick(&mut a, "alice");
    redis.stop();
    a.until("Other servers are unreachable");
    b.until("Other servers are unreachable");
    nick(&mut b, "Alice");
    redis.spawn();
    a.until("Other servers are reachable again");
    b.until("Other servers are reachable again");
    let mut owner = String::new();
    wait_until("a node holds the name", || {
        owner = redis
            .cli(&["GET", "netloop:chat:nick:alice"])
            .first()
            .cloned()
            .unwrap_or_default();
        !owner.is_empty()
    });
    let (loser, winner, old) = match owner.split(' ').next() {
        Some("a") => (&mut b, &mut a, "Alice"),
        Some("b") => (&mut a, &mut b, "alice"),
        _ => panic!("owner {owner:?}"),
    };
    let l = loser.until("is taken on another server");
    assert!(
        l.starts_with(&format!(
            "Nickname {old} is taken on another server: you are now user"
        )),
        "{l}"
    );
    winner.send("/sync-marker");
    let seen = collect_until(
        winner,
        "Unknown command: /sync-marker. Type /help for help\n",
    );
    assert!(
        !seen.iter().any(|l| l.contains("taken on another")),
        "{seen:?}"
    );
}

/// `netloop bench fanout --member-target`: the sender on one node, 50
/// members on another; every delivery crosses Redis, each verified exactly
/// once and in order by the generator.
#[test]
fn fanout_across_two_nodes_delivers_every_message_once_in_order() {
    let Some(redis) = Redis::start("fanout_across") else {
        return;
    };
    let (na, nb) = (node(&redis, "a", &[]), node(&redis, "b", &[]));
    let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["bench", "fanout", "-c", "50", "--pipeline", "4"])
        .args(["-d", "500ms", "--warmup", "200ms", "--json"])
        .args(["--target", &na.addr.to_string()])
        .args(["--member-target", &nb.addr.to_string()])
        .output()
        .expect("run bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json report");
    assert_eq!(v["delivery_errors"], 0, "{text}");
    assert!(v["ops"].as_u64().unwrap_or(0) > 0, "{text}");
}

/// GET /metrics at `addr`: the body.
fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("metrics endpoint");
    s.set_read_timeout(Some(util::TIMEOUT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).expect("read metrics");
    out
}

/// The value of the sample `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The Redis figures are on the metrics endpoint, labelled by node.
#[test]
fn redis_figures_are_on_the_metrics_endpoint() {
    let Some(redis) = Redis::start("metrics") else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let maddr = format!("127.0.0.1:{port}");
    let na = node(&redis, "a", &["--metrics", &maddr]);
    let nb = node(&redis, "b", &[]);
    let mut a = join(&na);
    let mut b = join(&nb);
    enter(&mut a, "dev");
    enter(&mut b, "dev");
    wait_until("both nodes on dev", || redis.room_subscribers("dev") == 2);
    resumes(&mut b, &mut a, "[user");
    a.send("hello");
    b.until("]: hello");
    let text = scrape(&maddr);
    assert!(
        text.contains("# TYPE netloop_chat_redis_published_total counter"),
        "{text}"
    );
    let got = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("no {s} in {text}"));
    assert_eq!(got("netloop_chat_redis_up{node=\"a\"}"), 1.0);
    assert!(got("netloop_chat_redis_published_total{node=\"a\"}") >= 2.0);
    assert!(got("netloop_chat_redis_received_total{node=\"a\"}") >= 1.0);
    // node, all, lobby channels and the room: at least the node's and dev.
    assert!(got("netloop_chat_redis_subscriptions{node=\"a\"}") >= 2.0);
    assert_eq!(got("netloop_chat_redis_undelivered_total{node=\"a\"}"), 0.0);
    assert!(got("netloop_chat_redis_rtt_max_seconds{node=\"a\"}") > 0.0);
}

/// With `--workers 2` each worker is a node of its own (`ID.0`, `ID.1`):
/// a room message reaches the members of both workers exactly once.
#[test]
fn workers_of_one_process_are_nodes_of_their_own() {
    let Some(redis) = Redis::start("workers") else {
        return;
    };
    let url = redis.url();
    let srv = Server::start(&[
        "serve",
        "chat",
        "--port",
        "0",
        "--workers",
        "2",
        "--redis",
        &url,
        "--node-id",
        "w",
    ]);
    // Both workers connect and get their id blocks, in either order.
    let mut connected = BTreeSet::new();
    let mut blocks_in = 0;
    while connected.len() < 2 || blocks_in < 2 {
        let l = srv.wait_log("redis: ");
        if let Some(node) = l.split("as node ").nth(1) {
            connected.insert(node.to_string());
        }
        if l.contains("member ids from") {
            blocks_in += 1;
        }
    }
    assert_eq!(
        connected,
        BTreeSet::from(["w.0".to_string(), "w.1".to_string()])
    );
    // The kernel spreads connections by a hash; each worker's ids come
    // from its own block of 1000, so the id tells the worker. Connect
    // until both have members (bounded).
    let mut cs: Vec<LineClient> = Vec::new();
    let mut ids = Vec::new();
    let mut blocks = BTreeSet::new();
    while blocks.len() < 2 || cs.len() < 4 {
        assert!(cs.len() < 64, "every connection went to one worker");
        let mut c = LineClient::connect(srv.addr);
        let mut id = 0u64;
        for _ in 0..8 {
            let l = c.line();
            if let Some(rest) = l.split("Your ID: ").nth(1) {
                id = rest
                    .trim_end_matches(|ch: char| !ch.is_ascii_digit())
                    .trim()
                    .parse()
                    .unwrap();
            }
        }
        blocks.insert((id - 1) / 1000);
        ids.push(id);
        cs.push(c);
    }
    for c in cs.iter_mut() {
        enter(c, "dev");
    }
    wait_until("both workers subscribe to dev", || {
        redis.room_subscribers("dev") == 2
    });
    let (first, rest) = cs.split_first_mut().unwrap();
    first.send("hi");
    first.send("end");
    let nick = format!("user{}", ids[0]);
    for c in rest.iter_mut() {
        let seen = collect_until(c, &format!("[{nick}]: end\n"));
        let his: Vec<&String> = seen.iter().filter(|l| l.contains("]: hi")).collect();
        assert_eq!(his, [&format!("[{nick}]: hi\n")], "{seen:?}");
    }
}

/// `--redis` and `--node-id` are checked before anything starts.
#[test]
fn bad_redis_options_are_refused_with_one_line() {
    for (args, want) in [
        (
            &["--redis", "http://127.0.0.1:6379"][..],
            "expected redis://HOST:PORT[/DB]",
        ),
        (
            &["--redis", "redis://127.0.0.1:6379", "--node-id", "a b"][..],
            "only letters",
        ),
        (&["--node-id", "a"][..], "--redis"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
            .args(["serve", "chat", "--port", "0"])
            .args(args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// A `/nick` waits for Redis's answer; a second one sent before it is
/// refused as pending (one change at a time), the first one completes.
#[test]
fn one_nickname_change_at_a_time() {
    let Some(redis) = Redis::start("nick_pending") else {
        return;
    };
    let na = node(&redis, "a", &[]);
    let mut a = join(&na);
    // One write: both lines are read before Redis can answer the first.
    a.send_raw(b"/nick first\n/nick second\n");
    let l = a.line();
    assert_eq!(
        l, "Invalid nickname: your previous change is still pending\n",
        "{l}"
    );
    a.expect("Nickname changed to: first\n");
    nick(&mut a, "second");
}

/// A node started while Redis is down serves its own members at once and
/// joins the others when Redis comes up.
#[test]
fn a_node_started_without_redis_chats_locally_and_joins_later() {
    let Some(mut redis) = Redis::start("start_down") else {
        return;
    };
    redis.stop();
    let url = redis.url();
    let srv = Server::start(&[
        "serve",
        "chat",
        "--port",
        "0",
        "--redis",
        &url,
        "--node-id",
        "a",
    ]);
    srv.wait_log("other servers unreachable");
    let mut a = join(&srv);
    let mut a2 = join(&srv);
    // Members arriving while Redis is away are told at once.
    for c in [&mut a, &mut a2] {
        c.expect(
            "Other servers are unreachable: only users on this server receive your messages\n",
        );
    }
    a.send("local hello");
    a2.until("]: local hello");
    redis.spawn();
    srv.wait_log("redis: member ids from");
    a.until("Other servers are reachable again");
    let nb = node(&redis, "b", &[]);
    let mut b = join(&nb);
    enter(&mut a, "dev");
    enter(&mut b, "dev");
    wait_until("both nodes on dev", || redis.room_subscribers("dev") == 2);
    resumes(&mut b, &mut a, "[user");
}
