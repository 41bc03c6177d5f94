//! The collector table: the one list of collectors, from which everything else that
//! names them is derived.
//!
//! The rows themselves are in `collector/mod.rs` (the `collectors!` invocation, so
//! that each row also declares its module); this file holds what they expand to.
//! One row per collector: its name (node_exporter's, as in
//! `node_scrape_collector_success{collector="..."}`, and the file
//! `src/collector/<name>.rs`), older names still accepted in config, its type
//! (whose [`Build`](super::Build) impl gives its options and constructor) and
//! whether it runs by default.
//! From the rows come the `collectors:` config section ([`Settings`]: its keys, its
//! defaults, its errors), the [`TABLE`] the registry builds collectors from, the
//! fuzz harness's cases and the fixtures' selection. `tests/collector_table.rs`
//! checks the README's collector list against it.
//!
//! Rows run in table order, which is also the order of their families in a batch.
//!
//! Adding a collector: its file (with a `Build` impl and, if it has any, its
//! options), one row, one fixture case. See docs/ARCHITECTURE.md.

pub use super::{Settings, TABLE};

use super::{Collector, Context};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// One row of the table, as the registry and the tests use it.
pub struct Descriptor {
    pub name: &'static str,
    /// Older config names that mean this collector.
    pub aliases: &'static [&'static str],
    pub enabled_by_default: bool,
    /// Examples of the files it reads (see [`Build::SOURCES`](super::Build::SOURCES)).
    pub sources: &'static [&'static str],
    /// Whether `settings` turns it on.
    pub enabled: fn(&Settings) -> bool,
    /// Whether two configs give it the same options, and agree on what it takes from
    /// the others' (a reload then keeps it as it is).
    pub same_options: fn(&Settings, &Settings) -> bool,
    /// Checks its options; the message names the option.
    pub check: fn(&Settings) -> Result<(), String>,
    /// Builds it from its options.
    pub build: fn(&Context<'_>, &Settings) -> Box<dyn Collector>,
}

/// node_exporter's `--collector.disable-defaults`: only the collectors the section
/// turns on run.
pub const DISABLE_DEFAULTS: &str = "disable_defaults";

#[doc(hidden)]
macro_rules! on_off {
    (on) => {
        true
    };
    (off) => {
        false
    };
}

/// Expands the table (invoked once, in `collector/mod.rs`, so that each row can
/// declare its collector's module `src/collector/<name>.rs` too).
macro_rules! collectors {
    ($( $name:ident $( ( alias $alias:literal ) )? : $ty:ident = $default:ident, )*) => {
        $( pub mod $name; )*

        /// What the `collectors:` section says of every collector.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Settings {
            $( pub $name: $crate::config::collectors::Setting<<$name::$ty as Build>::Options>, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $( $name: $crate::config::collectors::Setting::new(on_off!($default)), )*
                }
            }
        }

        /// Every collector, in the order they run.
        pub const TABLE: &[$crate::collector::table::Descriptor] = &[
            $(
                $crate::collector::table::Descriptor {
                    name: stringify!($name),
                    aliases: &[$($alias)?],
                    enabled_by_default: on_off!($default),
                    sources: <$name::$ty as Build>::SOURCES,
                    enabled: |s| s.$name.enabled,
                    same_options: |a, b| {
                        a.$name.options == b.$name.options
                            && <$name::$ty as Build>::same_others(a, b)
                    },
                    check: |s| s.$name.options.check(),
                    build: |context, s| {
                        Box::new(<$name::$ty as Build>::build(context, &s.$name.options))
                    },
                },
            )*
        ];

        /// The keys the section accepts, for the unknown-key error.
        const KEYS: &[&str] = &[$crate::collector::table::DISABLE_DEFAULTS, $( stringify!($name), $($alias,)? )*];

        impl Settings {
            /// The keys the section accepts, for the unknown-key error.
            pub(crate) const KEYS: &'static [&'static str] = KEYS;

            /// Reads the value of `key` into its collector's entry; returns the
            /// entry's table index, or `None` when no collector has that name.
            pub(crate) fn read_entry<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<Option<usize>, A::Error> {
                let mut index = 0;
                $(
                    if key == stringify!($name) $( || key == $alias )? {
                        self.$name = map.next_value()?;
                        return Ok(Some(index));
                    }
                    index += 1;
                )*
                let _ = index;
                Ok(None)
            }

            /// Switches off every collector whose index is not in `named`.
            pub(crate) fn keep_only(&mut self, named: &[bool]) {
                let mut index = 0;
                $(
                    if !named.get(index).copied().unwrap_or(false) {
                        self.$name.enabled = false;
                    }
                    index += 1;
                )*
                let _ = index;
            }
        }

        impl serde::Serialize for Settings {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(TABLE.len()))?;
                $( map.serialize_entry(stringify!($name), &self.$name)?; )*
                map.end()
            }
        }
    };
}

impl Settings {
    /// Checks every collector's options; the message names the option's full path.
    pub fn check(&self) -> Result<(), String> {
        for descriptor in TABLE {
            (descriptor.check)(self).map_err(|e| format!("collectors.{}.{e}", descriptor.name))?;
        }
        Ok(())
    }

    /// The table rows this section turns on, in the order they run.
    pub fn enabled(&self) -> impl Iterator<Item = &'static Descriptor> + '_ {
        TABLE.iter().filter(|d| (d.enabled)(self))
    }
}

/// The row of the collector called `name` (or once called so).
pub fn find(name: &str) -> Option<&'static Descriptor> {
    TABLE
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SettingsVisitor)
    }
}

struct SettingsVisitor;

impl<'de> Visitor<'de> for SettingsVisitor {
    type Value = Settings;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of collector names to true, false or their options")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Settings, A::Error> {
        let mut settings = Settings::default();
        let mut named = [false; TABLE.len()];
        let mut disable_defaults = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == DISABLE_DEFAULTS {
                disable_defaults = map.next_value()?;
                continue;
            }
            match settings.read_entry(&key, &mut map)? {
                Some(index) if named[index] => {
                    return Err(de::Error::custom(format!(
                        "collector {:?} is set twice (as {key:?} and under another name)",
                        TABLE[index].name
                    )));
                }
                Some(index) => named[index] = true,
                None => return Err(de::Error::unknown_field(&key, Settings::KEYS)),
            }
        }
        if disable_defaults {
            settings.keep_only(&named);
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Settings, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    fn enabled(settings: &Settings) -> Vec<&'static str> {
        settings.enabled().map(|d| d.name).collect()
    }

    #[test]
    fn names_are_unique_and_node_exporters() {
        let mut names: Vec<&str> = TABLE
            .iter()
            .flat_map(|d| std::iter::once(d.name).chain(d.aliases.iter().copied()))
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a name or alias is used twice");
        for descriptor in TABLE {
            assert!(
                descriptor
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                descriptor.name
            );
            assert_eq!(find(descriptor.name).map(|d| d.name), Some(descriptor.name));
        }
        assert_eq!(find("memory").map(|d| d.name), Some("meminfo"));
        assert!(find("nope").is_none());
    }

    #[test]
    fn defaults_follow_the_table() {
        let settings = Settings::default();
        for descriptor in TABLE {
            assert_eq!(
                (descriptor.enabled)(&settings),
                descriptor.enabled_by_default,
                "{}",
                descriptor.name
            );
        }
        assert_eq!(parse("{}").unwrap(), settings);
        assert_eq!(settings.check(), Ok(()));
    }

    #[test]
    fn the_old_name_memory_still_means_meminfo() {
        let settings = parse("memory: false\n").unwrap();
        assert!(!settings.meminfo.enabled);
        let err = parse("memory: false\nmeminfo: true\n").unwrap_err();
        assert!(err.contains("collector \"meminfo\" is set twice"), "{err}");
    }

    #[test]
    fn disable_defaults_keeps_only_what_is_named_wherever_it_is_written() {
        let settings = parse("cpu: true\ndisable_defaults: true\nnetdev: {}\n").unwrap();
        assert_eq!(enabled(&settings), ["cpu", "netdev"]);
        let settings = parse("disable_defaults: true\ncpu: false\n").unwrap();
        assert!(enabled(&settings).is_empty());
        let settings = parse("disable_defaults: false\ncpu: false\n").unwrap();
        let defaults = TABLE.iter().filter(|d| d.enabled_by_default).count();
        assert_eq!(enabled(&settings).len(), defaults - 1);
    }

    #[test]
    fn an_unknown_collector_is_named_with_the_known_ones() {
        let err = parse("cpu: true\ncpuu: true\n").unwrap_err();
        assert!(err.contains("unknown field `cpuu`"), "{err}");
        assert!(err.contains("`meminfo`"), "{err}");
    }

    #[test]
    fn prints_every_collector_and_reads_it_back() {
        let mut settings = parse("disable_defaults: true\nuname: true\n").unwrap();
        settings.diskstats.enabled = true;
        let text = serde_yaml::to_string(&settings).unwrap();
        for descriptor in TABLE {
            assert!(
                text.contains(&format!("\n{}:", descriptor.name))
                    || text.starts_with(&format!("{}:", descriptor.name)),
                "{text}"
            );
        }
        assert!(text.contains("uname: true\n") && text.contains("loadavg: false\n"));
        assert_eq!(parse(&text).unwrap(), settings);
    }
}
