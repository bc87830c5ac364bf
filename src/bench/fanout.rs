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
//!
//! # Every delivery is verified
//!
//! The sequence number is the message's id. The server relays one sender's
//! lines in the order it read them, so each member must see the ids from its
//! first one on exactly once and in increasing order ([`SeqCheck`]). An id
//! seen again is a *duplicate*; an id skipped over is *missing* unless it
//! arrives later, and then it is *reordered*. Counting receipts alone cannot
//! see this: a server that sends every message twice would score twice the
//! deliveries, and a duplicate would hide a lost message. Any of the three
//! makes the run fail.

use super::control::{consume, ns_since, Outbox, Shared, ThreadStats};
use super::Load;
use crate::Remote;
use crate::{ConnId, ConnectOptions, Cx, Reactor, Service, TimerId};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::{BTreeSet, VecDeque};
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
/// server that takes one read as one message (the tutorial's chat server
/// does) does not see the join and the first message as one command.
pub const JOIN_SETTLE: Duration = Duration::from_millis(100);

/// How often the sender looks for stalled messages.
const WATCHDOG_EVERY: Duration = Duration::from_millis(50);

/// Longest line accepted from the chat server.
const MAX_LINE: usize = 64 * 1024;

/// The marker members look for.
const MARKER: &str = "FANOUT ";

/// Ids a member remembers as skipped (waiting to see whether they arrive
/// late): bounded so a server that skips a great many costs bounded memory.
/// Past it the oldest are given up on and counted as missing.
pub const MAX_MISSING: usize = 1024;

/// Counter names of the delivery check, in the report's `extra`.
pub const DUPLICATED: &str = "deliveries_duplicated";
/// See [`DUPLICATED`].
pub const MISSING: &str = "deliveries_missing";
/// See [`DUPLICATED`].
pub const REORDERED: &str = "deliveries_reordered";

/// What one arrival was, to a member's [`SeqCheck`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next id (or the first one seen).
    InOrder,
    /// Later than the next: the ids between are missing for now.
    Skipped(u64),
    /// An id skipped earlier that came after all.
    Late,
    /// An id already seen.
    Duplicate,
}

/// One member's check that each id arrives exactly once, in order.
#[derive(Debug, Default)]
pub struct SeqCheck {
    /// The id expected next (`None`: nothing seen yet).
    next: Option<u64>,
    /// Ids skipped over and not (yet) seen, at most [`MAX_MISSING`].
    skipped: BTreeSet<u64>,
    /// Skipped ids given up on (past [`MAX_MISSING`]).
    given_up: u64,
}

impl SeqCheck {
    /// Classify the arrival of `id`.
    pub fn see(&mut self, id: u64) -> Arrival {
        let Some(next) = self.next else {
            self.next = Some(id.saturating_add(1));
            return Arrival::InOrder;
        };
        if id == next {
            self.next = Some(next.saturating_add(1));
            return Arrival::InOrder;
        }
        if id < next {
            return if self.skipped.remove(&id) {
                Arrival::Late
            } else {
                Arrival::Duplicate
            };
        }
        // id > next: next ..id were skipped. Remember the newest of them.
        let gap = id - next;
        let keep = gap.min(MAX_MISSING as u64);
        self.given_up += gap - keep;
        self.skipped.extend(id - keep..id);
        while self.skipped.len() > MAX_MISSING {
            self.skipped.pop_first();
            self.given_up += 1;
        }
        self.next = Some(id.saturating_add(1));
        Arrival::Skipped(gap)
    }

    /// Ids skipped over that never came.
    pub fn missing(&self) -> u64 {
        self.given_up + self.skipped.len() as u64
    }
}

/// State shared by the fan-out threads.
pub struct FanoutShared {
    counts: Box<[AtomicU32]>,
    members: usize,
    sender: OnceLock<Remote<Delivered>>,
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
pub struct Delivered(u64);

/// One connection of the fan-out load.
#[derive(Debug)]
pub enum Role {
    /// The connection that sends the room's messages (thread 0 only).
    Sender,
    /// A member of the room, checking what it receives.
    Member(Member),
}

/// A member's state.
#[derive(Debug)]
pub struct Member {
    seen: bool,
    check: SeqCheck,
}

/// The fan-out load's timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The sender abandons stalled messages and refills its window.
    Watchdog,
}

/// The service of one load thread.
#[derive(Debug)]
pub struct FanoutLoad {
    shared: Arc<Shared>,
    fan: Arc<FanoutShared>,
    thread: usize,
    target: SocketAddr,
    /// Where the members connect (the target unless `--member-target`).
    member_target: SocketAddr,
    room: String,
    /// `/auth TOKEN\n` before the join, for a chat server started with a
    /// token (empty without one).
    auth: String,
    count: usize,
    with_sender: bool,
    window: usize,
    sender: Option<ConnId>,
    /// When the sender's `/join` went out.
    joined_at: Option<Instant>,
    next_seq: u64,
    outstanding: VecDeque<(u64, Instant)>,
    /// Messages now missing at this thread's members, open or closed (the
    /// sum of their [`SeqCheck::missing`], kept up to date as they change).
    missing: u64,
    stats: ThreadStats,
    out: Outbox,
}

impl FanoutLoad {
    /// Connect options of every connection of the run (TLS when asked).
    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            tls: self.shared.tls.clone(),
            ..ConnectOptions::default()
        }
    }

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
            member_target: target,
            room: room.to_string(),
            auth: String::new(),
            count,
            with_sender: thread == 0,
            window: window.max(1),
            sender: None,
            joined_at: None,
            next_seq: 0,
            outstanding: VecDeque::new(),
            missing: 0,
            stats: ThreadStats::default(),
            out: Outbox::default(),
        }
    }

    /// Present `token` first (the guard hands the join that follows to
    /// the chat server once it has accepted the token).
    pub fn with_token(mut self, token: Option<&crate::protocol::auth::Token>) -> FanoutLoad {
        self.auth = token
            .map(crate::clients::auth::line_request)
            .unwrap_or_default();
        self
    }

    /// Connect the members to `addr` (the sender stays on the target).
    pub fn with_member_target(mut self, addr: SocketAddr) -> FanoutLoad {
        self.member_target = addr;
        self
    }

    fn join_line(&self) -> Bytes {
        Bytes::from(format!("{}/join {}\n", self.auth, self.room))
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
}

/// What one line a member received is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Relayed {
    /// No marker: the server's own chatter (welcome, join notices).
    Other,
    /// A benchmark message: its id and its send stamp (ns since the epoch).
    Message {
        /// The message's id (sequence number).
        id: u64,
        /// When it was sent, ns since the run's epoch.
        stamp: u64,
    },
    /// The marker, but not two numbers after it.
    Malformed,
}

/// Classify one line (terminator excluded) by the `FANOUT <id> <stamp>`
/// marker anywhere in it (servers prefix the sender's name). Works on bytes:
/// at hundreds of thousands of deliveries per second, decoding each line
/// into a `String` and searching it as text was a third of the generator's
/// own time in a profile.
pub fn classify(line: &[u8]) -> Relayed {
    let marker = MARKER.as_bytes();
    let Some(pos) = line.windows(marker.len()).position(|w| w == marker) else {
        return Relayed::Other;
    };
    let mut fields = line[pos + marker.len()..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    match (
        fields.next().and_then(parse_u64),
        fields.next().and_then(parse_u64),
    ) {
        (Some(id), Some(stamp)) => Relayed::Message { id, stamp },
        _ => Relayed::Malformed,
    }
}

/// A decimal `u64`, digits only; `None` on anything else or on overflow.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

impl Load for FanoutLoad {
    fn outbox(&self) -> &Outbox {
        &self.out
    }
}

impl Drop for FanoutLoad {
    fn drop(&mut self) {
        let mut stats = self.stats.take();
        stats.add_extra(MISSING, self.missing);
        self.out.put(stats);
    }
}

impl Service for FanoutLoad {
    type Conn = Role;
    type Tag = Timer;
    type Message = Delivered;

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        let host = self.target.ip().to_string();
        let port = self.target.port();
        if self.with_sender {
            let _ = self.fan.sender.set(cx.remote());
            let id = cx.connect(&host, port, self.connect_options(), Role::Sender);
            self.sender = Some(id);
            cx.set_interval(WATCHDOG_EVERY, Timer::Watchdog);
        }
        let host = self.member_target.ip().to_string();
        let port = self.member_target.port();
        for _ in 0..self.count {
            let member = Member {
                seen: false,
                check: SeqCheck::default(),
            };
            cx.connect(&host, port, self.connect_options(), Role::Member(member));
        }
    }

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, role: &mut Role) {
        if cx.write(conn, self.join_line()).is_err() {
            cx.destroy(conn);
            return;
        }
        if let Role::Sender = role {
            self.joined_at = Some(Instant::now());
        }
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, Self>, _: ConnId, role: &mut Role, data: &mut BytesMut) {
        let Role::Member(m) = role else {
            consume(data); // the sender's own replies
            return;
        };
        // One clock read for every message in this read.
        let now = ns_since(self.shared.epoch);
        let mut done = 0;
        while let Some(len) = data[done..].iter().position(|&b| b == b'\n') {
            let line = &data[done..done + len];
            done += len + 1;
            let (id, stamp) = match classify(line) {
                Relayed::Other => continue,
                Relayed::Malformed => {
                    self.stats.add_extra("malformed_lines", 1);
                    continue;
                }
                Relayed::Message { id, stamp } => (id, stamp),
            };
            if !m.seen {
                m.seen = true;
                self.shared.ready.fetch_add(1, Relaxed);
            }
            let before = m.check.missing();
            match m.check.see(id) {
                Arrival::InOrder => {}
                Arrival::Skipped(_) => self.missing = self.missing - before + m.check.missing(),
                Arrival::Late => {
                    self.missing = self.missing - before + m.check.missing();
                    self.stats.add_extra(REORDERED, 1);
                    continue;
                }
                Arrival::Duplicate => {
                    self.stats.add_extra(DUPLICATED, 1);
                    continue;
                }
            }
            self.stats
                .op(&self.shared, self.thread, now.saturating_sub(stamp));
            let Some(slot) = self.fan.counts.get(id as usize % RING) else {
                continue;
            };
            if slot.fetch_add(1, Relaxed) + 1 == self.fan.members as u32 {
                if let Some(remote) = self.fan.sender.get() {
                    remote.post(Delivered(id));
                }
            }
        }
        // The partial line at the end stays in the buffer for the next read
        // (the reactor appends to it); one longer than MAX_LINE is dropped.
        data.advance(done);
        if data.len() > MAX_LINE {
            consume(data);
            self.stats.add_extra("malformed_lines", 1);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Timer) {
        let Timer::Watchdog = tag;
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
        self.fill(cx.reactor());
    }

    fn on_error(
        &mut self,
        _: &mut Cx<'_, Self>,
        conn: ConnId,
        _: &mut Role,
        err: &crate::NetError,
    ) {
        log::debug!("{conn}: {err}");
        self.shared.note_error(err);
    }

    fn on_close(&mut self, _: &mut Cx<'_, Self>, _: ConnId, role: Role, _had_error: bool) {
        // Every close before the run stops is unexpected.
        self.stats.errors += 1;
        match role {
            // Its missing messages are already in `missing`.
            Role::Member(m) if !m.seen => self.shared.fail(None),
            Role::Member(_) => {}
            Role::Sender => {
                if self.next_seq == 0 {
                    self.shared.fail(None);
                }
                self.sender = None;
            }
        }
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, d: Delivered) {
        if let Some(i) = self.outstanding.iter().position(|&(s, _)| s == d.0) {
            self.outstanding.remove(i);
            self.fill(cx.reactor());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_lines_are_classified_by_their_marker() {
        assert_eq!(
            classify(b"[user3]: FANOUT 12 3456"),
            Relayed::Message {
                id: 12,
                stamp: 3456
            }
        );
        // CRLF's \r, extra spaces, text after: still the message.
        assert_eq!(
            classify(b"FANOUT 0  7 tail\r"),
            Relayed::Message { id: 0, stamp: 7 }
        );
        assert_eq!(classify(b"welcome to the room"), Relayed::Other);
        assert_eq!(classify(b""), Relayed::Other);
        for bad in [
            &b"FANOUT 12"[..],
            b"FANOUT x 1",
            b"FANOUT 1 -2",
            b"FANOUT 99999999999999999999 1", // past u64::MAX
            b"FANOUT ",
        ] {
            assert_eq!(classify(bad), Relayed::Malformed, "{bad:?}");
        }
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn in_order_from_the_first_id_seen() {
        let mut c = SeqCheck::default();
        for id in 7..20 {
            assert_eq!(c.see(id), Arrival::InOrder);
        }
        assert_eq!(c.missing(), 0);
    }

    #[test]
    fn duplicates_gaps_and_reordering_are_told_apart() {
        let mut c = SeqCheck::default();
        assert_eq!(c.see(0), Arrival::InOrder);
        assert_eq!(c.see(0), Arrival::Duplicate);
        assert_eq!(c.see(3), Arrival::Skipped(2)); // 1 and 2 missing
        assert_eq!(c.missing(), 2);
        assert_eq!(c.see(2), Arrival::Late);
        assert_eq!(c.see(2), Arrival::Duplicate);
        assert_eq!(c.see(3), Arrival::Duplicate);
        assert_eq!(c.see(4), Arrival::InOrder);
        assert_eq!(c.missing(), 1); // 1 never came
    }

    #[test]
    fn a_huge_gap_costs_bounded_memory_and_is_all_counted() {
        let mut c = SeqCheck::default();
        c.see(0);
        assert_eq!(c.see(1_000_001), Arrival::Skipped(1_000_000));
        assert_eq!(c.missing(), 1_000_000);
        assert!(c.skipped.len() <= MAX_MISSING);
        // Many small gaps past the bound: still all counted.
        let mut c = SeqCheck::default();
        for i in 0..(3 * MAX_MISSING as u64) {
            c.see(2 * i);
        }
        assert_eq!(c.missing(), 3 * MAX_MISSING as u64 - 1);
        assert!(c.skipped.len() <= MAX_MISSING);
        // The newest skipped ids are still recognised as late.
        let last_skipped = 2 * (3 * MAX_MISSING as u64 - 1) - 1;
        assert_eq!(c.see(last_skipped), Arrival::Late);
    }
}
