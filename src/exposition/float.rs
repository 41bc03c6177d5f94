//! Numbers as the Go side of Prometheus reads and writes them.
//!
//! expfmt reads sample values, `le` and `quantile` with Go's `strconv.ParseFloat`
//! minus its hexadecimal and underscore forms, and timestamps with `ParseInt`; they
//! differ from Rust's `parse` at the edges (Go refuses `+NaN` and a value past
//! `f64::MAX`, Rust reads them). client_golang writes floats with
//! `strconv.FormatFloat(v, 'g', -1, 64)`, which is where node_exporter's label values
//! `le="1.6384e+06"` and `quantile="0.99"` come from: [`GoFloat`] writes them alike,
//! so a series keeps the name it had when Prometheus scraped node_exporter.

use std::fmt;

/// A sample value, `le` or `quantile` as expfmt reads it: optional sign, decimal
/// digits with an optional point and exponent, or `Inf`/`Infinity` (with an optional
/// sign) and `NaN` (without), in any case. `None` for anything else, and for a
/// decimal beyond `f64::MAX` (Go's range error).
pub fn parse_float(text: &[u8]) -> Option<f64> {
    let (negative, unsigned) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if unsigned.eq_ignore_ascii_case(b"inf") || unsigned.eq_ignore_ascii_case(b"infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if text.eq_ignore_ascii_case(b"nan") {
        return Some(f64::NAN);
    }
    if !is_decimal(unsigned) {
        return None;
    }
    // The grammar is checked, so this is ASCII and Rust reads it as Go does.
    let value: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// `digits [. digits] [(e|E) [+|-] digits]` with at least one mantissa digit.
fn is_decimal(text: &[u8]) -> bool {
    let digits = |at: usize| text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let whole = digits(0);
    let mut at = whole;
    let mut mantissa = whole;
    if text.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        at += 1 + fraction;
        mantissa += fraction;
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return false;
        }
        at += exponent;
    }
    at == text.len()
}

/// A timestamp as expfmt reads it: Go's `ParseInt(text, 10, 64)`.
pub fn parse_timestamp(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Writes a float as client_golang does: `NaN`, `+Inf`, `-Inf`, `0`, otherwise the
/// shortest digits that read back exactly, in exponent form (`1.6384e+06`,
/// `4.3132e-05`) when the exponent is below -4 or at least 6.
#[derive(Clone, Copy, Debug)]
pub struct GoFloat(pub f64);

/// Rust's `{:e}` of an f64 is at most 24 bytes (`-2.2250738585072014e-308`).
const SCIENTIFIC_MAX: usize = 32;

impl fmt::Display for GoFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        if value.is_nan() {
            return f.write_str("NaN");
        }
        if value.is_infinite() {
            return f.write_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        }
        if value == 0.0 {
            return f.write_str("0");
        }
        let mut buf = StackBuf::default();
        // Rust's `{:e}` gives the shortest round-tripping digits: `-1.6384e6`.
        fmt::write(&mut buf, format_args!("{:e}", value.abs()))?;
        let scientific = buf.as_str();
        let (mantissa, exponent) = scientific.split_once('e').ok_or(fmt::Error)?;
        let exponent: i32 = exponent.parse().map_err(|_| fmt::Error)?;
        let (first, rest) = mantissa.split_at(1);
        let rest = rest.strip_prefix('.').unwrap_or(rest);
        if value < 0.0 {
            f.write_str("-")?;
        }
        if !(-4..6).contains(&exponent) {
            f.write_str(first)?;
            if !rest.is_empty() {
                write!(f, ".{rest}")?;
            }
            let sign = if exponent < 0 { '-' } else { '+' };
            return write!(f, "e{sign}{:02}", exponent.unsigned_abs());
        }
        // Plain form: the point goes after digit `exponent + 1` of `first rest`.
        let point = exponent + 1;
        if point <= 0 {
            f.write_str("0.")?;
            for _ in point..0 {
                f.write_str("0")?;
            }
            f.write_str(first)?;
            return f.write_str(rest);
        }
        // 1 ≤ point ≤ 6: `first` and `point - 1` digits of `rest` before the point.
        let before = (point - 1) as usize;
        f.write_str(first)?;
        match rest.split_at_checked(before) {
            Some((head, after)) => {
                f.write_str(head)?;
                if !after.is_empty() {
                    write!(f, ".{after}")?;
                }
            }
            None => {
                f.write_str(rest)?;
                for _ in rest.len()..before {
                    f.write_str("0")?;
                }
            }
        }
        Ok(())
    }
}

/// A fixed buffer to format into without allocating.
#[derive(Default)]
struct StackBuf {
    bytes: [u8; SCIENTIFIC_MAX],
    len: usize,
}

impl StackBuf {
    fn as_str(&self) -> &str {
        // Only whole `str`s are written in.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_go_reads() {
        let cases: &[(&str, f64)] = &[
            ("1.234", 1.234),
            ("-3e3", -3e3),
            ("0.23", 0.23),
            ("08", 8.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1E-3", 1e-3),
            ("+7", 7.0),
            ("1.7560473e+06", 1756047.3),
            ("1e-400", 0.0),
            ("+Inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("-INFINITY", f64::NEG_INFINITY),
        ];
        for &(text, expected) in cases {
            assert_eq!(parse_float(text.as_bytes()), Some(expected), "{text}");
        }
        for nan in ["NaN", "nan", "NAN"] {
            assert!(
                parse_float(nan.as_bytes()).is_some_and(f64::is_nan),
                "{nan}"
            );
        }
    }

    #[test]
    fn refuses_what_go_or_expfmt_refuses() {
        for text in [
            "", "+", "-", ".", "e5", "1e", "1e+", "1.2.3", "+NaN", "-nan", "infin", "1_2",
            "0x1p-3", "0x1P-3", "0X1", "0x1", "0b1", "0B1", "0o1", "0O1", "1e400", "-1e309", " 1",
            "1 ", "1\r", "blubb", "2.72x", "١",
        ] {
            assert_eq!(parse_float(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn timestamps_are_decimal_integers() {
        assert_eq!(parse_timestamp(b"1234567890"), Some(1234567890));
        assert_eq!(parse_timestamp(b"-2"), Some(-2));
        assert_eq!(parse_timestamp(b"+5"), Some(5));
        for text in ["", "2.72", "1_0", "0x10", "9223372036854775808", "-"] {
            assert_eq!(parse_timestamp(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn writes_what_go_writes() {
        // strconv.FormatFloat(v, 'g', -1, 64), as in node_exporter's fixtures.
        let cases: &[(f64, &str)] = &[
            (100.0, "100"),
            (25600.0, "25600"),
            (409600.0, "409600"),
            (1.6384e6, "1.6384e+06"),
            (2.62144e7, "2.62144e+07"),
            (1.0020195e8, "1.0020195e+08"),
            (0.5, "0.5"),
            (0.99, "0.99"),
            (0.000571464, "0.000571464"),
            (4.3132e-5, "4.3132e-05"),
            (1e-6, "1e-06"),
            (-12.34, "-12.34"),
            (-1.5e-7, "-1.5e-07"),
            (1.8652166505091474e6, "1.8652166505091474e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for &(value, expected) in cases {
            assert_eq!(GoFloat(value).to_string(), expected, "{value:e}");
            if value.is_finite() {
                assert_eq!(parse_float(expected.as_bytes()), Some(value));
            }
        }
    }
}
