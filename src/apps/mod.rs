//! The servers of the `netloop` binary, each a [`crate::Handler`].

pub mod banner_echo;
pub mod catalog;
pub mod chat;
pub mod command;
pub mod echo;
pub mod halfclose;
pub mod idle;
pub mod lines;
