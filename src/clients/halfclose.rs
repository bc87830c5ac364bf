//! `netloop halfclose HOST:PORT [normal|half|shutdown]`: the seed's half-close
//! client (program 08), with half-open really on (the seed never set
//! `allowHalfOpen`, so its "after the FIN" paths never ran).
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
//! cleared when the connection closes, so none outlives it. Received lines are printed as
//! `received: <line>`; events as the seed logged them, in English.

use crate::clients::server_lines::{ServerLines, ServerText};
use crate::protocol::catalog::Lang;
use crate::protocol::text::sanitize;
use crate::{ConnId, ConnectOptions, Cx, ErrorCode, NetError, Service, SocketOptions, TimerId};
use bytes::BytesMut;
use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
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
    /// Timers not fired yet, cleared when the connection closes.
    pending: Vec<TimerId>,
    /// Set at `connect`, read by [`run`] after the loop.
    connected: Rc<Cell<bool>>,
}

impl HalfCloseClient {
    fn after(&mut self, cx: &mut Cx<'_, Self>, d: Duration, conn: ConnId, step: Step) {
        self.pending.push(cx.set_timeout(d, (conn, step)));
    }

    fn send(cx: &mut Cx<'_, Self>, conn: ConnId, text: &str) {
        if cx.is_writable(conn) {
            let _ = cx.write(conn, format!("{text}\n"));
        }
    }

    fn end(cx: &mut Cx<'_, Self>, conn: ConnId) {
        if cx.is_writable(conn) {
            println!("client closed its write side");
            let _ = cx.end(conn);
        }
    }
}

impl Service for HalfCloseClient {
    /// The server's lines.
    type Conn = ServerLines;
    /// A scheduled step of the scenario, with its connection.
    type Tag = (ConnId, Step);
    type Message = ();

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut ServerLines) {
        self.connected.set(true);
        println!("connected");
        match self.scenario {
            Scenario::Normal => {
                println!("=== normal communication ===");
                Self::send(cx, conn, "Hello Server!");
                self.after(cx, NORMAL_GAP, conn, Step::SendSecond);
                self.after(cx, NORMAL_GAP * 2, conn, Step::End);
            }
            Scenario::Half => {
                println!("=== client half-close ===");
                Self::send(cx, conn, "CLOSE_WRITE");
                self.after(cx, HALF_END_AFTER, conn, Step::End);
            }
            Scenario::Shutdown => {
                println!("=== server graceful shutdown ===");
                Self::send(cx, conn, "SHUTDOWN");
            }
        }
    }

    fn on_data(
        &mut self,
        _: &mut Cx<'_, Self>,
        _: ConnId,
        lines: &mut ServerLines,
        data: &mut BytesMut,
    ) {
        while let Some(t) = lines.next(data) {
            show(t);
        }
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, lines: &mut ServerLines) {
        let mut rest = cx.take_unread(conn);
        while let Some(t) = lines.next_eof(&mut rest) {
            show(t);
        }
        println!("server closed its write side");
        if cx.is_writable(conn) {
            self.after(cx, AFTER_FIN_WRITE, conn, Step::LastLine);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, t: TimerId, (conn, step): (ConnId, Step)) {
        self.pending.retain(|&p| p != t);
        match step {
            Step::SendSecond => Self::send(cx, conn, "How are you?"),
            Step::End => Self::end(cx, conn),
            Step::LastLine if cx.is_writable(conn) => {
                println!("client sends data after the server's FIN");
                let last = match self.lang {
                    Lang::En => "client's last message",
                    Lang::Zh => "客户端最后的消息",
                };
                Self::send(cx, conn, last);
                self.after(cx, AFTER_FIN_END, conn, Step::End);
            }
            Step::LastLine => {}
        }
    }

    fn on_error(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut ServerLines, err: &NetError) {
        match err.code {
            ErrorCode::Tls => eprintln!("connection error: TLS: {}", err.detail),
            _ => eprintln!("connection error: {} ({})", err.code.describe(), err.code),
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, _: ServerLines, had_error: bool) {
        println!(
            "connection fully closed{}",
            if had_error { " (error)" } else { "" }
        );
        for t in self.pending.drain(..) {
            cx.clear_timer(t);
        }
        cx.stop();
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
pub fn run(
    host: &str,
    port: u16,
    scenario: Scenario,
    lang: Lang,
    tls: Option<crate::reactor::tls::ClientTls>,
) -> ExitCode {
    let mut r = match crate::clients::new_loop(crate::clients::Signals::Default) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let opts = ConnectOptions {
        socket: SocketOptions {
            allow_half_open: true,
            ..SocketOptions::default()
        },
        tls,
        ..ConnectOptions::default()
    };
    let connected = Rc::new(Cell::new(false));
    let client = HalfCloseClient {
        scenario,
        lang,
        pending: Vec::new(),
        connected: connected.clone(),
    };
    r.connect_with(host, port, opts, client, ServerLines::default());
    match r.run() {
        Ok(_) if connected.get() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => crate::error::fatal(format_args!("event loop failed: {e}")),
    }
}
