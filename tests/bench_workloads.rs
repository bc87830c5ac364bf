//! `netloop bench` workloads, briefly, against `netloop serve echo` (the
//! binary) and against small in-process stand-ins for the chat and
//! heartbeat servers; every run must verify its echoed bytes.

mod util;

use netloop::bench::{execute, report::Report, BenchArgs, Workload};
use netloop::codec::LineDecoder;
use netloop::{BytesMut, ConnId, Handler, ListenOptions, Reactor, TimerId};
use std::collections::HashMap;
use std::time::Duration;
use util::*;

fn args(workload: Workload, target: std::net::SocketAddr, connections: usize) -> BenchArgs {
    BenchArgs {
        workload,
        target: target.to_string(),
        connections,
        size: 64,
        pipeline: 1,
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(100),
        threads: 1,
        server_pid: None,
        room: "bench".into(),
        interval: Duration::from_millis(50),
        json: false,
        soak: Default::default(),
    }
}

fn clean(rep: &Report) {
    assert_eq!(rep.mismatched_bytes, 0, "{}", rep.to_table());
    assert_eq!(rep.errors, 0, "{}", rep.to_table());
    assert_eq!(rep.failed, 0, "{}", rep.to_table());
    assert!(rep.ops > 0, "{}", rep.to_table());
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
    assert!(rep
        .latency_us
        .as_ref()
        .is_some_and(|l| l.p50 > 0.0 && l.max >= l.p99));

    let mut a = args(Workload::Stream, srv.addr, 4);
    a.size = 64 * 1024;
    let rep = execute(&a).expect("stream run");
    clean(&rep);
    assert!(rep.bytes >= 64 * 1024, "{rep:?}");
}

#[test]
fn connect_and_idle_against_the_binary() {
    let srv = Server::start(&["serve", "echo", "--port", "0"]);
    let rep = execute(&args(Workload::Connect, srv.addr, 4)).expect("connect run");
    clean(&rep);
    assert_eq!(rep.bytes, rep.ops * 64);

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
impl Handler for BadEcho {
    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
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
/// as `[user<id>]: LINE` (the seed's format).
#[derive(Default)]
struct Chat {
    lines: HashMap<ConnId, LineDecoder>,
    room: HashMap<ConnId, String>,
}
impl Handler for Chat {
    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let dec = self.lines.entry(conn).or_default();
        let mut got = Vec::new();
        while let Ok(Some(l)) = dec.decode(data) {
            got.push(l);
        }
        for l in got {
            if let Some(room) = l.strip_prefix("/join ") {
                self.room.insert(conn, room.to_string());
                let _ = r.write(conn, format!("joined {room}\n"));
            } else if let Some(room) = self.room.get(&conn).cloned() {
                let msg = netloop::Bytes::from(format!("[user{}]: {l}\n", conn.to_u64()));
                for (&c, rm) in &self.room {
                    if c != conn && *rm == room {
                        let _ = r.write(c, msg.clone());
                    }
                }
            }
        }
    }
    fn on_close(&mut self, _r: &mut Reactor, conn: ConnId, _e: bool) {
        self.lines.remove(&conn);
        self.room.remove(&conn);
    }
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
}

/// A heartbeat server: pings every client every 20 ms, answers pings.
#[derive(Default)]
struct Beat {
    lines: HashMap<ConnId, LineDecoder>,
    pongs: u64,
}
impl Handler for Beat {
    fn on_connection(&mut self, r: &mut Reactor, _s: netloop::ServerId, conn: ConnId) {
        r.set_interval(Duration::from_millis(20), conn.to_u64());
    }
    fn on_timer(&mut self, r: &mut Reactor, t: TimerId, tag: u64) {
        if r.write(
            ConnId::from_u64(tag),
            "{\"type\":\"ping\",\"timestamp\":1}\n",
        )
        .is_err()
        {
            r.clear_timer(t);
        }
    }
    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let dec = self.lines.entry(conn).or_default();
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
}
