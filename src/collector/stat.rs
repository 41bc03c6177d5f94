//! `node_intr_total`, `node_context_switches_total`, `node_forks_total`,
//! `node_boot_time_seconds`, `node_procs_running` and `node_procs_blocked` from
//! /proc/stat, as node_exporter's stat collector exports them.
//!
//! Only the first number of the `intr` line (the total) is read. Softirqs per vector
//! are left out: node_exporter exports them only with `--collector.stat.softirq`.
//!
//! node_exporter (through Go's procfs) reports 0 for a line that is missing; here a
//! missing line is an error, so a broken /proc/stat shows as a failed collector rather
//! than as a boot time of 1970.

use super::{Build, CollectError, Collector, Context, read_file};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};

pub struct Stat {
    path: PathBuf,
    buf: String,
}

impl Stat {
    pub fn new(procfs: &Path) -> Self {
        Stat {
            path: procfs.join("stat"),
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
}

impl Build for Stat {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/stat"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Stat::new(&context.paths.procfs)
    }
}

impl Collector for Stat {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        let values = self.parse()?;
        for (field, value) in FIELDS.iter().zip(values) {
            out.family(field.name, field.help, field.kind)
                .sample(&[], value);
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
        let text = render(&mut Stat::new(dir.path())).unwrap();
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
        let text = render(&mut Stat::new(dir.path())).unwrap();
        assert!(
            text.contains("node_context_switches_total 18446744073709552000\n"),
            "{text}"
        );
    }

    #[test]
    fn missing_line_is_an_error() {
        let dir = TempDir::new();
        dir.write("stat", &STAT.replace("btime 1795617410\n", ""));
        let err = render(&mut Stat::new(dir.path())).unwrap_err().to_string();
        assert!(err.ends_with("stat: no `btime` line"), "{err}");
    }

    #[test]
    fn malformed_value_names_the_line() {
        let dir = TempDir::new();
        dir.write("stat", &STAT.replace("ctxt 374767", "ctxt lots"));
        let err = render(&mut Stat::new(dir.path())).unwrap_err().to_string();
        assert!(
            err.ends_with("stat line 4: ctxt: expected a whole number, got \"lots\""),
            "{err}"
        );
        dir.write("stat", &STAT.replace("procs_blocked 1", "procs_blocked"));
        assert!(render(&mut Stat::new(dir.path())).is_err());
        dir.write("stat", &STAT.replace("intr 289613", "intr -1"));
        assert!(render(&mut Stat::new(dir.path())).is_err());
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut Stat::new(dir.path())).is_err());
    }
}
