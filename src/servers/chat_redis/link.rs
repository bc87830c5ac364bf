//! The [`Link`]: the service that owns a node's two Redis connections
//! (commands and subscriptions) on the chat's own loop: it writes the
//! node's outbox while the connections take it, decodes replies and
//! messages, checks Redis's health, and reconnects with backoff (see the
//! parent module's docs for the protocol and the faults).

use super::*;
use crate::{ConnId, ConnectOptions, Cx, NetError, Service, TimerId};
use redis_protocol::resp2::decode::decode_bytes_mut;

/// Which connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Commands (request/reply, pipelined).
    Cmd,
    /// SUBSCRIBE/UNSUBSCRIBE and the messages.
    Sub,
}

/// The link's lifecycle.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum LinkState {
    /// Connecting (both connections), waiting for the first PING reply.
    Connecting,
    /// Both connections open, Redis answering.
    Up,
    /// Waiting for the reconnect timer.
    Down,
    /// The loop is shutting down: no reconnect.
    Stopped,
}

/// The link's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Reconnect after a backoff.
    Reconnect,
    /// Refresh the claims and the user hash.
    Refresh,
    /// Health check.
    Ping,
}

/// One of the link's two connections.
#[derive(Debug)]
pub struct LinkConn {
    role: Role,
    buf: BytesMut,
}

/// The service owning a node's two Redis connections (see the module
/// docs): writes the outbox, reads replies and messages, reconnects.
#[derive(Debug)]
pub struct Link {
    cfg: RedisConfig,
    node: Arc<Mutex<Node>>,
    state: LinkState,
    cmd: Option<ConnId>,
    sub: Option<ConnId>,
    sub_open: bool,
    /// Redis answered the first PING on the command connection.
    hello: bool,
    since: Instant,
    /// Replies awaited on the command connection, oldest first.
    inflight: VecDeque<(Instant, Then)>,
    cmd_blocked: bool,
    sub_blocked: bool,
    ping_out: bool,
    failures: u32,
    rng: u64,
    /// `undelivered` when the link went down (for the log when back).
    undelivered_at_down: u64,
    timers: Vec<TimerId>,
}

impl Link {
    pub(super) fn new(cfg: RedisConfig, node: Arc<Mutex<Node>>) -> Link {
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        Link {
            cfg,
            node,
            state: LinkState::Connecting,
            cmd: None,
            sub: None,
            sub_open: false,
            hello: false,
            since: Instant::now(),
            inflight: VecDeque::new(),
            cmd_blocked: false,
            sub_blocked: false,
            ping_out: false,
            failures: 0,
            rng: seed | 1,
            undelivered_at_down: 0,
            timers: Vec::new(),
        }
    }

    fn node(&self) -> MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connect(&mut self, cx: &mut Cx<'_, Self>) {
        self.state = LinkState::Connecting;
        self.since = Instant::now();
        self.hello = false;
        self.sub_open = false;
        self.cmd_blocked = false;
        self.sub_blocked = false;
        self.ping_out = false;
        let opts = ConnectOptions {
            timeout: self.cfg.reply_timeout,
            ..ConnectOptions::default()
        };
        let host = self.cfg.addr.host.clone();
        let port = self.cfg.addr.port;
        let cmd = cx.connect(
            &host,
            port,
            opts.clone(),
            LinkConn {
                role: Role::Cmd,
                buf: BytesMut::new(),
            },
        );
        let sub = cx.connect(
            &host,
            port,
            opts,
            LinkConn {
                role: Role::Sub,
                buf: BytesMut::new(),
            },
        );
        self.cmd = Some(cmd);
        self.sub = Some(sub);
    }

    /// Write `bytes` on the command connection awaiting `then`.
    fn send_cmd(&mut self, cx: &mut Cx<'_, Self>, bytes: Bytes, then: Then) {
        let Some(c) = self.cmd else {
            return self.node().fail(then);
        };
        self.inflight.push_back((Instant::now(), then));
        if cx.write(c, bytes) == Ok(false) {
            self.cmd_blocked = true;
        }
    }

    /// Both connections are open and Redis answers: re-subscribe, re-claim,
    /// rebuild the user hash, tell the members if they were told it was away.
    fn go_up(&mut self, cx: &mut Cx<'_, Self>) {
        self.state = LinkState::Up;
        self.failures = 0;
        let cfg = self.cfg.clone();
        let node = self.node.clone();
        let mut n = node.lock().unwrap_or_else(PoisonError::into_inner);
        n.up = true;
        log::info!(
            "redis: connected to {}:{} as node {}",
            cfg.addr.host,
            cfg.addr.port,
            cfg.node
        );
        if n.told_down {
            n.told_down = false;
            let lost = n.stats.undelivered - self.undelivered_at_down;
            log::warn!(
                "redis: reachable again; {lost} messages published while it was away were not delivered to other servers"
            );
            n.post(Relay::Reachable(true));
        }
        // Subscriptions: the node's own channel, then what its members need.
        let mut chans = vec![format!("{PREFIX}node:{}", cfg.node)];
        if !n.members.is_empty() {
            chans.push(format!("{PREFIX}all"));
        }
        if n.lobby > 0 {
            chans.push(format!("{PREFIX}lobby"));
        }
        chans.extend(n.rooms.keys().map(|r| room_channel(r)));
        for c in &chans {
            n.sub_cmd("SUBSCRIBE", c);
        }
        // Claims and the user hash, rebuilt.
        let users = format!("{PREFIX}users:{}", cfg.node);
        let _ = n.push(&[b"DEL", users.as_bytes()], Then::Ignore);
        n.refresh_all(&cfg);
        let entries: Vec<(String, String)> = n
            .members
            .iter()
            .map(|(i, l)| (i.to_string(), Node::user_value(l)))
            .collect();
        for chunk in entries.chunks(HSET_CHUNK) {
            let mut args: Vec<&[u8]> = vec![b"HSET", users.as_bytes()];
            for (k, v) in chunk {
                args.push(k.as_bytes());
                args.push(v.as_bytes());
            }
            let _ = n.push(&args, Then::Ignore);
        }
        let ttl = cfg.claim_ttl.as_millis().to_string();
        let _ = n.push(
            &[b"PEXPIRE", users.as_bytes(), ttl.as_bytes()],
            Then::Ignore,
        );
        let nodes = format!("{PREFIX}nodes");
        let _ = n.push(
            &[b"SADD", nodes.as_bytes(), cfg.node.as_bytes()],
            Then::Ignore,
        );
        n.ids_asked = false;
        if n.id_end.saturating_sub(n.next_id) < ID_BLOCK / 2 {
            let key = format!("{PREFIX}ids");
            if n.push(
                &[b"INCRBY", key.as_bytes(), ID_BLOCK.to_string().as_bytes()],
                Then::Ids,
            )
            .is_ok()
            {
                n.ids_asked = true;
            }
        }
        drop(n);
        self.flush(cx);
    }

    /// The link is lost (`why`): both connections go, what waits is
    /// answered locally, the members are told once, a reconnect is timed.
    fn go_down(&mut self, cx: &mut Cx<'_, Self>, why: &str) {
        if matches!(self.state, LinkState::Down | LinkState::Stopped) {
            return;
        }
        let was_up = self.state == LinkState::Up;
        for c in [self.cmd.take(), self.sub.take()].into_iter().flatten() {
            cx.destroy(c);
        }
        let node = self.node.clone();
        let mut n = node.lock().unwrap_or_else(PoisonError::into_inner);
        n.up = false;
        n.stats.reconnects += 1;
        for (_, then) in std::mem::take(&mut self.inflight) {
            n.fail(then);
        }
        while let Some(out) = n.cmd_out.pop_front() {
            n.fail(out.then);
        }
        n.sub_out.clear();
        n.out_bytes = 0;
        n.stats.subscriptions = 0;
        if !n.told_down {
            n.told_down = true;
            self.undelivered_at_down = n.stats.undelivered;
            n.post(Relay::Reachable(false));
            log::warn!("redis: {why}: other servers unreachable, chat goes on locally");
        } else if was_up {
            log::warn!("redis: {why}");
        } else {
            log::debug!("redis: {why}");
        }
        drop(n);
        self.failures = self.failures.saturating_add(1);
        let delay = self.backoff();
        self.state = LinkState::Down;
        let t = cx.set_timeout(delay, Tick::Reconnect);
        self.timers.push(t);
    }

    /// Exponential with equal jitter: uniform in `[d/2, d]`,
    /// `d = min(cap, base * 2^(failures-1))` (xorshift for the jitter).
    fn backoff(&mut self) -> Duration {
        let exp = self.failures.saturating_sub(1).min(16);
        let d = RECONNECT_BASE
            .saturating_mul(1u32 << exp)
            .min(RECONNECT_CAP);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = d / 2;
        let jitter = half.as_micros() as u64;
        half + Duration::from_micros(if jitter == 0 {
            0
        } else {
            self.rng % (jitter + 1)
        })
    }

    /// Move the outbox onto the connections while they take it.
    fn flush(&mut self, cx: &mut Cx<'_, Self>) {
        if self.state != LinkState::Up {
            return;
        }
        let node = self.node.clone();
        let mut n = node.lock().unwrap_or_else(PoisonError::into_inner);
        n.kicked = false;
        if let Some(s) = self.sub {
            while !self.sub_blocked && !n.sub_out.is_empty() {
                let mut batch = BytesMut::new();
                while batch.len() < WRITE_BATCH {
                    let Some(b) = n.sub_out.pop_front() else {
                        break;
                    };
                    n.out_bytes = n.out_bytes.saturating_sub(b.len());
                    batch.extend_from_slice(&b);
                }
                if cx.write(s, batch.freeze()) == Ok(false) {
                    self.sub_blocked = true;
                }
            }
        }
        if let Some(c) = self.cmd {
            while !self.cmd_blocked && !n.cmd_out.is_empty() {
                let mut batch = BytesMut::new();
                let now = Instant::now();
                while batch.len() < WRITE_BATCH {
                    let Some(out) = n.cmd_out.pop_front() else {
                        break;
                    };
                    n.out_bytes = n.out_bytes.saturating_sub(out.bytes.len());
                    batch.extend_from_slice(&out.bytes);
                    self.inflight.push_back((now, out.then));
                }
                if cx.write(c, batch.freeze()) == Ok(false) {
                    self.cmd_blocked = true;
                }
            }
        }
    }

    /// A reply on the command connection.
    fn on_reply(&mut self, cx: &mut Cx<'_, Self>, frame: BytesFrame) {
        let Some((_, then)) = self.inflight.pop_front() else {
            return self.go_down(cx, "reply without a command");
        };
        if let BytesFrame::Error(e) = &frame {
            log::warn!("redis: error reply: {e}");
        }
        let cfg = self.cfg.clone();
        let node = self.node.clone();
        let mut n = node.lock().unwrap_or_else(PoisonError::into_inner);
        match then {
            Then::Ignore => {}
            Then::Ping(sent) => {
                self.ping_out = false;
                let rtt = sent.elapsed().as_micros() as u64;
                n.stats.rtt_us = rtt;
                n.stats.rtt_max_us = n.stats.rtt_max_us.max(rtt);
                if !self.hello {
                    self.hello = true;
                    if self.sub_open {
                        drop(n);
                        self.go_up(cx);
                    }
                }
            }
            Then::Ids => {
                n.ids_asked = false;
                if let BytesFrame::Integer(end) = frame {
                    if let Ok(end) = u64::try_from(end) {
                        let first = n.id_end == 0;
                        n.next_id = end.saturating_sub(ID_BLOCK);
                        n.id_end = end;
                        if first {
                            log::info!("redis: member ids from {}", n.next_id + 1);
                        } else {
                            log::debug!("redis: member ids from {}", n.next_id + 1);
                        }
                    }
                }
            }
            Then::Claim { id, nick } => {
                let ok = frame == BytesFrame::Integer(1);
                let old = n.members.get(&id).map(|l| l.nick.clone());
                match old {
                    None if ok => n.release(&cfg, id, &nick),
                    None => {}
                    Some(old) => {
                        if ok {
                            if name_key(&old) != name_key(&nick) {
                                n.release(&cfg, id, &old);
                            }
                            if let Some(l) = n.members.get_mut(&id) {
                                l.nick = nick.clone();
                            }
                            n.hset(&cfg, id);
                        }
                        n.post(Relay::Claimed { id, nick, ok });
                    }
                }
            }
            Then::Refresh { id, nick } => {
                if frame == BytesFrame::Integer(0) {
                    n.lost(id, nick);
                }
            }
            Then::RefreshAll(held) => {
                if let BytesFrame::Array(results) = &frame {
                    for ((id, nick), r) in held.into_iter().zip(results) {
                        if *r == BytesFrame::Integer(0) {
                            n.lost(id, nick);
                        }
                    }
                }
            }
            Then::Whisper {
                sender,
                text,
                asked,
            } => {
                let to = frame_str(&frame).and_then(|v| {
                    let mut it = v.splitn(3, ' ');
                    let (node_id, _, nick) = (it.next()?, it.next()?, it.next()?);
                    (node_id != cfg.node).then(|| nick.to_string())
                });
                n.post(Relay::Whispered {
                    sender,
                    to,
                    text,
                    asked,
                });
            }
            Then::List { asker, rooms } => {
                let users = match &frame {
                    BytesFrame::Array(items) => parse_listing(items),
                    _ => n.local_roster(),
                };
                if rooms {
                    n.post(Relay::RoomList {
                        asker,
                        rooms: rooms_of(&users),
                    });
                } else {
                    n.post(Relay::Listing { asker, users });
                }
            }
        }
    }

    /// A frame on the subscription connection.
    fn on_push(&mut self, frame: BytesFrame) {
        let BytesFrame::Array(items) = frame else {
            return;
        };
        let kind = items.first().and_then(frame_str).unwrap_or("");
        let mut n = self.node();
        match (kind, items.get(1).and_then(frame_str), items.get(2)) {
            ("subscribe" | "unsubscribe", _, Some(BytesFrame::Integer(count))) => {
                n.stats.subscriptions = u64::try_from(*count).unwrap_or(0);
            }
            ("message", Some(chan), Some(payload)) => {
                let Some(payload) = frame_bytes(payload) else {
                    return;
                };
                let Some(nl) = payload.iter().position(|&b| b == b'\n') else {
                    return;
                };
                let head = &payload[..nl];
                let msg = payload.slice(nl + 1..);
                let Some(rest) = chan.strip_prefix(PREFIX) else {
                    return;
                };
                let relay = if rest.starts_with("node:") {
                    let Some(to) = std::str::from_utf8(head).ok().and_then(|s| s.parse().ok())
                    else {
                        return;
                    };
                    Relay::Whisper { to, msg }
                } else {
                    if head == self.cfg.node.as_bytes() {
                        return; // our own: delivered locally already
                    }
                    let place = if rest == "lobby" {
                        Place::Lobby
                    } else if rest == "all" {
                        Place::All
                    } else if let Some(key) = rest.strip_prefix("room:") {
                        match n.room_names.get(key) {
                            Some(name) => Place::Room(name.clone()),
                            None => return, // the last local member just left
                        }
                    } else {
                        return;
                    };
                    Relay::Deliver { place, msg }
                };
                n.stats.received += 1;
                n.post(relay);
            }
            _ => {}
        }
    }

    /// Decode and handle every complete frame of `st`'s buffer.
    fn read_frames(&mut self, cx: &mut Cx<'_, Self>, st: &mut LinkConn) {
        loop {
            match decode_bytes_mut(&mut st.buf) {
                Ok(Some((frame, _, _))) => match st.role {
                    Role::Cmd => self.on_reply(cx, frame),
                    Role::Sub => self.on_push(frame),
                },
                Ok(None) if st.buf.len() > MAX_REPLY_BYTES => {
                    return self.go_down(cx, "reply larger than the limit");
                }
                Ok(None) => break,
                Err(e) => {
                    log::warn!("redis: bad reply: {e:?}");
                    return self.go_down(cx, "protocol error");
                }
            }
            if self.state == LinkState::Down {
                return;
            }
        }
        if st.role == Role::Cmd {
            self.flush(cx);
        }
    }

    /// Health check: a reply overdue puts the link down; else one PING.
    fn ping(&mut self, cx: &mut Cx<'_, Self>) {
        let timeout = self.cfg.reply_timeout;
        match self.state {
            LinkState::Connecting if self.since.elapsed() > timeout => {
                self.go_down(cx, "no answer while connecting")
            }
            LinkState::Up => {
                if self
                    .inflight
                    .front()
                    .is_some_and(|(sent, _)| sent.elapsed() > timeout)
                {
                    return self.go_down(cx, "no reply within the timeout");
                }
                if !self.ping_out {
                    self.ping_out = true;
                    let ping = encode(&[b"PING"]);
                    self.send_cmd(cx, ping, Then::Ping(Instant::now()));
                }
            }
            _ => {}
        }
    }

    /// Refresh every claim and the user hash's expiry.
    fn refresh(&mut self, cx: &mut Cx<'_, Self>) {
        if self.state != LinkState::Up {
            return;
        }
        let cfg = self.cfg.clone();
        {
            let mut n = self.node();
            n.refresh_all(&cfg);
            let users = format!("{PREFIX}users:{}", cfg.node);
            let ttl = cfg.claim_ttl.as_millis().to_string();
            let _ = n.push(
                &[b"PEXPIRE", users.as_bytes(), ttl.as_bytes()],
                Then::Ignore,
            );
            let nodes = format!("{PREFIX}nodes");
            let _ = n.push(
                &[b"SADD", nodes.as_bytes(), cfg.node.as_bytes()],
                Then::Ignore,
            );
        }
        self.flush(cx);
    }
}

impl Service for Link {
    type Conn = LinkConn;
    type Tag = Tick;
    /// "The outbox has something": sent by the [`RedisPlane`].
    type Message = ();

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        self.connect(cx);
        let every = (self.cfg.claim_ttl / 3).max(Duration::from_millis(10));
        let t = cx.set_interval(every, Tick::Refresh);
        self.timers.push(t);
        let t = cx.set_interval(PING_EVERY, Tick::Ping);
        self.timers.push(t);
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, (): ()) {
        self.node().kicked = false;
        self.flush(cx);
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut LinkConn) {
        match st.role {
            Role::Cmd if self.cmd == Some(conn) => {
                if let Some(db) = self.cfg.addr.db {
                    let sel = encode(&[b"SELECT", db.to_string().as_bytes()]);
                    self.send_cmd(cx, sel, Then::Ignore);
                }
                self.ping_out = true;
                let ping = encode(&[b"PING"]);
                self.send_cmd(cx, ping, Then::Ping(Instant::now()));
            }
            Role::Sub if self.sub == Some(conn) => {
                self.sub_open = true;
                if self.hello && self.state == LinkState::Connecting {
                    self.go_up(cx);
                }
            }
            _ => {}
        }
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut LinkConn,
        data: &mut BytesMut,
    ) {
        if Some(conn) != self.cmd && Some(conn) != self.sub {
            data.clear();
            return;
        }
        if st.buf.is_empty() {
            // Frames are split off this buffer: messages reach the chat
            // without a copy.
            st.buf = data.split();
        } else {
            st.buf.extend_from_slice(data);
            data.clear();
        }
        self.node().batch = Some(Vec::new());
        self.read_frames(cx, st);
        self.node().end_batch();
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut LinkConn) {
        if Some(conn) == self.cmd {
            self.cmd_blocked = false;
        } else if Some(conn) == self.sub {
            self.sub_blocked = false;
        }
        self.flush(cx);
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut LinkConn) {
        if Some(conn) == self.cmd || Some(conn) == self.sub {
            self.go_down(cx, "connection closed by redis");
        }
    }

    fn on_error(&mut self, _: &mut Cx<'_, Self>, conn: ConnId, _: &mut LinkConn, err: &NetError) {
        if Some(conn) == self.cmd || Some(conn) == self.sub {
            log::debug!("redis connection error: {err}");
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: LinkConn, _: bool) {
        if Some(conn) == self.cmd || Some(conn) == self.sub {
            self.go_down(cx, "connection lost");
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, id: TimerId, tick: Tick) {
        match tick {
            Tick::Reconnect => {
                self.timers.retain(|t| *t != id);
                if self.state == LinkState::Down {
                    self.connect(cx);
                }
            }
            Tick::Refresh => self.refresh(cx),
            Tick::Ping => self.ping(cx),
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        let was_up = self.state == LinkState::Up;
        if was_up {
            // Free this node's names and users now rather than at expiry.
            let cfg = self.cfg.clone();
            {
                let mut n = self.node();
                let held: Vec<(u64, String)> = n
                    .members
                    .iter()
                    .map(|(i, l)| (*i, l.nick.clone()))
                    .collect();
                for (id, nick) in held {
                    n.release(&cfg, id, &nick);
                }
                let users = format!("{PREFIX}users:{}", cfg.node);
                let _ = n.push(&[b"DEL", users.as_bytes()], Then::Ignore);
            }
            self.flush(cx);
        }
        self.state = LinkState::Stopped;
        // What the chat publishes from now on (departures while the loop
        // drains) is counted as not delivered, not queued for nobody.
        self.node().up = false;
        for t in std::mem::take(&mut self.timers) {
            cx.clear_timer(t);
        }
        for c in [self.cmd.take(), self.sub.take()].into_iter().flatten() {
            let _ = cx.end(c);
        }
        log::info!("redis node {}: {}", self.cfg.node, self.node().stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let node = Arc::new(Mutex::new(Node::default()));
        let cfg = RedisConfig {
            addr: "redis://127.0.0.1:1".parse().unwrap(),
            node: "n".into(),
            claim_ttl: DEFAULT_CLAIM_TTL,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
        };
        let mut l = Link::new(cfg, node);
        for failures in 1..10 {
            l.failures = failures;
            let d = l.backoff();
            let full = RECONNECT_BASE
                .saturating_mul(1 << (failures - 1))
                .min(RECONNECT_CAP);
            assert!(d >= full / 2 && d <= full, "{failures}: {d:?}");
        }
    }
}
