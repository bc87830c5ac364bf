//! One level of the wheel: [`SLOTS`] slots, each the head of an intrusive
//! doubly-linked list of arena entries, plus an `occupied` bitmap so the next
//! non-empty slot is found with one rotate and one `trailing_zeros`.
//!
//! The links themselves live in the arena entries ([`Node`]); a [`List`] is
//! only a `(head, tail)` pair of arena indices, so unlinking any entry is O(1).

use super::wheel::{Node, Tick, NIL};

/// Bits of the tick consumed by one level: 6 bits, hence 64 slots.
pub(super) const LEVEL_BITS: u32 = 6;

/// Slots per level; 64 so that the occupied set is exactly one `u64`.
pub(super) const SLOTS: usize = 1 << LEVEL_BITS;

/// Mask selecting a slot index out of a shifted tick.
pub(super) const SLOT_MASK: u64 = SLOTS as u64 - 1;

/// Ticks covered by one slot at `level`: 64^level.
#[inline]
pub(super) const fn slot_range(level: usize) -> Tick {
    1 << (LEVEL_BITS as usize * level)
}

/// Ticks covered by a whole `level` (all 64 slots): 64^(level + 1).
#[inline]
pub(super) const fn level_range(level: usize) -> Tick {
    1 << (LEVEL_BITS as usize * (level + 1))
}

/// The slot of `level` that a timer due at `deadline` hashes to.
#[inline]
pub(super) const fn slot_for(deadline: Tick, level: usize) -> usize {
    ((deadline >> (LEVEL_BITS as usize * level)) & SLOT_MASK) as usize
}

/// An intrusive doubly-linked list of arena entries: indices of the first and
/// last entry, [`NIL`] when empty. The `prev`/`next` links are in the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct List {
    head: u32,
    tail: u32,
}

impl List {
    /// The empty list.
    pub(super) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };

    /// True when the list holds no entry.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Appends entry `idx` (which must not be linked anywhere) at the tail.
    #[inline]
    pub(super) fn push_back<T>(&mut self, nodes: &mut [Node<T>], idx: u32) {
        let tail = self.tail;
        {
            let node = &mut nodes[idx as usize];
            node.prev = tail;
            node.next = NIL;
        }
        if tail == NIL {
            debug_assert_eq!(self.head, NIL);
            self.head = idx;
        } else {
            debug_assert_eq!(nodes[tail as usize].next, NIL);
            nodes[tail as usize].next = idx;
        }
        self.tail = idx;
    }

    /// Unlinks entry `idx`, which must be in this list.
    #[inline]
    pub(super) fn unlink<T>(&mut self, nodes: &mut [Node<T>], idx: u32) {
        let (prev, next) = {
            let node = &nodes[idx as usize];
            (node.prev, node.next)
        };
        if prev == NIL {
            debug_assert_eq!(self.head, idx);
            self.head = next;
        } else {
            nodes[prev as usize].next = next;
        }
        if next == NIL {
            debug_assert_eq!(self.tail, idx);
            self.tail = prev;
        } else {
            nodes[next as usize].prev = prev;
        }
        let node = &mut nodes[idx as usize];
        node.prev = NIL;
        node.next = NIL;
    }

    /// Unlinks and returns the first entry, if any.
    #[inline]
    pub(super) fn pop_front<T>(&mut self, nodes: &mut [Node<T>]) -> Option<u32> {
        let idx = self.head;
        if idx == NIL {
            return None;
        }
        self.unlink(nodes, idx);
        Some(idx)
    }
}

/// One level: 64 slot lists and the bitmap of the non-empty ones.
#[derive(Debug)]
pub(super) struct Level {
    /// Bit `s` is set iff `slots[s]` is non-empty.
    occupied: u64,
    slots: [List; SLOTS],
}

impl Level {
    /// An empty level.
    pub(super) const fn new() -> Self {
        Level {
            occupied: 0,
            slots: [List::EMPTY; SLOTS],
        }
    }

    /// The occupied bitmap (bit `s` set iff slot `s` holds an entry).
    #[cfg(test)]
    pub(super) fn occupied(&self) -> u64 {
        self.occupied
    }

    /// Appends entry `idx` to `slot`.
    #[inline]
    pub(super) fn push<T>(&mut self, nodes: &mut [Node<T>], slot: usize, idx: u32) {
        self.slots[slot].push_back(nodes, idx);
        self.occupied |= 1 << slot;
    }

    /// Unlinks entry `idx` from `slot`, clearing the slot's bit if it empties.
    #[inline]
    pub(super) fn unlink<T>(&mut self, nodes: &mut [Node<T>], slot: usize, idx: u32) {
        debug_assert!(self.occupied & (1 << slot) != 0);
        let list = &mut self.slots[slot];
        list.unlink(nodes, idx);
        if list.is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// Detaches the whole list of `slot` (its entries keep their links, so the
    /// caller can walk it with [`List::pop_front`]) and marks the slot empty.
    #[inline]
    pub(super) fn take(&mut self, slot: usize) -> List {
        self.occupied &= !(1 << slot);
        std::mem::replace(&mut self.slots[slot], List::EMPTY)
    }

    /// The first occupied slot of this level strictly after the slot that
    /// `elapsed` falls in, going round the level once (so the slot `elapsed`
    /// is in counts as 64 slots ahead), with the tick at which it starts.
    ///
    /// Every entry in a level sits in a slot whose start is `> elapsed`: in
    /// levels below the top one that slot is always in the current revolution;
    /// at the top level it may be in the next one (the wheel's range is a full
    /// revolution of the top level, not aligned to it), and the rotation
    /// handles that uniformly.
    #[inline]
    pub(super) fn next_occupied(&self, level: usize, elapsed: Tick) -> Option<(usize, Tick)> {
        if self.occupied == 0 {
            return None;
        }
        let current = slot_for(elapsed, level);
        // Bit k of `rotated` is slot (current + 1 + k) mod 64, k + 1 slots ahead.
        let rotated = self.occupied.rotate_right(((current + 1) % SLOTS) as u32);
        let k = rotated.trailing_zeros() as usize;
        let slot = (current + 1 + k) % SLOTS;
        let range = slot_range(level);
        let base = elapsed & !(range - 1);
        // Cannot overflow while the wheel's invariants hold: the start is at
        // most the deadline of an entry in the slot, itself a valid Tick.
        let start = base.checked_add((k as Tick + 1) * range);
        debug_assert!(start.is_some(), "slot start overflows Tick");
        Some((slot, start.unwrap_or(Tick::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(slot_range(0), 1);
        assert_eq!(slot_range(1), 64);
        assert_eq!(slot_range(5), 1 << 30);
        assert_eq!(level_range(0), 64);
        assert_eq!(level_range(5), 1 << 36);
    }

    #[test]
    fn slot_hashing() {
        assert_eq!(slot_for(0, 0), 0);
        assert_eq!(slot_for(63, 0), 63);
        assert_eq!(slot_for(64, 0), 0);
        assert_eq!(slot_for(64, 1), 1);
        assert_eq!(slot_for(4095, 1), 63);
        assert_eq!(slot_for(4096, 1), 0);
        assert_eq!(slot_for(4096, 2), 1);
        assert_eq!(slot_for(Tick::MAX, 5), 63);
    }

    fn nodes(n: usize) -> Vec<Node<()>> {
        (0..n).map(|_| Node::vacant(NIL)).collect()
    }

    #[test]
    fn list_ops() {
        let mut ns = nodes(4);
        let mut l = List::EMPTY;
        for i in 0..4 {
            l.push_back(&mut ns, i);
        }
        l.unlink(&mut ns, 2); // middle
        l.unlink(&mut ns, 0); // head
        l.unlink(&mut ns, 3); // tail
        assert_eq!(l.pop_front(&mut ns), Some(1));
        assert!(l.is_empty());
        assert_eq!(l.pop_front(&mut ns), None);
    }

    #[test]
    fn occupied_bitmap_and_next() {
        let mut ns = nodes(3);
        let mut lv = Level::new();
        assert_eq!(lv.next_occupied(0, 0), None);
        lv.push(&mut ns, 5, 0);
        lv.push(&mut ns, 5, 1);
        lv.push(&mut ns, 9, 2);
        assert_eq!(lv.occupied(), (1 << 5) | (1 << 9));
        // elapsed 2 (slot 2): next is slot 5 starting at tick 5.
        assert_eq!(lv.next_occupied(0, 2), Some((5, 5)));
        // At level 1, elapsed 64*3+7 (slot 3): slot 5 starts at 64*5.
        assert_eq!(lv.next_occupied(1, 64 * 3 + 7), Some((5, 64 * 5)));
        lv.unlink(&mut ns, 5, 0);
        assert_eq!(lv.occupied(), (1 << 5) | (1 << 9));
        lv.unlink(&mut ns, 5, 1);
        assert_eq!(lv.occupied(), 1 << 9);
        // Wrap-around: elapsed in slot 20, slot 9 is 53 slots ahead.
        assert_eq!(lv.next_occupied(0, 20), Some((9, 64 + 9)));
        // The current slot itself counts as a full revolution ahead.
        assert_eq!(lv.next_occupied(0, 9), Some((9, 64 + 9)));
        let l = lv.take(9);
        assert_eq!(lv.occupied(), 0);
        assert!(!l.is_empty());
    }
}
