//! Services: a handler per server and per outbound connection, with typed
//! per-connection state, typed timers and typed messages.
//!
//! Node's `net.createServer(listener)` gives each server its own listener;
//! libuv gives each handle its own callbacks and `data`. Here a [`Service`]
//! is that listener: [`Reactor::serve`] starts a server whose connections
//! deliver their events to it, [`Reactor::connect_with`] makes an outbound
//! connection owned by one, and a service's callbacks can open more of
//! either with [`Cx::listen`] and [`Cx::connect`]. Several services run in
//! one loop side by side and never see each other's events.
//!
//! # What a service owns
//!
//! * **Per-connection state** of its chosen type [`Service::Conn`], created by
//!   [`Service::on_connection`] (or given to [`Cx::connect`]) and handed to
//!   every callback of that connection as `&mut`; [`Service::on_close`] gets
//!   it back by value. The loop stores it beside the connection: no
//!   `HashMap<ConnId, _>` in the application and no "is it still there"
//!   guard.
//! * **Timers, immediates and watched descriptors** keyed by its own
//!   [`Service::Tag`]: two services cannot confuse each other's timers,
//!   whatever values they choose.
//! * **Messages** of its own type [`Service::Message`], posted from any
//!   thread through a [`Remote`] (from [`Cx::remote`]).
//!
//! # The callback boundary
//!
//! Every callback runs through one function of the loop, which lends the
//! service its state, runs the callback, takes the state back and then
//! delivers what the callback caused (a `listening`, a `drain`, a shutdown)
//! the same way. A callback is never re-entered: a `write` that fails, a
//! `destroy`, a `connect` only queue events.
//!
//! # Order of a connection's events (as in Node)
//!
//! `connection` (server side) or `connect` (client side) before any `data`;
//! `end` after the last `data`; `error`, if any, before `close`; `close`
//! exactly once, last. After `close` the id is dead.

use super::timers::TimerId;
use super::token::{ConnId, Key, ServerId};
use super::Reactor;
use crate::reactor::net::error::NetError;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::mpsc;
use std::time::Duration;

/// Slot value meaning "this connection has no state": its service refused
/// it in `on_connection`, so its remaining events (only `close`) are dropped.
pub(crate) const NO_STATE: u32 = u32::MAX;

/// The handler of a server or of outbound connections: Node's
/// `connection` listener plus the socket's listeners, with typed state.
///
/// Only [`Service::on_data`] is required. A service that accepts
/// connections implements [`Service::on_connection`] too (the default
/// refuses every connection, which suits a service that only connects).
#[allow(unused_variables)]
pub trait Service: Sized + 'static {
    /// Per-connection state, created in `on_connection` or given to
    /// `connect`, lent to every callback of the connection.
    type Conn: 'static;
    /// What names this service's timers, immediates and watched
    /// descriptors: an enum of the service's own, a `ConnId`, `()`.
    type Tag: Clone + 'static;
    /// What other threads post to this service ([`Remote::post`]); `()`
    /// when nothing does.
    type Message: Send + 'static;

    /// A short name for the loop's figures (busy time by service, slow
    /// callbacks): `"chat"`, `"metrics"`. The default is the type's name.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// The service was added to the loop: start timers or connections.
    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {}
    /// A server of this service is listening on `addr` (`'listening'`).
    fn on_listening(&mut self, cx: &mut Cx<'_, Self>, server: ServerId, addr: SocketAddr) {}
    /// A server accepted `conn` (`'connection'`). Return its state, or
    /// `None` to refuse it: the connection is destroyed and none of its
    /// events reach the service. The default refuses, and says so in the
    /// log: a service that listens must implement this.
    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        server: ServerId,
        conn: ConnId,
    ) -> Option<Self::Conn> {
        log::warn!(
            "{server}: {} does not implement on_connection; refusing {conn}",
            std::any::type_name::<Self>()
        );
        None
    }
    /// A connection over `max_connections` was accepted and closed (`'drop'`).
    fn on_drop(&mut self, cx: &mut Cx<'_, Self>, server: ServerId, peer: SocketAddr) {}
    /// A server-level error (accept failures that are not per-connection).
    fn on_server_error(&mut self, cx: &mut Cx<'_, Self>, server: ServerId, err: &NetError) {}
    /// A closed server's last connection has closed (`'close'` of `net.Server`).
    fn on_server_close(&mut self, cx: &mut Cx<'_, Self>, server: ServerId) {}

    /// A host name was resolved for an outbound connection (`'lookup'`).
    fn on_lookup(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Self::Conn,
        result: Result<SocketAddr, &NetError>,
    ) {
    }
    /// An outbound connection is established and may be written (Node's
    /// `'connect'` and `'ready'`, which it emits back to back).
    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {}
    /// Bytes arrived (`'data'`). `data` is the connection's read buffer:
    /// consume what you use (`split_to`, `advance`, `clear`) and leave a
    /// partial message in it for the next read.
    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Self::Conn,
        data: &mut BytesMut,
    );
    /// The peer sent FIN (`'end'`). Without `allow_half_open` the loop ends
    /// our side right after this returns.
    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {}
    /// The write queue emptied below the high-water mark after `write()` had
    /// returned false (`'drain'`).
    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {}
    /// The connection was inactive for its idle timeout (`'timeout'`); it
    /// is not closed: that is the service's choice.
    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Self::Conn) {}
    /// An error occurred; `close(true)` follows (`'error'`).
    fn on_error(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Self::Conn,
        err: &NetError,
    ) {
    }
    /// The connection is fully closed (`'close'`); its state comes back.
    fn on_close(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: Self::Conn, had_error: bool) {}

    /// A timer armed with [`Cx::set_timeout`] or [`Cx::set_interval`] fired.
    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, timer: TimerId, tag: Self::Tag) {}
    /// An immediate queued with [`Cx::set_immediate`] runs (check phase).
    fn on_immediate(&mut self, cx: &mut Cx<'_, Self>, tag: Self::Tag) {}
    /// A descriptor watched with [`Cx::watch_fd`] became readable.
    fn on_fd_readable(&mut self, cx: &mut Cx<'_, Self>, tag: Self::Tag) {}
    /// A message posted through a [`Remote`] of this service.
    fn on_message(&mut self, cx: &mut Cx<'_, Self>, msg: Self::Message) {}
    /// Graceful shutdown begins (a signal, or [`Reactor::shutdown`]):
    /// servers have stopped accepting; write goodbyes now. Every connection
    /// is ended right after and destroyed when the grace period expires.
    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {}

    /// An event of the connection whose state is `conn` comes next: start
    /// fetching into the cache what its callback will read beyond `conn`
    /// (an entry of the service's own table, say) with
    /// [`crate::reactor::prefetch_lines`]. A hint, called outside any
    /// callback: it must not change anything. The loop fetches its own
    /// entry and the state slot itself.
    fn prefetch(&self, conn: &Self::Conn) {}
}

/// Identifies a service added to a loop ([`Reactor::add_service`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceId(pub(crate) Key);

/// What a service's callback can do: everything on the [`Reactor`] (it
/// dereferences to it: write, end, pause any connection), plus what
/// belongs to this service: its timers, immediates, connections, servers,
/// watched descriptors and its [`Remote`].
pub struct Cx<'a, S: Service> {
    pub(crate) r: &'a mut Reactor,
    pub(crate) own: &'a mut dyn Own<S>,
}

impl<S: Service> Deref for Cx<'_, S> {
    type Target = Reactor;
    fn deref(&self) -> &Reactor {
        self.r
    }
}

impl<S: Service> DerefMut for Cx<'_, S> {
    fn deref_mut(&mut self) -> &mut Reactor {
        self.r
    }
}

impl<S: Service> Cx<'_, S> {
    /// This service.
    pub fn service(&self) -> ServiceId {
        ServiceId(self.own.key())
    }

    /// The loop itself (what `Deref` gives, spelled out).
    pub fn reactor(&mut self) -> &mut Reactor {
        self.r
    }

    /// Node's `setTimeout`: [`Service::on_timer`] gets `tag` once, `after`
    /// from now (rounded up to the ms, at least 1 ms).
    pub fn set_timeout(&mut self, after: Duration, tag: S::Tag) -> TimerId {
        self.own.arm(self.r, after, None, tag)
    }

    /// Node's `setInterval`: `on_timer` gets `tag` every `every` until
    /// cleared; the next run is scheduled from the time it fired.
    pub fn set_interval(&mut self, every: Duration, tag: S::Tag) -> TimerId {
        self.own.arm(self.r, every, Some(every), tag)
    }

    /// Cancel one of this service's timers. False if it had already fired
    /// (one-shot), was cleared, or belongs to another service.
    pub fn clear_timer(&mut self, id: TimerId) -> bool {
        self.own.clear(self.r, id)
    }

    /// Node's `setImmediate`: `on_immediate(tag)` runs in the check phase.
    pub fn set_immediate(&mut self, tag: S::Tag) {
        self.own.immediate(self.r, tag)
    }

    /// `net.connect({host, port})` for this service, with the new
    /// connection's state. Events follow: `lookup` (host names only), then
    /// `connect`, or `error` and `close(true)`.
    pub fn connect(
        &mut self,
        host: &str,
        port: u16,
        opts: super::config::ConnectOptions,
        st: S::Conn,
    ) -> ConnId {
        let id = self.r.connect_unowned(host, port, opts);
        self.own.adopt(self.r, id.0, st);
        id
    }

    /// Listen on another address for this service (`server.listen`).
    pub fn listen(&mut self, opts: super::config::ListenOptions) -> Result<ServerId, NetError> {
        let key = self.own.key();
        self.r.listen_owned(opts, key)
    }

    /// Watch a descriptor for readability (edge-triggered):
    /// `on_fd_readable(tag)` fires. The caller makes it non-blocking and
    /// reads it until `WouldBlock`. It keeps the loop alive until
    /// [`Reactor::unwatch_fd`].
    pub fn watch_fd(&mut self, fd: std::os::fd::RawFd, tag: S::Tag) -> std::io::Result<u64> {
        self.own.watch(self.r, fd, tag)
    }

    /// The state of `conn`, one of this service's connections, from a
    /// callback that was not handed it: a timer, a message, an immediate,
    /// the shutdown, `on_connection` or `on_close` of another connection.
    /// `None` if `conn` is gone or belongs to another service, and inside a
    /// connection's own callbacks (`data`, `end`, `drain`...), which get
    /// their state as `st` and cannot borrow the others' at the same time.
    /// (Not to be confused with [`Reactor::state`], the connection's
    /// lifecycle state.)
    pub fn conn_state(&mut self, conn: ConnId) -> Option<&mut S::Conn> {
        self.own.state(self.r, conn)
    }

    /// [`Cx::conn_state`] together with the loop, to write to or end the
    /// connection while its state is borrowed.
    pub fn conn_state_and_loop(&mut self, conn: ConnId) -> Option<(&mut S::Conn, &mut Reactor)> {
        let st = self.own.state(self.r, conn)?;
        Some((st, &mut *self.r))
    }

    /// A handle for other threads to post [`Service::Message`]s to this
    /// service.
    pub fn remote(&self) -> Remote<S::Message> {
        self.own.remote(self.r)
    }

    /// [`Cx::lift`] that also lets the inner service reach its
    /// connections' states ([`Cx::conn_state`]) through `state`, which finds the
    /// inner state in this service's (`None` where there is none yet).
    pub fn lift_with_state<T, R>(
        &mut self,
        tag: fn(T::Tag) -> S::Tag,
        conn: fn(T::Conn) -> S::Conn,
        state: fn(&mut S::Conn) -> Option<&mut T::Conn>,
        f: impl FnOnce(&mut Cx<'_, T>) -> R,
    ) -> R
    where
        T: Service<Message = S::Message>,
    {
        let mut lifted = Lifted::<S, T> {
            outer: &mut *self.own,
            tag,
            conn,
            state: Some(state),
        };
        let mut cx = Cx::<T> {
            r: &mut *self.r,
            own: &mut lifted,
        };
        f(&mut cx)
    }

    /// Call an inner service's callback from a wrapper (an access guard, a
    /// logger): `f` gets a context of the inner service `T`, whose tags and
    /// states are stored as this service's through `tag` and `conn`.
    pub fn lift<T, R>(
        &mut self,
        tag: fn(T::Tag) -> S::Tag,
        conn: fn(T::Conn) -> S::Conn,
        f: impl FnOnce(&mut Cx<'_, T>) -> R,
    ) -> R
    where
        T: Service<Message = S::Message>,
    {
        let mut lifted = Lifted::<S, T> {
            outer: &mut *self.own,
            tag,
            conn,
            state: None,
        };
        let mut cx = Cx::<T> {
            r: &mut *self.r,
            own: &mut lifted,
        };
        f(&mut cx)
    }
}

/// The typed parts of a service that its context reaches: where its tags
/// and new connections' states are stored. Implemented by the loop's
/// record of a service, and by [`Cx::lift`]'s adapter for wrappers.
pub(crate) trait Own<S: Service> {
    fn key(&self) -> Key;
    fn arm(
        &mut self,
        r: &mut Reactor,
        after: Duration,
        every: Option<Duration>,
        tag: S::Tag,
    ) -> TimerId;
    fn clear(&mut self, r: &mut Reactor, id: TimerId) -> bool;
    fn immediate(&mut self, r: &mut Reactor, tag: S::Tag);
    fn adopt(&mut self, r: &mut Reactor, conn: Key, st: S::Conn);
    fn watch(
        &mut self,
        r: &mut Reactor,
        fd: std::os::fd::RawFd,
        tag: S::Tag,
    ) -> std::io::Result<u64>;
    fn remote(&self, r: &Reactor) -> Remote<S::Message>;
    fn state(&mut self, r: &Reactor, conn: ConnId) -> Option<&mut S::Conn>;
}

/// Finds an inner service's connection state in the outer service's.
type Project<S, T> = fn(&mut <S as Service>::Conn) -> Option<&mut <T as Service>::Conn>;

struct Lifted<'a, S: Service, T: Service> {
    outer: &'a mut dyn Own<S>,
    tag: fn(T::Tag) -> S::Tag,
    conn: fn(T::Conn) -> S::Conn,
    state: Option<Project<S, T>>,
}

impl<S: Service, T: Service<Message = S::Message>> Own<T> for Lifted<'_, S, T> {
    fn key(&self) -> Key {
        self.outer.key()
    }
    fn arm(
        &mut self,
        r: &mut Reactor,
        after: Duration,
        every: Option<Duration>,
        tag: T::Tag,
    ) -> TimerId {
        self.outer.arm(r, after, every, (self.tag)(tag))
    }
    fn clear(&mut self, r: &mut Reactor, id: TimerId) -> bool {
        self.outer.clear(r, id)
    }
    fn immediate(&mut self, r: &mut Reactor, tag: T::Tag) {
        self.outer.immediate(r, (self.tag)(tag))
    }
    fn adopt(&mut self, r: &mut Reactor, conn: Key, st: T::Conn) {
        self.outer.adopt(r, conn, (self.conn)(st))
    }
    fn watch(
        &mut self,
        r: &mut Reactor,
        fd: std::os::fd::RawFd,
        tag: T::Tag,
    ) -> std::io::Result<u64> {
        self.outer.watch(r, fd, (self.tag)(tag))
    }
    fn remote(&self, r: &Reactor) -> Remote<T::Message> {
        self.outer.remote(r)
    }
    fn state(&mut self, r: &Reactor, conn: ConnId) -> Option<&mut T::Conn> {
        let project = self.state?;
        project(self.outer.state(r, conn)?)
    }
}

/// A cloneable, `Send` handle that posts typed messages to one service on
/// its loop's thread (libuv's `uv_async_send` with a payload).
///
/// Wakes coalesce (mio #1470), so the waker only says "look at your
/// inbox"; the channel carries every message and the loop drains it on each
/// wake.
pub struct Remote<M> {
    pub(crate) tx: mpsc::Sender<M>,
    pub(crate) inbox: mpsc::Sender<super::remote::Inbox>,
    pub(crate) waker: std::sync::Arc<mio::Waker>,
    pub(crate) service: Key,
}

impl<M> Clone for Remote<M> {
    fn clone(&self) -> Self {
        Remote {
            tx: self.tx.clone(),
            inbox: self.inbox.clone(),
            waker: self.waker.clone(),
            service: self.service,
        }
    }
}

impl<M> std::fmt::Debug for Remote<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Remote")
    }
}

impl<M: Send> Remote<M> {
    /// Deliver `msg` to the service's `on_message`. False if the loop (or
    /// the service) is gone.
    pub fn post(&self, msg: M) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        if self
            .inbox
            .send(super::remote::Inbox::Service(self.service))
            .is_err()
        {
            return false;
        }
        self.waker.wake().is_ok()
    }
}

/// What the loop stores per service, type-erased: one method per kind of
/// event, each lending the service its typed state for the call.
pub(crate) trait Host {
    fn name(&self) -> &'static str;
    fn accept(&mut self, r: &mut Reactor, server: ServerId, conn: ConnId) -> u32;
    fn conn_event(&mut self, r: &mut Reactor, conn: ConnId, slot: u32, ev: ConnEvent<'_>);
    fn close(&mut self, r: &mut Reactor, conn: ConnId, slot: u32, had_error: bool);
    fn server_event(&mut self, r: &mut Reactor, server: ServerId, ev: ServerEvent<'_>);
    fn timer(&mut self, r: &mut Reactor, id: TimerId, slot: u32, repeats: bool);
    fn immediate(&mut self, r: &mut Reactor, slot: u32);
    fn fd_readable(&mut self, r: &mut Reactor, slot: u32);
    fn forget_tag(&mut self, slot: u32);
    /// Start fetching connection state `slot` into the cache (a hint).
    fn prefetch_slot(&self, slot: u32);
    /// Let the service fetch what the state in `slot` refers to (a hint:
    /// [`Service::prefetch`]).
    fn prefetch_state(&self, slot: u32);
    fn messages(&mut self, r: &mut Reactor);
    fn shutdown(&mut self, r: &mut Reactor);
}

/// A connection event, as the loop hands it to a [`Host`].
pub(crate) enum ConnEvent<'a> {
    Lookup(Result<SocketAddr, &'a NetError>),
    Connect,
    Data(&'a mut BytesMut),
    End,
    Drain,
    Timeout,
    Error(&'a NetError),
}

impl ConnEvent<'_> {
    /// Which callback this event runs.
    pub(crate) fn callback(&self) -> super::loopstats::Callback {
        use super::loopstats::Callback;
        match self {
            ConnEvent::Lookup(_) => Callback::Lookup,
            ConnEvent::Connect => Callback::Connect,
            ConnEvent::Data(_) => Callback::Data,
            ConnEvent::End => Callback::End,
            ConnEvent::Drain => Callback::Drain,
            ConnEvent::Timeout => Callback::Timeout,
            ConnEvent::Error(_) => Callback::Error,
        }
    }
}

/// A server event, as the loop hands it to a [`Host`].
pub(crate) enum ServerEvent<'a> {
    Listening(SocketAddr),
    Drop(SocketAddr),
    Error(&'a NetError),
    Close,
}

/// The states of a service's connections: a vector of slots and a free
/// list. (A `slab::Slab` entry is at least a `usize` and a tag, 16 bytes even
/// for a `()` state; here a `()` state costs one byte, so an idle connection
/// of a stateless service stays small.)
pub(crate) struct States<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for States<T> {
    fn default() -> Self {
        States {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> States<T> {
    fn insert(&mut self, v: T) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(v);
                i as usize
            }
            None => {
                self.slots.push(Some(v));
                self.slots.len() - 1
            }
        }
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i)?.as_ref()
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i)?.as_mut()
    }

    fn prefetch(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            super::prefetch::lines_of(s, 1);
        }
    }

    fn try_remove(&mut self, i: usize) -> Option<T> {
        let v = self.slots.get_mut(i)?.take()?;
        self.free.push(i as u32);
        Some(v)
    }
}

/// A service with its typed storage.
pub(crate) struct Hosted<S: Service> {
    pub(crate) service: S,
    pub(crate) states: States<S::Conn>,
    pub(crate) own: Parts<S>,
}

/// The parts a context reaches while a connection's state is lent out.
pub(crate) struct Parts<S: Service> {
    pub(crate) key: Key,
    pub(crate) tags: slab::Slab<S::Tag>,
    /// States of connections made inside a callback, stored when it returns
    /// (the state slab may be lent out during the callback).
    pub(crate) adopted: Vec<(Key, S::Conn)>,
    pub(crate) tx: mpsc::Sender<S::Message>,
    pub(crate) rx: mpsc::Receiver<S::Message>,
}

impl<S: Service> Hosted<S> {
    pub(crate) fn new(service: S, key: Key) -> Hosted<S> {
        let (tx, rx) = mpsc::channel();
        Hosted {
            service,
            states: States::default(),
            own: Parts {
                key,
                tags: slab::Slab::new(),
                adopted: Vec::new(),
                tx,
                rx,
            },
        }
    }

    /// A [`Remote`] to this service.
    pub(crate) fn remote(&self, r: &Reactor) -> Remote<S::Message> {
        self.own.remote(r)
    }

    /// Store the states of connections made during the last callback and
    /// tell the loop where they are.
    fn settle(&mut self, r: &mut Reactor) {
        for (conn, st) in self.own.adopted.drain(..) {
            let slot = self.states.insert(st) as u32;
            r.set_owner(conn, self.own.key, slot);
        }
    }

    /// Run `f` with the service and a context (no connection state lent).
    pub(crate) fn call(&mut self, r: &mut Reactor, f: impl FnOnce(&mut S, &mut Cx<'_, S>)) {
        let mut view = View {
            parts: &mut self.own,
            states: Some(&mut self.states),
        };
        let mut cx = Cx { r, own: &mut view };
        f(&mut self.service, &mut cx);
        self.settle(r);
    }
}

/// What a context reaches: the service's parts, and its connections'
/// states unless one of them is lent to the running callback.
pub(crate) struct View<'a, S: Service> {
    pub(crate) parts: &'a mut Parts<S>,
    pub(crate) states: Option<&'a mut States<S::Conn>>,
}

impl<S: Service> Own<S> for View<'_, S> {
    fn key(&self) -> Key {
        self.parts.key
    }
    fn arm(
        &mut self,
        r: &mut Reactor,
        after: Duration,
        every: Option<Duration>,
        tag: S::Tag,
    ) -> TimerId {
        self.parts.arm(r, after, every, tag)
    }
    fn clear(&mut self, r: &mut Reactor, id: TimerId) -> bool {
        self.parts.clear(r, id)
    }
    fn immediate(&mut self, r: &mut Reactor, tag: S::Tag) {
        self.parts.immediate(r, tag)
    }
    fn adopt(&mut self, r: &mut Reactor, conn: Key, st: S::Conn) {
        self.parts.adopt(r, conn, st)
    }
    fn watch(
        &mut self,
        r: &mut Reactor,
        fd: std::os::fd::RawFd,
        tag: S::Tag,
    ) -> std::io::Result<u64> {
        self.parts.watch(r, fd, tag)
    }
    fn remote(&self, r: &Reactor) -> Remote<S::Message> {
        self.parts.remote(r)
    }
    fn state(&mut self, r: &Reactor, conn: ConnId) -> Option<&mut S::Conn> {
        let owner = r.conns.get(conn.0)?.owner?;
        if owner.service != self.parts.key {
            return None;
        }
        self.states.as_mut()?.get_mut(owner.slot as usize)
    }
}

impl<S: Service> Parts<S> {
    fn arm(
        &mut self,
        r: &mut Reactor,
        after: Duration,
        every: Option<Duration>,
        tag: S::Tag,
    ) -> TimerId {
        let slot = self.tags.insert(tag) as u32;
        r.arm_service_timer(self.key, slot, after, every)
    }
    fn clear(&mut self, r: &mut Reactor, id: TimerId) -> bool {
        match r.clear_service_timer(self.key, id) {
            Some(slot) => {
                self.tags.try_remove(slot as usize);
                true
            }
            None => false,
        }
    }
    fn immediate(&mut self, r: &mut Reactor, tag: S::Tag) {
        let slot = self.tags.insert(tag) as u32;
        r.immediates.push_back(super::Immediate(self.key, slot));
    }
    fn adopt(&mut self, _r: &mut Reactor, conn: Key, st: S::Conn) {
        self.adopted.push((conn, st));
    }
    fn watch(
        &mut self,
        r: &mut Reactor,
        fd: std::os::fd::RawFd,
        tag: S::Tag,
    ) -> std::io::Result<u64> {
        let slot = self.tags.insert(tag) as u32;
        let res = r.watch_target(fd, super::Target(self.key, slot));
        if res.is_err() {
            self.tags.try_remove(slot as usize);
        }
        res
    }
    fn remote(&self, r: &Reactor) -> Remote<S::Message> {
        Remote {
            tx: self.tx.clone(),
            inbox: r.inbox_tx.clone(),
            waker: r.waker.clone(),
            service: self.key,
        }
    }
}

impl<S: Service> Host for Hosted<S> {
    fn name(&self) -> &'static str {
        self.service.name()
    }

    fn accept(&mut self, r: &mut Reactor, server: ServerId, conn: ConnId) -> u32 {
        let mut view = View {
            parts: &mut self.own,
            states: Some(&mut self.states),
        };
        let mut cx = Cx { r, own: &mut view };
        let st = self.service.on_connection(&mut cx, server, conn);
        let slot = match st {
            Some(st) => self.states.insert(st) as u32,
            None => NO_STATE,
        };
        self.settle(r);
        slot
    }

    fn conn_event(&mut self, r: &mut Reactor, conn: ConnId, slot: u32, ev: ConnEvent<'_>) {
        let Some(st) = self.states.get_mut(slot as usize) else {
            return;
        };
        let mut view = View {
            parts: &mut self.own,
            states: None,
        };
        let mut cx = Cx { r, own: &mut view };
        let s = &mut self.service;
        match ev {
            ConnEvent::Data(data) => s.on_data(&mut cx, conn, st, data),
            ConnEvent::Lookup(res) => s.on_lookup(&mut cx, conn, st, res),
            ConnEvent::Connect => s.on_connect(&mut cx, conn, st),
            ConnEvent::End => s.on_end(&mut cx, conn, st),
            ConnEvent::Drain => s.on_drain(&mut cx, conn, st),
            ConnEvent::Timeout => s.on_timeout(&mut cx, conn, st),
            ConnEvent::Error(e) => s.on_error(&mut cx, conn, st, e),
        }
        if !self.own.adopted.is_empty() {
            self.settle(r);
        }
    }

    fn close(&mut self, r: &mut Reactor, conn: ConnId, slot: u32, had_error: bool) {
        let Some(st) = self.states.try_remove(slot as usize) else {
            return;
        };
        self.call(r, |s, cx| s.on_close(cx, conn, st, had_error));
    }

    fn server_event(&mut self, r: &mut Reactor, server: ServerId, ev: ServerEvent<'_>) {
        self.call(r, |s, cx| match ev {
            ServerEvent::Listening(addr) => s.on_listening(cx, server, addr),
            ServerEvent::Drop(peer) => s.on_drop(cx, server, peer),
            ServerEvent::Error(e) => s.on_server_error(cx, server, e),
            ServerEvent::Close => s.on_server_close(cx, server),
        });
    }

    fn timer(&mut self, r: &mut Reactor, id: TimerId, slot: u32, repeats: bool) {
        let tag = if repeats {
            self.own.tags.get(slot as usize).cloned()
        } else {
            self.own.tags.try_remove(slot as usize)
        };
        if let Some(tag) = tag {
            self.call(r, |s, cx| s.on_timer(cx, id, tag));
        }
    }

    fn immediate(&mut self, r: &mut Reactor, slot: u32) {
        if let Some(tag) = self.own.tags.try_remove(slot as usize) {
            self.call(r, |s, cx| s.on_immediate(cx, tag));
        }
    }

    fn fd_readable(&mut self, r: &mut Reactor, slot: u32) {
        if let Some(tag) = self.own.tags.get(slot as usize).cloned() {
            self.call(r, |s, cx| s.on_fd_readable(cx, tag));
        }
    }

    fn forget_tag(&mut self, slot: u32) {
        self.own.tags.try_remove(slot as usize);
    }

    fn prefetch_slot(&self, slot: u32) {
        self.states.prefetch(slot as usize);
    }

    fn prefetch_state(&self, slot: u32) {
        if let Some(st) = self.states.get(slot as usize) {
            self.service.prefetch(st);
        }
    }

    fn messages(&mut self, r: &mut Reactor) {
        while let Ok(msg) = self.own.rx.try_recv() {
            self.call(r, |s, cx| s.on_message(cx, msg));
        }
    }

    fn shutdown(&mut self, r: &mut Reactor) {
        self.call(r, |s, cx| s.on_shutdown(cx));
    }
}
