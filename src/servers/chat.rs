//! `netloop serve chat`: the seed's multi-room chat (program 03), fixed.
//!
//! Protocol: one message per line (LF or CRLF), trimmed; empty lines are
//! ignored (the seed broadcast `[nick]: `). A line starting with `/` is a
//! command: its first whitespace-separated word, lower-cased, names it, and the
//! rest of the line is its argument (runs of spaces and tabs separate; the seed split on single spaces).
//! Commands: `/help`, `/nick <name>`, `/list`, `/rooms`, `/join <room>`,
//! `/leave`, `/whisper <nick> <message>` (also `/w`), `/quit`.
//! The grammar is the sans-IO parser [`super::chat_command`]; this server
//! adds only the checks that need its state (taken or reserved nicknames,
//! the room cap, the whisper's target).
//!
//! Fixes of the seed, each cited where it is done:
//! * framing: a message is one line, so text can never forge a server line
//!   (the seed relayed whatever one read returned, newlines included, and
//!   cut commands at read boundaries); peer text is passed through [`sanitize`] as well;
//! * nicknames unique after NFKC, case folding and the confusable skeleton
//!   ([`name_key`]: `Ａdmin` and Cyrillic `аdmin` are `admin`), shown as
//!   typed, 1 to [`MAX_NAME_CHARS`] characters, no whitespace, control
//!   characters, `[ ] : "` or invisible characters ([`is_invisible`]), and
//!   `user<n>` is reserved for connection n (so no one can take the default
//!   name another connection will show); room names follow
//!   the same rules (`Dev` and `dev` are one room, named as first typed), and
//!   the number of rooms is capped (one peer cannot pile rooms up); relayed
//!   text loses its bidi
//!   controls and zero-width spaces ([`strip_invisible`]);
//! * a lobby message and a nick-change notice reach only the sender's lobby or
//!   room (the seed told every room); a whisper reaches exactly the one user with that nickname;
//! * a session leaves every broadcast set as soon as it ends (`/quit`, idle),
//!   not at `close` (the seed kept relaying to ended sessions, writing after
//!   `end`).
//!
//! Broadcast (one slow reader must hold neither the sender nor memory): a message is encoded once into one `Bytes` and the same
//! buffer is queued on every recipient; nothing waits for any reader. A
//! recipient whose queue would pass the write-buffer cap is destroyed by the
//! loop as a slow consumer (`error` ERR_SLOW_CONSUMER); its `close` then tells
//! everyone it was disconnected. Memory per member is therefore bounded by the
//! cap. Replies to the sender itself pause its reading at the high-water mark.

use super::chat_backplane::{Answer, Backplane, Listed, Place, Relay, RoomError, WhisperReq};
use super::chat_command::{self, Command, CommandError};
use super::lines::{close_idle, grace_expired, Line, LineReader};
use crate::framed::Flow;
use crate::protocol::catalog::{Catalog, Lang, NameError};
use crate::protocol::text::{fold, is_invisible, name_key, sanitize, strip_invisible};
use crate::{ConnId, Cx, ErrorCode, NetError, Reactor, ServerId, Service, TimerId};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Longest nickname or room name, in characters: long enough for real names,
/// short enough to keep `/list` lines readable.
pub const MAX_NAME_CHARS: usize = 32;

/// Most rooms that may exist at once: every room costs a map entry, and a
/// peer must not be able to create them without bound.
pub const MAX_ROOMS: usize = 1024;

/// Characters a name may not contain besides whitespace and controls: they
/// delimit server lines (`[nick]: `, `[房间: r]`, `"nick"`).
const RESERVED_CHARS: [char; 4] = ['[', ']', ':', '"'];

/// Check a nickname or room name's length and characters (uniqueness is
/// the server's check, on [`name_key`]).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || RESERVED_CHARS.contains(&c))
    {
        return Err(NameError::Charset);
    }
    if name.chars().any(is_invisible) {
        return Err(NameError::Invisible);
    }
    Ok(())
}

/// The default nickname of connection `id`.
pub fn default_nick(lang: Lang, id: u64) -> String {
    match lang {
        Lang::En => format!("user{id}"),
        Lang::Zh => format!("用户{id}"),
    }
}

/// If `name` has the form of a default nickname (`user<n>` or `用户<n>`, any
/// case), the `n`.
fn default_nick_owner(name: &str) -> Option<u64> {
    // Folded, so `ＵＳＥＲ7` is reserved like `user7`.
    let lower = fold(name);
    let digits = lower
        .strip_prefix("user")
        .or_else(|| lower.strip_prefix("用户"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// One member's connection state.
#[derive(Debug)]
pub struct Member {
    me: Me,
    reader: LineReader,
    grace: Option<TimerId>,
    /// Destroyed as a slow consumer.
    evicted: bool,
}

/// Who a member is.
#[derive(Debug)]
struct Me {
    id: u64,
    /// The nickname (also in the roster while the session is active; kept
    /// here for the close log).
    nick: String,
}

/// What the other members see of an active member.
#[derive(Debug)]
struct Presence {
    conn: ConnId,
    nick: String,
    room: Option<String>,
    /// A `/nick` the backplane has not answered yet (one at a time).
    claiming: Option<String>,
}

/// The chat server (a [`Service`]: serve it with `Reactor::serve`).
#[derive(Debug)]
pub struct ChatServer {
    cat: Catalog,
    max_line: usize,
    next_id: u64,
    /// Active members (in the broadcast sets) by member id; a session
    /// leaves it when it ends (`/quit`, idle, FIN, close).
    roster: BTreeMap<u64, Presence>,
    /// Nickname key ([`name_key`]) → member id, for uniqueness and whispers.
    by_nick: HashMap<String, u64>,
    /// Room name → members.
    rooms: BTreeMap<String, BTreeSet<ConnId>>,
    /// Room key ([`name_key`]) → the room's name as its creator typed it:
    /// `/join dev` enters `Dev` if that exists (one room, not two).
    room_names: HashMap<String, String>,
    /// Active members in no room.
    lobby: BTreeSet<ConnId>,
    /// With several workers: the shared part ([`super::chat_backplane`]).
    plane: Option<Plane>,
    /// The graceful shutdown has begun: every worker is ending its members
    /// at about the same time, so what happens here from now on (above all
    /// the departures it causes) is not relayed to the other workers. A
    /// single loop tells no one either: its ended members are no longer
    /// writable.
    shutting_down: bool,
}

/// This worker's place on the backplane.
#[derive(Clone, Debug)]
struct Plane {
    bp: Arc<dyn Backplane>,
    worker: usize,
}

impl ChatServer {
    /// A server speaking `cat`'s language, with lines of at most `max_line` bytes.
    pub fn new(cat: Catalog, max_line: usize) -> ChatServer {
        ChatServer {
            cat,
            max_line,
            next_id: 0,
            roster: BTreeMap::new(),
            by_nick: HashMap::new(),
            rooms: BTreeMap::new(),
            room_names: HashMap::new(),
            lobby: BTreeSet::new(),
            plane: None,
            shutting_down: false,
        }
    }

    /// A server that is worker `worker` of several sharing `backplane`:
    /// nicknames, ids, rooms, `/list` and relaying span all of them.
    pub fn with_backplane(
        cat: Catalog,
        max_line: usize,
        backplane: Arc<dyn Backplane>,
        worker: usize,
    ) -> ChatServer {
        let mut s = ChatServer::new(cat, max_line);
        s.plane = Some(Plane {
            bp: backplane,
            worker,
        });
        s
    }

    /// Post `msg` for `place` to the other workers.
    fn publish(&self, place: Place, msg: &Bytes) {
        if self.shutting_down {
            // The other workers are shutting down too; one that has not
            // begun yet must not announce our departures before its own
            // shutdown notice.
            return;
        }
        if let Some(p) = &self.plane {
            p.bp.publish(p.worker, place, msg.clone());
        }
    }

    /// Reply to the member itself; pause its reading at the high-water mark.
    fn reply(r: &mut Reactor, conn: ConnId, msg: String) {
        if r.write(conn, msg) == Ok(false) {
            r.pause(conn);
        }
    }

    /// Queue one encoded message on every target but `except`. Never waits:
    /// a target past its cap is destroyed by the loop, the rest go on.
    fn fan_out<'a>(
        r: &mut Reactor,
        targets: impl Iterator<Item = &'a ConnId>,
        except: Option<ConnId>,
        msg: &Bytes,
    ) {
        for &t in targets {
            if Some(t) != except && r.is_writable(t) {
                let _ = r.write(t, msg.clone());
            }
        }
    }

    /// To the members of `room` (or the lobby when `None`), except `except`.
    fn to_place(&self, r: &mut Reactor, room: Option<&str>, except: ConnId, msg: String) {
        let msg = Bytes::from(msg);
        self.deliver(r, room, Some(except), &msg);
        if self.plane.is_some() {
            let place = match room {
                Some(name) => Place::Room(name.to_string()),
                None => Place::Lobby,
            };
            self.publish(place, &msg);
        }
    }

    /// Queue `msg` on this worker's members in `room` (the lobby when
    /// `None`) but `except`.
    fn deliver(&self, r: &mut Reactor, room: Option<&str>, except: Option<ConnId>, msg: &Bytes) {
        match room {
            Some(name) => {
                if let Some(set) = self.rooms.get(name) {
                    Self::fan_out(r, set.iter(), except, msg);
                }
            }
            None => Self::fan_out(r, self.lobby.iter(), except, msg),
        }
    }

    /// To every active member except `except`.
    fn to_all(&self, r: &mut Reactor, except: ConnId, msg: String) {
        let msg = Bytes::from(msg);
        Self::fan_out(r, self.roster.values().map(|p| &p.conn), Some(except), &msg);
        self.publish(Place::All, &msg);
    }

    /// Take member `id` out of its room, telling the room; back to the
    /// lobby if `to_lobby`. Returns the room it left.
    fn leave_room(&mut self, r: &mut Reactor, id: u64, to_lobby: bool) -> Option<String> {
        if let Some(p) = &self.plane {
            p.bp.leave(id);
        }
        self.leave_local_room(r, id, to_lobby)
    }

    /// [`ChatServer::leave_room`] on this worker only (the backplane
    /// already knows).
    fn leave_local_room(&mut self, r: &mut Reactor, id: u64, to_lobby: bool) -> Option<String> {
        let p = self.roster.get_mut(&id)?;
        let room = p.room.take()?;
        let nick = p.nick.clone();
        let conn = p.conn;
        if let Some(set) = self.rooms.get_mut(&room) {
            set.remove(&conn);
            if set.is_empty() {
                self.rooms.remove(&room);
                self.room_names.remove(&name_key(&room));
            }
        }
        self.to_place(r, Some(&room), conn, self.cat.leave_notice(&nick));
        if to_lobby {
            self.lobby.insert(conn);
        }
        Some(room)
    }

    /// The session ends (quit, idle, FIN, close): out of every set at once,
    /// so nothing more is relayed to it and no one is told about it twice,
    /// then `notice` to everyone still here.
    fn depart(&mut self, r: &mut Reactor, id: u64, notice: impl FnOnce(&Catalog, &str) -> String) {
        if !self.roster.contains_key(&id) {
            return;
        }
        self.leave_room(r, id, false);
        let Some(p) = self.roster.remove(&id) else {
            return;
        };
        self.lobby.remove(&p.conn);
        self.by_nick.remove(&name_key(&p.nick));
        if let Some(plane) = &self.plane {
            plane.bp.depart(id);
        }
        let msg = notice(&self.cat, &p.nick);
        self.to_all(r, p.conn, msg);
    }

    fn is_active(&self, id: u64) -> bool {
        self.roster.contains_key(&id)
    }

    fn handle_line(&mut self, r: &mut Reactor, conn: ConnId, me: &mut Me, line: &str) {
        let text = line.trim();
        if text.is_empty() {
            return;
        }
        let Some(m) = self.roster.get(&me.id) else {
            return;
        };
        log::debug!(
            "[{}]: {}",
            m.nick,
            crate::protocol::auth::redact_auth(&sanitize(text))
        );
        let cat = self.cat;
        let cmd = match chat_command::parse(text) {
            Ok(cmd) => cmd,
            Err(e) => {
                let msg = match e {
                    CommandError::NickUsage => cat.nick_usage(),
                    CommandError::NickInvalid(e) => cat.nick_invalid(e, MAX_NAME_CHARS),
                    CommandError::JoinUsage => cat.join_usage(),
                    CommandError::RoomInvalid(e) => cat.room_invalid(e, MAX_NAME_CHARS),
                    CommandError::WhisperUsage => cat.whisper_usage(),
                    CommandError::Unknown(cmd) => cat.chat_unknown(&sanitize(&cmd)),
                };
                return Self::reply(r, conn, msg);
            }
        };
        match cmd {
            Command::Empty => {}
            Command::Say(text) => {
                // Bidi controls and zero-width characters are removed: they
                // would reorder or hide text on every reader's screen.
                let text = strip_invisible(text);
                if text.trim().is_empty() {
                    return;
                }
                let room = m.room.clone();
                let msg = cat.chat_message(&m.nick, &sanitize(&text));
                self.to_place(r, room.as_deref(), conn, msg);
            }
            Command::Help => Self::reply(r, conn, cat.chat_help()),
            Command::Nick(name) => self.nick(r, conn, me, name),
            Command::List if self.plane.is_some() => {
                if let Some(Answer::Now(all)) = self.plane.as_ref().map(|p| p.bp.roster(me.id)) {
                    self.send_list(r, conn, &all);
                }
            }
            Command::List => {
                let users: Vec<(u64, &str, Option<&str>)> = self
                    .roster
                    .iter()
                    .map(|(id, p)| (*id, p.nick.as_str(), p.room.as_deref()))
                    .collect();
                let msg = cat.chat_list(&users);
                Self::reply(r, conn, msg);
            }
            Command::Rooms if self.plane.is_some() => {
                if let Some(Answer::Now(all)) = self.plane.as_ref().map(|p| p.bp.rooms(me.id)) {
                    self.send_rooms(r, conn, &all);
                }
            }
            Command::Rooms => {
                let rooms: Vec<(&str, usize)> = self
                    .rooms
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.len()))
                    .collect();
                let msg = cat.chat_rooms(&rooms);
                Self::reply(r, conn, msg);
            }
            Command::Join(room) => self.join(r, conn, me.id, room),
            Command::Leave => {
                if let Some(room) = self.leave_room(r, me.id, true) {
                    Self::reply(r, conn, cat.left(&room));
                }
            }
            Command::Whisper { to, text } => self.whisper(r, conn, me.id, to, text),
            Command::Quit => {
                // Gone from every worker (list, nickname, rooms) before the
                // goodbye can be read.
                self.depart(r, me.id, Catalog::disconnect_notice);
                let _ = r.end_with(conn, cat.goodbye());
            }
        }
    }

    /// `/list` with a backplane: every member of every worker (or node).
    fn send_list(&self, r: &mut Reactor, conn: ConnId, all: &[Listed]) {
        let users: Vec<(u64, &str, Option<&str>)> = all
            .iter()
            .map(|m| (m.id, m.nick.as_str(), m.room.as_deref()))
            .collect();
        Self::reply(r, conn, self.cat.chat_list(&users));
    }

    /// `/rooms` with a backplane.
    fn send_rooms(&self, r: &mut Reactor, conn: ConnId, all: &[(String, usize)]) {
        let rooms: Vec<(&str, usize)> = all.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        Self::reply(r, conn, self.cat.chat_rooms(&rooms));
    }

    /// `/nick`: `new` passed [`validate_name`]; check what needs the state.
    fn nick(&mut self, r: &mut Reactor, conn: ConnId, me: &mut Me, new: &str) {
        let cat = self.cat;
        let key = name_key(new);
        let check = match default_nick_owner(new) {
            Some(owner) if owner != me.id => Err(NameError::Reserved),
            _ => match self.by_nick.get(&key) {
                Some(other) if *other != me.id => Err(NameError::Taken),
                _ => Ok(()),
            },
        };
        let check = check.and_then(|()| match &self.plane {
            Some(p) => match self.roster.get(&me.id).and_then(|m| m.claiming.as_ref()) {
                // One claim at a time: the answer to the first decides.
                Some(_) => Err(NameError::Pending),
                None => match p.bp.rename(me.id, new) {
                    Answer::Now(false) => Err(NameError::Taken),
                    Answer::Now(true) => Ok(true),
                    Answer::Later => Ok(false),
                },
            },
            None => Ok(true),
        });
        match check {
            Err(e) => Self::reply(r, conn, cat.nick_invalid(e, MAX_NAME_CHARS)),
            Ok(true) => {
                me.nick = new.to_string();
                self.apply_nick(r, me.id, new);
            }
            Ok(false) => {
                // The backplane answers with `Relay::Claimed`.
                if let Some(p) = self.roster.get_mut(&me.id) {
                    p.claiming = Some(new.to_string());
                }
            }
        }
    }

    /// Member `id` is `new` now: tell it and its room or lobby.
    fn apply_nick(&mut self, r: &mut Reactor, id: u64, new: &str) {
        let cat = self.cat;
        let Some(p) = self.roster.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut p.nick, new.to_string());
        let room = p.room.clone();
        let conn = p.conn;
        self.by_nick.remove(&name_key(&old));
        self.by_nick.insert(name_key(new), id);
        Self::reply(r, conn, cat.nick_changed(new));
        // Only the sender's own room or lobby hears it (the seed told
        // everyone, in every room).
        self.to_place(r, room.as_deref(), conn, cat.nick_notice(&old, new));
    }

    /// The backplane's answer to a `/nick` claim.
    fn claimed(&mut self, cx: &mut Cx<'_, Self>, id: u64, nick: String, ok: bool) {
        let Some(p) = self.roster.get_mut(&id) else {
            return;
        };
        if p.claiming.as_deref() != Some(nick.as_str()) {
            return; // not a pending /nick (a default name taken back)
        }
        p.claiming = None;
        let conn = p.conn;
        // A local member may have taken it meanwhile (while the servers
        // were apart every claim is local).
        let taken_here = self
            .by_nick
            .get(&name_key(&nick))
            .is_some_and(|&other| other != id);
        if !ok || taken_here {
            if ok {
                // The backplane gave it to this member: give it back by
                // claiming the current name again (its answer is ignored).
                let current = p.nick.clone();
                if let Some(plane) = &self.plane {
                    let _ = plane.bp.rename(id, &current);
                }
            }
            let msg = self.cat.nick_invalid(NameError::Taken, MAX_NAME_CHARS);
            return Self::reply(cx, conn, msg);
        }
        if let Some(m) = cx.conn_state(conn) {
            m.me.nick = nick.clone();
        }
        self.apply_nick(cx, id, &nick);
    }

    /// Member `id`'s nickname went to another server: back to its default.
    fn nick_lost(&mut self, cx: &mut Cx<'_, Self>, id: u64, old: String) {
        let Some(p) = self.roster.get_mut(&id) else {
            return;
        };
        if name_key(&p.nick) != name_key(&old) {
            return;
        }
        let new = default_nick(self.cat.lang, id);
        p.nick = new.clone();
        p.claiming = None;
        let (conn, room) = (p.conn, p.room.clone());
        self.by_nick.remove(&name_key(&old));
        self.by_nick.insert(name_key(&new), id);
        if let Some(m) = cx.conn_state(conn) {
            m.me.nick = new.clone();
        }
        if let Some(plane) = &self.plane {
            // `user<id>` is reserved for this member: the claim cannot fail,
            // and its answer is not a pending `/nick` (ignored).
            let _ = plane.bp.rename(id, &new);
        }
        Self::reply(cx, conn, self.cat.nick_lost(&old, &new));
        self.to_place(cx, room.as_deref(), conn, self.cat.nick_notice(&old, &new));
    }

    /// `/join`: `room` passed [`validate_name`]; check what needs the state.
    fn join(&mut self, r: &mut Reactor, conn: ConnId, id: u64, room: &str) {
        let cat = self.cat;
        let Some(m) = self.roster.get(&id) else {
            return;
        };
        if let Some(plane) = self.plane.clone() {
            return self.join_shared(r, conn, id, room, &plane);
        }
        // The existing room of the same key, under its first name.
        let key = name_key(room);
        let room = match self.room_names.get(&key) {
            Some(existing) => existing.clone(),
            None => room.to_string(),
        };
        let room = room.as_str();
        if m.room.as_deref() == Some(room) {
            return Self::reply(r, conn, cat.already_in_room(room));
        }
        if !self.rooms.contains_key(room) && self.rooms.len() >= MAX_ROOMS {
            return Self::reply(r, conn, cat.too_many_rooms());
        }
        let nick = m.nick.clone();
        self.leave_room(r, id, false);
        self.lobby.remove(&conn);
        self.room_names
            .entry(key)
            .or_insert_with(|| room.to_string());
        self.rooms.entry(room.to_string()).or_default().insert(conn);
        if let Some(m) = self.roster.get_mut(&id) {
            m.room = Some(room.to_string());
        }
        Self::reply(r, conn, cat.joined(room));
        self.to_place(r, Some(room), conn, cat.join_notice(&nick));
    }

    /// `/join` with a backplane: the room's name and the cap are the
    /// process's; the backplane moves the member, then this worker does.
    fn join_shared(&mut self, r: &mut Reactor, conn: ConnId, id: u64, room: &str, p: &Plane) {
        let cat = self.cat;
        let Some(m) = self.roster.get(&id) else {
            return;
        };
        if let Some(cur) = m.room.as_deref() {
            if name_key(cur) == name_key(room) {
                return Self::reply(r, conn, cat.already_in_room(cur));
            }
        }
        let nick = m.nick.clone();
        let room = match p.bp.enter(id, room, MAX_ROOMS) {
            Ok(name) => name,
            Err(RoomError::TooManyRooms) => return Self::reply(r, conn, cat.too_many_rooms()),
        };
        self.leave_local_room(r, id, false);
        self.lobby.remove(&conn);
        self.rooms.entry(room.clone()).or_default().insert(conn);
        if let Some(m) = self.roster.get_mut(&id) {
            m.room = Some(room.clone());
        }
        Self::reply(r, conn, cat.joined(&room));
        self.to_place(r, Some(&room), conn, cat.join_notice(&nick));
    }

    /// `/whisper`: `target` and `msg` are not empty (the parser's check).
    fn whisper(&mut self, r: &mut Reactor, conn: ConnId, id: u64, target: &str, msg: &str) {
        let cat = self.cat;
        let stripped = strip_invisible(msg);
        let msg = sanitize(&stripped);
        let Some(sender) = self.roster.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        let found = self
            .by_nick
            .get(&name_key(target))
            .and_then(|i| self.roster.get(i).map(|p| (p.conn, p.nick.clone())));
        match found {
            Some((to, to_nick)) => {
                let _ = r.write(to, cat.whisper_from(&sender, &msg));
                Self::reply(r, conn, cat.whisper_to(&to_nick, &msg));
            }
            None => {
                let line = Bytes::from(cat.whisper_from(&sender, &msg));
                let req = WhisperReq {
                    sender: id,
                    to: target.to_string(),
                    line,
                    text: msg.to_string(),
                };
                match self.plane.as_ref().map(|p| p.bp.whisper(p.worker, req)) {
                    Some(Answer::Later) => {} // `Relay::Whispered` follows
                    Some(Answer::Now(Some(to_nick))) => {
                        Self::reply(r, conn, cat.whisper_to(&to_nick, &msg))
                    }
                    _ => Self::reply(r, conn, cat.whisper_offline(&sanitize(target))),
                }
            }
        }
    }

    /// Relay the lines of `data` (`eof`: the last, at the peer's FIN) until
    /// the session ends. True if the reader ended the connection.
    fn read_lines(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        m: &mut Member,
        data: &mut BytesMut,
        eof: bool,
    ) -> bool {
        let cat = self.cat;
        let Member { me, reader, .. } = m;
        let each = |cx: &mut Cx<'_, Self>, line: Line| {
            self.handle_line(cx, conn, me, &line.text);
            if self.is_active(me.id) {
                Flow::Continue
            } else {
                Flow::Stop
            }
        };
        let ended = if eof {
            reader.read_eof(cx, conn, data, &cat, each)
        } else {
            reader.read_all(cx, conn, data, &cat, each)
        };
        if !self.is_active(m.me.id) {
            data.clear(); // the session is over: nothing more is relayed
        }
        ended
    }
}

impl Service for ChatServer {
    type Conn = Member;
    /// An idle connection's grace timer.
    type Tag = ConnId;
    /// What the other workers relay.
    type Message = Relay;

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(p) = self.plane.clone() {
            let inbox = cx.remote();
            p.bp.attach(cx, p.worker, inbox);
        }
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, relay: Relay) {
        match relay {
            Relay::Deliver { place, msg } => match place {
                Place::Room(name) => self.deliver(cx, Some(&name), None, &msg),
                Place::Lobby => self.deliver(cx, None, None, &msg),
                Place::All => Self::fan_out(cx, self.roster.values().map(|p| &p.conn), None, &msg),
            },
            Relay::Whisper { to, msg } => {
                if let Some(p) = self.roster.get(&to) {
                    if cx.is_writable(p.conn) {
                        let _ = cx.write(p.conn, msg);
                    }
                }
            }
            Relay::Claimed { id, nick, ok } => self.claimed(cx, id, nick, ok),
            Relay::Whispered {
                sender,
                to,
                text,
                asked,
            } => {
                if let Some(p) = self.roster.get(&sender) {
                    let msg = match to {
                        Some(nick) => self.cat.whisper_to(&nick, &text),
                        None => self.cat.whisper_offline(&sanitize(&asked)),
                    };
                    Self::reply(cx, p.conn, msg);
                }
            }
            Relay::Listing { asker, users } => {
                if let Some(p) = self.roster.get(&asker) {
                    self.send_list(cx, p.conn, &users);
                }
            }
            Relay::RoomList { asker, rooms } => {
                if let Some(p) = self.roster.get(&asker) {
                    self.send_rooms(cx, p.conn, &rooms);
                }
            }
            Relay::Reachable(up) => {
                let msg = Bytes::from(if up {
                    self.cat.servers_back()
                } else {
                    self.cat.servers_unreachable()
                });
                Self::fan_out(cx, self.roster.values().map(|p| &p.conn), None, &msg);
            }
            Relay::NickLost { id, old } => self.nick_lost(cx, id, old),
            Relay::Batch(all) => {
                for relay in all {
                    self.on_message(cx, relay);
                }
            }
        }
    }

    fn name(&self) -> &'static str {
        "chat"
    }

    fn on_listening(&mut self, _: &mut Cx<'_, Self>, _: ServerId, addr: std::net::SocketAddr) {
        log::info!("chat server listening on {addr} (lang {})", self.cat.lang);
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _: ServerId,
        conn: ConnId,
    ) -> Option<Member> {
        let id = match &self.plane {
            Some(p) => p.bp.next_id(),
            None => {
                self.next_id += 1;
                self.next_id
            }
        };
        let nick = default_nick(self.cat.lang, id);
        if let Some(p) = &self.plane {
            // `user<id>` is reserved for this id (see `nick`): always free.
            if !p.bp.arrive(p.worker, id, &nick) {
                log::warn!("default nickname {nick} was taken");
            }
        }
        log::info!(
            "client {id} connected: {}",
            cx.peer_addr(conn)
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        self.by_nick.insert(name_key(&nick), id);
        self.lobby.insert(conn);
        self.roster.insert(
            id,
            Presence {
                conn,
                nick: nick.clone(),
                room: None,
                claiming: None,
            },
        );
        Self::reply(cx, conn, self.cat.chat_welcome(id));
        if self.plane.as_ref().is_some_and(|p| !p.bp.reachable()) {
            Self::reply(cx, conn, self.cat.servers_unreachable());
        }
        Some(Member {
            me: Me { id, nick },
            reader: LineReader::new(self.max_line),
            grace: None,
            evicted: false,
        })
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        m: &mut Member,
        data: &mut BytesMut,
    ) {
        if !cx.is_writable(conn) || !self.is_active(m.me.id) {
            data.clear(); // the session is over: nothing more is relayed
            return;
        }
        if self.read_lines(cx, conn, m, data, false) {
            // overlong line: the reader ended the connection
            self.depart(cx, m.me.id, Catalog::disconnect_notice);
        }
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, m: &mut Member) {
        let mut rest = cx.take_unread(conn);
        if cx.is_writable(conn) && self.is_active(m.me.id) {
            self.read_lines(cx, conn, m, &mut rest, true);
        }
        // Without half-open the loop ends our side now: the session is over.
        self.depart(cx, m.me.id, Catalog::disconnect_notice);
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Member) {
        cx.resume(conn);
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, m: &mut Member) {
        // Gone from every worker before the notice can be read (as `/quit`).
        self.depart(cx, m.me.id, Catalog::disconnect_notice);
        m.grace = close_idle(cx, conn, self.cat.chat_timeout(), conn);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: TimerId, conn: ConnId) {
        grace_expired(cx, conn);
    }

    fn on_error(&mut self, _: &mut Cx<'_, Self>, _: ConnId, m: &mut Member, err: &NetError) {
        log::info!("client {} error: {err}", m.me.id);
        if err.code == ErrorCode::SlowConsumer {
            m.evicted = true;
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, m: Member, _had_error: bool) {
        if m.evicted {
            self.depart(cx, m.me.id, Catalog::evicted_notice);
        } else {
            self.depart(cx, m.me.id, Catalog::disconnect_notice);
        }
        if let Some(t) = m.grace {
            cx.clear_timer(t);
        }
        log::info!("client {} ({}) disconnected", m.me.id, sanitize(&m.me.nick));
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        self.shutting_down = true;
        let msg = Bytes::from(self.cat.chat_shutdown());
        for p in self.roster.values() {
            if cx.is_writable(p.conn) {
                let _ = cx.write(p.conn, msg.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(validate_name("alice"), Ok(()));
        assert_eq!(validate_name("爱丽丝"), Ok(()));
        assert_eq!(validate_name(""), Err(NameError::Length));
        assert_eq!(validate_name(&"x".repeat(33)), Err(NameError::Length));
        assert_eq!(validate_name(&"字".repeat(32)), Ok(()));
        assert_eq!(validate_name("big boss"), Err(NameError::Charset));
        assert_eq!(validate_name("eve\n/join"), Err(NameError::Charset));
        assert_eq!(validate_name("a\u{1b}b"), Err(NameError::Charset));
        assert_eq!(validate_name("[私聊来自"), Err(NameError::Charset));
    }

    #[test]
    fn default_nicks_are_reserved_for_their_owner() {
        assert_eq!(default_nick_owner("user7"), Some(7));
        assert_eq!(default_nick_owner("USER7"), Some(7));
        assert_eq!(default_nick_owner("用户12"), Some(12));
        assert_eq!(default_nick_owner("user"), None);
        assert_eq!(default_nick_owner("user7x"), None);
        assert_eq!(default_nick_owner("alice"), None);
    }
}
