//! A blocking line client for the line-server tests: every read bounded by
//! `util::TIMEOUT`, every wait synchronised on a reply.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Upper bound for one read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

pub struct LineClient {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl LineClient {
    pub fn connect(addr: SocketAddr) -> LineClient {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        LineClient {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    /// Send raw bytes (one write).
    pub fn send_raw(&mut self, b: &[u8]) {
        self.w.write_all(b).expect("write");
    }

    /// Send `line` + `\n`.
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// One line, with its `\n`; panics at EOF.
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let n = self.r.read_until(b'\n', &mut buf).expect("read line");
        assert!(n > 0, "unexpected EOF");
        String::from_utf8(buf).expect("server sent UTF-8")
    }

    /// Exactly `text` (which may span several lines) comes next.
    pub fn expect(&mut self, text: &str) {
        let mut got = String::new();
        while got.len() < text.len() {
            got.push_str(&self.line());
        }
        assert_eq!(got, text);
    }

    /// Lines until one contains `needle`; returns it.
    pub fn until(&mut self, needle: &str) -> String {
        loop {
            let l = self.line();
            if l.contains(needle) {
                return l;
            }
        }
    }

    /// Everything until EOF.
    pub fn rest(&mut self) -> String {
        let mut out = Vec::new();
        self.r.read_to_end(&mut out).expect("read to EOF");
        String::from_utf8(out).expect("UTF-8")
    }

    /// FIN our side.
    pub fn shutdown_write(&self) {
        self.w.shutdown(Shutdown::Write).expect("shutdown");
    }
}
