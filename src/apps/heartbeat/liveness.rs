//! The server's per-client ping schedule and dead-peer detection (sans-IO).
//!
//! **Algorithm.** A client has one deadline at a time; the caller keeps one
//! timer on the wheel armed at [`Liveness::next_deadline`] and, when it fires,
//! calls [`Liveness::poll`] until it returns `None`, then re-arms.
//!
//! * While the client is heard from, a regular ping is due every `interval`.
//! * **Any** inbound message calls [`Liveness::seen`] (D9.2: the seed only
//!   counted `pong`/`heartbeat`, not the client's own `ping`s).
//! * Once the client has been silent for `timeout`, regular pings stop and up
//!   to [`MAX_URGENT_PINGS`] urgent pings go out, one `interval` apart, the
//!   first at `last_seen + timeout`. If the client is still silent one
//!   interval after the last urgent ping, it is dead.
//!
//! **Worst-case detection time** (last message to destroy):
//! `timeout + MAX_URGENT_PINGS × interval`, exactly, plus at most 1 ms of
//! wheel rounding: 30 s + 3 × 10 s = 60 s with the defaults. It does not
//! depend on where the silence falls between two checks, unlike the seed's
//! shared 10 s sweep (60-70 s, D9.2).
//!
//! `seen` only moves deadlines later, so a timer armed earlier is never late:
//! when it fires early, `poll` returns nothing due and the caller re-arms at
//! the new deadline (the lazy re-arm of Netty's IdleStateHandler). Activity
//! therefore costs a field store, not a timer operation.

use std::time::{Duration, Instant};

/// Urgent pings sent to a silent client before it is declared dead.
pub const MAX_URGENT_PINGS: u32 = 3;

/// What is due now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// A regular ping.
    Ping,
    /// The `n`-th urgent ping (1-based): the client has been silent for the timeout.
    UrgentPing(u32),
    /// The client stayed silent through every urgent ping: destroy it.
    Dead,
}

/// One client's liveness state.
#[derive(Clone, Debug)]
pub struct Liveness {
    interval: Duration,
    timeout: Duration,
    last_seen: Instant,
    next_ping: Instant,
    urgent_sent: u32,
    dead: bool,
}

impl Liveness {
    /// A client connected at `now`; the first regular ping is due one
    /// `interval` later. `interval` and `timeout` are clamped to at least 1 ms.
    pub fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        Liveness {
            interval,
            timeout: timeout.max(Duration::from_millis(1)),
            last_seen: now,
            next_ping: now + interval,
            urgent_sent: 0,
            dead: false,
        }
    }

    /// The client sent something at `now`.
    pub fn seen(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        self.last_seen = self.last_seen.max(now);
        if self.urgent_sent > 0 {
            // Back to the regular schedule.
            self.urgent_sent = 0;
            self.next_ping = now + self.interval;
        }
    }

    /// Urgent pings sent in the current silence (the seed's `missedHeartbeats`).
    pub fn missed(&self) -> u32 {
        self.urgent_sent
    }

    /// Has the client been heard from within the timeout (`isAlive`)?
    pub fn is_alive(&self) -> bool {
        self.urgent_sent == 0 && !self.dead
    }

    /// When the client was last heard from.
    pub fn last_seen(&self) -> Instant {
        self.last_seen
    }

    fn silence_deadline(&self) -> Instant {
        self.last_seen + self.timeout + self.interval * self.urgent_sent
    }

    /// The next instant at which [`Liveness::poll`] has something to do.
    pub fn next_deadline(&self) -> Instant {
        if self.urgent_sent > 0 {
            self.silence_deadline()
        } else {
            self.silence_deadline().min(self.next_ping)
        }
    }

    /// What is due at `now`, if anything. Call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Due> {
        if self.dead {
            return None;
        }
        if now >= self.silence_deadline() {
            if self.urgent_sent < MAX_URGENT_PINGS {
                self.urgent_sent += 1;
                return Some(Due::UrgentPing(self.urgent_sent));
            }
            self.dead = true;
            return Some(Due::Dead);
        }
        if self.urgent_sent == 0 && now >= self.next_ping {
            // Schedule from now: a late loop does not cause a burst.
            self.next_ping = now + self.interval;
            return Some(Due::Ping);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Drive `l` tick by tick (1 ms) until `end`, collecting (ms, due).
    fn run(l: &mut Liveness, t0: Instant, end_ms: u64, seen_at: &[u64]) -> Vec<(u64, Due)> {
        let mut out = Vec::new();
        for ms in 0..=end_ms {
            let now = t0 + MS * ms as u32;
            if seen_at.contains(&ms) {
                l.seen(now);
            }
            while let Some(d) = l.poll(now) {
                out.push((ms, d));
            }
        }
        out
    }

    #[test]
    fn regular_pings_every_interval_while_heard() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 100, MS * 300);
        let seen: Vec<u64> = (0..10).map(|i| i * 100 + 5).collect();
        let got = run(&mut l, t0, 950, &seen);
        let pings: Vec<u64> = got.iter().map(|(ms, _)| *ms).collect();
        assert_eq!(pings, vec![100, 200, 300, 400, 500, 600, 700, 800, 900]);
        assert!(got.iter().all(|(_, d)| *d == Due::Ping));
    }

    #[test]
    fn silent_client_gets_three_urgent_pings_then_dies_at_timeout_plus_3_intervals() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 100, MS * 300);
        let got = run(&mut l, t0, 1000, &[]);
        assert_eq!(
            got,
            vec![
                (100, Due::Ping),
                (200, Due::Ping),
                (300, Due::UrgentPing(1)),
                (400, Due::UrgentPing(2)),
                (500, Due::UrgentPing(3)),
                (600, Due::Dead),
            ]
        );
        assert!(!l.is_alive());
    }

    #[test]
    fn any_message_during_urgent_phase_revives() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 100, MS * 300);
        let got = run(&mut l, t0, 600, &[350]);
        assert!(got.contains(&(300, Due::UrgentPing(1))));
        assert!(!got.iter().any(|(_, d)| *d == Due::Dead));
        assert!(got.contains(&(450, Due::Ping)));
        assert_eq!(l.missed(), 0);
    }

    #[test]
    fn detection_time_does_not_depend_on_phase() {
        for offset in [1u64, 37, 99] {
            let t0 = Instant::now();
            let mut l = Liveness::new(t0, MS * 100, MS * 300);
            let got = run(&mut l, t0, 2000, &[offset]);
            let dead = got.iter().find(|(_, d)| *d == Due::Dead).map(|(ms, _)| *ms);
            assert_eq!(dead, Some(offset + 300 + 3 * 100));
        }
    }

    #[test]
    fn deadline_is_never_after_what_poll_needs() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 10, MS * 30);
        assert_eq!(l.next_deadline(), t0 + MS * 10);
        assert_eq!(l.poll(t0 + MS * 10), Some(Due::Ping));
        l.seen(t0 + MS * 15);
        assert_eq!(l.next_deadline(), t0 + MS * 20);
        assert_eq!(l.poll(t0 + MS * 20), Some(Due::Ping));
        assert_eq!(l.next_deadline(), t0 + MS * 30);
        // Silence deadline: 15 + 30 = 45, after the ping at 40.
        assert_eq!(l.poll(t0 + MS * 30), Some(Due::Ping));
        assert_eq!(l.next_deadline(), t0 + MS * 40);
        assert_eq!(l.poll(t0 + MS * 40), Some(Due::Ping));
        assert_eq!(l.next_deadline(), t0 + MS * 45);
    }
}
