//! The tutorial's own Node programs (`../shared/seed`) against ours, in both
//! directions, each side's report checked:
//!
//! * its clients against our servers: 04 (simple client) against `serve
//!   echo --banner`, 05 (interactive) against `serve command`, 06 (framed)
//!   against `serve framed`, 08 (half-close) against `serve halfclose`, 10
//!   (heartbeat) against `serve heartbeat` (07 against `serve upload` is in
//!   `tests/servers/upload/server.rs`);
//! * our clients against its servers: `connect` against 01 (echo), 02
//!   (command) and 03 (chat), `framed` against 06, `upload` against 07,
//!   `halfclose` against 08, `heartbeat` against 09.
//!
//! The tutorial's servers read each `data` event as one message (they do not
//! frame lines), so our clients are driven one line at a time, each awaited.
//! Skipped, with the reason printed, where `node` or the programs are
//! missing.

use crate::util;
/// The command server logs each received line at debug level only.
const COMMAND_LOG: &str = "RUST_LOG=info,netloop::servers::command=debug";

use std::path::{Path, PathBuf};
use std::process::Command;
use util::{Proc, Server};

/// The seed directory and a working `node`, or why not.
fn setup() -> Option<PathBuf> {
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/seed");
    if !seed.join("05-interactive-client.js").exists() {
        println!("SKIP: the seed programs are not at {}", seed.display());
        return None;
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Some(seed),
        _ => {
            println!("SKIP: `node` is not installed (Debian package nodejs); the seed programs cannot run");
            None
        }
    }
}

/// `node SEED/FILE ARGS` with `PORT` set to `port`.
fn node(seed: &Path, file: &str, args: &[&str], port: u16) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(seed.join(file))
        .args(args)
        .env("PORT", port.to_string());
    cmd
}

/// One of the tutorial's servers, on a free port, ready (it printed its
/// listening line, which has 启动 in every one of them).
struct NodeServer {
    /// Held so the server lives (and is killed on drop) with the test.
    _proc: Proc,
    port: u16,
}

impl NodeServer {
    fn start(seed: &Path, file: &str, args: &[&str], env: &[(&str, &str)]) -> NodeServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = node(seed, file, args, port);
        cmd.envs(env.iter().copied());
        let mut proc = Proc::spawn(cmd);
        proc.wait_out("启动");
        NodeServer { _proc: proc, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

// ---- the tutorial's clients against our servers ----

#[test]
fn seed_simple_client_04_against_banner_echo() {
    let Some(seed) = setup() else { return };
    let srv = Server::start(&["serve", "echo", "--banner", "--port", "0", "--lang", "zh"]);
    // It sends "Hello Server!" without a newline and ends after 5 s; our
    // server answers the unterminated last line at the end of input.
    let mut c = Proc::spawn(node(&seed, "04-simple-client.js", &[], srv.addr.port()));
    c.wait_out("收到服务器数据: 欢迎连接到TCP服务器!");
    c.wait_out("服务器收到: Hello Server!");
    c.wait_out("与服务器断开连接");
    assert_eq!(c.wait_exit(), Some(0));
    assert!(!c.err_text().contains("连接错误"), "{}", c.err_text());
}

#[test]
fn seed_interactive_client_05_against_command_server() {
    let Some(seed) = setup() else { return };
    let srv = Server::start_shell(
        COMMAND_LOG,
        &["serve", "command", "--port", "0", "--lang", "zh"],
    );
    let mut c = Proc::spawn(node(
        &seed,
        "05-interactive-client.js",
        &[],
        srv.addr.port(),
    ));
    c.wait_out("欢迎连接! 连接ID: 1");
    c.send("hello\n");
    c.wait_out("回显: hello");
    c.send("/info\n");
    c.wait_out("连接信息: {\"connectionId\":1");
    c.send("/quit\n");
    assert_eq!(c.wait_exit(), Some(0));
    srv.wait_log("[1] received: hello");
    srv.wait_log("[1] closed");
}

#[test]
fn seed_framed_client_06_against_framed_server() {
    let Some(seed) = setup() else { return };
    let srv = Server::start(&["serve", "framed", "--port", "0", "--lang", "zh"]);
    let mut c = Proc::spawn(node(
        &seed,
        "06-stream-framing.js",
        &["client"],
        srv.addr.port(),
    ));
    c.wait_out("服务器欢迎消息: 欢迎连接到流式TCP服务器");
    c.wait_out("收到心跳响应");
    c.send("echo 你好\n");
    c.wait_out("data: '你好'");
    c.send("quit\n");
    c.wait_out("连接关闭");
    assert_eq!(c.wait_exit(), Some(0));
    assert!(!c.err_text().contains("连接错误"), "{}", c.err_text());
}

#[test]
fn seed_half_close_client_08_against_halfclose_server() {
    let Some(seed) = setup() else { return };
    let srv = Server::start(&["serve", "halfclose", "--port", "0", "--lang", "zh"]);
    let run = |scenario: &str| -> String {
        let mut c = Proc::spawn(node(
            &seed,
            "08-half-close.js",
            &["client", scenario],
            srv.addr.port(),
        ));
        assert_eq!(c.wait_exit(), Some(0));
        c.out_text()
    };
    // The server's line after the client's FIN arrives (the tutorial's own
    // server lost it).
    let normal = run("normal");
    for want in [
        "收到服务器数据: 回显: Hello Server!",
        "收到服务器数据: 回显: How are you?",
        "收到服务器数据: 服务器在客户端关闭写端后发送的数据",
        "服务器关闭了写端",
    ] {
        assert!(normal.contains(want), "{want:?} missing in:\n{normal}");
    }
    assert!(!normal.contains("有错误"), "{normal}");
    let half = run("half");
    assert!(
        half.contains("收到服务器数据: 服务器确认关闭写端"),
        "{half}"
    );
    assert!(!half.contains("有错误"), "{half}");
    let shutdown = run("shutdown");
    for want in [
        "开始关闭连接...",
        "发送最后的数据...",
        "再见!",
        "服务器关闭了写端",
    ] {
        assert!(shutdown.contains(want), "{want:?} missing in:\n{shutdown}");
    }
    assert!(!shutdown.contains("有错误"), "{shutdown}");
}

/// The tutorial's heartbeat client reads `memory.rss` of `server_status`
/// and prints the `rtt` of `status_response`: no TypeError, a size in MB,
/// an RTT without float noise.
#[test]
fn seed_heartbeat_client_10_against_heartbeat_server() {
    let Some(seed) = setup() else { return };
    let srv = Server::start(&[
        "serve",
        "heartbeat",
        "--port",
        "0",
        "--lang",
        "zh",
        "--heartbeat-interval",
        "200ms",
        "--status-interval",
        "300ms",
    ]);
    // "2": ask for `status` after 1 s, print the statistics and end at 2 s.
    let mut c = Proc::spawn(node(
        &seed,
        "10-heartbeat-client.js",
        &["2"],
        srv.addr.port(),
    ));
    c.wait_out("📊 服务器状态");
    let mem = c.wait_out("内存使用: ");
    let mb: u64 = mem
        .trim()
        .trim_start_matches("内存使用: ")
        .trim_end_matches("MB")
        .parse()
        .unwrap_or_else(|_| panic!("{mem}"));
    assert!((1..10_000).contains(&mb), "{mem}");
    let rtt = c.wait_out("平均RTT: ");
    let figure = rtt
        .trim()
        .trim_start_matches("平均RTT: ")
        .trim_end_matches("ms");
    assert!(
        figure == "null" || figure.split('.').nth(1).is_none_or(|d| d.len() <= 3),
        "{rtt}"
    );
    c.wait_out("❌ 连接关闭");
    assert_eq!(c.wait_exit(), Some(0));
    let all = format!("{}\n{}", c.out_text(), c.err_text());
    assert!(!all.contains("TypeError"), "{all}");
    assert!(!all.contains("undefined"), "{all}");
}

// ---- our clients against the tutorial's servers ----

#[test]
fn connect_against_seed_echo_server_01() {
    let Some(seed) = setup() else { return };
    let s = NodeServer::start(&seed, "01-echo-server.js", &[], &[]);
    let mut c = Proc::netloop(&["connect", &s.addr(), "--linger", "300ms"]);
    c.wait_out("欢迎连接到TCP服务器!");
    c.send("hello\n");
    c.wait_out("服务器收到: hello");
    assert_eq!(c.wait_exit(), Some(0));
}

#[test]
fn connect_against_seed_command_server_02() {
    let Some(seed) = setup() else { return };
    let s = NodeServer::start(&seed, "02-command-server.js", &[], &[]);
    let mut c = Proc::netloop(&["connect", &s.addr()]);
    c.wait_out("欢迎连接! 连接ID: 1");
    c.send("hello\n");
    c.wait_out("回显: hello");
    c.send("/info\n");
    c.wait_out("连接信息:");
    c.send("/list\n");
    c.wait_out("活跃连接: 1");
    c.send("/quit\n");
    assert_eq!(c.wait_exit(), Some(0));
}

#[test]
fn connect_against_seed_chat_server_03() {
    let Some(seed) = setup() else { return };
    let s = NodeServer::start(&seed, "03-chat-server.js", &[], &[]);
    let mut c = Proc::netloop(&["connect", &s.addr(), "--linger", "300ms"]);
    c.wait_out("欢迎来到TCP聊天服务器");
    c.send("/nick bob\n");
    c.wait_out("昵称已更改为: bob");
    c.send("/join dev\n");
    c.wait_out("dev");
    c.send("/list\n");
    c.wait_out("bob");
    assert_eq!(c.wait_exit(), Some(0));
}

#[test]
fn framed_against_seed_server_06() {
    let Some(seed) = setup() else { return };
    let s = NodeServer::start(&seed, "06-stream-framing.js", &["server"], &[]);
    let mut c = Proc::netloop(&["framed", &s.addr(), "--ping-interval", "0"]);
    c.wait_out("\"type\":\"welcome\"");
    c.wait_out("\"type\":\"pong\"");
    c.send("echo hi\n");
    c.wait_out("\"data\":\"hi\"");
    assert_eq!(c.wait_exit(), Some(0));
    assert!(
        c.out_text().contains("connection closed"),
        "{}",
        c.out_text()
    );
}

/// The tutorial's upload server stores the file but sends no checksum: our
/// client checks the size, says so, and succeeds. For a file that arrives
/// with its header it never answers (its own defect): our client reports the
/// silence after `--reply-timeout` instead of waiting for ever.
#[test]
fn upload_against_seed_server_07() {
    let Some(seed) = setup() else { return };
    let base = std::env::temp_dir().join(format!("netloop-seed07-{}", std::process::id()));
    let store = base.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let big = base.join("big.bin");
    let data = util::random_bytes(1 << 20, 9);
    std::fs::write(&big, &data).unwrap();
    let small = base.join("small.txt");
    std::fs::write(&small, b"hello").unwrap();
    let s = NodeServer::start(
        &seed,
        "07-binary-upload.js",
        &["server"],
        &[("UPLOAD_DIR", store.to_str().unwrap())],
    );
    let mut c = Proc::netloop(&["upload", &s.addr(), big.to_str().unwrap()]);
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
    assert!(
        c.out_text()
            .contains("(1048576 bytes; the server sent no checksum, so only the size was checked)"),
        "{}",
        c.out_text()
    );
    util::wait_until("the seed stored the file", || {
        std::fs::read(store.join("big.bin")).is_ok_and(|d| d == data)
    });
    let mut c = Proc::netloop(&[
        "upload",
        &s.addr(),
        small.to_str().unwrap(),
        "--reply-timeout",
        "500ms",
    ]);
    assert_eq!(c.wait_exit(), Some(1));
    assert!(
        c.err_text()
            .contains("no reply from the server within 500ms after the last byte"),
        "{}",
        c.err_text()
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn halfclose_against_seed_server_08() {
    let Some(seed) = setup() else { return };
    let s = NodeServer::start(&seed, "08-half-close.js", &["server"], &[]);
    for (scenario, want) in [
        ("normal", "received: 回显: How are you?"),
        ("half", "received: 服务器确认关闭写端"),
        ("shutdown", "received: 再见!"),
    ] {
        let mut c = Proc::netloop(&["halfclose", &s.addr(), scenario, "--lang", "zh"]);
        assert_eq!(c.wait_exit(), Some(0), "{scenario}: {}", c.err_text());
        let out = c.out_text();
        assert!(out.contains(want), "{scenario}: {out}");
        assert!(out.contains("connection fully closed"), "{scenario}: {out}");
    }
}

#[test]
fn heartbeat_against_seed_server_09() {
    let Some(seed) = setup() else { return };
    let s = NodeServer::start(
        &seed,
        "09-heartbeat-server.js",
        &[],
        &[("HEARTBEAT_INTERVAL", "200"), ("STATUS_INTERVAL", "300")],
    );
    let mut c = Proc::netloop(&["heartbeat", &s.addr(), "--duration", "1500ms"]);
    c.wait_out("heartbeat interval 200ms");
    c.wait_out("\"type\":\"server_status\"");
    let stats = c.wait_out("stats: ");
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
    assert!(!stats.contains("(0 samples)"), "RTT measured: {stats}");
    assert!(
        !stats.contains("server pings 0,"),
        "answered pings: {stats}"
    );
}
