//! Waking the loop from other threads (libuv's `uv_async_send`).
//!
//! Work that cannot run on the loop thread (name resolution, file I/O) runs on
//! a helper thread, which sends its result through a channel and then calls
//! `mio::Waker::wake`. Wakes coalesce (mio #1470), so the waker only says
//! "look at your inbox"; the channel carries every message, and the loop
//! drains it completely on each wake.

use super::token::Key;
use super::{Handler, Reactor};
use crate::net::error::NetError;
use mio::Waker;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// A message for the loop.
pub(crate) enum Inbox {
    /// A name lookup finished for an outbound connection.
    Lookup {
        key: Key,
        result: Result<SocketAddr, NetError>,
        /// The connection's `local_address`, carried through the lookup.
        local: Option<std::net::IpAddr>,
    },
    /// An application message (`Handler::on_message`).
    App(Box<dyn Any + Send>),
    /// A message waits in the channel of this service.
    Service(super::token::Key),
}

/// A cloneable, `Send` handle that posts messages to the loop from any thread.
#[derive(Clone)]
pub struct Remote {
    tx: Sender<Inbox>,
    waker: Arc<Waker>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Remote")
    }
}

impl Remote {
    /// Deliver `msg` to `Handler::on_message` on the loop thread. Returns
    /// false if the loop is gone.
    pub fn post(&self, msg: Box<dyn Any + Send>) -> bool {
        self.send(Inbox::App(msg))
    }

    pub(crate) fn send(&self, msg: Inbox) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        self.waker.wake().is_ok()
    }
}

impl Reactor {
    /// A handle for other threads to post messages to this loop.
    pub fn remote(&self) -> Remote {
        Remote {
            tx: self.inbox_tx.clone(),
            waker: self.waker.clone(),
        }
    }

    pub(crate) fn drain_inbox<H: Handler>(&mut self, h: &mut H) {
        self.stats.wakeups += 1;
        while let Ok(msg) = self.inbox_rx.try_recv() {
            self.stats.wakeup_messages += 1;
            match msg {
                Inbox::Lookup { key, result, local } => self.lookup_done(h, key, result, local),
                Inbox::App(m) => h.on_message(self, m),
                Inbox::Service(svc) => {
                    self.with_host_raw(svc, |host, r| host.messages(r));
                }
            }
            self.deliver_pending(h);
        }
    }
}
