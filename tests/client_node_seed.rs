//! The seed's own Node clients against our servers: `05-interactive-client.js`
//! against `serve command --lang zh`, and `08-half-close.js client` against
//! `serve halfclose --lang zh`. Skipped, with the reason printed, where `node`
//! or the seed programs are missing.

mod util;

/// The command server logs each received line at debug level only.
const COMMAND_LOG: &str = "RUST_LOG=info,netloop::apps::command=debug";

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;
use util::{Server, TIMEOUT};

/// The seed directory and a working `node`, or why not.
fn setup() -> Option<PathBuf> {
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/seed");
    if !seed.join("05-interactive-client.js").exists() {
        eprintln!("SKIP: the seed programs are not at {}", seed.display());
        return None;
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Some(seed),
        _ => {
            eprintln!("SKIP: `node` is not installed; the seed clients cannot run");
            None
        }
    }
}

fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {needle:?}; saw {seen:?}"));
        seen.push(l.clone());
        if l.contains(needle) {
            return;
        }
    }
}

fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        assert!(Instant::now() < deadline, "node did not exit");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn seed_interactive_client_against_command_server() {
    let Some(seed) = setup() else { return };
    let srv = Server::start_shell(
        COMMAND_LOG,
        &["serve", "command", "--port", "0", "--lang", "zh"],
    );
    let mut child = Command::new("node")
        .arg(seed.join("05-interactive-client.js"))
        .env("PORT", srv.addr.port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn node");
    let out = lines(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    wait_line(&out, "欢迎连接! 连接ID: 1", &mut seen);
    stdin.write_all("hello\n".as_bytes()).unwrap();
    wait_line(&out, "回显: hello", &mut seen);
    stdin.write_all(b"/info\n").unwrap();
    wait_line(&out, "连接信息: {\"connectionId\":1", &mut seen);
    stdin.write_all(b"/quit\n").unwrap();
    drop(stdin);
    assert_eq!(wait_exit(&mut child), Some(0));
    srv.wait_log("[1] received: hello");
    srv.wait_log("[1] closed");
}

#[test]
fn seed_half_close_client_against_halfclose_server() {
    let Some(seed) = setup() else { return };
    let srv = Server::start(&["serve", "halfclose", "--port", "0", "--lang", "zh"]);
    let run = |scenario: &str| -> String {
        let out = Command::new("node")
            .arg(seed.join("08-half-close.js"))
            .args(["client", scenario])
            .env("PORT", srv.addr.port().to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run node");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    // D8.1 fixed on our side: the server's line after the client's FIN arrives.
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
