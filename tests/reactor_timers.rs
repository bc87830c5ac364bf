//! Application timers, immediates and their order across the loop's phases.

mod util;

use netloop::{BytesMut, ConnId, Exit, Handler, Reactor, TimerId};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Order {
    seen: Vec<String>,
    interval_hits: u32,
    started: Option<Instant>,
    fired_at: Vec<(u64, Duration)>,
}

impl Handler for Order {
    fn on_data(&mut self, _r: &mut Reactor, _c: ConnId, _d: &mut BytesMut) {}
    fn on_timer(&mut self, r: &mut Reactor, t: TimerId, tag: u64) {
        let at = self.started.unwrap().elapsed();
        self.fired_at.push((tag, at));
        match tag {
            1 => {
                self.seen.push("timeout".into());
                r.set_immediate(10);
            }
            2 => {
                self.interval_hits += 1;
                if self.interval_hits == 3 {
                    assert!(r.clear_timer(t));
                    assert!(!r.clear_timer(t), "second clear is a no-op");
                }
            }
            3 => panic!("a cleared timer fired"),
            _ => self.seen.push(format!("timer{tag}")),
        }
    }
    fn on_immediate(&mut self, r: &mut Reactor, tag: u64) {
        self.seen.push(format!("immediate{tag}"));
        if tag == 10 {
            // Queued from inside the check phase: runs next iteration, after
            // the timers of that iteration.
            r.set_immediate(11);
        }
    }
}

#[test]
fn timers_and_immediates_run_in_order_and_never_early() {
    // Taken before the loop exists: timers armed before `run` count from the
    // loop's cached time, read when it was created (libuv's `uv_now`), so a
    // start taken after `new()` could be late by however long the test thread
    // was descheduled in between, and a timer would look early against it.
    let started = Instant::now();
    let mut r = Reactor::new().unwrap();
    let mut h = Order {
        started: Some(started),
        ..Default::default()
    };
    r.set_timeout(Duration::from_millis(30), 1);
    r.set_interval(Duration::from_millis(10), 2);
    let cancelled = r.set_timeout(Duration::from_millis(5), 3);
    assert!(r.clear_timer(cancelled));
    r.set_timeout(Duration::from_millis(60), 4);
    r.set_immediate(0);
    let exit = r.run_with(&mut h).unwrap();
    assert_eq!(exit, Exit::Idle, "the loop ends when nothing is left");
    assert_eq!(
        h.seen,
        [
            "immediate0",
            "timeout",
            "immediate10",
            "immediate11",
            "timer4"
        ]
    );
    assert_eq!(h.interval_hits, 3);
    for (tag, at) in &h.fired_at {
        let due = match tag {
            1 => 30,
            4 => 60,
            _ => 10,
        };
        assert!(
            *at >= Duration::from_millis(due),
            "timer {tag} fired early at {at:?}"
        );
    }
}

#[test]
fn zero_delay_fires_on_a_later_iteration() {
    struct Z(u32);
    impl Handler for Z {
        fn on_data(&mut self, _r: &mut Reactor, _c: ConnId, _d: &mut BytesMut) {}
        fn on_timer(&mut self, r: &mut Reactor, _t: TimerId, _tag: u64) {
            self.0 += 1;
            if self.0 < 5 {
                r.set_timeout(Duration::ZERO, 0);
            }
        }
    }
    let mut r = Reactor::new().unwrap();
    r.set_timeout(Duration::ZERO, 0);
    let mut z = Z(0);
    r.run_with(&mut z).unwrap();
    assert_eq!(z.0, 5);
    assert!(
        r.stats().iterations >= 5,
        "each re-armed timer waits for a new iteration"
    );
}
