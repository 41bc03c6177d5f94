//! `node_intr_total`, `node_context_switches_total`, `node_forks_total`,
//! `node_boot_time_seconds`, `node_procs_running` and `node_procs_blocked` from
//! /proc/stat, as node_exporter's stat collector exports them.
//!
//! Only the first number of the `intr` line (the total) is read. With `softirq`
//! (node_exporter's `--collector.stat.softirq`, off by default) the `softirq` line
//! gives `node_softirqs_total{vector}` too: the ten counts after its total, named as
//! procfs names them (`hi`, `timer`, `net_tx`, `net_rx`, `block`, `block_iopoll`,
//! `tasklet`, `sched`, `hrtimer`, `rcu`); as procfs scans the line, all ten must be
//! there and further numbers are ignored.
//!
//! node_exporter (through Go's procfs) reports 0 for a line that is missing; here a
//! missing line is an error, so a broken /proc/stat shows as a failed collector rather
//! than as a boot time of 1970. procfs parses the `softirq` line even without the
//! option, so a malformed one fails node_exporter's collector either way; here it is
//! read only with the option.

use super::{Build, CollectError, Collector, Context, read_file};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `collectors.stat`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `node_softirqs_total{vector}`: `--collector.stat.softirq`.
    pub softirq: bool,
}

impl collectors::Options for Options {}

/// The vectors of the `softirq` line after its total, in the kernel's order.
const VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

pub struct Stat {
    path: PathBuf,
    softirq: bool,
    buf: String,
}

impl Stat {
    pub fn new(procfs: &Path, options: &Options) -> Self {
        Stat {
            path: procfs.join("stat"),
            softirq: options.softirq,
            buf: String::new(),
        }
    }
}

/// A /proc/stat line and the family its first number becomes.
struct Field {
    key: &'static str,
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

const FIELDS: [Field; 6] = [
    Field {
        key: "intr",
        name: "node_intr_total",
        help: "Total number of interrupts serviced.",
        kind: Kind::Counter,
    },
    Field {
        key: "ctxt",
        name: "node_context_switches_total",
        help: "Total number of context switches.",
        kind: Kind::Counter,
    },
    Field {
        key: "processes",
        name: "node_forks_total",
        help: "Total number of forks.",
        kind: Kind::Counter,
    },
    Field {
        key: "btime",
        name: "node_boot_time_seconds",
        help: "Node boot time, in unixtime.",
        kind: Kind::Gauge,
    },
    Field {
        key: "procs_running",
        name: "node_procs_running",
        help: "Number of processes in runnable state.",
        kind: Kind::Gauge,
    },
    Field {
        key: "procs_blocked",
        name: "node_procs_blocked",
        help: "Number of processes blocked waiting for I/O to complete.",
        kind: Kind::Gauge,
    },
];

impl Stat {
    /// The first number of each line in [`FIELDS`], in that order.
    fn parse(&self) -> Result<[f64; FIELDS.len()], CollectError> {
        let mut values = [None; FIELDS.len()];
        for (index, line) in self.buf.lines().enumerate() {
            let mut words = line.split_ascii_whitespace();
            let key = words.next().unwrap_or_default();
            let Some(slot) = FIELDS.iter().position(|f| f.key == key) else {
                continue;
            };
            let word = words.next().unwrap_or_default();
            let value: u64 = word.parse().map_err(|_| {
                CollectError::parse(
                    &self.path,
                    index + 1,
                    format!("{key}: expected a whole number, got {word:?}"),
                )
            })?;
            values[slot] = Some(value as f64);
        }
        let mut out = [0.0; FIELDS.len()];
        for ((field, value), slot) in FIELDS.iter().zip(values).zip(&mut out) {
            *slot = value.ok_or_else(|| {
                CollectError::new(format!("{}: no `{}` line", self.path.display(), field.key))
            })?;
        }
        Ok(out)
    }

    /// The counts of [`VECTORS`] on the `softirq` line.
    fn softirqs(&self) -> Result<[f64; VECTORS.len()], CollectError> {
        let (index, line) = self
            .buf
            .lines()
            .enumerate()
            .find(|(_, line)| line.split_ascii_whitespace().next() == Some("softirq"))
            .ok_or_else(|| {
                CollectError::new(format!("{}: no `softirq` line", self.path.display()))
            })?;
        let error = |what: String| CollectError::parse(&self.path, index + 1, what);
        // The total, then the vectors.
        let mut numbers = [0; 1 + VECTORS.len()];
        let mut words = line.split_ascii_whitespace().skip(1);
        for (read, number) in numbers.iter_mut().enumerate() {
            let word = words.next().ok_or_else(|| {
                error(format!(
                    "softirq: expected a total and {} counts, got {read}",
                    VECTORS.len()
                ))
            })?;
            *number = word.parse::<u64>().map_err(|_| {
                error(format!("softirq: expected a whole number, got {word:?}"))
            })?;
        }
        let mut counts = [0.0; VECTORS.len()];
        for (count, number) in counts.iter_mut().zip(&numbers[1..]) {
            *count = *number as f64;
        }
        Ok(counts)
    }
}

impl Build for Stat {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/stat"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Stat::new(&context.paths.procfs, options)
    }
}

impl Collector for Stat {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        let values = self.parse()?;
        let softirqs = match self.softirq {
            true => Some(self.softirqs()?),
            false => None,
        };
        for (field, value) in FIELDS.iter().zip(values) {
            out.family(field.name, field.help, field.kind)
                .sample(&[], value);
        }
        if let Some(counts) = softirqs {
            let mut family = out.family(
                "node_softirqs_total",
                "Number of softirq calls.",
                Kind::Counter,
            );
            for (vector, count) in VECTORS.iter().zip(counts) {
                family.sample(&[("vector", vector)], count);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const STAT: &str = "cpu  17836 0 5741 149424 605 0 120 195 0 0\n\
                        cpu0 7796 0 2577 76352 125 0 34 90 0 0\n\
                        intr 289613 0 0 10 0\n\
                        ctxt 374767\n\
                        btime 1795617410\n\
                        processes 9858\n\
                        procs_running 3\n\
                        procs_blocked 1\n\
                        softirq 150253 0 21747 6\n";

    #[test]
    fn exports_the_six_lines() {
        let dir = TempDir::new();
        dir.write("stat", STAT);
        let text = render(&mut Stat::new(dir.path(), &Options::default())).unwrap();
        assert_eq!(
            text,
            "# HELP node_intr_total Total number of interrupts serviced.\n\
             # TYPE node_intr_total counter\nnode_intr_total 289613\n\
             # HELP node_context_switches_total Total number of context switches.\n\
             # TYPE node_context_switches_total counter\nnode_context_switches_total 374767\n\
             # HELP node_forks_total Total number of forks.\n\
             # TYPE node_forks_total counter\nnode_forks_total 9858\n\
             # HELP node_boot_time_seconds Node boot time, in unixtime.\n\
             # TYPE node_boot_time_seconds gauge\nnode_boot_time_seconds 1795617410\n\
             # HELP node_procs_running Number of processes in runnable state.\n\
             # TYPE node_procs_running gauge\nnode_procs_running 3\n\
             # HELP node_procs_blocked Number of processes blocked waiting for I/O to complete.\n\
             # TYPE node_procs_blocked gauge\nnode_procs_blocked 1\n"
        );
    }

    #[test]
    fn huge_counters_keep_their_magnitude() {
        let dir = TempDir::new();
        dir.write(
            "stat",
            &STAT.replace("ctxt 374767", "ctxt 18446744073709551615"),
        );
        let text = render(&mut Stat::new(dir.path(), &Options::default())).unwrap();
        assert!(
            text.contains("node_context_switches_total 18446744073709552000\n"),
            "{text}"
        );
    }

    #[test]
    fn missing_line_is_an_error() {
        let dir = TempDir::new();
        dir.write("stat", &STAT.replace("btime 1795617410\n", ""));
        let err = render(&mut Stat::new(dir.path(), &Options::default())).unwrap_err().to_string();
        assert!(err.ends_with("stat: no `btime` line"), "{err}");
    }

    #[test]
    fn malformed_value_names_the_line() {
        let dir = TempDir::new();
        dir.write("stat", &STAT.replace("ctxt 374767", "ctxt lots"));
        let err = render(&mut Stat::new(dir.path(), &Options::default())).unwrap_err().to_string();
        assert!(
            err.ends_with("stat line 4: ctxt: expected a whole number, got \"lots\""),
            "{err}"
        );
        dir.write("stat", &STAT.replace("procs_blocked 1", "procs_blocked"));
        assert!(render(&mut Stat::new(dir.path(), &Options::default())).is_err());
        dir.write("stat", &STAT.replace("intr 289613", "intr -1"));
        assert!(render(&mut Stat::new(dir.path(), &Options::default())).is_err());
    }

    #[test]
    fn softirq_adds_the_vectors() {
        let dir = TempDir::new();
        let options = Options { softirq: true };
        dir.write("stat", &STAT.replace("softirq 150253 0 21747 6\n", "softirq 150253 0 21747 6 9646 89501 0 214 85875 0 221182 7\n"));
        let text = render(&mut Stat::new(dir.path(), &options)).unwrap();
        let softirqs = text.split_once("# HELP node_softirqs_total").unwrap().1;
        assert_eq!(
            softirqs,
            " Number of softirq calls.\n\
             # TYPE node_softirqs_total counter\n\
             node_softirqs_total{vector=\"hi\"} 0\n\
             node_softirqs_total{vector=\"timer\"} 21747\n\
             node_softirqs_total{vector=\"net_tx\"} 6\n\
             node_softirqs_total{vector=\"net_rx\"} 9646\n\
             node_softirqs_total{vector=\"block\"} 89501\n\
             node_softirqs_total{vector=\"block_iopoll\"} 0\n\
             node_softirqs_total{vector=\"tasklet\"} 214\n\
             node_softirqs_total{vector=\"sched\"} 85875\n\
             node_softirqs_total{vector=\"hrtimer\"} 0\n\
             node_softirqs_total{vector=\"rcu\"} 221182\n"
        );
        // Without the option the line is not looked at.
        dir.write("stat", STAT);
        let text = render(&mut Stat::new(dir.path(), &Options::default())).unwrap();
        assert!(!text.contains("softirqs"), "{text}");
        // With it, a short, malformed or missing line fails the collector.
        let err = render(&mut Stat::new(dir.path(), &options)).unwrap_err().to_string();
        assert!(err.ends_with("stat line 9: softirq: expected a total and 10 counts, got 4"), "{err}");
        dir.write("stat", &STAT.replace("21747", "-1"));
        let err = render(&mut Stat::new(dir.path(), &options)).unwrap_err().to_string();
        assert!(err.ends_with("softirq: expected a whole number, got \"-1\""), "{err}");
        dir.write("stat", &STAT.replace("softirq 150253 0 21747 6\n", ""));
        let err = render(&mut Stat::new(dir.path(), &options)).unwrap_err().to_string();
        assert!(err.ends_with("stat: no `softirq` line"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut Stat::new(dir.path(), &Options::default())).is_err());
    }
}
