//! Upload header decoder: arbitrary bytes in arbitrary reads give the same result and consume
//! the same bytes as the whole stream; the block ends where a naive search says; an accepted
//! header has a valid file name and size (see `netloop_fuzz::run_header`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop::codec::{HeaderError, MAX_HEADER_BYTES};
use netloop_fuzz::{model_block_end, run_header, Case};

/// File size limits: tiny, the default, and none.
const LIMITS: [u64; 3] = [100, netloop::codec::DEFAULT_MAX_FILE_SIZE, u64::MAX];

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let max = LIMITS[usize::from(case.knob) % LIMITS.len()];
    let whole = run_header(max, &[case.stream]);
    match model_block_end(case.stream) {
        Some(end) => assert_eq!(whole.as_ref().map(|w| w.1), Some(end)),
        None if case.stream.len() >= MAX_HEADER_BYTES => {
            assert!(matches!(
                whole,
                Some((Err(HeaderError::TooLarge { .. }), 0))
            ))
        }
        None => assert!(whole.is_none()),
    }
    assert_eq!(
        run_header(max, &case.chunks()),
        whole,
        "split differs from whole"
    );
});
