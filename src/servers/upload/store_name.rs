//! Names under which an upload may be stored without overwriting anything.
//!
//! [`candidates`] yields `name`, then `stem (1).ext`, `stem (2).ext`, ... (the
//! extension is what follows the last `.`, unless the name starts with its
//! only dot, like `.bashrc`). A candidate longer than
//! [`MAX_FILENAME_BYTES`] has its stem shortened at a character boundary.
//! The caller tries each with an operation that fails if the name exists
//! (`link`), so choosing is race-free even with concurrent uploads.

use crate::codec::MAX_FILENAME_BYTES;

/// How many names are tried before giving up: bounds the work a client can
/// cause by uploading one name again and again.
pub const MAX_CANDIDATES: u32 = 10_000;

/// The names to try for `name`, in order.
pub fn candidates(name: &str) -> impl Iterator<Item = String> + '_ {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    std::iter::once(name.to_string()).chain((1..MAX_CANDIDATES).map(move |n| {
        let suffix = format!(" ({n}){ext}");
        let room = MAX_FILENAME_BYTES.saturating_sub(suffix.len());
        let mut cut = stem.len().min(room);
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{suffix}", &stem[..cut])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_extension() {
        let c: Vec<String> = candidates("report.pdf").take(3).collect();
        assert_eq!(c, ["report.pdf", "report (1).pdf", "report (2).pdf"]);
        let c: Vec<String> = candidates(".bashrc").take(2).collect();
        assert_eq!(c, [".bashrc", ".bashrc (1)"]);
        let c: Vec<String> = candidates("a.tar.gz").take(2).collect();
        assert_eq!(c, ["a.tar.gz", "a.tar (1).gz"]);
    }

    #[test]
    fn long_names_stay_within_the_limit() {
        let long = "é".repeat(125) + ".txt"; // 254 bytes, 2-byte characters
        for c in candidates(&long).take(20) {
            assert!(c.len() <= MAX_FILENAME_BYTES, "{} bytes", c.len());
        }
    }
}
