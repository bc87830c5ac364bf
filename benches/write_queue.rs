//! Write queue: queue many small `Bytes` and flush them with vectored writes
//! into a sink that takes everything (the queue's own cost, not the kernel's),
//! and into a real loopback socket (one `writev` per 64 buffers).

use std::hint::black_box;
use std::io::{self, IoSlice, Read, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use netloop::conn::write_queue::WriteQueue;
use netloop::Bytes;

/// Buffers per iteration.
const N: usize = 10_000;
/// Size of one buffer: a small chat line.
const SIZE: usize = 64;

/// A sink that accepts every byte of every slice.
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        self.0 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn filled(msg: &Bytes) -> WriteQueue {
    let mut q = WriteQueue::new();
    for _ in 0..N {
        // Shared, not copied: the fan-out case.
        q.push(msg.clone());
    }
    q
}

fn bench(c: &mut Criterion) {
    let msg = Bytes::from(vec![b'x'; SIZE]);
    let mut g = c.benchmark_group("write_queue");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(N as u64));

    g.bench_function("push 10k shared 64 B buffers", |b| {
        b.iter(|| black_box(filled(&msg)))
    });

    g.bench_function("flush 10k x 64 B into a sink", |b| {
        b.iter_batched(
            || filled(&msg),
            |mut q| {
                let mut sink = Sink(0);
                let r = q.flush_to(&mut sink, usize::MAX).expect("sink never fails");
                black_box((r, sink.0))
            },
            BatchSize::LargeInput,
        )
    });

    // Real socket: the reader drains on a thread so the writer never blocks
    // for long; this measures writev syscalls of 64 buffers each.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    g.bench_function("flush 10k x 64 B into loopback TCP", |b| {
        b.iter_batched(
            || filled(&msg),
            |mut q| {
                while !q.is_empty() {
                    q.flush_to(&mut sock, usize::MAX).expect("loopback write");
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    drop(sock);
    let _ = reader.join();
}

criterion_group!(benches, bench);
criterion_main!(benches);
