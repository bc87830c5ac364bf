//! Line decoder: arbitrary bytes in arbitrary reads decode like the whole stream and like the
//! naive model; limits hold on every call (see `netloop_fuzz::run_lines`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop_fuzz::{model_lines, run_lines, Case};

/// Small limits reach `TooLong` often; the default is the production setting.
const LIMITS: [usize; 8] = [0, 1, 2, 3, 5, 8, 64, netloop::codec::DEFAULT_MAX_LINE];

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let max = LIMITS[usize::from(case.knob) % LIMITS.len()];
    let whole = run_lines(max, &[case.stream]);
    assert_eq!(
        whole,
        model_lines(max, case.stream),
        "decoder differs from the model"
    );
    assert_eq!(
        run_lines(max, &case.chunks()),
        whole,
        "split differs from whole"
    );
});
