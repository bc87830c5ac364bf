//! The metrics endpoint's request parser (`metrics::http::parse_request`): reads accumulate as
//! on a scrape connection; after each one the answer equals the naive model's, `None` only
//! while the head is incomplete and under the limit, and the first answer is the whole
//! stream's (reading on never changes it); the response is well formed (see
//! `netloop_fuzz::run_request`). The byte-0 knob is unused here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop_fuzz::{run_request, Case};

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let whole = run_request(&[case.stream]);
    let split = run_request(&case.chunks());
    assert_eq!(
        split.map(|s| s.0),
        whole.map(|w| w.0),
        "split differs from whole"
    );
});
