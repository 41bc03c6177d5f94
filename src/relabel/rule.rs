//! One relabel rule: its fields and defaults, how it reads from YAML, and the checks
//! Prometheus makes when it loads one (`relabel.Config.Validate`).
//!
//! The checks run while the rule is read, inside the YAML deserializer, so that an
//! error carries the rule's place and line:
//!
//! ```text
//! write_relabel_configs[2]: target_label: "0x" is invalid 'target_label' for replace action at line 9 column 5
//! ```
//!
//! The message after the field name is Prometheus' own text. Label names follow
//! Prometheus' legacy rules (`[a-zA-Z_][a-zA-Z0-9_]*`), which is what sc-agent emits and
//! what every remote-write receiver takes; Prometheus 3 also allows any UTF-8 name.

use super::regex::Regex;
use super::template::is_valid_name_template;
use crate::labels::is_valid_name;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Prometheus' default `separator`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Prometheus' default `replacement`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a rule does; Prometheus' names, read case-insensitively as Prometheus does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Sets `target_label` to `replacement` (with the regex' groups) when the regex
    /// matches the joined `source_labels`; an empty result deletes the label.
    #[default]
    Replace,
    /// Drops the series unless the regex matches the joined `source_labels`.
    Keep,
    /// Drops the series when the regex matches the joined `source_labels`.
    Drop,
    /// Drops the series unless the joined `source_labels` equal `target_label`'s value.
    KeepEqual,
    /// Drops the series when the joined `source_labels` equal `target_label`'s value.
    DropEqual,
    /// Sets `target_label` to md5(joined `source_labels`) mod `modulus`.
    HashMod,
    /// Copies each label whose name matches the regex to the name `replacement`.
    LabelMap,
    /// Deletes each label whose name matches the regex.
    LabelDrop,
    /// Deletes each label whose name does not match the regex.
    LabelKeep,
    /// Sets `target_label` to the joined `source_labels` in lower case.
    Lowercase,
    /// Sets `target_label` to the joined `source_labels` in upper case.
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    fn parse(text: &str) -> Result<Action, String> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown relabel action {text:?}"))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::config::de::from_str_with(deserializer, "a relabel action", Action::parse)
    }
}

/// One entry of `write_relabel_configs`, with Prometheus' fields and defaults.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// Labels whose values are joined with `separator` into the value the rule
    /// matches. `None` when not written (`labeldrop` and `labelkeep` require that).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_labels: Option<Vec<String>>,
    pub separator: String,
    /// `None` when not written: Prometheus' default `(.*)`, which matches anything
    /// and which `keepequal` and `dropequal` require.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<Regex>,
    #[serde(skip_serializing_if = "is_zero")]
    pub modulus: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for Rule {
    /// Prometheus' `DefaultRelabelConfig`.
    fn default() -> Self {
        Rule {
            source_labels: None,
            separator: DEFAULT_SEPARATOR.to_owned(),
            regex: None,
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action: Action::Replace,
        }
    }
}

impl Rule {
    /// Prometheus' checks, in Prometheus' order; the error is `field: message`.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let action = self.action;
        let fail = |field: &str, message: String| Err(format!("{field}: {message}"));
        let invalid_target = || {
            fail(
                "target_label",
                format!(
                    "{:?} is invalid 'target_label' for {action} action",
                    self.target_label
                ),
            )
        };
        let writes_target = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
        if action == HashMod && self.modulus == 0 {
            return fail(
                "modulus",
                "relabel configuration for hashmod requires non-zero modulus".to_owned(),
            );
        }
        if (writes_target || matches!(action, Replace | HashMod)) && self.target_label.is_empty() {
            return fail(
                "target_label",
                format!("relabel configuration for {action} action requires 'target_label' value"),
            );
        }
        if action == Replace {
            let target = &self.target_label;
            let valid = if target.contains('$') {
                is_valid_name_template(target)
            } else {
                is_valid_name(target)
            };
            if !valid {
                return invalid_target();
            }
        }
        if writes_target && !is_valid_name(&self.target_label) {
            return invalid_target();
        }
        if writes_target && self.replacement != DEFAULT_REPLACEMENT {
            return fail(
                "replacement",
                format!("'replacement' can not be set for {action} action"),
            );
        }
        if action == LabelMap && !is_valid_name_template(&self.replacement) {
            return fail(
                "replacement",
                format!(
                    "{:?} is invalid 'replacement' for {action} action",
                    self.replacement
                ),
            );
        }
        if action == HashMod && !is_valid_name(&self.target_label) {
            return invalid_target();
        }
        if matches!(action, KeepEqual | DropEqual) {
            let extra = [
                ("regex", self.regex.is_some()),
                ("modulus", self.modulus != 0),
                ("separator", self.separator != DEFAULT_SEPARATOR),
                ("replacement", self.replacement != DEFAULT_REPLACEMENT),
            ];
            if let Some((field, _)) = extra.into_iter().find(|(_, set)| *set) {
                return fail(
                    field,
                    format!(
                        "{action} action requires only 'source_labels' and `target_label`, and no other fields"
                    ),
                );
            }
        }
        if matches!(action, LabelDrop | LabelKeep) {
            let extra = [
                ("source_labels", self.source_labels.is_some()),
                ("target_label", !self.target_label.is_empty()),
                ("modulus", self.modulus != 0),
                ("separator", self.separator != DEFAULT_SEPARATOR),
                ("replacement", self.replacement != DEFAULT_REPLACEMENT),
            ];
            if let Some((field, _)) = extra.into_iter().find(|(_, set)| *set) {
                return fail(
                    field,
                    format!("{action} action requires only 'regex', and no other fields"),
                );
            }
        }
        Ok(())
    }
}

/// A label name in `source_labels`, checked as Prometheus' `model.LabelName` is.
struct SourceLabel(String);

impl<'de> Deserialize<'de> for SourceLabel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::config::de::from_str_with(deserializer, "a label name", |name| {
            if is_valid_name(name) {
                Ok(SourceLabel(name.to_owned()))
            } else {
                Err(format!("{name:?} is not a valid label name"))
            }
        })
    }
}

/// A rule as written. A field written without a value (`separator:`) is Go's zero
/// value, as in Prometheus: an empty string, 0, an empty regex, no action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    source_labels: Option<Vec<SourceLabel>>,
    #[serde(default = "default_separator", deserialize_with = "or_zero")]
    separator: String,
    #[serde(default, deserialize_with = "written")]
    regex: Option<Regex>,
    #[serde(default, deserialize_with = "or_zero")]
    modulus: u64,
    #[serde(default, deserialize_with = "or_zero")]
    target_label: String,
    #[serde(default = "default_replacement", deserialize_with = "or_zero")]
    replacement: String,
    #[serde(default = "default_action", deserialize_with = "or_none")]
    action: Option<Action>,
}

fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_owned()
}

fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.to_owned()
}

fn default_action() -> Option<Action> {
    Some(Action::Replace)
}

/// A value, or its zero value when written as null.
fn or_zero<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A value that was written, even as null (which [`Regex`] reads as the empty regex).
fn written<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

fn or_none<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

impl Written {
    fn into_rule(self) -> Result<Rule, String> {
        let Some(action) = self.action else {
            return Err("action: relabel action cannot be empty".to_owned());
        };
        let rule = Rule {
            source_labels: self
                .source_labels
                .map(|names| names.into_iter().map(|SourceLabel(name)| name).collect()),
            separator: self.separator,
            regex: self.regex,
            modulus: self.modulus,
            target_label: self.target_label,
            replacement: self.replacement,
            action,
        };
        rule.validate()?;
        Ok(rule)
    }
}

impl<'de> Deserialize<'de> for Rule {
    /// Reads the rule and checks it inside the mapping's visitor, so that the YAML
    /// deserializer puts the rule's path and line on a failed check.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = Rule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a relabel rule (a mapping of source_labels, regex, action, ...)")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rule, A::Error> {
                let written = Written::deserialize(de::value::MapAccessDeserializer::new(map))?;
                written.into_rule().map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(RuleVisitor)
    }
}
