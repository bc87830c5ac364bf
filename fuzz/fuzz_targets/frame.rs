//! Frame decoder: arbitrary bytes in arbitrary reads decode like the whole stream and like the
//! naive model; a partial frame never exceeds the limit, errors consume nothing, nothing is
//! reserved from a declared length (see `netloop_fuzz::run_frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop_fuzz::{model_frames, run_frames, Case};

/// Small limits make random length prefixes pass sometimes; the default is production.
const LIMITS: [usize; 6] = [0, 1, 4, 16, 255, netloop::codec::DEFAULT_MAX_FRAME];

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let max = LIMITS[usize::from(case.knob) % LIMITS.len()];
    let whole = run_frames(max, &[case.stream]);
    assert_eq!(
        whole,
        model_frames(max, case.stream),
        "decoder differs from the model"
    );
    let (items, rest) = run_frames(max, &case.chunks());
    assert_eq!(items, whole.0, "split differs from whole");
    if matches!(items.last(), Some(Err(_))) {
        assert!(whole.1.starts_with(&rest));
    } else {
        assert_eq!(rest, whole.1);
    }
    // Whatever decoded re-encodes to the bytes it came from.
    let mut again = Vec::new();
    for body in whole.0.iter().flatten() {
        let frame = netloop::codec::encode_frame(body, max).expect("decoded, so within limit");
        again.extend_from_slice(&frame);
    }
    assert!(case.stream.starts_with(&again));
});
