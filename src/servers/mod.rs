//! The servers of the `netloop` binary, each a [`crate::Service`]. What a
//! server shares with the clients (the text catalogue, sanitising, tokens,
//! the heartbeat wire) is in [`crate::protocol`].

pub mod auth_guard;
pub mod banner_echo;
pub mod chat;
pub mod chat_backplane;
pub mod chat_command;
pub mod chat_redis;
pub mod command;
pub mod echo;
pub mod framed;
pub mod halfclose;
pub mod heartbeat;
pub mod lines;
pub mod upload;
