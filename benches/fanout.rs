//! Chat fan-out encoding, and the write queue with mixed message sizes.
//!
//! * `flush`: N small `Bytes` (16–256 B, the sizes of chat lines and echo
//!   replies) pushed and flushed into a sink that takes at most 64 KiB per
//!   `writev` call (a socket's send buffer), so the gather of up to
//!   `MAX_IOVECS` slices and the partial-advance path are both measured.
//! * `fanout`: one chat line encoded once into a `Bytes` and queued on 1,000
//!   queues (a refcount bump per recipient), against copying it per
//!   recipient: what "encode once, share the buffer" saves.

use std::hint::black_box;
use std::io::{self, IoSlice, Write};

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use netloop::conn::write_queue::WriteQueue;

/// A sink that accepts at most `cap` bytes per call (like a send buffer that
/// drains between calls) and discards them.
struct Sink {
    cap: usize,
    total: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(self.cap - n);
            // Touch the bytes as the kernel's copy would.
            black_box(&b[..take]);
            n += take;
            if n == self.cap {
                break;
            }
        }
        self.total += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Messages of 16–256 bytes, deterministic sizes.
fn messages(n: usize) -> (Vec<Bytes>, usize) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut total = 0;
    let v = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 16 + (x % 241) as usize;
            total += len;
            Bytes::from(vec![b'a'; len])
        })
        .collect();
    (v, total)
}

fn flush(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_queue");
    for n in [64usize, 1024] {
        let (msgs, total) = messages(n);
        g.throughput(Throughput::Bytes(total as u64));
        g.bench_function(format!("push+flush {n} small Bytes"), |b| {
            b.iter_batched(
                || msgs.clone(),
                |msgs| {
                    let mut q = WriteQueue::new();
                    for m in msgs {
                        q.push(m);
                    }
                    let mut sink = Sink {
                        cap: 64 * 1024,
                        total: 0,
                    };
                    let r = q.flush_to(&mut sink, usize::MAX);
                    black_box((r.ok(), sink.total))
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn fanout(c: &mut Criterion) {
    const MEMBERS: usize = 1000;
    let mut g = c.benchmark_group("fanout_1000");
    g.throughput(Throughput::Elements(MEMBERS as u64));
    let mut queues: Vec<WriteQueue> = (0..MEMBERS).map(|_| WriteQueue::new()).collect();
    let nick = "user42";
    let text = "hello everyone, the build is green again";
    g.bench_function("encode once, share Bytes", |b| {
        b.iter(|| {
            let mut line = BytesMut::with_capacity(nick.len() + text.len() + 5);
            line.put_u8(b'[');
            line.put_slice(nick.as_bytes());
            line.put_slice(b"]: ");
            line.put_slice(text.as_bytes());
            line.put_u8(b'\n');
            let line = line.freeze();
            for q in queues.iter_mut() {
                q.push(line.clone());
            }
            for q in queues.iter_mut() {
                q.clear();
            }
        })
    });
    g.bench_function("encode per member (copy)", |b| {
        b.iter(|| {
            for q in queues.iter_mut() {
                let line = Bytes::from(format!("[{nick}]: {text}\n"));
                q.push(line);
            }
            for q in queues.iter_mut() {
                q.clear();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, flush, fanout);
criterion_main!(benches);
