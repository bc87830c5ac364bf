//! The servers of the `netloop` binary, each a [`crate::Service`].

pub mod auth;
pub mod auth_guard;
pub mod banner_echo;
pub mod catalog;
pub mod chat;
pub mod chat_command;
pub mod command;
pub mod echo;
pub mod framed;
pub mod framed_client;
pub mod halfclose;
pub mod heartbeat;
pub mod json_reply;
pub mod lines;
pub mod stdin_lines;
pub mod text;
pub mod upload;
pub mod wall_clock;
