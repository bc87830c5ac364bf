//! Heartbeat messages: a byte stream in arbitrary reads, cut into lines and classified by
//! `heartbeat::message::classify`, gives the same results as the whole stream; a classified
//! object re-serialised classifies the same way; errors match the codec's and quote no input
//! (see `netloop_fuzz::check_heartbeat_line`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop_fuzz::{check_heartbeat_line, run_heartbeat, Case};

/// Small limits reach `TooLong`; the default is production.
const LIMITS: [usize; 4] = [8, 64, 1024, netloop::codec::DEFAULT_MAX_LINE];

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let max = LIMITS[usize::from(case.knob) % LIMITS.len()];
    if let Ok(text) = std::str::from_utf8(case.stream) {
        let _ = check_heartbeat_line(text);
    }
    let whole = run_heartbeat(max, &[case.stream]);
    assert_eq!(
        run_heartbeat(max, &case.chunks()),
        whole,
        "split differs from whole"
    );
});
