//! JSON replies shared by the JSON servers and clients (framed, heartbeat,
//! upload): one object as one `\n`-terminated line, and the `error` message.
//!
//! Serialising a `serde_json::Value` cannot fail (its keys are strings), so
//! the empty fallback is never sent in practice; it avoids an `unwrap`.

use crate::protocol::wall_clock::unix_ms;
use bytes::Bytes;
use serde_json::{json, Value};

/// `v` as one JSON line (`\n`-terminated), ready to queue (and to `clone()`
/// per recipient of a broadcast).
pub fn json_line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// The `error` message of the framed and heartbeat protocols:
/// `{type: "error", message, timestamp}`.
pub fn error_message(text: &str) -> Value {
    json!({"type": "error", "message": text, "timestamp": unix_ms()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_value() {
        let b = json_line(&json!({"a": 1}));
        assert_eq!(&b[..], b"{\"a\":1}\n");
        let e = error_message("bad");
        assert_eq!(e["type"], "error");
        assert_eq!(e["message"], "bad");
        assert!(e["timestamp"].is_u64());
    }
}
