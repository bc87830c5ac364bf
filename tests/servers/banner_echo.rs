//! `netloop serve echo --banner`: the seed's first server, line-framed.

use crate::{lineclient, util};
use lineclient::LineClient;
use util::Server;

#[test]
fn welcome_and_prefixed_lines_in_both_languages() {
    let srv = Server::start(&["serve", "echo", "--port", "0", "--banner"]);
    let mut c = LineClient::connect(srv.addr);
    c.expect("Welcome to the TCP server!\n");
    c.send("hello");
    c.expect("Server received: hello\n");

    let srv = Server::start(&["serve", "echo", "--port", "0", "--banner", "--lang", "zh"]);
    let mut c = LineClient::connect(srv.addr);
    c.expect("欢迎连接到TCP服务器!\n");
    c.send("hello");
    c.expect("服务器收到: hello\n");
    // '你\n' split as e4 bd | a0 0a is one reply with the character intact (the tutorial's echo
    // server decoded each read alone: two replies, the character lost).
    c.send_raw(&[0xe4, 0xbd]);
    std::thread::sleep(std::time::Duration::from_millis(50)); // a separate segment
    c.send_raw(&[0xa0, b'\n']);
    c.send_raw(b"a\nb\n");
    c.expect("服务器收到: 你\n服务器收到: a\n服务器收到: b\n");
    c.shutdown_write();
    assert_eq!(c.rest(), "");
}

#[test]
fn overlong_line_gets_an_error_and_the_connection_closes() {
    let srv = Server::start(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--banner",
        "--max-line",
        "8",
    ]);
    let mut c = LineClient::connect(srv.addr);
    c.line();
    c.send("123456789");
    c.expect("error: line longer than 8 bytes, closing\n");
    assert_eq!(c.rest(), "");
}
