//! What the servers and the clients share: the text catalogue and its
//! languages ([`catalog`]), sanitising peer text ([`text`]), access tokens
//! and the authentication wire ([`auth`]), JSON replies ([`json_reply`]),
//! the heartbeat protocol ([`heartbeat`]), wall-clock stamps
//! ([`wall_clock`]), `host:port` parsing ([`target`]) and the upload
//! digests' spelling ([`upload`]).

pub mod auth;
pub mod catalog;
pub mod heartbeat;
pub mod json_reply;
pub mod target;
pub mod text;
pub mod upload;
pub mod wall_clock;
