//! `netloop connect` and `netloop halfclose` as child processes against our
//! servers: piped input, local commands, reconnect after a server restart
//! (exactly one new connection, no line sent twice), never-connected exit
//! status, and the half-close scenarios.

use crate::util;
/// The command server logs each received line at debug level only.
const COMMAND_LOG: &str = "RUST_LOG=info,netloop::servers::command=debug";

use std::io::{BufRead, BufReader, Write};
use std::time::Instant;
use util::{Server, TIMEOUT};

/// A client binary driven through its standard streams.
type Client = util::Proc;

impl Client {
    fn start(args: &[&str]) -> Client {
        Client::netloop(args)
    }
}

/// Drain the server's log until a line containing `needle`, returning every line seen.
fn log_until(srv: &Server, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = srv
            .log
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {needle:?}; saw {seen:?}"));
        let hit = l.contains(needle);
        seen.push(l);
        if hit {
            return seen;
        }
    }
}

#[test]
fn piped_input_is_sent_and_the_client_exits_after_eof() {
    let srv = Server::start(&["serve", "chat", "--port", "0"]);
    let addr = srv.addr.to_string();
    let other = std::net::TcpStream::connect(srv.addr).unwrap();
    other.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut other_r = BufReader::new(other.try_clone().unwrap());
    let mut line = String::new();
    while !line.starts_with('╚') {
        line.clear();
        other_r.read_line(&mut line).unwrap();
    }
    line.clear();
    other_r.read_line(&mut line).unwrap(); // the banner's empty last line
    let mut c = Client::start(&["connect", &addr, "--linger", "5s"]);
    c.send("/nick a\n/status\nhello\n/join dev\n");
    c.close_stdin();
    assert_eq!(c.wait_exit_open(), Some(0));
    let out = c.seen_out.join("\n");
    assert!(out.contains("Nickname changed to: a"), "{out}");
    assert!(out.contains("Joined room: dev"), "/join is sent: {out}");
    assert!(out.contains("state: connected"), "/status is local: {out}");
    let mut got = Vec::new();
    for _ in 0..3 {
        line.clear();
        other_r.read_line(&mut line).unwrap();
        got.push(line.clone());
    }
    assert_eq!(
        got,
        [
            "user2 is now known as a\n",
            "[a]: hello\n",
            "a left the server\n"
        ]
    );
}

#[test]
fn local_commands_are_not_sent() {
    let srv = Server::start_shell(COMMAND_LOG, &["serve", "command", "--port", "0"]);
    let addr = srv.addr.to_string();
    let mut c = Client::start(&["connect", &addr]);
    c.send("/status\n/clear\n\nhi\n/list\n/quit\nnever\n");
    assert_eq!(c.wait_exit_open(), Some(0));
    let out = c.seen_out.join("\n");
    assert!(
        out.contains("Echo: hi") && out.contains("Active connections: 1"),
        "{out}"
    );
    assert!(!out.contains("never"), "nothing after /quit: {out}");
    let log = log_until(&srv, "[1] closed");
    let received: Vec<&String> = log.iter().filter(|l| l.contains("received:")).collect();
    assert_eq!(
        received.len(),
        2,
        "only hi and /list reach the server: {received:?}"
    );
}

#[test]
fn reconnect_after_restart_one_new_connection_no_line_twice() {
    let srv = Server::start_shell(COMMAND_LOG, &["serve", "command", "--port", "0"]);
    let port = srv.addr.port().to_string();
    let addr = srv.addr.to_string();
    let mut c = Client::start(&[
        "connect",
        &addr,
        "--reconnect-delay",
        "100ms",
        "--reconnect-max-delay",
        "200ms",
        "--max-attempts",
        "50",
    ]);
    c.wait_out("Welcome! Connection ID: 1");
    c.send("one\n");
    c.wait_out("Echo: one");
    drop(srv); // SIGKILL: the connection is lost
    c.wait_err("reconnecting in");
    let srv = Server::start_shell(COMMAND_LOG, &["serve", "command", "--port", &port]);
    c.wait_out("Welcome! Connection ID: 1");
    c.send("two\n");
    c.wait_out("Echo: two");
    c.close_stdin();
    assert_eq!(c.wait_exit_open(), Some(0));
    let log = log_until(&srv, "[1] closed");
    let conns = log.iter().filter(|l| l.contains("new connection")).count();
    assert_eq!(conns, 1, "exactly one new connection: {log:?}");
    assert_eq!(
        log.iter().filter(|l| l.contains("received: two")).count(),
        1
    );
    assert!(
        !log.iter().any(|l| l.contains("received: one")),
        "nothing resent"
    );
    assert_eq!(
        c.seen_out
            .iter()
            .filter(|l| l.contains("Echo: two"))
            .count(),
        1
    );
    assert_eq!(
        c.seen_out
            .iter()
            .filter(|l| l.contains("Echo: one"))
            .count(),
        1
    );
}

#[test]
fn never_connected_exits_non_zero_after_one_reconnect_per_failure() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut c = Client::start(&[
        "connect",
        &addr,
        "--max-attempts",
        "2",
        "--reconnect-delay",
        "20ms",
    ]);
    let code = c.wait_exit_open();
    assert_ne!(code, Some(0));
    let err = c.seen_err.join("\n");
    assert_eq!(
        c.seen_err
            .iter()
            .filter(|l| l.contains("reconnecting in"))
            .count(),
        2,
        "{err}"
    );
    assert_eq!(
        c.seen_err
            .iter()
            .filter(|l| l.starts_with("connecting to"))
            .count(),
        3,
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("giving up after 2 attempts"), "{err}");

    let mut c = Client::start(&["connect", &addr, "--no-reconnect"]);
    assert_ne!(c.wait_exit_open(), Some(0));
    assert!(!c.seen_err.iter().any(|l| l.contains("reconnecting")));
}

#[test]
fn halfclose_client_scenarios() {
    let srv = Server::start(&["serve", "halfclose", "--port", "0", "--lang", "zh"]);
    let addr = srv.addr.to_string();

    let mut c = Client::start(&["halfclose", &addr, "half", "--lang", "zh"]);
    assert_eq!(c.wait_exit_open(), Some(0));
    assert_eq!(
        c.seen_out,
        [
            "connected",
            "=== client half-close ===",
            "received: 服务器确认关闭写端",
            "server closed its write side",
            "client sends data after the server's FIN",
            "client closed its write side",
            "connection fully closed",
        ]
    );
    log_until(&srv, "line after our end: not answered");

    let mut c = Client::start(&["halfclose", &addr, "normal"]);
    assert_eq!(c.wait_exit_open(), Some(0));
    assert_eq!(
        c.seen_out,
        [
            "connected",
            "=== normal communication ===",
            "received: 回显: Hello Server!",
            "received: 回显: How are you?",
            "client closed its write side",
            "received: 服务器在客户端关闭写端后发送的数据",
            "server closed its write side",
            "connection fully closed",
        ]
    );

    let mut c = Client::start(&["halfclose", &addr, "shutdown"]);
    assert_eq!(c.wait_exit_open(), Some(0));
    assert_eq!(
        c.seen_out,
        [
            "connected",
            "=== server graceful shutdown ===",
            "received: 开始关闭连接...",
            "received: 发送最后的数据...",
            "received: 再见!",
            "server closed its write side",
            "client sends data after the server's FIN",
            "client closed its write side",
            "connection fully closed",
        ]
    );
}

/// A hostile server: accepts one connection, writes `script` in one go and
/// holds the connection open (reading and dropping what the client sends)
/// until the client closes or the test ends.
fn hostile_server(script: Vec<u8>) -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_read_timeout(Some(TIMEOUT));
        let _ = s.write_all(&script);
        let mut sink = [0u8; 4096];
        while matches!(std::io::Read::read(&mut s, &mut sink), Ok(n) if n > 0) {}
    });
    addr
}

#[test]
fn connect_shows_lines_buffered_behind_an_overlong_line_at_once() {
    // A line over the client's 1 MiB limit, then two short lines, all in one
    // write; the server then goes quiet. Both short lines must be printed at
    // once, each on its own, not when (if ever) more data arrives.
    let mut script = vec![b'A'; netloop::clients::server_lines::MAX_SERVER_LINE + 100];
    script.extend_from_slice(b"\nhello\nworld\n");
    let addr = hostile_server(script).to_string();
    let mut c = Client::start(&["connect", &addr, "--no-reconnect"]);
    c.wait_line("hello");
    c.wait_line("world");
}

#[test]
fn halfclose_client_consumes_an_overlong_line_with_bounded_memory() {
    // 48 MiB without a newline, an invalid UTF-8 line and a valid one in
    // the same stream: the long line is shown in pieces (never buffered
    // whole) and `ok` comes at once, not with a later segment. The bound is
    // half the line: the debug binary's own footprint (14.5 MiB peak for a
    // 10-byte line, with the TLS and terminal crates linked in; the old
    // 16 MiB bound left no room) stays under it, a buffered line could not.
    const LONG: usize = 48 << 20;
    let mut script = vec![b'A'; LONG];
    script.extend_from_slice(b"\n\xff\xfe\nok\n");
    let addr = hostile_server(script).to_string();
    let mut c = Client::start(&["halfclose", &addr, "half"]);
    c.wait_line("received: [a line that is not UTF-8]");
    c.wait_line("received: ok");
    let peak = util::proc_status_kib(c.child.id(), "VmHWM:");
    assert!(
        peak < 24 * 1024,
        "client peak RSS {peak} KiB after a {LONG}-byte line"
    );
}

/// A server at its connection limit accepts and closes at once. Each such
/// connection is a failed attempt: the attempt number climbs, the delays
/// grow, and the client gives up with a non-zero exit after the limit.
#[test]
fn accept_and_close_server_exhausts_the_attempts() {
    use std::io::Read;
    let srv = Server::start(&["serve", "echo", "--port", "0", "--max-connections", "1"]);
    // Occupy the one slot, and prove it is taken by an echo.
    let mut holder = std::net::TcpStream::connect(srv.addr).unwrap();
    holder.set_read_timeout(Some(TIMEOUT)).unwrap();
    holder.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    holder.read_exact(&mut one).unwrap();
    let addr = srv.addr.to_string();
    let mut c = Client::start(&[
        "connect",
        &addr,
        "--max-attempts",
        "3",
        "--reconnect-delay",
        "40ms",
        "--reconnect-max-delay",
        "10s",
    ]);
    // Standard input stays open: only the attempt limit can end the client.
    assert_eq!(c.wait_exit_open(), Some(1));
    let err = c.seen_err.join("\n");
    let connects = c.seen_err.iter().filter(|l| l.starts_with("connecting to"));
    assert_eq!(connects.count(), 4, "{err}");
    assert!(err.contains("giving up after 3 attempts"), "{err}");
    // Attempt n waits within [d/2, d] for d = 40 ms * 2^(n-1): growing.
    for n in 1..=3u32 {
        let tag = format!("(attempt {n}/3)");
        let line = c
            .seen_err
            .iter()
            .find(|l| l.ends_with(&tag))
            .unwrap_or_else(|| panic!("no {tag}: {err}"));
        assert!(
            line.contains("the server closed the connection after"),
            "{line}"
        );
        let ms: u128 = line
            .split("reconnecting in ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no delay in {line}"));
        let ceiling = 40u128 << (n - 1);
        assert!(
            ms >= ceiling / 2 && ms <= ceiling,
            "attempt {n}: {ms} ms: {err}"
        );
    }
}

/// An unknown host cannot appear by retrying: one attempt, a line saying
/// so, exit 1.
#[test]
fn unknown_host_is_not_retried() {
    let mut c = Client::start(&[
        "connect",
        "no-such-host.invalid:80",
        "--max-attempts",
        "3",
        "--reconnect-delay",
        "20ms",
    ]);
    assert_eq!(c.wait_exit_open(), Some(1));
    let err = c.seen_err.join("\n");
    let connects = c.seen_err.iter().filter(|l| l.starts_with("connecting to"));
    assert_eq!(connects.count(), 1, "{err}");
    assert!(err.contains("ENOTFOUND"), "{err}");
    assert!(err.contains("not reconnecting"), "{err}");
}

/// `connect --token FILE` authenticates before any input is sent; a wrong
/// token is one line on stderr and exit 1, without reconnecting.
#[test]
fn token_file_authenticates_and_a_wrong_token_fails() {
    let dir = std::env::temp_dir().join(format!("netloop-connect-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good");
    let bad = dir.join("bad");
    std::fs::write(&good, "s3cret-token\n").unwrap();
    std::fs::write(&bad, "wrong-token\n").unwrap();
    let srv = Server::start_shell(
        COMMAND_LOG,
        &[
            "serve",
            "command",
            "--port",
            "0",
            "--token",
            good.to_str().unwrap(),
        ],
    );
    let addr = srv.addr.to_string();

    let mut c = Client::start(&["connect", &addr, "--token", good.to_str().unwrap()]);
    c.send("hello\n/list\n");
    c.close_stdin();
    assert_eq!(c.wait_exit_open(), Some(0));
    let out = c.seen_out.join("\n");
    assert!(out.contains("Echo: hello"), "{out}");
    assert!(!out.contains("authentication required"), "{out}");

    let mut c = Client::start(&[
        "connect",
        &addr,
        "--token",
        bad.to_str().unwrap(),
        "--reconnect-delay",
        "20ms",
    ]);
    assert_eq!(c.wait_exit_open(), Some(1));
    let err = c.seen_err.join("\n");
    assert!(
        err.contains("error: authentication failed: wrong token"),
        "{err}"
    );
    assert!(!err.contains("reconnecting"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
