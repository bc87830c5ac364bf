//! The `netloop` command line.

pub mod line_args;
pub mod serve;
pub mod units;
