//! Signals and graceful shutdown.
//!
//! SIGINT and SIGTERM arrive on the loop as an ordinary readable source
//! (signal-hook-mio's self-pipe), so the handler runs between callbacks, not
//! in signal context. The first signal starts a graceful shutdown:
//!
//! 1. every server takes in what its accept queue holds (closing a listener
//!    would reset those connections, whose clients saw the handshake
//!    complete) and stops accepting: its listener is closed;
//! 2. `on_shutdown` lets the application say goodbye;
//! 3. every connection is `end()`ed: its queue flushes, then FIN;
//! 4. a grace timer destroys whatever is still open when it expires;
//! 5. `run` returns [`Exit::Graceful`] once no connection is left.
//!
//! A second signal during the drain makes `run` return [`Exit::Forced`] at once.

use super::loopstats::{Callback, Site};
use super::timers::TimerEntry;
use super::token::{ConnId, Key, Kind};
use super::{Exit, Pending, Reactor, SIGNAL_INDEX};
use crate::reactor::conn::state::State;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::io;
use std::time::Duration;

impl Reactor {
    /// Handle SIGINT and SIGTERM on this loop: the first starts a graceful
    /// shutdown with `grace`, the second exits at once.
    pub fn handle_signals(&mut self, grace: Duration) -> io::Result<()> {
        let mut signals = signal_hook_mio::v1_0::Signals::new([SIGINT, SIGTERM])?;
        self.poll.registry().register(
            &mut signals,
            Key {
                index: SIGNAL_INDEX,
                gen: 0,
            }
            .token(Kind::System),
            mio::Interest::READABLE,
        )?;
        self.signals = Some(signals);
        self.signal_grace = grace;
        Ok(())
    }

    pub(crate) fn handle_signals_event(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let got: Vec<i32> = signals.pending().collect();
        for sig in got {
            if self.draining {
                log::warn!("second signal {sig}: exiting now");
                self.stop = Some(Exit::Forced(sig));
            } else {
                log::info!(
                    "signal {sig}: graceful shutdown (grace {:?})",
                    self.signal_grace
                );
                self.shutdown(self.signal_grace);
            }
        }
    }

    /// Start a graceful shutdown (see the module docs). Idempotent.
    pub fn shutdown(&mut self, grace: Duration) {
        if self.draining {
            return;
        }
        self.draining = true;
        let servers: Vec<Key> = self.servers.keys().collect();
        for key in servers {
            self.accept_queued(key);
            self.close_server(super::token::ServerId(key));
        }
        self.arm(grace, TimerEntry::Grace);
        self.pending.push_back(Pending::Shutdown);
    }

    /// Is a graceful shutdown under way?
    pub fn is_shutting_down(&self) -> bool {
        self.draining
    }

    /// Steps 2 and 3: the application's goodbye, then `end()` everywhere.
    pub(crate) fn begin_drain(&mut self) {
        let services: Vec<_> = self.services.keys().collect();
        for svc in services {
            self.with_host(svc, Site::of(Callback::Shutdown), |host, r| {
                host.shutdown(r)
            });
        }
        let keys: Vec<Key> = self.conns.keys().collect();
        for key in keys {
            match self.conns.get(key).map(|c| c.state) {
                Some(State::Connecting) => self.close_conn(key, None),
                Some(State::Closed) | None => {}
                Some(_) => {
                    let _ = self.end(ConnId(key));
                    // Keep reading so the peer's FIN is seen and the socket
                    // closes cleanly instead of waiting out the grace period.
                    self.resume(ConnId(key));
                }
            }
        }
    }

    /// Step 4: the grace period is over.
    pub(crate) fn grace_expired(&mut self) {
        let keys: Vec<Key> = self.conns.keys().collect();
        if !keys.is_empty() {
            log::warn!("grace period over: destroying {} connection(s)", keys.len());
        }
        for key in keys {
            self.close_conn(key, None);
        }
    }
}
