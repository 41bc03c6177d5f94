//! The shape of the `collectors:` section: one entry per collector, either a switch
//! or the collector's options.
//!
//! ```yaml
//! collectors:
//!   disable_defaults: true      # node_exporter's --collector.disable-defaults
//!   cpu: true                   # --collector.cpu
//!   netclass: false             # --no-collector.netclass
//!   diskstats:                  # options imply `enabled: true`
//!     device_exclude: '^loop'   # --collector.diskstats.device-exclude
//!   filesystem: {enabled: false, mount_timeout: 2s}
//! ```
//!
//! The entries themselves (which collectors exist, their defaults, their option
//! types) come from the collector table, `crate::collector::table`; this module
//! holds what every entry shares: [`Setting`], the [`Options`] a collector declares,
//! and the deserializer that lets one entry be a `bool` or a mapping while serde
//! still reports the field path and line of every error inside it.

use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// The options of one collector, as its own file declares them.
pub trait Options:
    Default + Clone + PartialEq + fmt::Debug + Serialize + DeserializeOwned + 'static
{
    /// False for a collector without options: its entry prints as a plain `bool`.
    const HAS_FIELDS: bool = true;

    /// Old names of fields, each with the field that replaces it: node_exporter's
    /// deprecated flags (`ignored_mount_points`) and sc-agent's own earlier names.
    /// Writing one is an error that names the new field, rather than node_exporter's
    /// warning: a config is written once, and the old name would otherwise have to be
    /// documented and kept in step with the new one.
    const RENAMED: &'static [(&'static str, &'static str)] = &[];

    /// Applies node_exporter's rules between options that depend on which of them the
    /// config wrote: an include written without its exclude drops the exclude's
    /// default, an include and an exclude both written exclude each other.
    /// `written(field)` says whether the mapping had that field. The message starts
    /// with the option's name.
    fn resolve(&mut self, _written: &dyn Fn(&str) -> bool) -> Result<(), String> {
        Ok(())
    }

    /// Checks what the types alone cannot. The message starts with the option's
    /// name; the caller puts `collectors.<collector>.` in front.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The options of a collector that has none: only `enabled` is accepted.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

impl Options for NoOptions {
    const HAS_FIELDS: bool = false;
}

/// Whether a collector runs, and with which options.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting<O> {
    pub enabled: bool,
    pub options: O,
}

impl<O: Options> Setting<O> {
    pub fn new(enabled: bool) -> Self {
        Setting {
            enabled,
            options: O::default(),
        }
    }
}

/// The key that switches a collector on or off inside its mapping.
const ENABLED: &str = "enabled";

impl<'de, O: Options> Deserialize<'de> for Setting<O> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SettingVisitor(PhantomData))
    }
}

struct SettingVisitor<O>(PhantomData<O>);

impl<'de, O: Options> Visitor<'de> for SettingVisitor<O> {
    type Value = Setting<O>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if O::HAS_FIELDS {
            f.write_str("true, false, or a mapping of the collector's options")
        } else {
            f.write_str("true or false")
        }
    }

    fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<Self::Value, E> {
        Ok(Setting::new(enabled))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut enabled = None;
        let mut written = Vec::new();
        let mut options = O::deserialize(de::value::MapAccessDeserializer::new(WithoutEnabled {
            map,
            enabled: &mut enabled,
            written: &mut written,
            renamed: O::RENAMED,
        }))?;
        options
            .resolve(&|field| written.iter().any(|w| w == field))
            .map_err(de::Error::custom)?;
        Ok(Setting {
            // Writing a collector's options means wanting it.
            enabled: enabled.unwrap_or(true),
            options,
        })
    }
}

/// The entries of a collector's mapping, minus `enabled`, which it takes for itself:
/// the options type sees only its own fields, and the values are read straight from
/// the YAML deserializer, which keeps the field path and line of its errors. It notes
/// the fields written (for [`Options::resolve`]) and refuses the renamed ones.
struct WithoutEnabled<'a, A> {
    map: A,
    enabled: &'a mut Option<bool>,
    written: &'a mut Vec<String>,
    renamed: &'static [(&'static str, &'static str)],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutEnabled<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if key == ENABLED {
                *self.enabled = Some(self.map.next_value()?);
                continue;
            }
            if let Some((_, new)) = self.renamed.iter().find(|(old, _)| *old == key) {
                return Err(de::Error::custom(format!(
                    "{key}: renamed: write `{new}`, node_exporter's current name for the option"
                )));
            }
            if !self.written.contains(&key) {
                self.written.push(key.clone());
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<O: Options> Serialize for Setting<O> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a, O> {
            enabled: bool,
            #[serde(flatten)]
            options: &'a O,
        }
        if O::HAS_FIELDS {
            Shown {
                enabled: self.enabled,
                options: &self.options,
            }
            .serialize(serializer)
        } else {
            serializer.serialize_bool(self.enabled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Millis;

    #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        limit: u32,
        wait: Millis,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                limit: 7,
                wait: Millis::from_millis(100),
            }
        }
    }

    impl Options for Demo {}

    /// An include/exclude pair, with a deprecated name for the exclude.
    #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    struct Pair {
        include: Option<u32>,
        exclude: Option<u32>,
    }

    impl Default for Pair {
        fn default() -> Self {
            Pair {
                include: None,
                exclude: Some(9),
            }
        }
    }

    impl Options for Pair {
        const RENAMED: &'static [(&'static str, &'static str)] = &[("old_exclude", "exclude")];

        fn resolve(&mut self, written: &dyn Fn(&str) -> bool) -> Result<(), String> {
            match (self.include, written("exclude")) {
                (Some(_), false) => self.exclude = None,
                (Some(_), true) => return Err("include: not with exclude".to_owned()),
                (None, _) => {}
            }
            Ok(())
        }
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Section {
        demo: Setting<Demo>,
        plain: Setting<NoOptions>,
        #[serde(default = "pair_default")]
        pair: Setting<Pair>,
    }

    fn pair_default() -> Setting<Pair> {
        Setting::new(true)
    }

    fn parse(yaml: &str) -> Result<Section, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn an_entry_is_a_switch_or_the_options() {
        let section = parse("demo: false\nplain: true\n").unwrap();
        assert_eq!(section.demo, Setting::new(false));
        assert!(section.plain.enabled);
        let section = parse("demo:\n  limit: 3\nplain: {enabled: false}\n").unwrap();
        assert!(section.demo.enabled, "options imply enabled");
        assert_eq!(section.demo.options.limit, 3);
        assert_eq!(section.demo.options.wait, Millis::from_millis(100));
        assert!(!section.plain.enabled);
        let section = parse("demo: {limit: 1, enabled: false}\nplain: true\n").unwrap();
        assert_eq!(
            (section.demo.enabled, section.demo.options.limit),
            (false, 1)
        );
    }

    #[test]
    fn errors_inside_an_entry_name_the_field_and_line() {
        let err = parse("plain: true\ndemo:\n  limit: 3\n  wait: soon\n").unwrap_err();
        assert!(err.starts_with("demo.wait: expected a duration"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        let err = parse("plain: true\ndemo:\n  limt: 3\n").unwrap_err();
        assert!(err.contains("unknown field `limt`"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = parse("demo: true\nplain: {depth: 1}\n").unwrap_err();
        assert!(err.contains("unknown field `depth`"), "{err}");
        let err = parse("demo: true\nplain: 3\n").unwrap_err();
        assert!(err.contains("expected true or false"), "{err}");
        let err = parse("demo: {enabled: maybe}\nplain: true\n").unwrap_err();
        assert!(err.contains("demo.enabled"), "{err}");
    }

    #[test]
    fn options_see_which_fields_were_written() {
        let pair = |yaml: &str| parse(&format!("demo: true\nplain: true\n{yaml}"));
        assert_eq!(pair("").unwrap().pair.options, Pair::default());
        assert_eq!(pair("pair: true\n").unwrap().pair.options, Pair::default());
        let section = pair("pair: {include: 1}\n").unwrap();
        assert_eq!(
            (section.pair.options.include, section.pair.options.exclude),
            (Some(1), None)
        );
        let section = pair("pair: {exclude: 2, enabled: false}\n").unwrap();
        assert_eq!(section.pair.options.exclude, Some(2));
        assert!(!section.pair.enabled);
        let err = pair("pair:\n  include: 1\n  exclude: 2\n").unwrap_err();
        assert!(err.starts_with("pair: include: not with exclude"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn a_renamed_field_is_refused_naming_the_new_one() {
        let err = parse("demo: true\nplain: true\npair:\n  old_exclude: 3\n").unwrap_err();
        assert!(
            err.starts_with(
                "pair: old_exclude: renamed: write `exclude`, node_exporter's current name for the option"
            ),
            "{err}"
        );
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn prints_a_switch_or_the_options_and_reads_them_back() {
        let section = Section {
            demo: Setting {
                enabled: false,
                options: Demo {
                    limit: 2,
                    wait: Millis::from_millis(1500),
                },
            },
            plain: Setting::new(true),
            pair: Setting::new(true),
        };
        let text = serde_yaml::to_string(&section).unwrap();
        assert_eq!(
            text,
            "demo:\n  enabled: false\n  limit: 2\n  wait: 1s500ms\nplain: true\n\
             pair:\n  enabled: true\n  include: null\n  exclude: 9\n"
        );
        assert_eq!(parse(&text).unwrap(), section);
    }
}
