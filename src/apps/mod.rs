//! The servers of the `netloop` binary, each a [`crate::Handler`].

pub mod echo;
