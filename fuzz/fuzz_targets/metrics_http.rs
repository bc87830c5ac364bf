//! The metrics endpoint's request parser (`metrics::http::parse_request`): reads accumulate as
//! on a scrape connection; after each one the answer equals the naive model's, `None` only
//! while the head is incomplete and under the limit, and the first answer is the whole
//! stream's (reading on never changes it); the response is well formed (see
//! `netloop_fuzz::run_request`).
//!
//! An odd byte 0 repeats the stream up to past the 8 KiB head limit (in reads 256 times the
//! usual sizes), so the `431` path and the limit's edge are reached without libFuzzer having
//! to grow inputs to 8 KiB, which re-parsing on every read would make very slow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop::metrics::http::MAX_REQUEST_BYTES;
use netloop_fuzz::{run_request, Case};

/// Read sizes are multiplied by this for a padded stream.
const PADDED_SCALE: usize = 256;

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let padded: Vec<u8>;
    let (stream, scale) = if case.knob & 1 == 1 {
        let len = MAX_REQUEST_BYTES - 2 + usize::from(case.knob >> 1);
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
