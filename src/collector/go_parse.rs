//! Text to values as node_exporter's Go code turns sysfs text into values, so that a
//! value written oddly (`0x1003`, `+5`, `1e400`, bytes that are not UTF-8) is taken or
//! refused here exactly as node_exporter takes or refuses it.
//!
//! - [`parse_int`]: `strconv.ParseInt(s, 0, 64)` (netclass, procfs's `ValueParser`):
//!   a sign, then `0x` hexadecimal, `0o`, `0` octal, `0b` binary or decimal digits.
//!   Go also takes `_` between digits in this mode; that is refused here.
//! - [`parse_uint`]: `strconv.ParseUint(s, 10, 64)` (procfs's `ReadUintFromFile`):
//!   decimal digits only. Rust's `u64::from_str` would also take `+5`; Go does not.
//! - [`parse_float`]: `strconv.ParseFloat(s, 64)`: a value out of range is refused, as
//!   Go refuses it, where Rust would give infinity. Go's hexadecimal floats (`0x1p3`)
//!   are refused too; no sysfs attribute prints them.
//! - [`trim_space`]: `bytes.TrimSpace` for ASCII (procfs's `SysReadFile` trims with it).
//! - [`push_valid_utf8`]: `strings.ToValidUTF8(s, "\u{FFFD}")`, which node_exporter
//!   applies to label values read from sysfs: each run of bytes that are not UTF-8
//!   becomes one replacement character.

/// Parses an integer like Go's `strconv.ParseInt(text, 0, 64)`, without underscores.
pub fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = match digits.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16, &digits[2..]),
        [b'0', b'b' | b'B', ..] => (2, &digits[2..]),
        [b'0', b'o' | b'O', ..] => (8, &digits[2..]),
        [b'0', _, ..] => (8, &digits[1..]),
        _ => (10, digits),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses a whole number like Go's `strconv.ParseUint(text, 10, 64)`.
pub fn parse_uint(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses a number like Go's `strconv.ParseFloat(text, 64)` (see the module doc).
pub fn parse_float(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    let unsigned = text.trim_start_matches(['+', '-']);
    let infinity_literal =
        unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
    (!value.is_infinite() || infinity_literal).then_some(value)
}

/// `bytes` without the ASCII white space Go's `bytes.TrimSpace` removes around it.
pub fn trim_space(bytes: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Appends `bytes` to `out` as Go's `strings.ToValidUTF8(s, "\u{FFFD}")` would give
/// them: valid text as it is, each run of invalid bytes as one U+FFFD.
pub fn push_valid_utf8(out: &mut String, bytes: &[u8]) {
    let mut in_invalid_run = false;
    for chunk in bytes.utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.push_str(chunk.valid());
            in_invalid_run = false;
        }
        if !chunk.invalid().is_empty() && !in_invalid_run {
            out.push('\u{FFFD}');
            in_invalid_run = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_go_base_zero() {
        for (text, value) in [
            ("0x1003", Some(4099)),
            ("0X1F", Some(31)),
            ("010", Some(8)),
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("+5", Some(5)),
            ("-0x10", Some(-16)),
            ("0b101", Some(5)),
            ("0o17", Some(15)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("", None),
            ("-", None),
            ("0x", None),
            ("08", None),
            ("1_000", None),
            ("1.5", None),
            ("+-1", None),
            (" 1", None),
        ] {
            assert_eq!(parse_int(text), value, "{text:?}");
        }
    }

    #[test]
    fn whole_numbers_parse_like_go_base_ten() {
        for (text, value) in [
            ("0", Some(0)),
            ("3700000", Some(3_700_000)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("+5", None),
            ("-1", None),
            ("0x10", None),
            ("", None),
            ("1 ", None),
        ] {
            assert_eq!(parse_uint(text), value, "{text:?}");
        }
    }

    #[test]
    fn floats_parse_like_go() {
        assert_eq!(parse_float("55000"), Some(55000.0));
        assert_eq!(parse_float("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_float("Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        // Out of range: Go's ParseFloat fails where Rust rounds to infinity.
        assert_eq!(parse_float("1e400"), None);
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float(" 1"), None);
        assert_eq!(parse_float("12abc"), None);
    }

    #[test]
    fn trims_go_white_space() {
        assert_eq!(trim_space(b" \t live\n\x0b"), b"live");
        assert_eq!(trim_space(b"\n\n"), b"");
        assert_eq!(trim_space(b""), b"");
        assert_eq!(trim_space(b"a b"), b"a b");
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_run() {
        let mut out = String::new();
        push_valid_utf8(&mut out, b"LNV-45N1\xff\xfe\x80");
        assert_eq!(out, "LNV-45N1\u{FFFD}");
        out.clear();
        push_valid_utf8(&mut out, b"a\xffb\xc3\xa9\xe2\x82c");
        assert_eq!(out, "a\u{FFFD}b\u{e9}\u{FFFD}c");
        out.clear();
        push_valid_utf8(&mut out, "plain é".as_bytes());
        assert_eq!(out, "plain é");
    }
}
