//! Relabeling once per series instead of once per series per cycle.
//!
//! An agent sends the same series every cycle (only their values change), and in
//! the same order: so the outcome of the rules for a series is kept, and found again
//! first by the series' position in the batch. A series is identified by what the
//! batch holds for it, its name and own labels (the common labels are the same for
//! every series of a [`Batch::common_generation`], and a new generation forgets
//! everything). The entry at a position is used when its stored name and labels
//! equal the series' byte for byte: a comparison of a few short strings, no hash,
//! no allocation, no merge with the common labels.
//!
//! A series at a position that holds another (the series set changed: an interface
//! came or went and the series behind it moved) is looked up by a SipHash of its
//! name and labels under a per-process random key, and again compared byte for byte
//! before its outcome is used, so a collision never hands one series another's
//! labels. Only a series found nowhere runs the rules.
//!
//! Each outcome also carries the [`Applied::fingerprint`] of the labels that are sent,
//! computed once, for the duplicate check and the series limit downstream.
//!
//! Memory stays bounded: an entry not used for [`Limits::max_idle_cycles`] cycles is
//! forgotten, and past [`Limits::max_series`] entries a new series is relabeled each
//! time it comes, without being kept. New rules empty the cache.

use super::Rules;
use crate::batch::{Batch, SeriesRef, NAME_LABEL};
use crate::labels::is_valid_metric_name;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Between the parts of a stored key: 0xFF never occurs in UTF-8, so the encoding of
/// a name and labels is unambiguous.
const SEPARATOR: u8 = 0xFF;

/// No entry at this position.
const NONE: u32 = u32::MAX;

/// How much the cache keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// An entry is forgotten at the end of the `max_idle_cycles`-th cycle in a row
    /// that did not use it.
    pub max_idle_cycles: u32,
    /// The most entries kept; more series are relabeled each time they come. An
    /// entry takes about 400 bytes (5,000 node_exporter-like series, 20 rules), so
    /// the default bounds the cache near 20 MB, for 50,000 series.
    pub max_series: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_idle_cycles: 10,
            max_series: 50_000,
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

/// An outcome and the fingerprint of what is sent.
#[derive(Clone, Debug)]
pub struct Applied<'a> {
    pub outcome: Outcome<'a>,
    /// A SipHash (under the relabeler's key) of the labels sent, `__name__` included
    /// and empty values left out: equal label sets have equal fingerprints, whether
    /// they were relabeled or not. 0 for a series not sent.
    pub fingerprint: u64,
    /// The entry that keeps the outcome until the series' next cycle
    /// ([`Relabeler::relabeled`]); `None` when it was not kept.
    pub entry: Option<u32>,
}

/// A relabeled label set as `(name, value)` pairs, sorted by name.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    text: &'a str,
    /// The end of each name and of each value in `text`, alternately.
    ends: &'a [usize],
    start: usize,
}

impl<'a> Labels<'a> {
    /// The labels stored in `text` from `start`, ending at `ends`.
    pub(super) fn new(text: &'a str, ends: &'a [usize], start: usize) -> Self {
        Labels { text, ends, start }
    }
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
        Labels::new(&self.text, &self.ends, 0)
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
    /// Runs the rules over `input` and sorts the result into an outcome, with the
    /// fingerprint of what is sent.
    fn decide(rules: &Rules, input: &[(&str, &str)], key: &RandomState) -> (Stored, u64) {
        let Some(output) = rules.process(input) else {
            return (Stored::Dropped, 0);
        };
        let named = output
            .iter()
            .find(|(name, _)| name == NAME_LABEL)
            .is_some_and(|(_, value)| is_valid_metric_name(value));
        if !named {
            return (Stored::Invalid, 0);
        }
        let same = output.len() == input.len()
            && output
                .iter()
                .zip(input)
                .all(|((n, v), (m, w))| n == m && v == w);
        if same {
            (Stored::Unchanged, fingerprint(key, input.iter().copied()))
        } else {
            let print = fingerprint(key, output.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            (Stored::Relabeled(LabelSet::new(&output)), print)
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

/// The fingerprint of a label set sent, as [`Applied::fingerprint`] defines it.
fn fingerprint<'l>(key: &RandomState, labels: impl Iterator<Item = (&'l str, &'l str)>) -> u64 {
    let mut hasher = key.build_hasher();
    for (name, value) in labels.filter(|(_, value)| !value.is_empty()) {
        hasher.write(name.as_bytes());
        hasher.write_u8(SEPARATOR);
        hasher.write(value.as_bytes());
        hasher.write_u8(SEPARATOR);
    }
    hasher.finish()
}

/// Whether `stored` is the key [`encode_key`] writes for `series`, compared piece by
/// piece without writing it.
fn key_matches(stored: &[u8], series: &SeriesRef<'_>) -> bool {
    let mut rest = stored;
    let mut take = |part: &str| match rest.strip_prefix(part.as_bytes()) {
        Some([SEPARATOR, tail @ ..]) => {
            rest = tail;
            true
        }
        _ => false,
    };
    take(series.name()) && series.own_labels().all(|(n, v)| take(n) && take(v)) && rest.is_empty()
}

/// Writes a series' key: its name and own labels, each followed by [`SEPARATOR`].
fn encode_key(series: &SeriesRef<'_>, out: &mut Vec<u8>) {
    out.clear();
    let own = series.own_labels().flat_map(|(n, v)| [n, v]);
    for part in std::iter::once(series.name()).chain(own) {
        out.extend_from_slice(part.as_bytes());
        out.push(SEPARATOR);
    }
}

/// One cached series: its key and what the rules made of it.
#[derive(Debug)]
struct Entry {
    key: Box<[u8]>,
    /// The hash of `key`, its place in the index.
    hash: u64,
    last_seen: u32,
    outcome: Stored,
    fingerprint: u64,
}

impl Entry {
    /// An empty key matches no series (every key holds at least the separator after
    /// the name), so a position still pointing here finds nothing.
    fn vacant() -> Self {
        Entry {
            key: Box::default(),
            hash: 0,
            last_seen: 0,
            outcome: Stored::Dropped,
            fingerprint: 0,
        }
    }
}

/// The entry index map is keyed by SipHash values already: hashing them again would
/// only cost time.
#[derive(Default)]
pub(super) struct Prehashed(u64);

impl Hasher for Prehashed {
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

/// A map whose keys are already hashes.
pub(super) type HashedMap<V> = HashMap<u64, V, BuildHasherDefault<Prehashed>>;

/// Applies [`Rules`] to the series of batches, remembering each series' outcome.
pub struct Relabeler {
    rules: Rules,
    limits: Limits,
    key: RandomState,
    /// The common labels the entries were made with.
    generation: Option<u64>,
    /// Hash of an entry's key → its index in `entries`.
    index: HashedMap<u32>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// The entry of the series at each position of the last batches, or [`NONE`].
    positions: Vec<u32>,
    /// The outcome of the last series that was relabeled without being cached.
    spare: Stored,
    /// The key of the series being looked up, kept across calls.
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
            generation: None,
            index: HashedMap::default(),
            entries: Vec::new(),
            free: Vec::new(),
            positions: Vec::new(),
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
            self.forget();
        }
    }

    fn forget(&mut self) {
        self.index.clear();
        self.entries.clear();
        self.free.clear();
        self.positions.clear();
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

    /// Starts a cycle over `batch`: a batch with other common labels forgets every
    /// outcome, as its series' own labels no longer say what is relabeled.
    pub fn begin(&mut self, batch: &Batch) {
        let generation = Some(batch.common_generation());
        if self.generation != generation {
            self.generation = generation;
            self.forget();
        }
        self.positions.resize(batch.len(), NONE);
    }

    /// What the rules make of `series`, the `position`-th of the batch given to
    /// [`Relabeler::begin`] (any position works, a wrong one only costs a lookup).
    /// The rules see its labels with `__name__`, common labels merged, empty values
    /// left out.
    pub fn apply(&mut self, position: usize, series: &SeriesRef<'_>) -> Applied<'_> {
        let cycle = self.cycle;
        let at_position = self.positions.get(position).copied().unwrap_or(NONE);
        let hit = self
            .entries
            .get(at_position as usize)
            .is_some_and(|entry| key_matches(&entry.key, series));
        let found = if hit {
            Some(at_position)
        } else {
            encode_key(series, &mut self.scratch);
            let hash = self.key.hash_one(self.scratch.as_slice());
            let scratch = self.scratch.as_slice();
            let found = self.index.get(&hash).copied().filter(|&at| {
                self.entries
                    .get(at as usize)
                    .is_some_and(|entry| *entry.key == *scratch)
            });
            match found {
                Some(at) => Some(at),
                None => self.insert(hash, series),
            }
        };
        let entry = found.and_then(|at| {
            if let Some(slot) = self.positions.get_mut(position) {
                *slot = at;
            }
            self.entries.get_mut(at as usize)
        });
        match entry {
            Some(entry) => {
                entry.last_seen = cycle;
                Applied {
                    outcome: entry.outcome.view(),
                    fingerprint: entry.fingerprint,
                    entry: found,
                }
            }
            None => {
                // Not kept: relabeled this time only.
                if let Some(slot) = self.positions.get_mut(position) {
                    *slot = NONE;
                }
                let input: Vec<_> = series
                    .labels_with_name()
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                self.runs += 1;
                let (outcome, fingerprint) = Stored::decide(&self.rules, &input, &self.key);
                self.spare = outcome;
                Applied {
                    outcome: self.spare.view(),
                    fingerprint,
                    entry: None,
                }
            }
        }
    }

    /// Runs the rules for a series found nowhere and keeps the outcome under `hash`
    /// (the hash of `self.scratch`, its key), if there is room and the hash is free.
    fn insert(&mut self, hash: u64, series: &SeriesRef<'_>) -> Option<u32> {
        // A hash taken by another key (one pair in 2^64): relabel, do not cache.
        let room = self.index.len() < self.limits.max_series && !self.index.contains_key(&hash);
        if !room {
            return None;
        }
        let input: Vec<_> = series
            .labels_with_name()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        self.runs += 1;
        let (outcome, fingerprint) = Stored::decide(&self.rules, &input, &self.key);
        let (at, entry) = vacant(&mut self.entries, &mut self.free)?;
        *entry = Entry {
            key: self.scratch.as_slice().into(),
            hash,
            last_seen: self.cycle,
            outcome,
            fingerprint,
        };
        self.index.insert(hash, at);
        Some(at)
    }

    /// The relabeled labels kept in entry `at` (see [`Applied::entry`]), until the
    /// next [`Relabeler::end_cycle`] may forget them.
    pub fn relabeled(&self, at: u32) -> Option<Labels<'_>> {
        match &self.entries.get(at as usize)?.outcome {
            Stored::Relabeled(labels) => Some(labels.iter()),
            _ => None,
        }
    }

    /// Ends a cycle: forgets the series that have now been missing for
    /// [`Limits::max_idle_cycles`] cycles.
    pub fn end_cycle(&mut self) {
        self.cycle = self.cycle.wrapping_add(1);
        let (cycle, max_idle) = (self.cycle, self.limits.max_idle_cycles);
        // In entry order, which is mostly batch order: memory is read front to back.
        for (at, entry) in (0u32..).zip(self.entries.iter_mut()) {
            let idle = cycle.wrapping_sub(entry.last_seen) > max_idle;
            if idle && !entry.key.is_empty() {
                self.index.remove(&entry.hash);
                *entry = Entry::vacant();
                self.free.push(at);
            }
        }
    }
}

/// An entry to fill: a freed one, or a new one at the end.
fn vacant<'s>(entries: &'s mut Vec<Entry>, free: &mut Vec<u32>) -> Option<(u32, &'s mut Entry)> {
    if let Some(at) = free.pop() {
        return entries.get_mut(at as usize).map(|entry| (at, entry));
    }
    let at = u32::try_from(entries.len()).ok().filter(|&at| at != NONE)?;
    entries.push(Entry::vacant());
    entries.last_mut().map(|entry| (at, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Kind;

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

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// A batch of one family per name, each series given as (name, own labels).
    fn batch_of(common: &[(&str, &str)], series: &[(&str, &[(&str, &str)])]) -> Batch {
        let mut batch = Batch::new();
        batch.set_common_labels(pairs(common));
        batch.begin(0);
        for (name, labels) in series {
            batch.family(name, "h", Kind::Gauge).sample(labels, 1.0);
        }
        batch
    }

    /// One cycle over `batch`: each series' outcome and fingerprint.
    fn cycle(relabeler: &mut Relabeler, batch: &Batch) -> Vec<(Owned, u64)> {
        relabeler.begin(batch);
        let all: Vec<_> = batch.families().flat_map(|f| f.series()).collect();
        let out = all
            .iter()
            .enumerate()
            .map(|(at, series)| {
                let applied = relabeler.apply(at, series);
                (owned(applied.outcome), applied.fingerprint)
            })
            .collect();
        relabeler.end_cycle();
        out
    }

    fn outcomes(relabeler: &mut Relabeler, batch: &Batch) -> Vec<Owned> {
        cycle(relabeler, batch)
            .into_iter()
            .map(|(o, _)| o)
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
        let batch = batch_of(
            &[],
            &[
                ("node_network_up", &[("device", "eth0")]),
                ("node_network_up", &[("device", "lo")]),
                ("node_scrape_collector_success", &[]),
                ("node_load1", &[]),
                // A rule deleted __name__: Prometheus would send a series the
                // receiver refuses.
                ("node_cpu_seconds_total", &[("mode", "steal")]),
            ],
        );
        assert_eq!(
            outcomes(&mut relabeler, &batch),
            [
                Owned::Relabeled(pairs(&[("__name__", "node_network_up"), ("nic", "eth0")])),
                Owned::Dropped,
                Owned::Dropped,
                Owned::Unchanged,
                Owned::Invalid,
            ]
        );
        assert_eq!(relabeler.len(), 5);
    }

    #[test]
    fn outcomes_agree_with_process_and_are_reused() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let batch = batch_of(
            &[("job", "node")],
            &[
                ("node_network_up", &[("device", "eth0")]),
                ("node_network_up", &[("device", "eth1")]),
                ("node_network_up", &[("device", "lo")]),
                ("node_load1", &[]),
            ],
        );
        let first = outcomes(&mut relabeler, &batch);
        assert_eq!(relabeler.runs(), 4);
        let all: Vec<_> = batch.families().flat_map(|f| f.series()).collect();
        for (series, outcome) in all.iter().zip(&first) {
            let labels: Vec<_> = series.labels_with_name().collect();
            let expected = match relabeler.rules().process(&labels) {
                None => Owned::Dropped,
                Some(out) if out == pairs(&labels) => Owned::Unchanged,
                Some(out) => Owned::Relabeled(out),
            };
            assert_eq!(*outcome, expected, "{labels:?}");
        }
        for _ in 0..3 {
            assert_eq!(outcomes(&mut relabeler, &batch), first);
        }
        assert_eq!(relabeler.runs(), 4, "cached outcomes are not recomputed");
    }

    #[test]
    fn moved_series_are_found_by_their_labels() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let before = batch_of(
            &[],
            &[
                ("node_network_up", &[("device", "eth0")]),
                ("node_network_up", &[("device", "eth1")]),
            ],
        );
        let first = cycle(&mut relabeler, &before);
        // eth9 arrives in front: every series moves one position on.
        let after = batch_of(
            &[],
            &[
                ("node_network_up", &[("device", "eth9")]),
                ("node_network_up", &[("device", "eth0")]),
                ("node_network_up", &[("device", "eth1")]),
            ],
        );
        let second = cycle(&mut relabeler, &after);
        assert_eq!(relabeler.runs(), 3, "only eth9 ran the rules");
        assert_eq!(second[1..], first[..]);
        assert_eq!(
            second[0].0,
            Owned::Relabeled(pairs(&[("__name__", "node_network_up"), ("nic", "eth9")]))
        );
    }

    #[test]
    fn fingerprints_are_of_what_is_sent() {
        // Two series that relabel to one label set, and one that is that set already.
        let mut relabeler = Relabeler::new(rules("- {regex: device, action: labeldrop}"));
        let batch = batch_of(
            &[("job", "node")],
            &[
                ("m", &[("device", "a")]),
                ("m", &[("device", "b")]),
                ("m", &[]),
                ("m", &[("other", "")]),
                ("n", &[]),
            ],
        );
        let out = cycle(&mut relabeler, &batch);
        let prints: Vec<u64> = out.iter().map(|(_, f)| *f).collect();
        assert_eq!(out[2].0, Owned::Unchanged);
        assert!(prints[..4].iter().all(|&p| p == prints[0]), "{out:?}");
        assert_ne!(prints[4], prints[0]);
    }

    #[test]
    fn empty_values_are_absent_labels() {
        let mut relabeler = Relabeler::new(rules(
            "- {regex: '(.*)', replacement: 'copy_$1', action: labelmap}",
        ));
        let batch = batch_of(&[], &[("m", &[("a", ""), ("b", "1")])]);
        let expected = Owned::Relabeled(pairs(&[
            ("__name__", "m"),
            ("b", "1"),
            ("copy___name__", "m"),
            ("copy_b", "1"),
        ]));
        assert_eq!(outcomes(&mut relabeler, &batch), [expected]);
    }

    #[test]
    fn other_common_labels_forget_every_outcome() {
        let mut relabeler =
            Relabeler::new(rules("- {source_labels: [job], regex: drop, action: drop}"));
        let mut batch = batch_of(&[("job", "node")], &[("m", &[])]);
        assert_eq!(outcomes(&mut relabeler, &batch), [Owned::Unchanged]);
        batch.set_common_labels(pairs(&[("job", "drop")]));
        batch.begin(0);
        batch.family("m", "h", Kind::Gauge).sample(&[], 1.0);
        assert_eq!(outcomes(&mut relabeler, &batch), [Owned::Dropped]);
        assert_eq!(relabeler.runs(), 2);
    }

    #[test]
    fn idle_series_are_forgotten() {
        let limits = Limits {
            max_idle_cycles: 2,
            max_series: 100,
        };
        let mut relabeler = Relabeler::with_limits(rules(RULES), limits);
        let both = batch_of(&[], &[("node_load1", &[]), ("node_load5", &[])]);
        let steady = batch_of(&[], &[("node_load1", &[])]);
        cycle(&mut relabeler, &both);
        // node_load5 is missing from the next cycles.
        cycle(&mut relabeler, &steady);
        assert_eq!(relabeler.len(), 2);
        cycle(&mut relabeler, &steady);
        assert_eq!(relabeler.len(), 1, "forgotten after 2 cycles without it");
        // Its entry is reused for the next new series.
        let entries = relabeler.entries.len();
        cycle(&mut relabeler, &batch_of(&[], &[("node_load15", &[])]));
        assert_eq!((relabeler.len(), relabeler.entries.len()), (2, entries));
        // A forgotten series that comes back runs the rules again, same result.
        let runs = relabeler.runs();
        assert_eq!(outcomes(&mut relabeler, &both)[1], Owned::Unchanged);
        assert_eq!(relabeler.runs(), runs + 1);
    }

    #[test]
    fn past_the_limit_series_are_relabeled_uncached() {
        let limits = Limits {
            max_idle_cycles: 10,
            max_series: 2,
        };
        let mut relabeler = Relabeler::with_limits(rules(RULES), limits);
        let batch = batch_of(
            &[],
            &[
                ("node_network_up", &[("device", "eth0")]),
                ("node_network_up", &[("device", "eth1")]),
                ("node_network_up", &[("device", "eth2")]),
            ],
        );
        for _ in 0..3 {
            let out = outcomes(&mut relabeler, &batch);
            assert_eq!(
                out[2],
                Owned::Relabeled(pairs(&[("__name__", "node_network_up"), ("nic", "eth2")]))
            );
        }
        assert_eq!(relabeler.len(), 2);
        assert_eq!(relabeler.runs(), 5, "the third series runs every time");
        assert_eq!((relabeler.entries.len(), relabeler.free.len()), (2, 0));
    }

    #[test]
    fn a_hash_collision_never_returns_another_series_outcome() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let lo = batch_of(&[], &[("node_network_up", &[("device", "lo")])]);
        let eth = batch_of(&[], &[("node_network_up", &[("device", "eth0")])]);
        assert_eq!(outcomes(&mut relabeler, &lo), [Owned::Dropped]);
        // Forge a collision: file eth0's hash under lo's entry.
        let key = b"node_network_up\xffdevice\xffeth0\xff";
        let lo_entry = *relabeler.index.values().next().unwrap();
        relabeler
            .index
            .insert(relabeler.key.hash_one(key.as_slice()), lo_entry);
        let expected = Owned::Relabeled(pairs(&[("__name__", "node_network_up"), ("nic", "eth0")]));
        assert_eq!(outcomes(&mut relabeler, &eth), [expected]);
        assert_eq!(
            relabeler.runs(),
            2,
            "eth0 found lo's entry and ran the rules"
        );
        assert_eq!(outcomes(&mut relabeler, &lo), [Owned::Dropped]);
        assert_eq!(relabeler.runs(), 2, "lo is still cached");
    }

    #[test]
    fn keys_compare_names_and_values_apart() {
        let batch = batch_of(&[], &[("m", &[("ab", "c")]), ("m", &[("a", "bc")])]);
        let all: Vec<_> = batch.families().flat_map(|f| f.series()).collect();
        let mut key = Vec::new();
        encode_key(&all[0], &mut key);
        assert!(key_matches(&key, &all[0]));
        assert!(!key_matches(&key, &all[1]));
        assert!(!key_matches(&key[..key.len() - 1], &all[0]));
        assert!(!key_matches(&[], &all[0]));
    }

    #[test]
    fn new_rules_forget_everything_the_same_rules_keep_it() {
        let mut relabeler = Relabeler::new(rules(RULES));
        let eth = batch_of(&[], &[("node_network_up", &[("device", "eth0")])]);
        cycle(&mut relabeler, &eth);
        relabeler.set_rules(rules(RULES));
        assert_eq!(relabeler.len(), 1);
        relabeler.set_rules(rules(
            "- {source_labels: [device], regex: 'eth.*', action: drop}",
        ));
        assert_eq!(relabeler.len(), 0);
        assert_eq!(outcomes(&mut relabeler, &eth), [Owned::Dropped]);
    }

    #[test]
    fn no_rules_leave_everything_unchanged() {
        let mut relabeler = Relabeler::new(Rules::default());
        let batch = batch_of(&[], &[("m", &[])]);
        assert_eq!(outcomes(&mut relabeler, &batch), [Owned::Unchanged]);
    }
}
