//! The `netloop` command line.

pub mod serve;
pub mod target;
pub mod units;
