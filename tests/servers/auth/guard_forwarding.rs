//! The access guard as a service in front of another: every event of an
//! admitted connection and every loop-level event (immediates, timers,
//! messages from other threads) reaches the inner service, none of a
//! connection that never authenticated does, and an inner service that
//! refuses the connection gets it destroyed.

use crate::util;
use netloop::protocol::auth::Token;
use netloop::protocol::catalog::{Catalog, Lang};
use netloop::servers::auth_guard::{AuthGuard, AuthWire};
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service, TimerId};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;
use util::*;

/// Answers `imm`, `timer` and `msg` through an immediate, a timer and a
/// posted message; refuses its connection if `refuse`.
struct Probe {
    refuse: bool,
}

impl Service for Probe {
    type Conn = u32;
    type Tag = ConnId;
    type Message = ConnId;

    fn on_connection(&mut self, cx: &mut Cx<'_, Self>, _: ServerId, c: ConnId) -> Option<u32> {
        if self.refuse {
            return None;
        }
        let _ = cx.write(c, "welcome\n");
        Some(0)
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, n: &mut u32, data: &mut BytesMut) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let line = data.split_to(i + 1);
            *n += 1;
            match &line[..i] {
                b"imm" => cx.set_immediate(c),
                b"timer" => {
                    cx.set_timeout(Duration::from_millis(5), c);
                }
                b"msg" => {
                    let remote = cx.remote();
                    std::thread::spawn(move || remote.post(c));
                }
                other => {
                    let reply = format!("{} {}\n", *n, String::from_utf8_lossy(other));
                    let _ = cx.write(c, reply);
                }
            }
        }
    }

    fn on_immediate(&mut self, cx: &mut Cx<'_, Self>, c: ConnId) {
        let _ = cx.write(c, "immediate\n");
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: TimerId, c: ConnId) {
        let _ = cx.write(c, "timer\n");
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, c: ConnId) {
        let _ = cx.write(c, "message\n");
    }
}

fn start(refuse: bool) -> TestLoop {
    TestLoop::start_service(ListenOptions::default(), move || {
        AuthGuard::new(
            Probe { refuse },
            Token::from_text("tok").unwrap(),
            AuthWire::Line,
            Catalog::new(Lang::En),
        )
    })
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).expect("read");
    s
}

#[test]
fn admitted_connections_get_every_event() {
    let l = start(false);
    let s = connect(l.addr);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    assert!(line(&mut r).starts_with("authentication required"));
    // Before authentication nothing reaches the inner service.
    w.write_all(b"hello\n").unwrap();
    assert!(line(&mut r).starts_with("error: authentication required"));
    w.write_all(b"/auth tok\nfirst\n").unwrap();
    assert_eq!(line(&mut r), "authenticated\n");
    assert_eq!(line(&mut r), "welcome\n");
    // The rest of the authenticating read went to the inner service.
    assert_eq!(line(&mut r), "1 first\n");
    for (ask, want) in [
        ("imm", "immediate\n"),
        ("timer", "timer\n"),
        ("msg", "message\n"),
    ] {
        w.write_all(format!("{ask}\n").as_bytes()).unwrap();
        assert_eq!(line(&mut r), want, "{ask}");
    }
    w.write_all(b"last\n").unwrap();
    assert_eq!(line(&mut r), "5 last\n");
}

#[test]
fn a_connection_the_inner_service_refuses_is_destroyed() {
    let l = start(true);
    let mut s = connect(l.addr);
    s.write_all(b"/auth tok\n").unwrap();
    let rest = String::from_utf8(read_to_end(&mut s)).unwrap();
    assert!(rest.starts_with("authentication required"), "{rest:?}");
    assert!(!rest.contains("welcome"), "{rest:?}");
}
