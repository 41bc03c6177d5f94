//! `node_nf_conntrack_entries`, `node_nf_conntrack_entries_limit` from
//! /proc/sys/net/netfilter/nf_conntrack_{count,max}, and `node_nf_conntrack_stat_*`,
//! the per-CPU lines of /proc/net/stat/nf_conntrack summed, as node_exporter 1.12
//! reports them.
//!
//! The stat file has a header line, then one line per CPU of 16 (before Linux
//! 2.6.35) or 17 hexadecimal figures; procfs takes found, invalid, ignore, insert,
//! insert_failed, drop and early_drop from columns 3, 5, 6, 9, 10, 11 and 12, and
//! search_restart from column 17 when there is one (0 otherwise). Every family is a
//! gauge, the sums wrap at 2^64 as Go's do.
//!
//! When the sources are missing, as node_exporter 1.12 does:
//! - no `nf_conntrack_count` or `nf_conntrack_max` (the nf_conntrack module is not
//!   loaded, as on most VMs without a firewall): [`CollectError::no_data`], no series;
//! - the two sysctls but no /proc/net/stat/nf_conntrack (a kernel built without
//!   `CONFIG_NF_CONNTRACK_PROCFS`): the two gauges, then no data, so success is 0 but
//!   the gauges stay (see [`CollectError::no_data`]). 1.12 warns once about it; so
//!   does this collector. `stats: false` (`--no-collector.conntrack.stats`) skips
//!   the file.
//!
//! Differences from node_exporter 1.5: 1.5 has no `stats` option and treats a missing
//! stat file as a failure (success 0, an error logged every scrape), with the same
//! two gauges.

use super::{parse_uint, read_optional_file, read_value, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// `collectors.conntrack`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `--collector.conntrack.stats`: read /proc/net/stat/nf_conntrack.
    pub stats: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { stats: true }
    }
}

impl collectors::Options for Options {}

/// A summed column of the stat file: its index in a line, its family, its HELP.
const STATS: [(usize, &str, &str); 8] = [
    (2, "node_nf_conntrack_stat_found", "Number of searched entries which were successful."),
    (4, "node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked."),
    (
        5,
        "node_nf_conntrack_stat_ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    (8, "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."),
    (
        9,
        "node_nf_conntrack_stat_insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    (10, "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."),
    (
        11,
        "node_nf_conntrack_stat_early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        16,
        "node_nf_conntrack_stat_search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

/// The columns of a line: 17 since Linux 2.6.35, which added search_restart.
const MAX_COLUMNS: usize = 17;
const MIN_COLUMNS: usize = 16;

pub struct Conntrack {
    count: PathBuf,
    max: PathBuf,
    stat: PathBuf,
    stats: bool,
    buf: String,
    /// Whether the missing stat file was already reported.
    warned: bool,
}

impl Conntrack {
    pub fn new(procfs: &Path, options: &Options) -> Self {
        let netfilter = procfs.join("sys/net/netfilter");
        Conntrack {
            count: netfilter.join("nf_conntrack_count"),
            max: netfilter.join("nf_conntrack_max"),
            stat: procfs.join("net/stat/nf_conntrack"),
            stats: options.stats,
            buf: String::new(),
            warned: false,
        }
    }

    /// One sysctl; a missing one means nf_conntrack is not loaded.
    fn sysctl(path: &Path, buf: &mut String) -> Result<u64, CollectError> {
        match read_value(path, buf) {
            Ok(text) => parse_uint(path, text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CollectError::no_data(format!(
                "{} does not exist: the nf_conntrack module is not loaded",
                path.display()
            ))),
            Err(e) => Err(CollectError::io(path, &e)),
        }
    }
}

/// Sums the figures of the stat file's lines into `sums` (indexed as [`STATS`]).
fn sum_stats(path: &Path, text: &str, sums: &mut [u64; STATS.len()]) -> Result<(), CollectError> {
    for (index, line) in text.lines().enumerate().skip(1) {
        let error = |what: String| CollectError::parse(path, index + 1, what);
        let mut figures = [0u64; MAX_COLUMNS];
        let mut columns = 0;
        for field in line.split_ascii_whitespace() {
            let value = Some(field)
                .filter(|f| f.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|f| u64::from_str_radix(f, 16).ok())
                .ok_or_else(|| error(format!("expected a hexadecimal figure, got {field:?}")))?;
            if let Some(slot) = figures.get_mut(columns) {
                *slot = value;
            }
            columns += 1;
        }
        if !(MIN_COLUMNS..=MAX_COLUMNS).contains(&columns) {
            return Err(error(format!(
                "{columns} columns, expected {MIN_COLUMNS} or {MAX_COLUMNS}"
            )));
        }
        for (sum, (column, _, _)) in sums.iter_mut().zip(STATS) {
            *sum = sum.wrapping_add(figures[column]);
        }
    }
    Ok(())
}

impl Build for Conntrack {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &[
        "proc/sys/net/netfilter/nf_conntrack_count",
        "proc/sys/net/netfilter/nf_conntrack_max",
        "proc/net/stat/nf_conntrack",
    ];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Conntrack::new(&context.paths.procfs, options)
    }
}

impl Collector for Conntrack {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let count = Conntrack::sysctl(&self.count, &mut self.buf)?;
        out.family(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            Kind::Gauge,
        )
        .sample(&[], count as f64);
        let max = Conntrack::sysctl(&self.max, &mut self.buf)?;
        out.family(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            Kind::Gauge,
        )
        .sample(&[], max as f64);
        if !self.stats {
            return Ok(());
        }
        if !read_optional_file(&self.stat, &mut self.buf)? {
            let message = format!(
                "{} does not exist: the kernel is built without CONFIG_NF_CONNTRACK_PROCFS \
                 (set collectors.conntrack.stats to false to stop reading it)",
                self.stat.display()
            );
            if !std::mem::replace(&mut self.warned, true) {
                log::warn!("conntrack statistics unavailable: {message}");
            }
            return Err(CollectError::no_data(message));
        }
        let mut sums = [0u64; STATS.len()];
        sum_stats(&self.stat, &self.buf, &mut sums)?;
        for ((_, name, help), sum) in STATS.into_iter().zip(sums) {
            out.family(name, help, Kind::Gauge).sample(&[], sum as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const HEADER: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n";

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn tree(dir: &TempDir, stat: Option<&str>) {
        dir.write("sys/net/netfilter/nf_conntrack_count", "123\n");
        dir.write("sys/net/netfilter/nf_conntrack_max", "65536\n");
        if let Some(stat) = stat {
            dir.write("net/stat/nf_conntrack", stat);
        }
    }

    #[test]
    fn sums_the_cpus_columns() {
        let dir = TempDir::new();
        let stat = format!(
            "{HEADER}\
             00000021  00000000 00000001 00000002 00000003 00000004 00000005 00000006 00000007 00000008 00000009 0000000a 0000000b  0000000c 0000000d 0000000e 0000000f\n\
             00000021  00000000 00000010 00000020 00000030 00000040 00000050 00000060 00000070 00000080 00000090 000000a0 000000b0  000000c0 000000d0 000000e0 000000f0\n"
        );
        tree(&dir, Some(&stat));
        let mut collector = Conntrack::new(dir.path(), &Options::default());
        for _ in 0..2 {
            let text = render(&mut collector).unwrap();
            assert!(text.contains(
                "# HELP node_nf_conntrack_stat_found Number of searched entries which were successful.\n\
                 # TYPE node_nf_conntrack_stat_found gauge\n"
            ));
            assert_eq!(
                samples(&text),
                [
                    "node_nf_conntrack_entries 123",
                    "node_nf_conntrack_entries_limit 65536",
                    "node_nf_conntrack_stat_found 17",
                    "node_nf_conntrack_stat_invalid 51",
                    "node_nf_conntrack_stat_ignore 68",
                    "node_nf_conntrack_stat_insert 119",
                    "node_nf_conntrack_stat_insert_failed 136",
                    "node_nf_conntrack_stat_drop 153",
                    "node_nf_conntrack_stat_early_drop 170",
                    "node_nf_conntrack_stat_search_restart 255",
                ]
            );
        }
    }

    #[test]
    fn sixteen_columns_have_no_search_restart_and_sums_wrap() {
        let dir = TempDir::new();
        let line = "ffffffffffffffff ".repeat(16);
        tree(&dir, Some(&format!("{HEADER}{line}\n00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00\n")));
        let text = render(&mut Conntrack::new(dir.path(), &Options::default())).unwrap();
        assert!(text.contains("node_nf_conntrack_stat_found 0\n"), "{text}");
        assert!(text.contains("node_nf_conntrack_stat_drop 18446744073709552000\n"), "{text}");
        assert!(text.contains("node_nf_conntrack_stat_search_restart 0\n"), "{text}");
        // A header alone: every sum is 0.
        tree(&dir, Some(HEADER));
        let text = render(&mut Conntrack::new(dir.path(), &Options::default())).unwrap();
        assert!(text.contains("node_nf_conntrack_stat_insert 0\n"), "{text}");
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let dir = TempDir::new();
        let good = "00 ".repeat(17);
        for (line, what) in [
            ("00 ".repeat(15), "15 columns, expected 16 or 17"),
            ("00 ".repeat(18), "18 columns, expected 16 or 17"),
            (String::new(), "0 columns, expected 16 or 17"),
            (good.replacen("00", "0x1", 1), "expected a hexadecimal figure, got \"0x1\""),
            (good.replacen("00", "+1", 1), "expected a hexadecimal figure, got \"+1\""),
            (good.replacen("00", "10000000000000000", 1), "expected a hexadecimal figure, got \"10000000000000000\""),
        ] {
            tree(&dir, Some(&format!("{HEADER}{good}\n{line}\n")));
            let err = render(&mut Conntrack::new(dir.path(), &Options::default())).unwrap_err();
            assert!(!err.is_no_data());
            assert!(err.to_string().ends_with(&format!("net/stat/nf_conntrack line 3: {what}")), "{line:?}: {err}");
        }
        dir.write("sys/net/netfilter/nf_conntrack_max", "lots\n");
        let err = render(&mut Conntrack::new(dir.path(), &Options::default())).unwrap_err();
        assert!(err.to_string().ends_with("nf_conntrack_max line 1: expected an unsigned integer, got \"lots\""), "{err}");
    }

    #[test]
    fn missing_sources_are_no_data_as_in_node_exporter() {
        let dir = TempDir::new();
        let mut batch = Batch::new();
        batch.begin(0);
        let err = Conntrack::new(dir.path(), &Options::default()).collect(&mut batch).unwrap_err();
        assert!(err.is_no_data() && err.to_string().contains("not loaded"), "{err}");
        assert!(batch.is_empty());
        // The sysctls without the stat file: the two gauges, then no data.
        tree(&dir, None);
        let mut collector = Conntrack::new(dir.path(), &Options::default());
        for _ in 0..2 {
            let mut batch = Batch::new();
            batch.begin(0);
            let err = collector.collect(&mut batch).unwrap_err();
            assert!(err.is_no_data() && err.to_string().contains("CONFIG_NF_CONNTRACK_PROCFS"), "{err}");
            let names: Vec<&str> = batch.families().map(|f| f.name()).collect();
            assert_eq!(names, ["node_nf_conntrack_entries", "node_nf_conntrack_entries_limit"]);
        }
        assert!(collector.warned);
        // stats: false does not look for the file.
        let text = render(&mut Conntrack::new(dir.path(), &Options { stats: false })).unwrap();
        assert_eq!(samples(&text), ["node_nf_conntrack_entries 123", "node_nf_conntrack_entries_limit 65536"]);
    }

    #[test]
    fn options_default_to_node_exporters() {
        let options: Options = serde_yaml::from_str("{}").unwrap();
        assert!(options.stats);
        let options: Options = serde_yaml::from_str("stats: false").unwrap();
        assert!(!options.stats);
        assert!(serde_yaml::from_str::<Options>("stat: false").is_err());
    }
}
