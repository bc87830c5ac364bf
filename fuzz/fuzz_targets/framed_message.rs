//! Framed JSON messages (`netloop serve framed`): a byte stream in arbitrary reads, cut into
//! frames and parsed by `codec::parse_message`, gives the same messages as the whole stream;
//! a parsed object carries its `type` and survives a JSON round trip; `NotUtf8` exactly when
//! the body is not UTF-8; errors quote no input (see `netloop_fuzz::check_message`). The whole
//! stream is also parsed as one body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop_fuzz::{check_message, run_framed, Case};

/// Body limits: tiny, small, and the production default.
const LIMITS: [usize; 3] = [16, 1024, netloop::codec::DEFAULT_MAX_FRAME];

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let max = LIMITS[usize::from(case.knob) % LIMITS.len()];
    let _ = check_message(case.stream);
    let whole = run_framed(max, &[case.stream]);
    assert_eq!(
        run_framed(max, &case.chunks()),
        whole,
        "split differs from whole"
    );
});
