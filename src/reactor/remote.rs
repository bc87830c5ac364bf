//! Waking the loop from other threads (libuv's `uv_async_send`).
//!
//! Work that cannot run on the loop thread (name resolution, file I/O) runs on
//! a helper thread, which sends its result through a channel and then calls
//! `mio::Waker::wake`. Wakes coalesce (mio #1470), so the waker only says
//! "look at your inbox"; the channel carries every message, and the loop
//! drains it completely on each wake.

use super::loopstats::{Callback, Site};
use super::token::Key;
use super::Reactor;
use crate::reactor::net::error::NetError;
use mio::Waker;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// A message for the loop.
#[derive(Debug)]
pub(crate) enum Inbox {
    /// A name lookup finished for an outbound connection.
    Lookup {
        key: Key,
        result: Result<SocketAddr, NetError>,
        /// The connection's `local_address`, carried through the lookup.
        local: Option<std::net::IpAddr>,
    },
    /// A message waits in the channel of this service.
    Service(super::token::Key),
    /// Start a graceful shutdown with this grace ([`LoopHandle::shutdown`]).
    Shutdown(std::time::Duration),
    /// Return from `run` at once, as a second signal does
    /// ([`LoopHandle::force_exit`]).
    ForceExit(i32),
}

/// A cloneable, `Send` handle that stops a loop from another thread: how a
/// process running one loop per core hands the signal it received once to
/// every loop (`--workers N`). Both calls return false if the loop is gone.
#[derive(Clone, Debug)]
pub struct LoopHandle {
    waker: LoopWaker,
}

impl LoopHandle {
    /// Start the loop's graceful shutdown ([`Reactor::shutdown`]) with
    /// `grace`, as the first SIGINT/SIGTERM does.
    pub fn shutdown(&self, grace: std::time::Duration) -> bool {
        self.waker.send(Inbox::Shutdown(grace))
    }

    /// Make `run` return [`super::Exit::Forced`]`(sig)` at once, as a second
    /// signal does.
    pub fn force_exit(&self, sig: i32) -> bool {
        self.waker.send(Inbox::ForceExit(sig))
    }
}

/// The loop's own way in from a helper thread (the resolver): a message
/// for the inbox, then a wake. Services use their typed
/// [`super::service::Remote`].
#[derive(Clone, Debug)]
pub(crate) struct LoopWaker {
    tx: Sender<Inbox>,
    waker: Arc<Waker>,
}

impl LoopWaker {
    /// Queue `msg` and wake the loop. False if the loop is gone.
    pub(crate) fn send(&self, msg: Inbox) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        self.waker.wake().is_ok()
    }
}

impl Reactor {
    /// A [`LoopWaker`] for a helper thread of this loop.
    pub(crate) fn loop_waker(&self) -> LoopWaker {
        LoopWaker {
            tx: self.inbox_tx.clone(),
            waker: self.waker.clone(),
        }
    }

    /// A [`LoopHandle`] to stop this loop from another thread.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            waker: self.loop_waker(),
        }
    }

    pub(crate) fn drain_inbox(&mut self) {
        self.stats.wakeups += 1;
        while let Ok(msg) = self.inbox_rx.try_recv() {
            self.stats.wakeup_messages += 1;
            match msg {
                Inbox::Lookup { key, result, local } => self.lookup_done(key, result, local),
                Inbox::Service(svc) => {
                    self.with_host(svc, Site::of(Callback::Message), |host, r| host.messages(r));
                }
                Inbox::Shutdown(grace) => self.shutdown(grace),
                Inbox::ForceExit(sig) => {
                    log::warn!("forced exit (signal {sig})");
                    self.stop = Some(super::Exit::Forced(sig));
                }
            }
        }
    }
}
