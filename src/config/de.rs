//! serde helpers for config values written as text.

use std::fmt;

/// Deserializes a value written as a string through `parse`.
///
/// The parse runs inside the YAML deserializer's visitor, so an error carries the
/// field's path and line (`collection_interval: ... at line 2 column 22`); an error
/// raised after `String::deserialize` returns would lose both.
pub(crate) fn from_str_with<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.parse)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Visitor { expecting, parse })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Even(u32);

    impl<'de> serde::Deserialize<'de> for Even {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            from_str_with(d, "an even number", |text| match text.parse::<u32>() {
                Ok(n) if n % 2 == 0 => Ok(Even(n)),
                _ => Err(format!("expected an even number, got {text:?}")),
            })
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Holder {
        first: u32,
        even: Even,
    }

    #[test]
    fn a_parse_error_keeps_the_field_and_the_line() {
        let err = serde_yaml::from_str::<Holder>("first: 1\neven: '3'\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("even: expected an even number, got \"3\""),
            "{text}"
        );
        assert!(text.contains("line 2"), "{text}");
        let ok = serde_yaml::from_str::<Holder>("first: 1\neven: '4'\n").unwrap();
        assert_eq!(ok.even.0, 4);
        let err = serde_yaml::from_str::<Holder>("first: 1\neven: [4]\n").unwrap_err();
        assert!(err.to_string().contains("an even number"), "{err}");
    }
}
