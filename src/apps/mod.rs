//! The servers of the `netloop` binary, each a [`crate::Handler`].

pub mod echo;
pub mod framed;
pub mod framed_client;
pub mod heartbeat;
pub mod stdin_lines;
pub mod upload;
pub mod wall_clock;
