//! D-Bus type signatures: the type codes, their alignments, and the checks a signature
//! read off the wire must pass before any value is decoded with it.
//!
//! A signature is a string of ASCII type codes (`u`, `s`, `a{sv}`, `(ssou)`, ...). The
//! specification bounds it: at most 255 bytes, at most 32 nested arrays and 32 nested
//! structs (dict entries count as structs), structs not empty, dict entries only as
//! array elements with a basic key and exactly one value type.

use std::fmt;

/// The longest signature the specification allows.
pub const MAX_SIGNATURE_BYTES: usize = 255;

/// The deepest nesting of array type codes, and separately of struct and dict-entry
/// parentheses, in one signature.
pub const MAX_NESTING: u8 = 32;

/// Why a signature is not valid: what, and at which byte of the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureError {
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at signature byte {}", self.what, self.at)
    }
}

/// The alignment of a type code's values on the wire, or `None` for a byte that is
/// not the first code of a complete type.
pub fn alignment(code: u8) -> Option<usize> {
    match code {
        b'y' | b'g' | b'v' => Some(1),
        b'n' | b'q' => Some(2),
        b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a' => Some(4),
        b'x' | b't' | b'd' | b'(' | b'{' => Some(8),
        _ => None,
    }
}

/// Whether `code` is a basic type (a dict-entry key may only be one of these).
pub fn is_basic(code: u8) -> bool {
    matches!(
        code,
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b'h' | b's' | b'o' | b'g'
    )
}

/// Checks a whole signature: any number of complete types.
pub fn validate(sig: &[u8]) -> Result<(), SignatureError> {
    if sig.len() > MAX_SIGNATURE_BYTES {
        return Err(SignatureError {
            at: MAX_SIGNATURE_BYTES,
            what: "signature longer than 255 bytes",
        });
    }
    let mut at = 0;
    while at < sig.len() {
        at = complete_type_end(sig, at, 0, 0)?;
    }
    Ok(())
}

/// Checks that `sig` is exactly one complete type (a variant's signature).
pub fn validate_single(sig: &[u8]) -> Result<(), SignatureError> {
    validate(sig)?;
    if sig.is_empty() {
        return Err(SignatureError {
            at: 0,
            what: "empty signature where one complete type is needed",
        });
    }
    if complete_type_end(sig, 0, 0, 0)? != sig.len() {
        return Err(SignatureError {
            at: 0,
            what: "more than one complete type where one is needed",
        });
    }
    Ok(())
}

/// Splits a validated signature into its first complete type and the rest.
pub fn split_first(sig: &str) -> Result<(&str, &str), SignatureError> {
    let end = complete_type_end(sig.as_bytes(), 0, 0, 0)?;
    // The codes are ASCII, so `end` is a character boundary; `get` cannot fail then,
    // but a failure is still reported rather than assumed away.
    match (sig.get(..end), sig.get(end..)) {
        (Some(first), Some(rest)) => Ok((first, rest)),
        _ => Err(SignatureError {
            at: end,
            what: "signature is not ASCII",
        }),
    }
}

/// The index just past the complete type starting at `at`, checking it on the way.
/// `arrays` and `structs` count the containers already open around it.
fn complete_type_end(
    sig: &[u8],
    at: usize,
    arrays: u8,
    structs: u8,
) -> Result<usize, SignatureError> {
    let error = |at, what| Err(SignatureError { at, what });
    let Some(&code) = sig.get(at) else {
        return error(at, "signature ends inside a type");
    };
    match code {
        c if is_basic(c) || c == b'v' => Ok(at + 1),
        b'a' => {
            if arrays >= MAX_NESTING {
                return error(at, "arrays nested deeper than 32");
            }
            if sig.get(at + 1) == Some(&b'{') {
                dict_entry_end(sig, at + 1, arrays + 1, structs)
            } else {
                complete_type_end(sig, at + 1, arrays + 1, structs)
            }
        }
        b'(' => {
            if structs >= MAX_NESTING {
                return error(at, "structs nested deeper than 32");
            }
            let mut next = at + 1;
            if sig.get(next) == Some(&b')') {
                return error(at, "empty struct");
            }
            while sig.get(next) != Some(&b')') {
                if next >= sig.len() {
                    return error(at, "struct not closed");
                }
                next = complete_type_end(sig, next, arrays, structs + 1)?;
            }
            Ok(next + 1)
        }
        b'{' => error(at, "dict entry outside an array"),
        b')' | b'}' => error(at, "closing bracket without an opening one"),
        _ => error(at, "unknown type code"),
    }
}

/// A dict entry `{kv}` starting at `at` (just after its array's `a`).
fn dict_entry_end(sig: &[u8], at: usize, arrays: u8, structs: u8) -> Result<usize, SignatureError> {
    let error = |at, what| Err(SignatureError { at, what });
    if structs >= MAX_NESTING {
        return error(at, "structs nested deeper than 32");
    }
    match sig.get(at + 1) {
        Some(&key) if is_basic(key) => {}
        Some(b'}') => return error(at, "empty dict entry"),
        Some(_) => return error(at + 1, "dict entry key is not a basic type"),
        None => return error(at, "dict entry not closed"),
    }
    if sig.get(at + 2) == Some(&b'}') {
        return error(at, "dict entry without a value");
    }
    let value_end = complete_type_end(sig, at + 2, arrays, structs + 1)?;
    match sig.get(value_end) {
        Some(b'}') => Ok(value_end + 1),
        Some(_) => error(value_end, "dict entry with more than a key and a value"),
        None => error(at, "dict entry not closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_the_specification_allows() {
        for sig in [
            "",
            "y",
            "a(ssssssouso)",
            "a{sv}",
            "a{oa{sa{sv}}}",
            "(i(ii)a(y))",
            "ssv",
            "aay",
            "h",
        ] {
            assert_eq!(validate(sig.as_bytes()), Ok(()), "{sig}");
        }
        assert_eq!(
            validate(
                "a".repeat(32)
                    .chars()
                    .chain(['y'])
                    .collect::<String>()
                    .as_bytes()
            ),
            Ok(())
        );
        let deep_structs = format!("{}y{}", "(".repeat(32), ")".repeat(32));
        assert_eq!(validate(deep_structs.as_bytes()), Ok(()));
    }

    #[test]
    fn rejects_malformed_signatures_saying_where() {
        let cases: [(&str, usize, &str); 12] = [
            ("a", 1, "signature ends inside a type"),
            ("(", 0, "struct not closed"),
            ("(i", 0, "struct not closed"),
            ("()", 0, "empty struct"),
            ("{sv}", 0, "dict entry outside an array"),
            ("a{vs}", 2, "dict entry key is not a basic type"),
            ("a{s}", 1, "dict entry without a value"),
            ("a{sss}", 4, "dict entry with more than a key and a value"),
            ("a{}", 1, "empty dict entry"),
            ("i)", 1, "closing bracket without an opening one"),
            ("z", 0, "unknown type code"),
            ("a{(s)s}", 2, "dict entry key is not a basic type"),
        ];
        for (sig, at, what) in cases {
            assert_eq!(
                validate(sig.as_bytes()),
                Err(SignatureError { at, what }),
                "{sig}"
            );
        }
        let deep_arrays = format!("{}y", "a".repeat(33));
        assert_eq!(
            validate(deep_arrays.as_bytes()).unwrap_err().what,
            "arrays nested deeper than 32"
        );
        let deep_structs = format!("{}y{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(
            validate(deep_structs.as_bytes()).unwrap_err().what,
            "structs nested deeper than 32"
        );
        assert_eq!(
            validate("y".repeat(256).as_bytes()).unwrap_err().what,
            "signature longer than 255 bytes"
        );
    }

    #[test]
    fn single_types_and_splitting() {
        assert_eq!(validate_single(b"a{sv}"), Ok(()));
        assert!(validate_single(b"").is_err());
        assert!(validate_single(b"ss").is_err());
        assert_eq!(split_first("a{sv}u"), Ok(("a{sv}", "u")));
        assert_eq!(split_first("(ss)"), Ok(("(ss)", "")));
        assert!(split_first("").is_err());
    }
}
