//! The heartbeat server's per-ping encoding and decoding, without a JSON tree.
//!
//! **Encoding.** A [`LineTemplate`] is a JSON line serialised once, by
//! `serde_json` itself, with placeholder numbers in the fields that change
//! (a ping's `timestamp`, a pong's `timestamp` and `serverTime`); rendering it
//! copies the fixed parts around the new numbers into one buffer of the exact
//! length. The bytes are therefore those `serde_json` would write for the same
//! message (same key order, same escaping), without building a map of
//! strings per message: one allocation per line instead of about nine.
//!
//! **Decoding.** [`classify_fast`] reads a line into a typed struct that
//! borrows the `type` and keeps only `timestamp`, which covers the lines of
//! the steady state (`pong`, `ping`, `heartbeat`, `status` with at most a
//! `timestamp`) without allocating. Whatever it cannot read that way (another
//! type, another field, escapes in the type, a duplicate key, a timestamp that
//! is not a number, invalid JSON)
//! goes to [`classify`], so its answer, errors included, is always the one
//! [`classify`] gives (checked below on the lines where they could differ).

use super::message::{classify, Inbound};
use crate::codec::MessageError;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Number, Value};
use std::io::Write;

/// Longest text of one JSON number as `serde_json` writes it: a `u64` takes
/// 20 bytes, an `i64` 20, an `f64` at most 24 (`-1.7976931348623157e308`).
const MAX_NUMBER_TEXT: usize = 32;

/// Most placeholders in one template (a pong has two). Rendering keeps the
/// numbers' text on the stack, so the count is fixed.
pub const MAX_HOLES: usize = 4;

/// A JSON line with numbered holes for numbers; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct LineTemplate {
    /// Text around the holes: `parts.len() == order.len() + 1`.
    parts: Vec<Box<[u8]>>,
    /// Which hole (index into [`LineTemplate::render`]'s values) each gap is.
    order: Vec<usize>,
}

/// The placeholder for hole `i`: numbers no message of ours carries.
fn placeholder(i: usize) -> u64 {
    u64::MAX - i as u64
}

impl LineTemplate {
    /// A template of `msg` (an object) with the top-level fields `holes`
    /// replaced by the values given to [`LineTemplate::render`], in that
    /// order. `None` if `msg` is not an object, a hole is missing or a
    /// placeholder number appears elsewhere in `msg`.
    pub fn new(msg: &Value, holes: &[&str]) -> Option<LineTemplate> {
        if holes.len() > MAX_HOLES {
            return None;
        }
        let mut msg = msg.clone();
        let obj = msg.as_object_mut()?;
        for (i, key) in holes.iter().enumerate() {
            *obj.get_mut(*key)? = Value::from(placeholder(i));
        }
        let text = serde_json::to_vec(&msg).ok()?;
        let mut found: Vec<(usize, usize, usize)> = Vec::new(); // (at, len, hole)
        for i in 0..holes.len() {
            let needle = placeholder(i).to_string();
            let mut hits = text
                .windows(needle.len())
                .enumerate()
                .filter(|(_, w)| *w == needle.as_bytes())
                .map(|(at, _)| at);
            let at = hits.next()?;
            if hits.next().is_some() {
                return None;
            }
            found.push((at, needle.len(), i));
        }
        found.sort_unstable();
        let mut parts = Vec::with_capacity(found.len() + 1);
        let mut from = 0;
        for &(at, len, _) in &found {
            parts.push(text[from..at].into());
            from = at + len;
        }
        let mut last = text[from..].to_vec();
        last.push(b'\n');
        parts.push(last.into_boxed_slice());
        Some(LineTemplate {
            parts,
            order: found.iter().map(|&(_, _, hole)| hole).collect(),
        })
    }

    /// The line with `values[i]` in hole `i`, newline included, in one
    /// allocation of the exact size. Missing values are written as `null`
    /// (a caller bug, not a peer's doing).
    pub fn render(&self, values: &[&Number]) -> Bytes {
        let mut texts = [([0u8; MAX_NUMBER_TEXT], 0usize); MAX_HOLES];
        for (slot, &hole) in texts.iter_mut().zip(&self.order) {
            let mut w = &mut slot.0[..];
            let ok = match values.get(hole) {
                Some(n) => serde_json::to_writer(&mut w, n).is_ok(),
                None => w.write_all(b"null").is_ok(),
            };
            let left = w.len();
            slot.1 = if ok { MAX_NUMBER_TEXT - left } else { 0 };
        }
        let len = self.parts.iter().map(|p| p.len()).sum::<usize>()
            + texts.iter().map(|t| t.1).sum::<usize>();
        // Exact capacity: `Bytes::from` a full `Vec` takes it over without a
        // second allocation for the shared header.
        let mut out = Vec::with_capacity(len);
        for (i, part) in self.parts.iter().enumerate() {
            out.extend_from_slice(part);
            if let Some((text, n)) = texts.get(i).filter(|_| i < self.order.len()) {
                out.extend_from_slice(&text[..*n]);
            }
        }
        Bytes::from(out)
    }
}

/// The fields of a steady-state line, borrowed from it. Any other field
/// sends the line to [`classify`]: `serde_json` skips an ignored field
/// without checking all of it (a lone `\ud800` escape passes), so reading
/// only the known fields could accept a line that [`classify`] refuses.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    timestamp: Option<Number>,
}

/// [`classify`], with the common lines read without building a JSON tree
/// (see the [module documentation](self)).
pub fn classify_fast(text: &str) -> Result<Inbound, MessageError> {
    // A struct would also accept a JSON array by position; only objects here.
    if text.trim_start().starts_with('{') {
        if let Ok(head) = serde_json::from_str::<Head>(text) {
            match head.kind {
                "pong" => {
                    return Ok(Inbound::Pong {
                        timestamp: head.timestamp.and_then(|n| n.as_u64()),
                    })
                }
                "ping" => {
                    return Ok(Inbound::Ping {
                        timestamp: head.timestamp,
                    })
                }
                "heartbeat" => return Ok(Inbound::Heartbeat),
                "status" => return Ok(Inbound::Status),
                _ => {}
            }
        }
    }
    classify(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rendered_lines_are_what_serde_json_writes() {
        let base =
            json!({"type": "ping", "timestamp": 0, "urgent": false, "message": "héllo \"x\""});
        let t = LineTemplate::new(&base, &["timestamp"]).expect("template");
        for ts in [0u64, 7, 1_764_900_000_123, u64::MAX - 10] {
            let mut want = base.clone();
            want["timestamp"] = json!(ts);
            let mut want = serde_json::to_vec(&want).expect("json");
            want.push(b'\n');
            assert_eq!(t.render(&[&Number::from(ts)]), Bytes::from(want));
        }
        let pong = json!({"type": "pong", "timestamp": 0, "serverTime": 0});
        let t = LineTemplate::new(&pong, &["timestamp", "serverTime"]).expect("template");
        for ts in [
            json!(-5),
            json!(1.5e300),
            json!(-1.7976931348623157e308),
            json!(12),
        ] {
            let Value::Number(n) = &ts else { panic!() };
            let want = json!({"type": "pong", "timestamp": ts, "serverTime": 99});
            let got = t.render(&[n, &Number::from(99u64)]);
            assert_eq!(got, Bytes::from(format!("{want}\n")));
            let back: Value = serde_json::from_slice(&got).expect("parses");
            assert_eq!(back, want);
        }
    }

    #[test]
    fn templates_refuse_what_they_cannot_fill() {
        assert!(LineTemplate::new(&json!([1]), &["a"]).is_none());
        assert!(LineTemplate::new(&json!({"a": 1}), &["b"]).is_none());
        let clash = json!({"a": 1, "b": u64::MAX});
        assert!(LineTemplate::new(&clash, &["a"]).is_none());
        let five = json!({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1});
        assert!(LineTemplate::new(&five, &["a", "b", "c", "d", "e"]).is_none());
    }

    #[test]
    fn fast_classification_agrees_with_classify() {
        let lines = [
            "",
            "  ",
            r#"{"type":"pong","timestamp":17}"#,
            r#"{"type":"pong","timestamp":-1}"#,
            r#"{"type":"pong","timestamp":1.0}"#,
            r#"{"type":"pong","timestamp":"17"}"#,
            r#"{"type":"pong","timestamp":null}"#,
            r#"{"type":"pong","timestamp":{"a":1}}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"pong","timestamp":1,"timestamp":2}"#,
            r#"{"type":"pong","type":"ping"}"#,
            r#"{"type":"p\u006fng","timestamp":3}"#,
            r#"{"timestamp":3,"type":"ping","x":[1,{"y":null}]}"#,
            r#"{"type":"ping","timestamp":1e400}"#,
            r#"{"type":"ping","timestamp":-0.5}"#,
            r#"{"type":"heartbeat","extra":"\ud800"}"#,
            r#" {"type":"status"} "#,
            r#"{"type":"Ping"}"#,
            r#"{"type":"echo","data":[1,2]}"#,
            r#"["pong",17]"#,
            r#"{"type":17}"#,
            r#"{}"#,
            r#"{"type":"pong""#,
            r#"{"type":"pong"} x"#,
            "null",
            "\u{a0}{\"type\":\"pong\"}",
        ];
        for line in lines {
            assert_eq!(classify_fast(line), classify(line), "{line:?}");
        }
    }
}
