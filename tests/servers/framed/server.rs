//! The framed JSON server over loopback: coalesced and split frames, the
//! seed's crashing and stalling inputs, oversized prefixes, broadcast, the
//! client binary, and the seed's own client (06) when node is installed.

use crate::util;
use netloop::servers::framed::{Framed, FramedConfig};
use netloop::ListenOptions;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;
use util::*;

fn start() -> TestLoop {
    TestLoop::start_service(ListenOptions::default(), || {
        Framed::new(FramedConfig::default())
    })
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn msg(v: Value) -> Vec<u8> {
    frame(v.to_string().as_bytes())
}

fn read_frame(s: &mut TcpStream) -> Value {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).expect("frame header");
    let len = u32::from_be_bytes(h) as usize;
    assert!(len < 1 << 20, "reply of {len} bytes");
    let body = read_exact(s, len);
    serde_json::from_slice(&body).expect("reply is JSON")
}

/// Connect and consume the welcome; returns the socket and its client id.
fn client(addr: std::net::SocketAddr) -> (TcpStream, String) {
    let mut s = connect(addr);
    let w = read_frame(&mut s);
    assert_eq!(w["type"], "welcome");
    let id = w["clientId"].as_str().unwrap().to_string();
    (s, id)
}

#[test]
fn ping_echo_and_unknown_type() {
    let l = start();
    let (mut s, id) = client(l.addr);
    assert!(id.starts_with("client-"), "opaque id, not an address: {id}");
    s.write_all(&msg(json!({"type": "ping", "n": 1}))).unwrap();
    let pong = read_frame(&mut s);
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["original"], json!({"type": "ping", "n": 1}));
    assert!(pong["timestamp"].as_u64().unwrap() > 0);
    s.write_all(&msg(json!({"type": "echo", "data": {"k": [1, 2]}})))
        .unwrap();
    let e = read_frame(&mut s);
    assert_eq!(e["type"], "echo_response");
    assert_eq!(e["data"], json!({"k": [1, 2]}));
    s.write_all(&msg(json!({"type": "nope"}))).unwrap();
    assert_eq!(read_frame(&mut s)["type"], "error");
}

#[test]
fn coalesced_frames_in_one_segment() {
    let l = start();
    let (mut s, _) = client(l.addr);
    let mut all = Vec::new();
    for i in 0..50 {
        all.extend(msg(json!({"type": "echo", "data": i})));
    }
    s.write_all(&all).unwrap();
    for i in 0..50 {
        let r = read_frame(&mut s);
        assert_eq!(r["data"], i);
    }
}

#[test]
fn one_frame_over_many_segments() {
    let l = start();
    let (mut s, _) = client(l.addr);
    let big = "x".repeat(200_000);
    let bytes = msg(json!({"type": "echo", "data": big}));
    for (i, chunk) in bytes.chunks(7919).enumerate() {
        s.write_all(chunk).unwrap();
        if i % 8 == 0 {
            // Not synchronisation: only makes separate segments likely.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let r = read_frame(&mut s);
    assert_eq!(r["data"].as_str().unwrap().len(), 200_000);
    // A header split in the middle, then a body shorter than 4 bytes.
    let f = frame(b"{}");
    s.write_all(&f[..2]).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    s.write_all(&f[2..]).unwrap();
    let r = read_frame(&mut s);
    assert_eq!(r["type"], "error", "`{{}}` has no type: {r}");
}

#[test]
fn null_short_empty_and_invalid_bodies_get_errors_and_the_connection_goes_on() {
    let l = start();
    let (mut s, _) = client(l.addr);
    // The seed died on this exact frame (a `null` body).
    s.write_all(&[0, 0, 0, 4, b'n', b'u', b'l', b'l']).unwrap();
    let r = read_frame(&mut s);
    assert_eq!(r["type"], "error");
    assert!(r["message"].as_str().unwrap().contains("object"), "{r}");
    for body in [&b""[..], b"1", b"[]", b"{x", b"{\"type\":5}", b"\xff\xfe"] {
        s.write_all(&frame(body)).unwrap();
        let r = read_frame(&mut s);
        assert_eq!(r["type"], "error", "body {body:?}: {r}");
    }
    s.write_all(&msg(json!({"type": "ping"}))).unwrap();
    assert_eq!(read_frame(&mut s)["type"], "pong");
}

#[test]
fn broadcast_reaches_every_other_client_with_an_opaque_sender() {
    let l = start();
    let (mut a, a_id) = client(l.addr);
    let mut others: Vec<TcpStream> = (0..3).map(|_| client(l.addr).0).collect();
    a.write_all(&msg(json!({"type": "broadcast", "data": "hi all"})))
        .unwrap();
    for o in &mut others {
        let b = read_frame(o);
        assert_eq!(b["type"], "broadcast_message");
        assert_eq!(b["data"], "hi all");
        assert_eq!(b["sender"], a_id.as_str());
    }
    // The sender got nothing: its next frame is the pong.
    a.write_all(&msg(json!({"type": "ping"}))).unwrap();
    assert_eq!(read_frame(&mut a)["type"], "pong");
}

#[test]
fn a_2gib_prefix_gets_an_error_and_a_close_without_allocating() {
    let mut srv = Server::start(&["serve", "framed", "--port", "0", "--grace", "1s"]);
    let (mut s, _) = client(srv.addr);
    let rss_before = srv.rss_kib();
    s.write_all(&0x8000_0000u32.to_be_bytes()).unwrap();
    s.write_all(&[b'x'; 1024]).unwrap();
    let r = read_frame(&mut s);
    assert_eq!(r["type"], "error");
    assert!(r["message"].as_str().unwrap().contains("exceeds"), "{r}");
    let rest = read_to_end(&mut s);
    assert!(rest.is_empty(), "nothing after the error, then EOF");
    let rss_after = srv.rss_kib();
    assert!(
        rss_after < rss_before + 16 * 1024,
        "rss grew from {rss_before} KiB to {rss_after} KiB"
    );
    // The server is fine.
    let (mut s2, _) = client(srv.addr);
    s2.write_all(&msg(json!({"type": "ping"}))).unwrap();
    assert_eq!(read_frame(&mut s2)["type"], "pong");
    drop((s, s2));
    srv.signal("TERM");
    assert_eq!(srv.wait_exit(), Some(0));
}

/// Run `cmd` with `input` on stdin; bounded wait; returns (status, stdout).
fn run_with_input(mut cmd: Command, input: &str) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_client_binary_works_with_piped_input() {
    let l = start();
    let (mut watcher, _) = client(l.addr);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netloop"));
    cmd.args(["framed", &l.addr.to_string()]);
    let (code, out, err) = run_with_input(
        cmd,
        "echo hello there\nbroadcast to all\nraw null\nraw {\"type\":\"x\"}\nping\nquit\n",
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let replies: Vec<Value> = out
        .lines()
        .filter_map(|l| l.strip_prefix("< "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = replies
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["welcome", "pong", "echo_response", "error", "error", "pong"],
        "{out}"
    );
    assert_eq!(replies[2]["data"], "hello there");
    let b = read_frame(&mut watcher);
    assert_eq!(b["data"], "to all");
}

#[test]
fn seed_client_06_against_our_server() {
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/seed/06-stream-framing.js"
    );
    if Command::new("node").arg("--version").output().is_err() {
        println!("skipped: node is not installed");
        return;
    }
    if !std::path::Path::new(seed).exists() {
        println!("skipped: {seed} not found");
        return;
    }
    let l = start();
    let mut cmd = Command::new("node");
    cmd.args([seed, "client"])
        .env("PORT", l.addr.port().to_string());
    let (code, out, err) = run_with_input(cmd, "echo hello seed\nping\nraw {\"type\":\"zzz\"}\n");
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("welcome"), "{out}");
    assert!(
        out.contains("echo_response") && out.contains("hello seed"),
        "{out}"
    );
    assert!(out.contains("pong"), "{out}");
    assert!(out.contains("unknown message type"), "{out}");
}

/// `--lang zh`: the seed's welcome and unknown-type texts, byte for byte.
#[test]
fn zh_texts_are_the_seeds() {
    let l = TestLoop::start_service(ListenOptions::default(), || {
        Framed::new(FramedConfig {
            lang: netloop::protocol::catalog::Lang::Zh,
            ..FramedConfig::default()
        })
    });
    let mut s = connect(l.addr);
    let w = read_frame(&mut s);
    assert_eq!(w["message"], "欢迎连接到流式TCP服务器");
    s.write_all(&msg(json!({"type": "nope"}))).unwrap();
    assert_eq!(read_frame(&mut s)["message"], "未知消息类型");
}

#[test]
fn an_oversized_broadcast_is_refused_to_its_sender_and_relayed_to_nobody() {
    // Accepted on the way in (960 bytes of data under a 1,024-byte limit),
    // but the relayed frame adds the sender and a timestamp and exceeds it.
    let l = TestLoop::start_service(ListenOptions::default(), || {
        Framed::new(FramedConfig {
            max_frame: 1024,
            ..FramedConfig::default()
        })
    });
    let (mut a, _) = client(l.addr);
    let (mut b, _) = client(l.addr);
    let big = "x".repeat(960);
    a.write_all(&msg(json!({"type": "broadcast", "data": big})))
        .unwrap();
    let e = read_frame(&mut a);
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("not relayed"),
        "{e}"
    );
    // The other client got nothing: its next frame is its own pong, and a
    // small broadcast afterwards still reaches it.
    b.write_all(&msg(json!({"type": "ping"}))).unwrap();
    assert_eq!(read_frame(&mut b)["type"], "pong");
    a.write_all(&msg(json!({"type": "broadcast", "data": "small"})))
        .unwrap();
    let m = read_frame(&mut b);
    assert_eq!(
        (m["type"].as_str(), m["data"].as_str()),
        (Some("broadcast_message"), Some("small"))
    );
}

#[test]
fn the_client_binary_prints_server_text_without_terminal_escapes() {
    // A hostile server whose welcome carries C1 escapes (CSI, OSC) and a bidi
    // override: JSON escapes C0 controls when printed, but not these.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = s.write_all(&msg(
            json!({"type": "welcome", "clientId": "\u{9b}2J\u{9d}0;t\u{202e}x"}),
        ));
        let _ = s.read_to_end(&mut Vec::new());
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netloop"));
    cmd.args(["framed", &addr.to_string()]);
    let (_, out, err) = run_with_input(cmd, "quit\n");
    assert!(out.contains("< {\"clientId\":\"\u{fffd}2J"), "{out}");
    for text in [&out, &err] {
        assert!(
            !text
                .chars()
                .any(|c| matches!(c, '\u{1b}' | '\u{9b}' | '\u{9d}' | '\u{202e}')),
            "escape printed: {text:?}"
        );
    }
}
