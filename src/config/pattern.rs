//! Regular expressions from configuration, compiled once when the config loads.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

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

/// Deserializes the regex of a node_exporter filter flag (one that node_exporter
/// hands to its `newDeviceFilter`): an empty one, like `null`, is no filter, as
/// `--collector.diskstats.device-exclude=` excludes nothing there. (A plain
/// [`Pattern`] that is empty matches every name.)
pub fn filter<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Pattern>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<Pattern>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a regular expression, empty or null for none")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            match text {
                "" => Ok(None),
                _ => Pattern::new(text).map(Some).map_err(E::custom),
            }
        }
    }
    deserializer.deserialize_option(Visitor)
}

/// node_exporter's rule for an include flag and the exclude flag it pairs with,
/// when both have a regex: it refuses to start (diskstats' `device-include` and
/// `-exclude`, filesystem's `mount-points-*` and `fs-types-*`). An exclude written
/// empty (or null) is none, which is how node_exporter's users pair an include with
/// an exclude that has a default.
pub fn exclusive(
    (include_name, include): (&str, &Option<Pattern>),
    (exclude_name, exclude): (&str, &Option<Pattern>),
) -> Result<(), String> {
    match (include, exclude) {
        (Some(_), Some(_)) => Err(format!(
            "{include_name}: {include_name} and {exclude_name} exclude each other, as \
             node_exporter's flags do: write one of them (`{exclude_name}: ''` drops \
             the exclude's default)"
        )),
        _ => Ok(()),
    }
}

/// [`exclusive`], where an include written without the exclude first drops the
/// exclude's default (filesystem's `mount-points-*` and `fs-types-*` since
/// node_exporter 1.9). For [`Options::resolve`](super::collectors::Options::resolve).
pub fn resolve_pair(
    written: &dyn Fn(&str) -> bool,
    (include_name, include): (&str, &Option<Pattern>),
    (exclude_name, exclude): (&str, &mut Option<Pattern>),
) -> Result<(), String> {
    if include.is_some() && !written(exclude_name) {
        *exclude = None;
    }
    exclusive((include_name, include), (exclude_name, exclude))
}

/// The default of a `fields` option (netstat's, vmstat's): node_exporter's regex, and
/// the same test written as code, which the collector's tests check against the
/// regex. The code runs on every field of every cycle, where a regex engine would
/// cost more than reading the file.
pub trait DefaultFields: 'static {
    const REGEX: &'static str;
    fn matches(field: &str) -> bool;
}

/// A `fields` option (`--collector.netstat.fields`, `--collector.vmstat.fields`): the
/// regex a field's name must match (anywhere, unless anchored) to be exported, which
/// replaces the default set. Written as a regex; the default's own text selects the
/// default's code.
pub struct Fields<D> {
    custom: Option<Pattern>,
    default: PhantomData<fn() -> D>,
}

impl<D: DefaultFields> Fields<D> {
    pub fn new(source: &str) -> Result<Self, String> {
        let custom = match source == D::REGEX {
            true => None,
            false => Some(Pattern::new(source)?),
        };
        Ok(Fields {
            custom,
            default: PhantomData,
        })
    }

    pub fn matches(&self, field: &str) -> bool {
        match &self.custom {
            Some(pattern) => pattern.is_match(field),
            None => D::matches(field),
        }
    }

    pub fn as_str(&self) -> &str {
        self.custom.as_ref().map_or(D::REGEX, Pattern::as_str)
    }
}

impl<D> Default for Fields<D> {
    fn default() -> Self {
        Fields {
            custom: None,
            default: PhantomData,
        }
    }
}

impl<D> Clone for Fields<D> {
    fn clone(&self) -> Self {
        Fields {
            custom: self.custom.clone(),
            default: PhantomData,
        }
    }
}

impl<D: DefaultFields> fmt::Debug for Fields<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<D> PartialEq for Fields<D> {
    fn eq(&self, other: &Self) -> bool {
        self.custom == other.custom
    }
}

impl<'de, D: DefaultFields> Deserialize<'de> for Fields<D> {
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<Self, De::Error> {
        super::de::from_str_with(deserializer, "a regular expression", Fields::new)
    }
}

impl<D: DefaultFields> Serialize for Fields<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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

    #[derive(Debug, serde::Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "filter")]
        exclude: Option<Pattern>,
    }

    #[test]
    fn an_empty_filter_regex_is_no_filter_as_in_node_exporter() {
        let read = |yaml: &str| serde_yaml::from_str::<Holder>(yaml).map(|h| h.exclude);
        assert_eq!(read("exclude: ''\n").unwrap(), None);
        assert_eq!(read("exclude: null\n").unwrap(), None);
        assert_eq!(read("{}\n").unwrap(), None);
        let some = read("exclude: '^lo$'\n").unwrap().unwrap();
        assert!(some.is_match("lo") && !some.is_match("eth0"));
        let err = read("exclude: 'eth['\n").unwrap_err().to_string();
        assert!(
            err.starts_with("exclude: invalid regular expression"),
            "{err}"
        );
        assert!(err.contains("line 1"), "{err}");
        let err = read("exclude: [a]\n").unwrap_err().to_string();
        assert!(
            err.contains("a regular expression, empty or null for none"),
            "{err}"
        );
    }

    #[test]
    fn an_include_drops_the_default_exclude_unless_both_are_written() {
        let pattern = |s: &str| Some(Pattern::new(s).unwrap());
        let resolve = |written: &[&str], include: Option<Pattern>, exclude: Option<Pattern>| {
            let mut exclude = exclude;
            let written = |field: &str| written.contains(&field);
            resolve_pair(&written, ("in", &include), ("ex", &mut exclude)).map(|()| exclude)
        };
        // No include: the exclude stays, written or not.
        assert_eq!(resolve(&[], None, pattern("^d$")), Ok(pattern("^d$")));
        // An include alone drops the default exclude.
        assert_eq!(resolve(&["in"], pattern("a"), pattern("^d$")), Ok(None));
        // Both written: refused, unless the exclude is empty.
        let err = resolve(&["in", "ex"], pattern("a"), pattern("b")).unwrap_err();
        assert_eq!(
            err,
            "in: in and ex exclude each other, as node_exporter's flags do: write one of \
             them (`ex: ''` drops the exclude's default)"
        );
        // Without the written check, the default exclude and an include are refused.
        let include = pattern("a");
        assert!(exclusive(("in", &include), ("ex", &pattern("^d$"))).is_err());
        assert_eq!(exclusive(("in", &include), ("ex", &None)), Ok(()));
        assert_eq!(exclusive(("in", &None), ("ex", &pattern("^d$"))), Ok(()));
        assert_eq!(resolve(&["in", "ex"], pattern("a"), None), Ok(None));
    }

    struct Vowels;

    impl DefaultFields for Vowels {
        const REGEX: &'static str = "^[aeiou]";
        fn matches(field: &str) -> bool {
            field.starts_with(['a', 'e', 'i', 'o', 'u'])
        }
    }

    #[test]
    fn fields_run_the_default_as_code_and_another_regex_as_a_regex() {
        let default = Fields::<Vowels>::default();
        assert_eq!(default.as_str(), "^[aeiou]");
        assert!(default.matches("apple") && !default.matches("pear"));
        assert_eq!(Fields::<Vowels>::new("^[aeiou]").unwrap(), default);
        let custom = Fields::<Vowels>::new("ea").unwrap();
        assert_ne!(custom, default);
        assert!(custom.matches("pear") && !custom.matches("apple"));
        assert_eq!(custom.as_str(), "ea");
        // Written and printed as the regex, an empty one matching every field.
        let read = |yaml: &str| serde_yaml::from_str::<Fields<Vowels>>(yaml);
        assert_eq!(read("'ea'").unwrap(), custom);
        assert!(read("''").unwrap().matches("anything"));
        assert_eq!(serde_yaml::to_string(&custom).unwrap(), "ea\n");
        assert_eq!(serde_yaml::to_string(&default).unwrap(), "^[aeiou]\n");
        let err = read("'('").unwrap_err().to_string();
        assert!(err.contains("invalid regular expression \"(\""), "{err}");
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
