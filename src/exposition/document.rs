//! A parsed exposition: its families, their metrics, labels and buckets, read through
//! borrowed views.
//!
//! Everything lives in a few buffers that are cleared and reused by the next parse:
//! one text arena for every name, help text and label, and vectors of families,
//! metrics, labels and points that refer to it by offsets. A family's metrics, and a
//! summary's quantiles or a histogram's buckets, may be spread over the input (expfmt
//! merges them), so each is a list threaded through its vector by index.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::ops::Range;

/// A metric family's type, from its `# TYPE` line (`untyped` without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    /// The type named on a `# TYPE` line, in any case.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Untyped,
        ]
        .into_iter()
        .find(|kind| name.eq_ignore_ascii_case(kind.as_str().as_bytes()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

/// The end of a list threaded through a vector.
pub(super) const NONE: u32 = u32::MAX;

/// Offsets of a string in the text arena.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Span {
    pub start: u32,
    pub end: u32,
}

#[derive(Debug)]
pub(super) struct FamilyData {
    pub name: Span,
    pub help: Option<Span>,
    /// Set by `# TYPE`, or to untyped by the first sample.
    pub kind: Option<MetricType>,
    pub first: u32,
    pub last: u32,
    pub len: u32,
}

#[derive(Debug)]
pub(super) struct MetricData {
    pub family: u32,
    /// Without a summary's `quantile` and a histogram's `le`.
    pub labels: Range<u32>,
    pub next: u32,
    pub timestamp_ms: Option<i64>,
    /// A counter's, gauge's or untyped sample's value.
    pub value: f64,
    pub count: Option<f64>,
    pub sum: Option<f64>,
    pub first_point: u32,
    pub last_point: u32,
}

#[derive(Debug)]
pub(super) struct LabelData {
    pub name: Span,
    pub value: Span,
}

/// A summary's quantile or a histogram's bucket.
#[derive(Debug)]
pub(super) struct PointData {
    pub bound: f64,
    pub value: f64,
    pub next: u32,
}

/// A parsed exposition, reused from one [`Exposition::parse`] to the next.
#[derive(Debug, Default)]
pub struct Exposition {
    pub(super) text: String,
    pub(super) families: Vec<FamilyData>,
    pub(super) metrics: Vec<MetricData>,
    pub(super) labels: Vec<LabelData>,
    pub(super) points: Vec<PointData>,
    /// Family index by keyed hash of its name (see [`Exposition::find_family`]).
    pub(super) by_name: HashMap<u64, u32>,
    /// Summary and histogram metric by keyed hash of family and sorted labels.
    pub(super) by_signature: HashMap<u64, u32>,
    /// Label indices of the current line in name order, for its signature.
    pub(super) sorted: Vec<u32>,
    pub(super) key: RandomState,
    pub(super) has_timestamps: bool,
}

/// A buffer this many bytes larger than four times what it held is given back to
/// the allocator, so that one huge input does not pin its size.
const SHRINK_ABOVE_BYTES: usize = 64 << 10;

fn reuse<T>(items: &mut Vec<T>) {
    if items.capacity() * size_of::<T>() > SHRINK_ABOVE_BYTES && items.capacity() > 4 * items.len()
    {
        items.shrink_to(items.len());
    }
    items.clear();
}

fn reuse_map(map: &mut HashMap<u64, u32>) {
    if map.capacity() * size_of::<(u64, u32)>() > SHRINK_ABOVE_BYTES
        && map.capacity() > 4 * map.len()
    {
        map.shrink_to(map.len());
    }
    map.clear();
}

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    /// Empties the exposition, keeping buffers sized for what it held (within reason).
    pub(super) fn clear(&mut self) {
        if self.text.capacity() > SHRINK_ABOVE_BYTES && self.text.capacity() > 4 * self.text.len() {
            self.text.shrink_to(self.text.len());
        }
        self.text.clear();
        reuse(&mut self.families);
        reuse(&mut self.metrics);
        reuse(&mut self.labels);
        reuse(&mut self.points);
        reuse(&mut self.sorted);
        reuse_map(&mut self.by_name);
        reuse_map(&mut self.by_signature);
        self.has_timestamps = false;
    }

    pub(super) fn str(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    /// The families that have samples, in the order their names first appeared.
    pub fn families(&self) -> impl Iterator<Item = Family<'_>> {
        self.families
            .iter()
            .filter(|data| data.len > 0)
            .map(move |data| Family { doc: self, data })
    }

    /// Whether any sample carries a timestamp.
    pub fn has_timestamps(&self) -> bool {
        self.has_timestamps
    }
}

/// A metric family: its name, HELP, TYPE and metrics.
#[derive(Clone, Copy)]
pub struct Family<'a> {
    doc: &'a Exposition,
    data: &'a FamilyData,
}

impl<'a> Family<'a> {
    pub fn name(&self) -> &'a str {
        self.doc.str(self.data.name)
    }

    /// The `# HELP` text, unescaped; `None` without a HELP line.
    pub fn help(&self) -> Option<&'a str> {
        self.data.help.map(|span| self.doc.str(span))
    }

    pub fn kind(&self) -> MetricType {
        self.data.kind.unwrap_or(MetricType::Untyped)
    }

    /// The number of metrics: samples, or whole summaries and histograms.
    pub fn len(&self) -> usize {
        self.data.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.data.len == 0
    }

    /// The metrics in the order they first appeared.
    pub fn metrics(&self) -> impl Iterator<Item = Metric<'a>> + 'a {
        let (doc, kind) = (self.doc, self.kind());
        let mut next = self.data.first;
        std::iter::from_fn(move || {
            let data = doc.metrics.get(next as usize)?;
            next = data.next;
            Some(Metric { doc, data, kind })
        })
    }
}

/// One sample of a counter, gauge or untyped family, or one whole summary or
/// histogram (one label set).
#[derive(Clone, Copy)]
pub struct Metric<'a> {
    doc: &'a Exposition,
    data: &'a MetricData,
    kind: MetricType,
}

/// What a metric holds.
#[derive(Clone)]
pub enum Value<'a> {
    /// A counter's, gauge's or untyped sample's value.
    Sample(f64),
    /// `quantiles` are `(quantile, value)` in input order, repeats included.
    Summary {
        count: Option<f64>,
        sum: Option<f64>,
        quantiles: Points<'a>,
    },
    /// `buckets` are `(upper bound, cumulative count)` in input order, repeats
    /// included; the `+Inf` bucket only if the input has one.
    Histogram {
        count: Option<f64>,
        sum: Option<f64>,
        buckets: Points<'a>,
    },
}

impl<'a> Metric<'a> {
    /// The labels in input order, without a summary's `quantile` or a histogram's
    /// `le`, values unescaped.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a {
        let doc = self.doc;
        let range = self.data.labels.start as usize..self.data.labels.end as usize;
        doc.labels
            .get(range)
            .unwrap_or_default()
            .iter()
            .map(move |label| (doc.str(label.name), doc.str(label.value)))
    }

    /// The sample's timestamp; a summary's or histogram's latest.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.data.timestamp_ms
    }

    pub fn value(&self) -> Value<'a> {
        let points = Points {
            doc: self.doc,
            next: self.data.first_point,
        };
        let (count, sum) = (self.data.count, self.data.sum);
        match self.kind {
            MetricType::Summary => Value::Summary {
                count,
                sum,
                quantiles: points,
            },
            MetricType::Histogram => Value::Histogram {
                count,
                sum,
                buckets: points,
            },
            _ => Value::Sample(self.data.value),
        }
    }
}

/// A summary's quantiles or a histogram's buckets, as `(bound, value)`.
#[derive(Clone)]
pub struct Points<'a> {
    doc: &'a Exposition,
    next: u32,
}

impl Iterator for Points<'_> {
    type Item = (f64, f64);

    fn next(&mut self) -> Option<(f64, f64)> {
        let point = self.doc.points.get(self.next as usize)?;
        self.next = point.next;
        Some((point.bound, point.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_in_any_case() {
        assert_eq!(MetricType::from_name(b"summArY"), Some(MetricType::Summary));
        assert_eq!(MetricType::from_name(b"COUNTER"), Some(MetricType::Counter));
        for bad in [&b"counter "[..], b"bla", b"gauge_histogram", b"info", b""] {
            assert_eq!(MetricType::from_name(bad), None);
        }
    }
}
