//! The client side of `--token`: what `connect`, `framed`, `heartbeat` and
//! `upload` send to authenticate, and how they recognise the server's answer.
//!
//! The server side is [`crate::servers::auth_guard`] (line, frame and JSON-line
//! wires) and the upload server's `Token:` header. The reply texts are taken
//! from the same [`Catalog`] the servers answer from, so a client cannot
//! drift from the server's wording.

use crate::protocol::auth::Token;
use crate::protocol::catalog::{Catalog, Lang};
use serde_json::{json, Map, Value};

/// What a server's message means for a client that has sent its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthReply {
    /// The token was accepted: the service starts.
    Accepted,
    /// The token was refused (or authentication timed out): the reason, as
    /// the server said it. A retry with the same token cannot succeed.
    Refused(String),
    /// The prompt a server sends on accept before any token arrives.
    Prompt,
    /// Not about authentication.
    Other,
}

/// The line-wire request: `/auth TOKEN\n` (command and chat servers).
pub fn line_request(token: &Token) -> String {
    format!("/auth {}\n", token.secret())
}

/// The JSON request of the framed and heartbeat servers.
pub fn json_request(token: &Token) -> Value {
    json!({"type": "auth", "token": token.secret()})
}

/// Classify one line of a line server (command, chat) while authenticating.
pub fn classify_line(line: &str) -> AuthReply {
    // The auth texts do not depend on the server's language.
    let cat = Catalog::new(Lang::En);
    let line = line.trim_end_matches(['\r', '\n']);
    if line == cat.auth_ok_line().trim_end() {
        AuthReply::Accepted
    } else if line == cat.auth_prompt().trim_end() {
        AuthReply::Prompt
    } else if let Some(rest) = line.strip_prefix("error: ") {
        let refused = rest.starts_with("wrong token")
            || rest == cat.auth_timeout()
            || line == cat.auth_closed_line().trim_end();
        if refused {
            AuthReply::Refused(rest.to_string())
        } else if line == cat.auth_required_line().trim_end() {
            AuthReply::Refused(cat.auth_required().to_string())
        } else {
            AuthReply::Other
        }
    } else {
        AuthReply::Other
    }
}

/// Classify one JSON message (framed, heartbeat): an `auth_ok` accepts; an
/// `error` whose message is an authentication refusal refuses; anything
/// else is not about authentication. A guarded JSON server sends nothing
/// before its answer to the token, so a client that sent one and first gets
/// `Other` (a `welcome`) is talking to a server without access control.
pub fn classify_json(msg: &Map<String, Value>) -> AuthReply {
    match msg.get("type").and_then(Value::as_str) {
        Some("auth_ok") => AuthReply::Accepted,
        Some("error") => {
            let m = msg.get("message").and_then(Value::as_str).unwrap_or("");
            if is_auth_refusal(m) {
                AuthReply::Refused(m.to_string())
            } else {
                AuthReply::Other
            }
        }
        _ => AuthReply::Other,
    }
}

/// Whether the `message` of a JSON server's `error` (framed, heartbeat,
/// upload) is an authentication refusal, so a client without a token can
/// say so instead of carrying on.
pub fn is_auth_refusal(message: &str) -> bool {
    let cat = Catalog::new(Lang::En);
    [
        cat.auth_wrong(),
        cat.auth_required(),
        cat.auth_closed(),
        cat.auth_timeout(),
    ]
    .contains(&message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_token() {
        let t = Token::from_text("s3cret").unwrap();
        assert_eq!(line_request(&t), "/auth s3cret\n");
        assert_eq!(json_request(&t)["token"], "s3cret");
        assert_eq!(json_request(&t)["type"], "auth");
    }

    #[test]
    fn line_replies_of_the_guard() {
        let cat = Catalog::new(Lang::En);
        assert_eq!(classify_line(&cat.auth_ok_line()), AuthReply::Accepted);
        assert_eq!(classify_line(&cat.auth_prompt()), AuthReply::Prompt);
        assert_eq!(
            classify_line(&cat.auth_wrong_line(1, 3)),
            AuthReply::Refused("wrong token (1/3)".into())
        );
        assert!(matches!(
            classify_line(&cat.auth_closed_line()),
            AuthReply::Refused(_)
        ));
        assert!(matches!(
            classify_line(&cat.auth_required_line()),
            AuthReply::Refused(_)
        ));
        assert!(matches!(
            classify_line(&format!("error: {}\n", cat.auth_timeout())),
            AuthReply::Refused(_)
        ));
        assert_eq!(classify_line("error: unknown command"), AuthReply::Other);
        assert_eq!(classify_line("welcome"), AuthReply::Other);
    }

    #[test]
    fn json_replies_of_the_guard() {
        let ok = json!({"type": "auth_ok", "timestamp": 1});
        assert_eq!(classify_json(ok.as_object().unwrap()), AuthReply::Accepted);
        let bad = json!({"type": "error", "message": "wrong token"});
        assert_eq!(
            classify_json(bad.as_object().unwrap()),
            AuthReply::Refused("wrong token".into())
        );
        let required = json!({"type": "error", "message": "authentication required"});
        assert!(matches!(
            classify_json(required.as_object().unwrap()),
            AuthReply::Refused(_)
        ));
        let unrelated = json!({"type": "error", "message": "unknown type"});
        assert_eq!(
            classify_json(unrelated.as_object().unwrap()),
            AuthReply::Other
        );
        let other = json!({"type": "ping"});
        assert_eq!(classify_json(other.as_object().unwrap()), AuthReply::Other);
        assert!(is_auth_refusal("wrong token"));
        assert!(is_auth_refusal("authentication required"));
        assert!(is_auth_refusal("authentication timeout"));
        assert!(!is_auth_refusal("file exists"));
    }
}
