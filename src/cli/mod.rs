//! The `netloop` command line.

pub mod units;
