//! The bad inputs a soak mixes in, each on its own connection, and the
//! documented answer each must get.
//!
//! | kind | sent | must get |
//! |---|---|---|
//! | `long_line` (chat) | `max_line + 1` bytes, no newline | `error: line longer than ...`, then the server closes |
//! | `bad_utf8` (chat) | a line that is not UTF-8 | `error: line is not valid UTF-8, ignored`; the session goes on (`/quit` → `Goodbye!`) |
//! | `unknown_command` (chat) | `/frobnicate now` | `Unknown command: /frobnicate...`; the session goes on |
//! | `bad_json` (framed) | a frame that is not JSON | an `error` frame; the connection goes on (a `ping` gets its `pong`) |
//! | `not_object` (framed) | a JSON array | the same |
//! | `zero_frame` (framed) | a zero-length frame | the same |
//! | `unknown_type` (framed) | `{"type":"nope"}` | the same |
//! | `huge_prefix` (framed) | a length prefix of `u32::MAX` | an `error` frame, then the server closes |
//!
//! [`BadProbe`] is sans-IO: feed it what arrives ([`BadProbe::on_text`],
//! [`BadProbe::on_frame`]); it says what to send next, and at the close
//! whether the answer was the documented one.

use super::servers::Kind;
use crate::codec::lines::DEFAULT_MAX_LINE;
use bytes::Bytes;
use serde_json::Value;
use std::fmt;

/// Most server text a chat probe keeps while looking for its answer (the
/// banner and the error line are far shorter).
const MAX_SEEN: usize = 64 * 1024;

/// A kind of bad input.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BadKind {
    /// Chat: a line over the limit.
    LongLine,
    /// Chat: a line that is not UTF-8.
    BadUtf8,
    /// Chat: an unknown command.
    UnknownCommand,
    /// Framed: a body that is not JSON.
    BadJson,
    /// Framed: JSON that is not an object.
    NotObject,
    /// Framed: an empty body.
    ZeroFrame,
    /// Framed: an unknown `type`.
    UnknownType,
    /// Framed: a length prefix over the limit.
    HugePrefix,
}

impl BadKind {
    /// Every kind, for choosing one.
    pub const ALL: [BadKind; 8] = [
        BadKind::LongLine,
        BadKind::BadUtf8,
        BadKind::UnknownCommand,
        BadKind::BadJson,
        BadKind::NotObject,
        BadKind::ZeroFrame,
        BadKind::UnknownType,
        BadKind::HugePrefix,
    ];

    /// The server it is sent to.
    pub fn server(self) -> Kind {
        match self {
            BadKind::LongLine | BadKind::BadUtf8 | BadKind::UnknownCommand => Kind::Chat,
            _ => Kind::Framed,
        }
    }
}

impl fmt::Display for BadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadKind::LongLine => "long_line",
            BadKind::BadUtf8 => "bad_utf8",
            BadKind::UnknownCommand => "unknown_command",
            BadKind::BadJson => "bad_json",
            BadKind::NotObject => "not_object",
            BadKind::ZeroFrame => "zero_frame",
            BadKind::UnknownType => "unknown_type",
            BadKind::HugePrefix => "huge_prefix",
        })
    }
}

/// Where a probe is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Step {
    /// The bad input is out; waiting for the error.
    Error,
    /// The error came; waiting for the follow-up's answer (`Goodbye!`, `pong`).
    FollowUp,
    /// The answer came; waiting for the close.
    Close,
}

/// One bad-input connection.
#[derive(Debug)]
pub struct BadProbe {
    /// What it sends.
    pub kind: BadKind,
    step: Step,
    seen: String,
}

fn frame(body: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(4 + body.len());
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    Bytes::from(v)
}

impl BadProbe {
    /// A probe of `kind`.
    pub fn new(kind: BadKind) -> BadProbe {
        BadProbe {
            kind,
            step: Step::Error,
            seen: String::new(),
        }
    }

    /// The bytes to send once connected (framed: after the welcome).
    pub fn input(&self) -> Bytes {
        match self.kind {
            BadKind::LongLine => Bytes::from(vec![b'x'; DEFAULT_MAX_LINE + 1]),
            BadKind::BadUtf8 => Bytes::from_static(b"\xff\xfe\xfd not text\n"),
            BadKind::UnknownCommand => Bytes::from_static(b"/frobnicate now\n"),
            BadKind::BadJson => frame(br#"{"type": "echo", "data": "#),
            BadKind::NotObject => frame(b"[1,2,3]"),
            BadKind::ZeroFrame => frame(b""),
            BadKind::UnknownType => frame(br#"{"type":"nope"}"#),
            BadKind::HugePrefix => Bytes::from_static(b"\xff\xff\xff\xff{\"type\":\"ping\"}"),
        }
    }

    /// Chat text arrived; returns what to send next, if anything.
    pub fn on_text(&mut self, text: &str) -> Option<Bytes> {
        if self.seen.len() < MAX_SEEN {
            self.seen.push_str(text);
        }
        let (error, follow_up): (&str, Option<&'static [u8]>) = match self.kind {
            BadKind::LongLine => ("error: line longer than", None),
            BadKind::BadUtf8 => ("error: line is not valid UTF-8", Some(b"/quit\n")),
            BadKind::UnknownCommand => ("Unknown command: /frobnicate", Some(b"/quit\n")),
            _ => return None,
        };
        match self.step {
            Step::Error if self.seen.contains(error) => {
                self.seen.clear();
                match follow_up {
                    None => {
                        self.step = Step::Close;
                        None
                    }
                    Some(b) => {
                        self.step = Step::FollowUp;
                        Some(Bytes::from_static(b))
                    }
                }
            }
            Step::FollowUp if self.seen.contains("Goodbye!") => {
                self.step = Step::Close;
                None
            }
            _ => None,
        }
    }

    /// A framed message (not the welcome) arrived: (what to send, end our side).
    pub fn on_frame(&mut self, v: &Value) -> (Option<Bytes>, bool) {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        match (self.step, kind) {
            (Step::Error, "error") if self.kind == BadKind::HugePrefix => {
                self.step = Step::Close;
                (None, false)
            }
            (Step::Error, "error") => {
                self.step = Step::FollowUp;
                (Some(frame(br#"{"type":"ping","id":1}"#)), false)
            }
            (Step::FollowUp, "pong") => {
                self.step = Step::Close;
                (None, true)
            }
            _ => {
                // Anything else is not the documented answer.
                self.step = Step::Error;
                self.seen = format!("unexpected frame {kind:?}");
                (None, false)
            }
        }
    }

    /// At the close: did it get the documented answer?
    pub fn passed(&self) -> bool {
        self.step == Step::Close
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_probe_wants_error_then_goodbye() {
        let mut p = BadProbe::new(BadKind::UnknownCommand);
        assert_eq!(p.on_text("banner\n"), None);
        assert!(!p.passed());
        let next = p.on_text("Unknown command: /frobnicate. Type /help for help\n");
        assert_eq!(next.as_deref(), Some(&b"/quit\n"[..]));
        assert!(!p.passed());
        assert_eq!(p.on_text("Good"), None);
        assert_eq!(p.on_text("bye!\n"), None);
        assert!(p.passed());
    }

    #[test]
    fn long_line_wants_error_then_close() {
        let mut p = BadProbe::new(BadKind::LongLine);
        assert_eq!(p.input().len(), DEFAULT_MAX_LINE + 1);
        assert_eq!(
            p.on_text("error: line longer than 65536 bytes, closing\n"),
            None
        );
        assert!(p.passed());
    }

    #[test]
    fn framed_probe_wants_error_then_pong() {
        let mut p = BadProbe::new(BadKind::ZeroFrame);
        assert_eq!(&p.input()[..], &[0, 0, 0, 0]);
        let (next, end) = p.on_frame(&json!({"type": "error", "message": "x"}));
        assert!(next.is_some() && !end);
        let (next, end) = p.on_frame(&json!({"type": "pong"}));
        assert!(next.is_none() && end);
        assert!(p.passed());
        let mut p = BadProbe::new(BadKind::HugePrefix);
        p.on_frame(&json!({"type": "error"}));
        assert!(p.passed());
        let mut p = BadProbe::new(BadKind::BadJson);
        p.on_frame(&json!({"type": "echo_response"}));
        assert!(!p.passed());
    }
}
