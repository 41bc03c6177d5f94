//! What is wrong with an exposition, and where.

use std::fmt;

/// A parse error: the line (1-based), the column (1-based byte offset in the line
/// where it was found; 0 when it concerns the whole input) and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    line: usize,
    column: usize,
    message: String,
}

/// The longest quotation of the input in a message: a malformed line may be the
/// whole line limit long, the message about it must stay one readable log line.
const QUOTE_MAX_CHARS: usize = 64;

impl Error {
    pub(super) fn new(line: usize, column: usize, message: String) -> Self {
        Error {
            line,
            column,
            message,
        }
    }

    pub fn line(&self) -> usize {
        self.line
    }

    pub fn column(&self) -> usize {
        self.column
    }

    /// What was wrong, without the position (expfmt's wording).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => f.write_str(&self.message),
            (line, 0) => write!(f, "line {line}: {}", self.message),
            (line, column) => write!(f, "line {line} column {column}: {}", self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Quotes input text for a message: escaped, invalid UTF-8 shown as U+FFFD, cut to
/// [`QUOTE_MAX_CHARS`] characters.
pub(super) fn quoted(text: &[u8]) -> String {
    // A character is at most 4 bytes: this prefix holds the characters quoted.
    let prefix = text.get(..4 * QUOTE_MAX_CHARS).unwrap_or(text);
    let lossy = String::from_utf8_lossy(prefix);
    let mut chars = lossy.chars();
    let head: String = chars.by_ref().take(QUOTE_MAX_CHARS).collect();
    if chars.next().is_some() || prefix.len() < text.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Quotes one byte as a character literal (`'+'`, `'\n'`), or by value outside ASCII.
pub(super) fn quoted_byte(byte: u8) -> String {
    if byte.is_ascii() {
        format!("{:?}", char::from(byte))
    } else {
        format!("byte 0x{byte:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_place() {
        assert_eq!(
            Error::new(3, 14, "expected '=' after label name, found '+'".into()).to_string(),
            "line 3 column 14: expected '=' after label name, found '+'"
        );
        assert_eq!(Error::new(2, 0, "x".into()).to_string(), "line 2: x");
        assert_eq!(Error::new(0, 0, "too big".into()).to_string(), "too big");
    }

    #[test]
    fn quotes_are_escaped_and_short() {
        assert_eq!(quoted(b"a\"b\n"), r#""a\"b\n""#);
        assert_eq!(quoted(b"\xbd"), "\"\u{fffd}\"");
        let long = quoted("é".repeat(1000).as_bytes());
        assert_eq!(long.chars().count(), QUOTE_MAX_CHARS + 3);
        assert!(long.ends_with("\"…"));
        assert_eq!(quoted_byte(b'+'), "'+'");
        assert_eq!(quoted_byte(b'\n'), "'\\n'");
        assert_eq!(quoted_byte(0xc5), "byte 0xc5");
    }
}
