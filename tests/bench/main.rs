//! The load generator and the comparison scripts.
//!
//! One test binary for `src/bench`, one module per part: `cargo test
//! --test bench NAME` runs the tests whose path contains NAME.

#[path = "../util/mod.rs"]
mod util;

mod compare_quick;
mod libuv_suites;
mod plots;
mod progress;
mod soak;
mod workloads;
