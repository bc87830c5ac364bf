//! Timers: a hierarchical hashed timing wheel, sans-IO.
//!
//! # Algorithm
//!
//! A hierarchical hashed timing wheel (G. Varghese and T. Lauck, "Hashed and
//! Hierarchical Timing Wheels: Data Structures for the Efficient
//! Implementation of a Timer Facility", SOSP 1987; the layout follows tokio's
//! time driver). Time is a [`Tick`]: a `u64` count of milliseconds since the
//! wheel's epoch. There are 6 levels of 64 slots:
//!
//! | level | slot width        | level span (64 slots) |
//! |-------|-------------------|-----------------------|
//! | 0     | 1 ms              | 64 ms                 |
//! | 1     | 64 ms             | ~4.1 s                |
//! | 2     | ~4.1 s (64² ms)   | ~4.4 min              |
//! | 3     | ~4.4 min (64³ ms) | ~4.7 h                |
//! | 4     | ~4.7 h (64⁴ ms)   | ~12.4 days            |
//! | 5     | ~12.4 days (64⁵)  | ~2.2 years (64⁶ ms)   |
//!
//! A timer due at `deadline` goes to the level of the highest 6-bit group in
//! which `deadline` and [`Wheel::elapsed`] differ, in the slot given by that
//! group of `deadline`'s bits. So level 0 holds only timers of the current
//! 64 ms window, one deadline per slot; level 1 those of the current ~4 s
//! window, and so on. Each level keeps an `occupied: u64` bitmap: the next
//! non-empty slot is found with a rotate and `trailing_zeros`, never by
//! scanning ticks, so `poll` across a long idle gap is cheap. When time reaches
//! the start of a slot in level n ≥ 1, its timers *cascade*: each is due now
//! (and moves to the pending list) or is re-inserted into a lower level.
//! Every timer cascades at most 5 times.
//!
//! Entries live in an arena (a `Vec` with a free list, reused after a timer
//! fires or is cancelled); each slot is an intrusive doubly-linked list of
//! arena indices, so insert and cancel are O(1). A [`TimerKey`] carries the
//! arena index and a generation, so a stale key never matches a later timer.
//! An unused wheel allocates nothing; the six levels (~3 KiB of list heads)
//! are allocated on the first insert, and the arena grows with the number of
//! live timers.
//!
//! # Contract
//!
//! * The wheel never reads a clock. The caller converts `Instant`s to ticks
//!   relative to an epoch it chooses, **rounding deadlines up** to the next
//!   millisecond (a timer may then fire up to 1 ms late, never early), and
//!   passes its current time, rounded down, to [`Wheel::poll`].
//! * [`Wheel::poll`]`(now)` returns one due timer per call; call it until
//!   `None`. Timers fire in non-decreasing deadline order, equal deadlines in
//!   insertion order, and never before their deadline. Time never goes back:
//!   a `now` below `elapsed()` counts as `elapsed()`.
//! * A deadline `<= elapsed()` at insert is due at once: the next `poll`
//!   returns it, after the timers already due (so its position is that of a
//!   timer due at `elapsed()`). A timer inserted while draining a poll batch
//!   with a deadline `<= now` is returned by the same batch.
//! * A deadline more than [`MAX_DURATION`] (2^36 − 1 ms, ~2.2 years) after
//!   `elapsed()` is clamped to `elapsed() + MAX_DURATION`.
//! * [`Wheel::next_deadline`] is a lower bound on the earliest deadline,
//!   never later than it. It is exact for timers in level 0 (due within the
//!   current 64 ms window); for a timer still in a higher level it is the
//!   start of that timer's slot. The caller sleeps until then, polls (the
//!   wheel cascades the slot; the poll may return nothing) and asks again.
//!   Each timer costs at most 5 such early wake-ups over its lifetime, and
//!   only when it is the earliest.

mod level;
mod wheel;

pub use wheel::{Tick, TimerKey, Wheel, MAX_DURATION};
