//! Loop metrics: the counters and the HTTP endpoint.
//!
//! One test binary for `src/metrics`, one module per part: `cargo test
//! --test metrics NAME` runs the tests whose path contains NAME.

#[path = "../util/mod.rs"]
mod util;

mod counts;
mod grafana;
mod http;
mod live;
mod loop_delay;
