//! `netloop serve heartbeat`: JSON objects, one per line, both directions
//! ([`crate::codec::LineDecoder`] frames the input, with its line limit).
//! The server pings every client on its own timer on the wheel and destroys
//! the silent ones ([`liveness`]). The wire and the messages it shares with
//! the client ([`crate::clients::heartbeat`]) are in
//! [`crate::protocol::heartbeat`].

pub mod liveness;
pub mod server;

pub use crate::protocol::heartbeat::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
