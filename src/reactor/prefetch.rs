//! Cache prefetch hints for the event dispatch.
//!
//! # Why
//!
//! With a thousand connections nothing of one connection stays in cache
//! between two of its events: the kernel's own work for the other
//! connections (socket buffers, `sk_buff`s, wake-ups) evicts it. The first
//! read of a connection's slab entry in the dispatch then waits for memory.
//! In a `perf record -e cpu-clock:u` of `netloop bench pingpong -c 1000`
//! against the C epoll server, that one load (the entry's occupied check)
//! took a fifth of the generator's user time.
//!
//! mio hands the loop a batch of events at once, so the loop knows which
//! connections come next. While one event runs (two system calls, a few
//! microseconds), the CPU can fetch the next events' entries in the
//! background: the dispatch asks for the entry of the event three ahead,
//! for the state slot, in the owning service, of the event two ahead (whose
//! entry, fetched one event earlier, says which slot that is), and lets the
//! service fetch what the state of the next event refers to (its slot was
//! fetched one event earlier). DPDK's receive loops and Linux's
//! `prefetch()` in its list walks do the same.
//!
//! # Contract
//!
//! A hint only: a wrong or stale address costs a useless fetch, never a
//! fault or a different result. Off x86-64 the hint is a no-op.

/// Bytes in a cache line (x86-64).
pub(crate) const LINE: usize = 64;

/// Ask the CPU to start loading the cache line holding `addr` (T0: into
/// every level). Returns at once.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint. It never faults, whatever the address
    // (Intel SDM vol. 2B, "PREFETCHh"; AMD APM vol. 3, "PREFETCHlevel"), and
    // changes no memory or register the program can observe.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// [`line`] for `lines` consecutive cache lines from `addr`.
#[inline(always)]
pub(crate) fn lines_at(addr: usize, lines: usize) {
    for l in 0..lines {
        line(addr + l * LINE);
    }
}

/// Start loading the first `lines` cache lines of `value` into the cache,
/// for a [`crate::Service::prefetch`]: a hint, which returns at once and
/// changes nothing.
#[inline(always)]
pub fn lines_of<T>(value: &T, lines: usize) {
    lines_at(value as *const T as usize, lines);
}
