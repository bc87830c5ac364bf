//! Sans-IO bookkeeping that proves chat delivery: which room message every
//! member was owed, and whether each arrival is intact and in order.
//!
//! # The rule checked
//!
//! The chat server is one thread and handles each connection's lines in
//! order, so its order of events can be bounded from the client side with a
//! logical clock (one tick per soak event, all clients on one loop):
//!
//! * a member's `Joined room` reply arrives at `joined`: its join was handled
//!   before any line written after `joined`;
//! * a sender writes message `m` at `sent`, then a whisper to itself; the
//!   whisper's echo arrives at `confirmed`: `m` was handled (and queued to
//!   every member then present) before `confirmed`;
//! * the member writes `/leave` (or its FIN) at `left`: that is handled after
//!   anything confirmed before `left`.
//!
//! So a member that ends cleanly must have received every message of its
//! room with `joined < sent` and `confirmed < left` (other than its own):
//! present for the message's whole duration. A missing one is lost. Every
//! arrival, owed or not, must be from the member's room, intact
//! ([`super::rng::payload`]), and after the sender's previous arrival.

use super::rng::payload;
use std::collections::{HashMap, HashSet};

/// Marker that starts every verifying chat message's text.
pub const MARKER: &str = "M";

/// Text of the sync whisper a sender sends itself after each message.
pub const SYNC: &str = "SYNC";

/// One message a verifying sender wrote to a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Sender's stream id.
    pub sid: u64,
    /// Its sequence number on that stream.
    pub seq: u64,
    /// Payload bytes.
    pub len: usize,
    /// Clock when written.
    pub sent: u64,
    /// Clock when the sender saw its next sync reply (handled by then).
    pub confirmed: Option<u64>,
}

/// Every room's messages, in the order they were written.
#[derive(Debug, Default)]
pub struct Ledger {
    rooms: HashMap<u32, Vec<Sent>>,
    room_of: HashMap<u64, u32>,
}

/// What a received chat line is.
#[derive(Debug, PartialEq, Eq)]
pub enum ChatLine<'a> {
    /// A verifying message `[nick]: M sid seq len payload`.
    Msg {
        /// Stream id of its sender.
        sid: u64,
        /// Sequence number.
        seq: u64,
        /// Declared payload length (a truncated payload is caught by it).
        len: usize,
        /// The payload text.
        payload: &'a str,
    },
    /// The echo of our own sync whisper.
    SyncAck,
    /// A `[nick]: text` line from someone who is not a verifying sender,
    /// or not in our format.
    Foreign,
    /// Server notices, replies, banner.
    Other,
}

/// Classify one line from the chat server.
pub fn parse_line(line: &str) -> ChatLine<'_> {
    let Some(rest) = line.strip_prefix('[') else {
        return ChatLine::Other;
    };
    let Some((who, text)) = rest.split_once("]: ") else {
        return ChatLine::Other;
    };
    if who.starts_with("whisper to ") {
        return if text == SYNC {
            ChatLine::SyncAck
        } else {
            ChatLine::Other
        };
    }
    if who.starts_with("whisper from ") {
        return ChatLine::Other;
    }
    let mut f = text.splitn(5, ' ');
    match (f.next(), f.next(), f.next(), f.next(), f.next()) {
        (Some(MARKER), Some(sid), Some(seq), Some(len), Some(payload)) => {
            match (sid.parse(), seq.parse(), len.parse()) {
                (Ok(sid), Ok(seq), Ok(len)) => ChatLine::Msg {
                    sid,
                    seq,
                    len,
                    payload,
                },
                _ => ChatLine::Foreign,
            }
        }
        _ => ChatLine::Foreign,
    }
}

/// The line a verifying sender writes (with its terminator).
pub fn message_line(sid: u64, seq: u64, len: usize) -> String {
    format!("{MARKER} {sid} {seq} {len} {}\n", payload(sid, seq, len))
}

/// What one arrival was worth.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Intact, in order, from the member's room: its payload bytes.
    Good(usize),
    /// Wrong: this many bytes counted as mismatched.
    Bad(u64),
}

impl Ledger {
    /// Record message `seq` of `sid` written to `room` at `now`; returns its
    /// index for [`Ledger::confirm`].
    pub fn sent(&mut self, room: u32, sid: u64, seq: u64, len: usize, now: u64) -> usize {
        self.room_of.insert(sid, room);
        let log = self.rooms.entry(room).or_default();
        log.push(Sent {
            sid,
            seq,
            len,
            sent: now,
            confirmed: None,
        });
        log.len() - 1
    }

    /// Message `idx` of `room` was handled by `now`.
    pub fn confirm(&mut self, room: u32, idx: usize, now: u64) {
        if let Some(m) = self.rooms.get_mut(&room).and_then(|l| l.get_mut(idx)) {
            m.confirmed.get_or_insert(now);
        }
    }

    /// Check an arrival at member `m` (in `room`) of message `seq` of `sid`,
    /// declared `len` bytes long, with payload `text`.
    pub fn arrival(
        &self,
        room: u32,
        m: &mut Member,
        (sid, seq, len): (u64, u64, usize),
        text: &str,
    ) -> Arrival {
        let bad = len.max(text.len()).max(1) as u64;
        if self.room_of.get(&sid) != Some(&room) {
            return Arrival::Bad(bad); // from another room, or never sent
        }
        if text.len() != len {
            return Arrival::Bad(bad); // truncated or extended
        }
        let want = payload(sid, seq, len);
        if want != text {
            let diff = want.bytes().zip(text.bytes()).filter(|(a, b)| a != b);
            return Arrival::Bad(diff.count().max(1) as u64);
        }
        if let Some(&last) = m.last_seq.get(&sid) {
            if seq <= last {
                return Arrival::Bad(bad); // duplicate or out of order
            }
        }
        m.last_seq.insert(sid, seq);
        m.got.insert((sid, seq));
        Arrival::Good(text.len())
    }

    /// What member `m` (stream `own`, in `room`), having left at `left`, was
    /// owed and did not get.
    pub fn missing(&self, room: u32, own: u64, m: &Member, left: u64) -> Owed {
        let mut out = Owed::default();
        let Some(log) = self.rooms.get(&room) else {
            return out;
        };
        let start = log.partition_point(|s| s.sent <= m.joined);
        for s in log.iter().skip(start) {
            if s.sent >= left {
                break;
            }
            if s.sid != own && s.confirmed.is_some_and(|c| c < left) {
                out.owed += 1;
                if !m.got.contains(&(s.sid, s.seq)) {
                    out.missing += 1;
                    out.missing_bytes += s.len as u64;
                }
            }
        }
        out
    }
}

/// The outcome of [`Ledger::missing`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Owed {
    /// Messages the member was owed.
    pub owed: u64,
    /// Of those, not received.
    pub missing: u64,
    /// Their payload bytes.
    pub missing_bytes: u64,
}

/// What a member has received since it joined.
#[derive(Debug, Default)]
pub struct Member {
    /// Clock at its `Joined room` reply.
    pub joined: u64,
    last_seq: HashMap<u64, u64>,
    got: HashSet<(u64, u64)>,
}

impl Member {
    /// A member that joined at `joined`.
    pub fn new(joined: u64) -> Member {
        Member {
            joined,
            ..Member::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &str) -> &str {
        line.trim_end()
    }

    #[test]
    fn lines_are_classified() {
        let l = format!("[sk1]: {}", text(&message_line(1, 5, 20)));
        match parse_line(&l) {
            ChatLine::Msg {
                sid,
                seq,
                len,
                payload,
            } => {
                assert_eq!((sid, seq, len), (1, 5, 20));
                assert_eq!(payload.len(), 20);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_line("[whisper to sk1]: SYNC"), ChatLine::SyncAck);
        assert_eq!(parse_line("[whisper from sk1]: SYNC"), ChatLine::Other);
        assert_eq!(parse_line("[user3]: hello there"), ChatLine::Foreign);
        assert_eq!(parse_line("[user3]: M x 1 3 abc"), ChatLine::Foreign);
        assert_eq!(parse_line("sk1 joined the room"), ChatLine::Other);
        assert_eq!(parse_line("Joined room: r1"), ChatLine::Other);
    }

    #[test]
    fn owed_messages_follow_the_clock() {
        let mut l = Ledger::default();
        // Member 9 joins room 0 at t=10 and leaves at t=100.
        let mut m = Member::new(10);
        let before = l.sent(0, 1, 0, 5, 5); // sent before the join: not owed
        l.confirm(0, before, 6);
        let a = l.sent(0, 1, 1, 7, 20); // owed
        l.confirm(0, a, 30);
        let b = l.sent(0, 2, 0, 3, 40); // owed
        l.confirm(0, b, 50);
        let c = l.sent(0, 2, 1, 4, 90); // confirmed after the leave: not owed
        l.confirm(0, c, 110);
        let _d = l.sent(0, 3, 0, 4, 95); // never confirmed: not owed
        let own = l.sent(0, 9, 0, 8, 60); // its own
        l.confirm(0, own, 61);
        let other_room = l.sent(1, 4, 0, 8, 60);
        l.confirm(1, other_room, 61);
        assert_eq!(l.missing(0, 9, &m, 100).missing, 2);
        assert_eq!(l.missing(0, 9, &m, 100).missing_bytes, 10);
        assert_eq!(l.missing(0, 9, &m, 100).owed, 2);
        let p = payload(1, 1, 7);
        assert_eq!(l.arrival(0, &mut m, (1, 1, 7), &p), Arrival::Good(7));
        assert_eq!(l.missing(0, 9, &m, 100).missing, 1);
        assert_eq!(l.missing(0, 9, &m, 100).missing_bytes, 3);
        let p = payload(2, 0, 3);
        assert_eq!(l.arrival(0, &mut m, (2, 0, 3), &p), Arrival::Good(3));
        assert_eq!(l.missing(0, 9, &m, 100).missing, 0);
        assert_eq!(l.missing(0, 9, &m, 100).missing_bytes, 0);
        // Not owed but delivered (in flight at the leave): fine.
        let p = payload(2, 1, 4);
        assert_eq!(l.arrival(0, &mut m, (2, 1, 4), &p), Arrival::Good(4));
    }

    #[test]
    fn bad_arrivals_are_caught() {
        let mut l = Ledger::default();
        let mut m = Member::new(0);
        l.sent(0, 1, 0, 5, 1);
        l.sent(0, 1, 1, 5, 2);
        l.sent(1, 2, 0, 5, 3);
        let p0 = payload(1, 0, 5);
        let p1 = payload(1, 1, 5);
        // Corrupted.
        let mut bad = p0.clone().into_bytes();
        bad[2] = b'!';
        let bad = String::from_utf8(bad).unwrap_or_default();
        assert_eq!(l.arrival(0, &mut m, (1, 0, 5), &bad), Arrival::Bad(1));
        // Truncated.
        assert!(matches!(
            l.arrival(0, &mut m, (1, 0, 5), &p0[..3]),
            Arrival::Bad(_)
        ));
        // In order, then a duplicate and a reorder.
        assert_eq!(l.arrival(0, &mut m, (1, 1, 5), &p1), Arrival::Good(5));
        assert!(matches!(
            l.arrival(0, &mut m, (1, 0, 5), &p0),
            Arrival::Bad(_)
        ));
        assert!(matches!(
            l.arrival(0, &mut m, (1, 1, 5), &p1),
            Arrival::Bad(_)
        ));
        // From another room.
        let p = payload(2, 0, 5);
        assert!(matches!(
            l.arrival(0, &mut m, (2, 0, 5), &p),
            Arrival::Bad(_)
        ));
    }
}
