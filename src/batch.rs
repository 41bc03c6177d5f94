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

use std::fmt::{self, Write as _};
use std::ops::Range;

/// The Prometheus metric type of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// node_exporter leaves some families untyped (vmstat, netstat fields).
    Untyped,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
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
        self.common = labels;
    }

    pub fn common_labels(&self) -> &[(String, String)] {
        &self.common
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

    /// Drops everything written since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        self.text.truncate(mark.text);
        self.families.truncate(mark.families);
        self.series.truncate(mark.series);
        self.labels.truncate(mark.labels);
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
        FamilyWriter { batch: self }
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
        let start = self.batch.labels.len() as u32;
        SeriesWriter {
            batch: self.batch,
            start,
        }
    }
}

/// Collects the labels of one series, then its value.
pub struct SeriesWriter<'a> {
    batch: &'a mut Batch,
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

    pub fn series(&self) -> impl Iterator<Item = SeriesRef<'a>> + 'a {
        let (batch, name) = (self.batch, self.name());
        let range = self.family.series.start as usize..self.family.series.end as usize;
        batch.series[range].iter().map(move |series| SeriesRef {
            batch,
            name,
            series,
        })
    }
}

/// A series as the writers read it.
#[derive(Clone, Copy)]
pub struct SeriesRef<'a> {
    batch: &'a Batch,
    name: &'a str,
    series: &'a Series,
}

impl<'a> SeriesRef<'a> {
    pub fn value(&self) -> f64 {
        self.series.value
    }

    /// The series' own and common labels, sorted by name, without `__name__`.
    pub fn labels(&self) -> Labels<'a> {
        self.merged(None)
    }

    /// All labels sorted by name, `__name__` included, as remote write wants them.
    pub fn labels_with_name(&self) -> Labels<'a> {
        self.merged(Some(self.name))
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
        let own = self
            .own
            .first()
            .map(|l| (batch.str(l.name), batch.str(l.value)));
        let common = self.common.first().map(|(n, v)| (n.as_str(), v.as_str()));
        let name = self.name.map(|v| (NAME_LABEL, v));
        // A common label shadowed by the series' own label of the same name is skipped.
        if let (Some(o), Some(c)) = (own, common) {
            if o.0 == c.0 {
                self.common = &self.common[1..];
                return self.next();
            }
        }
        let smallest = [name, own, common].into_iter().flatten().min()?;
        if Some(smallest) == name {
            self.name = None;
        } else if Some(smallest) == own {
            self.own = &self.own[1..];
        } else {
            self.common = &self.common[1..];
        }
        Some(smallest)
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
}
