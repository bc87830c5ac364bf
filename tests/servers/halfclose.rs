//! `netloop serve halfclose`: the three scenarios of the seed, byte-exact in
//! both directions, with half-open on; nothing written after our own end.

use crate::{lineclient, util};
use lineclient::LineClient;
use util::Server;

fn server(lang: &str) -> Server {
    Server::start(&["serve", "halfclose", "--port", "0", "--lang", lang])
}

#[test]
fn normal_the_extra_line_comes_after_our_fin() {
    let srv = server("zh");
    let mut c = LineClient::connect(srv.addr);
    c.send("Hello Server!");
    c.expect("回显: Hello Server!\n");
    c.send("How are you?");
    c.expect("回显: How are you?\n");
    c.shutdown_write();
    // Half-open is on, so the server still talks after our FIN (the tutorial never enabled
    // `allowHalfOpen`, so this line was never sent).
    assert_eq!(c.rest(), "服务器在客户端关闭写端后发送的数据\n");
    srv.wait_log("client closed its write side");
    let l = srv.wait_log("connection fully closed");
    assert!(!l.contains("error"), "{l}");
}

#[test]
fn half_the_server_ends_first_and_never_writes_after() {
    let srv = server("zh");
    let mut c = LineClient::connect(srv.addr);
    c.send("CLOSE_WRITE");
    assert_eq!(
        c.rest(),
        "服务器确认关闭写端\n",
        "confirmation, then the server's FIN"
    );
    // Our side is still open: the server reads but must not answer (the tutorial's server
    // echoed here after its own end() and got ERR_STREAM_WRITE_AFTER_END).
    c.send("客户端最后的消息");
    srv.wait_log("line after our end: not answered");
    c.shutdown_write();
    let l = srv.wait_log("connection fully closed");
    assert!(!l.contains("error"), "{l}");
}

#[test]
fn shutdown_three_lines_then_end() {
    let srv = server("zh");
    let mut c = LineClient::connect(srv.addr);
    c.send("SHUTDOWN");
    assert_eq!(c.rest(), "开始关闭连接...\n发送最后的数据...\n再见!\n");
    c.shutdown_write();
    srv.wait_log("connection fully closed");
}

#[test]
fn framed_commands_and_english() {
    let srv = server("en");
    let mut c = LineClient::connect(srv.addr);
    // CLOSE_WRITE sharing a segment with other text is still a command (the tutorial compared
    // whole reads, so it echoed the segment instead).
    c.send_raw(b"hi\r\nCLOSE_WRITE\nignored\n");
    assert_eq!(
        c.rest(),
        "Echo: hi\nServer confirms: closing its write side\n"
    );
    let mut d = LineClient::connect(srv.addr);
    d.send("SHUTDOWN");
    assert_eq!(
        d.rest(),
        "Starting to close the connection...\nSending the last data...\nGoodbye!\n"
    );
    let mut e = LineClient::connect(srv.addr);
    e.send_raw(b"tail without newline");
    e.shutdown_write();
    assert_eq!(
        e.rest(),
        "Echo: tail without newline\nData the server sent after the client closed its write side\n"
    );
}

/// Log lines until one contains `needle` (bounded by the server's log
/// timeout); returns how many came before it.
fn count_log_until(srv: &Server, needle: &str) -> usize {
    let mut n = 0;
    loop {
        let line = srv
            .log
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return n;
        }
        n += 1;
    }
}

#[test]
fn per_line_logs_are_debug_and_lines_after_our_end_are_rate_limited() {
    const LINES: usize = 2_000;
    let srv = server("en");
    let mut c = LineClient::connect(srv.addr);
    // Echoed lines: nothing logged per line at the default level.
    let mut batch = String::new();
    for i in 0..LINES {
        batch.push_str(&format!("line {i}\n"));
    }
    c.send_raw(batch.as_bytes());
    for i in 0..LINES {
        c.expect(&format!("Echo: line {i}\n"));
    }
    // Lines after the server's end: a peer can repeat them for ever, so the
    // notice is rate-limited (a few per second, however many arrive).
    c.send("CLOSE_WRITE");
    c.send_raw(batch.as_bytes());
    c.shutdown_write();
    let before_close = count_log_until(&srv, "connection fully closed");
    assert!(
        before_close < 20,
        "{before_close} log lines for {LINES} echoed lines and {LINES} after our end"
    );
}
