//! Chat across processes and machines: a [`Backplane`] on Redis pub/sub
//! (`netloop serve chat --redis redis://HOST:PORT[/DB]`), the idea of
//! socket.io's Redis adapter, with per-room subscriptions.
//!
//! # Algorithm
//!
//! Each chat process (each worker, with `--workers N`) is a *node* with an
//! id (`--node-id`, default host name and pid). Its [`RedisPlane`] keeps
//! the node's own members (nicknames, rooms) and a bounded outbox of
//! encoded commands; a [`Link`] service on the same loop owns two Redis
//! connections of that loop, one for commands and one for subscriptions
//! (Redis puts a subscribed connection in a mode of its own), and moves the
//! outbox onto them. RESP is encoded and decoded by the `redis-protocol`
//! crate (sans-IO); nothing blocks, no thread is added.
//!
//! * **Rooms**: a room is the channel `netloop:chat:room:<key>`
//!   ([`name_key`] of its name). The node subscribes while it has local
//!   members in the room and unsubscribes when the last one leaves (likewise
//!   `netloop:chat:lobby` for members in no room and `netloop:chat:all` for
//!   departures). A message is published once per room, already encoded,
//!   prefixed with the node id and a newline; a node skips payloads with its
//!   own id (it delivered those locally), so no member gets one twice.
//!   Commands are pipelined on one connection and Redis delivers a
//!   channel's messages in publish order, so one sender's lines arrive in
//!   order everywhere.
//! * **Nicknames**: the key `netloop:chat:nick:<key>` holds
//!   `<node> <id> <nick>` with an expiry (`--redis-claim-ttl`, default
//!   [`DEFAULT_CLAIM_TTL`]). A claim is one script: set if free or already
//!   this member's, else refuse; so exactly one of many racing claims wins.
//!   The node repeats the claim for every member every third of the expiry
//!   (one script call per 256 names),
//!   which refreshes it; a killed node's names expire. A refresh that finds
//!   the name held by another node (taken while the two were apart) renames
//!   the local member to its default name and tells it
//!   ([`Relay::NickLost`]). Default names `user<id>` are claimed too (for
//!   whispers); ids come in blocks of [`ID_BLOCK`] from `INCRBY
//!   netloop:chat:ids`, so they are unique across nodes.
//! * **Whispers** to a member not on this node: one script reads the
//!   target's claim and publishes the line to its node's channel
//!   `netloop:chat:node:<node>`; the answer (found or not) comes back to the
//!   sender as [`Relay::Whispered`].
//! * **`/list` and `/rooms`**: each node keeps a hash
//!   `netloop:chat:users:<node>` (member id → `nick [room]`) with the claim's
//!   expiry, refreshed with the claims, and its id in the set
//!   `netloop:chat:nodes`; one script gathers every node's hash (and drops
//!   nodes whose hash expired).
//!
//! # Faults
//!
//! The link is *up* once both connections are open and Redis answered a
//! `PING`. A closed connection, a protocol error, or a reply later than
//! [`DEFAULT_REPLY_TIMEOUT`] (a Redis that stopped reading) puts it *down*:
//! both connections are destroyed, every member is told once that the other
//! servers are unreachable, and it reconnects with exponential backoff and
//! jitter. While down, chat goes on among local members; `/nick` is decided
//! locally, `/list` shows the local members, whispers to other nodes find
//! nobody, and published messages are counted as not delivered (logged when
//! the link is back). Back up, the node re-subscribes to its rooms,
//! re-claims every name (a name claimed elsewhere meanwhile: the member is
//! renamed and told), rebuilds its user hash, and members are told once.
//!
//! The outbox holds at most [`MAX_OUTBOX_BYTES`]; a publish that would pass
//! it is dropped and counted. The link hands the outbox to a connection
//! only while the connection's write queue is under its high-water mark, so
//! a Redis that answers slowly costs at most these two bounds in memory,
//! never the loop's time.
//!
//! # Contract
//!
//! Every [`Backplane`] call comes from the loop that runs the chat service
//! and the [`Link`] (the mutex is never contended). Replies to a claim,
//! whisper or listing come through the chat service's inbox.

mod link;

pub use link::{Link, LinkConn, Role, Tick};

use super::chat::MAX_NAME_CHARS;
use super::chat_backplane::{Answer, Backplane, Listed, Place, Relay, RoomError, WhisperReq};
use crate::protocol::target::parse_target;
use crate::protocol::text::name_key;
use crate::{Reactor, Remote};
use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::encode::extend_encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, BytesFrame};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Default expiry of a nickname claim: a killed node's names are free
/// within this; refreshed every third of it.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(30);
/// A Redis that has not answered the oldest command for this long is
/// treated as gone (it stopped reading or the path is cut).
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// Member ids taken from Redis at a time: one round trip per this many
/// connections, ids unique across nodes.
pub const ID_BLOCK: u64 = 1000;
/// Ids used before the first block arrives (or while Redis was never
/// reachable) start here: far above any block, so they collide with no
/// node's block ids, only (unlikely) with another isolated node's.
pub const FALLBACK_IDS: u64 = 1 << 40;
/// Most bytes of commands waiting for a Redis connection: a slow or
/// stopped Redis costs at most this (plus the connection's high-water
/// mark) in memory.
pub const MAX_OUTBOX_BYTES: usize = 4 << 20;
/// Largest reply accepted from Redis, checked before decoding: a `/list`
/// of every node's members fits with room to spare.
pub const MAX_REPLY_BYTES: usize = 16 << 20;
/// Bytes of commands written to a connection at once (one write, one
/// syscall for many small commands).
const WRITE_BATCH: usize = 64 << 10;
/// Health check interval (PING, and the reply-timeout check).
const PING_EVERY: Duration = Duration::from_millis(500);
/// First reconnect delay; doubles per failure up to [`RECONNECT_CAP`],
/// with equal jitter (the policy of the line client's reconnect).
const RECONNECT_BASE: Duration = Duration::from_millis(200);
/// Longest reconnect delay: a restarted Redis is found within this.
const RECONNECT_CAP: Duration = Duration::from_secs(2);
/// Longest node id: it prefixes every published message.
pub const MAX_NODE_ID: usize = 64;
/// Members per `HSET` when the user hash is rebuilt.
const HSET_CHUNK: usize = 256;

const PREFIX: &str = "netloop:chat:";

/// Claim a nickname: set if free or already this member's (matched on the
/// `<node> <id> ` prefix, so re-casing one's own name works), else refuse.
/// KEYS[1] = nick key; ARGV = value, ttl ms, owner prefix.
const CLAIM: &str = "local v = redis.call('GET', KEYS[1]) \
if v == false or string.sub(v, 1, #ARGV[3]) == ARGV[3] then \
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0";
/// [`CLAIM`] for many names in one command (the periodic refresh and the
/// re-claim after a reconnect): KEYS = nick keys; ARGV = their values, then
/// the ttl in ms; one 1 or 0 per key.
const REFRESH: &str = "local ttl = ARGV[#ARGV] local out = {} \
for i, k in ipairs(KEYS) do \
local owner = string.match(ARGV[i], '^%S+ %S+ ') \
local v = redis.call('GET', k) \
if v == false or string.sub(v, 1, #owner) == owner then \
redis.call('SET', k, ARGV[i], 'PX', ttl) out[i] = 1 else out[i] = 0 end end return out";
/// Names per [`REFRESH`] command: one command stays small (tens of KiB)
/// however many members a node has.
const REFRESH_CHUNK: usize = 256;
/// Release a nickname if this member still holds it. KEYS[1]; ARGV[1] =
/// owner prefix.
const RELEASE: &str = "local v = redis.call('GET', KEYS[1]) \
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
/// Whisper: read the target's claim, publish to its node unless it is this
/// node; the claim or nil. KEYS[1] = nick key; ARGV = own node, node
/// channel prefix, line.
const WHISPER: &str = "local v = redis.call('GET', KEYS[1]) \
if not v then return false end \
local node, id = string.match(v, '^(%S+) (%d+) ') \
if node == nil then return false end \
if node ~= ARGV[1] then redis.call('PUBLISH', ARGV[2] .. node, id .. '\\n' .. ARGV[3]) end \
return v";
/// Every node's users, flattened (id, `nick [room]`, ...). KEYS[1] = node
/// set; ARGV[1] = user hash prefix.
const LIST: &str = "local out = {} \
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do \
local h = redis.call('HGETALL', ARGV[1] .. n) \
if #h == 0 then redis.call('SREM', KEYS[1], n) end \
for i = 1, #h do out[#out + 1] = h[i] end end return out";

/// Where Redis is: `redis://HOST:PORT[/DB]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisAddr {
    /// Host name or address.
    pub host: String,
    /// Port (6379 if the URL names none).
    pub port: u16,
    /// Database for the keys (`SELECT`); pub/sub channels are global.
    pub db: Option<u32>,
}

impl std::str::FromStr for RedisAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<RedisAddr, String> {
        let rest = s
            .strip_prefix("redis://")
            .ok_or_else(|| format!("'{s}': expected redis://HOST:PORT[/DB]"))?;
        let (hp, db) = match rest.split_once('/') {
            Some((hp, "")) => (hp, None),
            Some((hp, db)) => {
                let n = db
                    .parse::<u32>()
                    .map_err(|_| format!("'{s}': the database must be a number, got '{db}'"))?;
                (hp, Some(n))
            }
            None => (rest, None),
        };
        if hp.contains('@') {
            return Err(format!("'{s}': passwords in the URL are not supported"));
        }
        let (host, port) = if hp.ends_with(']') || !hp.contains(':') {
            (
                hp.trim_start_matches('[').trim_end_matches(']').to_string(),
                6379,
            )
        } else {
            parse_target(hp).map_err(|e| format!("'{s}': {e}"))?
        };
        if host.is_empty() {
            return Err(format!("'{s}': no host"));
        }
        Ok(RedisAddr { host, port, db })
    }
}

/// Check a node id: 1 to [`MAX_NODE_ID`] characters of `[A-Za-z0-9._-]`
/// (it is a key suffix, a channel suffix and a message prefix).
pub fn validate_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_NODE_ID {
        return Err(format!("node id must be 1 to {MAX_NODE_ID} characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(format!(
            "node id '{id}': only letters, digits, '.', '-', '_'"
        ));
    }
    Ok(())
}

/// The default node id: host name and process id.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
        .take(MAX_NODE_ID - 12)
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
    format!("{host}-{}", std::process::id())
}

/// How a node talks to Redis.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Where.
    pub addr: RedisAddr,
    /// This node's id ([`validate_node_id`]).
    pub node: String,
    /// Expiry of nickname claims and of the user hash.
    pub claim_ttl: Duration,
    /// A reply later than this puts the link down.
    pub reply_timeout: Duration,
}

/// A node's Redis figures (the log summary at shutdown).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Messages published to Redis.
    pub published: u64,
    /// Messages received from other nodes and delivered here.
    pub received: u64,
    /// Messages published while Redis was unreachable: not delivered to
    /// other nodes.
    pub undelivered: u64,
    /// Messages dropped because the outbox was full (Redis too slow).
    pub dropped: u64,
    /// Channels subscribed now.
    pub subscriptions: u64,
    /// Connections lost or failed (each followed by a reconnect).
    pub reconnects: u64,
    /// Last and highest PING round trip, microseconds.
    pub rtt_us: u64,
    /// Highest PING round trip, microseconds.
    pub rtt_max_us: u64,
    /// Nicknames lost to another node after a partition.
    pub names_lost: u64,
}

impl fmt::Display for RedisStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "published {}, received {}, not delivered (redis unreachable) {}, dropped (queue full) {}, \
             subscriptions {}, reconnects {}, rtt {} us (max {} us), names lost {}",
            self.published,
            self.received,
            self.undelivered,
            self.dropped,
            self.subscriptions,
            self.reconnects,
            self.rtt_us,
            self.rtt_max_us,
            self.names_lost
        )
    }
}

/// What to do with a command's reply.
#[derive(Debug)]
enum Then {
    Ignore,
    /// A `/nick` claim (answered to the chat).
    Claim {
        id: u64,
        nick: String,
    },
    /// A claim of a held name, e.g. a default name (lost: renamed).
    Refresh {
        id: u64,
        nick: String,
    },
    /// [`REFRESH`] of these members' names, in order.
    RefreshAll(Vec<(u64, String)>),
    Whisper {
        sender: u64,
        text: String,
        asked: String,
    },
    List {
        asker: u64,
        rooms: bool,
    },
    Ids,
    Ping(Instant),
}

#[derive(Debug)]
struct Out {
    bytes: Bytes,
    then: Then,
}

/// One of the node's members.
#[derive(Debug)]
struct Local {
    nick: String,
    room: Option<String>,
}

/// The node's state, shared by the chat service (through [`Backplane`])
/// and the [`Link`].
#[derive(Debug, Default)]
struct Node {
    members: BTreeMap<u64, Local>,
    /// Canonical local name → local members.
    rooms: BTreeMap<String, usize>,
    /// Room key → canonical local name.
    room_names: HashMap<String, String>,
    lobby: usize,
    next_id: u64,
    id_end: u64,
    ids_asked: bool,
    fallback: u64,
    cmd_out: VecDeque<Out>,
    sub_out: VecDeque<Bytes>,
    out_bytes: usize,
    inbox: Option<Remote<Relay>>,
    /// While the link handles one read: what it has for the chat, posted
    /// as one [`Relay::Batch`] (one wake-up, not one per message).
    batch: Option<Vec<Relay>>,
    kick: Option<Remote<()>>,
    kicked: bool,
    up: bool,
    /// The members were told the other servers are unreachable (and not
    /// yet that they are back).
    told_down: bool,
    stats: RedisStats,
}

fn encode(args: &[&[u8]]) -> Bytes {
    let frames: Vec<BorrowedFrame<'_>> =
        args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
    let mut buf = BytesMut::new();
    // Encoding bulk strings into a growable buffer cannot fail.
    let _ = extend_encode_borrowed(&mut buf, &BorrowedFrame::Array(&frames), false);
    buf.freeze()
}

fn nick_key(nick: &str) -> String {
    format!("{PREFIX}nick:{}", name_key(nick))
}

fn room_channel(room: &str) -> String {
    format!("{PREFIX}room:{}", name_key(room))
}

impl Node {
    fn post(&mut self, relay: Relay) {
        match &mut self.batch {
            Some(b) => b.push(relay),
            None => {
                if let Some(i) = &self.inbox {
                    i.post(relay);
                }
            }
        }
    }

    /// Post what was batched.
    fn end_batch(&mut self) {
        let Some(mut b) = self.batch.take() else {
            return;
        };
        let relay = match b.len() {
            0 => return,
            1 => b.pop(),
            _ => Some(Relay::Batch(b)),
        };
        if let (Some(i), Some(r)) = (&self.inbox, relay) {
            i.post(r);
        }
    }

    fn kick(&mut self) {
        if !self.kicked {
            if let Some(k) = &self.kick {
                self.kicked = k.post(());
            }
        }
    }

    /// Queue a command if the link is up and the outbox has room.
    fn push(&mut self, args: &[&[u8]], then: Then) -> Result<(), Then> {
        if !self.up || self.out_bytes >= MAX_OUTBOX_BYTES {
            return Err(then);
        }
        let bytes = encode(args);
        self.out_bytes += bytes.len();
        self.cmd_out.push_back(Out { bytes, then });
        self.kick();
        Ok(())
    }

    fn sub_cmd(&mut self, verb: &str, channel: &str) {
        if !self.up {
            return; // re-subscribed when the link is back
        }
        let bytes = encode(&[verb.as_bytes(), channel.as_bytes()]);
        self.out_bytes += bytes.len();
        self.sub_out.push_back(bytes);
        self.kick();
    }

    /// Claim (or refresh) `nick` for member `id` with the [`CLAIM`] script.
    fn claim(&mut self, cfg: &RedisConfig, id: u64, nick: &str, then: Then) -> Result<(), Then> {
        let key = nick_key(nick);
        let val = format!("{} {id} {nick}", cfg.node);
        let ttl = cfg.claim_ttl.as_millis().to_string();
        let owner = format!("{} {id} ", cfg.node);
        self.push(
            &[
                b"EVAL",
                CLAIM.as_bytes(),
                b"1",
                key.as_bytes(),
                val.as_bytes(),
                ttl.as_bytes(),
                owner.as_bytes(),
            ],
            then,
        )
    }

    /// Claim again every member's name ([`REFRESH`], in chunks): refreshes
    /// the expiry, and finds the names another node took meanwhile.
    fn refresh_all(&mut self, cfg: &RedisConfig) {
        let held: Vec<(u64, String)> = self
            .members
            .iter()
            .map(|(i, l)| (*i, l.nick.clone()))
            .collect();
        let ttl = cfg.claim_ttl.as_millis().to_string();
        for chunk in held.chunks(REFRESH_CHUNK) {
            let keys: Vec<String> = chunk.iter().map(|(_, n)| nick_key(n)).collect();
            let vals: Vec<String> = chunk
                .iter()
                .map(|(id, n)| format!("{} {id} {n}", cfg.node))
                .collect();
            let count = chunk.len().to_string();
            let mut args: Vec<&[u8]> = vec![b"EVAL", REFRESH.as_bytes(), count.as_bytes()];
            args.extend(keys.iter().map(|k| k.as_bytes()));
            args.extend(vals.iter().map(|v| v.as_bytes()));
            args.push(ttl.as_bytes());
            let _ = self.push(&args, Then::RefreshAll(chunk.to_vec()));
        }
    }

    /// Member `id`'s claim of `nick` was refused: if it still holds that
    /// name here, it loses it (the chat renames it and tells it).
    fn lost(&mut self, id: u64, nick: String) {
        if self.members.get(&id).is_some_and(|l| l.nick == nick) {
            self.stats.names_lost += 1;
            log::info!("redis: nickname {nick} of member {id} is held by another node");
            self.post(Relay::NickLost { id, old: nick });
        }
    }

    fn release(&mut self, cfg: &RedisConfig, id: u64, nick: &str) {
        let key = nick_key(nick);
        let owner = format!("{} {id} ", cfg.node);
        let _ = self.push(
            &[
                b"EVAL",
                RELEASE.as_bytes(),
                b"1",
                key.as_bytes(),
                owner.as_bytes(),
            ],
            Then::Ignore,
        );
    }

    fn user_value(l: &Local) -> String {
        match &l.room {
            Some(r) => format!("{} {r}", l.nick),
            None => l.nick.clone(),
        }
    }

    fn hset(&mut self, cfg: &RedisConfig, id: u64) {
        let Some(l) = self.members.get(&id) else {
            return;
        };
        let v = Self::user_value(l);
        let key = format!("{PREFIX}users:{}", cfg.node);
        let _ = self.push(
            &[
                b"HSET",
                key.as_bytes(),
                id.to_string().as_bytes(),
                v.as_bytes(),
            ],
            Then::Ignore,
        );
    }

    fn lobby_change(&mut self, up: bool) {
        if up {
            self.lobby += 1;
            if self.lobby == 1 {
                self.sub_cmd("SUBSCRIBE", &format!("{PREFIX}lobby"));
            }
        } else {
            self.lobby = self.lobby.saturating_sub(1);
            if self.lobby == 0 {
                self.sub_cmd("UNSUBSCRIBE", &format!("{PREFIX}lobby"));
            }
        }
    }

    /// Member `id` leaves its room (not into the lobby).
    fn leave_room(&mut self, id: u64) -> bool {
        let Some(room) = self.members.get_mut(&id).and_then(|l| l.room.take()) else {
            return false;
        };
        if let Some(n) = self.rooms.get_mut(&room) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.rooms.remove(&room);
                self.room_names.remove(&name_key(&room));
                self.sub_cmd("UNSUBSCRIBE", &room_channel(&room));
            }
        }
        true
    }

    /// The node's own view for `/list` (while Redis is away).
    fn local_roster(&self) -> Vec<Listed> {
        self.members
            .iter()
            .map(|(&id, l)| Listed {
                id,
                nick: l.nick.clone(),
                room: l.room.clone(),
            })
            .collect()
    }

    fn local_rooms(&self) -> Vec<(String, usize)> {
        self.rooms.iter().map(|(k, n)| (k.clone(), *n)).collect()
    }

    /// A command could not be sent or its reply will not come: answer
    /// what waits for it as if Redis were away.
    fn fail(&mut self, then: Then) {
        match then {
            Then::Claim { id, nick } => {
                // Decided locally; re-claimed when the link is back.
                if let Some(l) = self.members.get_mut(&id) {
                    l.nick = nick.clone();
                }
                self.post(Relay::Claimed { id, nick, ok: true });
            }
            Then::Whisper {
                sender,
                text,
                asked,
            } => self.post(Relay::Whispered {
                sender,
                to: None,
                text,
                asked,
            }),
            Then::List {
                asker,
                rooms: false,
            } => self.post(Relay::Listing {
                asker,
                users: self.local_roster(),
            }),
            Then::List { asker, rooms: true } => self.post(Relay::RoomList {
                asker,
                rooms: self.local_rooms(),
            }),
            Then::Ids => self.ids_asked = false,
            Then::Ignore | Then::Refresh { .. } | Then::RefreshAll(_) | Then::Ping(_) => {}
        }
    }
}

/// The Redis backplane of one node (see the module docs).
#[derive(Debug)]
pub struct RedisPlane {
    cfg: RedisConfig,
    /// Shared with the [`Link`].
    node: Arc<Mutex<Node>>,
}

impl RedisPlane {
    /// A node that will connect to `cfg.addr` when its chat service starts.
    pub fn new(cfg: RedisConfig) -> RedisPlane {
        RedisPlane {
            cfg,
            node: Arc::new(Mutex::new(Node::default())),
        }
    }

    fn node(&self) -> MutexGuard<'_, Node> {
        // Only the loop's thread locks it; a panic there ends the worker.
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node's figures so far.
    pub fn stats(&self) -> RedisStats {
        self.node().stats.clone()
    }

    fn ask_ids(&self, n: &mut Node) {
        if !n.ids_asked {
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
    }
}

impl Backplane for RedisPlane {
    fn attach(&self, r: &mut Reactor, _worker: usize, inbox: Remote<Relay>) {
        self.node().inbox = Some(inbox);
        register_metrics(&self.cfg.node, &self.node);
        let link = Link::new(self.cfg.clone(), self.node.clone());
        let (_, kick) = r.add_service_with_remote(link);
        self.node().kick = Some(kick);
    }

    fn next_id(&self) -> u64 {
        let mut n = self.node();
        if n.id_end.saturating_sub(n.next_id) < ID_BLOCK / 2 {
            self.ask_ids(&mut n);
        }
        if n.next_id < n.id_end {
            n.next_id += 1;
            return n.next_id;
        }
        n.fallback += 1;
        FALLBACK_IDS + n.fallback
    }

    fn arrive(&self, _worker: usize, id: u64, nick: &str) -> bool {
        let mut n = self.node();
        n.members.insert(
            id,
            Local {
                nick: nick.to_string(),
                room: None,
            },
        );
        if n.members.len() == 1 {
            n.sub_cmd("SUBSCRIBE", &format!("{PREFIX}all"));
        }
        n.lobby_change(true);
        let _ = n.claim(
            &self.cfg,
            id,
            nick,
            Then::Refresh {
                id,
                nick: nick.to_string(),
            },
        );
        n.hset(&self.cfg, id);
        true
    }

    fn rename(&self, id: u64, nick: &str) -> Answer<bool> {
        let mut n = self.node();
        if !n.members.contains_key(&id) {
            return Answer::Now(false);
        }
        let then = Then::Claim {
            id,
            nick: nick.to_string(),
        };
        match n.claim(&self.cfg, id, nick, then) {
            Ok(()) => Answer::Later,
            Err(_) => {
                // Redis away: decided locally, re-claimed when it is back.
                if let Some(l) = n.members.get_mut(&id) {
                    l.nick = nick.to_string();
                }
                Answer::Now(true)
            }
        }
    }

    fn enter(&self, id: u64, room: &str, max_rooms: usize) -> Result<String, RoomError> {
        let mut n = self.node();
        let key = name_key(room);
        let name = n
            .room_names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| room.to_string());
        if !n.rooms.contains_key(&name) && n.rooms.len() >= max_rooms {
            return Err(RoomError::TooManyRooms);
        }
        if !n.leave_room(id) {
            n.lobby_change(false);
        }
        n.room_names.entry(key).or_insert_with(|| name.clone());
        let count = n.rooms.entry(name.clone()).or_default();
        *count += 1;
        if *count == 1 {
            n.sub_cmd("SUBSCRIBE", &room_channel(&name));
        }
        if let Some(l) = n.members.get_mut(&id) {
            l.room = Some(name.clone());
        }
        n.hset(&self.cfg, id);
        Ok(name)
    }

    fn leave(&self, id: u64) {
        let mut n = self.node();
        if n.leave_room(id) {
            n.lobby_change(true);
            n.hset(&self.cfg, id);
        }
    }

    fn depart(&self, id: u64) {
        let mut n = self.node();
        if !n.leave_room(id) && n.members.contains_key(&id) {
            n.lobby_change(false);
        }
        let Some(l) = n.members.remove(&id) else {
            return;
        };
        if n.members.is_empty() {
            n.sub_cmd("UNSUBSCRIBE", &format!("{PREFIX}all"));
        }
        n.release(&self.cfg, id, &l.nick);
        let key = format!("{PREFIX}users:{}", self.cfg.node);
        let _ = n.push(
            &[b"HDEL", key.as_bytes(), id.to_string().as_bytes()],
            Then::Ignore,
        );
    }

    fn publish(&self, _from: usize, place: Place, msg: Bytes) {
        let mut n = self.node();
        let channel = match &place {
            Place::Room(name) => room_channel(name),
            Place::Lobby => format!("{PREFIX}lobby"),
            Place::All => format!("{PREFIX}all"),
        };
        if !n.up {
            n.stats.undelivered += 1;
            return;
        }
        let mut payload = Vec::with_capacity(self.cfg.node.len() + 1 + msg.len());
        payload.extend_from_slice(self.cfg.node.as_bytes());
        payload.push(b'\n');
        payload.extend_from_slice(&msg);
        match n.push(&[b"PUBLISH", channel.as_bytes(), &payload], Then::Ignore) {
            Ok(()) => n.stats.published += 1,
            Err(_) => {
                n.stats.dropped += 1;
                log::debug!("redis outbox full: message to {channel} dropped");
            }
        }
    }

    fn whisper(&self, _from: usize, req: WhisperReq) -> Answer<Option<String>> {
        let mut n = self.node();
        let key = nick_key(&req.to);
        let chan = format!("{PREFIX}node:");
        let then = Then::Whisper {
            sender: req.sender,
            text: req.text,
            asked: req.to,
        };
        let args: [&[u8]; 7] = [
            b"EVAL",
            WHISPER.as_bytes(),
            b"1",
            key.as_bytes(),
            self.cfg.node.as_bytes(),
            chan.as_bytes(),
            &req.line,
        ];
        match n.push(&args, then) {
            Ok(()) => Answer::Later,
            Err(_) => Answer::Now(None),
        }
    }

    fn reachable(&self) -> bool {
        !self.node().told_down
    }

    fn roster(&self, asker: u64) -> Answer<Vec<Listed>> {
        self.listing(asker, false)
            .map_or(Answer::Later, |n| Answer::Now(n.local_roster()))
    }

    fn rooms(&self, asker: u64) -> Answer<Vec<(String, usize)>> {
        self.listing(asker, true)
            .map_or(Answer::Later, |n| Answer::Now(n.local_rooms()))
    }
}

impl RedisPlane {
    /// Ask for every node's users; the node back (for a local answer) if
    /// Redis is away.
    fn listing(&self, asker: u64, rooms: bool) -> Option<MutexGuard<'_, Node>> {
        let mut n = self.node();
        let set = format!("{PREFIX}nodes");
        let prefix = format!("{PREFIX}users:");
        let args: [&[u8]; 5] = [
            b"EVAL",
            LIST.as_bytes(),
            b"1",
            set.as_bytes(),
            prefix.as_bytes(),
        ];
        match n.push(&args, Then::List { asker, rooms }) {
            Ok(()) => None,
            Err(_) => Some(n),
        }
    }
}

/// Put the node's [`RedisStats`] on the metrics endpoint (as long as the
/// node exists), labelled with its id.
fn register_metrics(node_id: &str, node: &Arc<Mutex<Node>>) {
    use crate::metrics::app::{register, Kind, Sample};
    let weak = Arc::downgrade(node);
    let id = node_id.to_string();
    register(Box::new(move |out: &mut Vec<Sample>| {
        let Some(node) = weak.upgrade() else {
            return false;
        };
        let (st, up) = {
            let n = node.lock().unwrap_or_else(PoisonError::into_inner);
            (n.stats.clone(), n.up)
        };
        let mut add = |name, help, kind, value: f64| {
            out.push(Sample {
                name,
                help,
                kind,
                labels: vec![("node", id.clone())],
                value,
            })
        };
        use Kind::{Counter, Gauge};
        add(
            "netloop_chat_redis_up",
            "1 while Redis answers.",
            Gauge,
            f64::from(u8::from(up)),
        );
        add(
            "netloop_chat_redis_published_total",
            "Messages published to Redis.",
            Counter,
            st.published as f64,
        );
        add(
            "netloop_chat_redis_received_total",
            "Messages from other nodes delivered here.",
            Counter,
            st.received as f64,
        );
        add(
            "netloop_chat_redis_undelivered_total",
            "Messages published while Redis was unreachable (not delivered to other nodes).",
            Counter,
            st.undelivered as f64,
        );
        add(
            "netloop_chat_redis_dropped_total",
            "Messages dropped because the outbox towards Redis was full.",
            Counter,
            st.dropped as f64,
        );
        add(
            "netloop_chat_redis_subscriptions",
            "Channels subscribed now.",
            Gauge,
            st.subscriptions as f64,
        );
        add(
            "netloop_chat_redis_reconnects_total",
            "Redis connections lost or failed.",
            Counter,
            st.reconnects as f64,
        );
        add(
            "netloop_chat_redis_rtt_seconds",
            "Last PING round trip to Redis.",
            Gauge,
            st.rtt_us as f64 / 1e6,
        );
        add(
            "netloop_chat_redis_rtt_max_seconds",
            "Longest PING round trip to Redis.",
            Gauge,
            st.rtt_max_us as f64 / 1e6,
        );
        add(
            "netloop_chat_redis_names_lost_total",
            "Nicknames lost to another node after a partition.",
            Counter,
            st.names_lost as f64,
        );
        true
    }));
}

/// Parse the `/list` script's flat reply.
fn parse_listing(items: &[BytesFrame]) -> Vec<Listed> {
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let [id, v] = pair else { continue };
        let (Some(id), Some(v)) = (frame_str(id), frame_str(v)) else {
            continue;
        };
        let Ok(id) = id.parse::<u64>() else { continue };
        let (nick, room) = match v.split_once(' ') {
            Some((n, r)) => (n, Some(r.to_string())),
            None => (v, None),
        };
        if nick.chars().count() > MAX_NAME_CHARS {
            continue;
        }
        out.push(Listed {
            id,
            nick: nick.to_string(),
            room,
        });
    }
    out.sort_by_key(|l| l.id);
    out
}

/// Rooms and member counts from a listing, one entry per room key.
fn rooms_of(users: &[Listed]) -> Vec<(String, usize)> {
    let mut by_key: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for u in users {
        if let Some(r) = &u.room {
            by_key
                .entry(name_key(r))
                .or_insert_with(|| (r.clone(), 0))
                .1 += 1;
        }
    }
    let mut v: Vec<(String, usize)> = by_key.into_values().collect();
    v.sort();
    v
}

fn frame_str(f: &BytesFrame) -> Option<&str> {
    match f {
        BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

fn frame_bytes(f: &BytesFrame) -> Option<&Bytes> {
    match f {
        BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse_nonsense() {
        let a: RedisAddr = "redis://127.0.0.1:6380/2".parse().unwrap();
        assert_eq!(
            a,
            RedisAddr {
                host: "127.0.0.1".into(),
                port: 6380,
                db: Some(2)
            }
        );
        let a: RedisAddr = "redis://cache".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port, a.db), ("cache", 6379, None));
        let a: RedisAddr = "redis://[::1]:7000".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 7000));
        for bad in [
            "127.0.0.1:6379",
            "redis://",
            "redis://h:x",
            "redis://h:1/x",
            "redis://u:p@h:1",
        ] {
            assert!(bad.parse::<RedisAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn node_ids_are_checked() {
        assert!(validate_node_id("web-1.eu_2").is_ok());
        for bad in ["", "a b", "a\nb", "é", &"x".repeat(65)] {
            assert!(validate_node_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_node_id(&default_node_id()).is_ok());
    }

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        assert_eq!(
            &encode(&[b"PUBLISH", b"ch", b"a\nb"])[..],
            b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$3\r\na\nb\r\n"
        );
    }

    #[test]
    fn listings_parse_and_skip_garbage() {
        let f = |s: &str| BytesFrame::BulkString(Bytes::from(s.to_string()));
        let items = vec![
            f("7"),
            f("alice dev"),
            f("3"),
            f("bob"),
            f("x"),
            f("bad id"),
            f("9"),
            f("carol Dev"),
            f("11"),
        ];
        let users = parse_listing(&items);
        assert_eq!(users.len(), 3);
        assert_eq!(
            (
                users[0].id,
                users[0].nick.as_str(),
                users[0].room.as_deref()
            ),
            (3, "bob", None)
        );
        assert_eq!(users[1].room.as_deref(), Some("dev"));
        assert_eq!(rooms_of(&users), vec![("dev".to_string(), 2)]);
    }

    fn plane(up: bool) -> RedisPlane {
        let p = RedisPlane::new(RedisConfig {
            addr: "redis://127.0.0.1:1".parse().unwrap(),
            node: "n1".into(),
            claim_ttl: DEFAULT_CLAIM_TTL,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
        });
        p.node().up = up;
        p
    }

    /// The subscription commands queued so far, as text, drained.
    fn subs(p: &RedisPlane) -> Vec<String> {
        let mut n = p.node();
        let out: Vec<String> = n
            .sub_out
            .drain(..)
            .map(|b| {
                let t = String::from_utf8_lossy(&b).to_string();
                let parts: Vec<&str> = t.split("\r\n").collect();
                format!("{} {}", parts[2], parts[4])
            })
            .collect();
        out
    }

    #[test]
    fn a_room_is_subscribed_from_its_first_local_member_to_its_last() {
        let p = plane(true);
        assert!(p.arrive(0, 1, "user1"));
        assert!(p.arrive(0, 2, "user2"));
        assert_eq!(
            subs(&p),
            ["SUBSCRIBE netloop:chat:all", "SUBSCRIBE netloop:chat:lobby"]
        );
        assert_eq!(p.enter(1, "Dev", 8), Ok("Dev".into()));
        assert_eq!(p.enter(2, "dev", 8), Ok("Dev".into()));
        assert_eq!(
            subs(&p),
            [
                "SUBSCRIBE netloop:chat:room:dev",
                "UNSUBSCRIBE netloop:chat:lobby"
            ]
        );
        p.leave(1);
        assert_eq!(subs(&p), ["SUBSCRIBE netloop:chat:lobby"]);
        p.depart(2);
        assert_eq!(subs(&p), ["UNSUBSCRIBE netloop:chat:room:dev"]);
        p.depart(1);
        assert_eq!(
            subs(&p),
            [
                "UNSUBSCRIBE netloop:chat:lobby",
                "UNSUBSCRIBE netloop:chat:all"
            ]
        );
        assert_eq!(p.enter(3, "x", 0), Err(RoomError::TooManyRooms));
    }

    #[test]
    fn publishes_are_counted_when_redis_is_away_or_the_outbox_is_full() {
        let p = plane(false);
        p.publish(0, Place::Lobby, Bytes::from_static(b"hi\n"));
        assert_eq!(p.stats().undelivered, 1);
        // Away: a claim is decided locally, listings are local.
        assert!(p.arrive(0, 1, "user1"));
        assert_eq!(p.rename(1, "alice"), Answer::Now(true));
        assert!(matches!(p.roster(1), Answer::Now(v) if v[0].nick == "alice"));
        let p = plane(true);
        let big = Bytes::from(vec![b'x'; 64 << 10]);
        for _ in 0..(MAX_OUTBOX_BYTES / (64 << 10)) + 2 {
            p.publish(0, Place::Lobby, big.clone());
        }
        let st = p.stats();
        assert!(st.dropped >= 1 && st.published >= 60, "{st:?}");
        assert!(p.node().out_bytes <= MAX_OUTBOX_BYTES + (65 << 10));
        assert_eq!(p.rename(9, "bob"), Answer::Now(false), "unknown member");
    }

    #[test]
    fn ids_come_from_blocks_and_fall_back_above_them() {
        let p = plane(true);
        assert_eq!(p.next_id(), FALLBACK_IDS + 1, "no block yet");
        assert!(p.node().ids_asked);
        {
            let mut n = p.node();
            n.next_id = 2000;
            n.id_end = 3000;
        }
        assert_eq!(p.next_id(), 2001);
    }
}
