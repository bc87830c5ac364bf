//! `netloop serve heartbeat` and `netloop heartbeat HOST:PORT` (seeds 09, 10).
//!
//! JSON objects, one per line, both directions ([`crate::codec::LineDecoder`]
//! frames the input, with its line limit). The server pings every client on
//! its own timer on the wheel and destroys the silent ones
//! ([`liveness`]); the client adopts the server's interval, measures RTT
//! ([`rtt`]) and reconnects with [`crate::client::reconnect`] (the line client's backoff).

pub mod client;
pub mod liveness;
pub mod message;
pub mod rtt;
pub mod server;
pub mod wire;

/// Largest heartbeat interval accepted from a server's `welcome` or the
/// command line: an hour. A hostile value cannot silence the client forever.
pub const MAX_INTERVAL_MS: u64 = 3_600_000;
/// Smallest heartbeat interval accepted from a server's `welcome`: 10 ms, so
/// a hostile value cannot make the client flood.
pub const MIN_INTERVAL_MS: u64 = 10;
