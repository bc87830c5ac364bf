//! Timers on the loop: what the wheel holds and what happens when it fires.
//!
//! The wheel ([`crate::timer`]) stores a [`TimerEntry`] per armed timer. Some
//! belong to services (`Cx::set_timeout`, `Cx::set_interval`), the rest to the
//! loop itself: idle timeouts, connect timeouts, the accept backoff after
//! EMFILE, and the grace period of a shutdown.
//!
//! Idle timeouts are lazy: reads and writes only store `last_activity`.
//! When the timer fires, the loop compares with `last_activity` and either
//! emits `timeout` or re-arms for the remainder (Netty's IdleStateHandler).
//! After a `timeout` the timer stays disarmed until the next activity, as in
//! Node.

use super::loopstats::{Callback, Site};
use super::token::{Key, Kind};
use super::Reactor;
use crate::reactor::conn::state::State;
use crate::reactor::net::error::{ErrorCode, NetError};
use crate::timer::{Tick, TimerKey};
use std::time::Duration;

/// `d` in whole milliseconds, rounded up (a timer never fires early), and
/// saturated: a duration too long for a tick (a `--idle-timeout` of
/// centuries) means "never" instead of wrapping around to "now".
pub(crate) fn ms_ceil(d: Duration) -> Tick {
    Tick::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(Tick::MAX)
}

/// What an armed timer is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimerEntry {
    /// A service's timer (`Cx::set_timeout`/`Cx::set_interval`), by id.
    App(u64),
    /// A connection's idle timeout.
    Idle(Key),
    /// An outbound connection's connect timeout.
    Connect(Key),
    /// A TLS connection's handshake timeout.
    TlsHandshake(Key),
    /// End of a listener's accept pause after EMFILE/ENFILE.
    AcceptBackoff(Key),
    /// End of a graceful shutdown's grace period.
    Grace,
}

/// Handle of a service's timer, for [`crate::Cx::clear_timer`].
///
/// The low 32 bits are the timer's slot in the loop's slab of service
/// timers, the high 32 bits a serial number that makes a stale id (of a
/// timer that fired or was cleared, whose slot was reused) miss instead of
/// clearing its successor; the same generation tag connections carry in
/// their tokens (mio #219).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(pub(crate) u64);

impl TimerId {
    fn slot(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }
}

/// An application timer's bookkeeping.
#[derive(Debug)]
pub(crate) struct AppTimer {
    /// Its whole id, to tell it from an earlier timer in the same slot.
    pub(crate) id: u64,
    pub(crate) key: TimerKey,
    pub(crate) due: Tick,
    pub(crate) interval: Option<Duration>,
    /// The service that armed it and the slot of its tag.
    pub(crate) owner: (Key, u32),
}

impl Reactor {
    /// Arm a timer of service `svc` whose tag is in `slot`.
    pub(crate) fn arm_service_timer(
        &mut self,
        svc: Key,
        slot: u32,
        after: Duration,
        interval: Option<Duration>,
    ) -> TimerId {
        // A slab, not a map keyed by id: arming and clearing are an index
        // each (a hash map here was 2-4 % of a heartbeat server's CPU, which
        // moves a timer per client and round).
        // The slot fits the id's low 32 bits: 2^32 armed timers would be a
        // slab of some 200 GB, so memory runs out first.
        let index = self.app_timers.vacant_key() as u64 & u64::from(u32::MAX);
        let serial = self.next_timer_id & u64::from(u32::MAX);
        self.next_timer_id = self.next_timer_id.wrapping_add(1);
        let id = serial << 32 | index;
        let due = self.deadline_after(after);
        let key = self.wheel.insert(due, TimerEntry::App(id));
        self.app_timers.insert(AppTimer {
            id,
            key,
            due,
            interval,
            owner: (svc, slot),
        });
        self.stats.timers_armed += 1;
        TimerId(id)
    }

    /// Clear a timer of service `svc`: the slot of its tag, or `None` if it
    /// is not armed or not `svc`'s.
    pub(crate) fn clear_service_timer(&mut self, svc: Key, id: TimerId) -> Option<u32> {
        let t = self.app_timer(id)?;
        let (owner, slot) = t.owner;
        if owner != svc {
            return None;
        }
        let key = t.key;
        self.app_timers.remove(id.slot());
        self.wheel.cancel(key);
        self.stats.timers_cancelled += 1;
        Some(slot)
    }

    /// The armed service timer `id`, if it is still armed.
    fn app_timer(&self, id: TimerId) -> Option<&AppTimer> {
        self.app_timers.get(id.slot()).filter(|t| t.id == id.0)
    }

    pub(crate) fn arm(&mut self, after: Duration, entry: TimerEntry) -> TimerKey {
        let at = self.deadline_after(after);
        self.wheel.insert(at, entry)
    }

    /// Phase 1: fire every timer due at the cached `now`.
    pub(crate) fn run_timers(&mut self) -> u64 {
        let fired0 = self.stats.timers_fired;
        while let Some((_, due, entry)) = self.wheel.poll_due(self.now_tick) {
            self.stats.timers_fired += 1;
            // Every timer's lateness, the loop's own included (idle,
            // connect, backoff, grace): the loop delay a plain server has.
            let deadline = self.epoch + Duration::from_millis(due);
            self.observe
                .timer_fired(self.now.saturating_duration_since(deadline));
            match entry {
                TimerEntry::App(id) => self.fire_app(id),
                TimerEntry::Idle(key) => self.fire_idle(key),
                TimerEntry::Connect(key) => {
                    if let Some(c) = self.conns.get_mut(key) {
                        c.connect_timer = None;
                        if c.state == State::Connecting {
                            let err =
                                NetError::new(ErrorCode::TimedOut, "connect", "connect timed out");
                            self.close_conn(key, Some(err));
                        }
                    }
                }
                TimerEntry::TlsHandshake(key) => self.tls_handshake_expired(key),
                TimerEntry::AcceptBackoff(key) => {
                    if let Some(s) = self.servers.get_mut(key) {
                        s.accept_paused = false;
                        if s.listener.is_some() {
                            self.park(Kind::Listener, key);
                        }
                    }
                }
                TimerEntry::Grace => self.grace_expired(),
            }
        }
        self.stats.timers_fired - fired0
    }

    fn fire_app(&mut self, id: u64) {
        let Some(t) = self.app_timer(TimerId(id)) else {
            return;
        };
        let next = t.interval.map(|every| self.deadline_after(every));
        let Some(t) = self.app_timers.get_mut(TimerId(id).slot()) else {
            return;
        };
        let (svc, slot) = t.owner;
        // Lateness against the exact deadline, not the ms tick: the loop's
        // delay as Node's monitorEventLoopDelay reports it.
        let deadline = self.epoch + Duration::from_millis(t.due);
        self.stats.app_timers_fired += 1;
        self.stats
            .record_late(self.now.saturating_duration_since(deadline));
        match next {
            Some(at) => {
                t.due = at;
                t.key = self.wheel.insert(at, TimerEntry::App(id));
            }
            None => {
                self.app_timers.remove(TimerId(id).slot());
            }
        }
        let repeats = next.is_some();
        self.with_host(svc, Site::of(Callback::Timer), |host, r| {
            host.timer(r, TimerId(id), slot, repeats)
        });
    }

    fn fire_idle(&mut self, key: Key) {
        let now: Tick = self.now_tick;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.idle_timer = None;
        if c.idle_ms == 0 || c.state == State::Closed {
            return;
        }
        let due = c.last_activity.saturating_add(u64::from(c.idle_ms));
        if now >= due {
            self.emit_conn(key, super::service::ConnEvent::Timeout);
        } else {
            // Activity since arming: re-arm for the remainder only.
            c.idle_timer = Some(self.wheel.insert(due, TimerEntry::Idle(key)));
        }
    }
}
