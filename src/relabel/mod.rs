//! Prometheus relabeling (`write_relabel_configs`), applied to every series before it
//! is sent.
//!
//! [`Rules`] is the list as configured: each [`Rule`] has Prometheus' fields,
//! defaults and load-time checks (`model/relabel/relabel.go`, `Validate` and
//! `UnmarshalYAML`, with the same error texts). [`Rules::process`] is Prometheus'
//! `relabel.Process`. [`Relabeler`] runs the rules once per distinct series and
//! remembers the outcome, since an agent sends nearly the same series every cycle.
//! [`Stage`] is the cycle's step between the batch and its writers: the rules, then
//! the duplicate check, then the series limit (`remote_write.max_series`,
//! [`SeriesLimit`]); [`Selected`] is the batch as the writers read it.
//!
//! # What differs from Prometheus
//!
//! - **Label names** follow the legacy rules, `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus 3
//!   with `metric_name_validation_scheme: legacy`): a `target_label`, a
//!   `source_labels` entry or a `labelmap` result outside them is refused.
//!   Prometheus 3's default also takes any UTF-8 name (`utf-8.label`), which
//!   remote-write receivers of the legacy scheme refuse.
//! - **`labelmap`** leaves a label unmapped when the new name is not a valid label
//!   name (for example `__meta_(.*)` on `__meta_0x`). Prometheus sets it, and the
//!   receiver then refuses the whole request.
//! - **Regular expressions** are matched by regex-lite, not Go's RE2; the syntax is
//!   read as Go reads it (see [`syntax`]). What remains different:
//!   - Unicode classes (`\pL`, `\p{Greek}`, `\PN`) are refused at load: regex-lite has
//!     no Unicode tables. `\d`, `\w`, `\s`, `\b` and the POSIX classes are ASCII in
//!     both, so they match the same.
//!   - `(?i)` folds only ASCII letters: `(?i)é` does not match `É`, and `(?i)k` does
//!     not match the Kelvin sign, as they do in Go.
//!   - Group names starting with a digit (`(?P<1a>...)`, which Go takes) are refused.
//!   - The limits on a pattern's size and nesting are regex-lite's.
//! - **Templates** (`$name`): a name ends at the first character that is not a
//!   letter, digit or `_`, where Go's "letter" is Unicode's L categories and Rust's
//!   is slightly wider; only names with rare non-ASCII characters can differ, and no
//!   group can have such a name.
//! - **`lowercase`/`uppercase`** map characters one to one as Go does (ß stays ß);
//!   the Unicode version is Rust's, which can be newer than Go's.
//! - [`Relabeler`] does not send a series that the rules leave without a valid
//!   `__name__` ([`Outcome::Invalid`]); Prometheus would send it and have the whole
//!   request refused.
//! - [`Stage`] sends only the first of the series that the rules make equal, and
//!   counts the others; Prometheus would send them all, and the receiver refuse the
//!   whole request for the repeated series.
//!
//! Input labels with an empty value are left out before the rules run, as a scrape
//! never produces them and the encoder drops them.

mod cache;
mod limit;
mod md5;
mod process;
mod regex;
mod rule;
mod stage;
mod syntax;
mod template;

pub use cache::{Applied, Labels, Limits, Outcome, Relabeler};
pub use limit::{SeriesLimit, FORGET_AFTER_CYCLES};
pub use regex::Regex;
pub use rule::{Action, Rule, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR};
pub use stage::{Selected, SelectedFamily, Sent, SentLabels, SeriesDropped, Stage};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The rules of `write_relabel_configs`, in order, each checked as Prometheus checks
/// it when it loads a config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Checks each rule; the error names the rule's index and field
    /// (`[2].target_label: ...`).
    pub fn new(rules: Vec<Rule>) -> Result<Rules, String> {
        for (index, rule) in rules.iter().enumerate() {
            rule.validate().map_err(|e| format!("[{index}].{e}"))?;
        }
        Ok(Rules(rules))
    }

    pub fn as_slice(&self) -> &[Rule] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Prometheus' `relabel.Process`: runs the rules in order over `labels` (sorted
    /// by name, unique, `__name__` included) and returns the new label set, sorted
    /// by name, or `None` when a rule drops the series.
    pub fn process(&self, labels: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        process::process(&self.0, labels)
    }
}

impl<'de> Deserialize<'de> for Rules {
    /// A YAML list of rules; each is checked as it is read, so that an error names
    /// its index and line (see [`Rule`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Rule>::deserialize(deserializer).map(Rules)
    }
}

impl Serialize for Rules {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests;
