//! The [`Wheel`]: six [`Level`]s, an arena of entries and a pending list.
//!
//! See the [module documentation](super) for the algorithm and the contract.

use std::fmt;

use super::level::{level_range, slot_for, Level, List, LEVEL_BITS, SLOTS};

/// A point in wheel time: milliseconds since the wheel's epoch.
///
/// The caller converts `Instant`s to ticks, rounding deadlines **up** to the
/// next millisecond so that a timer never fires early.
pub type Tick = u64;

/// Number of levels: 6 × 6 bits = 36 bits of ticks, about 2.2 years of ms.
pub(super) const NUM_LEVELS: usize = 6;

/// The top level; it may wrap into its next revolution (see [`MAX_DURATION`]).
const TOP: usize = NUM_LEVELS - 1;

/// The furthest a deadline may lie after [`Wheel::elapsed`]: 64^6 − 1 ticks
/// (2^36 − 1 ms ≈ 795 days). Later deadlines are clamped to
/// `elapsed + MAX_DURATION`, so such a timer fires early, after ~2.2 years.
pub const MAX_DURATION: Tick = level_range(TOP) - 1;

/// "No entry": the null arena index for the intrusive links and free list.
pub(super) const NIL: u32 = u32::MAX;

/// Location tag of an entry in the pending (due) list.
const LOC_PENDING: u16 = u16::MAX;

/// Location tag of a vacant arena slot (on the free list).
const LOC_FREE: u16 = u16::MAX - 1;

/// Handle to a timer in a [`Wheel`]: arena index plus generation.
///
/// The generation of an arena slot is bumped each time its timer is removed
/// (fired or cancelled), so a stale key never matches a later timer that
/// reuses the slot (until the 32-bit generation wraps, after 2^32 reuses of
/// that one slot).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

/// One arena entry: a live timer, or a vacant slot on the free list.
pub(super) struct Node<T> {
    /// `Some` iff the entry is live.
    pub(super) value: Option<T>,
    /// The (range-clamped) deadline given to `insert`.
    pub(super) deadline: Tick,
    /// Bumped when the entry is freed; part of [`TimerKey`].
    pub(super) generation: u32,
    /// Previous entry in the same list, or [`NIL`].
    pub(super) prev: u32,
    /// Next entry in the same list (or in the free list), or [`NIL`].
    pub(super) next: u32,
    /// Which list holds the entry: `level * SLOTS + slot`, [`LOC_PENDING`]
    /// or [`LOC_FREE`].
    pub(super) loc: u16,
}

impl<T> Node<T> {
    /// A vacant entry whose free-list successor is `next_free`.
    pub(super) fn vacant(next_free: u32) -> Self {
        Node {
            value: None,
            deadline: 0,
            generation: 0,
            prev: NIL,
            next: next_free,
            loc: LOC_FREE,
        }
    }
}

/// Which level a timer due at `deadline` belongs to when the wheel is at
/// `elapsed` (`deadline > elapsed`): the level of the highest 6-bit group in
/// which the two differ, capped at the top level (a deadline in the top
/// level's next revolution also goes there).
#[inline]
pub(super) fn level_for(elapsed: Tick, deadline: Tick) -> usize {
    // `| SLOT_MASK` so that a difference in the low 6 bits (or none) is level 0.
    let masked = (elapsed ^ deadline) | (SLOTS as u64 - 1);
    let significant = (u64::BITS - 1 - masked.leading_zeros()) as usize;
    (significant / LEVEL_BITS as usize).min(TOP)
}

/// A hierarchical hashed timing wheel holding values of type `T`.
///
/// See the [module documentation](super) for the algorithm and contract.
pub struct Wheel<T> {
    /// Entry arena; vacant entries are chained through `next` from `free`.
    nodes: Vec<Node<T>>,
    /// Head of the free list, or [`NIL`].
    free: u32,
    /// Number of live timers.
    len: usize,
    /// The tick up to which the wheel has been advanced.
    elapsed: Tick,
    /// Timers due at `elapsed`, in firing order.
    pending: List,
    /// Allocated on first insert, so an unused wheel allocates nothing.
    levels: Option<Box<[Level; NUM_LEVELS]>>,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len)
            .field("capacity", &self.nodes.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel with `elapsed() == 0`. Allocates nothing.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty wheel with room for `n` timers before the arena reallocates.
    pub fn with_capacity(n: usize) -> Self {
        Wheel {
            nodes: Vec::with_capacity(n),
            free: NIL,
            len: 0,
            elapsed: 0,
            pending: List::EMPTY,
            levels: None,
        }
    }

    /// The tick up to which the wheel has been advanced by [`poll`](Self::poll).
    ///
    /// After `poll(now)` returns `None` this is `max(now, previous elapsed)`;
    /// while a poll batch is being drained it is the deadline being fired.
    pub fn elapsed(&self) -> Tick {
        self.elapsed
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `value` to fire at `deadline`. O(1).
    ///
    /// A deadline `<= elapsed()` is due at once: it is returned by the next
    /// [`poll`](Self::poll), after the timers already due at `elapsed()`. A
    /// deadline more than [`MAX_DURATION`] after `elapsed()` is clamped to
    /// `elapsed() + MAX_DURATION` (also reported by [`deadline`](Self::deadline)).
    ///
    /// # Panics
    /// If the wheel would hold more than `u32::MAX - 1` timers.
    pub fn insert(&mut self, deadline: Tick, value: T) -> TimerKey {
        let deadline = deadline.min(self.elapsed.saturating_add(MAX_DURATION));
        let index = self.alloc(deadline, value);
        self.schedule(index);
        self.len += 1;
        TimerKey {
            index,
            generation: self.nodes[index as usize].generation,
        }
    }

    /// Removes the timer and returns its value; `None` if `key` is stale
    /// (already fired or cancelled). O(1).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let index = self.live(key)?;
        self.unlink(index);
        Some(self.release(index))
    }

    /// The value of a pending timer; `None` if `key` is stale.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        let index = self.live(key)?;
        self.nodes[index as usize].value.as_ref()
    }

    /// The value of a pending timer, mutably; `None` if `key` is stale.
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let index = self.live(key)?;
        self.nodes[index as usize].value.as_mut()
    }

    /// The deadline of a pending timer as given to [`insert`](Self::insert)
    /// (after clamping to [`MAX_DURATION`]); `None` if `key` is stale.
    pub fn deadline(&self, key: TimerKey) -> Option<Tick> {
        let index = self.live(key)?;
        Some(self.nodes[index as usize].deadline)
    }

    /// A tick at which the caller should next [`poll`](Self::poll), or `None`
    /// when the wheel is empty.
    ///
    /// Never later than the earliest pending deadline (and never earlier than
    /// `elapsed()`). It is exact when that timer is in level 0 or already due;
    /// when the earliest timer still sits in a higher level this is the start
    /// of its slot, which may be earlier: polling then cascades the slot,
    /// returns nothing, and the caller asks again.
    pub fn next_deadline(&self) -> Option<Tick> {
        if !self.pending.is_empty() {
            return Some(self.elapsed);
        }
        self.next_expiration().map(|(_, _, start)| start)
    }

    /// Removes and returns one timer whose deadline is `<= now`, advancing
    /// `elapsed()` toward `now`; call until it returns `None`.
    ///
    /// Timers come out in non-decreasing order of deadline (a deadline that
    /// was already past at insert counts as `elapsed()` at that time), ties in
    /// insertion order; never before their deadline. A `now` below
    /// `elapsed()` is treated as `elapsed()`. Empty stretches of time are
    /// skipped through the occupied bitmaps, so a large jump costs
    /// O(timers + cascades), not O(ticks).
    pub fn poll(&mut self, now: Tick) -> Option<(TimerKey, T)> {
        self.poll_due(now).map(|(key, _, value)| (key, value))
    }

    /// [`Wheel::poll`], with the deadline the timer was inserted with (the
    /// loop measures how late every timer fires against it).
    pub fn poll_due(&mut self, now: Tick) -> Option<(TimerKey, Tick, T)> {
        let now = now.max(self.elapsed);
        loop {
            if let Some(index) = self.pending.pop_front(&mut self.nodes) {
                let key = TimerKey {
                    index,
                    generation: self.nodes[index as usize].generation,
                };
                let deadline = self.nodes[index as usize].deadline;
                debug_assert!(deadline <= self.elapsed);
                return Some((key, deadline, self.release(index)));
            }
            match self.next_expiration() {
                Some((level, slot, start)) if start <= now => self.expire(level, slot, start),
                _ => {
                    self.elapsed = now;
                    return None;
                }
            }
        }
    }

    /// The arena index of `key` if it names a live timer.
    #[inline]
    fn live(&self, key: TimerKey) -> Option<u32> {
        let node = self.nodes.get(key.index as usize)?;
        (node.generation == key.generation && node.value.is_some()).then_some(key.index)
    }

    /// Takes a vacant arena entry (or grows the arena) and fills it.
    fn alloc(&mut self, deadline: Tick, value: T) -> u32 {
        let index = if self.free != NIL {
            let index = self.free;
            self.free = self.nodes[index as usize].next;
            index
        } else {
            let index = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("timer wheel: too many timers");
            self.nodes.push(Node::vacant(NIL));
            index
        };
        let node = &mut self.nodes[index as usize];
        debug_assert!(node.value.is_none() && node.loc == LOC_FREE);
        node.value = Some(value);
        node.deadline = deadline;
        node.prev = NIL;
        node.next = NIL;
        index
    }

    /// Frees an unlinked live entry and returns its value.
    fn release(&mut self, index: u32) -> T {
        let free = self.free;
        let node = &mut self.nodes[index as usize];
        let value = node.value.take().expect("release of a vacant entry");
        node.generation = node.generation.wrapping_add(1);
        node.loc = LOC_FREE;
        node.prev = NIL;
        node.next = free;
        self.free = index;
        self.len -= 1;
        value
    }

    /// Links an unlinked live entry into the pending list (if due) or into
    /// the slot its deadline hashes to relative to `elapsed`.
    fn schedule(&mut self, index: u32) {
        let deadline = self.nodes[index as usize].deadline;
        if deadline <= self.elapsed {
            self.pending.push_back(&mut self.nodes, index);
            self.nodes[index as usize].loc = LOC_PENDING;
            return;
        }
        debug_assert!(deadline - self.elapsed <= MAX_DURATION);
        let level = level_for(self.elapsed, deadline);
        let slot = slot_for(deadline, level);
        let levels = self
            .levels
            .get_or_insert_with(|| Box::new(std::array::from_fn(|_| Level::new())));
        levels[level].push(&mut self.nodes, slot, index);
        self.nodes[index as usize].loc = (level * SLOTS + slot) as u16;
    }

    /// Unlinks a live entry from whichever list holds it.
    fn unlink(&mut self, index: u32) {
        match self.nodes[index as usize].loc {
            LOC_PENDING => self.pending.unlink(&mut self.nodes, index),
            LOC_FREE => unreachable!("unlink of a vacant entry"),
            loc => {
                let (level, slot) = (loc as usize / SLOTS, loc as usize % SLOTS);
                let levels = self
                    .levels
                    .as_mut()
                    .expect("entry in a slot without levels");
                levels[level].unlink(&mut self.nodes, slot, index);
            }
        }
    }

    /// The earliest occupied slot: `(level, slot, start tick)`.
    ///
    /// Every occupied slot of level n starts after every occupied slot of the
    /// levels below, so the lowest non-empty level holds it.
    fn next_expiration(&self) -> Option<(usize, usize, Tick)> {
        let levels = self.levels.as_ref()?;
        for (level, lv) in levels.iter().enumerate() {
            if let Some((slot, start)) = lv.next_occupied(level, self.elapsed) {
                debug_assert!(start > self.elapsed);
                // Below the top, the slot is in the current revolution.
                debug_assert!(
                    level == TOP
                        || (start ^ self.elapsed) >> (LEVEL_BITS as usize * (level + 1)) == 0,
                    "level {level} slot {slot} start {start} outside elapsed {}'s revolution",
                    self.elapsed
                );
                debug_assert!(levels[level + 1..]
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| l.next_occupied(level + 1 + i, self.elapsed))
                    .all(|(_, s)| s > start));
                return Some((level, slot, start));
            }
        }
        None
    }

    /// Advances `elapsed` to `start` and empties the slot: timers due at
    /// `start` go to the pending list (level 0 slots hold nothing else),
    /// the rest cascade into lower levels, keeping their relative order.
    fn expire(&mut self, level: usize, slot: usize, start: Tick) {
        debug_assert!(start > self.elapsed);
        self.elapsed = start;
        let mut list = self.levels.as_mut().expect("expire without levels")[level].take(slot);
        while let Some(index) = list.pop_front(&mut self.nodes) {
            debug_assert!(
                self.nodes[index as usize].deadline >= start,
                "timer in a slot after its deadline"
            );
            debug_assert!(
                level == 0 || self.nodes[index as usize].deadline == start || {
                    level_for(start, self.nodes[index as usize].deadline) < level
                }
            );
            debug_assert!(level != 0 || self.nodes[index as usize].deadline == start);
            self.schedule(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Polls `w` at `now` until `None`, returning the fired values.
    fn drain<T>(w: &mut Wheel<T>, now: Tick) -> Vec<T> {
        std::iter::from_fn(|| w.poll(now).map(|(_, v)| v)).collect()
    }

    #[test]
    fn level_for_boundaries() {
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(63, 64), 1);
        assert_eq!(level_for(64, 127), 0);
        assert_eq!(level_for(0, 4095), 1);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, 1 << 30), 5);
        assert_eq!(level_for(0, MAX_DURATION), 5);
        // The next revolution of the top level is still the top level.
        assert_eq!(level_for((1 << 36) - 1, 1 << 36), 5);
        assert_eq!(level_for(0, Tick::MAX), 5);
    }

    #[test]
    fn empty_wheel() {
        let mut w: Wheel<()> = Wheel::new();
        assert!(w.is_empty());
        assert!(w.levels.is_none(), "an unused wheel allocates no levels");
        assert_eq!(w.next_deadline(), None);
        assert!(w.poll(1_000).is_none());
        assert_eq!(w.elapsed(), 1_000);
        assert!(w.poll(10).is_none(), "time never goes back");
        assert_eq!(w.elapsed(), 1_000);
        let d: Wheel<u8> = Wheel::default();
        assert_eq!(d.elapsed(), 0);
    }

    #[test]
    fn insert_poll_level0() {
        let mut w = Wheel::new();
        let k = w.insert(5, "a");
        assert_eq!(w.len(), 1);
        assert_eq!(w.get(k), Some(&"a"));
        assert_eq!(w.deadline(k), Some(5));
        assert_eq!(w.next_deadline(), Some(5));
        assert!(w.poll(4).is_none());
        assert_eq!(w.elapsed(), 4);
        assert_eq!(w.poll(5), Some((k, "a")));
        assert!(w.poll(5).is_none());
        assert!(w.is_empty());
        assert_eq!(w.get(k), None);
    }

    #[test]
    fn each_level_fires_exactly_at_deadline() {
        for level in 0..NUM_LEVELS {
            // Off slot boundaries, so cascading goes all the way down.
            let deadline = level_range(level) - 1 - (level as Tick) * 3;
            for start in [0, 17, 1_000_003] {
                let deadline = start + deadline;
                let mut w = Wheel::new();
                w.poll(start);
                let k = w.insert(deadline, level);
                if start == 0 {
                    assert_eq!(level_for(start, deadline), level);
                }
                // Walk next_deadline hints: never past the deadline, no early fire.
                let mut polls = 0;
                loop {
                    let next = w.next_deadline().expect("timer pending");
                    assert!(next <= deadline && next >= w.elapsed());
                    if next == deadline {
                        break;
                    }
                    assert!(w.poll(next).is_none(), "fired before its deadline");
                    polls += 1;
                    assert!(polls <= NUM_LEVELS);
                }
                assert!(w.poll(deadline - 1).is_none());
                assert_eq!(w.poll(deadline), Some((k, level)));
                assert!(w.is_empty());
            }
        }
    }

    #[test]
    fn first_poll_after_deadline_fires() {
        for deadline in [1, 63, 64, 100, 4096, 300_000, 1 << 30, MAX_DURATION] {
            let mut w = Wheel::new();
            w.insert(deadline, ());
            assert!(w.poll(deadline - 1).is_none());
            assert!(w.poll(deadline + 12_345).is_some(), "deadline {deadline}");
            assert_eq!(w.elapsed(), deadline);
            assert!(w.poll(deadline + 12_345).is_none());
            assert_eq!(w.elapsed(), deadline + 12_345);
        }
    }

    #[test]
    fn cancel_before_fire() {
        let mut w = Wheel::new();
        let a = w.insert(10, 'a');
        let b = w.insert(10, 'b');
        let c = w.insert(100_000, 'c');
        assert_eq!(w.cancel(a), Some('a'));
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.cancel(c), Some('c'));
        assert_eq!(w.len(), 1);
        assert_eq!(drain(&mut w, 1_000_000), vec!['b']);
        assert_eq!(w.cancel(b), None);
        // Cancel a due (pending) timer.
        let d = w.insert(0, 'd');
        *w.get_mut(d).unwrap() = 'D';
        assert_eq!(w.cancel(d), Some('D'));
        assert!(w.poll(Tick::MAX).is_none());
    }

    #[test]
    fn stale_key_does_not_touch_slot_reuse() {
        let mut w = Wheel::new();
        let old = w.insert(1, 1);
        assert_eq!(w.poll(1), Some((old, 1)));
        let new = w.insert(5, 2);
        assert_eq!(new.index, old.index, "arena slot reused");
        assert_ne!(new, old);
        assert_eq!(w.cancel(old), None);
        assert_eq!(w.get(old), None);
        assert_eq!(w.get_mut(old), None);
        assert_eq!(w.deadline(old), None);
        assert_eq!(w.get(new), Some(&2));
        assert_eq!(w.nodes.len(), 1);
        assert_eq!(drain(&mut w, 5), vec![2]);
        // Cancelled slots are reused too.
        let x = w.insert(9, 3);
        assert_eq!(w.cancel(x), Some(3));
        let y = w.insert(9, 4);
        assert_eq!(y.index, x.index);
        assert_eq!(w.cancel(x), None);
        assert_eq!(w.get(y), Some(&4));
        // A key from another arena index that does not exist yet.
        let bogus = TimerKey {
            index: 1_000,
            generation: 0,
        };
        assert_eq!(w.get(bogus), None);
    }

    #[test]
    fn past_and_present_deadlines_fire_at_next_poll() {
        let mut w = Wheel::new();
        w.poll(1_000);
        w.insert(1_000, "now");
        w.insert(3, "past");
        assert_eq!(w.next_deadline(), Some(1_000));
        let k = w.insert(0, "zero");
        assert_eq!(w.deadline(k), Some(0));
        assert_eq!(drain(&mut w, 0), vec!["now", "past", "zero"]);
        assert_eq!(w.elapsed(), 1_000);
    }

    #[test]
    fn fifo_within_one_tick() {
        let mut w = Wheel::new();
        // Same deadline, inserted from different distances (different levels),
        // so some cascade while others were inserted straight into level 0.
        let deadline = 300_007;
        let mut expect = Vec::new();
        for i in 0..50 {
            w.insert(deadline, i);
            w.insert(deadline + 1, 1_000 + i);
            expect.push(i);
            let now = w.elapsed() + 6_000;
            assert!(drain(&mut w, now.min(deadline - 1)).is_empty());
        }
        expect.extend(1_000..1_050);
        assert_eq!(drain(&mut w, deadline + 1), expect);
    }

    #[test]
    fn far_future_is_clamped() {
        let mut w = Wheel::new();
        w.poll(77);
        let k = w.insert(Tick::MAX, ());
        assert_eq!(w.deadline(k), Some(77 + MAX_DURATION));
        assert!(w.poll(76 + MAX_DURATION).is_none());
        assert_eq!(w.poll(77 + MAX_DURATION).map(|(k, _)| k), Some(k));
    }

    #[test]
    fn near_tick_max() {
        let mut w = Wheel::new();
        let base = Tick::MAX - 5_000;
        w.poll(base);
        w.insert(Tick::MAX, 3);
        w.insert(Tick::MAX - 1, 2);
        w.insert(base + 1, 1);
        assert_eq!(drain(&mut w, Tick::MAX - 1), vec![1, 2]);
        assert_eq!(w.next_deadline(), Some(Tick::MAX));
        assert_eq!(drain(&mut w, Tick::MAX), vec![3]);
        w.insert(Tick::MAX, 4);
        assert_eq!(drain(&mut w, Tick::MAX), vec![4]);
    }

    #[test]
    fn big_jumps() {
        let mut w = Wheel::new();
        let deadlines = [
            5,
            70,
            5_000,
            400_000,
            20_000_000,
            2_000_000_000,
            60_000_000_000,
        ];
        for (i, &d) in deadlines.iter().enumerate().rev() {
            w.insert(d, i);
        }
        assert_eq!(drain(&mut w, 4), Vec::<usize>::new());
        assert_eq!(
            drain(&mut w, 1 << 40),
            (0..deadlines.len()).collect::<Vec<_>>()
        );
        // Jump over the top level's revolution with timers straddling it.
        w.poll(w.elapsed() + (1 << 35) + 12_345);
        let e = w.elapsed();
        let top = level_range(TOP);
        let d1 = (e | (top - 1)) + 10; // just after the revolution boundary
        let d2 = e + MAX_DURATION;
        w.insert(d2, 2);
        w.insert(d1, 1);
        assert!(drain(&mut w, d1 - 1).is_empty());
        assert_eq!(drain(&mut w, Tick::MAX), vec![1, 2]);
    }

    #[test]
    fn insert_while_draining() {
        let mut w = Wheel::new();
        w.insert(10, 0);
        w.insert(20, 1);
        let mut fired = Vec::new();
        while let Some((_, v)) = w.poll(100) {
            fired.push(v);
            if v == 0 {
                w.insert(5, 10); // past: due immediately
                w.insert(15, 11); // before the other pending timer
                w.insert(100, 12); // at `now`
                w.insert(101, 13); // after `now`: not this batch
            }
        }
        assert_eq!(fired, vec![0, 10, 11, 1, 12]);
        assert_eq!(drain(&mut w, 101), vec![13]);
    }

    #[test]
    fn next_deadline_never_late() {
        let mut w = Wheel::new();
        for d in [100_000, 90_000, 5_000_000, 64, 63] {
            w.insert(d, d);
        }
        let mut fired = Vec::new();
        while let Some(next) = w.next_deadline() {
            let earliest = w
                .nodes
                .iter()
                .filter(|n| n.value.is_some())
                .map(|n| n.deadline)
                .min();
            assert!(next <= earliest.unwrap());
            fired.extend(drain(&mut w, next));
        }
        assert_eq!(fired, vec![63, 64, 90_000, 100_000, 5_000_000]);
    }

    #[test]
    fn arena_reuses_slots() {
        let mut w = Wheel::with_capacity(4);
        for round in 0..100 {
            let keys: Vec<_> = (0..4).map(|i| w.insert(round * 10 + i, i)).collect();
            w.cancel(keys[1]);
            drain(&mut w, round * 10 + 9);
        }
        assert_eq!(w.nodes.len(), 4);
    }

    /// splitmix64: a tiny deterministic PRNG for the randomised test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            if n == 0 {
                0
            } else {
                self.next() % n
            }
        }
    }

    /// The reference model: timers ordered by (effective deadline, sequence).
    struct Model {
        rng: Rng,
        wheel: Wheel<u64>,
        order: BTreeMap<(Tick, u64), u64>,
        /// id -> (key, order key); `live` lists ids for random cancels.
        keys: std::collections::HashMap<u64, (TimerKey, (Tick, u64))>,
        live: Vec<u64>,
        stale: Vec<TimerKey>,
        seq: u64,
    }

    impl Model {
        fn random_deadline(&mut self, elapsed: Tick) -> Tick {
            let r = &mut self.rng;
            match r.below(10) {
                0 => elapsed.saturating_sub(r.below(10_000)), // past or now
                1 => elapsed.saturating_add(MAX_DURATION - r.below(1 << 31)),
                2 => elapsed.saturating_add(MAX_DURATION + r.below(1 << 40)), // clamped
                3 => Tick::MAX - r.below(3),
                _ => {
                    let level = r.below(NUM_LEVELS as u64) as usize;
                    elapsed.saturating_add(1 + r.below(level_range(level)))
                }
            }
        }

        fn insert(&mut self) {
            let elapsed = self.wheel.elapsed();
            let deadline = self.random_deadline(elapsed);
            let id = self.seq;
            self.seq += 1;
            let key = self.wheel.insert(deadline, id);
            let clamped = deadline.min(elapsed.saturating_add(MAX_DURATION));
            assert_eq!(self.wheel.deadline(key), Some(clamped));
            let eff = clamped.max(elapsed);
            self.order.insert((eff, id), id);
            self.keys.insert(id, (key, (eff, id)));
            self.live.push(id);
        }

        fn cancel(&mut self) {
            if !self.live.is_empty() {
                let i = self.rng.below(self.live.len() as u64) as usize;
                let id = self.live.swap_remove(i);
                let (key, ord) = self.keys.remove(&id).unwrap();
                assert_eq!(self.wheel.cancel(key), Some(id));
                assert_eq!(self.order.remove(&ord), Some(id));
                self.stale.push(key);
            }
            if !self.stale.is_empty() {
                let i = self.rng.below(self.stale.len() as u64) as usize;
                assert_eq!(self.wheel.cancel(self.stale[i]), None);
            }
        }

        fn poll_batch(&mut self, now: Tick) {
            let earliest = self.order.keys().next().map(|&(t, _)| t);
            match (self.wheel.next_deadline(), earliest) {
                (None, None) => {}
                (Some(n), Some(e)) => assert!(n <= e && n >= self.wheel.elapsed()),
                other => panic!("next_deadline vs model: {other:?}"),
            }
            let now = now.max(self.wheel.elapsed());
            while let Some((key, id)) = self.wheel.poll(now) {
                let (&(eff, seq), &want) = self.order.iter().next().expect("model empty");
                assert!(eff <= now, "fired {id} early: due {eff}, now {now}");
                assert_eq!(id, want, "wrong timer at {eff}");
                assert_eq!(self.wheel.elapsed(), eff);
                self.order.remove(&(eff, seq));
                let (k, _) = self.keys.remove(&id).unwrap();
                assert_eq!(k, key);
                let pos = self.live.iter().position(|&x| x == id).unwrap();
                self.live.swap_remove(pos);
                self.stale.push(key);
                // Mutate while draining.
                match self.rng.below(8) {
                    0 => self.insert(),
                    1 => self.cancel(),
                    2 => {
                        // Due within this batch, possibly between pending timers.
                        let e = self.wheel.elapsed();
                        let d = (e - self.rng.below(e.min(50)))
                            .saturating_add(self.rng.below((now - e).saturating_add(50)));
                        let id = self.seq;
                        self.seq += 1;
                        let key = self.wheel.insert(d, id);
                        let eff = d.min(e.saturating_add(MAX_DURATION)).max(e);
                        self.order.insert((eff, id), id);
                        self.keys.insert(id, (key, (eff, id)));
                        self.live.push(id);
                    }
                    _ => {}
                }
            }
            assert_eq!(self.wheel.elapsed(), now);
            if let Some(&(eff, _)) = self.order.keys().next() {
                assert!(eff > now, "timer due at {eff} not fired by {now}");
            }
            assert_eq!(self.wheel.len(), self.order.len());
            if self.stale.len() > 1_000 {
                self.stale.drain(..500);
            }
        }
    }

    fn run_model(seed: u64, start: Tick, ops: usize) {
        let mut m = Model {
            rng: Rng(seed),
            wheel: Wheel::new(),
            order: BTreeMap::new(),
            keys: Default::default(),
            live: Vec::new(),
            stale: Vec::new(),
            seq: 0,
        };
        m.poll_batch(start);
        for _ in 0..ops {
            match m.rng.below(10) {
                0..=4 => m.insert(),
                5 | 6 => m.cancel(),
                _ => {
                    let step = match m.rng.below(20) {
                        0 | 1 => 0,
                        2..=6 => m.rng.below(64),
                        7..=11 => m.rng.below(5_000),
                        12..=15 => m.rng.below(600_000),
                        16..=18 => m.rng.below(3 * 86_400_000),
                        _ => m.rng.below(400 * 86_400_000),
                    };
                    let now = m.wheel.elapsed().saturating_add(step);
                    m.poll_batch(now);
                }
            }
        }
        m.poll_batch(Tick::MAX);
        assert!(m.wheel.is_empty() && m.order.is_empty());
    }

    #[test]
    fn randomised_against_model() {
        for (seed, start) in [
            (1, 0),
            (2, 12_345),
            (3, (1 << 36) - 1_000_000),
            (4, Tick::MAX - (1 << 44)),
            (0xDEAD_BEEF, 1 << 50),
        ] {
            run_model(seed, start, 20_000);
        }
    }
}
