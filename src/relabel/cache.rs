//! Relabeling once per series instead of once per series per cycle.
//!
//! An agent sends the same series every cycle (only their values change), so the
//! outcome of the rules for a label set is kept and reused while that label set
//! keeps coming. Each input label set is hashed with SipHash under a per-process
//! random key; the hash finds a slot, and the slot's stored copy of the labels is
//! compared with the input before its outcome is used, so a collision can never
//! hand one series another's labels. A label set whose hash is already taken by a
//! different one (about one pair in 2^64, and not craftable without the key) is
//! relabeled every time instead of cached.
//!
//! A cached series costs one hash and one comparison of its labels, with no
//! allocation. Memory stays bounded: a series not seen for
//! [`Limits::max_idle_cycles`] cycles is forgotten, and past [`Limits::max_series`]
//! new series are relabeled without being kept. New rules empty the cache.

use super::Rules;
use crate::batch::NAME_LABEL;
use crate::labels::is_valid_metric_name;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Between the parts of a cached key: 0xFF never occurs in UTF-8, so the encoding of
/// a label set is unambiguous.
const SEPARATOR: u8 = 0xFF;

/// How much the cache keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A series is forgotten at the end of the `max_idle_cycles`-th cycle in a row
    /// that did not see it.
    pub max_idle_cycles: u32,
    /// The most series kept; more are relabeled each time they come.
    pub max_series: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_idle_cycles: 10,
            max_series: 20_000,
        }
    }
}

/// What the rules made of one series.
#[derive(Clone, Debug)]
pub enum Outcome<'a> {
    /// A rule dropped it.
    Dropped,
    /// The rules left it without a valid `__name__`; it is not sent, because the
    /// receiver would refuse the whole request for it.
    Invalid,
    /// The rules left its labels as they were: send the series' own labels.
    Unchanged,
    /// Send these labels instead, sorted by name.
    Relabeled(Labels<'a>),
}

/// A relabeled label set as `(name, value)` pairs, sorted by name.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    text: &'a str,
    /// The end of each name and of each value in `text`, alternately.
    ends: &'a [usize],
    start: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (&name_end, &value_end) = (self.ends.first()?, self.ends.get(1)?);
        self.ends = self.ends.get(2..).unwrap_or_default();
        let name = self.text.get(self.start..name_end)?;
        let value = self.text.get(name_end..value_end)?;
        self.start = value_end;
        Some((name, value))
    }
}

/// A label set kept in one string.
#[derive(Debug)]
struct LabelSet {
    text: Box<str>,
    ends: Box<[usize]>,
}

impl LabelSet {
    fn new(labels: &[(String, String)]) -> Self {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(labels.len() * 2);
        for (name, value) in labels {
            text.push_str(name);
            ends.push(text.len());
            text.push_str(value);
            ends.push(text.len());
        }
        LabelSet {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    fn iter(&self) -> Labels<'_> {
        Labels {
            text: &self.text,
            ends: &self.ends,
            start: 0,
        }
    }
}

#[derive(Debug)]
enum Stored {
    Dropped,
    Invalid,
    Unchanged,
    Relabeled(LabelSet),
}

impl Stored {
    /// Runs the rules over `input` and sorts the result into an outcome.
    fn decide(rules: &Rules, input: &[(&str, &str)]) -> Stored {
        let Some(output) = rules.process(input) else {
            return Stored::Dropped;
        };
        let named = output
            .iter()
            .find(|(name, _)| name == NAME_LABEL)
            .is_some_and(|(_, value)| is_valid_metric_name(value));
        if !named {
            return Stored::Invalid;
        }
        let same = output.len() == input.len()
            && output
                .iter()
                .zip(input)
                .all(|((n, v), (m, w))| n == m && v == w);
        if same {
            Stored::Unchanged
        } else {
            Stored::Relabeled(LabelSet::new(&output))
        }
    }

    fn view(&self) -> Outcome<'_> {
        match self {
            Stored::Dropped => Outcome::Dropped,
            Stored::Invalid => Outcome::Invalid,
            Stored::Unchanged => Outcome::Unchanged,
            Stored::Relabeled(labels) => Outcome::Relabeled(labels.iter()),
        }
    }
}

/// One cached series: its input labels (encoded) and what the rules made of them.
#[derive(Debug)]
struct Slot {
    key: Box<[u8]>,
    last_seen: u32,
    outcome: Stored,
}

impl Slot {
    fn vacant() -> Self {
        Slot {
            key: Box::default(),
            last_seen: 0,
            outcome: Stored::Dropped,
        }
    }
}

/// The slot index map is keyed by SipHash values already: hashing them again would
/// only cost time.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Applies [`Rules`] to series, remembering each series' outcome.
pub struct Relabeler {
    rules: Rules,
    limits: Limits,
    key: RandomState,
    /// Hash of the input labels → index in `slots`.
    index: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The outcome of the last series that was relabeled without being cached.
    spare: Stored,
    /// The encoded labels of the series being looked up, kept across calls.
    scratch: Vec<u8>,
    cycle: u32,
    runs: u64,
}

impl Relabeler {
    pub fn new(rules: Rules) -> Self {
        Relabeler::with_limits(rules, Limits::default())
    }

    pub fn with_limits(rules: Rules, limits: Limits) -> Self {
        Relabeler {
            rules,
            limits,
            key: RandomState::new(),
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            spare: Stored::Dropped,
            scratch: Vec::new(),
            cycle: 0,
            runs: 0,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Takes new rules (at a reload). Different rules forget every cached outcome;
    /// the same rules keep them.
    pub fn set_rules(&mut self, rules: Rules) {
        if rules != self.rules {
            self.rules = rules;
            self.index.clear();
            self.slots.clear();
            self.free.clear();
        }
    }

    /// The number of series whose outcome is cached.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// How many times the rules ran: once per series that was not cached.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// What the rules make of the series with `labels` (sorted by name, unique,
    /// `__name__` included, as [`crate::batch::SeriesRef::labels_with_name`] gives
    /// them). Labels with an empty value are left out first.
    pub fn apply<'l, I>(&mut self, labels: I) -> Outcome<'_>
    where
        I: IntoIterator<Item = (&'l str, &'l str)>,
        I::IntoIter: Clone,
    {
        if self.rules.is_empty() {
            return Outcome::Unchanged;
        }
        let labels = labels.into_iter().filter(|(_, value)| !value.is_empty());
        self.scratch.clear();
        for (name, value) in labels.clone() {
            for part in [name, value] {
                self.scratch.extend_from_slice(part.as_bytes());
                self.scratch.push(SEPARATOR);
            }
        }
        let hash = self.key.hash_one(self.scratch.as_slice());
        let cached = self.index.get(&hash).map(|&slot| slot as usize);
        match cached {
            Some(at) => {
                let cycle = self.cycle;
                let key = self.scratch.as_slice();
                let hit = self.slots.get_mut(at).filter(|slot| *slot.key == *key);
                if let Some(slot) = hit {
                    slot.last_seen = cycle;
                    return slot.outcome.view();
                }
                // Another label set has this hash: relabel, but do not cache.
                let input: Vec<_> = labels.collect();
                self.runs += 1;
                self.spare = Stored::decide(&self.rules, &input);
                self.spare.view()
            }
            None => {
                let input: Vec<_> = labels.collect();
                self.runs += 1;
                let outcome = Stored::decide(&self.rules, &input);
                let room = self.index.len() < self.limits.max_series;
                let slot = room.then(|| vacant(&mut self.slots, &mut self.free));
                match slot.flatten() {
                    Some((at, slot)) => {
                        *slot = Slot {
                            key: self.scratch.as_slice().into(),
                            last_seen: self.cycle,
                            outcome,
                        };
                        self.index.insert(hash, at);
                        slot.outcome.view()
                    }
                    None => {
                        self.spare = outcome;
                        self.spare.view()
                    }
                }
            }
        }
    }

    /// Ends a cycle: forgets the series that have now been missing for
    /// [`Limits::max_idle_cycles`] cycles.
    pub fn end_cycle(&mut self) {
        self.cycle = self.cycle.wrapping_add(1);
        let (cycle, max_idle) = (self.cycle, self.limits.max_idle_cycles);
        let (slots, free) = (&mut self.slots, &mut self.free);
        self.index.retain(|_, &mut at| {
            let Some(slot) = slots.get_mut(at as usize) else {
                return false;
            };
            let keep = cycle.wrapping_sub(slot.last_seen) <= max_idle;
            if !keep {
                *slot = Slot::vacant();
                free.push(at);
            }
            keep
        });
    }
}

/// A slot to fill: a freed one, or a new one at the end.
fn vacant<'s>(slots: &'s mut Vec<Slot>, free: &mut Vec<u32>) -> Option<(u32, &'s mut Slot)> {
    if let Some(at) = free.pop() {
        return slots.get_mut(at as usize).map(|slot| (at, slot));
    }
    let at = u32::try_from(slots.len()).ok()?;
    slots.push(Slot::vacant());
    slots.last_mut().map(|slot| (at, slot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Batch, Kind};

    fn rules(yaml: &str) -> Rules {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// The outcome as owned data, to compare.
    #[derive(Debug, PartialEq)]
    enum Owned {
        Dropped,
        Invalid,
        Unchanged,
        Relabeled(Vec<(String, String)>),
    }

    fn owned(outcome: Outcome<'_>) -> Owned {
        match outcome {
            Outcome::Dropped => Owned::Dropped,
            Outcome::Invalid => Owned::Invalid,
            Outcome::Unchanged => Owned::Unchanged,
            Outcome::Relabeled(labels) => {
                Owned::Relabeled(labels.map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
            }
        }
    }

    fn apply(relabeler: &mut Relabeler, labels: &[(&str, &str)]) -> Owned {
        owned(relabeler.apply(labels.iter().copied()))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    const RULES: &str = "
- {source_labels: [__name__], regex: 'node_scrape_.*', action: drop}
- {source_labels: [device], regex: 'lo', action: drop}
- {source_labels: [device], target_label: nic, regex: '(eth.*)'}
- {source_labels: [mode], regex: 'steal', target_label: __name__, replacement: ''}
- {regex: device, action: labeldrop}";

    #[test]
    fn each_kind_of_outcome() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let eth = [("__name__", "node_network_up"), ("device", "eth0")];
        assert_eq!(
            apply(&mut relabeler, &eth),
            Owned::Relabeled(pairs(&[("__name__", "node_network_up"), ("nic", "eth0")]))
        );
        let lo = [("__name__", "node_network_up"), ("device", "lo")];
        assert_eq!(apply(&mut relabeler, &lo), Owned::Dropped);
        let scrape = [("__name__", "node_scrape_collector_success")];
        assert_eq!(apply(&mut relabeler, &scrape), Owned::Dropped);
        let load = [("__name__", "node_load1")];
        assert_eq!(apply(&mut relabeler, &load), Owned::Unchanged);
        // A rule deleted __name__: Prometheus would send a series the receiver refuses.
        let steal = [("__name__", "node_cpu_seconds_total"), ("mode", "steal")];
        assert_eq!(apply(&mut relabeler, &steal), Owned::Invalid);
        assert_eq!(relabeler.len(), 5);
    }

    #[test]
    fn outcomes_agree_with_process_and_are_reused() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let series: Vec<Vec<(&str, &str)>> = vec![
            vec![("__name__", "node_network_up"), ("device", "eth0")],
            vec![("__name__", "node_network_up"), ("device", "eth1")],
            vec![("__name__", "node_network_up"), ("device", "lo")],
            vec![("__name__", "node_load1")],
        ];
        let first: Vec<Owned> = series.iter().map(|s| apply(&mut relabeler, s)).collect();
        assert_eq!(relabeler.runs(), 4);
        for (labels, outcome) in series.iter().zip(&first) {
            let direct = relabeler.rules().process(labels);
            let expected = match direct {
                None => Owned::Dropped,
                Some(out) if out == pairs(labels) => Owned::Unchanged,
                Some(out) => Owned::Relabeled(out),
            };
            assert_eq!(*outcome, expected, "{labels:?}");
        }
        for _ in 0..3 {
            relabeler.end_cycle();
            let again: Vec<Owned> = series.iter().map(|s| apply(&mut relabeler, s)).collect();
            assert_eq!(again, first);
        }
        assert_eq!(relabeler.runs(), 4, "cached outcomes are not recomputed");
    }

    #[test]
    fn empty_values_are_absent_labels() {
        let mut relabeler = Relabeler::new(rules(
            "- {regex: '(.*)', replacement: 'copy_$1', action: labelmap}",
        ));
        let with_empty = [("__name__", "m"), ("a", ""), ("b", "1")];
        let expected = Owned::Relabeled(pairs(&[
            ("__name__", "m"),
            ("b", "1"),
            ("copy___name__", "m"),
            ("copy_b", "1"),
        ]));
        assert_eq!(apply(&mut relabeler, &with_empty), expected);
        // The same series without the empty label is the same cached series.
        assert_eq!(
            apply(&mut relabeler, &[("__name__", "m"), ("b", "1")]),
            expected
        );
        assert_eq!((relabeler.len(), relabeler.runs()), (1, 1));
    }

    #[test]
    fn idle_series_are_forgotten() {
        let limits = Limits {
            max_idle_cycles: 2,
            max_series: 100,
        };
        let mut relabeler = Relabeler::with_limits(rules(RULES), limits);
        let steady = [("__name__", "node_load1")];
        let gone = [("__name__", "node_load5")];
        apply(&mut relabeler, &steady);
        apply(&mut relabeler, &gone);
        relabeler.end_cycle();
        for _ in 0..2 {
            // `gone` is missing from this cycle.
            apply(&mut relabeler, &steady);
            assert_eq!(relabeler.len(), 2);
            relabeler.end_cycle();
        }
        assert_eq!(relabeler.len(), 1, "forgotten after 2 cycles without it");
        // Its slot is reused for the next new series.
        let slots = relabeler.slots.len();
        apply(&mut relabeler, &[("__name__", "node_load15")]);
        assert_eq!((relabeler.len(), relabeler.slots.len()), (2, slots));
        // A forgotten series that comes back is relabeled again, with the same result.
        let runs = relabeler.runs();
        assert_eq!(apply(&mut relabeler, &gone), Owned::Unchanged);
        assert_eq!(relabeler.runs(), runs + 1);
    }

    #[test]
    fn past_the_limit_series_are_relabeled_uncached() {
        let limits = Limits {
            max_idle_cycles: 10,
            max_series: 2,
        };
        let mut relabeler = Relabeler::with_limits(rules(RULES), limits);
        let eth = |n: &'static str| [("__name__", "node_network_up"), ("device", n)];
        apply(&mut relabeler, &eth("eth0"));
        apply(&mut relabeler, &eth("eth1"));
        for _ in 0..3 {
            assert_eq!(
                apply(&mut relabeler, &eth("eth2")),
                Owned::Relabeled(pairs(&[("__name__", "node_network_up"), ("nic", "eth2")]))
            );
        }
        assert_eq!(relabeler.len(), 2);
        assert_eq!(relabeler.runs(), 5, "the third series runs every time");
        assert_eq!((relabeler.slots.len(), relabeler.free.len()), (2, 0));
    }

    #[test]
    fn a_hash_collision_never_returns_another_series_outcome() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let lo = [("__name__", "node_network_up"), ("device", "lo")];
        let eth = [("__name__", "node_network_up"), ("device", "eth0")];
        assert_eq!(apply(&mut relabeler, &lo), Owned::Dropped);
        // Forge a collision: file eth0's hash under lo's slot.
        let key = b"__name__\xffnode_network_up\xffdevice\xffeth0\xff";
        let lo_slot = *relabeler.index.values().next().unwrap();
        relabeler
            .index
            .insert(relabeler.key.hash_one(key.as_slice()), lo_slot);
        let expected = Owned::Relabeled(pairs(&[("__name__", "node_network_up"), ("nic", "eth0")]));
        assert_eq!(apply(&mut relabeler, &eth), expected);
        assert_eq!(apply(&mut relabeler, &eth), expected);
        assert_eq!(
            relabeler.runs(),
            3,
            "eth0 found lo's slot and was relabeled each time"
        );
        assert_eq!(apply(&mut relabeler, &lo), Owned::Dropped);
        assert_eq!(relabeler.runs(), 3, "lo is still cached");
    }

    #[test]
    fn new_rules_forget_everything_the_same_rules_keep_it() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let eth = [("__name__", "node_network_up"), ("device", "eth0")];
        apply(&mut relabeler, &eth);
        relabeler.set_rules(rules(RULES));
        assert_eq!(relabeler.len(), 1);
        relabeler.set_rules(rules(
            "- {source_labels: [device], regex: 'eth.*', action: drop}",
        ));
        assert_eq!(relabeler.len(), 0);
        assert_eq!(apply(&mut relabeler, &eth), Owned::Dropped);
    }

    #[test]
    fn no_rules_leave_everything_unchanged_and_cache_nothing() {
        let mut relabeler = Relabeler::new(Rules::default());
        assert_eq!(
            apply(&mut relabeler, &[("__name__", "m")]),
            Owned::Unchanged
        );
        assert!(relabeler.is_empty());
    }

    #[test]
    fn relabels_the_series_of_a_batch() {
        let mut batch = Batch::new();
        batch.set_common_labels(pairs(&[("instance", "vm1"), ("job", "node")]));
        batch.begin(0);
        let mut family = batch.family("node_network_up", "h", Kind::Gauge);
        family.sample(&[("device", "eth0")], 1.0);
        family.sample(&[("device", "lo")], 1.0);
        let mut relabeler = Relabeler::new(rules(RULES));
        let mut sent = Vec::new();
        for _ in 0..2 {
            sent.clear();
            for family in batch.families() {
                for series in family.series() {
                    match relabeler.apply(series.labels_with_name()) {
                        Outcome::Relabeled(labels) => {
                            sent.push(labels.map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>())
                        }
                        Outcome::Unchanged => sent.push(
                            series
                                .labels_with_name()
                                .map(|(n, v)| format!("{n}={v}"))
                                .collect(),
                        ),
                        Outcome::Dropped | Outcome::Invalid => {}
                    }
                }
            }
            relabeler.end_cycle();
        }
        assert_eq!(
            sent,
            [[
                "__name__=node_network_up",
                "instance=vm1",
                "job=node",
                "nic=eth0"
            ]]
        );
        assert_eq!(relabeler.runs(), 2);
    }
}
