//! The sans-IO decoders: randomised properties.
//!
//! One test binary for `src/codec`, one module per part: `cargo test
//! --test codec NAME` runs the tests whose path contains NAME.

mod properties;
mod properties_more;
