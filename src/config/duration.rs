//! Durations as Prometheus writes them: `250ms`, `30s`, `5m`, `1h30m`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// Units from largest to smallest; a duration may combine several, largest first.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A duration read from configuration, kept to the millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub Duration);

impl Millis {
    pub const fn from_millis(ms: u64) -> Self {
        Millis(Duration::from_millis(ms))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` and combinations such as `1m30s`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let expected = || format!("expected a duration like 250ms, 30s or 5m, got {text:?}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(expected());
    }
    let mut total: u64 = 0;
    // Index into UNITS of the last unit used: each following unit must be smaller.
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(expected());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| expected())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let index = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(expected)?;
        if last.is_some_and(|previous| index <= previous) {
            return Err(expected());
        }
        last = Some(index);
        total = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    Ok(Duration::from_millis(total))
}

impl fmt::Display for Millis {
    /// Writes the shortest combination that `parse` reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, size) in UNITS {
            if ms >= size {
                write!(f, "{}{name}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::de::from_str_with(deserializer, "a duration like 250ms, 30s or 5m", |text| {
            parse(text).map(Millis)
        })
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn parses_combinations_largest_first() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h0m5s250ms"), Ok(Duration::from_millis(3_605_250)));
        assert!(parse("30s1m").is_err());
        assert!(parse("1s1s").is_err());
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "15",
            "s",
            "1.5s",
            "-1s",
            "1 s",
            "1sec",
            "1S",
            "1y",
            "ms",
            "99999999999999999999s",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse("18446744073709551615d").is_err());
    }

    #[test]
    fn display_round_trips() {
        for ms in [0, 1, 250, 1000, 1500, 60_000, 90_000, 3_605_250, 86_400_000] {
            let text = Millis::from_millis(ms).to_string();
            assert_eq!(parse(&text), Ok(Duration::from_millis(ms)), "{text}");
        }
        assert_eq!(Millis::from_millis(90_000).to_string(), "1m30s");
    }
}
