//! Text that came from the network, made safe to show or to embed: the one
//! place for it, used by every server that echoes peer text and by every
//! client for everything it prints that a server sent.
//!
//! [`sanitize`] replaces control characters (C0 and C1: ESC and CSI start
//! terminal escape sequences that retitle, clear or recolour a terminal), the
//! Unicode line and paragraph separators, and the bidirectional controls
//! (which reorder what follows on the screen, CVE-2021-42574 "Trojan Source")
//! by U+FFFD, so the text can neither break a line nor drive the reader's
//! terminal nor disguise itself.

use std::borrow::Cow;

/// Unicode bidirectional formatting characters: the embeddings and
/// overrides U+202A–U+202E, the isolates U+2066–U+2069, and the marks
/// U+200E, U+200F, U+061C. Each reorders the display of the text around it.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `text` made safe to embed in one line or to print: every control character
/// (CR, LF, ESC, NEL, CSI, ...), the Unicode line and paragraph separators and
/// the bidi controls are replaced by U+FFFD, so peer text can neither break the
/// line nor drive the reader's terminal. Tabs are kept.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}' || is_bidi_control(c)
    };
    if text.chars().any(bad) {
        Cow::Owned(
            text.chars()
                .map(|c| if bad(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// Print `line` and a newline on stdout, sanitised, and flush (so piped
/// output arrives in order): how a client prints anything that contains
/// text from the network.
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{}", sanitize(line));
    let _ = o.flush();
}

/// Like [`print_line`], on stderr (a client's diagnostics).
pub fn eprint_line(line: &str) {
    eprintln!("{}", sanitize(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_removes_breaks_and_escapes() {
        assert_eq!(sanitize("plain\ttext"), "plain\ttext");
        assert_eq!(
            sanitize("a\rb\x1b[2Jc\u{2028}"),
            "a\u{FFFD}b\u{FFFD}[2Jc\u{FFFD}"
        );
        assert!(!sanitize("x\ny").contains('\n'));
        // C1 CSI (U+009B) and OSC (U+009D) start escapes on some terminals.
        assert_eq!(sanitize("\u{9b}2J\u{9d}0;t"), "\u{FFFD}2J\u{FFFD}0;t");
        assert_eq!(sanitize("\u{202E}nimda"), "\u{FFFD}nimda");
        assert!(matches!(sanitize("héllo 世界"), Cow::Borrowed(_)));
    }
}
