//! Prometheus text exposition format 0.0.4, as node_exporter serves it.

use crate::batch::Batch;
use crate::relabel::Selected;
use std::io::Write;

/// Appends the batch to `out`: per family a HELP and a TYPE line, then its series
/// (a histogram's or summary's under their own names: `_bucket`, `_sum`, `_count`).
/// Families without series are left out, as node_exporter leaves them out.
pub fn write(batch: &Batch, out: &mut Vec<u8>) {
    write_selected(&Selected::all(batch), out);
}

/// [`write`] for what the relabel stage decided: the series sent, with their labels
/// as sent. A series that relabeling renamed is written under its new name in its
/// family's block (the text format takes it; its HELP and TYPE stay the family's).
pub fn write_selected(selected: &Selected<'_>, out: &mut Vec<u8>) {
    for family in selected.families().filter(|f| !f.is_empty()) {
        let name = family.name();
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        escape(family.help(), false, out);
        out.extend_from_slice(b"\n# TYPE ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(family.kind().as_str().as_bytes());
        out.push(b'\n');
        for series in family.series() {
            out.extend_from_slice(series.name().as_bytes());
            let mut separator = b'{';
            for (label, value) in series.labels() {
                out.push(separator);
                separator = b',';
                out.extend_from_slice(label.as_bytes());
                out.extend_from_slice(b"=\"");
                escape(value, true, out);
                out.push(b'"');
            }
            if separator == b',' {
                out.push(b'}');
            }
            out.push(b' ');
            write_value(series.value(), out);
            out.push(b'\n');
        }
    }
}

/// Escapes `\` and newlines (and `"` inside label values).
fn escape(text: &str, quote: bool, out: &mut Vec<u8>) {
    for &byte in text.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            _ => out.push(byte),
        }
    }
}

/// Writes a float the way Prometheus parses it back exactly.
pub fn write_value(value: f64, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = if value.is_nan() {
        out.write_all(b"NaN")
    } else if value.is_infinite() {
        out.write_all(if value > 0.0 { b"+Inf" } else { b"-Inf" })
    } else if value != 0.0 && (value.abs() >= 1e21 || value.abs() < 1e-6) {
        // Rust prints the shortest digits that read back exactly; switch to an exponent
        // where the plain form would run to dozens of digits.
        write!(out, "{value:e}")
    } else {
        write!(out, "{value}")
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Kind, Suffix};

    fn render(batch: &Batch) -> String {
        let mut out = Vec::new();
        write(batch, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_help_type_and_sorted_labels() {
        let mut batch = Batch::new();
        batch.set_common_labels(vec![("job".into(), "node".into())]);
        batch.begin(0);
        batch
            .family("node_load1", "1m load average.", Kind::Gauge)
            .sample(&[], 0.25);
        batch
            .family(
                "node_cpu_seconds_total",
                "Seconds the CPUs spent in each mode.",
                Kind::Counter,
            )
            .sample(&[("mode", "idle"), ("cpu", "0")], 12.5);
        assert_eq!(
            render(&batch),
            "# HELP node_load1 1m load average.\n\
             # TYPE node_load1 gauge\n\
             node_load1{job=\"node\"} 0.25\n\
             # HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{cpu=\"0\",job=\"node\",mode=\"idle\"} 12.5\n"
        );
    }

    #[test]
    fn series_without_labels_has_no_braces() {
        let mut batch = Batch::new();
        batch.begin(0);
        batch.family("up", "h", Kind::Gauge).sample(&[], 1.0);
        assert!(render(&batch).ends_with("\nup 1\n"));
    }

    #[test]
    fn escapes_help_and_label_values() {
        let mut batch = Batch::new();
        batch.begin(0);
        batch
            .family("m", "a \\ b\nc \"q\"", Kind::Gauge)
            .sample(&[("path", "C:\\x\n\"y\"")], 1.0);
        let text = render(&batch);
        assert!(text.contains("# HELP m a \\\\ b\\nc \"q\"\n"), "{text}");
        assert!(
            text.contains("m{path=\"C:\\\\x\\n\\\"y\\\"\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn writes_histograms_under_their_series_names() {
        let mut batch = Batch::new();
        batch.begin(0);
        let mut family = batch.family("h", "Latency.", Kind::Histogram);
        family
            .series_with_suffix(Suffix::Bucket)
            .label("le", "+Inf")
            .value(2.0);
        family.series_with_suffix(Suffix::Sum).value(0.5);
        family.series_with_suffix(Suffix::Count).value(2.0);
        assert_eq!(
            render(&batch),
            "# HELP h Latency.\n\
             # TYPE h histogram\n\
             h_bucket{le=\"+Inf\"} 2\n\
             h_sum 0.5\n\
             h_count 2\n"
        );
    }

    #[test]
    fn skips_empty_families() {
        let mut batch = Batch::new();
        batch.begin(0);
        batch.family("empty", "h", Kind::Gauge);
        assert_eq!(render(&batch), "");
    }

    #[test]
    fn formats_values_prometheus_reads_back() {
        let cases: [(f64, &str); 9] = [
            (0.0, "0"),
            (3.0, "3"),
            (-2.5, "-2.5"),
            (1.8446744073709552e19, "18446744073709552000"),
            (1e21, "1e21"),
            (1.5e-7, "1.5e-7"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (value, expected) in cases {
            let mut out = Vec::new();
            write_value(value, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
            if value.is_finite() {
                assert_eq!(expected.parse::<f64>().unwrap(), value);
            }
        }
    }
}
