//! The `netloop` command line.

pub mod auth_args;
pub mod line_args;
pub mod serve;
pub mod tls_args;
pub mod top;
pub mod units;
pub mod upload;

pub use crate::error::fatal;
