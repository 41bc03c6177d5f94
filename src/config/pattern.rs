//! Regular expressions from configuration, compiled once when the config loads.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A compiled regex that remembers the text it came from.
///
/// It matches as node_exporter's filter flags do (Go's `MatchString`): anywhere in the
/// name unless the pattern anchors itself with `^` and `$`. A regex copied from a
/// node_exporter command line therefore selects the same devices and mounts here.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: regex_lite::Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, String> {
        regex_lite::Regex::new(source)
            .map(|regex| Pattern {
                source: source.to_owned(),
                regex,
            })
            .map_err(|e| format!("invalid regular expression {source:?}: {e}"))
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::de::from_str_with(deserializer, "a regular expression", Pattern::new)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// An include and an exclude pattern: a name passes when it matches the include
/// (if any) and does not match the exclude (if any).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub include: Option<Pattern>,
    pub exclude: Option<Pattern>,
}

impl Filter {
    pub fn allows(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|p| p.is_match(name))
            && !self.exclude.as_ref().is_some_and(|p| p.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_anywhere_like_node_exporter() {
        let p = Pattern::new("eth[0-9]").unwrap();
        assert!(p.is_match("eth0"));
        assert!(p.is_match("veth0"));
        assert!(!p.is_match("lo"));
        let anchored = Pattern::new("^lo$").unwrap();
        assert!(anchored.is_match("lo"));
        assert!(!anchored.is_match("lo0"));
    }

    #[test]
    fn reports_bad_syntax() {
        let err = Pattern::new("eth[").unwrap_err();
        assert!(err.contains("invalid regular expression \"eth[\""), "{err}");
    }

    #[test]
    fn filter_combines_include_and_exclude() {
        let f = Filter {
            include: Some(Pattern::new("^eth").unwrap()),
            exclude: Some(Pattern::new("^eth9$").unwrap()),
        };
        assert!(f.allows("eth0"));
        assert!(!f.allows("eth9"));
        assert!(!f.allows("lo"));
        assert!(Filter::default().allows("anything"));
    }
}
