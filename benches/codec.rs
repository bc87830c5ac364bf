//! Throughput of the line and frame decoders over a realistic mix, fed in 64 KiB reads.
//!
//! Lines: chat-like text, 10–200 bytes (some CRLF, some multi-byte UTF-8). Frames: JSON bodies of
//! 30 B–4 KiB. Each iteration decodes the whole input, appended to one `BytesMut` in 64 KiB
//! chunks the way the reactor appends reads.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netloop::codec::{
    encode_frame, parse_message, FrameDecoder, LineDecoder, DEFAULT_MAX_FRAME, DEFAULT_MAX_LINE,
};

/// Size of one simulated read.
const READ_SIZE: usize = 64 * 1024;
/// Approximate size of each generated input.
const INPUT_SIZE: usize = 8 * 1024 * 1024;

/// Tiny deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "hello", "world", "/nick", "/join", "room", "ok", "see", "you", "你好", "世界", "lol", "the",
    "server", "is", "up", "again", "ping", "🙂",
];

fn chat_lines(rng: &mut Rng) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(INPUT_SIZE + 256);
    let mut count = 0;
    while out.len() < INPUT_SIZE {
        let target = rng.range(10, 201);
        let start = out.len();
        while out.len() - start < target {
            let word = WORDS[rng.range(0, WORDS.len())];
            out.extend_from_slice(word.as_bytes());
            out.push(b' ');
        }
        if rng.next().is_multiple_of(4) {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b'\n');
        }
        count += 1;
    }
    (out, count)
}

fn json_frames(rng: &mut Rng) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(INPUT_SIZE + 8192);
    let mut count = 0;
    while out.len() < INPUT_SIZE {
        // Mostly small control messages, some larger payloads.
        let size = match rng.next() % 10 {
            0..=5 => rng.range(30, 200),
            6..=8 => rng.range(200, 1024),
            _ => rng.range(1024, 4097),
        };
        let pad = size.saturating_sub(30);
        let body = format!(r#"{{"type":"echo","data":"{}","t":1}}"#, "x".repeat(pad));
        out.extend_from_slice(&encode_frame(body.as_bytes(), DEFAULT_MAX_FRAME).unwrap());
        count += 1;
    }
    (out, count)
}

fn decode_lines(input: &[u8]) -> usize {
    let mut dec = LineDecoder::new(DEFAULT_MAX_LINE);
    let mut buf = BytesMut::with_capacity(2 * READ_SIZE);
    let mut n = 0;
    for chunk in input.chunks(READ_SIZE) {
        buf.extend_from_slice(chunk);
        while let Some(line) = dec.decode(&mut buf).unwrap() {
            n += black_box(line).len();
        }
    }
    n
}

fn decode_frames(input: &[u8], parse: bool) -> usize {
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = BytesMut::with_capacity(2 * READ_SIZE);
    let mut n = 0;
    for chunk in input.chunks(READ_SIZE) {
        buf.extend_from_slice(chunk);
        while let Some(body) = dec.decode(&mut buf).unwrap() {
            if parse {
                let (kind, map) = parse_message(&body).unwrap();
                n += kind.len() + map.len();
            }
            n += black_box(body).len();
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (lines, line_count) = chat_lines(&mut rng);
    let (frames, frame_count) = json_frames(&mut rng);
    eprintln!(
        "lines: {} bytes, {line_count} lines; frames: {} bytes, {frame_count} frames",
        lines.len(),
        frames.len()
    );

    let mut group = c.benchmark_group("codec");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(lines.len() as u64));
    group.bench_function("lines_64k_reads", |b| b.iter(|| decode_lines(&lines)));
    group.throughput(Throughput::Bytes(frames.len() as u64));
    group.bench_function("frames_64k_reads", |b| {
        b.iter(|| decode_frames(&frames, false))
    });
    group.bench_function("frames_64k_reads_parse_json", |b| {
        b.iter(|| decode_frames(&frames, true))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
