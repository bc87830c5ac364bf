//! `netloop connect HOST:PORT`: the seed's interactive client (program 05) on
//! our own loop.
//!
//! One state machine ([`ClientState`]) reacts once per lost connection: only
//! `close` schedules a reconnect (the seed reconnected from `end`, `error` and
//! `close`, D5.1, D5.2), the reconnect timer is kept so a quit cancels it
//! (D5.4), and standard input is registered once for the life of the process
//! (D5.3: the seed added a readline listener per connect, so every line went
//! out N times). Backoff: [`super::backoff`].
//!
//! Input: see [`super::stdin`]. On a terminal the client runs a small line
//! editor: a server line is printed by clearing the prompt line (`\r\x1b[K`),
//! printing, and redrawing the prompt (which shows the state) and what the user
//! has typed so far. Lines typed while disconnected are not sent (they are
//! reported), except the local commands. From a pipe or file, input is read
//! only while connected, so no line is lost before the first connect or sent
//! twice across a reconnect; at end of input the client ends its side and
//! exits once the server has closed, or after `--linger` of silence from it.
//!
//! Local commands (never sent): `/quit`, `/exit`, `/status`, `/clear`. Every
//! other non-empty line is sent with `\n`, including other `/commands`.
//! Output: server lines go to stdout (sanitised: a server cannot drive the
//! terminal); client notices go to stderr unless stdin is a terminal.
//! Exit status: 0 if a connection was ever established, 1 otherwise.

use super::backoff::{Backoff, BackoffConfig};
use super::editor::{EditEvent, Editor};
use super::reconnect::Reconnect;
use super::server_lines::{ServerLines, ServerText};
use super::stdin::{ReadOutcome, Stdin, StdinKind};
use crate::apps::text::sanitize;
use crate::{ConnId, ConnectOptions, Exit, Handler, NetError, Reactor, TimerId};
use bytes::BytesMut;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Input read ahead of the connection, in bytes, before reading pauses (pipe
/// and file input): bounds memory when the server reads slowly.
pub const INPUT_BUFFER: usize = 64 * 1024;

/// Watch tag of standard input.
const TAG_STDIN: u64 = 0;
/// Timer tags.
const TAG_RECONNECT: u64 = 1;
const TAG_LINGER: u64 = 2;

/// Lifecycle of the client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// A connect is in flight.
    Connecting,
    /// Connected: lines are sent.
    Connected,
    /// Waiting for the reconnect timer.
    BackingOff,
    /// Quitting or at end of input: our side is ended, waiting for the server.
    Closing,
    /// Done.
    Closed,
}

impl fmt::Display for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientState::Connecting => "connecting",
            ClientState::Connected => "connected",
            ClientState::BackingOff => "reconnecting",
            ClientState::Closing => "closing",
            ClientState::Closed => "closed",
        })
    }
}

/// Options of `netloop connect`.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Server host (name or IP).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Reconnect after a lost or failed connection.
    pub reconnect: bool,
    /// Backoff of the reconnects.
    pub backoff: BackoffConfig,
    /// After end of input (or `/quit`), how long the server may stay silent
    /// before the client closes anyway.
    pub linger: Duration,
    /// Connect timeout of each attempt.
    pub connect_timeout: Duration,
}

/// The interactive client handler.
struct Client {
    opts: ClientOptions,
    state: ClientState,
    conn: Option<ConnId>,
    reconnect: Reconnect,
    linger_timer: Option<TimerId>,
    ever_connected: bool,
    stdin: Option<Stdin>,
    tty: bool,
    /// Pipe/file input not yet sent.
    input: BytesMut,
    input_eof: bool,
    /// `write()` reported the high-water mark: stop sending until `drain`.
    blocked: bool,
    editor: Editor,
    incoming: ServerLines,
    local: Option<SocketAddr>,
    bytes_read: u64,
    bytes_written: u64,
}

impl Client {
    fn prompt(&self) -> String {
        format!("[{}] > ", self.state)
    }

    fn write_out(&self, to_stderr: bool, text: &str) {
        let res = if to_stderr {
            std::io::stderr().write_all(text.as_bytes())
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        };
        if let Err(e) = res {
            log::debug!("output: {e}");
        }
    }

    /// Print a server line (or /status output) without mangling the input line.
    fn print(&self, text: &str) {
        if self.tty {
            let t = format!(
                "\r\x1b[K{text}\n{}{}",
                self.prompt(),
                sanitize(self.editor.current())
            );
            self.write_out(false, &t);
        } else {
            self.write_out(false, &format!("{text}\n"));
        }
    }

    /// A client notice: stderr for pipes, above the prompt on a terminal.
    fn notice(&self, text: &str) {
        if self.tty {
            self.print(text);
        } else {
            self.write_out(true, &format!("{text}\n"));
        }
    }

    fn set_state(&mut self, s: ClientState) {
        self.state = s;
        if self.tty {
            let t = format!(
                "\r\x1b[K{}{}",
                self.prompt(),
                sanitize(self.editor.current())
            );
            self.write_out(false, &t);
        }
    }

    fn connect(&mut self, r: &mut Reactor) {
        self.notice(&format!(
            "connecting to {}:{}...",
            self.opts.host, self.opts.port
        ));
        let opts = ConnectOptions {
            timeout: self.opts.connect_timeout,
            ..ConnectOptions::default()
        };
        self.conn = Some(r.connect(&self.opts.host, self.opts.port, opts));
        self.incoming = ServerLines::default();
        self.bytes_read = 0;
        self.bytes_written = 0;
        self.blocked = false;
        self.set_state(ClientState::Connecting);
    }

    fn finish(&mut self, r: &mut Reactor) {
        self.reconnect.cancel(r);
        if let Some(t) = self.linger_timer.take() {
            r.clear_timer(t);
        }
        if let Some(mut s) = self.stdin.take() {
            s.close(r);
        }
        self.state = ClientState::Closed;
        if self.tty {
            self.write_out(false, "\r\x1b[K");
        }
        r.stop();
    }

    /// `/quit`, end of input, Ctrl-D: end our side, wait for the server.
    fn close_gracefully(&mut self, r: &mut Reactor) {
        self.reconnect.cancel(r);
        match self.conn {
            Some(conn) if r.state(conn).is_some() => {
                self.set_state(ClientState::Closing);
                let _ = r.end(conn);
                self.arm_linger(r);
            }
            _ => self.finish(r),
        }
    }

    fn arm_linger(&mut self, r: &mut Reactor) {
        if let Some(t) = self.linger_timer.take() {
            r.clear_timer(t);
        }
        self.linger_timer = Some(r.set_timeout(self.opts.linger, TAG_LINGER));
    }

    fn can_send(&self, r: &Reactor) -> bool {
        self.state == ClientState::Connected
            && !self.blocked
            && self.conn.is_some_and(|c| r.is_writable(c))
    }

    /// One input line: a local command or a line for the server.
    fn handle_line(&mut self, r: &mut Reactor, line: &str) {
        let cmd = line.trim();
        match cmd {
            "" => {}
            "/quit" | "/exit" => {
                self.notice("disconnecting...");
                self.close_gracefully(r);
            }
            "/status" => self.status(r),
            "/clear" => {
                if self.tty {
                    self.write_out(false, "\x1b[2J\x1b[H");
                    self.set_state(self.state);
                }
            }
            _ => {
                let Some(conn) = self.conn.filter(|_| self.can_send(r)) else {
                    self.notice("not connected: line not sent");
                    return;
                };
                let msg = format!("{cmd}\n");
                self.bytes_written += msg.len() as u64;
                match r.write(conn, msg) {
                    Ok(true) => {}
                    Ok(false) => self.blocked = true,
                    Err(e) => self.notice(&format!("not sent: {e}")),
                }
            }
        }
    }

    fn status(&self, r: &Reactor) {
        let local = self
            .conn
            .and_then(|c| r.local_addr(c))
            .or(self.local)
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let reconnect = if self.opts.reconnect { "on" } else { "off" };
        self.print(&format!(
            "status:\n  server: {}:{}\n  state: {}\n  attempts: {}/{} (auto-reconnect {reconnect})\n  local address: {local}\n  bytes read: {}\n  bytes written: {}",
            self.opts.host,
            self.opts.port,
            self.state,
            self.reconnect.attempts(),
            self.reconnect.max_attempts(),
            self.bytes_read,
            self.bytes_written,
        ));
    }

    /// Read and act on input until it would block, is held back, or ends.
    fn service_input(&mut self, r: &mut Reactor) {
        let Some(kind) = self.stdin.as_ref().map(Stdin::kind) else {
            return;
        };
        loop {
            if kind != StdinKind::Tty {
                self.pump(r);
                if self.input_eof
                    || self.input.len() >= INPUT_BUFFER
                    || !self.can_send(r)
                    || self.state == ClientState::Closed
                {
                    break;
                }
            }
            let Some(stdin) = self.stdin.as_mut() else {
                return;
            };
            let mut chunk = BytesMut::new();
            let room = if kind == StdinKind::Tty {
                INPUT_BUFFER
            } else {
                INPUT_BUFFER - self.input.len()
            };
            match stdin.read(&mut chunk, room) {
                ReadOutcome::Data(_) if kind == StdinKind::Tty => {
                    for ev in self.editor.feed(&chunk) {
                        match ev {
                            EditEvent::Line(l) => {
                                self.print(&format!("{}{}", self.prompt(), sanitize(&l)));
                                self.handle_line(r, &l);
                            }
                            EditEvent::Eof => {
                                self.close_gracefully(r);
                            }
                        }
                        if self.state == ClientState::Closed {
                            return;
                        }
                    }
                    if self.tty {
                        self.set_state(self.state);
                    }
                }
                ReadOutcome::Data(_) => self.input.extend_from_slice(&chunk),
                ReadOutcome::WouldBlock => break,
                ReadOutcome::Eof => {
                    self.input_eof = true;
                    if let Some(mut s) = self.stdin.take() {
                        s.close(r);
                    }
                    if kind == StdinKind::Tty {
                        self.close_gracefully(r);
                        return;
                    }
                    self.pump(r);
                    break;
                }
            }
        }
    }

    /// Pipe/file input: send complete lines while connected; at end of input,
    /// the last unterminated line, then end our side.
    fn pump(&mut self, r: &mut Reactor) {
        while self.can_send(r) {
            let line = match self.input.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let l = self.input.split_to(i + 1);
                    String::from_utf8_lossy(&l[..i]).into_owned()
                }
                None if self.input_eof && !self.input.is_empty() => {
                    let l = self.input.split();
                    String::from_utf8_lossy(&l).into_owned()
                }
                None => break,
            };
            self.handle_line(r, line.trim_end_matches('\r'));
        }
        if self.input_eof
            && self.input.is_empty()
            && self.state == ClientState::Connected
            && !self.blocked
        {
            self.close_gracefully(r);
        }
    }

    /// Print what the server sent; a long line is printed in pieces.
    fn show(&self, t: ServerText) {
        match t {
            ServerText::Line(l) | ServerText::Piece(l) => self.print(&sanitize(&l)),
            ServerText::NotUtf8 => self.print("[server sent a line that is not UTF-8]"),
        }
    }
}

impl Handler for Client {
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {
        if Some(conn) != self.conn {
            return;
        }
        self.ever_connected = true;
        self.reconnect.connected();
        self.local = r.local_addr(conn);
        self.notice(&format!(
            "connected to {}:{}",
            self.opts.host, self.opts.port
        ));
        self.set_state(ClientState::Connected);
    }

    fn on_ready(&mut self, r: &mut Reactor, conn: ConnId) {
        if Some(conn) == self.conn {
            self.service_input(r);
        }
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        if Some(conn) != self.conn {
            data.clear();
            return;
        }
        self.bytes_read += data.len() as u64;
        while let Some(t) = self.incoming.next(data) {
            self.show(t);
        }
        if self.state == ClientState::Closing {
            self.arm_linger(r); // the server is still answering
        }
    }

    fn on_end(&mut self, r: &mut Reactor, conn: ConnId) {
        if Some(conn) != self.conn {
            return;
        }
        let mut rest = r.take_unread(conn);
        while let Some(t) = self.incoming.next_eof(&mut rest) {
            self.show(t);
        }
        self.notice("server ended the connection");
    }

    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        if Some(conn) == self.conn {
            self.blocked = false;
            self.service_input(r);
        }
    }

    fn on_error(&mut self, _r: &mut Reactor, conn: ConnId, err: &NetError) {
        if Some(conn) == self.conn {
            self.notice(&format!("error: {} ({})", err.code.describe(), err.code));
        }
    }

    fn on_close(&mut self, r: &mut Reactor, conn: ConnId, _had_error: bool) {
        if Some(conn) != self.conn {
            return;
        }
        self.conn = None;
        if self.state == ClientState::Connected || self.state == ClientState::Closing {
            self.notice("connection closed");
        }
        // The one place a reconnect is decided (D5.1, D5.2).
        if self.state == ClientState::Closing || self.input_eof || !self.opts.reconnect {
            return self.finish(r);
        }
        match self.reconnect.schedule(r, TAG_RECONNECT) {
            Some(delay) => {
                self.notice(&format!(
                    "reconnecting in {} ms (attempt {}/{})",
                    delay.as_millis(),
                    self.reconnect.attempts(),
                    self.reconnect.max_attempts()
                ));
                self.set_state(ClientState::BackingOff);
            }
            None => {
                self.notice(&format!(
                    "giving up after {} attempts",
                    self.reconnect.attempts()
                ));
                self.finish(r);
            }
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, tag: u64) {
        match tag {
            TAG_RECONNECT => {
                self.reconnect.fired();
                self.connect(r);
            }
            TAG_LINGER => {
                self.linger_timer = None;
                match self.conn {
                    Some(c) => r.destroy(c), // close follows, then finish
                    None => self.finish(r),
                }
            }
            _ => {}
        }
    }

    fn on_fd_readable(&mut self, r: &mut Reactor, tag: u64) {
        if tag == TAG_STDIN {
            self.service_input(r);
        }
    }

    fn on_shutdown(&mut self, r: &mut Reactor) {
        // SIGINT/SIGTERM (Ctrl-C on a terminal): the loop ends the connection.
        self.notice("interrupted");
        self.reconnect.cancel(r);
        self.state = ClientState::Closing;
        if self.conn.is_none() {
            self.finish(r);
        }
    }
}

/// Run the interactive client until it quits; the process exit status.
pub fn run(opts: ClientOptions) -> ExitCode {
    let mut r = match crate::client::new_loop(crate::client::Signals::Required) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let stdin = match Stdin::open(&mut r, TAG_STDIN) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read standard input: {e}");
            return ExitCode::FAILURE;
        }
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id());
    let mut c = Client {
        reconnect: Reconnect::new(Backoff::new(
            BackoffConfig {
                max_attempts: if opts.reconnect {
                    opts.backoff.max_attempts
                } else {
                    0
                },
                ..opts.backoff
            },
            seed,
        )),
        opts,
        state: ClientState::Connecting,
        conn: None,
        linger_timer: None,
        ever_connected: false,
        tty: stdin.kind() == StdinKind::Tty,
        stdin: Some(stdin),
        input: BytesMut::new(),
        input_eof: false,
        blocked: false,
        editor: Editor::new(),
        incoming: ServerLines::default(),
        local: None,
        bytes_read: 0,
        bytes_written: 0,
    };
    if c.tty {
        c.write_out(
            false,
            "commands: /quit or /exit - leave, /status - status, /clear - clear the screen\n",
        );
    }
    c.connect(&mut r);
    let res = crate::client::run_loop(&mut r, &mut c);
    if let Some(mut s) = c.stdin.take() {
        s.close(&mut r);
    }
    match res {
        Ok(Exit::Forced(sig)) => ExitCode::from(128u8.saturating_add(sig as u8)),
        Ok(_) if c.ever_connected => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}
