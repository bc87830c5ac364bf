//! A minimal line editor for the interactive client on a terminal. Sans-IO.
//!
//! The terminal is put in non-canonical mode without echo (see
//! [`super::stdin`]), so the client knows what the user has typed so far and
//! can redraw it after printing a server line: the seed cleared the line and
//! lost the user's partial input from the screen. Keys understood: printable
//! text (UTF-8, possibly split across reads), Enter (CR or LF) submits,
//! Backspace/DEL deletes one character, Ctrl-U clears the line, Ctrl-D on an
//! empty line is end of input. Escape sequences (arrow keys...) are skipped.
//! Ctrl-C stays a signal (ISIG is kept), handled by the loop's graceful exit.

/// Longest line the editor holds, in bytes: a paste beyond it is cut, so a
/// stuck key cannot grow memory without bound.
pub const MAX_EDIT_BYTES: usize = 64 * 1024;

/// What a chunk of key bytes produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditEvent {
    /// A line was submitted (without its terminator).
    Line(String),
    /// Ctrl-D on an empty line.
    Eof,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Esc {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [` or `ESC O` ... until a final byte.
    Csi,
}

/// The line being typed.
#[derive(Clone, Debug, Default)]
pub struct Editor {
    /// Complete characters typed so far.
    line: String,
    /// Bytes of an incomplete UTF-8 character.
    partial: Vec<u8>,
    esc: Esc,
}

impl Editor {
    /// An empty editor.
    pub fn new() -> Editor {
        Editor::default()
    }

    /// The text typed so far (to redraw after the prompt).
    pub fn current(&self) -> &str {
        &self.line
    }

    /// Feed key bytes; returns the submitted lines and EOF, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<EditEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            match self.esc {
                Esc::Start => {
                    self.esc = if b == b'[' || b == b'O' {
                        Esc::Csi
                    } else {
                        Esc::None
                    };
                    continue;
                }
                Esc::Csi => {
                    if (0x40..=0x7e).contains(&b) {
                        self.esc = Esc::None;
                    }
                    continue;
                }
                Esc::None => {}
            }
            match b {
                b'\r' | b'\n' => {
                    self.partial.clear();
                    out.push(EditEvent::Line(std::mem::take(&mut self.line)));
                }
                0x7f | 0x08 => {
                    self.partial.clear();
                    self.line.pop();
                }
                0x15 => {
                    self.partial.clear();
                    self.line.clear();
                }
                0x04 => {
                    if self.line.is_empty() {
                        out.push(EditEvent::Eof);
                    }
                }
                0x1b => self.esc = Esc::Start,
                b if b < 0x20 => {} // other controls: ignored
                b => self.push_byte(b),
            }
        }
        out
    }

    fn push_byte(&mut self, b: u8) {
        self.partial.push(b);
        match std::str::from_utf8(&self.partial) {
            Ok(s) => {
                if self.line.len() + s.len() <= MAX_EDIT_BYTES {
                    self.line.push_str(s);
                }
                self.partial.clear();
            }
            Err(e) if e.error_len().is_some() || self.partial.len() >= 4 => {
                self.partial.clear(); // not UTF-8: dropped
            }
            Err(_) => {} // incomplete: wait for the rest
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_editing_and_submitting() {
        let mut e = Editor::new();
        assert!(e.feed(b"helo").is_empty());
        e.feed(&[0x7f]);
        e.feed(b"lo");
        assert_eq!(e.current(), "hello");
        assert_eq!(e.feed(b"\r"), vec![EditEvent::Line("hello".into())]);
        assert_eq!(e.current(), "");
        // Arrow keys are skipped; Ctrl-U clears.
        e.feed(b"ab\x1b[Dc");
        assert_eq!(e.current(), "abc");
        e.feed(&[0x15]);
        assert_eq!(e.current(), "");
        // Ctrl-D only on an empty line.
        e.feed(b"x");
        assert!(e.feed(&[0x04]).is_empty());
        e.feed(&[0x7f]);
        assert_eq!(e.feed(&[0x04]), vec![EditEvent::Eof]);
    }

    #[test]
    fn utf8_split_across_reads_and_backspace_by_character() {
        let mut e = Editor::new();
        e.feed(&[0xe4, 0xbd]);
        e.feed(&[0xa0, b'!']);
        assert_eq!(e.current(), "你!");
        e.feed(&[0x7f, 0x7f]);
        assert_eq!(e.current(), "");
        e.feed(&[0xff, b'a']);
        assert_eq!(e.current(), "a");
    }
}
