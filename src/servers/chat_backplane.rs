//! The chat's state that spans workers: the *backplane* (the idea of
//! socket.io's adapters).
//!
//! With `--workers N` a room has members on several loops. Each worker's
//! [`super::chat::ChatServer`] keeps its own members' connections and
//! delivers to them; what must be the same everywhere goes through one
//! [`Backplane`]:
//!
//! * member ids, so `user<n>` names one member in the process;
//! * nicknames (by [`crate::protocol::text::name_key`]): unique across all
//!   workers, claimed and renamed atomically;
//! * rooms: one name per key (`Dev` and `dev` are one room wherever they
//!   were joined), [`super::chat::MAX_ROOMS`] for the whole process, and
//!   which workers have members in each;
//! * relaying: [`Backplane::publish`] hands a room message, a join/leave/nick
//!   notice or a departure to every *other* worker with members in that
//!   place, as the already-encoded shared [`Bytes`] (no re-encoding per
//!   worker or member), through that worker's [`Remote`] (its cross-thread
//!   inbox and waker); [`Backplane::whisper`] to the one worker holding the
//!   target.
//!
//! Order: a worker posts one sender's messages in the order it handles
//! them, and each inbox is a FIFO channel, so every member receives one
//! sender's messages in the order they were sent, exactly once (a member
//! receives from the local fan-out only if it is on the sender's worker,
//! and from its own worker's inbox only otherwise).
//!
//! A member leaves the shared state *before* its own last line (goodbye,
//! idle notice) is written, and a worker that is shutting down relays
//! nothing more: otherwise a member on another worker could still list a
//! member who had been told goodbye, or hear of departures before its own
//! worker's shutdown notice.
//!
//! [`InProcess`] is the backplane for the workers of one process: a
//! directory under a mutex, held for a few map operations and the posts.
//! Its answers are immediate ([`Answer::Now`]).
//!
//! A backplane spanning processes ([`super::chat_redis`]) cannot answer a
//! claim without a round trip: it returns [`Answer::Later`] and the answer
//! arrives through the worker's inbox as a [`Relay`] (`Claimed`,
//! `Whispered`, `Listing`, `RoomList`); the member waits in between (its
//! `/nick` reply is sent when the answer comes). It also tells the worker
//! when the other servers become unreachable or reachable again
//! (`Reachable`) and when a nickname was lost to another server while they
//! were apart (`NickLost`).

use crate::protocol::text::name_key;
use crate::{Reactor, Remote};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Where a relayed message goes on the receiving worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The members of this room (its canonical name).
    Room(String),
    /// The members in no room.
    Lobby,
    /// Every member.
    All,
}

/// What a worker receives from the others.
#[derive(Debug)]
pub enum Relay {
    /// Queue `msg` on the local members of `place`.
    Deliver {
        /// Where.
        place: Place,
        /// The encoded line.
        msg: Bytes,
    },
    /// Queue `msg` on the local member `to`.
    Whisper {
        /// The member id.
        to: u64,
        /// The encoded line.
        msg: Bytes,
    },
    /// The answer to a [`Backplane::rename`] that returned [`Answer::Later`].
    Claimed {
        /// The member.
        id: u64,
        /// The nickname it asked for.
        nick: String,
        /// True if it is the member's now.
        ok: bool,
    },
    /// The answer to a [`Backplane::whisper`] that returned [`Answer::Later`].
    Whispered {
        /// The sender.
        sender: u64,
        /// The target's nickname as its owner typed it, if it was found.
        to: Option<String>,
        /// The sanitised text.
        text: String,
        /// The target as the sender typed it.
        asked: String,
    },
    /// The answer to a [`Backplane::roster`] that returned [`Answer::Later`].
    Listing {
        /// Who asked.
        asker: u64,
        /// Every member.
        users: Vec<Listed>,
    },
    /// The answer to a [`Backplane::rooms`] that returned [`Answer::Later`].
    RoomList {
        /// Who asked.
        asker: u64,
        /// Every room and its member count.
        rooms: Vec<(String, usize)>,
    },
    /// The other servers became unreachable (false) or reachable (true).
    Reachable(bool),
    /// Several of these, in order (one wake-up of the inbox for all the
    /// messages one read from Redis brought).
    Batch(Vec<Relay>),
    /// Member `id`'s nickname `old` was claimed by another server while
    /// the servers were apart: the member takes its default name.
    NickLost {
        /// The member.
        id: u64,
        /// The nickname it lost.
        old: String,
    },
}

/// A backplane's answer: now, or later through the worker's inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    /// The answer.
    Now(T),
    /// The answer will come as a [`Relay`].
    Later,
}

/// A whisper to a member the worker does not hold.
#[derive(Clone, Debug)]
pub struct WhisperReq {
    /// The sender's member id (who gets the answer).
    pub sender: u64,
    /// The target's nickname as typed.
    pub to: String,
    /// The encoded line for the target.
    pub line: Bytes,
    /// The sanitised text, for the sender's confirmation.
    pub text: String,
}

/// Why a member could not enter a room.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RoomError {
    /// [`super::chat::MAX_ROOMS`] rooms exist and this would be a new one.
    TooManyRooms,
}

/// A member as `/list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Member id.
    pub id: u64,
    /// Nickname as typed.
    pub nick: String,
    /// Room, if in one.
    pub room: Option<String>,
}

/// The chat state shared by workers (see the module docs). Every call is
/// made from a worker's loop thread and must return quickly.
pub trait Backplane: Send + Sync + fmt::Debug {
    /// Register worker `worker`'s inbox; called from the chat service's
    /// `on_start` on the worker's loop, which a backplane may use to add
    /// its own services (connections) to that loop.
    fn attach(&self, r: &mut Reactor, worker: usize, inbox: Remote<Relay>);
    /// A member id no other member of the process has.
    fn next_id(&self) -> u64;
    /// A new member `id` on `worker` with its default nickname `nick`, in
    /// the lobby. False if that nickname is taken (then nothing changed).
    fn arrive(&self, worker: usize, id: u64, nick: &str) -> bool;
    /// Member `id` takes `nick` (its old nickname is freed). False if
    /// another member holds it; [`Answer::Later`]: [`Relay::Claimed`] follows.
    fn rename(&self, id: u64, nick: &str) -> Answer<bool>;
    /// Member `id` enters the room named `room` (or the existing room of
    /// the same key): its canonical name, or why not. It leaves its old
    /// room.
    fn enter(&self, id: u64, room: &str, max_rooms: usize) -> Result<String, RoomError>;
    /// Member `id` goes back to the lobby.
    fn leave(&self, id: u64);
    /// Member `id` is gone: its nickname and place are freed.
    fn depart(&self, id: u64);
    /// Post `msg` for `place` to every worker but `from` that has members
    /// there.
    fn publish(&self, from: usize, place: Place, msg: Bytes);
    /// Post the whisper to the member holding nickname `req.to` if it is
    /// on another worker than `from`: its nickname as typed, `None` if
    /// nobody has it there; [`Answer::Later`]: [`Relay::Whispered`] follows.
    fn whisper(&self, from: usize, req: WhisperReq) -> Answer<Option<String>>;
    /// Every member, by id; [`Answer::Later`]: [`Relay::Listing`] for
    /// `asker` follows.
    fn roster(&self, asker: u64) -> Answer<Vec<Listed>>;
    /// False while the members have been told the other servers are
    /// unreachable ([`Relay::Reachable`]): a member arriving then is told
    /// too. Always true in one process.
    fn reachable(&self) -> bool {
        true
    }
    /// Every room and its member count, by name; [`Answer::Later`]:
    /// [`Relay::RoomList`] for `asker` follows.
    fn rooms(&self, asker: u64) -> Answer<Vec<(String, usize)>>;
}

/// A member as the directory knows it.
#[derive(Debug)]
struct Entry {
    worker: usize,
    nick: String,
    room: Option<String>,
}

/// A room: its key and its members per worker.
#[derive(Debug, Default)]
struct Room {
    members: usize,
    per_worker: Vec<usize>,
}

#[derive(Debug, Default)]
struct Directory {
    next_id: u64,
    /// Nickname key → member id.
    nicks: HashMap<String, u64>,
    members: BTreeMap<u64, Entry>,
    /// Canonical name → room.
    rooms: BTreeMap<String, Room>,
    /// Room key → canonical name.
    room_names: HashMap<String, String>,
    /// Members in the lobby, per worker.
    lobby: Vec<usize>,
    /// Members, per worker.
    present: Vec<usize>,
    inboxes: Vec<Option<Remote<Relay>>>,
}

fn bump(v: &mut Vec<usize>, i: usize, up: bool) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] = if up {
        v[i].saturating_add(1)
    } else {
        v[i].saturating_sub(1)
    };
}

impl Directory {
    fn leave_room(&mut self, id: u64) {
        let Some(e) = self.members.get_mut(&id) else {
            return;
        };
        let Some(room) = e.room.take() else {
            return;
        };
        let worker = e.worker;
        bump(&mut self.lobby, worker, true);
        if let Some(r) = self.rooms.get_mut(&room) {
            r.members = r.members.saturating_sub(1);
            bump(&mut r.per_worker, worker, false);
            if r.members == 0 {
                self.rooms.remove(&room);
                self.room_names.remove(&name_key(&room));
            }
        }
    }

    fn post(&self, worker: usize, relay: Relay) {
        if let Some(Some(inbox)) = self.inboxes.get(worker) {
            inbox.post(relay);
        }
    }
}

/// The backplane of the workers of one process (see the module docs).
#[derive(Debug, Default)]
pub struct InProcess {
    dir: Mutex<Directory>,
}

impl InProcess {
    /// An empty directory.
    pub fn new() -> InProcess {
        InProcess::default()
    }

    fn dir(&self) -> MutexGuard<'_, Directory> {
        // A worker that panicked while holding the lock left maps that are
        // still consistent per operation: go on with them.
        self.dir.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backplane for InProcess {
    fn attach(&self, _: &mut Reactor, worker: usize, inbox: Remote<Relay>) {
        let mut d = self.dir();
        if d.inboxes.len() <= worker {
            d.inboxes.resize(worker + 1, None);
        }
        d.inboxes[worker] = Some(inbox);
    }

    fn next_id(&self) -> u64 {
        let mut d = self.dir();
        d.next_id += 1;
        d.next_id
    }

    fn arrive(&self, worker: usize, id: u64, nick: &str) -> bool {
        let mut d = self.dir();
        let key = name_key(nick);
        if d.nicks.get(&key).is_some_and(|&other| other != id) {
            return false;
        }
        d.nicks.insert(key, id);
        d.members.insert(
            id,
            Entry {
                worker,
                nick: nick.to_string(),
                room: None,
            },
        );
        bump(&mut d.lobby, worker, true);
        bump(&mut d.present, worker, true);
        true
    }

    fn rename(&self, id: u64, nick: &str) -> Answer<bool> {
        let mut d = self.dir();
        let key = name_key(nick);
        if d.nicks.get(&key).is_some_and(|&other| other != id) {
            return Answer::Now(false);
        }
        let Some(e) = d.members.get_mut(&id) else {
            return Answer::Now(false);
        };
        let old = std::mem::replace(&mut e.nick, nick.to_string());
        let old_key = name_key(&old);
        if d.nicks.get(&old_key) == Some(&id) {
            d.nicks.remove(&old_key);
        }
        d.nicks.insert(key, id);
        Answer::Now(true)
    }

    fn enter(&self, id: u64, room: &str, max_rooms: usize) -> Result<String, RoomError> {
        let mut d = self.dir();
        let key = name_key(room);
        let name = d
            .room_names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| room.to_string());
        if !d.rooms.contains_key(&name) && d.rooms.len() >= max_rooms {
            return Err(RoomError::TooManyRooms);
        }
        d.leave_room(id);
        let Some(worker) = d.members.get(&id).map(|e| e.worker) else {
            return Ok(name);
        };
        bump(&mut d.lobby, worker, false);
        d.room_names.entry(key).or_insert_with(|| name.clone());
        let r = d.rooms.entry(name.clone()).or_default();
        r.members += 1;
        bump(&mut r.per_worker, worker, true);
        if let Some(e) = d.members.get_mut(&id) {
            e.room = Some(name.clone());
        }
        Ok(name)
    }

    fn leave(&self, id: u64) {
        self.dir().leave_room(id);
    }

    fn depart(&self, id: u64) {
        let mut d = self.dir();
        d.leave_room(id);
        let Some(e) = d.members.remove(&id) else {
            return;
        };
        bump(&mut d.lobby, e.worker, false);
        bump(&mut d.present, e.worker, false);
        let key = name_key(&e.nick);
        if d.nicks.get(&key) == Some(&id) {
            d.nicks.remove(&key);
        }
    }

    fn publish(&self, from: usize, place: Place, msg: Bytes) {
        let d = self.dir();
        let counts = match &place {
            Place::Room(name) => match d.rooms.get(name) {
                Some(r) => &r.per_worker,
                None => return,
            },
            Place::Lobby => &d.lobby,
            Place::All => &d.present,
        };
        let targets: Vec<usize> = counts
            .iter()
            .enumerate()
            .filter(|&(w, &n)| w != from && n > 0)
            .map(|(w, _)| w)
            .collect();
        for w in targets {
            d.post(
                w,
                Relay::Deliver {
                    place: place.clone(),
                    msg: msg.clone(),
                },
            );
        }
    }

    fn whisper(&self, from: usize, req: WhisperReq) -> Answer<Option<String>> {
        let d = self.dir();
        let found = d
            .nicks
            .get(&name_key(&req.to))
            .and_then(|id| d.members.get(id).map(|e| (*id, e)))
            .filter(|(_, e)| e.worker != from);
        Answer::Now(found.map(|(id, e)| {
            d.post(
                e.worker,
                Relay::Whisper {
                    to: id,
                    msg: req.line,
                },
            );
            e.nick.clone()
        }))
    }

    fn roster(&self, _: u64) -> Answer<Vec<Listed>> {
        Answer::Now(
            self.dir()
                .members
                .iter()
                .map(|(&id, e)| Listed {
                    id,
                    nick: e.nick.clone(),
                    room: e.room.clone(),
                })
                .collect(),
        )
    }

    fn rooms(&self, _: u64) -> Answer<Vec<(String, usize)>> {
        Answer::Now(
            self.dir()
                .rooms
                .iter()
                .map(|(k, r)| (k.clone(), r.members))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_unique_across_workers_and_freed_on_departure() {
        let p = InProcess::new();
        let (a, b) = (p.next_id(), p.next_id());
        assert_ne!(a, b);
        assert!(p.arrive(0, a, "user1"));
        assert!(p.arrive(1, b, "user2"));
        assert_eq!(p.rename(a, "Alice"), Answer::Now(true));
        assert_eq!(p.rename(b, "alice"), Answer::Now(false), "same key");
        assert_eq!(p.rename(a, "ALICE"), Answer::Now(true), "own name re-cased");
        p.depart(a);
        assert_eq!(p.rename(b, "alice"), Answer::Now(true));
        assert!(matches!(p.roster(0), Answer::Now(v) if v.len() == 1));
    }

    #[test]
    fn rooms_have_one_name_per_key_and_a_cap_for_the_process() {
        let p = InProcess::new();
        for (w, id) in [(0, 1), (1, 2), (1, 3)] {
            assert!(p.arrive(w, id, &format!("user{id}")));
        }
        assert_eq!(p.enter(1, "Dev", 2), Ok("Dev".into()));
        assert_eq!(p.enter(2, "dev", 2), Ok("Dev".into()));
        assert_eq!(p.enter(3, "ops", 2), Ok("ops".into()));
        assert_eq!(p.enter(3, "third", 2), Err(RoomError::TooManyRooms));
        assert_eq!(
            p.rooms(0),
            Answer::Now(vec![("Dev".into(), 2), ("ops".into(), 1)])
        );
        p.leave(3);
        assert_eq!(p.rooms(0), Answer::Now(vec![("Dev".into(), 2)]));
        p.depart(1);
        p.depart(2);
        assert_eq!(p.rooms(0), Answer::Now(vec![]));
    }
}
