//! Text that came from the network, made safe to show or to embed: the one
//! place for it, used by every server that echoes peer text and by every
//! client for everything it prints that a server sent.
//!
//! [`sanitize`] replaces control characters (C0 and C1: ESC and CSI start
//! terminal escape sequences that retitle, clear or recolour a terminal), the
//! Unicode line and paragraph separators, and the bidirectional controls
//! (which reorder what follows on the screen, CVE-2021-42574 "Trojan Source")
//! by U+FFFD, so the text can neither break a line nor drive the reader's
//! terminal nor disguise itself. For the chat's names and messages:
//! [`name_key`] (when two names are one), [`is_invisible`] (characters a name
//! may not contain) and [`strip_invisible`] (removed from relayed text).

use std::borrow::Cow;

/// Unicode bidirectional formatting characters: the embeddings and
/// overrides U+202A–U+202E, the isolates U+2066–U+2069, and the marks
/// U+200E, U+200F, U+061C. Each reorders the display of the text around it.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that show nothing (or nothing but a blank) and so let one name
/// pass for another or for no name at all: every format character (Unicode
/// general category Cf, from `DerivedGeneralCategory.txt` of Unicode 15.1:
/// soft hyphen, zero-width space and joiners, bidi controls, word joiner,
/// BOM, interlinear annotations, tags, ...), the variation selectors and
/// the other default-ignorable marks, and the blank-looking letters and
/// symbols (Hangul fillers, braille blank U+2800). Whitespace and control
/// characters are refused separately (`char::is_whitespace`,
/// `char::is_control`).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        // Cf
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            // Default-ignorable marks: grapheme joiner, Mongolian and
            // ordinary variation selectors.
            | '\u{034F}'
            | '\u{180B}'..='\u{180D}'
            | '\u{180F}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{E0100}'..='\u{E01EF}'
            // Blank-looking letters and symbols.
            | '\u{115F}'
            | '\u{1160}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FFA0}'
    )
}

/// Characters removed from relayed chat text: the bidi controls (they
/// reorder what follows on the reader's screen) and the zero-width
/// characters that carry no meaning in running text (zero-width space, word
/// joiner and invisible operators, BOM, Mongolian vowel separator). The
/// zero-width joiner and non-joiner stay: Persian, Indic scripts and emoji
/// sequences need them.
pub fn is_stripped_from_text(c: char) -> bool {
    is_bidi_control(c)
        || matches!(
            c,
            '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}'
        )
}

/// `text` without the characters of [`is_stripped_from_text`].
pub fn strip_invisible(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_stripped_from_text) {
        Cow::Owned(
            text.chars()
                .filter(|&c| !is_stripped_from_text(c))
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// The key under which two names are the same name: Unicode compatibility
/// normalisation and case folding (NFKC of the full case folding of NFKC,
/// so `Ａdmin`, `ADMIN` and `admin` agree; `unicode-normalization` and
/// `caseless`), then the UTS #39 confusable skeleton (`unicode-security`),
/// so `аdmin` with a Cyrillic `а` agrees with `admin` too. Used only to
/// compare; the name is shown as its owner typed it.
pub fn name_key(name: &str) -> String {
    unicode_security::skeleton(&fold(name)).collect()
}

/// `name` after NFKC, full case folding and NFKC again (without the
/// confusable skeleton): for checks that read the name's form, such as the
/// reserved `user<n>`.
pub fn fold(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let nfkc: String = name.nfkc().collect();
    caseless::default_case_fold_str(&nfkc).nfkc().collect()
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

    #[test]
    fn names_agree_after_folding_and_confusables() {
        let admin = name_key("admin");
        for same in ["Admin", "ADMIN", "Ａdmin", "\u{430}dmin", "ａｄｍｉｎ"] {
            assert_eq!(name_key(same), admin, "{same:?}");
        }
        assert_ne!(name_key("admins"), admin);
        assert_eq!(name_key("Straße"), name_key("STRASSE"));
        assert_eq!(name_key("你好"), name_key("你好"));
        assert_ne!(name_key("你好"), name_key("您好"));
        assert_eq!(fold("ＵＳＥＲ7"), "user7");
    }

    #[test]
    fn invisible_characters_are_named_and_stripped() {
        for c in [
            '\u{200B}',
            '\u{202E}',
            '\u{2800}',
            '\u{FEFF}',
            '\u{3164}',
            '\u{E0041}',
            '\u{FE0F}',
        ] {
            assert!(is_invisible(c), "{c:?}");
        }
        for c in ['a', '你', '-', '_', 'é', '\u{1F600}'] {
            assert!(!is_invisible(c), "{c:?}");
        }
        assert_eq!(
            strip_invisible("a\u{202E}b\u{200B}c\u{200D}d"),
            "abc\u{200D}d"
        );
        assert!(matches!(strip_invisible("plain"), Cow::Borrowed(_)));
    }
}
