//! The collector over node_exporter's textfile fixtures, turned into trees under
//! `tests/fixtures/textfile/` (see its README), and over trees made here.

use super::*;
use crate::batch::{Batch, Kind};
use crate::testing::{render, TempDir};

/// The fixtures, relative to the crate root (the tests' working directory), so
/// that the paths in the output read as node_exporter's `fixtures/textfile/...`.
const FIXTURES: &str = "tests/fixtures/textfile";

fn textfile(directories: &[&str]) -> Textfile {
    Textfile::new(&Options {
        directories: directories.iter().map(|d| d.to_string()).collect(),
    })
}

fn run(directories: &[&str]) -> String {
    render(&mut textfile(directories)).expect("the textfile collector never fails")
}

/// The output with file mtimes (which the checkout sets) as `<mtime>`.
fn masked(output: &str) -> String {
    output
        .lines()
        .map(
            |line| match line.strip_prefix("node_textfile_mtime_seconds{") {
                Some(rest) => match rest.rsplit_once(' ') {
                    Some((series, _)) => format!("node_textfile_mtime_seconds{{{series} <mtime>\n"),
                    None => format!("{line}\n"),
                },
                None => format!("{line}\n"),
            },
        )
        .collect()
}

#[test]
fn node_exporters_fixtures_give_their_output() {
    // (directories, expected output) as in node_exporter's textfile_test.go, plus
    // cases of the agent's own.
    let cases: &[(&[&str], &str)] = &[
        (&["no_metric_files"], "no_metric_files"),
        (&["two_metric_files"], "two_metric_files"),
        (&["nonexistent_path"], "nonexistent_path"),
        (&["client_side_timestamp"], "client_side_timestamp"),
        (&["different_metric_types"], "different_metric_types"),
        (&["inconsistent_metrics"], "inconsistent_metrics"),
        (&["histogram"], "histogram"),
        (&["histogram_extra_dimension"], "histogram_extra_dimension"),
        (&["summary"], "summary"),
        (&["summary_extra_dimension"], "summary_extra_dimension"),
        (&["*_extra_dimension"], "glob_extra_dimension"),
        (&["metrics_merge_empty_help"], "metrics_merge_empty_help"),
        (&["metrics_merge_no_help"], "metrics_merge_no_help"),
        (&["metrics_merge_same_help"], "metrics_merge_same_help"),
        (
            &["metrics_merge_different_help"],
            "metrics_merge_different_help",
        ),
        (&["malformed"], "malformed"),
        (&["duplicate_across_files"], "duplicate_across_files"),
        (
            &["two_metric_files", "summary", "no_such_dir"],
            "several_directories",
        ),
    ];
    let mut failures = Vec::new();
    for (directories, expected) in cases {
        let directories: Vec<String> = directories
            .iter()
            .map(|d| format!("{FIXTURES}/{d}"))
            .collect();
        let directories: Vec<&str> = directories.iter().map(String::as_str).collect();
        let actual = masked(&run(&directories));
        let path = format!("{FIXTURES}/{expected}.out");
        if std::env::var_os("SC_UPDATE_FIXTURES").is_some() {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        if actual != expected {
            failures.push(format!(
                "{path}:\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_mtime_is_the_files_in_whole_seconds() {
    let dir = TempDir::new();
    let path = dir.write("a.prom", "m 1\n");
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_900);
    file.set_modified(when).unwrap();
    let text = run(&[dir.path().to_str().unwrap()]);
    let expected = format!(
        "node_textfile_mtime_seconds{{file=\"{}\"}} 1700000000\n",
        path.display()
    );
    assert!(text.contains(&expected), "{text}");
}

#[test]
fn the_default_reads_nothing_and_says_all_is_well() {
    let options = Options::default();
    assert!(options.directories.is_empty());
    assert_eq!(
        render(&mut Textfile::new(&options)).unwrap(),
        "# HELP node_textfile_scrape_error 1 if there was an error opening or reading a file, \
         0 otherwise\n# TYPE node_textfile_scrape_error gauge\nnode_textfile_scrape_error 0\n"
    );
    // node_exporter's own default, the empty directory, is skipped the same way.
    assert!(run(&[""]).ends_with("node_textfile_scrape_error 0\n"));
}

#[test]
fn options_are_strict_yaml() {
    let options: Options =
        serde_yaml::from_str("directories: [/var/lib/node/*.d, /srv]\n").unwrap();
    assert_eq!(options.directories, ["/var/lib/node/*.d", "/srv"]);
    // One directory, as one --collector.textfile.directory flag gives it.
    let options: Options = serde_yaml::from_str("directory: /srv\n").unwrap();
    assert_eq!(options.directories, ["/srv"]);
    let empty: Options = serde_yaml::from_str("{}").unwrap();
    assert_eq!(empty, Options::default());
    let err = serde_yaml::from_str::<Options>("directory: {a: 1}\n").unwrap_err();
    assert!(
        err.to_string().contains("a directory or a list of directories"),
        "{err}"
    );
    let err = serde_yaml::from_str::<Options>("directorys: /srv\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `directorys`"), "{err}");
    // node_exporter's flag name is read as the field.
    let settings = serde_yaml::from_str::<crate::collector::table::Settings>(
        "textfile:\n  directory: [/srv]\n",
    )
    .unwrap();
    assert_eq!(settings.textfile.options.directories, ["/srv"]);
}

#[test]
fn a_glob_reads_the_directories_it_matches_and_paths_are_joined_as_go_does() {
    let dir = TempDir::new();
    dir.write("a.d/x.prom", "from_a 1\n");
    dir.write("b.d/x.prom", "from_b 1\n");
    dir.write("c.txt/x.prom", "not_read 1\n");
    dir.write("a.d/sub/deep.prom", "not_read 1\n");
    dir.write("a.d/ignored.txt", "not_read 1\n");
    let root = dir.path().to_str().unwrap();
    let text = run(&[&format!("{root}/./[ab].d/")]);
    // The glob has a trailing `/`: Go's Glob matches nothing then, and the pattern
    // is read as a directory that does not exist.
    assert!(text.ends_with("node_textfile_scrape_error 1\n"), "{text}");
    let text = run(&[&format!("{root}/./[ab].d")]);
    assert!(
        text.contains("\nfrom_a 1\n") && text.contains("\nfrom_b 1\n"),
        "{text}"
    );
    assert!(!text.contains("not_read"), "{text}");
    assert!(
        text.contains(&format!(
            "node_textfile_mtime_seconds{{file=\"{root}/a.d/x.prom\"}}"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "# HELP from_b Metric read from {root}/b.d/x.prom\n"
    )));
    assert!(text.ends_with("node_textfile_scrape_error 0\n"), "{text}");
    // A plain directory is reported as configured, cleaned.
    let text = run(&[&format!("{root}//a.d/./")]);
    assert!(
        text.contains(&format!("{{file=\"{root}/a.d/x.prom\"}}")),
        "{text}"
    );
    // A bad pattern is a directory name, here a missing one.
    let text = run(&[&format!("{root}/[a")]);
    assert!(text.ends_with("node_textfile_scrape_error 1\n"), "{text}");
}

#[test]
fn a_series_another_collector_wrote_is_dropped() {
    let dir = TempDir::new();
    dir.write(
        "clash.prom",
        "# TYPE node_load1 gauge\nnode_load1 99\n\
         # TYPE my_summary summary\nmy_summary{quantile=\"0.5\"} 1\nmy_summary_sum 2\nmy_summary_count 3\n\
         other 1\n",
    );
    dir.write(
        "own.prom",
        "node_textfile_scrape_error 7\nsc_agent_samples_sent_total 1\n",
    );
    let mut batch = Batch::new();
    batch.begin(0);
    batch
        .family("node_load1", "1m load average.", Kind::Gauge)
        .sample(&[], 0.5);
    // A series of another family that a textfile's summary would repeat.
    batch
        .family(
            "my_summary_count",
            "A gauge of another collector.",
            Kind::Gauge,
        )
        .sample(&[], 10.0);
    let mut collector = textfile(&[dir.path().to_str().unwrap()]);
    collector.collect(&mut batch).unwrap();
    let mut out = Vec::new();
    crate::output::text::write(&batch, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\nnode_load1 ").count(), 1, "{text}");
    assert!(text.contains("\nnode_load1 0.5\n"), "{text}");
    // The whole summary goes with its clashing `_count`.
    assert!(!text.contains("my_summary{"), "{text}");
    assert!(text.contains("\nmy_summary_count 10\n"), "{text}");
    assert!(text.contains("\nother 1\n"), "{text}");
    // The agent's own families stay its own.
    assert!(!text.contains("sc_agent_samples_sent_total"), "{text}");
    assert!(!text.contains("node_textfile_scrape_error 7"), "{text}");
    assert!(text.ends_with("node_textfile_scrape_error 1\n"), "{text}");
}

#[test]
fn a_huge_line_or_file_skips_the_file_only() {
    let dir = TempDir::new();
    dir.write("a_good.prom", "good 1\n");
    dir.write(
        "b_long_line.prom",
        &format!(
            "m{{a=\"{}\"}} 1\n",
            "x".repeat(crate::exposition::MAX_LINE_BYTES)
        ),
    );
    dir.write("c_big.prom", &"m 1\n".repeat(MAX_INPUT_BYTES / 4 + 1));
    dir.write("d_good.prom", "also_good 1\n");
    let text = run(&[dir.path().to_str().unwrap()]);
    assert!(
        text.contains("\ngood 1\n") && text.contains("\nalso_good 1\n"),
        "{text}"
    );
    assert!(!text.contains("\nm{"), "{text}");
    assert_eq!(
        text.matches("node_textfile_mtime_seconds{").count(),
        2,
        "{text}"
    );
    assert!(text.ends_with("node_textfile_scrape_error 1\n"), "{text}");
}

#[test]
fn files_past_the_cycles_byte_budget_are_skipped() {
    let dir = TempDir::new();
    let line = "m{i=\"000000\"} 1\n";
    let per_file = MAX_INPUT_BYTES / line.len() - 1;
    let files = MAX_TOTAL_BYTES / (per_file * line.len()) + 1;
    for f in 0..files {
        let text: String = (0..per_file)
            .map(|i| format!("m{{i=\"{:06}\"}} 1\n", f * per_file + i))
            .collect();
        dir.write(&format!("{f:02}.prom"), &text);
    }
    let text = run(&[dir.path().to_str().unwrap()]);
    assert_eq!(
        text.matches("node_textfile_mtime_seconds{").count(),
        files - 1,
        "one file past the budget"
    );
    assert!(text.ends_with("node_textfile_scrape_error 1\n"));
}

#[test]
fn a_directory_named_prom_is_a_file_without_metrics() {
    // As node_exporter 1.5 reads it (Go reads a directory as empty).
    let dir = TempDir::new();
    dir.write("x.prom/inner.prom", "not_read 1\n");
    let text = run(&[dir.path().to_str().unwrap()]);
    assert!(!text.contains("not_read"), "{text}");
    assert!(
        text.contains("node_textfile_mtime_seconds{file=\""),
        "{text}"
    );
    assert!(text.ends_with("node_textfile_scrape_error 0\n"), "{text}");
}

#[test]
fn reserved_label_names_skip_the_file() {
    // node_exporter panics on them (MustNewConstMetric with an invalid name).
    let dir = TempDir::new();
    dir.write("a.prom", "m{__meta=\"x\"} 1\n");
    let text = run(&[dir.path().to_str().unwrap()]);
    assert!(!text.contains("\nm{"), "{text}");
    assert!(text.ends_with("node_textfile_scrape_error 1\n"), "{text}");
}

#[test]
fn conflicting_help_drops_every_later_file_and_types_must_agree() {
    let dir = TempDir::new();
    dir.write(
        "a.prom",
        "# HELP m X\nm{f=\"a\"} 1\n# TYPE t counter\nt{f=\"a\"} 1\n",
    );
    dir.write(
        "b.prom",
        "# HELP m Y\nm{f=\"b\"} 2\n# TYPE t gauge\nt{f=\"b\"} 2\n",
    );
    // node_exporter panics here (a missing HELP after a conflict).
    dir.write("c.prom", "m{f=\"c\"} 3\n");
    dir.write("d.prom", "# HELP m X\nm{f=\"d\"} 4\n");
    let text = run(&[dir.path().to_str().unwrap()]);
    assert!(
        text.contains("# HELP m X\n# TYPE m untyped\nm{f=\"a\"} 1\n# HELP t"),
        "{text}"
    );
    assert!(text.contains("# TYPE t counter\nt{f=\"a\"} 1\n# HELP node_textfile_mtime"));
    assert!(text.ends_with("node_textfile_scrape_error 1\n"), "{text}");
    // A file without HELP after one with it: its invented HELP differs, so the
    // registry would drop it; in the other order both keep the invented one.
    let dir = TempDir::new();
    dir.write("a.prom", "# HELP m X\nm{f=\"a\"} 1\n");
    dir.write("b.prom", "m{f=\"b\"} 2\n");
    let text = run(&[dir.path().to_str().unwrap()]);
    assert!(
        text.contains("# HELP m X\n# TYPE m untyped\nm{f=\"a\"} 1\n# HELP node"),
        "{text}"
    );
    assert!(text.ends_with("node_textfile_scrape_error 1\n"), "{text}");
    let dir = TempDir::new();
    let root = dir.path().to_str().unwrap();
    dir.write("a.prom", "m{f=\"a\"} 1\n");
    dir.write("b.prom", "# HELP m X\nm{f=\"b\"} 2\n");
    let text = run(&[root]);
    assert!(
        text.contains(&format!(
            "# HELP m Metric read from {root}/a.prom, {root}/b.prom\n# TYPE m untyped\nm{{f=\"a\"}} 1\n# HELP node"
        )),
        "{text}"
    );
}

#[test]
fn histograms_are_completed_and_bounds_deduplicated() {
    let dir = TempDir::new();
    dir.write(
        "h.prom",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 0\nh_bucket{le=\"1.0\"} 2\n\
         h_count 3\n# TYPE s summary\ns{quantile=\"0.99\"} 9\ns{quantile=\"0.5\"} 5\n",
    );
    let text = run(&[dir.path().to_str().unwrap()]);
    assert!(
        text.contains(
            "# TYPE h histogram\nh_bucket{le=\"0.5\"} 0\nh_bucket{le=\"1\"} 2\n\
             h_bucket{le=\"+Inf\"} 3\nh_sum 0\nh_count 3\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("s{quantile=\"0.5\"} 5\ns{quantile=\"0.99\"} 9\ns_sum 0\ns_count 0\n"),
        "{text}"
    );
}

#[test]
fn problems_are_logged_once_while_they_last() {
    let mut problems = Problems::default();
    let mut seen = Vec::new();
    for cycle in 0..3 {
        problems.begin();
        let before = problems.current.len();
        problems.report(format_args!("textfile: a.prom: broken"));
        problems.report(format_args!("textfile: a.prom: broken"));
        seen.push((
            cycle,
            problems.current.len() - before,
            problems.previous.len(),
        ));
    }
    // One entry a cycle; from the second cycle on it is known from the last one.
    assert_eq!(seen, [(0, 1, 0), (1, 1, 1), (2, 1, 1)]);
    problems.begin();
    problems.begin();
    assert!(problems.previous.is_empty());
}

#[test]
fn steady_state_reuses_its_buffers() {
    let dir = TempDir::new();
    dir.write(
        "a.prom",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\nm{a=\"b\"} 2\n",
    );
    let mut collector = textfile(&[dir.path().to_str().unwrap()]);
    let mut batch = Batch::new();
    let mut cycle = |collector: &mut Textfile| {
        batch.begin(0);
        collector.collect(&mut batch).unwrap();
        (
            collector.rows.text.capacity(),
            collector.rows.metrics.capacity(),
            collector.doc.families().count(),
        )
    };
    let first = cycle(&mut collector);
    for _ in 0..5 {
        assert_eq!(cycle(&mut collector), first);
    }
}

#[test]
fn random_edits_of_files_never_repeat_a_series_or_panic() {
    let seeds: &[&[u8]] = &[
        b"# HELP h x\n# TYPE h histogram\nh_bucket{a=\"1\",le=\"+Inf\"} 1\n\
          h_bucket{a=\"1\",le=\"0.5\"} 1\nh_sum{a=\"1\"} -0\nh_count{a=\"1\"} 1\n",
        b"# TYPE s summary\ns{quantile=\"0.5\",b=\"c\"} NaN\ns{quantile=\"0.5\",b=\"c\"} 2\n\
          s_count{b=\"c\"} 3\ns_sum 4\ng{x=\"\xc3\xa9\",} -Inf\ng 1\n",
        b"a 1\nb{c=\"d\"} 2\n# TYPE e counter\ne{f=\"\"} 4\ne 5\nnode_load1 3\n",
    ];
    let alphabet = b"{}=\",# \n_abcHELPTYPEsumcountbucketlequantile01.+-InfNaN";
    let mut edits = crate::exposition::tests::Edits::new(0x2545_F491_4F6C_DD1D);
    let dir = TempDir::new();
    let mut collector = textfile(&[dir.path().to_str().unwrap()]);
    let mut batch = Batch::new();
    for cycle in 0..1_000 {
        for file in 0..3 {
            let mut buf = seeds[(cycle + file) % seeds.len()].to_vec();
            edits.apply(&mut buf, alphabet, 5);
            dir.write_bytes(&format!("{file}.prom"), &buf);
        }
        batch.begin(0);
        batch
            .family("node_load1", "h", Kind::Gauge)
            .sample(&[], 1.0);
        collector.collect(&mut batch).unwrap();
        let mut seen = SeriesSet::default();
        for series in batch.families().flat_map(|f| f.series()) {
            assert!(
                seen.insert(&series),
                "cycle {cycle}: {} twice",
                series.name()
            );
        }
    }
}
