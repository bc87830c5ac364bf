//! `netloop serve upload` and `netloop upload HOST:PORT FILE...` (the tutorial's
//! upload server and client, `07-binary-upload.js`).
//!
//! The server decodes a header block ([`crate::codec::HeaderDecoder`]), then
//! takes exactly `Filesize` bytes for the file and hands them to a file
//! [`worker`] thread, so disk I/O never blocks the loop. The client streams
//! files with backpressure and checks the server's SHA-256.

pub mod dir;
pub mod server;
pub mod store_name;
pub mod worker;
