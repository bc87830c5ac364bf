//! `netloop serve chat`: the seed's multi-room chat (program 03), fixed.
//!
//! Protocol: one message per line (LF or CRLF), trimmed; empty lines are
//! ignored (D3.6: the seed broadcast `[nick]: `). A line starting with `/` is a
//! command: its first whitespace-separated word, lower-cased, names it, and the
//! rest of the line is its argument (runs of spaces and tabs separate, D3.6).
//! Commands: `/help`, `/nick <name>`, `/list`, `/rooms`, `/join <room>`,
//! `/leave`, `/whisper <nick> <message>` (also `/w`), `/quit`.
//! The grammar is the sans-IO parser [`super::chat_command`]; this server
//! adds only the checks that need its state (taken or reserved nicknames,
//! the room cap, the whisper's target).
//!
//! Fixes of the seed, each cited where it is done:
//! * framing: a message is one line, so text can never forge a server line
//!   (D3.1, D3.2); peer text is passed through [`sanitize`] as well;
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
//!   room (D3.5); a whisper reaches exactly the one user with that nickname;
//! * a session leaves every broadcast set as soon as it ends (`/quit`, idle),
//!   not at `close` (D3.7, D-X2).
//!
//! Broadcast (D-X1): a message is encoded once into one `Bytes` and the same
//! buffer is queued on every recipient; nothing waits for any reader. A
//! recipient whose queue would pass the write-buffer cap is destroyed by the
//! loop as a slow consumer (`error` ERR_SLOW_CONSUMER); its `close` then tells
//! everyone it was disconnected. Memory per member is therefore bounded by the
//! cap. Replies to the sender itself pause its reading at the high-water mark.

use super::catalog::{Catalog, Lang, NameError};
use super::chat_command::{self, Command, CommandError};
use super::idle::{idle_close, on_grace_timer};
use super::lines::LineReader;
use super::text::{fold, is_invisible, name_key, sanitize, strip_invisible};
use crate::{ConnId, ErrorCode, Handler, NetError, Reactor, ServerId, TimerId};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Longest nickname or room name, in characters: long enough for real names,
/// short enough to keep `/list` lines readable.
pub const MAX_NAME_CHARS: usize = 32;

/// Most rooms that may exist at once: every room costs a map entry, and a
/// peer must not be able to create them without bound (D-X6).
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

/// One member's session.
#[derive(Debug)]
struct Member {
    id: u64,
    nick: String,
    room: Option<String>,
    reader: LineReader,
    grace: Option<TimerId>,
    /// Still in the broadcast sets (false after `/quit`, idle, eviction).
    active: bool,
    /// Destroyed as a slow consumer.
    evicted: bool,
}

/// The chat server.
#[derive(Debug)]
pub struct ChatServer {
    cat: Catalog,
    max_line: usize,
    next_id: u64,
    members: HashMap<ConnId, Member>,
    /// Nickname key ([`name_key`]) → member, for uniqueness and whispers.
    by_nick: HashMap<String, ConnId>,
    /// Room name → members.
    rooms: BTreeMap<String, BTreeSet<ConnId>>,
    /// Room key ([`name_key`]) → the room's name as its creator typed it:
    /// `/join dev` enters `Dev` if that exists (one room, not two).
    room_names: HashMap<String, String>,
    /// Active members in no room.
    lobby: BTreeSet<ConnId>,
}

impl ChatServer {
    /// A server speaking `cat`'s language, with lines of at most `max_line` bytes.
    pub fn new(cat: Catalog, max_line: usize) -> ChatServer {
        ChatServer {
            cat,
            max_line,
            next_id: 0,
            members: HashMap::new(),
            by_nick: HashMap::new(),
            rooms: BTreeMap::new(),
            room_names: HashMap::new(),
            lobby: BTreeSet::new(),
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
        except: ConnId,
        msg: &Bytes,
    ) {
        for &t in targets {
            if t != except && r.is_writable(t) {
                let _ = r.write(t, msg.clone());
            }
        }
    }

    /// To the members of `room` (or the lobby when `None`), except `except`.
    fn to_place(&self, r: &mut Reactor, room: Option<&str>, except: ConnId, msg: String) {
        let msg = Bytes::from(msg);
        match room {
            Some(name) => {
                if let Some(set) = self.rooms.get(name) {
                    Self::fan_out(r, set.iter(), except, &msg);
                }
            }
            None => Self::fan_out(r, self.lobby.iter(), except, &msg),
        }
    }

    /// To every active member except `except`.
    fn to_all(&self, r: &mut Reactor, except: ConnId, msg: String) {
        let msg = Bytes::from(msg);
        let active = self
            .members
            .iter()
            .filter(|(_, m)| m.active)
            .map(|(c, _)| c);
        Self::fan_out(r, active, except, &msg);
    }

    /// Take `conn` out of its room, telling the room; back to the lobby if
    /// `to_lobby`. Returns the room it left.
    fn leave_room(&mut self, r: &mut Reactor, conn: ConnId, to_lobby: bool) -> Option<String> {
        let m = self.members.get_mut(&conn)?;
        let room = m.room.take()?;
        let nick = m.nick.clone();
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

    /// The session ends (quit, idle, close): out of every set at once (D3.7),
    /// then `notice` to everyone still here.
    fn depart(
        &mut self,
        r: &mut Reactor,
        conn: ConnId,
        notice: impl FnOnce(&Catalog, &str) -> String,
    ) {
        if !self.members.get(&conn).is_some_and(|m| m.active) {
            return;
        }
        self.leave_room(r, conn, false);
        self.lobby.remove(&conn);
        let Some(m) = self.members.get_mut(&conn) else {
            return;
        };
        m.active = false;
        let nick = m.nick.clone();
        self.by_nick.remove(&name_key(&nick));
        let msg = notice(&self.cat, &nick);
        self.to_all(r, conn, msg);
    }

    fn handle_line(&mut self, r: &mut Reactor, conn: ConnId, line: &str) {
        let text = line.trim();
        if text.is_empty() {
            return;
        }
        let Some(m) = self.members.get(&conn) else {
            return;
        };
        log::debug!(
            "[{}]: {}",
            m.nick,
            super::auth::redact_auth(&sanitize(text))
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
            Command::Nick(name) => self.nick(r, conn, name),
            Command::List => {
                let mut users: Vec<(u64, &str, Option<&str>)> = self
                    .members
                    .values()
                    .filter(|m| m.active)
                    .map(|m| (m.id, m.nick.as_str(), m.room.as_deref()))
                    .collect();
                users.sort_unstable_by_key(|u| u.0);
                let msg = cat.chat_list(&users);
                Self::reply(r, conn, msg);
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
            Command::Join(room) => self.join(r, conn, room),
            Command::Leave => {
                if let Some(room) = self.leave_room(r, conn, true) {
                    Self::reply(r, conn, cat.left(&room));
                }
            }
            Command::Whisper { to, text } => self.whisper(r, conn, to, text),
            Command::Quit => {
                let _ = r.end_with(conn, cat.goodbye());
                self.depart(r, conn, Catalog::disconnect_notice);
            }
        }
    }

    /// `/nick`: `new` passed [`validate_name`]; check what needs the state.
    fn nick(&mut self, r: &mut Reactor, conn: ConnId, new: &str) {
        let cat = self.cat;
        let Some(m) = self.members.get(&conn) else {
            return;
        };
        let key = name_key(new);
        let check = match default_nick_owner(new) {
            Some(owner) if owner != m.id => Err(NameError::Reserved),
            _ => match self.by_nick.get(&key) {
                Some(other) if *other != conn => Err(NameError::Taken),
                _ => Ok(()),
            },
        };
        if let Err(e) = check {
            return Self::reply(r, conn, cat.nick_invalid(e, MAX_NAME_CHARS));
        }
        let old = m.nick.clone();
        let room = m.room.clone();
        self.by_nick.remove(&name_key(&old));
        self.by_nick.insert(key, conn);
        if let Some(m) = self.members.get_mut(&conn) {
            m.nick = new.to_string();
        }
        Self::reply(r, conn, cat.nick_changed(new));
        // Only the sender's own room or lobby hears it (D3.5).
        self.to_place(r, room.as_deref(), conn, cat.nick_notice(&old, new));
    }

    /// `/join`: `room` passed [`validate_name`]; check what needs the state.
    fn join(&mut self, r: &mut Reactor, conn: ConnId, room: &str) {
        let cat = self.cat;
        let Some(m) = self.members.get(&conn) else {
            return;
        };
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
        self.leave_room(r, conn, false);
        self.lobby.remove(&conn);
        self.room_names
            .entry(key)
            .or_insert_with(|| room.to_string());
        self.rooms.entry(room.to_string()).or_default().insert(conn);
        if let Some(m) = self.members.get_mut(&conn) {
            m.room = Some(room.to_string());
        }
        Self::reply(r, conn, cat.joined(room));
        self.to_place(r, Some(room), conn, cat.join_notice(&nick));
    }

    /// `/whisper`: `target` and `msg` are not empty (the parser's check).
    fn whisper(&mut self, r: &mut Reactor, conn: ConnId, target: &str, msg: &str) {
        let cat = self.cat;
        let stripped = strip_invisible(msg);
        let msg = sanitize(&stripped);
        let Some(sender) = self.members.get(&conn).map(|m| m.nick.clone()) else {
            return;
        };
        let found = self
            .by_nick
            .get(&name_key(target))
            .and_then(|c| self.members.get(c).map(|m| (*c, m.nick.clone())));
        match found {
            Some((to, to_nick)) => {
                let _ = r.write(to, cat.whisper_from(&sender, &msg));
                Self::reply(r, conn, cat.whisper_to(&to_nick, &msg));
            }
            None => Self::reply(r, conn, cat.whisper_offline(&sanitize(target))),
        }
    }
}

impl Handler for ChatServer {
    fn on_listening(&mut self, _r: &mut Reactor, _s: ServerId, addr: std::net::SocketAddr) {
        log::info!("chat server listening on {addr} (lang {})", self.cat.lang);
    }

    fn on_connection(&mut self, r: &mut Reactor, _s: ServerId, conn: ConnId) {
        self.next_id += 1;
        let id = self.next_id;
        let nick = default_nick(self.cat.lang, id);
        log::info!(
            "client {id} connected: {}",
            r.peer_addr(conn).map(|a| a.to_string()).unwrap_or_default()
        );
        self.by_nick.insert(name_key(&nick), conn);
        self.lobby.insert(conn);
        self.members.insert(
            conn,
            Member {
                id,
                nick,
                room: None,
                reader: LineReader::new(self.max_line),
                grace: None,
                active: true,
                evicted: false,
            },
        );
        Self::reply(r, conn, self.cat.chat_welcome(id));
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let cat = self.cat;
        loop {
            if !r.is_writable(conn) || !self.members.get(&conn).is_some_and(|m| m.active) {
                data.clear(); // the session is over: nothing more is relayed
                return;
            }
            if r.is_paused(conn) {
                return;
            }
            let Some(m) = self.members.get_mut(&conn) else {
                return;
            };
            let Some(line) = m.reader.next(r, conn, data, &cat) else {
                if !r.is_writable(conn) {
                    // overlong line: the reader ended the connection
                    self.depart(r, conn, Catalog::disconnect_notice);
                }
                return;
            };
            self.handle_line(r, conn, &line.text);
        }
    }

    fn on_end(&mut self, r: &mut Reactor, conn: ConnId) {
        let mut rest = r.take_unread(conn);
        let cat = self.cat;
        while r.is_writable(conn) && self.members.get(&conn).is_some_and(|m| m.active) {
            let Some(m) = self.members.get_mut(&conn) else {
                return;
            };
            let Some(line) = m.reader.finish(r, conn, &mut rest, &cat) else {
                break;
            };
            self.handle_line(r, conn, &line.text);
        }
        // Without half-open the loop ends our side now: the session is over.
        self.depart(r, conn, Catalog::disconnect_notice);
    }

    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        r.resume(conn);
    }

    fn on_timeout(&mut self, r: &mut Reactor, conn: ConnId) {
        let grace = idle_close(r, conn, self.cat.chat_timeout());
        self.depart(r, conn, Catalog::disconnect_notice);
        if let Some(m) = self.members.get_mut(&conn) {
            m.grace = grace;
        }
    }

    fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, tag: u64) {
        on_grace_timer(r, tag);
    }

    fn on_error(&mut self, _r: &mut Reactor, conn: ConnId, err: &NetError) {
        if let Some(m) = self.members.get_mut(&conn) {
            log::info!("client {} error: {err}", m.id);
            if err.code == ErrorCode::SlowConsumer {
                m.evicted = true;
            }
        }
    }

    fn on_close(&mut self, r: &mut Reactor, conn: ConnId, _had_error: bool) {
        let evicted = self.members.get(&conn).is_some_and(|m| m.evicted);
        if evicted {
            self.depart(r, conn, Catalog::evicted_notice);
        } else {
            self.depart(r, conn, Catalog::disconnect_notice);
        }
        if let Some(m) = self.members.remove(&conn) {
            if let Some(t) = m.grace {
                r.clear_timer(t);
            }
            log::info!("client {} ({}) disconnected", m.id, sanitize(&m.nick));
        }
    }

    fn on_shutdown(&mut self, r: &mut Reactor) {
        let msg = Bytes::from(self.cat.chat_shutdown());
        let all: Vec<ConnId> = self.members.keys().copied().collect();
        for c in all {
            if r.is_writable(c) {
                let _ = r.write(c, msg.clone());
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
