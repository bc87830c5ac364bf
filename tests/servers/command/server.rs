//! `netloop serve command` over loopback: every command and notice in en and
//! zh, framing (coalesced, split, CRLF, split UTF-8), line errors, idle timeout
//! with the destroy grace, and the graceful-shutdown notice.

use crate::{lineclient, util};
use lineclient::LineClient;
use util::Server;

fn server(extra: &[&str]) -> Server {
    let mut args = vec!["serve", "command", "--port", "0"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn info_json(line: &str, prefix: &str) -> serde_json::Value {
    let body = line.strip_prefix(prefix).expect("info prefix");
    serde_json::from_str(body.trim_end()).expect("one line of JSON")
}

#[test]
fn every_command_in_english() {
    let srv = server(&[]);
    let mut a = LineClient::connect(srv.addr);
    a.expect("Welcome! Connection ID: 1\n");
    a.send("hello");
    a.expect("Echo: hello\n");
    a.send("/info");
    let l = a.line();
    let v = info_json(&l, "Connection info: ");
    assert_eq!(v["connectionId"], 1);
    assert_eq!(v["bytesReceived"], 12, "hello\\n + /info\\n");
    let sent = "Welcome! Connection ID: 1\n".len() + "Echo: hello\n".len();
    assert_eq!(v["bytesSent"], sent as u64);
    assert_eq!(v["clientInfo"], a.w.local_addr().unwrap().to_string());
    let at = v["connectedAt"].as_str().unwrap();
    assert!(
        at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );
    assert!(v["uptime"].as_u64().is_some());
    let mut b = LineClient::connect(srv.addr);
    b.expect("Welcome! Connection ID: 2\n");
    a.send("/list");
    a.expect("Active connections: 1, 2\n");
    a.send("/foo bar");
    a.expect("Unknown command: /foo bar\n");
    a.send("");
    a.expect("Echo: \n");
    a.send("/INFO now");
    assert!(
        a.line().starts_with("Connection info: {"),
        "case-insensitive, args ignored"
    );
    a.send("/quit");
    a.expect("Goodbye!\n");
    assert_eq!(a.rest(), "", "FIN right after goodbye");
    // Ids are never reused.
    drop(b);
    let mut c = LineClient::connect(srv.addr);
    c.expect("Welcome! Connection ID: 3\n");
}

#[test]
fn every_command_in_chinese_byte_for_byte() {
    let srv = server(&["--lang", "zh"]);
    let mut a = LineClient::connect(srv.addr);
    a.expect("欢迎连接! 连接ID: 1\n");
    a.send("hello");
    a.expect("回显: hello\n");
    let mut b = LineClient::connect(srv.addr);
    b.expect("欢迎连接! 连接ID: 2\n");
    a.send("/list");
    a.expect("活跃连接: 1, 2\n");
    a.send("/foo");
    a.expect("未知命令: /foo\n");
    // The tutorial's server counted 11 for these 19 bytes: it counted
    // characters of decoded text, not bytes (docs/TUTORIAL-DEFECTS.md).
    b.send("你好世界");
    b.expect("回显: 你好世界\n");
    b.send("/info");
    let v = info_json(&b.line(), "连接信息: ");
    assert_eq!(v["bytesReceived"], 19);
    a.send("/quit");
    a.expect("再见!\n");
    assert_eq!(a.rest(), "");
}

#[test]
fn framing_coalesced_split_crlf_and_utf8() {
    let srv = server(&["--lang", "zh"]);
    let mut a = LineClient::connect(srv.addr);
    a.line();
    // Two commands in one segment are two commands (the tutorial split on
    // data events, not lines).
    a.send_raw(b"/list\n/foo\r\n");
    a.expect("活跃连接: 1\n未知命令: /foo\n");
    // One command split across segments is one command.
    a.send_raw(b"/in");
    std::thread::sleep(std::time::Duration::from_millis(50)); // a separate segment
    a.send_raw(b"fo\n");
    assert!(a.line().starts_with("连接信息: {"));
    // A character split between two segments survives (UTF-8 is decoded
    // on whole lines only).
    a.send_raw(&[0xe4, 0xbd]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    a.send_raw(&[0xa0, b'\n']);
    a.expect("回显: 你\n");
    // A final line without a terminator is answered at FIN.
    a.send_raw(b"last");
    a.shutdown_write();
    assert_eq!(a.rest(), "回显: last\n");
}

#[test]
fn invalid_utf8_is_answered_and_overlong_line_closes() {
    let srv = server(&["--max-line", "16"]);
    let mut a = LineClient::connect(srv.addr);
    a.line();
    a.send_raw(b"\xff\xfe\n");
    a.expect("error: line is not valid UTF-8, ignored\n");
    a.send("still here");
    a.expect("Echo: still here\n");
    // A forged second line inside one line is impossible; control characters are neutralised.
    a.send("x\ry");
    a.expect("Echo: x\u{FFFD}y\n");
    a.send_raw(&[b'a'; 100]);
    a.expect("error: line longer than 16 bytes, closing\n");
    assert_eq!(a.rest(), "");
}

#[test]
fn idle_timeout_notice_end_then_destroy_after_grace() {
    for (lang, welcome, notice) in [
        ("zh", "欢迎连接! 连接ID: 1\n", "连接超时\n"),
        (
            "en",
            "Welcome! Connection ID: 1\n",
            "Connection timed out\n",
        ),
    ] {
        let srv = server(&["--lang", lang, "--idle-timeout", "300ms"]);
        let mut a = LineClient::connect(srv.addr);
        a.expect(welcome);
        a.expect(notice);
        assert_eq!(a.rest(), "", "FIN after the notice");
        // We keep our side open: the server destroys it after the grace.
        srv.wait_log("did not close within the grace period");
        srv.wait_log("[1] closed");
    }
}

#[test]
fn sigterm_sends_the_shutdown_notice() {
    for (lang, notice) in [
        ("zh", "服务器即将关闭\n"),
        ("en", "Server is shutting down\n"),
    ] {
        let mut srv = server(&["--lang", lang]);
        let mut a = LineClient::connect(srv.addr);
        a.line();
        let mut b = LineClient::connect(srv.addr);
        b.line();
        srv.signal("TERM");
        a.expect(notice);
        assert_eq!(a.rest(), "");
        b.expect(notice);
        assert_eq!(b.rest(), "");
        drop((a, b));
        assert_eq!(srv.wait_exit(), Some(0));
    }
}

/// `/stats` carries the loop's metrics as one line of JSON (the same snapshot
/// as the metrics endpoint), counting this very connection.
#[test]
fn stats_reports_the_loop_figures() {
    let srv = server(&[]);
    let mut a = LineClient::connect(srv.addr);
    a.expect("Welcome! Connection ID: 1\n");
    a.send("/stats");
    let l = a.line();
    let v = info_json(&l, "Loop stats: ");
    assert!(v["iterations"].as_u64().unwrap() > 0);
    assert_eq!(v["connections"]["live"], 1);
    assert!(v["connections"]["accepted"].as_u64().unwrap() >= 1);
    assert!(v["bytes"]["read"].as_u64().unwrap() >= "/stats\n".len() as u64);
    assert!(v["utilization"].as_f64().is_some());
    assert!(v["timers"]["armed"].is_u64(), "{v}");
}
