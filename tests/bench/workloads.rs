//! `netloop bench` workloads, briefly, against `netloop serve echo` (the
//! binary) and against small in-process stand-ins for the chat and
//! heartbeat servers; every run must verify its echoed bytes.

use crate::util;
use netloop::bench::{execute, report::Report, BenchArgs, Workload};
use netloop::codec::LineDecoder;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service, TimerId};
use std::collections::HashMap;
use std::time::Duration;
use util::*;

pub(crate) fn args(
    workload: Workload,
    target: std::net::SocketAddr,
    connections: usize,
) -> BenchArgs {
    BenchArgs {
        workload,
        target: target.to_string(),
        connections,
        size: 64,
        pipeline: 1,
        rate: None,
        setup_timeout: Duration::from_secs(10),
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(100),
        threads: 1,
        server_pid: None,
        room: "bench".into(),
        member_target: None,
        interval: Duration::from_millis(50),
        json: false,
        grid: false,
        grid_sizes: vec![128],
        grid_connections: vec![1],
        plot: None,
        timers: 1000,
        soak: Default::default(),
        auth: Default::default(),
        tls: Default::default(),
        tls_no_resume: false,
    }
}

/// The echo workloads over TLS: byte-exact streams, and full handshakes
/// per connection with and without resumption.
#[test]
fn stream_and_connect_over_tls() {
    let dir = std::env::temp_dir().join(format!("netloop-bench-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hosts = vec!["127.0.0.1".to_string()];
    let g = netloop::cli::tls_args::generate(&hosts, 1).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &g.ca_pem).unwrap();
    std::fs::write(dir.join("server.pem"), &g.server_pem).unwrap();
    std::fs::write(dir.join("server.key"), &g.server_key_pem).unwrap();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let srv = Server::start(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--tls-cert",
        &p("server.pem"),
        "--tls-key",
        &p("server.key"),
    ]);
    for (workload, no_resume) in [
        (Workload::Stream, false),
        (Workload::Pingpong, false),
        (Workload::Connect, false),
        (Workload::Connect, true),
    ] {
        let mut a = args(workload, srv.addr, 4);
        a.size = if workload == Workload::Stream {
            16 * 1024
        } else {
            64
        };
        a.tls.ca = Some(dir.join("ca.pem"));
        a.tls_no_resume = no_resume;
        let rep = execute(&a).expect("bench over TLS");
        clean(&rep);
    }
    // Fan-out through the chat server over TLS.
    let chat = Server::start(&[
        "serve",
        "chat",
        "--port",
        "0",
        "--tls-cert",
        &p("server.pem"),
        "--tls-key",
        &p("server.key"),
    ]);
    let mut a = args(Workload::Fanout, chat.addr, 5);
    a.tls.ca = Some(dir.join("ca.pem"));
    let rep = execute(&a).expect("fanout over TLS");
    clean(&rep);
    assert_eq!(rep.delivery_errors, 0, "{}", rep.to_table(false));
    let _ = std::fs::remove_dir_all(&dir);
}

pub(crate) fn clean(rep: &Report) {
    assert_eq!(rep.mismatched_bytes, 0, "{}", rep.to_table(false));
    assert_eq!(rep.errors, 0, "{}", rep.to_table(false));
    assert_eq!(rep.failed, 0, "{}", rep.to_table(false));
    assert!(rep.ops > 0, "{}", rep.to_table(false));
}

#[test]
fn pingpong_and_stream_against_the_binary() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let mut a = args(Workload::Pingpong, srv.addr, 8);
    a.threads = 2;
    a.pipeline = 3;
    a.server_pid = Some(srv.pid());
    let rep = execute(&a).expect("pingpong run");
    clean(&rep);
    assert_eq!(rep.ready, 8);
    // Bytes are counted as they arrive, round trips as they complete: they
    // agree within what can be in flight at the window's edges.
    let in_flight = (8 * 3 * 64) as i64;
    assert!(
        (rep.bytes as i64 - rep.ops as i64 * 64).abs() <= in_flight,
        "{rep:?}"
    );
    let s = rep.server.as_ref().expect("server figures");
    assert!(s.cpu_us_per_op.is_some() && s.rss_kib_end > 0);
    // CPU per MB of 64-byte round trips says nothing CPU per round trip
    // does not: left out (stream keeps it, below).
    assert_eq!(s.cpu_us_per_mb, None);
    assert_eq!(rep.load, "closed-loop");
    assert!(rep.to_table(false).contains("latency µs (closed loop)"));
    assert!(rep
        .latency_us
        .as_ref()
        .is_some_and(|l| l.p50 > 0.0 && l.max >= l.p99));

    let mut a = args(Workload::Stream, srv.addr, 4);
    a.size = 64 * 1024;
    a.server_pid = Some(srv.pid());
    let rep = execute(&a).expect("stream run");
    clean(&rep);
    assert!(rep.bytes >= 64 * 1024, "{rep:?}");
    assert!(rep
        .server
        .as_ref()
        .is_some_and(|s| s.cpu_us_per_mb.is_some()));
}

/// The most threads `netloop bench pingpong --threads N` had at once,
/// sampled from `/proc` until it exits.
fn peak_threads(srv: &Server, threads: &str) -> usize {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args([
            "bench", "pingpong", "-c", "4", "-d", "500ms", "--warmup", "100ms",
        ])
        .args(["--threads", threads, "--target", &srv.addr.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn bench");
    let tasks = format!("/proc/{}/task", child.id());
    let start = std::time::Instant::now();
    let mut peak = 0;
    loop {
        if let Ok(dir) = std::fs::read_dir(&tasks) {
            peak = peak.max(dir.count());
        }
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "bench failed");
            return peak;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "bench hung");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_one_thread_run_is_a_one_thread_process() {
    // The first share of the load runs on the coordinator's thread: no
    // second thread makes every system call pay for sharing descriptors.
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    assert_eq!(peak_threads(&srv, "1"), 1);
    // The sampling sees threads when there are some.
    assert_eq!(peak_threads(&srv, "2"), 2);
}

#[test]
fn connect_and_idle_against_the_binary() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let rep = execute(&args(Workload::Connect, srv.addr, 4)).expect("connect run");
    clean(&rep);
    assert_eq!(rep.bytes, rep.ops * 64);
    // A message longer than the pattern's period is sent whole.
    let mut a = args(Workload::Connect, srv.addr, 2);
    a.size = 100_000;
    let rep = execute(&a).expect("connect run, long messages");
    clean(&rep);
    assert!(rep.ops > 0 && rep.bytes == rep.ops * 100_000, "{rep:?}");

    let mut a = args(Workload::Idle, srv.addr, 300);
    a.threads = 2;
    a.server_pid = Some(srv.pid());
    let rep = execute(&a).expect("idle run");
    clean(&rep);
    assert_eq!(rep.ops, 300);
    assert_eq!(rep.extra.get("held"), Some(&300));
    let s = rep.server.as_ref().expect("server figures");
    assert!(s.rss_bytes_per_conn.is_some());
}

#[test]
fn json_output_from_the_binary() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["bench", "pingpong", "--json", "-c", "2", "-d", "200ms"])
        .args(["--warmup", "50ms", "--target", &srv.addr.to_string()])
        .args(["--server-pid", &srv.pid().to_string()])
        .output()
        .expect("run bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["workload"], "pingpong");
    assert_eq!(v["mismatched_bytes"], 0);
    assert!(v["ops"].as_u64().unwrap() > 0);
    assert!(v["server"]["cpu_us_per_op"].is_number());
    assert!(v["generator"]["saturated"].is_boolean());
}

/// An "echo" that corrupts one byte in every read.
struct BadEcho;
impl Service for BadEcho {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, r: &mut Cx<Self>, conn: ConnId, _: &mut (), data: &mut BytesMut) {
        let mut d = data.split();
        if let Some(b) = d.first_mut() {
            *b ^= 0xFF;
        }
        let _ = r.write(conn, d.freeze());
    }
}

#[test]
fn corrupted_echo_is_counted() {
    let lp = TestLoop::start(ListenOptions::default(), || BadEcho);
    let rep = execute(&args(Workload::Pingpong, lp.addr, 2)).expect("run");
    assert!(rep.mismatched_bytes > 0);
    assert!(!rep.ok());
}

/// A minimal chat room: `/join ROOM`, then lines go to the room's others
/// as `[user<id>]: LINE` (the seed's format). `fault` makes it misbehave.
#[derive(Default)]
struct Chat {
    /// Who is in which room (an index of the members, for relaying).
    room: HashMap<ConnId, String>,
    fault: Fault,
    relayed: u64,
    /// Admit the k-th `/join` only after k times this (a server slow to
    /// take on members, as connects retried into a full listen queue are).
    join_every: Option<Duration>,
    joins: u32,
}

/// A [`Chat`] member: its line decoder, and the room of a `/join` not
/// admitted yet.
#[derive(Default)]
struct Member {
    lines: LineDecoder,
    pending: Option<String>,
}

/// How a [`Chat`] misbehaves.
#[derive(Default, Clone, Copy, PartialEq)]
enum Fault {
    #[default]
    None,
    /// Every message goes out twice.
    Twice,
    /// The 30th message goes to nobody.
    DropOne,
}
impl Service for Chat {
    type Conn = Member;
    type Tag = ConnId;
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<Member> {
        Some(Member::default())
    }
    fn on_data(&mut self, r: &mut Cx<Self>, conn: ConnId, st: &mut Member, data: &mut BytesMut) {
        let mut got = Vec::new();
        while let Ok(Some(l)) = st.lines.decode(data) {
            got.push(l);
        }
        for l in got {
            if let Some(room) = l.strip_prefix("/join ") {
                if let Some(every) = self.join_every {
                    st.pending = Some(room.to_string());
                    r.set_timeout(every * self.joins, conn);
                    self.joins += 1;
                    continue;
                }
                self.room.insert(conn, room.to_string());
                let _ = r.write(conn, format!("joined {room}\n"));
            } else if let Some(room) = self.room.get(&conn).cloned() {
                self.relayed += 1;
                if self.fault == Fault::DropOne && self.relayed == 30 {
                    continue;
                }
                let msg = netloop::Bytes::from(format!("[user{}]: {l}\n", conn.to_u64()));
                for (&c, rm) in &self.room {
                    if c != conn && *rm == room {
                        let _ = r.write(c, msg.clone());
                        if self.fault == Fault::Twice {
                            let _ = r.write(c, msg.clone());
                        }
                    }
                }
            }
        }
    }
    fn on_timer(&mut self, cx: &mut Cx<Self>, _t: TimerId, conn: ConnId) {
        if let Some(room) = cx.conn_state(conn).and_then(|m| m.pending.take()) {
            self.room.insert(conn, room);
        }
    }
    fn on_close(&mut self, _: &mut Cx<Self>, conn: ConnId, _: Member, _e: bool) {
        self.room.remove(&conn);
    }
}

#[test]
fn setup_waits_while_members_keep_becoming_ready() {
    // Six joins (the sender's and five members') admitted 150 ms apart:
    // the last member is ready after about 750 ms, longer than the 400 ms
    // setup timeout, but never 400 ms without one more becoming ready.
    let lp = TestLoop::start(ListenOptions::default(), || Chat {
        join_every: Some(Duration::from_millis(150)),
        ..Chat::default()
    });
    let mut a = args(Workload::Fanout, lp.addr, 5);
    a.setup_timeout = Duration::from_millis(400);
    let rep = execute(&a).expect("a setup that progresses is not cut off");
    clean(&rep);
    assert_eq!(rep.ready, 5);
}

#[test]
fn fanout_against_a_chat_room() {
    let lp = TestLoop::start(ListenOptions::default(), Chat::default);
    let mut a = args(Workload::Fanout, lp.addr, 20);
    a.threads = 2;
    a.pipeline = 4;
    let rep = execute(&a).expect("fanout run");
    clean(&rep);
    assert_eq!(rep.ready, 20);
    assert!(rep.extra.get("messages_sent").is_some_and(|&n| n > 0));
    assert_eq!(rep.delivery_errors, 0, "{}", rep.to_table(false));
    assert!(rep.ok());
    // The messages in flight are in the report and its JSON.
    assert!(rep.to_table(false).contains("4 in flight in the room"));
    assert!(rep.to_json().contains("\"pipeline\":4"));
}

#[test]
fn fanout_fails_against_a_server_that_sends_every_message_twice() {
    let lp = TestLoop::start(ListenOptions::default(), || Chat {
        fault: Fault::Twice,
        ..Chat::default()
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["bench", "fanout", "-c", "10", "--pipeline", "2"])
        .args(["-d", "300ms", "--warmup", "100ms", "--json"])
        .args(["--target", &lp.addr.to_string()])
        .output()
        .expect("run bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a duplicating server passed: {stderr}"
    );
    assert!(
        stderr.contains("duplicated, missing or out of order"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(
        v["extra"]["deliveries_duplicated"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(v["delivery_errors"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn fanout_counts_messages_a_server_drops() {
    let lp = TestLoop::start(ListenOptions::default(), || Chat {
        fault: Fault::DropOne,
        ..Chat::default()
    });
    let rep = execute(&args(Workload::Fanout, lp.addr, 5)).expect("fanout run");
    // Each of the 5 members missed that one message.
    assert!(
        rep.extra.get("deliveries_missing") == Some(&5),
        "{}",
        rep.to_table(false)
    );
    assert!(!rep.ok());
}

/// A heartbeat server: pings every client every 20 ms, answers pings.
#[derive(Default)]
struct Beat {
    pongs: u64,
}
impl Service for Beat {
    type Conn = LineDecoder;
    type Tag = ConnId;
    type Message = ();
    fn on_connection(
        &mut self,
        cx: &mut Cx<Self>,
        _s: ServerId,
        conn: ConnId,
    ) -> Option<LineDecoder> {
        cx.set_interval(Duration::from_millis(20), conn);
        Some(LineDecoder::default())
    }
    fn on_timer(&mut self, cx: &mut Cx<Self>, t: TimerId, conn: ConnId) {
        if cx
            .write(conn, "{\"type\":\"ping\",\"timestamp\":1}\n")
            .is_err()
        {
            cx.clear_timer(t);
        }
    }
    fn on_data(
        &mut self,
        r: &mut Cx<Self>,
        conn: ConnId,
        dec: &mut LineDecoder,
        data: &mut BytesMut,
    ) {
        let mut got = Vec::new();
        while let Ok(Some(l)) = dec.decode(data) {
            got.push(l);
        }
        for l in got {
            let v: serde_json::Value = serde_json::from_str(&l).expect("client sends JSON");
            match v["type"].as_str() {
                Some("ping") => {
                    let _ = r.write(conn, "{\"type\":\"pong\",\"timestamp\":2}\n");
                }
                Some("pong") => self.pongs += 1,
                _ => panic!("unexpected {l}"),
            }
        }
    }
}

#[test]
fn heartbeat_clients_answer_and_ping() {
    let lp = TestLoop::start(ListenOptions::default(), Beat::default);
    let rep = execute(&args(Workload::Heartbeat, lp.addr, 10)).expect("heartbeat run");
    clean(&rep);
    assert!(rep
        .extra
        .get("server_pings_answered")
        .is_some_and(|&n| n > 0));
    // Pings go out on a timer: neither closed- nor open-loop, and the
    // message size (unused) is not shown.
    assert_eq!(rep.load, "paced");
    let table = rep.to_table(false);
    for absent in ["closed loop", "open loop", " B,"] {
        assert!(!table.contains(absent), "{absent}: {table}");
    }
}

/// Run the binary's `bench` with `extra` arguments; (success, stdout, stderr).
pub(crate) fn bench_cli(extra: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("bench")
        .args(extra)
        .output()
        .expect("run bench");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A port nothing listens on: bound, then closed.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr").to_string();
    drop(l);
    a
}

#[test]
fn refused_connections_say_why_and_fail() {
    let target = closed_port();
    for workload in ["pingpong", "connect", "fanout", "heartbeat", "idle"] {
        let t = std::time::Instant::now();
        let (ok, _, err) = bench_cli(&[workload, "-c", "5", "-d", "1s", "--target", &target]);
        assert!(!ok, "{workload}: exit 0 against a closed port");
        assert!(
            err.contains(&format!("ECONNREFUSED {target}")),
            "{workload}: {err}"
        );
        // It fails at setup, not after a timeout or a measured window.
        assert!(t.elapsed() < Duration::from_secs(5), "{workload}: {err}");
    }
}

#[test]
fn a_server_of_the_wrong_kind_times_out_at_setup() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let (ok, out, err) = bench_cli(&[
        "fanout",
        "-c",
        "3",
        "--setup-timeout",
        "500ms",
        "--target",
        &srv.addr.to_string(),
    ]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("setup timed out") && err.contains("chat server"),
        "{err}"
    );
    let lp = TestLoop::start(ListenOptions::default(), Chat::default);
    let (ok, out, err) = bench_cli(&[
        "heartbeat",
        "-c",
        "3",
        "--setup-timeout",
        "500ms",
        "--target",
        &lp.addr.to_string(),
    ]);
    assert!(!ok, "{out}");
    assert!(err.contains("heartbeat server"), "{err}");
}

#[test]
fn nonsensical_options_are_refused() {
    for (bad, says) in [
        (&["pingpong", "--pipeline", "0"][..], "--pipeline"),
        (&["pingpong", "-c", "0"][..], "--connections"),
        (&["pingpong", "-d", "0s"][..], "--duration"),
        (&["pingpong", "--rate", "0"][..], "--rate"),
        (&["stream", "--rate", "100"][..], "--rate"),
        (
            &["pingpong", "--setup-timeout", "0s"][..],
            "--setup-timeout",
        ),
    ] {
        let (ok, _, err) = bench_cli(bad);
        assert!(!ok, "{bad:?} accepted");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{bad:?}: {err}"
        );
    }
}

/// An echo that stops its whole loop for `STALL` once, `after` the first
/// data it sees (a garbage collection, a blocking call).
struct StallingEcho {
    first: Option<std::time::Instant>,
    after: Duration,
    stalled: bool,
}

const STALL: Duration = Duration::from_millis(300);

impl StallingEcho {
    fn after(after: Duration) -> StallingEcho {
        StallingEcho {
            first: None,
            after,
            stalled: false,
        }
    }
}

impl Service for StallingEcho {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _: &mut Cx<Self>, _: ServerId, _: ConnId) -> Option<()> {
        Some(())
    }
    fn on_data(&mut self, r: &mut Cx<Self>, conn: ConnId, _: &mut (), data: &mut BytesMut) {
        let first = *self.first.get_or_insert_with(std::time::Instant::now);
        if !self.stalled && first.elapsed() >= self.after {
            self.stalled = true;
            std::thread::sleep(STALL);
        }
        let _ = r.write(conn, data.split().freeze());
    }
}

#[test]
fn open_loop_latency_includes_a_stall_that_closed_loop_hides() {
    let p99_ms = |rep: &Report| rep.latency_us.as_ref().map_or(0.0, |l| l.p99 / 1e3);
    let mut a = args(Workload::Pingpong, "127.0.0.1:1".parse().unwrap(), 1);
    a.warmup = Duration::from_millis(100);
    a.duration = Duration::from_millis(1200);

    // Closed loop: the one round trip caught in the stall is one sample.
    let lp = TestLoop::start(ListenOptions::default(), || {
        StallingEcho::after(Duration::from_millis(500))
    });
    a.target = lp.addr.to_string();
    let closed = execute(&a).expect("closed-loop run");
    clean(&closed);
    assert!(
        closed.longest_stall_ms.is_some_and(|ms| ms >= 250.0),
        "{closed:?}"
    );
    assert!(
        closed.notes.iter().any(|n| n.contains("a stall")),
        "{closed:?}"
    );

    // Open loop at 1,000/s: the ~300 requests due during the stall wait for
    // it, and their waiting is timed from when each was due.
    let lp = TestLoop::start(ListenOptions::default(), || {
        StallingEcho::after(Duration::from_millis(500))
    });
    a.target = lp.addr.to_string();
    a.rate = Some(1000.0);
    let open = execute(&a).expect("open-loop run");
    clean(&open);
    assert_eq!(open.load, "open-loop");
    assert!(open.to_table(false).contains("open loop at 1000/s"));
    // About 1,200 requests in the window, whatever the stall did.
    assert!((900..=1300).contains(&open.ops), "{open:?}");
    assert!(
        p99_ms(&open) >= 150.0 && p99_ms(&closed) < 150.0,
        "open p99 {} ms, closed p99 {} ms",
        p99_ms(&open),
        p99_ms(&closed)
    );
}

#[test]
fn a_start_up_stall_extends_the_warm_up() {
    let lp = TestLoop::start(ListenOptions::default(), || {
        StallingEcho::after(Duration::ZERO)
    });
    let mut a = args(Workload::Pingpong, lp.addr, 2);
    a.warmup = Duration::from_millis(100);
    let rep = execute(&a).expect("run");
    clean(&rep);
    assert!(
        rep.notes.iter().any(|n| n.contains("warm-up extended")),
        "{rep:?}"
    );
    // The stall stayed out of the window.
    assert!(rep.longest_stall_ms.is_some_and(|ms| ms < 250.0), "{rep:?}");
}

#[test]
fn more_threads_than_allowed_cores_are_warned_about() {
    if std::process::Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("skipped: taskset is not available");
        return;
    }
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let out = std::process::Command::new("taskset")
        .args([
            "-c",
            "0",
            env!("CARGO_BIN_EXE_netloop"),
            "bench",
            "pingpong",
        ])
        .args([
            "-c",
            "4",
            "--threads",
            "2",
            "-d",
            "200ms",
            "--warmup",
            "50ms",
        ])
        .args(["--target", &srv.addr.to_string()])
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("--threads 2 exceeds the 1 core(s)"),
        "{stdout}"
    );
}
