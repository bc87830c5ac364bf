//! The binary as a user runs it: commands, warnings, deployment files, examples.
//!
//! One test binary for `src/cli`, one module per part: `cargo test
//! --test cli NAME` runs the tests whose path contains NAME.

#[path = "../util/mod.rs"]
mod util;

mod binary;
mod bind_warning;
mod deploy;
mod docs_tables;
mod examples;
mod top;
