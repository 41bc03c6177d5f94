//! `node_textfile_*` and the metrics of `*.prom` files: node_exporter's textfile
//! collector (as of 1.12), on the agent's own parser ([`crate::exposition`]).
//!
//! Every cycle each entry of `directory` is expanded as Go's `filepath.Glob`
//! would (an entry that is a bad pattern or matches nothing is taken as a directory
//! name; the empty entry, node_exporter's default, is skipped quietly), and the
//! `*.prom` files of each directory are read in name order, not recursively. Then,
//! as node_exporter does:
//!
//! - A file that cannot be read, does not parse, or has a sample with a timestamp is
//!   skipped whole, and sets `node_textfile_scrape_error` to 1; so does a directory
//!   that cannot be listed. The gauge is always written.
//! - `node_textfile_mtime_seconds{file}` (whole seconds) for each file read, the
//!   label being the file's path as `filepath.Join(directory, name)` gives it: the
//!   directory as configured or globbed, cleaned, not made absolute.
//! - A family without HELP gets `Metric read from <path>, <path>...`, the paths of
//!   all the files it was kept from. A family in several files is merged; one whose
//!   HELP differs from the first file's is dropped with that file (scrape error),
//!   and once two HELPs conflicted every later file's family of that name is too
//!   (node_exporter dereferences a missing HELP there and panics; here it is
//!   dropped). A file's family whose HELP or TYPE, after the invented HELP, differs
//!   from the family's first is dropped, as node_exporter's registry drops it.
//! - Families come out sorted by name, then `node_textfile_mtime_seconds` and
//!   `node_textfile_scrape_error`. Metrics are in the order of node_exporter's
//!   registry (each padded with the label names the other metrics of its file's
//!   family have, then compared by label count and value by value); the padding
//!   itself is not written (`label=""` is no label to Prometheus). A summary's
//!   quantiles and a histogram's buckets are sorted by bound, a repeated bound
//!   keeping its last value, `+Inf` added to a histogram without it, a missing sum
//!   or count 0; `le` and `quantile` are written as Go writes floats
//!   (`le="1.6384e+06"`), so series keep the names they had when Prometheus scraped
//!   node_exporter. A directory named `*.prom` reads as a file without metrics.
//!
//! Unlike node_exporter:
//!
//! - A series that repeats one (within or across files, or written this cycle by
//!   another collector) is dropped and sets the scrape error: a remote-write
//!   receiver rejects a whole request that repeats a series. Repeats are judged as
//!   the receiver judges them: an empty label is no label. node_exporter's registry
//!   drops such repeats too, but only logs them; it also only logs the HELP and
//!   TYPE conflicts above, which set the scrape error here.
//! - A textfile family whose name another collector wrote is dropped whole: the
//!   batch keeps a family in one piece (node_exporter merges it into the built-in
//!   family when HELP and TYPE are identical). So are the families the agent writes
//!   after the collectors (`node_scrape_collector_*`, `node_textfile_*`,
//!   `sc_agent_*`), where in node_exporter a textfile's `node_textfile_scrape_error`
//!   wins over the collector's own. The collector therefore runs after all others.
//! - A file with a label name starting with `__` is skipped (node_exporter
//!   panics), and so is one the parser refuses where expfmt does not (see
//!   [`crate::exposition`]: negative counts, which node_exporter turns into
//!   1.8e19, `gauge_histogram`).
//! - Fractional histogram and summary counts are kept; node_exporter 1.5 truncates
//!   them to integers.
//! - Problems are logged as warnings when they appear and at debug level while
//!   they last, not every cycle.
//!
//! Files, directories and bytes per cycle are bounded (below), on top of the
//! parser's bounds on each file.

mod glob;

use super::{list_dir, read_bytes, Build, CollectError, Collector, Context};
use crate::batch::{Batch, FamilyWriter, Kind, SeriesSet, SeriesWriter, Suffix};
use crate::exposition::{Exposition, GoFloat, MetricType, Value, MAX_INPUT_BYTES, MAX_LABELS};
use crate::remote_write::metrics::PREFIX as AGENT_PREFIX;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;
use std::path::Path;

/// `collectors.textfile`.
#[derive(Deserialize, Serialize, Clone, PartialEq, Debug, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Directories to read `*.prom` files from, each possibly a glob (`*`, `?`,
    /// `[...]`): node_exporter's `--collector.textfile.directory`, which may be given
    /// several times; here one path or a list of them. It defaults to the empty
    /// string there, which reads nothing: so does the empty list. `directory`, the
    /// flag's own name, is accepted for it.
    #[serde(alias = "directory", deserialize_with = "one_or_more")]
    pub directories: Vec<String>,
}

impl crate::config::collectors::Options for Options {}

/// A string or a list of strings, as a list.
fn one_or_more<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a directory or a list of directories")]
    enum OneOrMore {
        One(String),
        More(Vec<String>),
    }
    Ok(match OneOrMore::deserialize(deserializer)? {
        OneOrMore::One(one) => vec![one],
        OneOrMore::More(more) => more,
    })
}

/// `*.prom` files read per cycle at most; more are skipped (scrape error). A
/// textfile directory holds one file per job that writes one, a handful.
pub const MAX_FILES: usize = 1024;

/// Directories the patterns may expand to per cycle; more are skipped (scrape
/// error). A glob over per-service directories matches tens.
pub const MAX_DIRECTORIES: usize = 256;

/// Bytes of `*.prom` files read per cycle at most; a file past it is skipped
/// (scrape error). About 60,000 series: far more than textfiles hold, and what
/// bounds the memory the collector, the batch and the encoder hold for them.
pub const MAX_TOTAL_BYTES: usize = 4 << 20;

const MTIME: &str = "node_textfile_mtime_seconds";
const MTIME_HELP: &str = "Unixtime mtime of textfiles successfully read.";
const SCRAPE_ERROR: &str = "node_textfile_scrape_error";
const SCRAPE_ERROR_HELP: &str = "1 if there was an error opening or reading a file, 0 otherwise";

/// Whether the agent writes a family of this name after the collectors have run,
/// where a [`SeriesSet`] of the batch cannot see it yet.
fn written_later(name: &str) -> bool {
    [
        super::SCRAPE_DURATION,
        super::SCRAPE_SUCCESS,
        MTIME,
        SCRAPE_ERROR,
    ]
    .contains(&name)
        || name.starts_with(AGENT_PREFIX)
}

pub struct Textfile {
    patterns: Vec<String>,
    /// This cycle's directories, and the `*.prom` names of one of them.
    directories: Vec<String>,
    names: Vec<String>,
    path: String,
    raw: Vec<u8>,
    doc: Exposition,
    rows: Rows,
    files_seen: usize,
    bytes_read: usize,
    /// Family rows in name order; the metrics of one merged family.
    order: Vec<u32>,
    kept: Vec<u32>,
    metrics: Vec<u32>,
    help: String,
    written: SeriesSet,
    problems: Problems,
    errored: bool,
}

impl Textfile {
    pub fn new(options: &Options) -> Self {
        Textfile {
            patterns: options.directories.clone(),
            directories: Vec::new(),
            names: Vec::new(),
            path: String::new(),
            raw: Vec::new(),
            doc: Exposition::new(),
            rows: Rows::default(),
            files_seen: 0,
            bytes_read: 0,
            order: Vec::new(),
            kept: Vec::new(),
            metrics: Vec::new(),
            help: String::new(),
            written: SeriesSet::default(),
            problems: Problems::default(),
            errored: false,
        }
    }

    /// Notes a problem: it sets the scrape error and is logged.
    fn problem(&mut self, message: fmt::Arguments<'_>) {
        self.errored = true;
        self.problems.report(message);
    }

    /// Expands `patterns` into `self.directories`.
    fn expand(&mut self, patterns: &[String]) {
        self.directories.clear();
        for pattern in patterns {
            let room = MAX_DIRECTORIES.saturating_sub(self.directories.len());
            let before = self.directories.len();
            let cut = glob::glob(pattern, &mut self.directories, room) == Ok(true);
            if self.directories.len() == before && !cut {
                // A bad pattern, or one matching nothing: a directory name.
                if room > 0 {
                    self.directories.push(pattern.clone());
                    continue;
                }
            } else if !cut {
                continue;
            }
            self.problem(format_args!(
                "textfile: more than {MAX_DIRECTORIES} directories; {pattern:?} is not read whole"
            ));
        }
    }

    /// Reads the `*.prom` files of directory `dir`.
    fn read_directory(&mut self, dir: &str) {
        if dir.is_empty() {
            // node_exporter's default: listing "" fails, and it says nothing.
            return;
        }
        let keep = |_: &std::fs::DirEntry, name: &str| name.ends_with(".prom");
        let count = match list_dir(Path::new(dir), &mut self.names, keep) {
            Ok(count) => count,
            Err(e) => {
                return self.problem(format_args!("textfile: cannot read directory {dir}: {e}"));
            }
        };
        for name in 0..count {
            if self.files_seen == MAX_FILES {
                return self.problem(format_args!(
                    "textfile: more than {MAX_FILES} files; the rest of {dir} is not read"
                ));
            }
            self.files_seen += 1;
            glob::join(dir, &self.names[name], &mut self.path);
            if let Err(message) = self.read_file() {
                self.problem(format_args!("textfile: {message}"));
            }
        }
    }

    /// Reads, parses and checks the file at `self.path`, adding its rows.
    fn read_file(&mut self) -> Result<(), String> {
        let path = self.path.as_str();
        let budget = MAX_TOTAL_BYTES.saturating_sub(self.bytes_read);
        let metadata = match std::fs::metadata(path) {
            // A directory named `*.prom` reads as empty in Go: a file without metrics.
            Ok(metadata) if metadata.is_dir() => {
                self.raw.clear();
                metadata
            }
            _ => read_bytes(Path::new(path), &mut self.raw, MAX_INPUT_BYTES.min(budget)).map_err(
                |e| {
                    if budget < MAX_INPUT_BYTES {
                        format!("{e} (this cycle's files may hold {MAX_TOTAL_BYTES} bytes)")
                    } else {
                        e.to_string()
                    }
                },
            )?,
        };
        self.bytes_read += self.raw.len();
        self.doc
            .parse(&self.raw)
            .map_err(|e| format!("{path}: {e}"))?;
        if self.doc.has_timestamps() {
            return Err(format!(
                "{path}: contains unsupported client-side timestamps, skipping entire file"
            ));
        }
        for family in self.doc.families() {
            for metric in family.metrics() {
                if let Some((name, _)) = metric.labels().find(|(name, _)| name.starts_with("__")) {
                    return Err(format!(
                        "{path}: {}: label name {name:?} is reserved (names starting with __ belong to Prometheus)",
                        family.name()
                    ));
                }
            }
        }
        self.rows
            .add_file(path, mtime_seconds(&metadata), &self.doc);
        Ok(())
    }

    /// Writes the families of all files read, merged by name.
    fn write_families(&mut self, out: &mut Batch) {
        let rows = &self.rows;
        self.order.clear();
        self.order.extend(0..rows.families.len() as u32);
        self.order.sort_unstable_by(|&a, &b| {
            let name = |i: u32| rows.str(rows.family(i).name);
            name(a).cmp(name(b)).then(a.cmp(&b))
        });
        let mut start = 0;
        while start < self.order.len() {
            let name = self.rows.str(self.rows.family(self.order[start]).name);
            let end = start
                + self.order[start..]
                    .iter()
                    .take_while(|&&i| self.rows.str(self.rows.family(i).name) == name)
                    .count();
            self.write_family(start..end, out);
            start = end;
        }
    }

    /// Writes the family of the rows `self.order[group]`, all of one name.
    fn write_family(&mut self, group: Range<usize>, out: &mut Batch) {
        let Textfile {
            rows,
            order,
            kept,
            metrics,
            help,
            written,
            problems,
            errored,
            ..
        } = self;
        let mut problem = |message: fmt::Arguments<'_>| {
            *errored = true;
            problems.report(message);
        };
        let group = order.get(group).unwrap_or_default();
        let Some(&first) = group.first() else {
            return;
        };
        let name = rows.str(rows.family(first).name);
        if written_later(name) || written.has_family(name) {
            for &f in group {
                let path = rows.path_of(f);
                problem(format_args!(
                    "textfile: {path}: family {name} is written by the agent itself or by \
                     another collector; dropped"
                ));
            }
            return;
        }

        // node_exporter's HELP check, file by file.
        kept.clear();
        let mut first_help: Option<&str> = None;
        let mut conflict = false;
        for &f in group {
            let own = rows.family(f).help.map(|span| rows.str(span));
            if let Some(first_help) = first_help {
                if conflict || own.is_some_and(|own| own != first_help) {
                    conflict = true;
                    let path = rows.path_of(f);
                    problem(format_args!(
                        "textfile: {path}: HELP of {name} differs from the first file's \
                         {first_help:?}; dropped"
                    ));
                    continue;
                }
            }
            if own.is_some() {
                first_help = own;
            }
            kept.push(f);
        }
        help.clear();
        help.push_str("Metric read from ");
        for (n, &f) in kept.iter().enumerate() {
            if n > 0 {
                help.push_str(", ");
            }
            help.push_str(rows.path_of(f));
        }
        let help_of = |f: u32| rows.family(f).help.map_or(help.as_str(), |s| rows.str(s));

        // The registry's check: one HELP and TYPE per family, the first file's.
        let Some(&leader) = kept.first() else {
            return;
        };
        let (family_help, kind) = (help_of(leader), rows.family(leader).kind);
        metrics.clear();
        for &f in kept.iter() {
            if help_of(f) != family_help || rows.family(f).kind != kind {
                let path = rows.path_of(f);
                let leader_path = rows.path_of(leader);
                problem(format_args!(
                    "textfile: {path}: HELP or TYPE of {name} differ from those in {leader_path}; \
                     dropped"
                ));
                continue;
            }
            metrics.extend(rows.family(f).metrics.start..rows.family(f).metrics.end);
        }
        metrics.sort_unstable_by(|&a, &b| rows.compare_metrics(a, b).then(a.cmp(&b)));

        let mut family = out.family(name, family_help, batch_kind(kind));
        for &m in metrics.iter() {
            let mark = family.mark();
            rows.write_metric(&mut family, m, kind);
            let repeated = family.since(mark).find(|series| written.contains(series));
            if let Some(series) = repeated {
                let path = rows.path_of(rows.metric(m).family);
                let series = SeriesName(series);
                problem(format_args!(
                    "textfile: {path}: {series} repeats a series written before; dropped"
                ));
                family.rollback(mark);
                continue;
            }
            for series in family.since(mark) {
                written.insert(&series);
            }
        }
    }

    fn write_own(&mut self, out: &mut Batch) {
        let rows = &self.rows;
        self.order.clear();
        self.order.extend(0..rows.files.len() as u32);
        let path = |i: &u32| rows.files.get(*i as usize).map_or("", |f| rows.str(f.path));
        self.order.sort_unstable_by(|a, b| path(a).cmp(path(b)));
        self.order.dedup_by(|a, b| path(a) == path(b));
        let mut mtime = out.family(MTIME, MTIME_HELP, Kind::Gauge);
        for file in self
            .order
            .iter()
            .filter_map(|&i| rows.files.get(i as usize))
        {
            mtime
                .series()
                .label("file", rows.str(file.path))
                .value(file.mtime);
        }
        out.family(SCRAPE_ERROR, SCRAPE_ERROR_HELP, Kind::Gauge)
            .sample(&[], f64::from(u8::from(self.errored)));
    }
}

impl Build for Textfile {
    type Options = Options;

    /// The files are wherever `directory` points: no fixed path to fuzz (the
    /// parser has a fuzz target of its own).
    const SOURCES: &'static [&'static str] = &[];

    fn build(_context: &Context<'_>, options: &Options) -> Self {
        Textfile::new(options)
    }
}


impl Collector for Textfile {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.errored = false;
        self.problems.begin();
        self.written.clear();
        self.rows.clear();
        self.files_seen = 0;
        self.bytes_read = 0;
        let patterns = std::mem::take(&mut self.patterns);
        self.expand(&patterns);
        self.patterns = patterns;
        let directories = std::mem::take(&mut self.directories);
        for dir in &directories {
            self.read_directory(dir);
        }
        self.directories = directories;
        // What the other collectors wrote, to drop the series that clash with it: only
        // when there is something to check (hashing every series of a large host's
        // batch is the collector's main cost).
        if !self.rows.families.is_empty() {
            self.written.extend_from(out);
        }
        self.write_families(out);
        self.write_own(out);
        Ok(())
    }
}

fn batch_kind(kind: MetricType) -> Kind {
    match kind {
        MetricType::Counter => Kind::Counter,
        MetricType::Gauge => Kind::Gauge,
        MetricType::Histogram => Kind::Histogram,
        MetricType::Summary => Kind::Summary,
        MetricType::Untyped => Kind::Untyped,
    }
}

/// A file's mtime in whole seconds, as node_exporter takes it
/// (`UnixNano() / 1e9`, which rounds towards zero).
fn mtime_seconds(metadata: &std::fs::Metadata) -> f64 {
    use std::os::unix::fs::MetadataExt;
    let (seconds, nanos) = (metadata.mtime(), metadata.mtime_nsec());
    let toward_zero = if seconds < 0 && nanos > 0 {
        seconds + 1
    } else {
        seconds
    };
    toward_zero as f64
}

/// A series as `name{label="value",...}` for a message.
struct SeriesName<'a>(crate::batch::SeriesRef<'a>);

impl fmt::Display for SeriesName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())?;
        let mut separator = '{';
        for (name, value) in self.0.labels() {
            write!(f, "{separator}{name}={value:?}")?;
            separator = ',';
        }
        if separator == ',' {
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// Offsets of a string in [`Rows::text`].
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    end: u32,
}

struct FileRow {
    path: Span,
    mtime: f64,
}

struct FamilyRow {
    name: Span,
    help: Option<Span>,
    kind: MetricType,
    file: u32,
    metrics: Range<u32>,
    /// The label names of all its metrics, sorted, in [`Rows::names`]; `None` past
    /// [`MAX_LABELS`] names.
    union: Option<Range<u32>>,
}

struct MetricRow {
    family: u32,
    /// Sorted by name.
    labels: Range<u32>,
    value: f64,
    count: f64,
    sum: f64,
    /// Sorted by bound, one per bound.
    points: Range<u32>,
}

struct Point {
    bound: f64,
    value: f64,
    /// Its place in the input, for the last of a repeated bound to win.
    seq: u32,
}

/// The families of every file read this cycle, copied out of the parser's buffers
/// (which the next file reuses) into buffers of their own, reused across cycles.
#[derive(Default)]
struct Rows {
    text: String,
    files: Vec<FileRow>,
    families: Vec<FamilyRow>,
    metrics: Vec<MetricRow>,
    labels: Vec<(Span, Span)>,
    names: Vec<Span>,
    points: Vec<Point>,
}

impl Rows {
    fn clear(&mut self) {
        self.text.clear();
        self.files.clear();
        self.families.clear();
        self.metrics.clear();
        self.labels.clear();
        self.names.clear();
        self.points.clear();
    }

    fn push(&mut self, text: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(text);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    fn str(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    fn family(&self, index: u32) -> &FamilyRow {
        &self.families[index as usize]
    }

    fn metric(&self, index: u32) -> &MetricRow {
        &self.metrics[index as usize]
    }

    fn path_of(&self, family: u32) -> &str {
        let file = self.family(family).file;
        self.files
            .get(file as usize)
            .map_or("", |f| self.str(f.path))
    }

    fn labels(&self, metric: &MetricRow) -> impl Iterator<Item = (&str, &str)> + Clone {
        let range = metric.labels.start as usize..metric.labels.end as usize;
        self.labels
            .get(range)
            .unwrap_or_default()
            .iter()
            .map(|&(name, value)| (self.str(name), self.str(value)))
    }

    fn points(&self, metric: &MetricRow) -> &[Point] {
        let range = metric.points.start as usize..metric.points.end as usize;
        self.points.get(range).unwrap_or_default()
    }

    /// Orders metrics as node_exporter's registry does: each metric's labels are
    /// padded with the other names of its file's family (empty values), then
    /// compared by number, then value by value in name order. A family of more
    /// than [`MAX_LABELS`] names is not padded (node_exporter's padding would
    /// multiply it) and comes after, ordered by its own labels.
    fn compare_metrics(&self, a: u32, b: u32) -> Ordering {
        let (a, b) = (self.metric(a), self.metric(b));
        match (self.union(a), self.union(b)) {
            (Some(union_a), Some(union_b)) => union_a.len().cmp(&union_b.len()).then_with(|| {
                self.padded_values(a, union_a)
                    .cmp(self.padded_values(b, union_b))
            }),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.labels(a).cmp(self.labels(b)),
        }
    }

    fn union(&self, metric: &MetricRow) -> Option<&[Span]> {
        let range = self.family(metric.family).union.clone()?;
        self.names.get(range.start as usize..range.end as usize)
    }

    /// The values of `metric` for each name of `union` (its labels' names and
    /// more, both sorted), empty for names it lacks.
    fn padded_values<'s>(
        &'s self,
        metric: &MetricRow,
        union: &'s [Span],
    ) -> impl Iterator<Item = &'s str> + 's {
        let mut own = self.labels(metric).peekable();
        union.iter().map(move |&name| {
            let name = self.str(name);
            match own.next_if(|&(own_name, _)| own_name == name) {
                Some((_, value)) => value,
                None => "",
            }
        })
    }

    /// Adds the sorted, distinct label names of the metrics from `first` on to
    /// `names`, if there are at most [`MAX_LABELS`] of them.
    fn add_union(&mut self, first: usize) -> Option<Range<u32>> {
        let start = self.names.len();
        let metrics = self.metrics.get(first..).unwrap_or_default();
        for metric in metrics {
            let range = metric.labels.start as usize..metric.labels.end as usize;
            let labels = self.labels.get(range).unwrap_or_default();
            self.names.extend(labels.iter().map(|&(name, _)| name));
        }
        let text = &self.text;
        let str = |span: &Span| {
            text.get(span.start as usize..span.end as usize)
                .unwrap_or_default()
        };
        let names = self.names.get_mut(start..).unwrap_or_default();
        names.sort_unstable_by(|a, b| str(a).cmp(str(b)));
        let mut kept = start;
        for i in start..self.names.len() {
            if kept == start || str(&self.names[kept - 1]) != str(&self.names[i]) {
                self.names.swap(kept, i);
                kept += 1;
            }
        }
        if kept - start > MAX_LABELS {
            self.names.truncate(start);
            return None;
        }
        self.names.truncate(kept);
        Some(start as u32..kept as u32)
    }

    fn add_file(&mut self, path: &str, mtime: f64, doc: &Exposition) {
        let file = self.files.len() as u32;
        let path = self.push(path);
        self.files.push(FileRow { path, mtime });
        for family in doc.families() {
            let name = self.push(family.name());
            let help = family.help().map(|help| self.push(help));
            let index = self.families.len() as u32;
            let first = self.metrics.len() as u32;
            for metric in family.metrics() {
                let labels = self.labels.len();
                for (name, value) in metric.labels() {
                    let pair = (self.push(name), self.push(value));
                    self.labels.push(pair);
                }
                let (text, own) = (&self.text, &mut self.labels[labels..]);
                let name_of = |span: &Span| {
                    text.get(span.start as usize..span.end as usize)
                        .unwrap_or_default()
                };
                own.sort_unstable_by(|a, b| name_of(&a.0).cmp(name_of(&b.0)));
                let points = self.points.len();
                let (value, count, sum) = match metric.value() {
                    Value::Sample(value) => (value, 0.0, 0.0),
                    Value::Summary {
                        count,
                        sum,
                        quantiles: points,
                    }
                    | Value::Histogram {
                        count,
                        sum,
                        buckets: points,
                    } => {
                        for (seq, (bound, value)) in points.enumerate() {
                            let seq = seq as u32;
                            self.points.push(Point { bound, value, seq });
                        }
                        // node_exporter reads a missing count or sum as 0.
                        (0.0, count.unwrap_or(0.0), sum.unwrap_or(0.0))
                    }
                };
                self.one_point_per_bound(points);
                self.metrics.push(MetricRow {
                    family: index,
                    labels: labels as u32..self.labels.len() as u32,
                    value,
                    count,
                    sum,
                    points: points as u32..self.points.len() as u32,
                });
            }
            let union = self.add_union(first as usize);
            self.families.push(FamilyRow {
                name,
                help,
                kind: family.kind(),
                file,
                metrics: first..self.metrics.len() as u32,
                union,
            });
        }
    }

    /// Sorts the points from `start` by bound and keeps the last of each bound, as
    /// node_exporter's map from bound to value does (`-0` and `0` are one bound).
    fn one_point_per_bound(&mut self, start: usize) {
        let Some(points) = self.points.get_mut(start..) else {
            return;
        };
        points.sort_unstable_by(|a, b| {
            // Bounds are never NaN: the parser drops those.
            a.bound
                .partial_cmp(&b.bound)
                .unwrap_or(Ordering::Equal)
                .then(a.seq.cmp(&b.seq))
        });
        let mut kept = start;
        for i in start..self.points.len() {
            let bound = self.points[i].bound;
            if self
                .points
                .get(i + 1)
                .is_none_or(|next| next.bound != bound)
            {
                self.points.swap(kept, i);
                kept += 1;
            }
        }
        self.points.truncate(kept);
    }

    /// Writes metric `m` as the series of a family of type `kind`.
    fn write_metric(&self, family: &mut FamilyWriter<'_>, m: u32, kind: MetricType) {
        let metric = self.metric(m);
        let labels = self.labels(metric);
        match kind {
            MetricType::Counter | MetricType::Gauge | MetricType::Untyped => {
                with_labels(family.series(), labels.clone()).value(metric.value);
            }
            MetricType::Summary => {
                for point in self.points(metric) {
                    with_labels(family.series(), labels.clone())
                        .label("quantile", GoFloat(point.bound))
                        .value(point.value);
                }
                with_labels(family.series_with_suffix(Suffix::Sum), labels.clone())
                    .value(metric.sum);
                with_labels(family.series_with_suffix(Suffix::Count), labels.clone())
                    .value(metric.count);
            }
            MetricType::Histogram => {
                let points = self.points(metric);
                for point in points {
                    with_labels(family.series_with_suffix(Suffix::Bucket), labels.clone())
                        .label("le", GoFloat(point.bound))
                        .value(point.value);
                }
                if !points.iter().any(|p| p.bound == f64::INFINITY) {
                    with_labels(family.series_with_suffix(Suffix::Bucket), labels.clone())
                        .label("le", GoFloat(f64::INFINITY))
                        .value(metric.count);
                }
                with_labels(family.series_with_suffix(Suffix::Sum), labels.clone())
                    .value(metric.sum);
                with_labels(family.series_with_suffix(Suffix::Count), labels.clone())
                    .value(metric.count);
            }
        }
    }
}

/// `series` with `labels` added.
fn with_labels<'w, 'l>(
    mut series: SeriesWriter<'w>,
    labels: impl Iterator<Item = (&'l str, &'l str)>,
) -> SeriesWriter<'w> {
    for (name, value) in labels {
        series = series.label(name, value);
    }
    series
}

/// The problems of a cycle, kept as keyed hashes of their messages: one is logged
/// as a warning the first cycle it appears, at debug level while it lasts, so that
/// a broken file is reported once, not every `collection_interval`.
#[derive(Default)]
struct Problems {
    key: RandomState,
    previous: HashSet<u64>,
    current: HashSet<u64>,
}

impl Problems {
    fn begin(&mut self) {
        std::mem::swap(&mut self.previous, &mut self.current);
        self.current.clear();
    }

    fn report(&mut self, message: fmt::Arguments<'_>) {
        let mut hasher = HashWriter(self.key.build_hasher());
        // Hashing cannot fail.
        let _ = fmt::write(&mut hasher, message);
        let hash = hasher.0.finish();
        if !self.current.insert(hash) {
            return;
        }
        if self.previous.contains(&hash) {
            log::debug!("{message} (still)");
        } else {
            log::warn!("{message}");
        }
    }
}

/// Feeds formatted text to a hasher, to hash a message without building it.
struct HashWriter<H>(H);

impl<H: Hasher> fmt::Write for HashWriter<H> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
