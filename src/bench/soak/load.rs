//! The soak's client population on one reactor: echo, chat and framed
//! clients that each live a random number of messages and end in a clean
//! close, a half-close or a reset, plus bad-input probes.
//!
//! # Algorithm
//!
//! [`SoakLoad`] is a service: its `on_start` opens `connections` clients;
//! whenever one closes, another is opened, until the coordinator posts
//! [`WindDown`]: then every client ends after its current message (with its
//! chosen ending) and the loop stops when the last one has closed, or after
//! [`DRAIN_TIMEOUT`]: clients still open then are counted as stuck and
//! destroyed (their state, which names what is stuck, comes back in
//! `close`).
//!
//! Each verifying client has one request in flight at a time and, while
//! running, sends the next only once the previous is fully answered:
//!
//! * echo: a pattern slice of random size ([`Pattern`], seed per client),
//!   compared byte for byte as it comes back;
//! * chat: joins one of [`ROOMS`] rooms, then each message is followed by a
//!   whisper to itself whose echo confirms the server handled it; delivery
//!   is proved by [`Ledger`] (see `chat_check`);
//! * framed: `echo` (random text, must come back identical) or `ping` (its
//!   `id` must come back in `original`).
//!
//! Its last message decides the ending: `clean` (answer awaited, then
//! `end()` — chat: `/leave`, `/quit`); `half_close` (the message, then
//! `end()` at once, then everything still owed is read until the server's
//! FIN); `reset` (half the message, then `reset_and_destroy`: RST). After a
//! clean or half close, whatever was sent and not answered is lost.

use super::bad::{BadKind, BadProbe};
use super::chat_check::{self, Arrival, ChatLine, Ledger, Member};
use super::report::Counters;
use super::rng::{payload, Rng};
use super::servers::Kind;
use crate::bench::control::Outbox;
use crate::bench::pattern::Pattern;
use crate::codec::{encode_frame, FrameDecoder, LineDecoder};
use crate::Remote;
use crate::{ConnId, ConnectOptions, Cx, Reactor, Service, TimerId};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

/// Chat rooms the verifying chat clients spread over: few enough that rooms
/// have several members at once.
pub const ROOMS: u32 = 4;

/// Most messages one client sends before its ending.
pub const MAX_MESSAGES: u64 = 24;

/// Largest echo message: past the servers' 64 KiB high-water mark, so
/// backpressure (pause/resume) is exercised.
pub const MAX_ECHO: usize = 256 * 1024;

/// Largest chat payload: well inside the 64 KiB line limit.
pub const MAX_CHAT: usize = 4 * 1024;

/// Largest framed `echo` payload: well inside the 1 MiB frame limit.
pub const MAX_FRAMED: usize = 64 * 1024;

/// Largest frame a soak client accepts (replies add a few bytes of JSON).
const MAX_REPLY_FRAME: usize = 2 * 1024 * 1024;

/// Longest chat line a soak client accepts (the banner and help are short).
const MAX_CHAT_LINE: usize = 128 * 1024;

/// Percent of new clients that are bad-input probes.
pub const BAD_PCT: u64 = 8;

/// Percent of verifying clients that end in a reset, and in a half-close
/// (the rest close cleanly).
pub const RESET_PCT: u64 = 20;
/// See [`RESET_PCT`].
pub const HALF_CLOSE_PCT: u64 = 30;

/// Longest wait, after [`WindDown`], for every client to close.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Posted by the coordinator: stop opening clients, end the open ones.
#[derive(Debug)]
pub struct WindDown;

/// How a verifying client ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every answer read, then `end()`.
    Clean,
    /// `end()` right after the last message, then read the rest.
    HalfClose,
    /// RST in the middle of the last message.
    Reset,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Clean => "clean",
            Ending::HalfClose => "half_close",
            Ending::Reset => "reset",
        })
    }
}

/// Lifecycle of a client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Life {
    /// Connect in progress.
    Connecting,
    /// Exchanging messages.
    Running,
    /// Our end (or `/leave`) is out: the close is expected.
    Ending,
    /// Reset by us: nothing is checked any more.
    Reset,
}

impl fmt::Display for Life {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Life::Connecting => "connecting",
            Life::Running => "running",
            Life::Ending => "ending",
            Life::Reset => "reset",
        })
    }
}

#[derive(Debug)]
struct EchoState {
    seed: u64,
    sent: u64,
    received: u64,
    /// Messages sent whose echo is not complete yet.
    pending: u64,
}

#[derive(Debug)]
struct ChatState {
    sid: u64,
    room: u32,
    nick: String,
    lines: LineDecoder,
    member: Option<Member>,
    seq: u64,
    /// Messages awaiting their sync reply: (ledger index, payload bytes).
    unconfirmed: Vec<(usize, usize)>,
    /// Clock of our `/leave` or FIN.
    left_at: u64,
}

#[derive(Debug)]
struct FramedState {
    sid: u64,
    dec: FrameDecoder,
    welcomed: bool,
    next_id: u64,
    /// Requests awaiting their reply: (id, echo payload length or None for a ping, bytes).
    expect: VecDeque<(u64, Option<usize>, usize)>,
}

#[derive(Debug)]
struct BadState {
    probe: BadProbe,
    dec: FrameDecoder,
    welcomed: bool,
}

#[derive(Debug)]
enum Body {
    Echo(EchoState),
    Chat(ChatState),
    Framed(FramedState),
    Bad(BadState),
}

/// One soak client: what it is, where it is in its life, how it ends.
#[derive(Debug)]
pub struct Client {
    life: Life,
    ending: Ending,
    /// Messages still to send.
    left: u64,
    body: Body,
}

/// The soak load's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// [`DRAIN_TIMEOUT`] after [`WindDown`]: whatever is still open is stuck.
    Drain,
}

/// The service of the soak's load thread.
#[derive(Debug)]
pub struct SoakLoad {
    addrs: HashMap<Kind, SocketAddr>,
    connections: usize,
    rng: Rng,
    pattern: Pattern,
    /// Clients open (connecting or connected).
    live: usize,
    ledger: Ledger,
    next_sid: u64,
    clock: u64,
    winding: bool,
    /// The drain deadline passed: closing clients are stuck ones.
    stuck: bool,
    stats: Counters,
    out: Outbox<Counters>,
    /// Where `on_start` sends the remote for [`WindDown`].
    announce: Option<mpsc::Sender<Result<Remote<WindDown>, String>>>,
}

impl SoakLoad {
    /// `connections` clients at a time against `addrs`, choices from `seed`.
    pub fn new(addrs: HashMap<Kind, SocketAddr>, connections: usize, seed: u64) -> SoakLoad {
        SoakLoad {
            addrs,
            connections: connections.max(1),
            rng: Rng::new(seed),
            pattern: Pattern::new(),
            live: 0,
            ledger: Ledger::default(),
            next_sid: 1,
            clock: 0,
            winding: false,
            stuck: false,
            stats: Counters::default(),
            out: Outbox::default(),
            announce: None,
        }
    }

    /// Send the service's remote (for [`WindDown`]) through `to` when it is
    /// added to the loop.
    pub fn announce_to(mut self, to: mpsc::Sender<Result<Remote<WindDown>, String>>) -> SoakLoad {
        self.announce = Some(to);
        self
    }

    /// Where the counts are left when the loop drops the service.
    pub fn outbox(&self) -> &Outbox<Counters> {
        &self.out
    }

    /// Count a client still open at the drain deadline as stuck.
    fn count_stuck(&mut self, c: &Client) {
        self.stats.stuck += 1;
        let what = match &c.body {
            Body::Echo(_) => "echo".to_string(),
            Body::Chat(_) => "chat".to_string(),
            Body::Framed(_) => "framed".to_string(),
            Body::Bad(b) => format!("bad input {}", b.probe.kind),
        };
        self.stats
            .note(format!("{what} client stuck ({}, {})", c.life, c.ending));
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn open(&mut self, cx: &mut Cx<'_, Self>) {
        let sid = self.next_sid;
        self.next_sid += 1;
        let ending = match self.rng.range(0, 99) {
            x if x < RESET_PCT => Ending::Reset,
            x if x < RESET_PCT + HALF_CLOSE_PCT => Ending::HalfClose,
            _ => Ending::Clean,
        };
        let left = self.rng.range(1, MAX_MESSAGES);
        let (kind, body) = if self.rng.chance(BAD_PCT) {
            let i = self.rng.range(0, BadKind::ALL.len() as u64 - 1) as usize;
            let k = BadKind::ALL.get(i).copied().unwrap_or(BadKind::BadJson);
            let body = Body::Bad(BadState {
                probe: BadProbe::new(k),
                dec: FrameDecoder::new(MAX_REPLY_FRAME),
                welcomed: false,
            });
            (k.server(), body)
        } else {
            match self.rng.range(0, 2) {
                0 => (
                    Kind::Echo,
                    Body::Echo(EchoState {
                        seed: sid.wrapping_mul(7919),
                        sent: 0,
                        received: 0,
                        pending: 0,
                    }),
                ),
                1 => (
                    Kind::Chat,
                    Body::Chat(ChatState {
                        sid,
                        room: self.rng.range(0, u64::from(ROOMS) - 1) as u32,
                        nick: format!("sk{sid}"),
                        lines: LineDecoder::new(MAX_CHAT_LINE),
                        member: None,
                        seq: 0,
                        unconfirmed: Vec::new(),
                        left_at: 0,
                    }),
                ),
                _ => (
                    Kind::Framed,
                    Body::Framed(FramedState {
                        sid,
                        dec: FrameDecoder::new(MAX_REPLY_FRAME),
                        welcomed: false,
                        next_id: 0,
                        expect: VecDeque::new(),
                    }),
                ),
            }
        };
        let Some(addr) = self.addrs.get(&kind).copied() else {
            return;
        };
        Counters::bump(&mut self.stats.connections, kind);
        if let Body::Bad(b) = &body {
            Counters::bump(&mut self.stats.bad_inputs, b.probe.kind);
        }
        let client = Client {
            life: Life::Connecting,
            ending,
            left,
            body,
        };
        let host = addr.ip().to_string();
        cx.connect(&host, addr.port(), ConnectOptions::default(), client);
        self.live += 1;
    }

    /// Take the next step of a running client whose previous message is
    /// fully answered: another message, or its ending.
    fn next(&mut self, r: &mut Reactor, id: ConnId, c: &mut Client) {
        let now = self.tick();
        let winding = self.winding;
        if c.life != Life::Running {
            return;
        }
        if winding {
            c.left = c.left.min(1);
        }
        if c.left == 0 {
            // Clean ending: everything sent is answered.
            c.life = Life::Ending;
            self.stats.clean_closes += 1;
            if let Body::Chat(ch) = &mut c.body {
                ch.left_at = now;
                let _ = r.write(id, "/leave\n");
            } else {
                let _ = r.end(id);
            }
            return;
        }
        c.left -= 1;
        let last = c.left == 0;
        let msg: Bytes = match &mut c.body {
            Body::Echo(e) => {
                let size = self.rng.size(MAX_ECHO);
                let mut v = Vec::with_capacity(size);
                for chunk in self.pattern.chunks(e.seed, e.sent, size) {
                    v.extend_from_slice(&chunk);
                }
                e.sent += size as u64;
                e.pending += 1;
                Bytes::from(v)
            }
            Body::Chat(ch) => {
                let len = self.rng.size(MAX_CHAT);
                let seq = ch.seq;
                ch.seq += 1;
                let mut line = chat_check::message_line(ch.sid, seq, len);
                if !(last && c.ending == Ending::Reset) {
                    let idx = self.ledger.sent(ch.room, ch.sid, seq, len, now);
                    ch.unconfirmed.push((idx, len));
                    line.push_str(&format!("/w {} {}\n", ch.nick, chat_check::SYNC));
                    self.stats.chat_messages_sent += 1;
                }
                Bytes::from(line)
            }
            Body::Framed(f) => {
                let rid = f.next_id;
                f.next_id += 1;
                let body = if self.rng.chance(75) {
                    let len = self.rng.size(MAX_FRAMED);
                    f.expect.push_back((rid, Some(len), len));
                    json!({"type": "echo", "data": payload(f.sid, rid, len)})
                } else {
                    let v = json!({"type": "ping", "id": rid});
                    f.expect.push_back((rid, None, v.to_string().len()));
                    v
                };
                let body = serde_json::to_vec(&body).unwrap_or_default();
                encode_frame(&body, MAX_REPLY_FRAME).unwrap_or_default()
            }
            Body::Bad(_) => return,
        };
        match (last, c.ending) {
            (true, Ending::Reset) => {
                // Mid-message: half of it, then RST.
                let half = msg.slice(..msg.len() / 2);
                let _ = r.write(id, half);
                c.life = Life::Reset;
                Counters::bump(&mut self.stats.faults, Ending::Reset);
                r.reset_and_destroy(id);
            }
            (true, Ending::HalfClose) => {
                let _ = r.write(id, msg);
                c.life = Life::Ending;
                if let Body::Chat(ch) = &mut c.body {
                    ch.left_at = self.clock;
                }
                Counters::bump(&mut self.stats.faults, Ending::HalfClose);
                let _ = r.end(id);
            }
            _ => {
                let _ = r.write(id, msg);
            }
        }
    }

    fn echo_data(&mut self, r: &mut Reactor, id: ConnId, c: &mut Client, data: &mut BytesMut) {
        let Body::Echo(e) = &mut c.body else { return };
        let n = data.len() as u64;
        let checked = if c.life == Life::Reset { 0 } else { n };
        self.stats.mismatches += self.pattern.mismatches(e.seed, e.received, data);
        data.clear();
        if e.received + n > e.sent {
            self.stats.mismatches += e.received + n - e.sent.max(e.received);
        }
        e.received += n;
        self.stats.bytes += checked;
        if e.received >= e.sent && e.pending > 0 {
            self.stats.messages += e.pending;
            e.pending = 0;
            if c.life == Life::Running {
                self.next(r, id, c);
            }
        }
    }

    fn chat_data(&mut self, r: &mut Reactor, id: ConnId, c: &mut Client, data: &mut BytesMut) {
        let mut lines = Vec::new();
        let room;
        {
            let Body::Chat(ch) = &mut c.body else { return };
            room = ch.room;
            loop {
                match ch.lines.decode(data) {
                    Ok(Some(l)) => lines.push(l),
                    Ok(None) => break,
                    Err(e) => {
                        data.clear();
                        self.stats.mismatches += 1;
                        self.stats
                            .note(format!("chat client: bad line from server: {e}"));
                        break;
                    }
                }
            }
        }
        let joined = format!("Joined room: r{room}");
        let left = format!("Left room: r{room}");
        for line in lines {
            let now = self.tick();
            let Body::Chat(ch) = &mut c.body else { return };
            match chat_check::parse_line(&line) {
                ChatLine::Msg {
                    sid,
                    seq,
                    len,
                    payload,
                } => {
                    let got = match &mut ch.member {
                        Some(m) => self.ledger.arrival(ch.room, m, (sid, seq, len), payload),
                        // Before our join we are in the lobby, where no
                        // verifying sender talks: misdelivered.
                        None => Arrival::Bad(len.max(1) as u64),
                    };
                    match got {
                        Arrival::Good(n) => {
                            self.stats.messages += 1;
                            self.stats.bytes += n as u64;
                        }
                        Arrival::Bad(n) => {
                            self.stats.mismatches += n;
                            self.stats.note(format!(
                                "chat: bad arrival of {sid}/{seq} at {} (room r{})",
                                ch.nick, ch.room
                            ));
                        }
                    }
                }
                ChatLine::SyncAck => {
                    for (idx, _) in ch.unconfirmed.drain(..) {
                        self.ledger.confirm(ch.room, idx, now);
                    }
                    if c.life == Life::Running {
                        self.next(r, id, c);
                    }
                }
                ChatLine::Foreign | ChatLine::Other => {
                    if line == joined && ch.member.is_none() && c.life == Life::Running {
                        ch.member = Some(Member::new(now));
                        self.next(r, id, c);
                    } else if line == left && c.life == Life::Ending {
                        let _ = r.write(id, "/quit\n");
                    }
                }
            }
        }
    }

    fn framed_data(&mut self, r: &mut Reactor, id: ConnId, c: &mut Client, data: &mut BytesMut) {
        let mut frames = Vec::new();
        {
            let Body::Framed(f) = &mut c.body else { return };
            loop {
                match f.dec.decode(data) {
                    Ok(Some(b)) => frames.push(b),
                    Ok(None) => break,
                    Err(e) => {
                        data.clear();
                        self.stats.mismatches += 1;
                        self.stats.note(format!("framed client: bad frame: {e}"));
                        break;
                    }
                }
            }
        }
        for body in frames {
            let Body::Framed(f) = &mut c.body else { return };
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
            if !f.welcomed {
                f.welcomed = true;
                if kind != "welcome" {
                    self.stats.mismatches += body.len() as u64;
                    self.stats.note(format!("framed: first frame {kind:?}"));
                }
                self.next(r, id, c);
                continue;
            }
            let Some((rid, echo, bytes)) = f.expect.pop_front() else {
                self.stats.mismatches += body.len().max(1) as u64;
                self.stats.note(format!("framed: unexpected {kind:?}"));
                continue;
            };
            let ok = match echo {
                Some(len) => {
                    kind == "echo_response"
                        && v.get("data").and_then(Value::as_str)
                            == Some(payload(f.sid, rid, len).as_str())
                }
                None => {
                    kind == "pong"
                        && v.get("original").and_then(|o| o.get("id")) == Some(&json!(rid))
                }
            };
            if ok {
                self.stats.messages += 1;
                self.stats.bytes += bytes as u64;
            } else {
                self.stats.mismatches += bytes.max(1) as u64;
                self.stats
                    .note(format!("framed: reply {kind:?} to request {rid} is wrong"));
            }
            if f.expect.is_empty() && c.life == Life::Running {
                self.next(r, id, c);
            }
        }
    }

    fn bad_data(&mut self, r: &mut Reactor, id: ConnId, c: &mut Client, data: &mut BytesMut) {
        let Body::Bad(b) = &mut c.body else { return };
        if b.probe.kind.server() == Kind::Chat {
            // The answers looked for are ASCII: a multi-byte character split
            // over two reads only blurs the banner.
            let text = String::from_utf8_lossy(data).into_owned();
            data.clear();
            if let Some(next) = b.probe.on_text(&text) {
                let _ = r.write(id, next);
            }
            return;
        }
        loop {
            match b.dec.decode(data) {
                Ok(Some(body)) => {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if !b.welcomed {
                        b.welcomed = true;
                        let _ = r.write(id, b.probe.input());
                        continue;
                    }
                    let (next, end) = b.probe.on_frame(&v);
                    if let Some(n) = next {
                        let _ = r.write(id, n);
                    }
                    if end {
                        let _ = r.end(id);
                    }
                }
                Ok(None) => return,
                Err(_) => {
                    data.clear();
                    return;
                }
            }
        }
    }

    /// A client closed: settle its accounts.
    fn closed(&mut self, c: Client, had_error: bool) {
        if let Body::Bad(b) = &c.body {
            if b.probe.passed() {
                return;
            }
            self.stats.bad_input_failures += 1;
            self.stats.note(format!(
                "bad input {}: no documented answer before the close",
                b.probe.kind
            ));
            return;
        }
        match c.life {
            Life::Reset => return,
            Life::Connecting | Life::Running => {
                self.stats.errors += 1;
                self.stats.note(format!(
                    "a {} client closed while {} (error: {had_error})",
                    match c.body {
                        Body::Echo(_) => "echo",
                        Body::Chat(_) => "chat",
                        _ => "framed",
                    },
                    c.life
                ));
                return;
            }
            Life::Ending => {}
        }
        let (msgs, bytes) = match &c.body {
            Body::Echo(e) => {
                if e.received < e.sent {
                    (e.pending, e.sent - e.received)
                } else {
                    (0, 0)
                }
            }
            Body::Chat(ch) => {
                let mut lost = (0, 0);
                if let Some(m) = &ch.member {
                    let o = self.ledger.missing(ch.room, ch.sid, m, ch.left_at);
                    self.stats.chat_deliveries_owed += o.owed;
                    lost = (o.missing, o.missing_bytes);
                }
                // Our own messages never confirmed: the server did not handle them.
                lost.0 += ch.unconfirmed.len() as u64;
                lost.1 += ch.unconfirmed.iter().map(|u| u.1 as u64).sum::<u64>();
                lost
            }
            Body::Framed(f) => (
                f.expect.len() as u64,
                f.expect.iter().map(|e| e.2 as u64).sum(),
            ),
            Body::Bad(_) => (0, 0),
        };
        if bytes > 0 {
            self.stats.note(format!(
                "{} after a {} end: {msgs} messages, {bytes} bytes lost",
                match c.body {
                    Body::Echo(_) => "echo",
                    Body::Chat(_) => "chat",
                    _ => "framed",
                },
                c.ending
            ));
        }
        self.stats.messages_lost += msgs;
        self.stats.bytes_lost += bytes;
    }
}

impl Drop for SoakLoad {
    fn drop(&mut self) {
        // A loop stopped some other way than by the drain (an error) with
        // clients open: they are stuck too, if unnamed.
        self.stats.stuck += self.live as u64;
        self.out.put(std::mem::take(&mut self.stats));
    }
}

impl Service for SoakLoad {
    type Conn = Client;
    type Tag = Timer;
    type Message = WindDown;

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(to) = self.announce.take() {
            let _ = to.send(Ok(cx.remote()));
        }
        for _ in 0..self.connections {
            self.open(cx);
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, c: &mut Client) {
        c.life = Life::Running;
        match &c.body {
            Body::Echo(_) => self.next(cx.reactor(), conn, c),
            Body::Chat(ch) => {
                let hello = format!("/nick {}\n/join r{}\n", ch.nick, ch.room);
                let _ = cx.write(conn, hello);
            }
            Body::Framed(_) => {} // the welcome comes first
            Body::Bad(b) => {
                if b.probe.kind.server() == Kind::Chat {
                    let _ = cx.write(conn, b.probe.input());
                }
            }
        }
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        c: &mut Client,
        data: &mut BytesMut,
    ) {
        let r = cx.reactor();
        match &c.body {
            Body::Echo(_) => self.echo_data(r, conn, c, data),
            Body::Chat(_) => self.chat_data(r, conn, c, data),
            Body::Framed(_) => self.framed_data(r, conn, c, data),
            Body::Bad(_) => self.bad_data(r, conn, c, data),
        }
    }

    fn on_error(
        &mut self,
        _: &mut Cx<'_, Self>,
        conn: ConnId,
        _: &mut Client,
        err: &crate::NetError,
    ) {
        log::debug!("soak {conn}: {err}");
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, c: Client, had_error: bool) {
        self.live -= 1;
        if self.stuck {
            self.count_stuck(&c);
        } else {
            self.tick();
            self.closed(c, had_error);
        }
        if !self.winding {
            self.open(cx);
        } else if self.live == 0 {
            cx.stop();
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Timer) {
        let Timer::Drain = tag;
        // The drain deadline: whatever is still open is stuck. The loop
        // runs only this service's connections; destroying them hands
        // their states back in `close`, which counts each as stuck and
        // stops the loop after the last.
        self.stuck = true;
        if self.live == 0 {
            cx.stop();
            return;
        }
        for id in cx.connection_ids() {
            cx.destroy(id);
        }
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, _: WindDown) {
        self.winding = true;
        if self.live == 0 {
            cx.stop();
            return;
        }
        cx.set_timeout(DRAIN_TIMEOUT, Timer::Drain);
    }
}
