//! The parser: expfmt's `TextParser` state machine, ported line by line over a
//! borrowed buffer into an [`Exposition`].
//!
//! Each state of the Go parser is a method here, with the same notion of "the
//! current byte" (the last one read), so that the edge cases fall out as expfmt's
//! do: only space and tab are blanks (a `\r` before the newline is part of the
//! value, which then does not parse), the input must end with a newline, blanks
//! after a value announce a timestamp, a value may follow a name or `}` without a
//! blank (`m-1` is `m` at -1), and a sample line whose name ends in `_count`, `_sum`
//! or `_bucket` belongs to the summary or histogram of the base name if that family
//! is already typed so. Every method leaves the cursor on the line's newline.

use super::document::{Exposition, LabelData, MetricData, MetricType, PointData, Span, NONE};
use super::error::{quoted, quoted_byte, Error};
use super::float::{parse_float, parse_timestamp};
use super::{MAX_INPUT_BYTES, MAX_LABELS, MAX_LINE_BYTES};
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;

/// Separates names and values in a signature hash: a byte no UTF-8 text contains.
const SEPARATOR: u8 = 0xff;

impl Exposition {
    /// Parses `input` (text format 0.0.4), replacing what the exposition held. On
    /// error the exposition is left empty.
    pub fn parse(&mut self, input: &[u8]) -> Result<(), Error> {
        self.clear();
        if input.len() > MAX_INPUT_BYTES {
            return Err(Error::new(
                0,
                0,
                format!(
                    "{} bytes is more than the {MAX_INPUT_BYTES} bytes an exposition may hold",
                    input.len()
                ),
            ));
        }
        let result = Parser {
            input,
            pos: 0,
            byte: 0,
            line: 0,
            line_start: 0,
            doc: self,
            family: 0,
            is_count: false,
            is_sum: false,
            quantile: f64::NAN,
            bucket: f64::NAN,
            line_labels: 0,
            line_text: 0,
        }
        .run();
        if result.is_err() {
            self.clear();
        }
        result
    }

    /// The family named `name`, looked up by keyed hash; a different name under the
    /// same hash (one in 2^64) is found by a scan instead.
    fn find_family(&self, name: &[u8]) -> Option<u32> {
        let &index = self.by_name.get(&self.key.hash_one(name))?;
        let is_named =
            |family: &super::document::FamilyData| self.str(family.name).as_bytes() == name;
        if self.families.get(index as usize).is_some_and(is_named) {
            return Some(index);
        }
        self.families.iter().position(is_named).map(|i| i as u32)
    }

    fn add_family(&mut self, name: &str) -> u32 {
        let index = self.families.len() as u32;
        let name_span = self.push(name);
        self.families.push(super::document::FamilyData {
            name: name_span,
            help: None,
            kind: None,
            first: NONE,
            last: NONE,
            len: 0,
        });
        let hash = self.key.hash_one(name.as_bytes());
        self.by_name.entry(hash).or_insert(index);
        index
    }

    fn push(&mut self, text: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(text);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    /// Pushes `text` with its escapes (`\\`, `\"`, `\n`, already checked) resolved.
    fn push_unescaped(&mut self, text: &str) -> Span {
        let start = self.text.len() as u32;
        let mut rest = text;
        while let Some((before, after)) = rest.split_once('\\') {
            self.text.push_str(before);
            let mut chars = after.chars();
            match chars.next() {
                Some('n') => self.text.push('\n'),
                Some(escaped) => self.text.push(escaped),
                None => {}
            }
            rest = chars.as_str();
        }
        self.text.push_str(rest);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    /// Appends a metric to family `family`'s list.
    fn add_metric(&mut self, family: u32, labels: Range<usize>) -> u32 {
        let index = self.metrics.len() as u32;
        self.metrics.push(MetricData {
            family,
            labels: labels.start as u32..labels.end as u32,
            next: NONE,
            timestamp_ms: None,
            value: 0.0,
            count: None,
            sum: None,
            first_point: NONE,
            last_point: NONE,
        });
        if let Some(family) = self.families.get_mut(family as usize) {
            match self.metrics.get_mut(family.last as usize) {
                Some(last) => last.next = index,
                None => family.first = index,
            }
            family.last = index;
            family.len += 1;
        }
        index
    }

    /// Appends a quantile or bucket to metric `metric`'s list.
    fn add_point(&mut self, metric: u32, bound: f64, value: f64) {
        let index = self.points.len() as u32;
        self.points.push(PointData {
            bound,
            value,
            next: NONE,
        });
        if let Some(metric) = self.metrics.get_mut(metric as usize) {
            match self.points.get_mut(metric.last_point as usize) {
                Some(last) => last.next = index,
                None => metric.first_point = index,
            }
            metric.last_point = index;
        }
    }

    /// Whether metric `metric` has exactly the labels `labels` (in any order).
    fn has_labels(&self, metric: &MetricData, labels: &[LabelData]) -> bool {
        let own = self
            .labels
            .get(metric.labels.start as usize..metric.labels.end as usize)
            .unwrap_or_default();
        own.len() == labels.len()
            && labels.iter().all(|label| {
                own.iter().any(|o| {
                    self.str(o.name) == self.str(label.name)
                        && self.str(o.value) == self.str(label.value)
                })
            })
    }
}

type Step = Result<(), Error>;

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn is_label_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_label_name_continuation(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn is_metric_name_start(byte: u8) -> bool {
    is_label_name_start(byte) || byte == b':'
}

fn is_metric_name_continuation(byte: u8) -> bool {
    is_label_name_continuation(byte) || byte == b':'
}

/// `name` without `suffix`, if that leaves something.
fn base_name<'n>(name: &'n [u8], suffix: &[u8]) -> Option<&'n [u8]> {
    name.strip_suffix(suffix).filter(|base| !base.is_empty())
}

struct Parser<'i, 'd> {
    input: &'i [u8],
    /// The index of the next byte to read: the current byte is the one before.
    pos: usize,
    byte: u8,
    line: usize,
    line_start: usize,
    doc: &'d mut Exposition,
    /// The family of the current line.
    family: u32,
    /// The line is a `_count` or `_sum` of the summary or histogram `family`.
    is_count: bool,
    is_sum: bool,
    /// The line's `quantile` (summaries) or `le` (histograms); NaN if none.
    quantile: f64,
    bucket: f64,
    /// Where the line's labels and their text start, to drop them when a summary's
    /// or histogram's line belongs to a metric already there.
    line_labels: usize,
    line_text: usize,
}

impl<'i> Parser<'i, '_> {
    /// An error at the input's byte `at`.
    fn error_at(&self, at: usize, message: String) -> Error {
        Error::new(self.line, at.saturating_sub(self.line_start) + 1, message)
    }

    /// An error at the current byte.
    fn error(&self, message: String) -> Error {
        self.error_at(self.pos.saturating_sub(1), message)
    }

    /// Reads the next byte into `self.byte`.
    fn read(&mut self) -> Step {
        if self.pos - self.line_start > MAX_LINE_BYTES {
            return Err(Error::new(
                self.line,
                0,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let Some(&byte) = self.input.get(self.pos) else {
            return Err(self.error_at(self.pos, "unexpected end of input stream".into()));
        };
        self.pos += 1;
        self.byte = byte;
        Ok(())
    }

    fn skip_blanks(&mut self) -> Step {
        loop {
            self.read()?;
            if !is_blank(self.byte) {
                return Ok(());
            }
        }
    }

    fn skip_blanks_if_blank(&mut self) -> Step {
        if is_blank(self.byte) {
            self.skip_blanks()
        } else {
            Ok(())
        }
    }

    /// The current byte and the ones after it up to a blank or newline.
    fn token_until_whitespace(&mut self) -> Result<Range<usize>, Error> {
        let start = self.pos - 1;
        while !is_blank(self.byte) && self.byte != b'\n' {
            self.read()?;
        }
        Ok(start..self.pos - 1)
    }

    /// The current byte and the ones after it up to the newline.
    fn token_until_newline(&mut self) -> Result<Range<usize>, Error> {
        let start = self.pos - 1;
        while self.byte != b'\n' {
            self.read()?;
        }
        Ok(start..self.pos - 1)
    }

    /// A metric name from the current byte on; empty if it cannot start one.
    fn metric_name(&mut self) -> Result<Range<usize>, Error> {
        let start = self.pos - 1;
        if is_metric_name_start(self.byte) {
            loop {
                self.read()?;
                if !is_metric_name_continuation(self.byte) {
                    break;
                }
            }
        }
        Ok(start..self.pos - 1)
    }

    fn label_name(&mut self) -> Result<Range<usize>, Error> {
        let start = self.pos - 1;
        if is_label_name_start(self.byte) {
            loop {
                self.read()?;
                if !is_label_name_continuation(self.byte) {
                    break;
                }
            }
        }
        Ok(start..self.pos - 1)
    }

    fn bytes(&self, range: Range<usize>) -> &'i [u8] {
        let input: &'i [u8] = self.input;
        input.get(range).unwrap_or_default()
    }

    /// The current family's name, quoted for a message.
    fn family_name(&self) -> String {
        let name = self
            .doc
            .families
            .get(self.family as usize)
            .map_or("", |family| self.doc.str(family.name));
        quoted(name.as_bytes())
    }

    /// The error for the escape sequence ending at the current byte.
    fn invalid_escape(&self) -> Error {
        let sequence = if self.byte.is_ascii_graphic() {
            format!("'\\{}'", char::from(self.byte))
        } else {
            format!("'\\' followed by {}", quoted_byte(self.byte))
        };
        self.error(format!("invalid escape sequence {sequence}"))
    }

    fn run(&mut self) -> Step {
        loop {
            self.line += 1;
            self.line_start = self.pos;
            // Blanks before the line's first byte; the input may end here.
            loop {
                if self.pos == self.input.len() {
                    return Ok(());
                }
                self.read()?;
                if !is_blank(self.byte) {
                    break;
                }
            }
            match self.byte {
                b'#' => self.comment()?,
                b'\n' => {}
                b'{' => {
                    return Err(self.error(
                        "invalid metric name: a line starts with the name \
                         (quoted names inside braces are not supported)"
                            .into(),
                    ))
                }
                _ => self.sample()?,
            }
        }
    }

    /// After `#`: `HELP` or `TYPE` lines; anything else is a comment.
    fn comment(&mut self) -> Step {
        self.skip_blanks()?;
        if self.byte == b'\n' {
            return Ok(());
        }
        let keyword = self.token_until_whitespace()?;
        if self.byte == b'\n' {
            return Ok(());
        }
        let keyword = self.bytes(keyword);
        let help = match keyword {
            b"HELP" => true,
            b"TYPE" => false,
            _ => {
                self.token_until_newline()?;
                return Ok(());
            }
        };
        self.skip_blanks()?;
        let name = self.metric_name()?;
        if self.byte == b'\n' {
            return Ok(());
        }
        if !is_blank(self.byte) {
            return Err(self.error("invalid metric name in comment".into()));
        }
        self.set_family(name);
        self.skip_blanks()?;
        if self.byte == b'\n' {
            return Ok(());
        }
        if help {
            self.help()
        } else {
            self.type_line()
        }
    }

    /// Finds or creates the family a name belongs to: itself, or the summary or
    /// histogram it is the `_count`, `_sum` (or `_bucket`) of.
    fn set_family(&mut self, name: Range<usize>) {
        self.is_count = false;
        self.is_sum = false;
        let name = self.input.get(name).unwrap_or_default();
        if let Some(family) = self.doc.find_family(name) {
            self.family = family;
            return;
        }
        let count = base_name(name, b"_count");
        let sum = base_name(name, b"_sum");
        let bucket = base_name(name, b"_bucket");
        let typed = |base: Option<&[u8]>, kind| {
            let family = self.doc.find_family(base?)?;
            let data = self.doc.families.get(family as usize)?;
            (data.kind == Some(kind)).then_some(family)
        };
        let belongs = typed(count.or(sum), MetricType::Summary)
            .or_else(|| typed(count.or(sum).or(bucket), MetricType::Histogram));
        if let Some(family) = belongs {
            self.family = family;
            self.is_count = count.is_some();
            self.is_sum = sum.is_some();
            return;
        }
        // Names are ASCII by their grammar.
        let name = std::str::from_utf8(name).unwrap_or_default();
        self.family = self.doc.add_family(name);
    }

    fn help(&mut self) -> Step {
        let family = self.family as usize;
        if self
            .doc
            .families
            .get(family)
            .is_some_and(|f| f.help.is_some())
        {
            let name = self.family_name();
            return Err(self.error(format!("second HELP line for metric name {name}")));
        }
        let start = self.pos - 1;
        while self.byte != b'\n' {
            if self.byte == b'\\' {
                self.read()?;
                if !matches!(self.byte, b'\\' | b'n' | b'"') {
                    return Err(self.invalid_escape());
                }
            }
            self.read()?;
        }
        let raw = self.bytes(start..self.pos - 1);
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(self.error_at(start, "HELP text is not valid UTF-8".into()));
        };
        let span = self.doc.push_unescaped(text);
        if let Some(family) = self.doc.families.get_mut(family) {
            family.help = Some(span);
        }
        Ok(())
    }

    fn type_line(&mut self) -> Step {
        let family = self.family as usize;
        if self
            .doc
            .families
            .get(family)
            .is_some_and(|f| f.kind.is_some())
        {
            let name = self.family_name();
            return Err(self.error(format!(
                "second TYPE line for metric name {name}, or TYPE reported after samples"
            )));
        }
        let token = self.token_until_newline()?;
        let text = self.bytes(token.clone());
        let Some(kind) = MetricType::from_name(text) else {
            return Err(self.error_at(token.start, format!("unknown metric type {}", quoted(text))));
        };
        if let Some(family) = self.doc.families.get_mut(family) {
            family.kind = Some(kind);
        }
        Ok(())
    }

    fn sample(&mut self) -> Step {
        let name = self.metric_name()?;
        if name.is_empty() {
            return Err(self.error("invalid metric name".into()));
        }
        self.set_family(name);
        let kind = match self.doc.families.get_mut(self.family as usize) {
            Some(family) => *family.kind.get_or_insert(MetricType::Untyped),
            None => MetricType::Untyped,
        };
        self.skip_blanks_if_blank()?;
        self.quantile = f64::NAN;
        self.bucket = f64::NAN;
        self.line_labels = self.doc.labels.len();
        self.line_text = self.doc.text.len();
        if self.byte == b'{' {
            self.labels(kind)?;
        }
        self.value(kind)
    }

    /// From `{` to the first byte after `}` and the blanks after it.
    fn labels(&mut self, kind: MetricType) -> Step {
        let mut count = 0;
        loop {
            self.skip_blanks()?;
            if self.byte == b'}' {
                return self.skip_blanks();
            }
            let name_start = self.pos - 1;
            let name = self.label_name()?;
            if name.is_empty() {
                let family = self.family_name();
                return Err(self.error(format!("invalid label name for metric {family}")));
            }
            self.skip_blanks_if_blank()?;
            if self.byte != b'=' {
                return Err(self.error(format!(
                    "expected '=' after label name, found {}",
                    quoted_byte(self.byte)
                )));
            }
            let name = self.bytes(name);
            if name == b"__name__" {
                return Err(self.error_at(name_start, "label name \"__name__\" is reserved".into()));
            }
            count += 1;
            if count > MAX_LABELS {
                return Err(self.error_at(name_start, format!("more than {MAX_LABELS} labels")));
            }
            // A summary's quantile and a histogram's le are not labels of the metric.
            let special = (kind == MetricType::Summary && name == b"quantile")
                || (kind == MetricType::Histogram && name == b"le");
            let line_labels = self.doc.labels.get(self.line_labels..).unwrap_or_default();
            if !special
                && line_labels
                    .iter()
                    .any(|label| self.doc.str(label.name).as_bytes() == name)
            {
                let family = self.family_name();
                return Err(self.error_at(
                    name_start,
                    format!("duplicate label names for metric {family}"),
                ));
            }
            self.skip_blanks()?;
            if self.byte != b'"' {
                return Err(self.error(format!(
                    "expected '\"' at start of label value, found {}",
                    quoted_byte(self.byte)
                )));
            }
            let value_range = self.label_value()?;
            let raw = self.bytes(value_range.clone());
            let Ok(value) = std::str::from_utf8(raw) else {
                return Err(self.error_at(
                    value_range.start,
                    format!("invalid label value {}", quoted(raw)),
                ));
            };
            if special {
                // An escape leaves no float, unescaped or not.
                let what = if kind == MetricType::Summary {
                    "quantile"
                } else {
                    "le"
                };
                let Some(bound) = parse_float(raw) else {
                    return Err(self.error_at(
                        value_range.start,
                        format!(
                            "expected float as value for '{what}' label, got {}",
                            quoted(raw)
                        ),
                    ));
                };
                if kind == MetricType::Summary {
                    self.quantile = bound;
                } else {
                    self.bucket = bound;
                }
            } else {
                // Label names are ASCII by their grammar.
                let name = self.doc.push(std::str::from_utf8(name).unwrap_or_default());
                let value = self.doc.push_unescaped(value);
                self.doc.labels.push(LabelData { name, value });
            }
            self.skip_blanks()?;
            match self.byte {
                b',' => {}
                b'}' => return self.skip_blanks(),
                _ => {
                    return Err(self.error(format!("unexpected end of label value {}", quoted(raw))))
                }
            }
        }
    }

    /// After the opening quote, up to the closing one (the current byte after).
    fn label_value(&mut self) -> Result<Range<usize>, Error> {
        let start = self.pos;
        loop {
            self.read()?;
            match self.byte {
                b'"' => return Ok(start..self.pos - 1),
                b'\n' => {
                    let so_far = quoted(self.bytes(start..self.pos - 1));
                    return Err(
                        self.error(format!("label value {so_far} contains unescaped new-line"))
                    );
                }
                b'\\' => {
                    self.read()?;
                    if !matches!(self.byte, b'"' | b'\\' | b'n') {
                        return Err(self.invalid_escape());
                    }
                }
                _ => {}
            }
        }
    }

    /// The metric a summary's or histogram's line adds to: the one with the same
    /// labels (`quantile` and `le` aside), or a new one.
    fn metric_by_signature(&mut self) -> u32 {
        let doc = &mut *self.doc;
        let labels = doc.labels.get(self.line_labels..).unwrap_or_default();
        doc.sorted.clear();
        doc.sorted
            .extend(self.line_labels as u32..doc.labels.len() as u32);
        let (text, all) = (&doc.text, &doc.labels);
        let name_of = |i: &u32| {
            all.get(*i as usize)
                .and_then(|l| text.get(l.name.start as usize..l.name.end as usize))
                .unwrap_or_default()
        };
        doc.sorted
            .sort_unstable_by(|a, b| name_of(a).cmp(name_of(b)));
        let mut hasher = doc.key.build_hasher();
        hasher.write_u32(self.family);
        for i in &doc.sorted {
            if let Some(label) = all.get(*i as usize) {
                hasher.write(doc.str(label.name).as_bytes());
                hasher.write_u8(SEPARATOR);
                hasher.write(doc.str(label.value).as_bytes());
                hasher.write_u8(SEPARATOR);
            }
        }
        let hash = hasher.finish();
        let family = self.family;
        let matches = |index: u32| {
            doc.metrics
                .get(index as usize)
                .is_some_and(|m| m.family == family && doc.has_labels(m, labels))
        };
        // The same hash for another family's metric, or for other labels, is a
        // collision (one in 2^64): then the family's metrics are scanned.
        let mut existing = doc.by_signature.get(&hash).copied().filter(|&i| matches(i));
        if existing.is_none() && doc.by_signature.contains_key(&hash) {
            let first = doc.families.get(family as usize).map_or(NONE, |f| f.first);
            let mut next = first;
            while let Some(metric) = doc.metrics.get(next as usize) {
                if matches(next) {
                    existing = Some(next);
                    break;
                }
                next = metric.next;
            }
        }
        if let Some(index) = existing {
            doc.labels.truncate(self.line_labels);
            doc.text.truncate(self.line_text);
            return index;
        }
        let index = doc.add_metric(self.family, self.line_labels..doc.labels.len());
        doc.by_signature.entry(hash).or_insert(index);
        index
    }

    /// The sample value, then a timestamp if blanks follow it.
    fn value(&mut self, kind: MetricType) -> Step {
        let metric = match kind {
            MetricType::Summary | MetricType::Histogram => self.metric_by_signature(),
            _ => self
                .doc
                .add_metric(self.family, self.line_labels..self.doc.labels.len()),
        };
        let token = self.token_until_whitespace()?;
        let text = self.bytes(token.clone());
        let Some(value) = parse_float(text) else {
            return Err(self.error_at(
                token.start,
                format!("expected float as value, got {}", quoted(text)),
            ));
        };
        let counted = matches!(kind, MetricType::Summary | MetricType::Histogram);
        if counted && self.is_count && value < 0.0 {
            return Err(self.negative(token.start, "count", kind));
        }
        let point = match kind {
            MetricType::Summary => self.quantile,
            MetricType::Histogram => self.bucket,
            _ => f64::NAN,
        };
        let is_point = counted && !self.is_count && !self.is_sum && !point.is_nan();
        if is_point && kind == MetricType::Histogram && value < 0.0 {
            return Err(self.negative(token.start, "bucket population", kind));
        }
        if is_point {
            self.doc.add_point(metric, point, value);
        } else if let Some(data) = self.doc.metrics.get_mut(metric as usize) {
            match (counted, self.is_count, self.is_sum) {
                (false, _, _) => data.value = value,
                (true, true, _) => data.count = Some(value),
                (true, false, true) => data.sum = Some(value),
                // A summary's or histogram's line without quantile or le: expfmt
                // keeps the metric and drops the value.
                (true, false, false) => {}
            }
        }
        if self.byte == b'\n' {
            return Ok(());
        }
        self.timestamp(metric)
    }

    fn negative(&self, at: usize, what: &str, kind: MetricType) -> Error {
        let family = self.family_name();
        self.error_at(
            at,
            format!("negative {what} for {} {family}", kind.as_str()),
        )
    }

    fn timestamp(&mut self, metric: u32) -> Step {
        self.skip_blanks()?;
        let token = self.token_until_whitespace()?;
        let text = self.bytes(token.clone());
        let Some(timestamp) = parse_timestamp(text) else {
            return Err(self.error_at(
                token.start,
                format!("expected integer as timestamp, got {}", quoted(text)),
            ));
        };
        if let Some(data) = self.doc.metrics.get_mut(metric as usize) {
            data.timestamp_ms = Some(timestamp);
        }
        self.doc.has_timestamps = true;
        let rest = self.token_until_newline()?;
        if !rest.is_empty() {
            return Err(self.error_at(
                rest.start,
                format!(
                    "spurious string after timestamp: {}",
                    quoted(self.bytes(rest))
                ),
            ));
        }
        Ok(())
    }
}
