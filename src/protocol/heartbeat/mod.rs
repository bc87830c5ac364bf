//! The heartbeat protocol, shared by the server and the client: JSON
//! objects, one per line; the messages ([`message`]), the server's fast
//! paths over them ([`wire`]) and round-trip bookkeeping ([`rtt`]).

pub mod message;
pub mod rtt;
pub mod wire;

/// Largest heartbeat interval accepted from a server's `welcome` or the
/// command line: an hour. A hostile value cannot silence the client forever.
pub const MAX_INTERVAL_MS: u64 = 3_600_000;
/// Smallest heartbeat interval accepted from a server's `welcome`: 10 ms, so
/// a hostile value cannot make the client flood.
pub const MIN_INTERVAL_MS: u64 = 10;
