//! The chat's line grammar as a pure, sans-IO parser: one received line in,
//! one [`Command`] (or a [`CommandError`] the server answers with a usage or
//! error line) out. [`crate::servers::chat::ChatServer`] calls it for every line
//! and keeps only what needs the server's state (is a nickname taken or
//! reserved, does the room exist, is the whisper's target online).
//!
//! Algorithm (runs of whitespace separate words; the seed split on single
//! spaces, so `/nick  bob` set an empty name): the line is trimmed; an empty line is
//! [`Command::Empty`] (ignored: the seed broadcast `[nick]: `). A line not
//! starting with `/` is [`Command::Say`]. Otherwise the command is the text
//! up to the first whitespace character, lower-cased; the argument is the rest,
//! trimmed, so runs of spaces and tabs separate. `/nick` and `/join` take one
//! name, checked by [`validate_name`] (length and characters only);
//! `/whisper` (`/w`) takes a target (up to the next whitespace) and a
//! non-empty message. Any other argument is ignored, as it always was.
//!
//! Caller's contract: pass one line without its terminator (as
//! [`crate::codec::LineDecoder`] returns it). Every `Ok` value renders back
//! with [`fmt::Display`] into a line that parses to the same value, which the
//! property tests and the `chat_command` fuzz target check.

use super::chat::validate_name;
use crate::protocol::catalog::NameError;
use std::fmt;

/// One parsed chat line. Borrowed slices point into the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// A blank line: nothing happens.
    Empty,
    /// Text for the sender's room or lobby (trimmed, never starting with `/`).
    Say(&'a str),
    /// `/help`.
    Help,
    /// `/nick <name>`; the name passed [`validate_name`].
    Nick(&'a str),
    /// `/list`: the users online.
    List,
    /// `/rooms`: the rooms and their sizes.
    Rooms,
    /// `/join <room>`; the name passed [`validate_name`].
    Join(&'a str),
    /// `/leave`: back to the lobby.
    Leave,
    /// `/whisper <to> <text>` or `/w <to> <text>`.
    Whisper {
        /// The target nickname as typed (no whitespace, not empty).
        to: &'a str,
        /// The message (trimmed, not empty).
        text: &'a str,
    },
    /// `/quit`.
    Quit,
}

/// Why a command line was refused; each maps to one reply of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// `/nick` without a name.
    NickUsage,
    /// `/nick` with a name of the wrong length or characters.
    NickInvalid(NameError),
    /// `/join` without a room.
    JoinUsage,
    /// `/join` with a room name of the wrong length or characters.
    RoomInvalid(NameError),
    /// `/whisper` without a target or without a message.
    WhisperUsage,
    /// A command the chat does not know, lower-cased as it was matched.
    Unknown(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NickUsage => f.write_str("usage: /nick <name>"),
            CommandError::NickInvalid(e) => write!(f, "invalid nickname: {e:?}"),
            CommandError::JoinUsage => f.write_str("usage: /join <room>"),
            CommandError::RoomInvalid(e) => write!(f, "invalid room name: {e:?}"),
            CommandError::WhisperUsage => f.write_str("usage: /whisper <user> <message>"),
            CommandError::Unknown(cmd) => write!(f, "unknown command {cmd:?}"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Splits `text` at its first whitespace character: the word before it and
/// the rest, trimmed.
fn split_word(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    }
}

/// Parses one chat line (see the [module documentation](self)).
pub fn parse(line: &str) -> Result<Command<'_>, CommandError> {
    let text = line.trim();
    if text.is_empty() {
        return Ok(Command::Empty);
    }
    if !text.starts_with('/') {
        return Ok(Command::Say(text));
    }
    let (cmd, rest) = split_word(text);
    let cmd = cmd.to_lowercase();
    match cmd.as_str() {
        "/help" => Ok(Command::Help),
        "/nick" if rest.is_empty() => Err(CommandError::NickUsage),
        "/nick" => validate_name(rest)
            .map(|()| Command::Nick(rest))
            .map_err(CommandError::NickInvalid),
        "/list" => Ok(Command::List),
        "/rooms" => Ok(Command::Rooms),
        "/join" if rest.is_empty() => Err(CommandError::JoinUsage),
        "/join" => validate_name(rest)
            .map(|()| Command::Join(rest))
            .map_err(CommandError::RoomInvalid),
        "/leave" => Ok(Command::Leave),
        "/whisper" | "/w" => match split_word(rest) {
            ("", _) | (_, "") => Err(CommandError::WhisperUsage),
            (to, text) => Ok(Command::Whisper { to, text }),
        },
        "/quit" => Ok(Command::Quit),
        _ => Err(CommandError::Unknown(cmd)),
    }
}

/// The canonical line of a command (no terminator); [`parse`] gives the
/// command back.
impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Empty => Ok(()),
            Command::Say(text) => f.write_str(text),
            Command::Help => f.write_str("/help"),
            Command::Nick(name) => write!(f, "/nick {name}"),
            Command::List => f.write_str("/list"),
            Command::Rooms => f.write_str("/rooms"),
            Command::Join(room) => write!(f, "/join {room}"),
            Command::Leave => f.write_str("/leave"),
            Command::Whisper { to, text } => write!(f, "/whisper {to} {text}"),
            Command::Quit => f.write_str("/quit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_blank_lines() {
        assert_eq!(parse(""), Ok(Command::Empty));
        assert_eq!(parse(" \t "), Ok(Command::Empty));
        assert_eq!(parse("  hello there "), Ok(Command::Say("hello there")));
        assert_eq!(parse("a /nick b"), Ok(Command::Say("a /nick b")));
    }

    #[test]
    fn commands_ignore_case_and_extra_space() {
        assert_eq!(parse("/HELP"), Ok(Command::Help));
        assert_eq!(parse("/help me"), Ok(Command::Help));
        assert_eq!(parse("/Nick \t alice  "), Ok(Command::Nick("alice")));
        assert_eq!(parse("/list"), Ok(Command::List));
        assert_eq!(parse("/rooms"), Ok(Command::Rooms));
        assert_eq!(parse("/join  lobby2"), Ok(Command::Join("lobby2")));
        assert_eq!(parse("/leave"), Ok(Command::Leave));
        assert_eq!(parse("/quit now"), Ok(Command::Quit));
        assert_eq!(
            parse("/w bob   hi  there "),
            Ok(Command::Whisper {
                to: "bob",
                text: "hi  there"
            })
        );
        assert_eq!(
            parse("/WHISPER\tbob\thi"),
            Ok(Command::Whisper {
                to: "bob",
                text: "hi"
            })
        );
    }

    #[test]
    fn usage_and_invalid_names() {
        assert_eq!(parse("/nick"), Err(CommandError::NickUsage));
        assert_eq!(parse("/nick   "), Err(CommandError::NickUsage));
        assert_eq!(
            parse("/nick big boss"),
            Err(CommandError::NickInvalid(NameError::Charset))
        );
        assert_eq!(
            parse(&format!("/nick {}", "x".repeat(33))),
            Err(CommandError::NickInvalid(NameError::Length))
        );
        assert_eq!(parse("/join"), Err(CommandError::JoinUsage));
        assert_eq!(
            parse("/join [r]"),
            Err(CommandError::RoomInvalid(NameError::Charset))
        );
        assert_eq!(parse("/whisper"), Err(CommandError::WhisperUsage));
        assert_eq!(parse("/w bob"), Err(CommandError::WhisperUsage));
        assert_eq!(parse("/w bob   "), Err(CommandError::WhisperUsage));
    }

    #[test]
    fn unknown_commands_are_lower_cased() {
        assert_eq!(parse("/"), Err(CommandError::Unknown("/".into())));
        assert_eq!(
            parse("/DANCE now"),
            Err(CommandError::Unknown("/dance".into()))
        );
        assert_eq!(
            parse("/nickx a"),
            Err(CommandError::Unknown("/nickx".into()))
        );
    }

    #[test]
    fn rendered_commands_parse_back() {
        let cmds = [
            Command::Empty,
            Command::Say("hi"),
            Command::Help,
            Command::Nick("爱丽丝"),
            Command::List,
            Command::Rooms,
            Command::Join("r1"),
            Command::Leave,
            Command::Whisper {
                to: "bob",
                text: "a  b",
            },
            Command::Quit,
        ];
        for c in cmds {
            assert_eq!(parse(&c.to_string()), Ok(c.clone()), "{c}");
        }
    }
}
