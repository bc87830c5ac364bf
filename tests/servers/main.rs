//! The servers of the `netloop` binary, one module per service (its own
//! tests and its hostile-peer tests side by side).
//!
//! One test binary for `src/servers`, one module per part: `cargo test
//! --test servers NAME` runs the tests whose path contains NAME.

#[path = "../hostile_common/mod.rs"]
mod hostile_common;
#[path = "../lineclient/mod.rs"]
mod lineclient;
#[path = "../util/mod.rs"]
mod util;

mod auth;
mod banner_echo;
mod chat;
mod command;
mod echo;
mod fin_after_requests;
mod framed;
mod halfclose;
mod heartbeat;
mod upload;
