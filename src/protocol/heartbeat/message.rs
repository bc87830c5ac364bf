//! One line received by the heartbeat server, classified without IO.
//!
//! Algorithm: a line that is empty after trimming is [`Inbound::Blank`]
//! (liveness only). Anything else goes through
//! [`crate::codec::parse_message`] (UTF-8 JSON object with a string `type`;
//! its error is what the client is told) and is classified by its `type`:
//! `heartbeat`, `pong` (with the `timestamp` it echoes if that is a `u64`:
//! only a pong can answer one of our pings, so a peer cannot make up an RTT
//! with a timestamp of its own choosing), `ping` (with the client's
//! `timestamp` if it is a number, echoed as is), `status`, and every other
//! type as [`Inbound::Other`] with the whole object, which the server echoes.
//!
//! Caller's contract: pass one line without its terminator (as
//! [`crate::codec::LineDecoder`] returns it); [`classify`] never panics and
//! holds nothing. Re-serialising the object of an `Ok` line and classifying
//! that gives the same value (checked by the `heartbeat_message` fuzz target).

use crate::codec::{parse_message, MessageError};
use serde_json::{Map, Number, Value};

/// What one line asks of the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// Only whitespace: liveness, no reply.
    Blank,
    /// `{"type":"heartbeat"}`: counts as a heartbeat.
    Heartbeat,
    /// `{"type":"pong"}`: counts as a heartbeat; `timestamp` if it is a `u64`.
    Pong {
        /// The timestamp the pong echoes, when it can be one of ours.
        timestamp: Option<u64>,
    },
    /// `{"type":"ping"}`: answered with a `pong`.
    Ping {
        /// The client's `timestamp` when it is a JSON number (echoed as is).
        timestamp: Option<Number>,
    },
    /// `{"type":"status"}`: answered with `status_response`.
    Status,
    /// Any other type: echoed back, whole.
    Other(Map<String, Value>),
}

/// Classifies one line (see the [module documentation](self)).
pub fn classify(text: &str) -> Result<Inbound, MessageError> {
    if text.trim().is_empty() {
        return Ok(Inbound::Blank);
    }
    let (kind, msg) = parse_message(text.as_bytes())?;
    Ok(match kind.as_str() {
        "heartbeat" => Inbound::Heartbeat,
        "pong" => Inbound::Pong {
            timestamp: msg.get("timestamp").and_then(Value::as_u64),
        },
        "ping" => Inbound::Ping {
            timestamp: match msg.get("timestamp") {
                Some(Value::Number(n)) => Some(n.clone()),
                _ => None,
            },
        },
        "status" => Inbound::Status,
        _ => Inbound::Other(msg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types() {
        assert_eq!(classify(" \t"), Ok(Inbound::Blank));
        assert_eq!(classify(r#"{"type":"heartbeat"}"#), Ok(Inbound::Heartbeat));
        assert_eq!(
            classify(r#"{"type":"pong","timestamp":17}"#),
            Ok(Inbound::Pong {
                timestamp: Some(17)
            })
        );
        assert_eq!(
            classify(r#"{"type":"pong","timestamp":-1}"#),
            Ok(Inbound::Pong { timestamp: None })
        );
        assert_eq!(
            classify(r#"{"type":"ping","timestamp":1.5}"#),
            Ok(Inbound::Ping {
                timestamp: Number::from_f64(1.5)
            })
        );
        assert_eq!(
            classify(r#"{"type":"ping","timestamp":"x"}"#),
            Ok(Inbound::Ping { timestamp: None })
        );
        assert_eq!(classify(r#" {"type":"status"} "#), Ok(Inbound::Status));
    }

    #[test]
    fn other_types_keep_the_object() {
        let Ok(Inbound::Other(m)) = classify(r#"{"type":"Ping","a":[1]}"#) else {
            panic!("not Other");
        };
        assert_eq!(m.get("type"), Some(&Value::from("Ping")));
        assert_eq!(m.get("a"), Some(&serde_json::json!([1])));
    }

    #[test]
    fn errors_are_the_codecs() {
        assert_eq!(classify("null"), Err(MessageError::NotObject));
        assert_eq!(classify("{}"), Err(MessageError::MissingType));
        assert_eq!(classify(r#"{"type":1}"#), Err(MessageError::TypeNotString));
        assert!(matches!(classify("{"), Err(MessageError::NotJson(_))));
    }
}
