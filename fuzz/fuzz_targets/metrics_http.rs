//! The metrics endpoint's request parser (`metrics::http::parse_request`): reads accumulate as
//! on a scrape connection; after each one the answer equals the naive model's, `None` only
//! while the head is incomplete and under the limit, and the first answer is the whole
//! stream's (reading on never changes it); the response is well formed (see
//! `netloop_fuzz::run_request`).
//!
//! When the low three bits of byte 0 are set (one input in eight), the stream is repeated to
//! 8,190–8,221 bytes, past the 8 KiB head limit, and cut into reads 1024 times the usual
//! sizes: the `431` path and the limit's edge are reached without libFuzzer having to grow
//! inputs to 8 KiB, which re-parsing on every read would make very slow. A padded run costs
//! many ordinary ones, hence one in eight.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop::metrics::http::MAX_REQUEST_BYTES;
use netloop_fuzz::{run_request, Case};

/// Read sizes are multiplied by this for a padded stream.
const PADDED_SCALE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let padded: Vec<u8>;
    let (stream, scale) = if case.knob & 7 == 7 {
        let len = MAX_REQUEST_BYTES - 2 + usize::from(case.knob >> 3);
        padded = case.stream.iter().copied().cycle().take(len).collect();
        (&padded[..], PADDED_SCALE)
    } else {
        (case.stream, 1)
    };
    let whole = run_request(&[stream]);
    let split = run_request(&case.chunks_of(stream, scale));
    assert_eq!(
        split.map(|s| s.0),
        whole.map(|w| w.0),
        "split differs from whole"
    );
});
