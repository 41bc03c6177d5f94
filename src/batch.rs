//! One cycle's metric families and series, in storage that is cleared and reused.
//!
//! All names, help texts and label strings of a cycle live in one text arena; the
//! families, series and labels refer to it by offsets. Clearing the batch keeps the
//! capacity of every buffer, so a steady-state cycle does not allocate.
//!
//! Collectors write one family at a time ([`Batch::family`]), so the series of a
//! family are contiguous and the writers never sort or group. The labels every
//! series carries (`vm_id`, `job`, `instance`, custom labels) are held once, as
//! common labels, and merged in sorted order when a writer reads a series.
//!
//! A histogram or summary family holds series of several names: its buckets
//! (`<name>_bucket`) or quantiles (`<name>`), `<name>_sum` and `<name>_count`, each
//! written with its [`Suffix`]. [`SeriesSet`] remembers what a batch already holds,
//! for a collector whose series come from outside (the textfile collector) and must
//! not repeat one: a remote-write receiver rejects a whole request that repeats a
//! series.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;

/// The Prometheus metric type of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// node_exporter leaves some families untyped (vmstat, netstat fields).
    Untyped,
    /// Cumulative `_bucket` series (label `le`), `_sum` and `_count`.
    Histogram,
    /// Series by `quantile` label under the family name, `_sum` and `_count`.
    Summary,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// What a series of a histogram or summary adds to its family's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suffix {
    Bucket,
    Sum,
    Count,
}

impl Suffix {
    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
        }
    }

    fn index(self) -> usize {
        match self {
            Suffix::Bucket => 0,
            Suffix::Sum => 1,
            Suffix::Count => 2,
        }
    }
}

/// Offsets of a string in the text arena.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug)]
struct Family {
    name: Span,
    help: Span,
    kind: Kind,
    series: Range<u32>,
}

#[derive(Debug)]
struct Series {
    /// The metric name: the family's, or the family's with a [`Suffix`].
    name: Span,
    labels: Range<u32>,
    value: f64,
}

#[derive(Debug)]
struct Label {
    name: Span,
    value: Span,
}

/// A position in the batch to return to when a collector fails half-way.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    text: usize,
    families: usize,
    series: usize,
    labels: usize,
}

/// The series of one collection cycle.
#[derive(Debug, Default)]
pub struct Batch {
    timestamp_ms: i64,
    text: String,
    families: Vec<Family>,
    series: Vec<Series>,
    labels: Vec<Label>,
    common: Vec<(String, String)>,
    /// Counts the changes of `common`, so that a cache of series outcomes can tell
    /// when the same own labels stop meaning the same series.
    common_generation: u64,
}

/// The label name Prometheus uses for the metric name.
pub const NAME_LABEL: &str = "__name__";

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }

    /// Sets the labels every series carries. A series' own label of the same name wins.
    pub fn set_common_labels(&mut self, mut labels: Vec<(String, String)>) {
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        if labels != self.common {
            self.common = labels;
            self.common_generation += 1;
        }
    }

    pub fn common_labels(&self) -> &[(String, String)] {
        &self.common
    }

    /// Changes each time [`Batch::set_common_labels`] changes the common labels: a
    /// series' name and own labels identify it within one generation.
    pub fn common_generation(&self) -> u64 {
        self.common_generation
    }

    /// Empties the batch for a new cycle stamped `timestamp_ms`, keeping its buffers.
    pub fn begin(&mut self, timestamp_ms: i64) {
        self.timestamp_ms = timestamp_ms;
        self.text.clear();
        self.families.clear();
        self.series.clear();
        self.labels.clear();
    }

    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    /// Number of series in the batch.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn mark(&self) -> Mark {
        Mark {
            text: self.text.len(),
            families: self.families.len(),
            series: self.series.len(),
            labels: self.labels.len(),
        }
    }

    /// Drops everything written since `mark`, including series added since then to
    /// a family started before it.
    pub fn rollback(&mut self, mark: Mark) {
        self.text.truncate(mark.text);
        self.families.truncate(mark.families);
        self.series.truncate(mark.series);
        self.labels.truncate(mark.labels);
        if let Some(family) = self.families.last_mut() {
            family.series.end = family.series.end.min(mark.series as u32);
        }
    }

    /// Starts a family; its series follow through the returned writer.
    pub fn family(
        &mut self,
        name: impl fmt::Display,
        help: impl fmt::Display,
        kind: Kind,
    ) -> FamilyWriter<'_> {
        let name = self.push_text(name);
        let help = self.push_text(help);
        let at = self.series.len() as u32;
        self.families.push(Family {
            name,
            help,
            kind,
            series: at..at,
        });
        FamilyWriter {
            batch: self,
            name,
            suffixed: [None; 3],
        }
    }

    fn push_text(&mut self, text: impl fmt::Display) -> Span {
        let start = self.text.len() as u32;
        // Writing into a String cannot fail.
        let _ = write!(self.text, "{text}");
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    /// [`Batch::push_text`] for text that is already a `&str`, without the
    /// formatting machinery (collectors write thousands of device labels a cycle).
    fn push_str(&mut self, text: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(text);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    fn str(&self, span: Span) -> &str {
        &self.text[span.start as usize..span.end as usize]
    }

    /// The families in the order they were written.
    pub fn families(&self) -> impl Iterator<Item = FamilyRef<'_>> {
        self.families.iter().map(move |family| FamilyRef {
            batch: self,
            family,
        })
    }
}

/// Writes the series of the family most recently started.
pub struct FamilyWriter<'a> {
    batch: &'a mut Batch,
    name: Span,
    /// The family's name with each [`Suffix`], written to the text arena the first
    /// time a series uses it.
    suffixed: [Option<Span>; 3],
}

impl FamilyWriter<'_> {
    /// Adds a series with labels given as string pairs.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let mut series = self.series();
        for (name, label_value) in labels {
            series = series.label(name, label_value);
        }
        series.value(value);
        self
    }

    /// Starts a series whose label values can be formatted in place (no allocation).
    pub fn series(&mut self) -> SeriesWriter<'_> {
        let name = self.name;
        self.named(name)
    }

    /// Starts a series named after the family with `suffix` (a histogram's or a
    /// summary's `_bucket`, `_sum`, `_count`).
    pub fn series_with_suffix(&mut self, suffix: Suffix) -> SeriesWriter<'_> {
        let name = match self.suffixed[suffix.index()] {
            Some(span) => span,
            None => {
                let start = self.batch.text.len() as u32;
                copy_within(&mut self.batch.text, self.name);
                self.batch.text.push_str(suffix.as_str());
                let span = Span {
                    start,
                    end: self.batch.text.len() as u32,
                };
                self.suffixed[suffix.index()] = Some(span);
                span
            }
        };
        self.named(name)
    }

    fn named(&mut self, name: Span) -> SeriesWriter<'_> {
        let start = self.batch.labels.len() as u32;
        SeriesWriter {
            batch: self.batch,
            name,
            start,
        }
    }

    /// A position in this family to return to with [`FamilyWriter::rollback`].
    pub fn mark(&self) -> Mark {
        self.batch.mark()
    }

    /// Drops the series written since `mark`, keeping the family and those before.
    pub fn rollback(&mut self, mark: Mark) {
        self.batch.rollback(mark);
        for span in &mut self.suffixed {
            if span.is_some_and(|s| s.start as usize >= mark.text) {
                *span = None;
            }
        }
    }

    /// The series of this family written since `mark`.
    pub fn since(&self, mark: Mark) -> impl Iterator<Item = SeriesRef<'_>> {
        let batch: &Batch = self.batch;
        batch.series[mark.series.min(batch.series.len())..]
            .iter()
            .map(move |series| SeriesRef { batch, series })
    }
}

/// Appends the text at `span` of `text` to `text` itself, without allocating
/// (`String::extend_from_within` needs a newer Rust than the crate's 1.85).
fn copy_within(text: &mut String, span: Span) {
    let mut at = span.start as usize;
    while let Some(c) = text
        .get(at..span.end as usize)
        .and_then(|s| s.chars().next())
    {
        text.push(c);
        at += c.len_utf8();
    }
}

/// Collects the labels of one series, then its value.
pub struct SeriesWriter<'a> {
    batch: &'a mut Batch,
    name: Span,
    start: u32,
}

impl SeriesWriter<'_> {
    pub fn label(self, name: &str, value: impl fmt::Display) -> Self {
        let name = self.batch.push_str(name);
        let value = self.batch.push_text(value);
        self.batch.labels.push(Label { name, value });
        self
    }

    /// [`SeriesWriter::label`] for a value that is already text: the same series,
    /// written faster.
    pub fn label_str(self, name: &str, value: &str) -> Self {
        let name = self.batch.push_str(name);
        let value = self.batch.push_str(value);
        self.batch.labels.push(Label { name, value });
        self
    }

    /// Finishes the series: sorts its labels by name and records the value.
    pub fn value(self, value: f64) {
        let Batch {
            text,
            labels,
            series,
            families,
            ..
        } = self.batch;
        let own = &mut labels[self.start as usize..];
        own.sort_by(|a, b| {
            text[a.name.start as usize..a.name.end as usize]
                .cmp(&text[b.name.start as usize..b.name.end as usize])
        });
        series.push(Series {
            name: self.name,
            labels: self.start..labels.len() as u32,
            value,
        });
        if let Some(family) = families.last_mut() {
            family.series.end = series.len() as u32;
        }
    }
}

/// A family as the writers read it.
#[derive(Clone, Copy)]
pub struct FamilyRef<'a> {
    batch: &'a Batch,
    family: &'a Family,
}

impl<'a> FamilyRef<'a> {
    pub fn name(&self) -> &'a str {
        self.batch.str(self.family.name)
    }

    pub fn help(&self) -> &'a str {
        self.batch.str(self.family.help)
    }

    pub fn kind(&self) -> Kind {
        self.family.kind
    }

    pub fn len(&self) -> usize {
        self.family.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.family.series.is_empty()
    }

    /// The positions of its series among all series of the batch, in order.
    pub fn positions(&self) -> Range<usize> {
        self.family.series.start as usize..self.family.series.end as usize
    }

    pub fn series(&self) -> impl Iterator<Item = SeriesRef<'a>> + 'a {
        let batch = self.batch;
        let range = self.family.series.start as usize..self.family.series.end as usize;
        batch.series[range]
            .iter()
            .map(move |series| SeriesRef { batch, series })
    }
}

/// A series as the writers read it.
#[derive(Clone, Copy)]
pub struct SeriesRef<'a> {
    batch: &'a Batch,
    series: &'a Series,
}

impl<'a> SeriesRef<'a> {
    /// The metric name: the family's, with a histogram's or summary's suffix.
    pub fn name(&self) -> &'a str {
        self.batch.str(self.series.name)
    }

    pub fn value(&self) -> f64 {
        self.series.value
    }

    /// The series' own and common labels, sorted by name, without `__name__`.
    pub fn labels(&self) -> Labels<'a> {
        self.merged(None)
    }

    /// All labels sorted by name, `__name__` included, as remote write wants them.
    pub fn labels_with_name(&self) -> Labels<'a> {
        self.merged(Some(self.name()))
    }

    /// The series' own labels only, sorted by name: with [`SeriesRef::name`] and the
    /// batch's [`Batch::common_generation`], what identifies it, read without the
    /// merge.
    pub fn own_labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a {
        let batch = self.batch;
        let range = self.series.labels.start as usize..self.series.labels.end as usize;
        batch.labels[range]
            .iter()
            .map(move |l| (batch.str(l.name), batch.str(l.value)))
    }

    fn merged(&self, name: Option<&'a str>) -> Labels<'a> {
        let range = self.series.labels.start as usize..self.series.labels.end as usize;
        Labels {
            batch: self.batch,
            name,
            own: &self.batch.labels[range],
            common: &self.batch.common,
        }
    }
}

/// Merges the name label, the series' own labels and the common labels in name order.
#[derive(Clone)]
pub struct Labels<'a> {
    batch: &'a Batch,
    name: Option<&'a str>,
    own: &'a [Label],
    common: &'a [(String, String)],
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.batch;
        loop {
            let own = self
                .own
                .first()
                .map(|l| (batch.str(l.name), batch.str(l.value)));
            let common = self.common.first().map(|(n, v)| (n.as_str(), v.as_str()));
            // A common label shadowed by the series' own label of the same name is
            // skipped (both lists are sorted by name, so they meet at their heads).
            if let (Some(o), Some(c)) = (own, common) {
                if o.0 == c.0 {
                    self.common = &self.common[1..];
                    continue;
                }
            }
            // Names are distinct among the three heads: compare names only, and
            // remember which head won instead of comparing again.
            let mut smallest = self.name.map(|v| (NAME_LABEL, v));
            let mut from = Head::Name;
            for (head, candidate) in [(Head::Own, own), (Head::Common, common)] {
                if let Some(candidate) = candidate {
                    if smallest.is_none_or(|s| candidate.0 < s.0) {
                        smallest = Some(candidate);
                        from = head;
                    }
                }
            }
            let smallest = smallest?;
            match from {
                Head::Name => self.name = None,
                Head::Own => self.own = &self.own[1..],
                Head::Common => self.common = &self.common[1..],
            }
            return Some(smallest);
        }
    }
}

/// Which of [`Labels`]' three sorted inputs a label came from.
#[derive(Clone, Copy)]
enum Head {
    Name,
    Own,
    Common,
}

/// The family names and series a batch holds, for a collector that must not repeat
/// them: it adds what the batch holds when it starts, then checks and adds each
/// series it writes.
///
/// A series is its name and labels as a remote-write receiver sees them: merged
/// with the common labels, and without labels of empty value (which Prometheus
/// treats as absent, so `m{a=""}` and `m` are one series). Both are kept as 64-bit
/// hashes under a per-process random key, so clearing the set keeps its capacity; a
/// collision (one in 2^64 per pair, and not craftable without the key) would drop
/// one series as a repeat.
#[derive(Default)]
pub struct SeriesSet {
    key: RandomState,
    families: HashSet<u64>,
    series: HashSet<u64>,
}

/// Separates names and values in a series hash: a byte no UTF-8 text contains.
const SEPARATOR: u8 = 0xff;

impl SeriesSet {
    pub fn clear(&mut self) {
        self.families.clear();
        self.series.clear();
    }

    /// Adds every family name and series `batch` holds.
    pub fn extend_from(&mut self, batch: &Batch) {
        for family in batch.families() {
            self.families.insert(self.key.hash_one(family.name()));
            for series in family.series() {
                self.series.insert(self.identity(&series));
            }
        }
    }

    /// Whether a family of this name was in the batch.
    pub fn has_family(&self, name: &str) -> bool {
        self.families.contains(&self.key.hash_one(name))
    }

    pub fn contains(&self, series: &SeriesRef<'_>) -> bool {
        self.series.contains(&self.identity(series))
    }

    /// Adds `series`; false if it was there already.
    pub fn insert(&mut self, series: &SeriesRef<'_>) -> bool {
        self.series.insert(self.identity(series))
    }

    fn identity(&self, series: &SeriesRef<'_>) -> u64 {
        let mut hasher = self.key.build_hasher();
        for (name, value) in series.labels_with_name() {
            if value.is_empty() {
                continue;
            }
            hasher.write(name.as_bytes());
            hasher.write_u8(SEPARATOR);
            hasher.write(value.as_bytes());
            hasher.write_u8(SEPARATOR);
        }
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(series: SeriesRef<'_>) -> Vec<(String, String)> {
        series
            .labels_with_name()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn families_hold_their_series_in_order() {
        let mut batch = Batch::new();
        batch.begin(1_000);
        batch
            .family("node_load1", "1m load average.", Kind::Gauge)
            .sample(&[], 0.5);
        let mut cpu = batch.family("node_cpu_seconds_total", "Seconds.", Kind::Counter);
        for n in 0..2 {
            cpu.series()
                .label("mode", "user")
                .label("cpu", n)
                .value(n as f64);
        }
        let families: Vec<_> = batch.families().collect();
        assert_eq!(families.len(), 2);
        assert_eq!(families[0].name(), "node_load1");
        assert_eq!(families[1].kind(), Kind::Counter);
        let values: Vec<f64> = families[1].series().map(|s| s.value()).collect();
        assert_eq!(values, [0.0, 1.0]);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.timestamp_ms(), 1_000);
    }

    #[test]
    fn labels_come_out_sorted_with_common_labels_merged() {
        let mut batch = Batch::new();
        batch.set_common_labels(pairs(&[("vm_id", "v"), ("job", "node"), ("Zone", "z")]));
        batch.begin(0);
        batch
            .family("m", "h", Kind::Gauge)
            .sample(&[("mode", "idle"), ("cpu", "0")], 1.0);
        let series = batch.families().next().unwrap().series().next().unwrap();
        assert_eq!(
            labels(series),
            pairs(&[
                ("Zone", "z"),
                ("__name__", "m"),
                ("cpu", "0"),
                ("job", "node"),
                ("mode", "idle"),
                ("vm_id", "v"),
            ])
        );
        let without_name: Vec<_> = series.labels().map(|(n, _)| n).collect();
        assert_eq!(without_name, ["Zone", "cpu", "job", "mode", "vm_id"]);
    }

    #[test]
    fn own_labels_positions_and_generations() {
        let mut batch = Batch::new();
        let generation = batch.common_generation();
        batch.set_common_labels(pairs(&[("job", "node")]));
        assert_eq!(batch.common_generation(), generation + 1);
        batch.set_common_labels(pairs(&[("job", "node")]));
        assert_eq!(batch.common_generation(), generation + 1, "the same labels");
        batch.begin(0);
        batch.family("a", "h", Kind::Gauge).sample(&[], 1.0);
        batch
            .family("b", "h", Kind::Gauge)
            .sample(&[("z", "1"), ("m", "2")], 2.0)
            .sample(&[], 3.0);
        let families: Vec<_> = batch.families().collect();
        assert_eq!(
            (families[0].positions(), families[1].positions()),
            (0..1, 1..3)
        );
        let b = families[1].series().next().unwrap();
        assert_eq!(b.own_labels().collect::<Vec<_>>(), [("m", "2"), ("z", "1")]);
        assert_eq!(families[0].series().next().unwrap().own_labels().count(), 0);
    }

    #[test]
    fn own_label_shadows_common_label() {
        let mut batch = Batch::new();
        batch.set_common_labels(pairs(&[("device", "common"), ("job", "node")]));
        batch.begin(0);
        batch
            .family("m", "h", Kind::Gauge)
            .sample(&[("device", "sda")], 1.0);
        let series = batch.families().next().unwrap().series().next().unwrap();
        assert_eq!(
            labels(series),
            pairs(&[("__name__", "m"), ("device", "sda"), ("job", "node")])
        );
    }

    #[test]
    fn rollback_forgets_a_failed_collector() {
        let mut batch = Batch::new();
        batch.begin(0);
        batch.family("kept", "h", Kind::Gauge).sample(&[], 1.0);
        let mark = batch.mark();
        batch
            .family("dropped", "h", Kind::Gauge)
            .sample(&[("a", "b")], 2.0);
        batch.rollback(mark);
        batch.family("after", "h", Kind::Gauge).sample(&[], 3.0);
        let names: Vec<_> = batch.families().map(|f| f.name()).collect();
        assert_eq!(names, ["kept", "after"]);
        let after = batch.families().nth(1).unwrap();
        assert_eq!(after.series().next().unwrap().value(), 3.0);
        assert_eq!(after.series().next().unwrap().labels().count(), 0);
    }

    #[test]
    fn begin_reuses_buffers() {
        let mut batch = Batch::new();
        let fill = |batch: &mut Batch| {
            batch.begin(0);
            let mut family = batch.family("node_network_receive_bytes_total", "h", Kind::Counter);
            for n in 0..100 {
                family
                    .series()
                    .label("device", format_args!("eth{n}"))
                    .value(1.0);
            }
        };
        fill(&mut batch);
        let capacities = (
            batch.text.capacity(),
            batch.series.capacity(),
            batch.labels.capacity(),
        );
        for _ in 0..10 {
            fill(&mut batch);
        }
        assert_eq!(
            capacities,
            (
                batch.text.capacity(),
                batch.series.capacity(),
                batch.labels.capacity()
            )
        );
    }

    #[test]
    fn text_labels_are_the_same_as_formatted_ones() {
        let mut batch = Batch::new();
        batch.begin(0);
        let mut family = batch.family("m", "h", Kind::Gauge);
        family.series().label("device", "eth0").value(1.0);
        family.series().label_str("device", "eth0").value(1.0);
        let family = batch.families().next().unwrap();
        let labels: Vec<_> = family.series().map(labels).collect();
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[0], pairs(&[("__name__", "m"), ("device", "eth0")]));
    }

    #[test]
    fn empty_family_has_no_series() {
        let mut batch = Batch::new();
        batch.begin(0);
        batch.family("empty", "h", Kind::Gauge);
        let family = batch.families().next().unwrap();
        assert!(family.is_empty());
        assert!(batch.is_empty());
    }

    #[test]
    fn histogram_series_carry_their_suffixed_names() {
        let mut batch = Batch::new();
        batch.set_common_labels(pairs(&[("job", "node")]));
        batch.begin(0);
        let mut family = batch.family("h", "help", Kind::Histogram);
        for le in ["1", "+Inf"] {
            family
                .series_with_suffix(Suffix::Bucket)
                .label("le", le)
                .value(1.0);
        }
        family.series_with_suffix(Suffix::Sum).value(0.5);
        family.series_with_suffix(Suffix::Count).value(1.0);
        family.series().label("quantile", "0.5").value(2.0);
        let family = batch.families().next().unwrap();
        assert_eq!((family.name(), family.kind()), ("h", Kind::Histogram));
        let names: Vec<_> = family.series().map(|s| s.name()).collect();
        assert_eq!(names, ["h_bucket", "h_bucket", "h_sum", "h_count", "h"]);
        let first = family.series().next().unwrap();
        assert_eq!(
            labels(first),
            pairs(&[("__name__", "h_bucket"), ("job", "node"), ("le", "1")])
        );
        // The suffixed names are written once each, not once per series.
        assert_eq!(batch.text.matches("h_bucket").count(), 1);
    }

    #[test]
    fn a_family_writer_rolls_back_its_last_series() {
        let mut batch = Batch::new();
        batch.begin(0);
        let mut family = batch.family("h", "help", Kind::Histogram);
        family
            .series_with_suffix(Suffix::Sum)
            .label("a", "1")
            .value(1.0);
        let mark = family.mark();
        family
            .series_with_suffix(Suffix::Count)
            .label("a", "2")
            .value(2.0);
        family
            .series_with_suffix(Suffix::Sum)
            .label("a", "2")
            .value(3.0);
        let since: Vec<_> = family.since(mark).map(|s| (s.name(), s.value())).collect();
        assert_eq!(since, [("h_count", 2.0), ("h_sum", 3.0)]);
        family.rollback(mark);
        assert_eq!(family.since(mark).count(), 0);
        // The suffix written after the mark is written again when used again.
        family
            .series_with_suffix(Suffix::Count)
            .label("a", "3")
            .value(4.0);
        batch.family("next", "help", Kind::Gauge).sample(&[], 5.0);
        let series: Vec<_> = batch
            .families()
            .flat_map(|f| f.series())
            .map(|s| (s.name(), s.value(), s.labels().collect::<Vec<_>>()))
            .collect();
        assert_eq!(
            series,
            [
                ("h_sum", 1.0, vec![("a", "1")]),
                ("h_count", 4.0, vec![("a", "3")]),
                ("next", 5.0, vec![]),
            ]
        );
    }

    #[test]
    fn a_series_set_knows_series_as_a_receiver_does() {
        let mut batch = Batch::new();
        batch.set_common_labels(pairs(&[("job", "node")]));
        batch.begin(0);
        batch
            .family("m", "h", Kind::Gauge)
            .sample(&[("a", "1")], 1.0)
            .sample(&[("a", "1"), ("b", "")], 2.0)
            .sample(&[("a", "1"), ("job", "node")], 3.0)
            .sample(&[("a", "2")], 4.0);
        let mut set = SeriesSet::default();
        let all: Vec<_> = batch.families().flat_map(|f| f.series()).collect();
        // An empty label is no label, and an own label equal to the common one
        // is the same series.
        let fresh: Vec<bool> = all.iter().map(|s| set.insert(s)).collect();
        assert_eq!(fresh, [true, false, false, true]);
        assert!(set.contains(&all[0]));

        let mut set = SeriesSet::default();
        let mut other = Batch::new();
        other.begin(0);
        other
            .family("m", "h", Kind::Gauge)
            .sample(&[("a", "1")], 9.0);
        set.extend_from(&other);
        assert!(set.has_family("m"));
        assert!(!set.has_family("n"));
        // Without the common label `job` it is another series.
        assert!(!set.contains(&all[0]));
        let own: Vec<_> = other.families().flat_map(|f| f.series()).collect();
        assert!(set.contains(&own[0]));
        set.clear();
        assert!(!set.contains(&own[0]) && !set.has_family("m"));
    }
}
