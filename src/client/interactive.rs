//! `netloop connect HOST:PORT`: the seed's interactive client (program 05) on
//! our own loop.
//!
//! One state machine ([`ClientState`]) reacts once per lost connection: only
//! `close` schedules a reconnect (the tutorial reconnected from `end`, `error`
//! and `close`, so one lost connection opened two), the reconnect timer is kept
//! so a quit cancels it (the tutorial kept no handle to it), and standard input
//! is registered once for the life of the process (the tutorial added a
//! readline listener per connect, so after a reconnect every line went out
//! several times). See docs/TUTORIAL-DEFECTS.md. Backoff: [`super::backoff`].
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
//! Exit status: 0 if a connection was ever established, 1 otherwise, and 1
//! when the client gave up reconnecting or authentication failed.
//!
//! What counts as a failed attempt: a connect that fails, and a connection
//! that closes within [`STABLE_AFTER`] of its connect, whether or not data
//! came first (a full server accepts, may send one refusal line, and
//! closes). Only a connection that stayed open that long resets the backoff,
//! so against such a server the delays keep growing and the client gives up
//! after `--max-attempts`. An error a retry cannot fix (an unknown host, a
//! refused token) is not retried at all.
//!
//! With `--token` (or `NETLOOP_TOKEN`) the client sends `/auth TOKEN` as its
//! first line on every connection and holds back input until the server
//! answers `authenticated`; a refusal is one line on stderr and exit 1.

use super::auth::{classify_line, line_request, AuthReply};
use super::backoff::{Backoff, BackoffConfig};
use super::editor::{EditEvent, Editor};
use super::reconnect::Reconnect;
use super::server_lines::{ServerLines, ServerText};
use super::stdin::{ReadOutcome, Stdin, StdinKind};
use crate::apps::auth::Token;
use crate::apps::text::sanitize;
use crate::cli::target::host_port;
use crate::{ConnId, ConnectOptions, ErrorCode, Exit, Handler, NetError, Reactor, TimerId};
use bytes::BytesMut;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A connection must stay open this long to count as established (and reset
/// the reconnect backoff). Shorter is a failed attempt: a server at its
/// connection limit accepts and closes at once, and treating that as a
/// success would reconnect for ever at the first delay. Long enough to
/// outlast such a refusal, short enough that a real session always exceeds it.
pub const STABLE_AFTER: Duration = Duration::from_secs(2);

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
    /// The token sent as `/auth TOKEN` on every connection, if any.
    pub token: Option<Token>,
}

/// How a connection attempt ended, for the backoff.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// It stayed open [`STABLE_AFTER`]: the backoff starts over, whatever
    /// ended it later.
    Established,
    /// It connected but closed within [`STABLE_AFTER`] without an error
    /// (how a full server refuses): a failed attempt.
    ClosedEarly(Duration),
    /// It never connected, or failed with an error before it was stable.
    Failed,
}

/// Classify a closed connection: `lived` is how long it was connected
/// (`None`: it never was), `had_error` whether an error ended it.
pub fn attempt_outcome(lived: Option<Duration>, had_error: bool) -> Attempt {
    match lived {
        Some(d) if d >= STABLE_AFTER => Attempt::Established,
        Some(d) if !had_error => Attempt::ClosedEarly(d),
        _ => Attempt::Failed,
    }
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
    /// When the current connection connected (for [`STABLE_AFTER`]).
    connected_at: Option<Instant>,
    /// The token was sent on this connection and not yet accepted.
    awaiting_auth: bool,
    /// The last error of the current connection (said when reconnecting).
    last_error: Option<NetError>,
    /// The client stopped for a failure (gave up, unknown host, refused
    /// token): exit 1.
    failed: bool,
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
            "connecting to {}...",
            host_port(&self.opts.host, self.opts.port)
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
        self.connected_at = None;
        self.awaiting_auth = false;
        self.last_error = None;
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
            && !self.awaiting_auth
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
            "status:\n  server: {}\n  state: {}\n  attempts: {}/{} (auto-reconnect {reconnect})\n  local address: {local}\n  bytes read: {}\n  bytes written: {}",
            host_port(&self.opts.host, self.opts.port),
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
    /// What the server sent: a complete line goes through `server_line`
    /// (authentication answers), a piece of an overlong line is printed.
    fn show(&mut self, r: &mut Reactor, t: ServerText) {
        match t {
            ServerText::Line(l) => self.server_line(r, &l),
            ServerText::Piece(l) => self.print_server_line(&l),
            ServerText::NotUtf8 => self.print("[server sent a line that is not UTF-8]"),
        }
    }

    /// Print one line from the server, made safe for the terminal.
    fn print_server_line(&self, line: &str) {
        self.print(&sanitize(line));
    }

    /// A complete server line: while authenticating, the guard's answers are
    /// acted on (the prompt is not printed); otherwise it is printed.
    fn server_line(&mut self, r: &mut Reactor, line: &str) {
        if self.awaiting_auth {
            match classify_line(line) {
                AuthReply::Accepted => {
                    self.awaiting_auth = false;
                    self.notice("authenticated");
                    self.service_input(r);
                    return;
                }
                AuthReply::Refused(why) => {
                    self.notice(&format!("error: authentication failed: {}", sanitize(&why)));
                    self.failed = true;
                    if let Some(c) = self.conn {
                        r.destroy(c);
                    }
                    return self.finish(r);
                }
                AuthReply::Prompt => return,
                AuthReply::Other => {
                    // A guarded server prompts and answers the token before
                    // anything else: this one has no access control.
                    self.awaiting_auth = false;
                    self.notice("note: the server did not ask for a token");
                    self.print_server_line(line);
                    self.service_input(r);
                    return;
                }
            }
        }
        self.print_server_line(line);
    }

    /// Why the connection that just closed failed, for the reconnect notice;
    /// `None` when it had been established (stayed open [`STABLE_AFTER`]).
    fn failure_cause(&self, now: Instant) -> Option<String> {
        let lived = self
            .connected_at
            .map(|at| now.saturating_duration_since(at));
        match attempt_outcome(lived, self.last_error.is_some()) {
            Attempt::Established => None,
            Attempt::ClosedEarly(lived) => Some(format!(
                "the server closed the connection after {} ms",
                lived.as_millis()
            )),
            Attempt::Failed => Some(self.error_text().unwrap_or_else(|| "connect failed".into())),
        }
    }

    /// The last error of this connection, as the notices say it.
    fn error_text(&self) -> Option<String> {
        self.last_error
            .as_ref()
            .map(|e| format!("{} ({})", e.code.describe(), e.code))
    }
}

impl Handler for Client {
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {
        if Some(conn) != self.conn {
            return;
        }
        self.ever_connected = true;
        // The backoff is reset only once the connection proved stable (in
        // `on_close`), so a server that accepts and closes exhausts it.
        self.connected_at = Some(r.now());
        self.local = r.local_addr(conn);
        self.notice(&format!(
            "connected to {}",
            host_port(&self.opts.host, self.opts.port)
        ));
        self.set_state(ClientState::Connected);
        if let Some(t) = &self.opts.token {
            self.awaiting_auth = true;
            let _ = r.write(conn, line_request(t));
        }
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
            if self.state == ClientState::Closed {
                data.clear();
                return;
            }
            self.show(r, t);
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
            if self.state == ClientState::Closed {
                return;
            }
            self.show(r, t);
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
            self.last_error = Some(err.clone());
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
        if self.state == ClientState::Closed {
            return; // finished already (a refused token)
        }
        let cause = self.failure_cause(r.now());
        if cause.is_none() {
            self.reconnect.connected(); // it was established: start over
        }
        // The one place a reconnect is decided: once per lost connection.
        if self.state == ClientState::Closing || self.input_eof {
            return self.finish(r);
        }
        if !self.opts.reconnect {
            return self.finish(r);
        }
        if self
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::NotFound)
        {
            self.notice(&format!(
                "not reconnecting: {} is not a known host name, and retrying cannot change that",
                self.opts.host
            ));
            self.failed = true;
            return self.finish(r);
        }
        let why = cause
            .or_else(|| self.error_text().map(|e| format!("connection lost: {e}")))
            .unwrap_or_else(|| "connection lost".into());
        match self.reconnect.schedule(r, TAG_RECONNECT) {
            Some(delay) => {
                self.notice(&format!(
                    "{why}; reconnecting in {} ms (attempt {}/{})",
                    delay.as_millis(),
                    self.reconnect.attempts(),
                    self.reconnect.max_attempts()
                ));
                self.set_state(ClientState::BackingOff);
            }
            None => {
                self.notice(&format!(
                    "{why}; giving up after {} attempts",
                    self.reconnect.attempts()
                ));
                self.failed = true;
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
        connected_at: None,
        awaiting_auth: false,
        last_error: None,
        failed: false,
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
        Ok(_) if c.ever_connected && !c.failed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_count_until_the_connection_is_stable() {
        let ms = Duration::from_millis;
        assert_eq!(attempt_outcome(None, true), Attempt::Failed);
        assert_eq!(attempt_outcome(None, false), Attempt::Failed);
        assert_eq!(
            attempt_outcome(Some(ms(3)), false),
            Attempt::ClosedEarly(ms(3))
        );
        assert_eq!(attempt_outcome(Some(ms(3)), true), Attempt::Failed);
        // A connection reset after a long session was established: the
        // backoff starts over rather than counting it against the limit.
        assert_eq!(
            attempt_outcome(Some(STABLE_AFTER + ms(1)), true),
            Attempt::Established
        );
        assert_eq!(
            attempt_outcome(Some(STABLE_AFTER), false),
            Attempt::Established
        );
    }
}
