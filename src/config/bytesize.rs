//! Sizes in bytes, written as a plain integer or with a unit: `4MiB`, `512KiB`, `1MB`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Units, binary ones first (what `Display` prefers), then decimal ones.
const UNITS: [(&str, u64); 7] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];

/// A number of bytes from configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl Bytes {
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Parses `4194304`, `4MiB`, `512 KiB`, `1MB` (decimal) or `100B`.
pub fn parse(text: &str) -> Result<u64, String> {
    let expected = || format!("expected a size like 4MiB, 512KiB or 1048576, got {text:?}");
    let trimmed = text.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(expected());
    }
    let number: u64 = trimmed[..digits].parse().map_err(|_| expected())?;
    let unit = trimmed[digits..].trim_start();
    if unit.is_empty() {
        return Ok(number);
    }
    let (_, size) = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(expected)?;
    number
        .checked_mul(*size)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

impl fmt::Display for Bytes {
    /// The largest binary unit that divides the value exactly, else plain bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, size) in &UNITS[..3] {
            if self.0 >= *size && self.0 % size == 0 {
                return write!(f, "{}{name}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like 4MiB, 512KiB or 1048576")
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Bytes, E> {
                Ok(Bytes(value))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Bytes, E> {
                u64::try_from(value)
                    .map(Bytes)
                    .map_err(|_| E::custom(format!("expected a size of 0 or more, got {value}")))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Bytes, E> {
                parse(text).map(Bytes).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_and_units() {
        assert_eq!(parse("4194304"), Ok(4 << 20));
        assert_eq!(parse("4MiB"), Ok(4 << 20));
        assert_eq!(parse("512KiB"), Ok(512 << 10));
        assert_eq!(parse("512 KiB"), Ok(512 << 10));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("1MB"), Ok(1_000_000));
        assert_eq!(parse("2KB"), Ok(2_000));
        assert_eq!(parse("100B"), Ok(100));
    }

    #[test]
    fn rejects_what_is_not_a_size() {
        for bad in [
            "",
            "MiB",
            "4 mib",
            "4M",
            "-1",
            "1.5MiB",
            "4MiBs",
            "99999999999GiB",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn yaml_accepts_integers_and_strings_and_round_trips() {
        let read = |yaml: &str| serde_yaml::from_str::<Bytes>(yaml);
        assert_eq!(read("1024").unwrap(), Bytes(1024));
        assert_eq!(read("4MiB").unwrap(), Bytes(4 << 20));
        assert!(read("-5").is_err());
        assert!(read("lots").unwrap_err().to_string().contains("4MiB"));
        for value in [1, 1000, 1024, 1536, 4 << 20, 3 << 30] {
            let text = Bytes(value).to_string();
            assert_eq!(parse(&text), Ok(value), "{text}");
        }
        assert_eq!(Bytes(4 << 20).to_string(), "4MiB");
        assert_eq!(Bytes(1536).to_string(), "1536B");
    }
}
