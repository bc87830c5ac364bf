//! The server's per-client ping schedule and dead-peer detection (sans-IO).
//!
//! **Algorithm.** A client has one deadline at a time; the caller keeps one
//! timer on the wheel armed at [`Liveness::next_deadline`] and, when it fires,
//! calls [`Liveness::poll`] until it returns `None`, then re-arms.
//!
//! * While the client is heard from, a regular ping is due every `interval`,
//!   on a grid that starts at `connect + first_ping_after`. The caller picks
//!   `first_ping_after` with [`stable_offset`], so clients that connected in
//!   one burst are pinged spread over the interval instead of all in the same
//!   millisecond, and a late timer does not move a client's place on the grid
//!   (the next ping is the next grid point after `now`, never a burst).
//! * A reply that is going out anyway may carry the next ping
//!   ([`Liveness::ride_along`]): one `writev` then holds the reply and the
//!   ping, instead of one for the reply now and one for the ping later. The
//!   schedule then follows that client's own rhythm: the next ping is due
//!   `interval + slack` after the reply, so a client that sends every
//!   `interval` (give or take the slack; slack is
//!   [`RIDE_ALONG_SLACK_DIVISOR`]th of the interval) gets each ping with a
//!   reply. To fall into step, the first reply of a client not yet in step
//!   either takes the ping early (when it was due within half an interval)
//!   or pushes it back to `interval + slack` after the reply (when the last
//!   ping went out less than half an interval ago): one gap between pings of
//!   `interval / 2` to `1.5 × interval + slack`, then `interval ± slack`.
//!   A timer ping (the client was later than the slack) drops the client out
//!   of step. Lines that get no reply (`pong`, `heartbeat`) never move pings.
//! * **Any** inbound message calls [`Liveness::seen`] (the tutorial's server
//!   only counted `pong`/`heartbeat`, not the client's own `ping`s).
//! * Once the client has been silent for `timeout`, regular pings stop and up
//!   to [`MAX_URGENT_PINGS`] urgent pings go out, one `interval` apart, the
//!   first at `last_seen + timeout`. If the client is still silent one
//!   interval after the last urgent ping, it is dead.
//!
//! **Worst-case detection time** (last message to destroy):
//! `timeout + MAX_URGENT_PINGS × interval`, exactly, plus at most 1 ms of
//! wheel rounding: 30 s + 3 × 10 s = 60 s with the defaults. It does not
//! depend on where the silence falls between two checks, unlike the seed's
//! shared 10 s sweep, which dropped a silent peer only on the fourth check
//! after its timeout (60-70 s).
//!
//! //! Neither the grid, the offset nor a ride-along moves the silence deadline,
//! which depends only on `last_seen`: the bound holds whatever the offset.
//!
//! `seen` only moves deadlines later, so a timer armed earlier is never late:
//! when it fires early, `poll` returns nothing due and the caller re-arms at
//! the new deadline (the lazy re-arm of Netty's IdleStateHandler). Activity
//! therefore costs a field store, not a timer operation.

use std::time::{Duration, Instant};

/// Urgent pings sent to a silent client before it is declared dead.
pub const MAX_URGENT_PINGS: u32 = 3;

/// The slack of a ride-along is `interval / RIDE_ALONG_SLACK_DIVISOR` (15.6 ms
/// at 1 s): wide enough for a client whose own timer runs a few milliseconds
/// late each round (Node's `setInterval`, a loop that re-arms after sending)
/// to stay in step, narrow enough that the pings stay within 1.6 % of the
/// announced interval.
pub const RIDE_ALONG_SLACK_DIVISOR: u32 = 64;

/// A stable place for client number `n` in an interval: the delay of its
/// first ping after it connects, in `(0, interval]`.
///
/// The offsets follow the golden-ratio sequence (`n × 0.618…` modulo 1), so
/// any run of consecutive clients, such as a burst that connected in the same
/// millisecond, lands evenly over the interval: `k` clients leave gaps of at
/// most about `interval × 2.6 / k`. Client 0 gets the whole interval, the
/// schedule without a spread.
pub fn stable_offset(n: u64, interval: Duration) -> Duration {
    // 2^64 / golden ratio: multiplying wraps modulo 2^64, which is taking the
    // fractional part of n × 0.618… in 64-bit fixed point.
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let frac = n.wrapping_mul(GOLDEN) as u128;
    let early = interval.as_nanos().saturating_mul(frac) >> 64;
    interval.saturating_sub(Duration::from_nanos(early as u64))
}

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
    /// In step with the client's replies (the last ping rode along).
    riding: bool,
}

impl Liveness {
    /// A client connected at `now`; the first regular ping is due
    /// `first_ping_after` later (at least 1 ms, at most one interval), the
    /// next ones every `interval` after that. `interval` and `timeout` are
    /// clamped to at least 1 ms.
    pub fn new(
        now: Instant,
        interval: Duration,
        timeout: Duration,
        first_ping_after: Duration,
    ) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        Liveness {
            interval,
            timeout: timeout.max(Duration::from_millis(1)),
            last_seen: now,
            next_ping: now + first_ping_after.clamp(Duration::from_millis(1), interval),
            urgent_sent: 0,
            dead: false,
            riding: false,
        }
    }

    /// The client sent something at `now`.
    pub fn seen(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        self.last_seen = self.last_seen.max(now);
        if self.urgent_sent > 0 {
            // Back to the regular schedule, at the client's place on the grid.
            self.urgent_sent = 0;
            self.riding = false;
            self.next_ping_after(now);
        }
    }

    /// Moves `next_ping` to the first grid point after `now`, skipping the
    /// ones a late loop (or a silence) missed: one ping, not a burst.
    fn next_ping_after(&mut self, now: Instant) {
        if self.next_ping > now {
            return;
        }
        let behind = now.saturating_duration_since(self.next_ping).as_nanos();
        let steps = behind / self.interval.as_nanos() + 1;
        let ahead = steps.saturating_mul(self.interval.as_nanos());
        self.next_ping += Duration::from_nanos(u64::try_from(ahead).unwrap_or(u64::MAX));
    }

    /// A reply to this client is about to be written at `now`: should a ping
    /// go with it? In step, yes when the ping is due within twice the slack;
    /// not yet in step, yes when it is due within half an interval, and
    /// otherwise the ping is pushed back to follow this reply (see the
    /// [module documentation](self)). Either way the next ping is then due
    /// `interval + slack` after `now`. Never while urgent pings are running
    /// (they keep their own schedule) or once dead.
    pub fn ride_along(&mut self, now: Instant) -> bool {
        if self.dead || self.urgent_sent > 0 {
            return false;
        }
        let slack = self.interval / RIDE_ALONG_SLACK_DIVISOR;
        let until = self.next_ping.saturating_duration_since(now);
        let send = if self.riding {
            until <= slack * 2
        } else {
            until <= self.interval / 2
        };
        if send || !self.riding {
            self.riding = true;
            self.next_ping = now + self.interval + slack;
        }
        send
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
            // Sent by the timer: the client did not reply within the slack.
            self.riding = false;
            self.next_ping_after(now);
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
        let mut l = Liveness::new(t0, MS * 100, MS * 300, MS * 100);
        let seen: Vec<u64> = (0..10).map(|i| i * 100 + 5).collect();
        let got = run(&mut l, t0, 950, &seen);
        let pings: Vec<u64> = got.iter().map(|(ms, _)| *ms).collect();
        assert_eq!(pings, vec![100, 200, 300, 400, 500, 600, 700, 800, 900]);
        assert!(got.iter().all(|(_, d)| *d == Due::Ping));
    }

    #[test]
    fn silent_client_gets_three_urgent_pings_then_dies_at_timeout_plus_3_intervals() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 100, MS * 300, MS * 100);
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
        let mut l = Liveness::new(t0, MS * 100, MS * 300, MS * 100);
        let got = run(&mut l, t0, 600, &[350]);
        assert!(got.contains(&(300, Due::UrgentPing(1))));
        assert!(!got.iter().any(|(_, d)| *d == Due::Dead));
        // Back on its grid (100, 200, ...): the next point after 350.
        assert!(got.contains(&(400, Due::Ping)));
        assert_eq!(l.missed(), 0);
    }

    #[test]
    fn detection_time_does_not_depend_on_phase() {
        for offset in [1u64, 37, 99] {
            let t0 = Instant::now();
            let mut l = Liveness::new(t0, MS * 100, MS * 300, MS * 100);
            let got = run(&mut l, t0, 2000, &[offset]);
            let dead = got.iter().find(|(_, d)| *d == Due::Dead).map(|(ms, _)| *ms);
            assert_eq!(dead, Some(offset + 300 + 3 * 100));
        }
    }

    #[test]
    fn deadline_is_never_after_what_poll_needs() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 10, MS * 30, MS * 10);
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

    #[test]
    fn offsets_spread_a_burst_over_the_interval() {
        let interval = Duration::from_secs(1);
        for n in 0..10_000u64 {
            let o = stable_offset(n, interval);
            assert!(o > Duration::ZERO && o <= interval, "{n}: {o:?}");
            assert_eq!(o, stable_offset(n, interval), "stable");
        }
        assert_eq!(stable_offset(0, interval), interval);
        // 10,000 clients from one burst: every 10 ms slot of the second gets
        // 100 ± a few, not all of them in one.
        let mut slots = [0u32; 100];
        for n in 0..10_000u64 {
            let ms = stable_offset(n, interval).as_millis().min(999) as usize;
            slots[ms / 10] += 1;
        }
        let (lo, hi) = (slots.iter().min(), slots.iter().max());
        assert!(lo >= Some(&95) && hi <= Some(&105), "{lo:?} {hi:?}");
    }

    #[test]
    fn a_late_loop_keeps_the_clients_place_on_the_grid() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 100, MS * 1000, MS * 37);
        assert_eq!(l.next_deadline(), t0 + MS * 37);
        l.seen(t0 + MS * 30);
        // The loop wakes 250 ms late: one ping, and the next is back at 37 mod 100.
        assert_eq!(l.poll(t0 + MS * 287), Some(Due::Ping));
        assert_eq!(l.poll(t0 + MS * 287), None);
        assert_eq!(l.next_deadline(), t0 + MS * 337);
    }

    #[test]
    fn detection_bound_holds_for_every_offset_and_ride_along() {
        // Dead exactly at last_seen + timeout + 3 × interval, whatever the
        // client's offset and whether its last message carried a ping.
        for n in 0..200u64 {
            for ride in [false, true] {
                let t0 = Instant::now();
                let first = stable_offset(n, MS * 100);
                let mut l = Liveness::new(t0, MS * 100, MS * 300, first);
                let last = 50 + n % 100;
                let mut dead = None;
                for ms in 0..=1200u64 {
                    let now = t0 + MS * ms as u32;
                    if ms == last {
                        l.seen(now);
                        if ride {
                            l.ride_along(now);
                        }
                    }
                    if l.next_deadline() <= now {
                        while let Some(d) = l.poll(now) {
                            if d == Due::Dead {
                                dead = Some(ms);
                            }
                        }
                    }
                }
                assert_eq!(
                    dead,
                    Some(last + 300 + 3 * 100),
                    "offset {first:?} ride {ride}"
                );
            }
        }
    }

    #[test]
    fn ride_along_falls_into_step_then_follows_the_clients_rhythm() {
        let t0 = Instant::now();
        // Slack = 1000 / 64 = 15.625 ms.
        let mut l = Liveness::new(t0, MS * 1000, MS * 5000, MS * 1000);
        // Not in step, the ping due in 600 ms: pushed back behind this reply.
        assert!(!l.ride_along(t0 + MS * 400));
        assert_eq!(l.next_deadline(), t0 + MS * 1400 + MS / 64 * 1000);
        assert_eq!(l.poll(t0 + MS * 1399), None);
        // A client beating every 1,005 ms gets every ping with a reply.
        for k in 1..50u32 {
            let at = t0 + MS * 400 + MS * 1005 * k;
            assert_eq!(l.poll(at - MS), None, "no timer ping before beat {k}");
            l.seen(at);
            assert!(l.ride_along(at), "beat {k}");
        }
        // In step, a reply 40 ms before the ping does not take it.
        let at = t0 + MS * 400 + MS * 1005 * 49;
        assert!(!l.ride_along(at + MS * 1000 - MS * 40 + MS * 15));

        // Not in step, the ping due within half an interval: taken early.
        let mut l = Liveness::new(t0, MS * 1000, MS * 5000, MS * 1000);
        assert!(l.ride_along(t0 + MS * 700));
        // Late beyond the slack: the timer sends it and the client is out of step.
        assert_eq!(l.poll(t0 + MS * 1716), Some(Due::Ping));
        assert!(!l.ride_along(t0 + MS * 1740), "pushed back, not sent twice");

        // Urgent pings are never taken early.
        let mut l = Liveness::new(t0, MS * 100, MS * 300, MS * 100);
        assert_eq!(l.poll(t0 + MS * 100), Some(Due::Ping));
        assert_eq!(l.poll(t0 + MS * 200), Some(Due::Ping));
        assert_eq!(l.poll(t0 + MS * 300), Some(Due::UrgentPing(1)));
        assert!(!l.ride_along(t0 + MS * 399));
    }

    #[test]
    fn a_chatty_client_does_not_get_more_pings() {
        // Replies every 30 ms for 20 s: still about one ping per interval.
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, MS * 1000, MS * 5000, MS * 300);
        let mut sent = Vec::new();
        for ms in (0..20_000u64).step_by(10) {
            let now = t0 + MS * ms as u32;
            if ms % 30 == 0 {
                l.seen(now);
                if l.ride_along(now) {
                    sent.push(ms);
                }
            }
            while let Some(d) = l.poll(now) {
                assert_eq!(d, Due::Ping);
                sent.push(ms);
            }
        }
        assert!((19..=21).contains(&sent.len()), "{sent:?}");
        for w in sent.windows(2).skip(1) {
            let gap = w[1] - w[0];
            assert!((960..=1020).contains(&gap), "{sent:?}");
        }
    }
}
