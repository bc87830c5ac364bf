//! The per-connection write queue: a list of `Bytes` flushed with vectored
//! writes.
//!
//! A queued `Bytes` is a reference-counted view, so one encoded chat message
//! can sit in a thousand queues without a copy. Flushing gathers up to
//! [`MAX_IOVECS`] buffers into one vectored write and advances past whatever
//! the kernel took, partial buffers included.
//!
//! Small buffers (under [`COPY_BELOW`] bytes) are copied instead, into one
//! contiguous tail that follows everything else queued: a chat member that
//! gets sixteen 60-byte lines in one phase then costs one 960-byte iovec and
//! sixteen short `memcpy`s, not sixteen iovecs, sixteen reference-count
//! increments and sixteen decrements. Redis keeps a per-client reply buffer
//! for small replies the same way. Per delivery, the iovec's walk in the
//! kernel and the shared count's atomics cost more than copying 60 bytes.
//!
//! Accounting has two figures: [`WriteQueue::len`] counts payload bytes (what
//! the watermarks and Node's `writableLength` mean) and
//! [`WriteQueue::footprint`] adds [`ENTRY_OVERHEAD`] per queued buffer, so a
//! flood of one-byte messages cannot hide behind a byte-only cap (netty PR
//! #5961). The hard cap is checked against the footprint.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Buffers gathered into one `writev`. Linux allows 1024 (IOV_MAX); 64 keeps
/// the on-stack slice array small and already amortises the syscall.
pub const MAX_IOVECS: usize = 64;

/// Buffers shorter than this are copied into the queue's contiguous tail
/// instead of queued by reference (see the module documentation). 512 bytes
/// covers chat lines, heartbeat JSON and small replies; a bulk write keeps
/// its zero-copy path.
pub const COPY_BELOW: usize = 512;

/// The tail is sealed into a buffer of its own (and a new one started) at
/// this size, so one tail never becomes a large reallocation.
pub const TAIL_CAPACITY: usize = 16 * 1024;

/// Bytes charged per queued buffer on top of its payload: roughly the size of
/// a `Bytes` handle plus its shared header, so the cap tracks real memory.
pub const ENTRY_OVERHEAD: usize = 48;

/// Outcome of one flush attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything queued was written.
    Done,
    /// The kernel buffer is full (`WouldBlock`); wait for a writable event.
    Blocked,
    /// The per-wakeup budget was spent with data still queued and the socket
    /// still writable: park the connection on the ready list.
    Budget,
}

/// A FIFO of byte buffers awaiting the socket.
#[derive(Debug, Default)]
#[repr(C)]
pub struct WriteQueue {
    /// Payload bytes queued: first, as the one field every write reads
    /// (see [`crate::reactor::conn::Conn`]).
    len: usize,
    bufs: VecDeque<Bytes>,
    /// Small buffers copied together; they follow everything in `bufs`.
    tail: BytesMut,
}

impl WriteQueue {
    /// An empty queue; allocates nothing until the first push.
    pub fn new() -> Self {
        Self::default()
    }

    /// Payload bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of queued buffers (the copied tail counts as one).
    pub fn entries(&self) -> usize {
        self.bufs.len() + usize::from(!self.tail.is_empty())
    }

    /// Payload plus per-entry overhead: what the hard cap is checked against.
    pub fn footprint(&self) -> usize {
        self.len + self.entries() * ENTRY_OVERHEAD
    }

    /// Footprint after pushing `extra` payload bytes as one more buffer.
    pub fn footprint_with(&self, extra: usize) -> usize {
        self.footprint() + extra + ENTRY_OVERHEAD
    }

    /// Append a buffer. Empty buffers are ignored.
    pub fn push(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            return self.push_slice(&data);
        }
        self.len += data.len();
        self.seal_tail();
        self.bufs.push_back(data);
    }

    /// Append a copy of `data`: into the tail when small, as a buffer of its
    /// own otherwise. For bytes the caller cannot hand over (a borrowed read
    /// buffer), so they are copied once, not into a `Bytes` and then again.
    pub fn push_slice(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if data.len() >= COPY_BELOW {
            return self.push(Bytes::copy_from_slice(data));
        }
        self.len += data.len();
        if self.tail.len() + data.len() > TAIL_CAPACITY {
            self.seal_tail();
        }
        self.tail.extend_from_slice(data);
    }

    /// Move the tail into `bufs` as a buffer of its own, so what is pushed
    /// next goes after it.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.bufs.push_back(self.tail.split().freeze());
        }
    }

    /// Drop everything queued (`destroy()`), and the queue's memory with it.
    pub fn clear(&mut self) {
        self.bufs = VecDeque::new();
        self.tail = BytesMut::new();
        self.len = 0;
    }

    /// Write as much as the writer takes, up to `budget` bytes, with vectored
    /// writes. Returns the bytes written and how the attempt ended.
    /// `Interrupted` is retried; other errors are returned with the count so
    /// far discarded (the caller destroys the connection).
    pub fn flush_to<W: Write>(&mut self, w: &mut W, budget: usize) -> io::Result<(usize, Flush)> {
        let mut written = 0;
        loop {
            if self.len == 0 {
                self.release();
                return Ok((written, Flush::Done));
            }
            if written >= budget {
                return Ok((written, Flush::Budget));
            }
            let n = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for (slot, buf) in slices.iter_mut().zip(self.bufs.iter()) {
                    *slot = IoSlice::new(buf);
                    count += 1;
                }
                // The tail comes after every buffer: only when all fit.
                if count == self.bufs.len() && count < MAX_IOVECS && !self.tail.is_empty() {
                    slices[count] = IoSlice::new(&self.tail);
                    count += 1;
                }
                match w.write_vectored(&slices[..count]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok((written, Flush::Blocked))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.consume(n);
            written += n;
        }
    }

    /// Remove `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.bufs.front_mut() else {
                // Past every buffer: the rest was taken from the tail.
                debug_assert!(n <= self.tail.len(), "consumed more than queued");
                self.tail.advance(n.min(self.tail.len()));
                return;
            };
            if n >= front.len() {
                n -= front.len();
                self.bufs.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    /// An emptied queue gives its ring back: the queue is the slow path
    /// (the reactor writes straight to the socket while it has room), and an
    /// idle connection should hold no write memory.
    fn release(&mut self) {
        if self.bufs.capacity() > 0 {
            self.bufs = VecDeque::new();
        }
        if self.tail.capacity() > 0 {
            self.tail = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `cap` bytes per call and reports
    /// `WouldBlock` once `room` is exhausted.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        room: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.cap - n).min(self.room - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.cap || n == self.room {
                    break;
                }
            }
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn queue_of(parts: &[&[u8]]) -> WriteQueue {
        let mut q = WriteQueue::new();
        for p in parts {
            q.push(Bytes::copy_from_slice(p));
        }
        q
    }

    #[test]
    fn partial_writes_advance_across_buffers_in_order() {
        let mut q = queue_of(&[b"hello ", b"", b"wor", b"ld", b"!"]);
        assert_eq!(q.len(), 12);
        assert_eq!(
            q.entries(),
            1,
            "small ones share the tail; empty ones are not queued"
        );
        let mut w = Trickle {
            out: vec![],
            cap: 5,
            room: usize::MAX,
        };
        let (n, how) = q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!((n, how), (12, Flush::Done));
        assert_eq!(w.out, b"hello world!");
        assert!(q.is_empty());
    }

    #[test]
    fn would_block_keeps_the_rest() {
        let mut q = queue_of(&[b"abcdef", b"ghij"]);
        let mut w = Trickle {
            out: vec![],
            cap: 100,
            room: 7,
        };
        let (n, how) = q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!((n, how), (7, Flush::Blocked));
        assert_eq!(q.len(), 3);
        w.room = 100;
        q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!(w.out, b"abcdefghij");
    }

    #[test]
    fn budget_stops_with_data_left() {
        let mut q = WriteQueue::new();
        for _ in 0..10 {
            q.push(Bytes::from(vec![7u8; 1000]));
        }
        let mut w = Trickle {
            out: vec![],
            cap: 1000,
            room: usize::MAX,
        };
        let (n, how) = q.flush_to(&mut w, 3000).unwrap();
        assert_eq!((n, how), (3000, Flush::Budget));
        assert_eq!(q.len(), 7000);
    }

    #[test]
    fn footprint_counts_entries() {
        let q = queue_of(&[b"a", b"b", b"c"]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.footprint(), 3 + ENTRY_OVERHEAD, "one copied tail");
        let big = vec![b'x'; COPY_BELOW];
        let q = queue_of(&[&big, &big, b"c"]);
        assert_eq!(q.footprint(), 2 * COPY_BELOW + 1 + 3 * ENTRY_OVERHEAD);
        assert_eq!(q.footprint_with(10), q.footprint() + 10 + ENTRY_OVERHEAD);
    }

    #[test]
    fn small_buffers_share_one_iovec_and_keep_their_order() {
        let big = Bytes::from(vec![b'B'; COPY_BELOW]);
        let mut q = WriteQueue::new();
        let mut expect = Vec::new();
        for part in [&b"a1"[..], b"a2", &big, b"c1", b"c2", b"c3"] {
            q.push(Bytes::copy_from_slice(part));
            expect.extend_from_slice(part);
        }
        // a1 a2 (one copied buffer), big, c1 c2 c3 (the tail).
        assert_eq!(q.entries(), 3);
        assert_eq!(q.len(), expect.len());
        assert_eq!(q.footprint(), expect.len() + 3 * ENTRY_OVERHEAD);
        // Three bytes a call: every boundary falls inside some buffer.
        let mut w = Trickle {
            out: vec![],
            cap: 3,
            room: usize::MAX,
        };
        assert_eq!(
            q.flush_to(&mut w, usize::MAX).unwrap(),
            (expect.len(), Flush::Done)
        );
        assert_eq!(w.out, expect);
        assert!(q.is_empty());
        assert_eq!(q.entries(), 0);
    }

    #[test]
    fn copied_slices_queue_like_buffers() {
        let big = vec![b'B'; COPY_BELOW];
        let mut q = WriteQueue::new();
        q.push_slice(b"ab");
        q.push_slice(&big);
        q.push(Bytes::from_static(b"cd"));
        q.push_slice(b"");
        assert_eq!((q.len(), q.entries()), (COPY_BELOW + 4, 3));
        let mut w = Trickle {
            out: vec![],
            cap: usize::MAX,
            room: usize::MAX,
        };
        q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!(w.out, [&b"ab"[..], &big, b"cd"].concat());
    }

    #[test]
    fn the_tail_is_sealed_at_its_capacity() {
        let line = [b'x'; COPY_BELOW - 1];
        let mut q = WriteQueue::new();
        let n = TAIL_CAPACITY / line.len() + 2;
        for _ in 0..n {
            q.push(Bytes::copy_from_slice(&line));
        }
        assert_eq!(q.entries(), 2, "one sealed tail and the current one");
        assert!(q.bufs.iter().all(|b| b.len() <= TAIL_CAPACITY));
        let mut w = Trickle {
            out: vec![],
            cap: usize::MAX,
            room: usize::MAX,
        };
        q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!(w.out.len(), n * line.len());
    }

    #[test]
    fn a_partial_write_of_the_tail_keeps_the_rest() {
        let mut q = queue_of(&[b"hello ", b"world"]);
        let mut w = Trickle {
            out: vec![],
            cap: usize::MAX,
            room: 4,
        };
        assert_eq!(q.flush_to(&mut w, usize::MAX).unwrap(), (4, Flush::Blocked));
        assert_eq!(q.len(), 7);
        q.push(Bytes::from_static(b"!"));
        w.room = usize::MAX;
        q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!(w.out, b"hello world!");
    }

    #[test]
    fn shared_bytes_are_not_copied() {
        let msg = Bytes::from(vec![b'm'; COPY_BELOW]);
        let mut a = WriteQueue::new();
        let mut b = WriteQueue::new();
        a.push(msg.clone());
        b.push(msg.clone());
        assert_eq!(a.bufs[0].as_ptr(), b.bufs[0].as_ptr());
    }

    #[test]
    fn more_than_max_iovecs_buffers() {
        let mut q = WriteQueue::new();
        let mut expect = Vec::new();
        for i in 0..(MAX_IOVECS * 3 + 5) {
            let b = vec![(i % 251) as u8; 3];
            expect.extend_from_slice(&b);
            q.push(Bytes::from(b));
        }
        let mut w = Trickle {
            out: vec![],
            cap: usize::MAX,
            room: usize::MAX,
        };
        q.flush_to(&mut w, usize::MAX).unwrap();
        assert_eq!(w.out, expect);
    }
}
