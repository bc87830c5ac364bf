//! `netloop serve APP --workers N`: one loop per worker on `SO_REUSEPORT`
//! listeners, and the state that spans connections kept for the whole
//! process (chat rooms, nicknames and whispers across workers, command ids
//! and `/list`, the heartbeat's client count, upload names).
//!
//! One module per part: `cargo test --test workers NAME` runs the tests
//! whose path contains NAME.

#[path = "../lineclient/mod.rs"]
mod lineclient;
#[path = "../util/mod.rs"]
mod util;

mod chat;
mod command;
mod heartbeat;
mod spread;
mod upload;
