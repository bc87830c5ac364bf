//! The clients of the `netloop` binary.
//!
//! One test binary for `src/clients`, one module per part: `cargo test
//! --test clients NAME` runs the tests whose path contains NAME.

#[path = "../util/mod.rs"]
mod util;

mod heartbeat;
mod interactive;
mod node_seed;
mod tty;
