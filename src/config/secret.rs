//! Secrets (basic-auth password, bearer token): read from a file or the environment
//! when the config loads, and never shown.
//!
//! [`Secret`] prints `<secret>` through `Debug`, `Display` and `Serialize`, so a
//! secret that ends up in a log line, an error or `--print-config` by mistake still
//! does not leak. The only way to the text is [`Secret::expose`].

use serde::{Serialize, Serializer};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// What every secret prints as.
pub const MASK: &str = "<secret>";

/// The largest secret file read; a token is a few kilobytes at most.
const MAX_SECRET_BYTES: u64 = 64 << 10;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The secret itself, for the one place that needs it (the HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads a secret file: surrounding whitespace (the trailing newline editors add)
    /// is trimmed, and an empty file is an error. Errors never include the contents.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut text = String::new();
        file.take(MAX_SECRET_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if text.len() as u64 > MAX_SECRET_BYTES {
            return Err(format!(
                "{} is larger than {MAX_SECRET_BYTES} bytes; expected a password or token",
                path.display()
            ));
        }
        Secret::from_text(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A secret from text (a file's contents or an environment variable), trimmed.
    pub fn from_text(text: &str) -> Result<Secret, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("expected a non-empty secret".to_owned());
        }
        check_header_safe(text)?;
        Ok(Secret(text.to_owned()))
    }
}

/// A secret goes into an HTTP header: control characters (CR, LF) would split it.
fn check_header_safe(text: &str) -> Result<(), String> {
    if text.chars().any(|c| c.is_control()) {
        return Err("the secret contains control characters (a line break?), \
                    which cannot go into an HTTP header"
            .to_owned());
    }
    Ok(())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn never_prints_itself() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), MASK);
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<secret>)");
        assert_eq!(serde_yaml::to_string(&secret).unwrap().trim(), MASK);
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn files_are_trimmed_and_checked() {
        let dir = TempDir::new();
        let good = dir.write("password", "hunter2\n");
        assert_eq!(Secret::from_file(&good).unwrap().expose(), "hunter2");
        let empty = dir.write("empty", " \n");
        let err = Secret::from_file(&empty).unwrap_err();
        assert!(err.contains("expected a non-empty secret"), "{err}");
        let split = dir.write("split", "line1\nline2\n");
        let err = Secret::from_file(&split).unwrap_err();
        assert!(err.contains("control characters"), "{err}");
        assert!(!err.contains("line1"), "{err}");
        let err = Secret::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.starts_with("cannot open"), "{err}");
    }
}
