//! The `net` layer: servers, outbound connections, errors.

pub mod connect;
pub mod error;
pub mod server;
