//! The `net` layer: servers, outbound connections, errors.

pub mod connect;
/// Errors live at the bottom of the crate ([`crate::error`]).
pub use crate::error;
pub mod server;
