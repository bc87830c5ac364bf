//! netloop: a single-threaded mio reactor modelled on Node.js `net`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
