//! The application interface: one trait whose methods are Node's events.
//!
//! Every method receives `&mut Reactor`, so a callback can write to, end or
//! destroy *any* connection, arm timers, listen or connect. The reactor never
//! calls back into the handler from inside one of those operations: events
//! they cause (a `drain`, a `close`) are queued and delivered once the current
//! callback has returned, so a callback never re-enters the handler.
//!
//! Order guarantees, as in Node:
//! * `connection` (server side) or `connect` then `ready` (client side) come
//!   before any `data` of that connection;
//! * `end` comes after the last `data`;
//! * `error`, if any, comes before `close`, and `close(had_error)` comes
//!   exactly once per connection, last. After `close` the id is dead.

use super::timers::TimerId;
use super::token::{ConnId, ServerId};
use super::Reactor;
use crate::net::error::NetError;
use bytes::BytesMut;
use std::any::Any;
use std::net::SocketAddr;

/// Callbacks for everything the loop observes. Only [`Handler::on_data`] is
/// required; the rest default to doing nothing.
#[allow(unused_variables)]
pub trait Handler {
    /// A server started listening on `addr` (`'listening'`).
    fn on_listening(&mut self, r: &mut Reactor, server: ServerId, addr: SocketAddr) {}
    /// A server accepted `conn` (`'connection'`).
    fn on_connection(&mut self, r: &mut Reactor, server: ServerId, conn: ConnId) {}
    /// A connection over `max_connections` was accepted and closed (`'drop'`).
    fn on_drop(&mut self, r: &mut Reactor, server: ServerId, peer: SocketAddr) {}
    /// A server-level error (accept failures that are not per-connection).
    fn on_server_error(&mut self, r: &mut Reactor, server: ServerId, err: &NetError) {}
    /// A closed server's last connection has closed (`'close'` of `net.Server`).
    fn on_server_close(&mut self, r: &mut Reactor, server: ServerId) {}

    /// A host name was resolved for an outbound connection (`'lookup'`).
    fn on_lookup(&mut self, r: &mut Reactor, conn: ConnId, result: Result<SocketAddr, &NetError>) {}
    /// An outbound connection is established (`'connect'`).
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {}
    /// Right after `connect`: the socket may be written (`'ready'`).
    fn on_ready(&mut self, r: &mut Reactor, conn: ConnId) {}

    /// Bytes arrived (`'data'`). `data` is the connection's read buffer:
    /// consume what you use (`split_to`, `split`, `advance`) and leave a
    /// partial message in it for the next read. Whatever is left stays there;
    /// the buffer's memory is released when it is empty.
    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut);
    /// The peer sent FIN (`'end'`). Without `allow_half_open` the reactor
    /// ends our side right after this returns.
    fn on_end(&mut self, r: &mut Reactor, conn: ConnId) {}
    /// The write queue fell below the low-water mark after `write()` had
    /// returned false (`'drain'`).
    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {}
    /// The connection was inactive for its idle timeout (`'timeout'`). The
    /// connection is not closed: that is the application's choice.
    fn on_timeout(&mut self, r: &mut Reactor, conn: ConnId) {}
    /// An error occurred; `close(true)` follows (`'error'`).
    fn on_error(&mut self, r: &mut Reactor, conn: ConnId, err: &NetError) {}
    /// The connection is fully closed (`'close'`). Its id is dead afterwards.
    fn on_close(&mut self, r: &mut Reactor, conn: ConnId, had_error: bool) {}

    /// A timer armed with `set_timeout`/`set_interval` fired.
    fn on_timer(&mut self, r: &mut Reactor, timer: TimerId, tag: u64) {}
    /// A callback queued with `set_immediate` runs (check phase).
    fn on_immediate(&mut self, r: &mut Reactor, tag: u64) {}
    /// Graceful shutdown begins (a signal, or `Reactor::shutdown`). Servers
    /// have stopped accepting; write goodbyes now. Every connection is ended
    /// right after this returns and destroyed when the grace period expires.
    fn on_shutdown(&mut self, r: &mut Reactor) {}
    /// A message posted from another thread through a [`super::Remote`].
    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn Any + Send>) {}
    /// A watched descriptor (see `Reactor::watch_fd`) became readable.
    fn on_fd_readable(&mut self, r: &mut Reactor, tag: u64) {}
}
