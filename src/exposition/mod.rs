//! The Prometheus text exposition format 0.0.4, read as Prometheus' own Go parser
//! (`expfmt.TextParser` of prometheus/common) reads it.
//!
//! Text from outside the agent comes through here: the `*.prom` files of the
//! textfile collector, and later the pages of local exporters. It accepts and refuses
//! what expfmt does, with expfmt's messages, plus the position of every error (line
//! and column):
//!
//! - `# HELP name text` with the escapes `\\`, `\n` and `\"`; `# TYPE name type`
//!   with `counter`, `gauge`, `histogram`, `summary` or `untyped` in any case; each
//!   at most once per family, and TYPE before the family's first sample. Any other
//!   `#` line is a comment.
//! - Samples `name{label="value",...} value [timestamp]`: names of the legacy
//!   grammar, label values with the escapes `\\`, `\"`, `\n` and valid UTF-8, a
//!   trailing comma allowed, no `__name__` label and no label twice; values are Go
//!   floats (`NaN`, `+Inf`, `-Inf`, no hexadecimal, no `_`), timestamps integers.
//! - A line `x_count`, `x_sum` (or `x_bucket`) belongs to the summary (histogram)
//!   `x` if `x` is typed so, with `quantile` (`le`) taken out of its labels; the
//!   lines of one summary or histogram are gathered by their other labels. Samples
//!   of a family need not be adjacent: like expfmt (and Prometheus' scraper), later
//!   lines join the family of their name.
//!
//! Where it differs from expfmt, on purpose: quoted (UTF-8) names `{"a.b"}` are
//! refused, where expfmt with legacy validation reads those that are also legacy
//! names; `gauge_histogram` is not a type (node_exporter would panic on it); a HELP
//! text must be UTF-8; a negative count is refused for summaries too, not only for
//! histograms (a negative count became a huge integer in older expfmt); counts are
//! kept as written, not converted to integers.
//!
//! The input, its lines and the labels of a sample are bounded (below); the
//! [`Exposition`] parsed into holds at most a few times the input, in buffers reused
//! from one parse to the next.

mod document;
mod error;
mod float;
mod parser;

pub use document::{Exposition, Family, Metric, MetricType, Points, Value};
pub use error::Error;
pub use float::{parse_float, parse_timestamp, GoFloat};

/// The largest input parsed. A textfile is a few kilobytes (a cron job's status, a
/// few dozen series); a local exporter's page rarely passes 200 KiB (node_exporter
/// on a large host). 1 MiB holds about 15,000 series and bounds what one input can
/// make the agent hold.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// The longest line, newline excluded. Real lines are a sample with a few short
/// labels (under 1 KiB even with long paths or HELP texts); 64 KiB stays far above
/// them and keeps a line without a newline from being scanned further.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The most labels one sample may carry, `le` and `quantile` included. Receivers
/// refuse far fewer (Mimir and Cortex by default 30 per series, the agent adding its
/// own); above 64 a sample is broken, and the limit bounds the per-line work.
pub const MAX_LABELS: usize = 64;

/// Parses arbitrary bytes and reads back everything parsed, twice into the same
/// [`Exposition`]: the fuzz target's body. It must never panic.
pub fn fuzz(data: &[u8]) {
    let mut doc = Exposition::new();
    for _ in 0..2 {
        if doc.parse(data).is_err() {
            assert!(doc.families().next().is_none(), "an error leaves it empty");
            continue;
        }
        for family in doc.families() {
            let _ = (family.name(), family.help(), family.kind(), family.len());
            for metric in family.metrics() {
                let _ = (metric.timestamp_ms(), metric.labels().count());
                match metric.value() {
                    Value::Sample(value) => {
                        let _ = GoFloat(value).to_string();
                    }
                    Value::Summary { quantiles, .. } => {
                        quantiles.for_each(|(q, _)| {
                            let _ = GoFloat(q).to_string();
                        });
                    }
                    Value::Histogram { buckets, .. } => {
                        buckets.for_each(|(le, _)| {
                            let _ = GoFloat(le).to_string();
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
