//! Application timers, immediates and their order across the loop's phases.

use netloop::{BytesMut, ConnId, Cx, Exit, Reactor, Service, TimerId};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The timers and immediates of the ordering test.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Tag {
    /// 30 ms one-shot; queues an immediate from the timers phase.
    Timeout,
    /// 10 ms interval, cleared on its third run.
    Interval,
    /// Cleared before it is due: must never fire.
    Cancelled,
    /// 60 ms one-shot, after everything else.
    Late,
    /// An immediate and its number.
    Immediate(u32),
}

#[derive(Default)]
struct Seen {
    seen: Vec<String>,
    interval_hits: u32,
    fired_at: Vec<(Tag, Duration)>,
}

struct Order {
    started: Instant,
    out: Rc<RefCell<Seen>>,
}

impl Service for Order {
    type Conn = ();
    type Tag = Tag;
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        cx.set_timeout(Duration::from_millis(30), Tag::Timeout);
        cx.set_interval(Duration::from_millis(10), Tag::Interval);
        let cancelled = cx.set_timeout(Duration::from_millis(5), Tag::Cancelled);
        assert!(cx.clear_timer(cancelled));
        cx.set_timeout(Duration::from_millis(60), Tag::Late);
        cx.set_immediate(Tag::Immediate(0));
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_timer(&mut self, cx: &mut Cx<Self>, t: TimerId, tag: Tag) {
        let at = self.started.elapsed();
        let mut out = self.out.borrow_mut();
        out.fired_at.push((tag, at));
        match tag {
            Tag::Timeout => {
                out.seen.push("timeout".into());
                cx.set_immediate(Tag::Immediate(10));
            }
            Tag::Interval => {
                out.interval_hits += 1;
                if out.interval_hits == 3 {
                    assert!(cx.clear_timer(t));
                    assert!(!cx.clear_timer(t), "second clear is a no-op");
                }
            }
            Tag::Cancelled => panic!("a cleared timer fired"),
            Tag::Late => out.seen.push("timer4".into()),
            Tag::Immediate(_) => panic!("an immediate's tag fired as a timer"),
        }
    }
    fn on_immediate(&mut self, cx: &mut Cx<Self>, tag: Tag) {
        let Tag::Immediate(n) = tag else {
            panic!("a timer's tag ran as an immediate");
        };
        self.out.borrow_mut().seen.push(format!("immediate{n}"));
        if n == 10 {
            // Queued from inside the check phase: runs next iteration, after
            // the timers of that iteration.
            cx.set_immediate(Tag::Immediate(11));
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
    let out = Rc::new(RefCell::new(Seen::default()));
    r.add_service(Order {
        started,
        out: out.clone(),
    });
    let exit = r.run().unwrap();
    assert_eq!(exit, Exit::Idle, "the loop ends when nothing is left");
    let h = out.borrow();
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
            Tag::Timeout => 30,
            Tag::Late => 60,
            _ => 10,
        };
        assert!(
            *at >= Duration::from_millis(due),
            "timer {tag:?} fired early at {at:?}"
        );
    }
}

#[test]
fn zero_delay_fires_on_a_later_iteration() {
    struct Z(Rc<RefCell<u32>>);
    impl Service for Z {
        type Conn = ();
        type Tag = ();
        type Message = ();
        fn on_start(&mut self, cx: &mut Cx<Self>) {
            cx.set_timeout(Duration::ZERO, ());
        }
        fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
        fn on_timer(&mut self, cx: &mut Cx<Self>, _t: TimerId, _tag: ()) {
            *self.0.borrow_mut() += 1;
            if *self.0.borrow() < 5 {
                cx.set_timeout(Duration::ZERO, ());
            }
        }
    }
    let mut r = Reactor::new().unwrap();
    let z = Rc::new(RefCell::new(0));
    r.add_service(Z(z.clone()));
    r.run().unwrap();
    assert_eq!(*z.borrow(), 5);
    assert!(
        r.stats().iterations >= 5,
        "each re-armed timer waits for a new iteration"
    );
}

/// A timer id outlives its timer: once the timer is cleared (or has fired),
/// its slot in the loop is reused by the next timer, and the old id must
/// not reach the new one.
#[test]
fn a_stale_timer_id_never_clears_the_timer_that_reused_its_slot() {
    struct S(Rc<RefCell<Vec<&'static str>>>);
    impl Service for S {
        type Conn = ();
        type Tag = &'static str;
        type Message = ();
        fn on_start(&mut self, cx: &mut Cx<Self>) {
            let old = cx.set_timeout(Duration::from_millis(5), "old");
            assert!(cx.clear_timer(old));
            // Takes the slot the cleared timer left.
            let new = cx.set_timeout(Duration::from_millis(5), "new");
            assert_ne!(old, new);
            assert!(!cx.clear_timer(old), "a cleared id is dead");
            // A one-shot that fires frees its slot too.
            cx.set_timeout(Duration::from_millis(1), "first");
        }
        fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
        fn on_timer(&mut self, cx: &mut Cx<Self>, t: TimerId, tag: &'static str) {
            self.0.borrow_mut().push(tag);
            if tag == "first" {
                let next = cx.set_timeout(Duration::from_millis(1), "second");
                assert_ne!(t, next);
                assert!(!cx.clear_timer(t), "a fired one-shot's id is dead");
            }
        }
    }
    let mut r = Reactor::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    r.add_service(S(seen.clone()));
    r.run().unwrap();
    let mut seen = seen.borrow().clone();
    seen.sort();
    assert_eq!(seen, ["first", "new", "second"]);
}
