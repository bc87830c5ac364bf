//! Chat commands: a byte stream in arbitrary reads, cut into lines by the chat's framing and
//! parsed by `chat_command::parse`, gives the same commands as the whole stream; every
//! accepted name is valid, every parsed command renders to a line that parses back to it, and
//! the whole input as one line parses without panic (see `netloop_fuzz::check_chat_line`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netloop_fuzz::{check_chat_line, run_chat, Case};

/// Small limits reach `TooLong`; the default is production.
const LIMITS: [usize; 4] = [8, 64, 1024, netloop::codec::DEFAULT_MAX_LINE];

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(data);
    let max = LIMITS[usize::from(case.knob) % LIMITS.len()];
    if let Ok(text) = std::str::from_utf8(case.stream) {
        let _ = check_chat_line(text);
    }
    let whole = run_chat(max, &[case.stream]);
    assert_eq!(
        run_chat(max, &case.chunks()),
        whole,
        "split differs from whole"
    );
});
