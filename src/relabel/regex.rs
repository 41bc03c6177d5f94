//! The `regex` of a relabel rule: Go syntax, anchored at both ends, compiled once.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A relabel regex as Prometheus compiles it: `^(?s:<source>)$`, so it must match the
/// whole value and `.` matches a newline too. The source is kept for printing.
///
/// The wrapped text goes through [`super::syntax::translate`] as a whole, as Go's
/// parser reads it: a source such as `a)|(b` leaves the anchors' group in Go as well.
#[derive(Clone)]
pub struct Regex {
    source: String,
    regex: regex_lite::Regex,
}

impl Regex {
    pub fn new(source: &str) -> Result<Self, String> {
        let wrapped = format!("^(?s:{source})$");
        let invalid = |e: String| format!("invalid regular expression {source:?}: {e}");
        let translated = super::syntax::translate(&wrapped).map_err(invalid)?;
        let regex = regex_lite::Regex::new(&translated).map_err(|e| invalid(e.to_string()))?;
        Ok(Regex {
            source: source.to_owned(),
            regex,
        })
    }

    /// The text the regex was written as, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The groups of the match of `text`, if it matches.
    pub fn captures<'t>(&self, text: &'t str) -> Option<Captures<'t>> {
        self.regex.captures(text).map(Captures::Groups)
    }
}

/// The groups of one match, for `$1` and `${name}` in templates.
pub enum Captures<'t> {
    /// The default regex `(.*)` matched: groups 0 and 1 are the whole text.
    Whole(&'t str),
    Groups(regex_lite::Captures<'t>),
}

impl<'t> Captures<'t> {
    /// Group `index`, if the regex has it and it took part in the match.
    pub fn get(&self, index: usize) -> Option<&'t str> {
        match self {
            Captures::Whole(text) => (index <= 1).then_some(*text),
            Captures::Groups(groups) => groups.get(index).map(|m| m.as_str()),
        }
    }

    /// The group called `name`, if the regex has it and it took part in the match.
    pub fn name(&self, name: &str) -> Option<&'t str> {
        match self {
            Captures::Whole(_) => None,
            Captures::Groups(groups) => groups.name(name).map(|m| m.as_str()),
        }
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for Regex {
    /// A string, or null: as in Prometheus, `regex:` with no value is the empty regex
    /// (which matches only the empty string), not the default `(.*)`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Regex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a regular expression")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Regex, E> {
                Regex::new(text).map_err(E::custom)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Regex, E> {
                self.visit_str("")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Regex, E> {
                self.visit_str("")
            }
            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Regex, D::Error> {
                inner.deserialize_str(self)
            }
        }
        deserializer.deserialize_option(Visitor)
    }
}

impl Serialize for Regex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_at_both_ends_and_dot_matches_newline() {
        let re = Regex::new("f(.*)").unwrap();
        assert!(re.is_match("foo"));
        assert!(!re.is_match("afoo"), "anchored at the start");
        let re = Regex::new("fo").unwrap();
        assert!(!re.is_match("foo"), "anchored at the end");
        assert!(Regex::new("line1.*line2").unwrap().is_match("line1\nline2"));
        assert!(Regex::new("").unwrap().is_match(""));
        assert!(!Regex::new("").unwrap().is_match("x"));
    }

    #[test]
    fn alternation_is_inside_the_anchors() {
        let re = Regex::new("a|b").unwrap();
        assert!(re.is_match("a") && re.is_match("b") && !re.is_match("ab"));
    }

    #[test]
    fn a_source_that_closes_the_anchor_group_reads_as_in_go() {
        // Go compiles ^(?s:a)|(b)$: "a" anchored at the start, or "b" at the end.
        let re = Regex::new("a)|(b").unwrap();
        assert!(re.is_match("axx") && re.is_match("xxb") && !re.is_match("xx"));
        assert_eq!(re.captures("xxb").and_then(|c| c.get(1)), Some("b"));
    }

    #[test]
    fn groups_by_number_and_name() {
        let re = Regex::new("(line1).*(?P<second>line2)").unwrap();
        let caps = re.captures("line1\nline2").unwrap();
        assert_eq!(caps.get(0), Some("line1\nline2"));
        assert_eq!(caps.get(1), Some("line1"));
        assert_eq!(caps.get(2), Some("line2"));
        assert_eq!(caps.get(3), None);
        assert_eq!(caps.name("second"), Some("line2"));
        assert_eq!(caps.name("first"), None);
        let whole = Captures::Whole("abc");
        assert_eq!(
            (whole.get(0), whole.get(1), whole.get(2)),
            (Some("abc"), Some("abc"), None)
        );
    }

    #[test]
    fn errors_name_the_source() {
        let e = Regex::new("a(").unwrap_err();
        assert!(e.starts_with("invalid regular expression \"a(\": "), "{e}");
        let e = Regex::new(r"\pL").unwrap_err();
        assert!(e.contains("Unicode class"), "{e}");
    }
}
