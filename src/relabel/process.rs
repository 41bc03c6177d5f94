//! Applying rules to one label set, as Prometheus' `relabel.Process` does.
//!
//! The rules edit a [`Builder`] that mirrors Prometheus' `labels.Builder`: the input
//! stays as it is, and the rules record labels set and deleted on the side. That
//! model decides the few results that depend on order: `labelmap` visits the input's
//! labels first (in name order), then the ones earlier rules set (in the order they
//! were set; deleting one and setting it again moves it to the end), so when two
//! labels map to the same name the later one wins.

use super::md5;
use super::regex::Captures;
use super::rule::{Action, Rule};
use super::template::expand;
use crate::labels::is_valid_name;

/// The input labels plus what the rules set and deleted.
struct Builder<'a> {
    base: &'a [(&'a str, &'a str)],
    add: Vec<(String, String)>,
    del: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(base: &'a [(&'a str, &'a str)]) -> Self {
        Builder {
            base,
            add: Vec::new(),
            del: Vec::new(),
        }
    }

    /// The value of `name`; empty when it is not set.
    fn get(&self, name: &str) -> &str {
        if let Some((_, value)) = self.add.iter().find(|(n, _)| n == name) {
            return value;
        }
        if self.del.iter().any(|n| n == name) {
            return "";
        }
        self.base
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, value)| value)
    }

    /// Sets `name`; an empty value deletes it (Prometheus treats both alike).
    fn set(&mut self, name: &str, value: String) {
        if value.is_empty() {
            return self.del(name);
        }
        match self.add.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = value,
            None => self.add.push((name.to_owned(), value)),
        }
    }

    fn del(&mut self, name: &str) {
        self.add.retain(|(n, _)| n != name);
        self.del.push(name.to_owned());
    }

    fn shadowed(&self, name: &str) -> bool {
        self.del.iter().any(|n| n == name) || self.add.iter().any(|(n, _)| n == name)
    }

    /// The current labels in Prometheus' `Range` order: the input's (neither deleted
    /// nor overwritten) in their order, then those set, in the order they were set.
    fn current(&self) -> impl Iterator<Item = (&str, &str)> {
        let base = self.base.iter().filter(|(name, _)| !self.shadowed(name));
        let added = self.add.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        base.copied().chain(added)
    }

    /// The resulting label set, sorted by name.
    fn labels(self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .base
            .iter()
            .filter(|(name, _)| !self.shadowed(name))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        out.extend(self.add);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Runs `rules` over `labels` (sorted by name, unique, `__name__` included): the new
/// label set sorted by name, or `None` when a rule drops the series.
pub fn process(rules: &[Rule], labels: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    let mut builder = Builder::new(labels);
    for rule in rules {
        if !apply(rule, &mut builder) {
            return None;
        }
    }
    Some(builder.labels())
}

/// One rule; false when it drops the series.
fn apply(rule: &Rule, builder: &mut Builder<'_>) -> bool {
    let mut value = String::new();
    for (i, name) in rule.source_labels.iter().flatten().enumerate() {
        if i > 0 {
            value.push_str(&rule.separator);
        }
        value.push_str(builder.get(name));
    }
    let is_match = |text: &str| rule.regex.as_ref().is_none_or(|re| re.is_match(text));
    match rule.action {
        Action::Drop => return !is_match(&value),
        Action::Keep => return is_match(&value),
        Action::DropEqual => return builder.get(&rule.target_label) != value,
        Action::KeepEqual => return builder.get(&rule.target_label) == value,
        Action::Replace => {
            let Some(caps) = captures(rule, &value) else {
                return true;
            };
            let mut target = String::new();
            expand(&rule.target_label, &caps, &mut target);
            if !is_valid_name(&target) {
                return true;
            }
            let mut replaced = String::new();
            expand(&rule.replacement, &caps, &mut replaced);
            builder.set(&target, replaced);
        }
        Action::Lowercase => builder.set(&rule.target_label, go_to_lower(&value)),
        Action::Uppercase => builder.set(&rule.target_label, go_to_upper(&value)),
        Action::HashMod => {
            let digest = md5::digest(value.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest[8..]);
            // The modulus is checked to be above 0 when the rule is loaded.
            let shard = u64::from_be_bytes(tail)
                .checked_rem(rule.modulus)
                .unwrap_or(0);
            builder.set(&rule.target_label, shard.to_string());
        }
        // Prometheus edits while it walks a copy of the labels; working out every
        // change first and making them after is the same.
        Action::LabelMap => {
            let mut mapped = Vec::new();
            for (name, label_value) in builder.current() {
                let Some(caps) = captures(rule, name) else {
                    continue;
                };
                let mut new_name = String::new();
                expand(&rule.replacement, &caps, &mut new_name);
                // Prometheus sets even an invalid name (the receiver then refuses the
                // whole request); sc-agent leaves such a label unmapped.
                if is_valid_name(&new_name) {
                    mapped.push((new_name, label_value.to_owned()));
                }
            }
            for (name, label_value) in mapped {
                builder.set(&name, label_value);
            }
        }
        Action::LabelDrop | Action::LabelKeep => {
            let keep_matching = rule.action == Action::LabelKeep;
            let deleted: Vec<String> = builder
                .current()
                .filter(|(name, _)| is_match(name) != keep_matching)
                .map(|(name, _)| name.to_owned())
                .collect();
            for name in deleted {
                builder.del(&name);
            }
        }
    }
    true
}

/// The groups of the rule's regex on `text`; the default `(.*)` always matches.
fn captures<'t>(rule: &Rule, text: &'t str) -> Option<Captures<'t>> {
    match &rule.regex {
        None => Some(Captures::Whole(text)),
        Some(re) => re.captures(text),
    }
}

/// Go's `strings.ToLower`: each character by its simple lowercase mapping. Rust's
/// full mapping differs for one character (İ becomes i plus a combining dot) and
/// for a final Σ, which Go lowercases to σ everywhere.
fn go_to_lower(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{130}' => 'i',
            _ => c.to_lowercase().next().unwrap_or(c),
        })
        .collect()
}

/// Go's `strings.ToUpper`: each character by its simple uppercase mapping. Where
/// Rust's full mapping gives several characters (ß → SS, ﬁ → FI, ᾳ → ΑΙ), the simple
/// mapping is the character itself, or for the Greek letters with ypogegrammeni
/// (U+1F80..1FF3) their prosgegrammeni capital.
fn go_to_upper(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(single), None) => single,
                _ => simple_upper_of_special(c),
            }
        })
        .collect()
}

fn simple_upper_of_special(c: char) -> char {
    let code = c as u32;
    let shifted = match code {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => code + 8,
        0x1FB3 | 0x1FC3 | 0x1FF3 => code + 9,
        _ => code,
    };
    char::from_u32(shifted).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_mapping_is_gos_simple_mapping() {
        assert_eq!(go_to_lower("bAr123Foo"), "bar123foo");
        assert_eq!(go_to_upper("bAr123Foo"), "BAR123FOO");
        assert_eq!(go_to_lower("İSTANBUL"), "istanbul");
        assert_eq!(go_to_lower("ΟΔΟΣ"), "οδοσ", "no final sigma");
        assert_eq!(go_to_upper("straße"), "STRAßE");
        assert_eq!(go_to_upper("ﬁ"), "ﬁ");
        assert_eq!(go_to_upper("ᾳ ᾀ ᾈ ῼ"), "ᾼ ᾈ ᾈ ῼ");
        assert_eq!(go_to_upper("ǆ"), "Ǆ");
    }

    #[test]
    fn builder_records_sets_and_deletes_beside_the_input() {
        let base = [("a", "1"), ("b", "2")];
        let mut builder = Builder::new(&base);
        builder.set("c", "3".into());
        builder.del("a");
        builder.set("b", "20".into());
        assert_eq!(
            (builder.get("a"), builder.get("b"), builder.get("c")),
            ("", "20", "3")
        );
        builder.set("a", "10".into());
        builder.set("c", String::new());
        let current: Vec<_> = builder.current().collect();
        assert_eq!(current, [("b", "20"), ("a", "10")]);
        assert_eq!(
            builder.labels(),
            [("a".into(), "10".into()), ("b".into(), "20".into())]
        );
    }
}
