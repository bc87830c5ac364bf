//! The ready list: work that an edge-triggered poll will not report again.
//!
//! With `EPOLLET` an fd is reported once per edge. A connection whose read or
//! write budget ran out while data was still there (or a listener whose accept
//! budget ran out) would never be reported again, so it is parked here and
//! served in the next iteration's ready phase; while the list is non-empty the
//! poll timeout is zero. Entries are served in FIFO order and each iteration
//! serves only what was parked before it started, so one busy connection
//! cannot monopolise the phase. A per-entry flag held by the owner keeps each
//! key on the list at most once.

use super::token::{Key, Kind};
use std::collections::VecDeque;

/// FIFO of parked keys.
#[derive(Debug, Default)]
pub struct ReadyList {
    queue: VecDeque<(Kind, Key)>,
}

impl ReadyList {
    /// Park a key. The caller checks and sets its own `in_ready` flag first.
    pub fn push(&mut self, kind: Kind, key: Key) {
        self.queue.push_back((kind, key));
    }

    /// Take the entries parked so far, leaving an empty list for this
    /// iteration's re-parks.
    pub fn take_batch(&mut self) -> VecDeque<(Kind, Key)> {
        std::mem::take(&mut self.queue)
    }

    /// Give back the (now empty) batch buffer so its capacity is reused.
    pub fn recycle(&mut self, mut batch: VecDeque<(Kind, Key)>) {
        if self.queue.is_empty() {
            batch.clear();
            self.queue = batch;
        }
    }

    /// Parked entries.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing parked.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
