//! The header block that starts an upload (program 07).
//!
//! **Format.** `Key: Value` lines, each ended by CRLF (a bare LF is tolerated), closed by an
//! empty line. The raw file bytes follow. Example:
//!
//! ```text
//! Filename: report.pdf\r\n
//! Filesize: 10240\r\n
//! Content-Type: application/octet-stream\r\n
//! \r\n
//! <10240 bytes>
//! ```
//!
//! Each line is split at its first `:`, so a value may contain `": "` (the tutorial's upload server
//! split on every `": "` and cut such a value short).
//! The key must be non-empty printable ASCII without spaces and is compared case-insensitively.
//! The value is trimmed of spaces and tabs, must be UTF-8 and must not contain control
//! characters other than tab. Keys:
//!
//! * `Filename` (required): a single plain file name, see [`validate_filename`] (the tutorial
//!   joined the peer's name to its upload directory unchecked, so `../x` escaped it).
//! * `Filesize` (required): plain decimal ASCII digits, no sign, no spaces inside, fitting in a
//!   `u64` and not above the decoder's `max_file_size` (the tutorial used `parseInt`, which
//!   accepts `12abc` and negative sizes).
//! * `Token` (optional): kept for authentication.
//! * Anything else is kept, key lower-cased, in [`UploadHeader::extra`].
//!
//! `Filename`, `Filesize` and `Token` may each appear only once.
//!
//! **Limits.** The block, blank line included, is at most [`MAX_HEADER_BYTES`]; this is checked
//! while scanning, so 8 KiB without a blank line is an error without waiting for more (the
//! tutorial buffered the header until a blank line came, without limit). At
//! most [`MAX_HEADERS`] lines. Files at most `max_file_size` bytes ([`DEFAULT_MAX_FILE_SIZE`]).
//!
//! **Caller's contract.** Append each read to the connection's buffer and call
//! [`HeaderDecoder::decode`]:
//!
//! * `Ok(Some(header))`: exactly the header block was consumed. Any bytes after the blank line
//!   (the start of the file body) stay in the buffer. The caller then consumes exactly
//!   `header.filesize` body bytes (the tutorial wrote whole reads past the declared size into the
//!   file) and may call `decode` again for a next upload.
//! * `Ok(None)`: the block is incomplete; nothing is consumed.
//! * `Err(e)`: the header is invalid. `e`'s `Display` is suitable for the client; the caller
//!   should reply and close. A complete but invalid block has been consumed; after
//!   [`HeaderError::TooLarge`] nothing is. The decoder's state afterwards is unspecified.
//!
//! The decoder remembers how far it has scanned, so each byte is searched once (the tutorial
//! rescanned the whole buffer on every read).

use std::fmt;

use bytes::{Buf, BytesMut};

/// Maximum size of the header block, blank line included: 8 KiB, a few times what a real
/// header needs (the tutorial's upload client sends about 100 bytes).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Maximum number of header lines: the seed client sends 3; 32 leaves room for extensions
/// while keeping the `extra` list small.
pub const MAX_HEADERS: usize = 32;

/// Default maximum file size: 1 GiB, a generous upload limit for a tutorial server.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

/// Maximum length of a file name in bytes: 255, the `NAME_MAX` of common file systems.
pub const MAX_FILENAME_BYTES: usize = 255;

/// A decoded, validated upload header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadHeader {
    /// The file name, already checked with [`validate_filename`].
    pub filename: String,
    /// The number of body bytes that follow the header, at most the decoder's `max_file_size`.
    pub filesize: u64,
    /// The `Token` header, if any, for authentication.
    pub token: Option<String>,
    /// Any other headers in arrival order, keys lower-cased, values trimmed.
    pub extra: Vec<(String, String)>,
}

/// Why a file name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilenameError {
    /// The name is empty.
    Empty,
    /// The name is `.` or `..`.
    DotName,
    /// The name starts with `.`: a hidden file (`.bashrc`, `.htaccess`, `.ssh`
    /// change how other programs behave in that directory), and the
    /// server's own temporary files live in that namespace.
    Hidden,
    /// The name contains `/` or `\`.
    Separator,
    /// The name contains a control character (NUL included).
    ControlChar,
    /// The name is longer than `max` bytes.
    TooLong {
        /// The name's length in bytes.
        len: usize,
        /// The limit, [`MAX_FILENAME_BYTES`].
        max: usize,
    },
}

impl fmt::Display for FilenameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilenameError::Empty => f.write_str("file name is empty"),
            FilenameError::DotName => f.write_str("file name must not be \".\" or \"..\""),
            FilenameError::Hidden => f.write_str("file name must not start with '.'"),
            FilenameError::Separator => f.write_str("file name must not contain '/' or '\\'"),
            FilenameError::ControlChar => {
                f.write_str("file name must not contain control characters")
            }
            FilenameError::TooLong { len, max } => {
                write!(f, "file name is {len} bytes long, the limit is {max}")
            }
        }
    }
}

impl std::error::Error for FilenameError {}

/// Checks that `name` is a single plain file name: not empty, not `.` or `..`, not starting with
/// `.` (hidden files, and the upload server's temporary files), no `/`, `\`, NUL or other
/// control characters, at most [`MAX_FILENAME_BYTES`] bytes.
///
/// This refuses traversal and names that cannot be created (the tutorial wrote `../escaped.txt`
/// outside its upload directory, and crashed on `no/such/dir.txt`). The caller should
/// still create the file with exclusive create inside its upload directory.
pub fn validate_filename(name: &str) -> Result<(), FilenameError> {
    if name.is_empty() {
        return Err(FilenameError::Empty);
    }
    if name.len() > MAX_FILENAME_BYTES {
        return Err(FilenameError::TooLong {
            len: name.len(),
            max: MAX_FILENAME_BYTES,
        });
    }
    if name == "." || name == ".." {
        return Err(FilenameError::DotName);
    }
    for c in name.chars() {
        if c == '/' || c == '\\' {
            return Err(FilenameError::Separator);
        }
        if c.is_control() {
            return Err(FilenameError::ControlChar);
        }
    }
    if name.starts_with('.') {
        return Err(FilenameError::Hidden);
    }
    Ok(())
}

/// Why an upload header was refused. The `Display` text can be sent to the client as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// No blank line within the first `max` bytes.
    TooLarge {
        /// [`MAX_HEADER_BYTES`].
        max: usize,
    },
    /// More than `max` header lines.
    TooManyHeaders {
        /// [`MAX_HEADERS`].
        max: usize,
    },
    /// Line `line` (1-based) has no `:`.
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// Line `line` has an empty key or one with spaces or non-ASCII characters.
    InvalidKey {
        /// 1-based line number.
        line: usize,
    },
    /// Line `line` is not valid UTF-8.
    NotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// Line `line`'s value contains control characters.
    InvalidValue {
        /// 1-based line number.
        line: usize,
    },
    /// A header that may appear once appeared twice.
    Duplicate(&'static str),
    /// No `Filename` header.
    MissingFilename,
    /// No `Filesize` header.
    MissingFilesize,
    /// `Filesize` is not plain decimal digits fitting in 64 bits.
    InvalidFilesize,
    /// `Filesize` is above the limit.
    FileTooLarge {
        /// The declared size.
        size: u64,
        /// The decoder's `max_file_size`.
        max: u64,
    },
    /// `Filename` was refused.
    InvalidFilename(FilenameError),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooLarge { max } => {
                write!(f, "header block is larger than {max} bytes")
            }
            HeaderError::TooManyHeaders { max } => write!(f, "more than {max} header lines"),
            HeaderError::MalformedLine { line } => write!(f, "header line {line} has no ':'"),
            HeaderError::InvalidKey { line } => write!(f, "header line {line} has an invalid key"),
            HeaderError::NotUtf8 { line } => write!(f, "header line {line} is not valid UTF-8"),
            HeaderError::InvalidValue { line } => {
                write!(f, "header line {line} contains control characters")
            }
            HeaderError::Duplicate(name) => write!(f, "duplicate {name} header"),
            HeaderError::MissingFilename => f.write_str("missing Filename header"),
            HeaderError::MissingFilesize => f.write_str("missing Filesize header"),
            HeaderError::InvalidFilesize => {
                f.write_str("Filesize must be a plain decimal number of bytes")
            }
            HeaderError::FileTooLarge { size, max } => {
                write!(f, "Filesize {size} exceeds the limit of {max} bytes")
            }
            HeaderError::InvalidFilename(e) => write!(f, "invalid Filename: {e}"),
        }
    }
}

impl std::error::Error for HeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeaderError::InvalidFilename(e) => Some(e),
            _ => None,
        }
    }
}

/// Incremental decoder for the upload header block. One per connection.
#[derive(Debug, Clone)]
pub struct HeaderDecoder {
    /// Largest `Filesize` accepted.
    max_file_size: u64,
    /// Bytes at the front of the buffer already searched for `\n`.
    scanned: usize,
    /// Start of the line being scanned (after the last `\n` found).
    line_start: usize,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FILE_SIZE)
    }
}

impl HeaderDecoder {
    /// A decoder that accepts files of at most `max_file_size` bytes.
    pub fn new(max_file_size: u64) -> Self {
        Self {
            max_file_size,
            scanned: 0,
            line_start: 0,
        }
    }

    /// The largest `Filesize` this decoder accepts.
    pub fn max_file_size(&self) -> u64 {
        self.max_file_size
    }

    /// Decodes and consumes the header block from the front of `buf`.
    ///
    /// See the [module documentation](self) for the meaning of each result.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<UploadHeader>, HeaderError> {
        let window_end = buf.len().min(MAX_HEADER_BYTES);
        let window = buf.get(..window_end).unwrap_or_default();
        let mut pos = self.scanned.min(window_end);
        let mut line_start = self.line_start.min(pos);
        while let Some(offset) = window.get(pos..).and_then(super::lines::find_newline) {
            let newline = pos + offset;
            pos = newline + 1;
            let line = window.get(line_start..newline).unwrap_or_default();
            if line.is_empty() || line == b"\r" {
                let block = window.get(..line_start).unwrap_or_default();
                let parsed = parse_block(block, self.max_file_size);
                buf.advance(pos);
                self.scanned = 0;
                self.line_start = 0;
                return parsed.map(Some);
            }
            line_start = pos;
        }
        self.scanned = window_end;
        self.line_start = line_start;
        if buf.len() >= MAX_HEADER_BYTES {
            Err(HeaderError::TooLarge {
                max: MAX_HEADER_BYTES,
            })
        } else {
            Ok(None)
        }
    }
}

/// Parses the header lines (each ending in `\n`, blank line excluded).
fn parse_block(block: &[u8], max_file_size: u64) -> Result<UploadHeader, HeaderError> {
    let mut filename = None;
    let mut filesize = None;
    let mut token = None;
    let mut extra = Vec::new();
    for (index, raw) in block.split_inclusive(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        if number > MAX_HEADERS {
            return Err(HeaderError::TooManyHeaders { max: MAX_HEADERS });
        }
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| HeaderError::NotUtf8 { line: number })?;
        let (key, value) = line
            .split_once(':')
            .ok_or(HeaderError::MalformedLine { line: number })?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HeaderError::InvalidKey { line: number });
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(HeaderError::InvalidValue { line: number });
        }
        if key.eq_ignore_ascii_case("filename") {
            validate_filename(value).map_err(HeaderError::InvalidFilename)?;
            set_once(&mut filename, value.to_owned(), "Filename")?;
        } else if key.eq_ignore_ascii_case("filesize") {
            set_once(&mut filesize, parse_size(value, max_file_size)?, "Filesize")?;
        } else if key.eq_ignore_ascii_case("token") {
            set_once(&mut token, value.to_owned(), "Token")?;
        } else {
            extra.push((key.to_ascii_lowercase(), value.to_owned()));
        }
    }
    Ok(UploadHeader {
        filename: filename.ok_or(HeaderError::MissingFilename)?,
        filesize: filesize.ok_or(HeaderError::MissingFilesize)?,
        token,
        extra,
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), HeaderError> {
    if slot.is_some() {
        return Err(HeaderError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// Parses a plain decimal size: ASCII digits only, fits in `u64`, at most `max`.
fn parse_size(value: &str, max: u64) -> Result<u64, HeaderError> {
    // `u64::from_str` alone would accept a leading '+'.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::InvalidFilesize);
    }
    let size: u64 = value.parse().map_err(|_| HeaderError::InvalidFilesize)?;
    if size > max {
        return Err(HeaderError::FileTooLarge { size, max });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = Result<UploadHeader, HeaderError>;

    /// Feeds `chunks` one by one and decodes after each, until a result; returns it and the
    /// bytes left in the buffer.
    fn run(max: u64, chunks: &[&[u8]]) -> (Option<Item>, Vec<u8>) {
        let mut dec = HeaderDecoder::new(max);
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            match dec.decode(&mut buf) {
                Ok(None) => {}
                Ok(Some(h)) => return (Some(Ok(h)), buf.to_vec()),
                Err(e) => return (Some(Err(e)), buf.to_vec()),
            }
        }
        (None, buf.to_vec())
    }

    fn decode_all(input: &[u8]) -> (Option<Item>, Vec<u8>) {
        run(DEFAULT_MAX_FILE_SIZE, &[input])
    }

    fn decode_err(input: &[u8]) -> HeaderError {
        match decode_all(input).0 {
            Some(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    use crate::codec::test_rng::Rng;

    fn assert_split_invariant(input: &[u8]) -> (Option<Item>, Vec<u8>) {
        let whole = decode_all(input);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let by_byte = run(DEFAULT_MAX_FILE_SIZE, &bytes);
        assert_eq!(by_byte.0, whole.0, "byte by byte");
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            let (result, _) = run(DEFAULT_MAX_FILE_SIZE, &[a, b]);
            assert_eq!(result, whole.0, "split at {i}");
        }
        let mut rng = Rng(7);
        for _ in 0..50 {
            let mut chunks = Vec::new();
            let mut rest = input;
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(11));
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            assert_eq!(run(DEFAULT_MAX_FILE_SIZE, &chunks).0, whole.0, "random");
        }
        whole
    }

    fn header(filename: &str, filesize: u64) -> UploadHeader {
        UploadHeader {
            filename: filename.to_owned(),
            filesize,
            token: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn seed_client_header_crlf() {
        let input = b"Filename: a.txt\r\nFilesize: 11\r\nContent-Type: application/octet-stream\r\n\r\nhello world";
        let (result, rest) = assert_split_invariant(input);
        let mut expected = header("a.txt", 11);
        expected.extra = vec![(
            "content-type".to_owned(),
            "application/octet-stream".to_owned(),
        )];
        assert_eq!(result, Some(Ok(expected)));
        assert_eq!(rest, b"hello world", "body bytes stay in the buffer");
    }

    #[test]
    fn lf_only_and_mixed() {
        let (result, rest) = assert_split_invariant(b"filename:a\nFILESIZE:\t0\r\n\nXY");
        assert_eq!(result, Some(Ok(header("a", 0))));
        assert_eq!(rest, b"XY");
    }

    #[test]
    fn block_stays_until_complete() {
        let mut dec = HeaderDecoder::default();
        let mut buf = BytesMut::from(&b"Filename: a\r\nFilesize: 1\r\n\r"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 27, "nothing consumed");
        buf.extend_from_slice(b"\nZ");
        assert_eq!(dec.decode(&mut buf), Ok(Some(header("a", 1))));
        assert_eq!(&buf[..], b"Z");
    }

    #[test]
    fn two_uploads_back_to_back() {
        let mut dec = HeaderDecoder::default();
        let mut buf = BytesMut::from(
            &b"Filename: a\r\nFilesize: 3\r\n\r\nabcFilename: b\r\nFilesize: 0\r\n\r\n"[..],
        );
        let first = dec.decode(&mut buf).expect("valid").expect("complete");
        assert_eq!(first, header("a", 3));
        buf.advance(3); // the caller consumes exactly the body
        assert_eq!(dec.decode(&mut buf), Ok(Some(header("b", 0))));
        assert!(buf.is_empty());
    }

    #[test]
    fn value_may_contain_colon_space_and_token_is_kept() {
        let input = b"Filename: a\r\nFilesize: 1\r\nToken: s3cr3t\r\nX-Note: a: b: c \r\n\r\n";
        let (result, _) = decode_all(input);
        let mut expected = header("a", 1);
        expected.token = Some("s3cr3t".to_owned());
        expected.extra = vec![("x-note".to_owned(), "a: b: c".to_owned())];
        assert_eq!(result, Some(Ok(expected)));
    }

    #[test]
    fn missing_fields() {
        assert_eq!(
            decode_err(b"Filesize: 1\r\n\r\n"),
            HeaderError::MissingFilename
        );
        assert_eq!(
            decode_err(b"Filename: a\r\n\r\n"),
            HeaderError::MissingFilesize
        );
        assert_eq!(decode_err(b"\r\n"), HeaderError::MissingFilename);
    }

    #[test]
    fn filesize_lies() {
        for lie in [
            "-1",
            "+1",
            "1e3",
            "12 3",
            "12abc",
            "0x10",
            "",
            "1.0",
            "١٢",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let input = format!("Filename: a\r\nFilesize: {lie}\r\n\r\n");
            assert_eq!(
                decode_err(input.as_bytes()),
                HeaderError::InvalidFilesize,
                "{lie:?}"
            );
        }
        let (result, _) = run(100, &[b"Filename: a\r\nFilesize: 101\r\n\r\n"]);
        assert_eq!(
            result,
            Some(Err(HeaderError::FileTooLarge {
                size: 101,
                max: 100
            }))
        );
        let (result, _) = run(100, &[b"Filename: a\r\nFilesize: 0100\r\n\r\n"]);
        assert_eq!(result, Some(Ok(header("a", 100))), "at the limit");
        let max = format!("Filename: a\r\nFilesize: {}\r\n\r\n", u64::MAX);
        assert_eq!(
            run(u64::MAX, &[max.as_bytes()]).0,
            Some(Ok(header("a", u64::MAX)))
        );
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(
            decode_err(b"Filename: a\r\nno colon\r\n\r\n"),
            HeaderError::MalformedLine { line: 2 }
        );
        assert_eq!(
            decode_err(b": value\r\n\r\n"),
            HeaderError::InvalidKey { line: 1 }
        );
        assert_eq!(
            decode_err(b"File name: a\r\n\r\n"),
            HeaderError::InvalidKey { line: 1 }
        );
        assert_eq!(
            decode_err(b" Filename: a\r\n\r\n"),
            HeaderError::InvalidKey { line: 1 }
        );
        assert_eq!(
            decode_err(b"Filename: \xff\r\n\r\n"),
            HeaderError::NotUtf8 { line: 1 }
        );
        assert_eq!(
            decode_err(b"X: a\x1bb\r\n\r\n"),
            HeaderError::InvalidValue { line: 1 }
        );
    }

    #[test]
    fn duplicates() {
        assert_eq!(
            decode_err(b"Filename: a\r\nfilename: b\r\nFilesize: 1\r\n\r\n"),
            HeaderError::Duplicate("Filename")
        );
        assert_eq!(
            decode_err(b"Filename: a\r\nFilesize: 1\r\nFILESIZE: 1\r\n\r\n"),
            HeaderError::Duplicate("Filesize")
        );
        assert_eq!(
            decode_err(b"Filename: a\r\nFilesize: 1\r\nToken: x\r\nToken: y\r\n\r\n"),
            HeaderError::Duplicate("Token")
        );
    }

    #[test]
    fn too_many_headers() {
        let mut input = String::from("Filename: a\r\nFilesize: 1\r\n");
        for i in 0..30 {
            input.push_str(&format!("X-{i}: v\r\n"));
        }
        let ok = format!("{input}\r\n");
        assert!(matches!(decode_all(ok.as_bytes()).0, Some(Ok(h)) if h.extra.len() == 30));
        input.push_str("X-last: v\r\n\r\n");
        assert_eq!(
            decode_err(input.as_bytes()),
            HeaderError::TooManyHeaders { max: MAX_HEADERS }
        );
    }

    #[test]
    fn header_over_8_kib() {
        // Exactly MAX_HEADER_BYTES including the blank line: accepted.
        let prefix = "Filename: a\r\nFilesize: 1\r\nX: ";
        let pad = MAX_HEADER_BYTES - prefix.len() - 4;
        let exact = format!("{prefix}{}\r\n\r\n", "v".repeat(pad));
        assert_eq!(exact.len(), MAX_HEADER_BYTES);
        assert!(matches!(decode_all(exact.as_bytes()).0, Some(Ok(_))));
        // One byte more: refused, whether in one piece or trickled.
        let over = format!("{prefix}{}\r\n\r\n", "v".repeat(pad + 1));
        let too_large = HeaderError::TooLarge {
            max: MAX_HEADER_BYTES,
        };
        assert_eq!(decode_err(over.as_bytes()), too_large);
        let bytes: Vec<&[u8]> = over.as_bytes().chunks(1).collect();
        assert_eq!(
            run(DEFAULT_MAX_FILE_SIZE, &bytes).0,
            Some(Err(too_large.clone()))
        );
        // 8 KiB with no newline at all: refused at once, not waiting for more.
        let flood = vec![b'a'; MAX_HEADER_BYTES];
        assert_eq!(decode_err(&flood), too_large);
        let mut dec = HeaderDecoder::default();
        let mut buf = BytesMut::from(&flood[..MAX_HEADER_BYTES - 1]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(dec.scanned, MAX_HEADER_BYTES - 1);
    }

    #[test]
    fn traversal_names_refused_by_decoder() {
        for name in ["../x", "/etc/x", "a/b", "a\\b", "..", "."] {
            let input = format!("Filename: {name}\r\nFilesize: 1\r\n\r\n");
            assert!(
                matches!(
                    decode_err(input.as_bytes()),
                    HeaderError::InvalidFilename(_)
                ),
                "{name:?}"
            );
        }
        assert_eq!(
            decode_err(b"Filename: a\0b\r\nFilesize: 1\r\n\r\n"),
            HeaderError::InvalidValue { line: 1 }
        );
        assert_eq!(
            decode_err(b"Filename:\r\nFilesize: 1\r\n\r\n"),
            HeaderError::InvalidFilename(FilenameError::Empty)
        );
    }

    #[test]
    fn validate_filename_cases() {
        assert_eq!(validate_filename("report.pdf"), Ok(()));
        assert_eq!(validate_filename("报告 v2.txt"), Ok(()));
        assert_eq!(validate_filename("a.hidden"), Ok(()));
        for name in ["...hidden", ".bashrc", ".netloop-upload-1-1.part"] {
            assert_eq!(
                validate_filename(name),
                Err(FilenameError::Hidden),
                "{name:?}"
            );
        }
        assert_eq!(validate_filename(""), Err(FilenameError::Empty));
        assert_eq!(validate_filename("."), Err(FilenameError::DotName));
        assert_eq!(validate_filename(".."), Err(FilenameError::DotName));
        for name in ["../x", "/etc/x", "a/b", "a\\b", "..\\x", "x/"] {
            assert_eq!(
                validate_filename(name),
                Err(FilenameError::Separator),
                "{name:?}"
            );
        }
        for name in ["a\0b", "a\nb", "a\rb", "a\u{7f}", "a\u{85}b"] {
            assert_eq!(
                validate_filename(name),
                Err(FilenameError::ControlChar),
                "{name:?}"
            );
        }
        let long = "x".repeat(300);
        assert_eq!(
            validate_filename(&long),
            Err(FilenameError::TooLong { len: 300, max: 255 })
        );
        assert_eq!(validate_filename(&"x".repeat(255)), Ok(()));
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            HeaderError::InvalidFilename(FilenameError::Separator).to_string(),
            "invalid Filename: file name must not contain '/' or '\\'"
        );
        assert_eq!(
            HeaderError::TooLarge { max: 8192 }.to_string(),
            "header block is larger than 8192 bytes"
        );
        assert_eq!(
            HeaderError::Duplicate("Filesize").to_string(),
            "duplicate Filesize header"
        );
    }
}
