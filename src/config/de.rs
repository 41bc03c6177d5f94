//! serde helpers for config values written as text, and for the paths in their
//! errors.

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

/// Joins a field named by a check over a whole mapping to the mapping's path.
///
/// A check that needs every field of a mapping (a relabel rule's) runs once the
/// mapping is read, so the YAML deserializer puts the mapping's path on its error and
/// the check can only name the field in the message:
/// `remote_write.write_relabel_configs[2]: regex: ...`. Written as one path, as every
/// other field error is: `remote_write.write_relabel_configs[2].regex: ...`.
pub(crate) fn join_field(message: String) -> String {
    let Some((path, rest)) = message.split_once(": ") else {
        return message;
    };
    let field = rest.split_once(": ").map(|(field, _)| field);
    let is_field =
        |f: &str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    match field {
        Some(field) if path.ends_with(']') && !path.contains(' ') && is_field(field) => {
            format!("{path}.{rest}")
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_named_in_the_message_joins_the_path() {
        let joined = |m: &str| join_field(m.to_owned());
        assert_eq!(
            joined("a.b[2]: target_label: \"0x\" is invalid at line 7 column 3"),
            "a.b[2].target_label: \"0x\" is invalid at line 7 column 3"
        );
        for unchanged in [
            "a.b[2]: invalid type: string \"x\", expected a relabel rule at line 2",
            "a.b[0].regex: invalid regular expression: x",
            "a.b: keep: not a path of a sequence",
            "a.b[1]: \"x\": quoted",
            "no colon at all",
        ] {
            assert_eq!(joined(unchanged), unchanged);
        }
    }

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
