//! `fanout`: M members and one sender in one room of `netloop serve chat`
//! (line protocol: `/join ROOM`, then every plain line is a message to the
//! room's other members).
//!
//! The sender joins, waits [`JOIN_SETTLE`], then sends `FANOUT <seq> <ns>\n`,
//! where `ns` is the send time in nanoseconds since the run's common epoch, keeping at most `pipeline`
//! messages in flight. Members find the `FANOUT ` marker anywhere in a line
//! (the server prefixes the sender's nickname), take the delivery latency
//! from the stamp, and count receipts per sequence number in a shared ring;
//! the member whose receipt completes a message (M receipts) posts its
//! number to the sender's loop, which sends the next one. Members may live
//! on any thread; the sender is on thread 0.
//!
//! A message some member never gets (it joined after the message went out,
//! or the server dropped it) would hold its window slot forever, so the
//! sender abandons messages older than [`STALL_AFTER`] and counts them as
//! `stalled`. A member is *ready* once it has received its first message;
//! the coordinator opens the window only when all members are.
//! One operation = one message delivered to one member.

use super::control::{consume, ns_since, Shared, Stop, ThreadStats};
use super::Load;
use crate::codec::LineDecoder;
use crate::{ConnId, ConnectOptions, Handler, Reactor, Remote, TimerId};
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Slots of the receipt-count ring: far more than any window, so a slot is
/// not reused while a message that owns it is still being delivered.
pub const RING: usize = 4096;

/// A message not delivered to every member within this time is abandoned.
pub const STALL_AFTER: Duration = Duration::from_millis(250);

/// The sender's first message waits this long after its `/join`, so a
/// server that takes one read as one message (the seed, D-X3) does not see
/// the join and the first message as one command.
pub const JOIN_SETTLE: Duration = Duration::from_millis(100);

/// How often the sender looks for stalled messages.
const WATCHDOG_EVERY: Duration = Duration::from_millis(50);

/// Longest line accepted from the chat server.
const MAX_LINE: usize = 64 * 1024;

/// The marker members look for.
const MARKER: &str = "FANOUT ";

/// State shared by the fan-out threads.
pub struct FanoutShared {
    counts: Box<[AtomicU32]>,
    members: usize,
    sender: OnceLock<Remote>,
}

impl FanoutShared {
    /// For `members` members in all.
    pub fn new(members: usize) -> FanoutShared {
        FanoutShared {
            counts: (0..RING).map(|_| AtomicU32::new(0)).collect(),
            members,
            sender: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for FanoutShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutShared")
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// Posted to the sender's loop: message `seq` reached every member.
#[derive(Debug)]
struct Delivered(u64);

#[derive(Debug)]
struct Member {
    lines: LineDecoder,
    seen: bool,
}

/// The handler of one load thread.
#[derive(Debug)]
pub struct FanoutLoad {
    shared: Arc<Shared>,
    fan: Arc<FanoutShared>,
    thread: usize,
    target: SocketAddr,
    room: String,
    count: usize,
    with_sender: bool,
    window: usize,
    sender: Option<ConnId>,
    /// When the sender's `/join` went out.
    joined_at: Option<Instant>,
    next_seq: u64,
    outstanding: VecDeque<(u64, Instant)>,
    members: HashMap<ConnId, Member>,
    stats: ThreadStats,
}

impl FanoutLoad {
    /// `count` members on this thread; thread 0 also runs the sender.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        fan: Arc<FanoutShared>,
        thread: usize,
        target: SocketAddr,
        room: &str,
        count: usize,
        window: usize,
    ) -> FanoutLoad {
        FanoutLoad {
            shared,
            fan,
            thread,
            target,
            room: room.to_string(),
            count,
            with_sender: thread == 0,
            window: window.max(1),
            sender: None,
            joined_at: None,
            next_seq: 0,
            outstanding: VecDeque::new(),
            members: HashMap::with_capacity(count),
            stats: ThreadStats::default(),
        }
    }

    fn join_line(&self) -> Bytes {
        Bytes::from(format!("/join {}\n", self.room))
    }

    fn fill(&mut self, r: &mut Reactor) {
        let Some(sender) = self.sender else {
            return;
        };
        if self.joined_at.is_none_or(|t| t.elapsed() < JOIN_SETTLE) {
            return;
        }
        while self.outstanding.len() < self.window {
            let seq = self.next_seq;
            self.next_seq += 1;
            if let Some(slot) = self.fan.counts.get(seq as usize % RING) {
                slot.store(0, Relaxed);
            }
            let stamp = ns_since(self.shared.epoch);
            let line = format!("{MARKER}{seq} {stamp}\n");
            if r.write(sender, line).is_err() {
                return;
            }
            self.outstanding.push_back((seq, Instant::now()));
            if self.shared.measuring() {
                self.stats.add_extra("messages_sent", 1);
            }
        }
    }

    fn on_line(&mut self, line: &str) {
        let Some(pos) = line.find(MARKER) else {
            return;
        };
        let mut f = line[pos + MARKER.len()..].split_whitespace();
        let (Some(Ok(seq)), Some(Ok(stamp))) = (
            f.next().map(str::parse::<u64>),
            f.next().map(str::parse::<u64>),
        ) else {
            self.stats.add_extra("malformed_lines", 1);
            return;
        };
        let now = ns_since(self.shared.epoch);
        self.stats
            .op(&self.shared, self.thread, now.saturating_sub(stamp));
        let Some(slot) = self.fan.counts.get(seq as usize % RING) else {
            return;
        };
        if slot.fetch_add(1, Relaxed) + 1 == self.fan.members as u32 {
            if let Some(remote) = self.fan.sender.get() {
                remote.post(Box::new(Delivered(seq)));
            }
        }
    }
}

impl Load for FanoutLoad {
    fn start(&mut self, r: &mut Reactor) {
        let host = self.target.ip().to_string();
        if self.with_sender {
            let _ = self.fan.sender.set(r.remote());
            let id = r.connect(&host, self.target.port(), ConnectOptions::default());
            self.sender = Some(id);
            r.set_interval(WATCHDOG_EVERY, 0);
        }
        for _ in 0..self.count {
            let id = r.connect(&host, self.target.port(), ConnectOptions::default());
            self.members.insert(
                id,
                Member {
                    lines: LineDecoder::new(MAX_LINE),
                    seen: false,
                },
            );
        }
    }

    fn finish(self) -> ThreadStats {
        self.stats
    }
}

impl Handler for FanoutLoad {
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {
        if r.write(conn, self.join_line()).is_err() {
            r.destroy(conn);
            return;
        }
        if Some(conn) == self.sender {
            self.joined_at = Some(Instant::now());
        }
    }

    fn on_data(&mut self, _r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let Some(m) = self.members.get_mut(&conn) else {
            consume(data); // the sender's own replies
            return;
        };
        let mut lines = Vec::new();
        loop {
            match m.lines.decode(data) {
                Ok(Some(line)) => lines.push(line),
                Ok(None) => break,
                Err(_) => {
                    consume(data);
                    self.stats.add_extra("malformed_lines", 1);
                    break;
                }
            }
        }
        let first = !m.seen && lines.iter().any(|l| l.contains(MARKER));
        if first {
            m.seen = true;
            self.shared.ready.fetch_add(1, Relaxed);
        }
        for line in lines {
            self.on_line(&line);
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, _tag: u64) {
        let mut stalled = 0;
        while let Some(&(_, sent)) = self.outstanding.front() {
            if sent.elapsed() < STALL_AFTER {
                break;
            }
            self.outstanding.pop_front();
            stalled += 1;
        }
        if stalled > 0 && self.shared.measuring() {
            self.stats.add_extra("stalled", stalled);
        }
        self.fill(r);
    }

    fn on_close(&mut self, _r: &mut Reactor, conn: ConnId, _had_error: bool) {
        if self.members.remove(&conn).is_some() || Some(conn) == self.sender {
            self.stats.errors += 1;
            if Some(conn) == self.sender {
                self.sender = None;
            }
        }
    }

    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn std::any::Any + Send>) {
        if msg.is::<Stop>() {
            r.stop();
            return;
        }
        if let Ok(d) = msg.downcast::<Delivered>() {
            if let Some(i) = self.outstanding.iter().position(|&(s, _)| s == d.0) {
                self.outstanding.remove(i);
                self.fill(r);
            }
        }
    }
}
