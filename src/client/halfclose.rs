//! `netloop halfclose HOST:PORT [normal|half|shutdown]`: the seed's half-close
//! client (program 08), with half-open really on (D8.1).
//!
//! Scenarios, as in the seed's runner:
//! * `normal`: `Hello Server!`, 500 ms later `How are you?`, 500 ms later our
//!   `end()`; the server's extra line then arrives after our FIN;
//! * `half`: `CLOSE_WRITE`; the server confirms and ends; 1 s later we end;
//! * `shutdown`: `SHUTDOWN`; the server sends three lines and ends.
//!
//! In every scenario, when the server's FIN arrives and our side is still open,
//! the client waits 200 ms, sends its last line and ends 500 ms later (the
//! seed's timings). Nothing is written after our own end, and every timer is
//! cleared when the connection closes (D8.4). Received lines are printed as
//! `received: <line>`; events as the seed logged them, in English.

use crate::apps::catalog::Lang;
use crate::apps::text::sanitize;
use crate::client::server_lines::{ServerLines, ServerText};
use crate::{ConnId, ConnectOptions, Handler, NetError, Reactor, SocketOptions, TimerId};
use bytes::BytesMut;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

/// The seed client's scenarios.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Two lines, then our end.
    Normal,
    /// Ask the server to end first.
    Half,
    /// Ask for the server's closing sequence.
    Shutdown,
}

/// Gap between the two lines of `normal`, and before its end (seed: 500 ms).
const NORMAL_GAP: Duration = Duration::from_millis(500);
/// `half` ends our side this long after `CLOSE_WRITE` (seed: 1 s).
const HALF_END_AFTER: Duration = Duration::from_secs(1);
/// After the server's FIN: wait, send the last line (seed: 200 ms)...
const AFTER_FIN_WRITE: Duration = Duration::from_millis(200);
/// ...then end this much later (seed: 500 ms).
const AFTER_FIN_END: Duration = Duration::from_millis(500);

/// What a timer does.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    SendSecond,
    End,
    LastLine,
}

struct HalfCloseClient {
    scenario: Scenario,
    lang: Lang,
    conn: Option<ConnId>,
    lines: ServerLines,
    timers: HashMap<u64, Step>,
    pending: Vec<TimerId>,
    next_tag: u64,
    connected: bool,
}

impl HalfCloseClient {
    fn after(&mut self, r: &mut Reactor, d: Duration, step: Step) {
        self.next_tag += 1;
        self.timers.insert(self.next_tag, step);
        self.pending.push(r.set_timeout(d, self.next_tag));
    }

    fn send(&self, r: &mut Reactor, text: &str) {
        if let Some(c) = self.conn.filter(|c| r.is_writable(*c)) {
            let _ = r.write(c, format!("{text}\n"));
        }
    }

    fn end(&self, r: &mut Reactor) {
        if let Some(c) = self.conn.filter(|c| r.is_writable(*c)) {
            println!("client closed its write side");
            let _ = r.end(c);
        }
    }
}

impl Handler for HalfCloseClient {
    fn on_connect(&mut self, r: &mut Reactor, _conn: ConnId) {
        self.connected = true;
        println!("connected");
        match self.scenario {
            Scenario::Normal => {
                println!("=== normal communication ===");
                self.send(r, "Hello Server!");
                self.after(r, NORMAL_GAP, Step::SendSecond);
                self.after(r, NORMAL_GAP * 2, Step::End);
            }
            Scenario::Half => {
                println!("=== client half-close ===");
                self.send(r, "CLOSE_WRITE");
                self.after(r, HALF_END_AFTER, Step::End);
            }
            Scenario::Shutdown => {
                println!("=== server graceful shutdown ===");
                self.send(r, "SHUTDOWN");
            }
        }
    }

    fn on_data(&mut self, _r: &mut Reactor, _conn: ConnId, data: &mut BytesMut) {
        while let Some(t) = self.lines.next(data) {
            show(t);
        }
    }

    fn on_end(&mut self, r: &mut Reactor, conn: ConnId) {
        let mut rest = r.take_unread(conn);
        while let Some(t) = self.lines.next_eof(&mut rest) {
            show(t);
        }
        println!("server closed its write side");
        if r.is_writable(conn) {
            self.after(r, AFTER_FIN_WRITE, Step::LastLine);
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, tag: u64) {
        match self.timers.remove(&tag) {
            Some(Step::SendSecond) => self.send(r, "How are you?"),
            Some(Step::End) => self.end(r),
            Some(Step::LastLine) if self.conn.is_some_and(|c| r.is_writable(c)) => {
                println!("client sends data after the server's FIN");
                let last = match self.lang {
                    Lang::En => "client's last message",
                    Lang::Zh => "客户端最后的消息",
                };
                self.send(r, last);
                self.after(r, AFTER_FIN_END, Step::End);
            }
            Some(Step::LastLine) => {}
            None => {}
        }
    }

    fn on_error(&mut self, _r: &mut Reactor, _conn: ConnId, err: &NetError) {
        eprintln!("connection error: {} ({})", err.code.describe(), err.code);
    }

    fn on_close(&mut self, r: &mut Reactor, _conn: ConnId, had_error: bool) {
        println!(
            "connection fully closed{}",
            if had_error { " (error)" } else { "" }
        );
        for t in self.pending.drain(..) {
            r.clear_timer(t);
        }
        self.conn = None;
        r.stop();
    }
}

/// Print what the server sent (a long line in pieces, as `netloop connect`).
fn show(t: ServerText) {
    match t {
        ServerText::Line(l) | ServerText::Piece(l) => println!("received: {}", sanitize(&l)),
        ServerText::NotUtf8 => println!("received: [a line that is not UTF-8]"),
    }
}

/// Play `scenario` against `host:port`; exit status 0 if it connected.
pub fn run(host: &str, port: u16, scenario: Scenario, lang: Lang) -> ExitCode {
    let mut r = match crate::client::new_loop(crate::client::Signals::Default) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let opts = ConnectOptions {
        socket: SocketOptions {
            allow_half_open: true,
            ..SocketOptions::default()
        },
        ..ConnectOptions::default()
    };
    let conn = r.connect(host, port, opts);
    let mut c = HalfCloseClient {
        scenario,
        lang,
        conn: Some(conn),
        lines: ServerLines::default(),
        timers: HashMap::new(),
        pending: Vec::new(),
        next_tag: 0,
        connected: false,
    };
    match crate::client::run_loop_with(&mut r, &mut c) {
        Ok(_) if c.connected => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}
