//! The `netloop` command line.

pub mod serve;
pub mod units;
pub mod target;
