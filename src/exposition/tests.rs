//! The parser against expfmt's own cases (text_parse_test.go of prometheus/common,
//! as tables of input and the families read, or the error), and against the rules
//! and limits of its own.

use super::*;
use std::fmt::Write as _;

/// The families as one line each, then one line per metric: labels in input
/// order, the value or the summary/histogram parts, the timestamp.
fn render(doc: &Exposition) -> String {
    let mut out = String::new();
    for family in doc.families() {
        let help = family.help().map_or("-".to_owned(), |h| format!("{h:?}"));
        let _ = writeln!(out, "{} {} {help}", family.name(), family.kind().as_str());
        for metric in family.metrics() {
            let labels: Vec<String> = metric
                .labels()
                .map(|(name, value)| format!("{name}={value:?}"))
                .collect();
            let _ = write!(out, "  {{{}}}", labels.join(","));
            let parts = |count: Option<f64>, sum: Option<f64>, points: Points<'_>| {
                let points: Vec<String> = points.map(|(b, v)| format!("{b}:{v}")).collect();
                format!(" count={count:?} sum={sum:?} [{}]", points.join(" "))
            };
            let value = match metric.value() {
                Value::Sample(value) => format!(" {value}"),
                Value::Summary {
                    count,
                    sum,
                    quantiles,
                } => parts(count, sum, quantiles),
                Value::Histogram {
                    count,
                    sum,
                    buckets,
                } => parts(count, sum, buckets),
            };
            out.push_str(&value);
            if let Some(timestamp) = metric.timestamp_ms() {
                let _ = write!(out, " @{timestamp}");
            }
            out.push('\n');
        }
    }
    out
}

fn parsed(input: impl AsRef<[u8]>) -> String {
    let input = input.as_ref();
    let mut doc = Exposition::new();
    match doc.parse(input) {
        Ok(()) => render(&doc),
        Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(input)),
    }
}

fn error(input: &[u8]) -> Error {
    let mut doc = Exposition::new();
    match doc.parse(input) {
        Ok(()) => panic!(
            "{:?} parsed:\n{}",
            String::from_utf8_lossy(input),
            render(&doc)
        ),
        Err(e) => {
            assert!(doc.families().next().is_none(), "an error leaves nothing");
            e
        }
    }
}

#[test]
fn reads_expfmts_scenarios() {
    let cases: &[(&str, &str)] = &[
        // 0: empty lines.
        ("\n\n", ""),
        // 1: minimal, a timestamp, `{}`, a HELP of a family without samples.
        (
            "\nminimal_metric 1.234\nanother_metric -3e3 103948\n# Even that:\nno_labels{} 3\n\
             # HELP line for non-existing metric will be ignored.\n",
            "minimal_metric untyped -\n  {} 1.234\n\
             another_metric untyped -\n  {} -3000 @103948\n\
             no_labels untyped -\n  {} 3\n",
        ),
        // 2: counters and gauges, HELP escapes, blanks everywhere, a trailing comma.
        (
            "\n# A normal comment.\n#\n# TYPE name counter\n\
             name{labelname=\"val1\",basename=\"basevalue\"} NaN\n\
             name {labelname=\"val2\",basename=\"base\\\"v\\\\al\\nue\"} 0.23 1234567890\n\
             # HELP name two-line\\n doc  str\\\\ing\n\n \
             # HELP  name2  \tdoc str\"ing 2\n  #    TYPE    name2 gauge\n\
             name2{labelname=\"val2\"\t,basename   =   \"basevalue2\"\t\t} +Inf 54321\n\
             name2{ labelname = \"val1\" , }-Inf\n",
            "name counter \"two-line\\n doc  str\\\\ing\"\n\
             \x20 {labelname=\"val1\",basename=\"basevalue\"} NaN\n\
             \x20 {labelname=\"val2\",basename=\"base\\\"v\\\\al\\nue\"} 0.23 @1234567890\n\
             name2 gauge \"doc str\\\"ing 2\"\n\
             \x20 {labelname=\"val2\",basename=\"basevalue2\"} inf @54321\n\
             \x20 {labelname=\"val1\"} -inf\n",
        ),
        // 3: the evil summary, its lines mixed with others; latest timestamp wins.
        (
            "\n# TYPE my_summary summary\n\
             my_summary{n1=\"val1\",quantile=\"0.5\"} 110\n\
             decoy -1 -2\n\
             my_summary{n1=\"val1\",quantile=\"0.9\"} 140 1\n\
             my_summary_count{n1=\"val1\"} 42\n\
             # Latest timestamp wins in case of a summary.\n\
             my_summary_sum{n1=\"val1\"} 4711 2\n\
             fake_sum{n1=\"val1\"} 2001\n\
             # TYPE another_summary summary\n\
             another_summary_count{n2=\"val2\",n1=\"val1\"} 20\n\
             my_summary_count{n2=\"val2\",n1=\"val1\"} 5 5\n\
             another_summary{n1=\"val1\",n2=\"val2\",quantile=\".3\"} -1.2\n\
             my_summary_sum{n1=\"val2\"} 08 15\n\
             my_summary{n1=\"val3\", quantile=\"0.2\"} 4711\n  \
             my_summary{n1=\"val1\",n2=\"val2\",quantile=\"-12.34\",} NaN\n\
             # some\n# funny comments\n# HELP\n# HELP\n# HELP my_summary\n# HELP my_summary\n",
            "my_summary summary -\n\
             \x20 {n1=\"val1\"} count=Some(42.0) sum=Some(4711.0) [0.5:110 0.9:140] @2\n\
             \x20 {n2=\"val2\",n1=\"val1\"} count=Some(5.0) sum=None [-12.34:NaN] @5\n\
             \x20 {n1=\"val2\"} count=None sum=Some(8.0) [] @15\n\
             \x20 {n1=\"val3\"} count=None sum=None [0.2:4711]\n\
             decoy untyped -\n  {} -1 @-2\n\
             fake_sum untyped -\n  {n1=\"val1\"} 2001\n\
             another_summary summary -\n\
             \x20 {n2=\"val2\",n1=\"val1\"} count=Some(20.0) sum=None [0.3:-1.2]\n",
        ),
        // 4: the histogram.
        (
            "\n# HELP request_duration_microseconds The response latency.\n\
             # TYPE request_duration_microseconds histogram\n\
             request_duration_microseconds_bucket{le=\"100\"} 123\n\
             request_duration_microseconds_bucket{le=\"120\"} 412\n\
             request_duration_microseconds_bucket{le=\"144\"} 592\n\
             request_duration_microseconds_bucket{le=\"172.8\"} 1524\n\
             request_duration_microseconds_bucket{le=\"+Inf\"} 2693\n\
             request_duration_microseconds_sum 1.7560473e+06\n\
             request_duration_microseconds_count 2693\n",
            "request_duration_microseconds histogram \"The response latency.\"\n\
             \x20 {} count=Some(2693.0) sum=Some(1756047.3) \
             [100:123 120:412 144:592 172.8:1524 inf:2693]\n",
        ),
        // 12: float counts are kept as written (expfmt keeps them as floats too).
        (
            "# TYPE h histogram\nh_bucket{le=\"100\"} 123.5\nh_bucket{le=\"+Inf\"} 2693.9\n\
             h_sum 1.7560473e+06\nh_count 2693.9\n",
            "h histogram -\n  {} count=Some(2693.9) sum=Some(1756047.3) [100:123.5 inf:2693.9]\n",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parsed(input), *expected, "{input:?}");
    }
}

#[test]
fn refuses_what_expfmt_refuses() {
    // (input, line, the message's start), expfmt's cases in its order.
    let cases: &[(&[u8], usize, &str)] = &[
        (
            b"\nbla 3.14\nblubber 42",
            3,
            "unexpected end of input stream",
        ),
        (
            b"metric{label=\"\\t\"} 3.14",
            1,
            "invalid escape sequence '\\t'",
        ),
        (
            b"\nmetric{label=\"new\nline\"} 3.14\n",
            2,
            "label value \"new\" contains unescaped new-line",
        ),
        (
            b"metric{@=\"bla\"} 3.14",
            1,
            "invalid label name for metric \"metric\"",
        ),
        (
            b"metric{__name__=\"bla\"} 3.14",
            1,
            "label name \"__name__\" is reserved",
        ),
        (
            b"metric{label+=\"bla\"} 3.14",
            1,
            "expected '=' after label name, found '+'",
        ),
        (
            b"metric{label=bla} 3.14",
            1,
            "expected '\"' at start of label value, found 'b'",
        ),
        (
            b"\n# TYPE metric summary\nmetric{quantile=\"bla\"} 3.14\n",
            3,
            "expected float as value for 'quantile' label, got \"bla\"",
        ),
        (
            b"metric{label=\"bla\"+} 3.14",
            1,
            "unexpected end of label value \"bla\"",
        ),
        (
            b"metric{label=\"bla\"} 3.14 2.72\n",
            1,
            "expected integer as timestamp, got \"2.72\"",
        ),
        (
            b"metric{label=\"bla\"} 3.14 2 3\n",
            1,
            "spurious string after timestamp: \" 3\"",
        ),
        (
            b"metric{label=\"bla\"} blubb\n",
            1,
            "expected float as value, got \"blubb\"",
        ),
        (
            b"\n# HELP metric one\n# HELP metric two\n",
            3,
            "second HELP line for metric name \"metric\"",
        ),
        (
            b"\n# TYPE metric counter\n# TYPE metric untyped\n",
            3,
            "second TYPE line for metric name \"metric\", or TYPE reported after samples",
        ),
        (
            b"\nmetric 4.12\n# TYPE metric counter\n",
            3,
            "second TYPE line for metric name \"metric\", or TYPE reported after samples",
        ),
        (b"\n# TYPE metric bla\n", 2, "unknown metric type \"bla\""),
        (b"\n# TYPE met-ric\n", 2, "invalid metric name in comment"),
        (
            b"@invalidmetric{label=\"bla\"} 3.14 2",
            1,
            "invalid metric name",
        ),
        (b"{label=\"bla\"} 3.14 2", 1, "invalid metric name"),
        (
            b"\n# TYPE metric histogram\nmetric_bucket{le=\"bla\"} 3.14\n",
            3,
            "expected float as value for 'le' label, got \"bla\"",
        ),
        (
            b"metric{l=\"\xbd\"} 3.14\n",
            1,
            "invalid label value \"\u{fffd}\"",
        ),
        (b"foo 1_2\n", 1, "expected float as value, got \"1_2\""),
        (b"foo 0x1p-3\n", 1, "expected float as value"),
        (b"foo 0x1P-3\n", 1, "expected float as value"),
        (b"foo 0B1\n", 1, "expected float as value"),
        (b"foo 0O1\n", 1, "expected float as value"),
        (b"foo 0X1\n", 1, "expected float as value"),
        (b"foo 0x1\n", 1, "expected float as value"),
        (b"foo 0b1\n", 1, "expected float as value"),
        (b"foo 0o1\n", 1, "expected float as value"),
        (
            b"\n# TYPE metric histogram\nmetric_bucket{le=\"0x1p-3\"} 3.14\n",
            3,
            "expected float as value for 'le' label",
        ),
        (
            b"\n# TYPE metric summary\nmetric{quantile=\"0x1p-3\"} 3.14\n",
            3,
            "expected float as value for 'quantile' label",
        ),
        (
            b"metric{label=\"bla\",label=\"bla\"} 3.14",
            1,
            "duplicate label names for metric \"metric\"",
        ),
        // 35-42 are quoted names: refused here (see the module doc).
        (
            b"{\"one.name\",\"another.name\"} 3.14",
            1,
            "invalid metric name",
        ),
        (
            b"metric_name{\"foo\"=\"bar\"} 3.14\n",
            1,
            "invalid label name for metric",
        ),
        (
            b"# TYPE \"metric.name\" counter\n",
            1,
            "invalid metric name in comment",
        ),
        // 43-46: negative histogram counts.
        (
            b"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2693\nh_sum 1.7\nh_count -2693\n",
            4,
            "negative count for histogram \"h\"",
        ),
        (
            b"# TYPE h histogram\nh_bucket{le=\"100\"} 123\nh_bucket{le=\"120\"} -412\n",
            3,
            "negative bucket population for histogram \"h\"",
        ),
        (
            b"# TYPE h histogram\nh_count -2693.123\n",
            2,
            "negative count for histogram \"h\"",
        ),
        (
            b"# TYPE h histogram\nh_bucket{le=\"1\"} -412.456\n",
            2,
            "negative bucket population for histogram \"h\"",
        ),
        // 47: empty braces without a name.
        (b"{} 3.14", 1, "invalid metric name"),
    ];
    for (input, line, message) in cases {
        let e = error(input);
        assert_eq!(e.line(), *line, "{:?}: {e}", String::from_utf8_lossy(input));
        assert!(
            e.message().starts_with(message),
            "{:?}: {e}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn a_missing_metric_name_is_named_on_its_line_and_the_parser_recovers() {
    // expfmt's TestTextParseMissingMetricName.
    let prefixes = [
        "",
        "#TYPE A000000 summArY\n",
        "# TYPE metric histogram\n",
        "# HELP metric Help text.\n",
        "metric 1\n",
    ];
    let samples = [
        "{}",
        "{} 2\n",
        "{label=\"value\"} 2\n",
        "{label=\"value\",} 2\n",
    ];
    let mut doc = Exposition::new();
    for prefix in prefixes {
        for sample in samples {
            let input = format!("{prefix}{sample}");
            let e = doc.parse(input.as_bytes()).unwrap_err();
            assert!(
                e.message().starts_with("invalid metric name"),
                "{input:?}: {e}"
            );
            assert_eq!(e.line(), prefix.matches('\n').count() + 1, "{input:?}");
            doc.parse(b"valid 1\n").unwrap();
            assert_eq!(render(&doc), "valid untyped -\n  {} 1\n");
        }
    }
}

#[test]
fn errors_name_the_column() {
    let e = error(b"ok 1\nmetric{label+=\"bla\"} 3.14\n");
    assert_eq!(
        e.to_string(),
        "line 2 column 13: expected '=' after label name, found '+'"
    );
    let e = error(b"m{a=\"1\"} 1 2 3\n");
    assert_eq!(
        e.to_string(),
        "line 1 column 13: spurious string after timestamp: \" 3\""
    );
    let e = error(b"m 1\nm x\n");
    assert_eq!(
        e.to_string(),
        "line 2 column 3: expected float as value, got \"x\""
    );
    let e = error(b"m 1");
    assert_eq!(
        e.to_string(),
        "line 1 column 4: unexpected end of input stream"
    );
}

#[test]
fn whitespace_is_space_and_tab_only() {
    // A CRLF line ending leaves `\r` in the value; a blank after the value
    // announces a timestamp.
    assert_eq!(
        error(b"m 1\r\n").message(),
        "expected float as value, got \"1\\r\""
    );
    assert_eq!(
        error(b"m 1 \n").message(),
        "expected integer as timestamp, got \"\""
    );
    assert_eq!(
        error(b"# TYPE m counter \n").message(),
        "unknown metric type \"counter \""
    );
    // No blank is needed between the name or `}` and the value.
    assert_eq!(
        parsed("m-1\nn{a=\"b\"}+Inf\n"),
        "m untyped -\n  {} -1\nn untyped -\n  {a=\"b\"} inf\n"
    );
    assert_eq!(error(b"m\n").message(), "expected float as value, got \"\"");
    // Blank lines and lines of blanks are skipped, even at the end without newline.
    assert_eq!(parsed("\n \t\nm 1\n  "), "m untyped -\n  {} 1\n");
}

#[test]
fn comments_are_free_but_help_and_type_are_checked() {
    // Any bytes in a comment; `#HELP` without a blank is still HELP.
    assert_eq!(
        parsed(&b"# \xf0\x9f\x98\x80 \xff\n#HELP m  the help\n# TYPE m COUNTER\nm 1\n"[..]),
        "m counter \"the help\"\n  {} 1\n"
    );
    // HELP or TYPE with a name but nothing after it creates the family only.
    assert_eq!(
        parsed("# HELP m \n# TYPE m\nm 1\n"),
        "m untyped -\n  {} 1\n"
    );
    // HELP after samples is fine, TYPE is not.
    assert_eq!(
        parsed("m 1\n# HELP m late\n"),
        "m untyped \"late\"\n  {} 1\n"
    );
    assert_eq!(
        error(b"# HELP m a\\tb\n").message(),
        "invalid escape sequence '\\t'"
    );
    assert_eq!(
        error(b"# HELP m a\xffb\n").message(),
        "HELP text is not valid UTF-8"
    );
    assert!(error(b"# TYPE m gauge_histogram\n")
        .message()
        .starts_with("unknown metric type"));
}

#[test]
fn suffixes_belong_to_their_typed_family() {
    // HELP and TYPE of `x_count` go to the summary `x`.
    assert_eq!(
        error(b"# TYPE x summary\n# HELP x a\n# HELP x_count b\n").message(),
        "second HELP line for metric name \"x\""
    );
    assert!(error(b"# TYPE x histogram\n# TYPE x_bucket gauge\n")
        .message()
        .starts_with("second TYPE line for metric name \"x\""));
    // Untyped `x`: `x_count` is a family of its own; `_bucket` is no summary's.
    assert_eq!(
        parsed("x 1\nx_count 2\n# TYPE y summary\ny_bucket 3\n"),
        "x untyped -\n  {} 1\nx_count untyped -\n  {} 2\ny_bucket untyped -\n  {} 3\n"
    );
    // A family `x_count` seen before `x` keeps its lines.
    assert_eq!(
        parsed("x_count 5\n# TYPE x summary\nx_count 6\nx{quantile=\"0.5\"} 1\n"),
        "x_count untyped -\n  {} 5\n  {} 6\nx summary -\n  {} count=None sum=None [0.5:1]\n"
    );
    // `quantile` is an ordinary label outside summaries, `le` outside histograms.
    assert_eq!(
        parsed("# TYPE s summary\ns_sum{le=\"1\"} 2\ng{quantile=\"x\",le=\"y\"} 3\n"),
        "s summary -\n  {le=\"1\"} count=None sum=Some(2.0) []\n\
         g untyped -\n  {quantile=\"x\",le=\"y\"} 3\n"
    );
}

#[test]
fn summary_and_histogram_lines_without_their_label_keep_the_metric_only() {
    // expfmt creates the metric and drops the value; NaN bounds are no bounds.
    assert_eq!(
        parsed(
            "# TYPE h histogram\nh{a=\"1\"} 5\nh_bucket{a=\"2\"} 6\nh_bucket{a=\"3\",le=\"NaN\"} 7\n"
        ),
        "h histogram -\n  {a=\"1\"} count=None sum=None []\n  {a=\"2\"} count=None sum=None []\n  \
         {a=\"3\"} count=None sum=None []\n"
    );
    // `le` twice is not a duplicate label (it is no label): the last wins.
    assert_eq!(
        parsed("# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 3\n"),
        "h histogram -\n  {} count=None sum=None [2:3]\n"
    );
    // A summary's negative count is refused too.
    assert_eq!(
        error(b"# TYPE s summary\ns_count -1\n").message(),
        "negative count for summary \"s\""
    );
}

#[test]
fn samples_of_a_family_need_not_be_adjacent() {
    // As expfmt reads it (and Prometheus' scraper): the later lines join the family.
    assert_eq!(
        parsed("# TYPE a counter\na{x=\"1\"} 1\nb 2\na{x=\"2\"} 3\n"),
        "a counter -\n  {x=\"1\"} 1\n  {x=\"2\"} 3\nb untyped -\n  {} 2\n"
    );
}

#[test]
fn repeated_series_are_kept_for_the_caller_to_judge() {
    // expfmt does not look for repeats; neither does the parser.
    assert_eq!(parsed("m 1\nm 2\n"), "m untyped -\n  {} 1\n  {} 2\n");
}

#[test]
fn label_values_are_unescaped_utf8() {
    assert_eq!(
        parsed("m{a=\"Björn\",b=\"佖佥\",c=\"\\\\x\\\"y\\\"\\n\",d=\"\"} 3.14e+2\n"),
        "m untyped -\n  {a=\"Björn\",b=\"佖佥\",c=\"\\\\x\\\"y\\\"\\n\",d=\"\"} 314\n"
    );
    // `\"` does not close the value: the newline comes first.
    assert_eq!(
        error(b"m{a=\"\\\"} 1\n").message(),
        "label value \"\\\\\\\"} 1\" contains unescaped new-line"
    );
    assert_eq!(
        error(b"m{a=\"x\\").message(),
        "unexpected end of input stream"
    );
}

#[test]
fn limits_are_enforced_with_the_line() {
    let long = format!("ok 1\nm{{a=\"{}\"}} 1\n", "x".repeat(MAX_LINE_BYTES));
    let e = error(long.as_bytes());
    assert_eq!(e.line(), 2);
    assert_eq!(
        e.message(),
        format!("line longer than {MAX_LINE_BYTES} bytes")
    );
    // A line of exactly the limit passes, newline aside.
    let name = "m".repeat(MAX_LINE_BYTES - 2);
    let exact = format!("{name} 1\n");
    assert_eq!(parsed(&exact), format!("{name} untyped -\n  {{}} 1\n"));
    // Blanks count too, and a line without any newline is not scanned past it.
    assert!(error(" ".repeat(MAX_LINE_BYTES + 2).as_bytes())
        .message()
        .starts_with("line longer than"));

    let labels: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
    let e = error(format!("m{{{}}} 1\n", labels.join(",")).as_bytes());
    assert_eq!(e.message(), format!("more than {MAX_LABELS} labels"));
    let labels = &labels[..MAX_LABELS];
    assert!(Exposition::new()
        .parse(format!("m{{{}}} 1\n", labels.join(",")).as_bytes())
        .is_ok());

    let big = "m 1\n".repeat(MAX_INPUT_BYTES / 4 + 1);
    let e = error(big.as_bytes());
    assert_eq!(e.line(), 0);
    assert!(e.to_string().contains("more than"), "{e}");
}

#[test]
fn many_lines_of_one_histogram_are_gathered_in_linear_time() {
    // Every line looks its metric up by signature: 5,000 label sets, 5 buckets each.
    let mut input = String::from("# TYPE h histogram\n");
    for le in ["1", "2", "5", "10", "+Inf"] {
        for i in 0..5_000 {
            let _ = writeln!(input, "h_bucket{{i=\"{i}\",le=\"{le}\"}} {i}");
        }
    }
    let mut doc = Exposition::new();
    let started = std::time::Instant::now();
    doc.parse(input.as_bytes()).unwrap();
    let family = doc.families().next().unwrap();
    assert_eq!(family.len(), 5_000);
    let last = family.metrics().last().unwrap();
    assert_eq!(last.labels().collect::<Vec<_>>(), [("i", "4999")]);
    match last.value() {
        Value::Histogram { buckets, .. } => assert_eq!(buckets.count(), 5),
        _ => panic!("not a histogram"),
    }
    // Quadratic work would take minutes in a debug build.
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn reparsing_replaces_and_gives_memory_back() {
    let mut doc = Exposition::new();
    let big: String = (0..20_000)
        .map(|i| format!("m{{i=\"{i}\"}} {i}\n"))
        .collect();
    doc.parse(big.as_bytes()).unwrap();
    assert!(doc.text.capacity() > 100_000);
    doc.parse(b"small 1\n").unwrap();
    doc.parse(b"small 2 5\n").unwrap();
    assert_eq!(render(&doc), "small untyped -\n  {} 2 @5\n");
    assert!(doc.has_timestamps());
    assert!(doc.text.capacity() < 1000, "{}", doc.text.capacity());
    assert!(doc.metrics.capacity() < 100, "{}", doc.metrics.capacity());
    doc.parse(b"small 2\n").unwrap();
    assert!(!doc.has_timestamps());
}

#[test]
fn fuzz_entry_survives_hostile_bytes() {
    // Seeds of the fuzz target: truncations of a varied exposition at every byte.
    let seed = b"# HELP h x\\ny\n# TYPE h histogram\nh_bucket{a=\"\\\"\",le=\"+Inf\"} 1 2\n\
                 h_sum{a=\"\\\"\"} -0\nh_count{a=\"\\\"\"} 1\n# TYPE s summary\n\
                 s{quantile=\"0.5\"} NaN\ns_count 3\ng{x=\"\xc3\xa9\",} -Inf\n";
    for end in 0..=seed.len() {
        fuzz(&seed[..end]);
    }
    fuzz(&[0xff; 100]);
    fuzz(b"{");
    fuzz(b"m{");
    fuzz(b"m{a=\"");
}

/// A xorshift generator: random edits that are the same on every run.
pub(crate) struct Edits(u64);

impl Edits {
    pub(crate) fn new(seed: u64) -> Self {
        Edits(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Replaces, inserts or removes up to `max` bytes of `buf`, from `alphabet`.
    pub(crate) fn apply(&mut self, buf: &mut Vec<u8>, alphabet: &[u8], max: u64) {
        for _ in 0..self.next() % (max + 1) {
            let r = self.next();
            let at = (r as usize >> 8) % (buf.len() + 1);
            let byte = alphabet[(r as usize >> 40) % alphabet.len()];
            match r % 3 {
                0 if at < buf.len() => buf[at] = byte,
                1 => buf.insert(at, byte),
                _ if at < buf.len() => {
                    buf.remove(at);
                }
                _ => {}
            }
        }
    }
}

#[test]
fn random_edits_of_valid_input_never_panic() {
    let seeds: &[&[u8]] = &[
        b"# HELP h x\\ny\n# TYPE h histogram\nh_bucket{a=\"\\\"\",le=\"+Inf\"} 1 2\n\
          h_sum{a=\"\\\"\"} -0\nh_count{a=\"\\\"\"} 1\n",
        b"# TYPE s summary\ns{quantile=\"0.5\",b=\"c\"} NaN\ns_count{b=\"c\"} 3\ns_sum 4\n\
          g{x=\"\xc3\xa9\",} -Inf\n",
        b"a 1\nb{c=\"d\"} 2 3\n#TYPE e counter\ne_total 4\n",
    ];
    let alphabet = b"{}=\",# \t\n\\_:abcHELPTYPEsumcountbucketlequantile01.+-eInfNaN\xff\xc3";
    let mut edits = Edits::new(0x9E37_79B9_7F4A_7C15);
    let mut buf = Vec::new();
    for i in 0..50_000 {
        buf.clear();
        buf.extend_from_slice(seeds[i % seeds.len()]);
        edits.apply(&mut buf, alphabet, 8);
        fuzz(&buf);
    }
}
