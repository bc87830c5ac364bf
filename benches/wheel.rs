//! Timer wheel throughput: 1M timers with idle-timeout-like deadlines
//! (uniform in 1 ms ..= 60 s), inserted, cancelled and expired.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use netloop::timer::{Tick, TimerKey, Wheel};

/// Timers per iteration.
const N: usize = 1_000_000;

/// Longest deadline, in ms: a 60 s idle timeout.
const SPREAD: Tick = 60_000;

/// `N` deadlines uniform in `1..=SPREAD`, from a fixed splitmix64 seed.
fn deadlines() -> Vec<Tick> {
    let mut s: u64 = 0x5EED;
    (0..N)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            1 + (z ^ (z >> 31)) % SPREAD
        })
        .collect()
}

fn filled(ds: &[Tick]) -> (Wheel<usize>, Vec<TimerKey>) {
    let mut w = Wheel::with_capacity(ds.len());
    let keys = ds
        .iter()
        .enumerate()
        .map(|(i, &d)| w.insert(d, i))
        .collect();
    (w, keys)
}

fn bench(c: &mut Criterion) {
    let ds = deadlines();
    let mut g = c.benchmark_group("wheel_1M");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(N as u64));

    g.bench_function("insert", |b| {
        b.iter_batched(
            || Wheel::with_capacity(N),
            |mut w| {
                for (i, &d) in ds.iter().enumerate() {
                    black_box(w.insert(d, i));
                }
                w
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("cancel", |b| {
        b.iter_batched(
            || filled(&ds),
            |(mut w, keys)| {
                for k in &keys {
                    black_box(w.cancel(*k));
                }
                w
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("expire_one_poll", |b| {
        b.iter_batched(
            || filled(&ds).0,
            |mut w| {
                while let Some(t) = w.poll(SPREAD) {
                    black_box(t);
                }
                w
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("expire_every_ms", |b| {
        b.iter_batched(
            || filled(&ds).0,
            |mut w| {
                for now in 1..=SPREAD {
                    while let Some(t) = w.poll(now) {
                        black_box(t);
                    }
                }
                w
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("insert_then_expire", |b| {
        b.iter_batched(
            || Wheel::with_capacity(N),
            |mut w| {
                for (i, &d) in ds.iter().enumerate() {
                    w.insert(d, i);
                }
                while let Some(t) = w.poll(SPREAD) {
                    black_box(t);
                }
                w
            },
            BatchSize::PerIteration,
        )
    });

    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
