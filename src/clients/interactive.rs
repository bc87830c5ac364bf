//! `netloop connect HOST:PORT`: the tutorial's interactive client
//! (`05-interactive-client.js`) on our own loop.
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
use crate::protocol::auth::Token;
use crate::protocol::target::host_port;
use crate::protocol::text::sanitize;
use crate::{ConnId, ConnectOptions, Cx, ErrorCode, Exit, NetError, Reactor, Service, TimerId};
use bytes::BytesMut;
use std::cell::Cell;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
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

/// What the client's timers and its watched standard input are called.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    /// Standard input is readable.
    Stdin,
    /// The reconnect backoff expired: connect again.
    Reconnect,
    /// After end of input or `/quit`, the server stayed silent `--linger`.
    Linger,
}

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
    /// TLS, if any (one configuration for every attempt, so a reconnect
    /// can resume the session).
    pub tls: Option<crate::reactor::tls::ClientTls>,
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

/// One connection's own state.
#[derive(Debug, Default)]
struct Session {
    /// The server's lines being framed.
    incoming: ServerLines,
    /// When it connected (for [`STABLE_AFTER`]).
    connected_at: Option<Instant>,
    /// Its last error (said when reconnecting).
    last_error: Option<NetError>,
}

/// How the client ended, read by [`run`] once the loop has returned.
#[derive(Copy, Clone, Debug, Default)]
struct Outcome {
    /// A connection was established at least once.
    ever_connected: bool,
    /// The client stopped for a failure (gave up, unknown host, refused
    /// token, unreadable standard input): exit 1.
    failed: bool,
}

/// The interactive client service. The fields about the connection that
/// the input side reads too (whether it may send, the byte counts for
/// `/status`) are here rather than in [`Session`]: standard input has no
/// connection callback to borrow the session from.
struct Client {
    opts: ClientOptions,
    state: ClientState,
    /// The current connection (one at a time).
    conn: Option<ConnId>,
    reconnect: Reconnect,
    linger_timer: Option<TimerId>,
    outcome: Rc<Cell<Outcome>>,
    stdin: Option<Stdin>,
    tty: bool,
    /// Pipe/file input not yet sent.
    input: BytesMut,
    input_eof: bool,
    /// `write()` reported the high-water mark: stop sending until `drain`.
    blocked: bool,
    editor: Editor,
    local: Option<SocketAddr>,
    bytes_read: u64,
    bytes_written: u64,
    /// The token was sent on this connection and not yet accepted.
    awaiting_auth: bool,
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

    fn connect(&mut self, cx: &mut Cx<'_, Self>) {
        self.notice(&format!(
            "connecting to {}...",
            host_port(&self.opts.host, self.opts.port)
        ));
        let opts = ConnectOptions {
            timeout: self.opts.connect_timeout,
            tls: self.opts.tls.clone(),
            ..ConnectOptions::default()
        };
        let (host, port) = (self.opts.host.clone(), self.opts.port);
        self.conn = Some(cx.connect(&host, port, opts, Session::default()));
        self.bytes_read = 0;
        self.bytes_written = 0;
        self.blocked = false;
        self.awaiting_auth = false;
        self.set_state(ClientState::Connecting);
    }

    fn finish(&mut self, cx: &mut Cx<'_, Self>) {
        self.reconnect.cancel(cx);
        if let Some(t) = self.linger_timer.take() {
            cx.clear_timer(t);
        }
        if let Some(mut s) = self.stdin.take() {
            s.close(cx);
        }
        self.state = ClientState::Closed;
        if self.tty {
            self.write_out(false, "\r\x1b[K");
        }
        cx.stop();
    }

    /// `/quit`, end of input, Ctrl-D: end our side, wait for the server.
    fn close_gracefully(&mut self, cx: &mut Cx<'_, Self>) {
        self.reconnect.cancel(cx);
        match self.conn {
            Some(conn) if cx.reactor().state(conn).is_some() => {
                self.set_state(ClientState::Closing);
                let _ = cx.end(conn);
                self.arm_linger(cx);
            }
            _ => self.finish(cx),
        }
    }

    fn arm_linger(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(t) = self.linger_timer.take() {
            cx.clear_timer(t);
        }
        self.linger_timer = Some(cx.set_timeout(self.opts.linger, Tag::Linger));
    }

    fn can_send(&self, cx: &Reactor) -> bool {
        self.state == ClientState::Connected
            && !self.awaiting_auth
            && !self.blocked
            && self.conn.is_some_and(|c| cx.is_writable(c))
    }

    /// One input line: a local command or a line for the server.
    fn handle_line(&mut self, cx: &mut Cx<'_, Self>, line: &str) {
        let cmd = line.trim();
        match cmd {
            "" => {}
            "/quit" | "/exit" => {
                self.notice("disconnecting...");
                self.close_gracefully(cx);
            }
            "/status" => self.status(cx),
            "/clear" => {
                if self.tty {
                    self.write_out(false, "\x1b[2J\x1b[H");
                    self.set_state(self.state);
                }
            }
            _ => {
                let Some(conn) = self.conn.filter(|_| self.can_send(cx)) else {
                    self.notice("not connected: line not sent");
                    return;
                };
                let msg = format!("{cmd}\n");
                self.bytes_written += msg.len() as u64;
                match cx.write(conn, msg) {
                    Ok(true) => {}
                    Ok(false) => self.blocked = true,
                    Err(e) => self.notice(&format!("not sent: {e}")),
                }
            }
        }
    }

    fn status(&self, cx: &Reactor) {
        let local = self
            .conn
            .and_then(|c| cx.local_addr(c))
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
    fn service_input(&mut self, cx: &mut Cx<'_, Self>) {
        let Some(kind) = self.stdin.as_ref().map(Stdin::kind) else {
            return;
        };
        loop {
            if kind != StdinKind::Tty {
                self.pump(cx);
                if self.input_eof
                    || self.input.len() >= INPUT_BUFFER
                    || !self.can_send(cx)
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
                                self.handle_line(cx, &l);
                            }
                            EditEvent::Eof => {
                                self.close_gracefully(cx);
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
                        s.close(cx);
                    }
                    if kind == StdinKind::Tty {
                        self.close_gracefully(cx);
                        return;
                    }
                    self.pump(cx);
                    break;
                }
            }
        }
    }

    /// Pipe/file input: send complete lines while connected; at end of input,
    /// the last unterminated line, then end our side.
    fn pump(&mut self, cx: &mut Cx<'_, Self>) {
        while self.can_send(cx) {
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
            self.handle_line(cx, line.trim_end_matches('\r'));
        }
        if self.input_eof
            && self.input.is_empty()
            && self.state == ClientState::Connected
            && !self.blocked
        {
            self.close_gracefully(cx);
        }
    }

    /// Print what the server sent; a long line is printed in pieces.
    /// What the server sent: a complete line goes through `server_line`
    /// (authentication answers), a piece of an overlong line is printed.
    fn show(&mut self, cx: &mut Cx<'_, Self>, t: ServerText) {
        match t {
            ServerText::Line(l) => self.server_line(cx, &l),
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
    fn server_line(&mut self, cx: &mut Cx<'_, Self>, line: &str) {
        if self.awaiting_auth {
            match classify_line(line) {
                AuthReply::Accepted => {
                    self.awaiting_auth = false;
                    self.notice("authenticated");
                    self.service_input(cx);
                    return;
                }
                AuthReply::Refused(why) => {
                    self.notice(&format!("error: authentication failed: {}", sanitize(&why)));
                    self.fail();
                    if let Some(c) = self.conn {
                        cx.destroy(c);
                    }
                    return self.finish(cx);
                }
                AuthReply::Prompt => return,
                AuthReply::Other => {
                    // A guarded server prompts and answers the token before
                    // anything else: this one has no access control.
                    self.awaiting_auth = false;
                    self.notice("note: the server did not ask for a token");
                    self.print_server_line(line);
                    self.service_input(cx);
                    return;
                }
            }
        }
        self.print_server_line(line);
    }

    /// Why the connection that just closed failed, for the reconnect notice;
    /// `None` when it had been established (stayed open [`STABLE_AFTER`]).
    fn failure_cause(st: &Session, now: Instant) -> Option<String> {
        let lived = st.connected_at.map(|at| now.saturating_duration_since(at));
        match attempt_outcome(lived, st.last_error.is_some()) {
            Attempt::Established => None,
            Attempt::ClosedEarly(lived) => Some(format!(
                "the server closed the connection after {} ms",
                lived.as_millis()
            )),
            Attempt::Failed => {
                Some(Self::error_text(st).unwrap_or_else(|| "connect failed".into()))
            }
        }
    }

    /// The last error of this connection, as the notices say it.
    fn error_text(st: &Session) -> Option<String> {
        st.last_error
            .as_ref()
            .map(|e| format!("{} ({})", e.code.describe(), e.code))
    }

    /// The client stops for a failure: exit 1.
    fn fail(&mut self) {
        let mut o = self.outcome.get();
        o.failed = true;
        self.outcome.set(o);
    }
}

impl Service for Client {
    type Conn = Session;
    type Tag = Tag;
    type Message = ();

    /// Watch standard input, then connect. The connect is made here rather
    /// than through `Reactor::connect_with`: standard input must be set up
    /// first (whether it is a terminal decides how every notice is printed,
    /// and a client that cannot read it exits without connecting), and the
    /// watch needs this service's context.
    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        let stdin = match Stdin::open(cx, Tag::Stdin) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot read standard input: {e}");
                self.fail();
                self.state = ClientState::Closed;
                cx.stop();
                return;
            }
        };
        self.tty = stdin.kind() == StdinKind::Tty;
        self.stdin = Some(stdin);
        if self.tty {
            self.write_out(
                false,
                "commands: /quit or /exit - leave, /status - status, /clear - clear the screen\n",
            );
        }
        self.connect(cx);
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Session) {
        let mut o = self.outcome.get();
        o.ever_connected = true;
        self.outcome.set(o);
        // The backoff is reset only once the connection proved stable (in
        // `on_close`), so a server that accepts and closes exhausts it.
        st.connected_at = Some(cx.now());
        self.local = cx.local_addr(conn);
        self.notice(&format!(
            "connected to {}",
            host_port(&self.opts.host, self.opts.port)
        ));
        self.set_state(ClientState::Connected);
        if let Some(t) = &self.opts.token {
            self.awaiting_auth = true;
            let _ = cx.write(conn, line_request(t));
        }
        self.service_input(cx);
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _conn: ConnId,
        st: &mut Session,
        data: &mut BytesMut,
    ) {
        self.bytes_read += data.len() as u64;
        while let Some(t) = st.incoming.next(data) {
            if self.state == ClientState::Closed {
                data.clear();
                return;
            }
            self.show(cx, t);
        }
        if self.state == ClientState::Closing {
            self.arm_linger(cx); // the server is still answering
        }
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Session) {
        let mut rest = cx.take_unread(conn);
        while let Some(t) = st.incoming.next_eof(&mut rest) {
            if self.state == ClientState::Closed {
                return;
            }
            self.show(cx, t);
        }
        self.notice("server ended the connection");
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, _conn: ConnId, _st: &mut Session) {
        self.blocked = false;
        self.service_input(cx);
    }

    fn on_error(
        &mut self,
        _cx: &mut Cx<'_, Self>,
        _conn: ConnId,
        st: &mut Session,
        err: &NetError,
    ) {
        match err.code {
            // The code alone says nothing useful: the detail names the
            // certificate or protocol problem.
            ErrorCode::Tls => self.notice(&format!("error: TLS: {}", err.detail)),
            _ => self.notice(&format!("error: {} ({})", err.code.describe(), err.code)),
        }
        st.last_error = Some(err.clone());
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _conn: ConnId, st: Session, _had_error: bool) {
        self.conn = None;
        if self.state == ClientState::Connected || self.state == ClientState::Closing {
            self.notice("connection closed");
        }
        if self.state == ClientState::Closed {
            return; // finished already (a refused token)
        }
        let cause = Self::failure_cause(&st, cx.now());
        if cause.is_none() {
            self.reconnect.connected(); // it was established: start over
        }
        if st
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::Tls)
        {
            // A refused certificate (or a TLS protocol failure) is a
            // failure whatever the input did, and no retry changes it.
            self.notice(
                "not reconnecting: the TLS session failed, and retrying cannot change that",
            );
            self.fail();
            return self.finish(cx);
        }
        // The one place a reconnect is decided: once per lost connection.
        if self.state == ClientState::Closing || self.input_eof {
            return self.finish(cx);
        }
        if !self.opts.reconnect {
            return self.finish(cx);
        }
        if st
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::NotFound)
        {
            self.notice(&format!(
                "not reconnecting: {} is not a known host name, and retrying cannot change that",
                self.opts.host
            ));
            self.fail();
            return self.finish(cx);
        }
        let why = cause
            .or_else(|| Self::error_text(&st).map(|e| format!("connection lost: {e}")))
            .unwrap_or_else(|| "connection lost".into());
        match self.reconnect.schedule(cx, Tag::Reconnect) {
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
                self.fail();
                self.finish(cx);
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Tag) {
        match tag {
            Tag::Reconnect => {
                self.reconnect.fired();
                self.connect(cx);
            }
            Tag::Linger => {
                self.linger_timer = None;
                match self.conn {
                    Some(c) => cx.destroy(c), // close follows, then finish
                    None => self.finish(cx),
                }
            }
            Tag::Stdin => {}
        }
    }

    fn on_fd_readable(&mut self, cx: &mut Cx<'_, Self>, tag: Tag) {
        if tag == Tag::Stdin {
            self.service_input(cx);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        // SIGINT/SIGTERM (Ctrl-C on a terminal): the loop ends the connection.
        self.notice("interrupted");
        self.reconnect.cancel(cx);
        self.state = ClientState::Closing;
        if self.conn.is_none() {
            self.finish(cx);
        }
    }
}

/// Run the interactive client until it quits; the process exit status.
pub fn run(opts: ClientOptions) -> ExitCode {
    let mut r = match crate::clients::new_loop(crate::clients::Signals::Required) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id());
    let outcome = Rc::new(Cell::new(Outcome::default()));
    let c = Client {
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
        outcome: outcome.clone(),
        tty: false,
        stdin: None,
        input: BytesMut::new(),
        input_eof: false,
        blocked: false,
        editor: Editor::new(),
        local: None,
        bytes_read: 0,
        bytes_written: 0,
        awaiting_auth: false,
    };
    r.add_service(c);
    let res = crate::clients::run_loop(&mut r);
    // The client (and its standard input) goes with the loop: the
    // descriptor's flags and the terminal's mode are restored here.
    drop(r);
    let o = outcome.get();
    match res {
        Ok(Exit::Forced(sig)) => ExitCode::from(128u8.saturating_add(sig as u8)),
        Ok(_) if o.ever_connected && !o.failed => ExitCode::SUCCESS,
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
