//! `node_schedstat_{running,waiting}_seconds_total` and `node_schedstat_timeslices_total`
//! per CPU from /proc/schedstat, as node_exporter 1.12 (and 1.5, the same) reports them.
//!
//! A CPU line is `cpu<N>` and nine numbers (schedstat version 15 and later); the
//! last three are the nanoseconds spent running, the nanoseconds spent waiting on
//! the run queue and the timeslices run. `version`, `timestamp` and `domain<N>` lines
//! are skipped, as procfs skips every line its `cpu<N>` pattern does not match. The
//! nanoseconds become seconds as `ns / 1e9`, the `cpu` label is `<N>` as written.
//!
//! A kernel built without `CONFIG_SCHEDSTATS` has no /proc/schedstat: node_exporter
//! reports `ErrNoData`, so [`CollectError::no_data`] here (one failed open a cycle,
//! logged at debug level only).
//!
//! Where this differs from node_exporter: a `cpu<N>` line that does not have nine
//! numbers, or whose numbers overflow 64 bits, is silently dropped by procfs, so that
//! CPU's series would vanish without a word; here it fails the collector with an
//! error naming the file and line. A CPU listed twice (never by the kernel) is
//! reported once, from its first line, where node_exporter would fail the scrape
//! with a duplicate series.

use super::{read_optional_file, Build, CollectError, Collector, Context, Seen};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One `cpu<N>` line: where `<N>` is in the buffer, and its last three figures.
struct Cpu {
    number: Range<usize>,
    running_ns: u64,
    waiting_ns: u64,
    timeslices: u64,
}

pub struct Schedstat {
    path: PathBuf,
    buf: String,
    cpus: Vec<Cpu>,
    seen: Seen,
}

impl Schedstat {
    pub fn new(procfs: &Path) -> Self {
        Schedstat {
            path: procfs.join("schedstat"),
            buf: String::new(),
            cpus: Vec::new(),
            seen: Seen::default(),
        }
    }
}

/// How many numbers follow `cpu<N>`; the last three are exported.
const CPU_FIELDS: usize = 9;

/// Parses a `cpu<N> ...` line (`line` without its `cpu` prefix, `offset` its position
/// in the buffer); `None` when it is not a CPU line at all.
fn parse_cpu(line: &str, offset: usize) -> Option<Result<Cpu, String>> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let mut figures = [0u64; CPU_FIELDS];
    let mut fields = line[digits..].split(' ');
    // procfs's pattern wants exactly one space between fields.
    if fields.next() != Some("") {
        return Some(Err("expected a space after the CPU number".into()));
    }
    for (index, figure) in figures.iter_mut().enumerate() {
        let field = fields.next().unwrap_or_default();
        let parsed = Some(field)
            .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|f| f.parse().ok());
        match parsed {
            Some(value) => *figure = value,
            None => {
                return Some(Err(format!(
                    "field {}: expected an unsigned 64-bit integer, got {field:?}",
                    index + 1
                )))
            }
        }
    }
    let [.., running_ns, waiting_ns, timeslices] = figures;
    Some(Ok(Cpu {
        number: offset..offset + digits,
        running_ns,
        waiting_ns,
        timeslices,
    }))
}

/// A family: its name, HELP, and the figure of a CPU it reports, scaled.
type Family = (&'static str, &'static str, fn(&Cpu) -> f64);

const FAMILIES: [Family; 3] = [
    (
        "node_schedstat_running_seconds_total",
        "Number of seconds CPU spent running a process.",
        |cpu| cpu.running_ns as f64 / 1e9,
    ),
    (
        "node_schedstat_waiting_seconds_total",
        "Number of seconds spent by processing waiting for this CPU.",
        |cpu| cpu.waiting_ns as f64 / 1e9,
    ),
    (
        "node_schedstat_timeslices_total",
        "Number of timeslices executed by CPU.",
        |cpu| cpu.timeslices as f64,
    ),
];

impl Build for Schedstat {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/schedstat"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Schedstat::new(&context.paths.procfs)
    }
}

impl Collector for Schedstat {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        if !read_optional_file(&self.path, &mut self.buf)? {
            return Err(CollectError::no_data(format!(
                "{} does not exist: the kernel is built without CONFIG_SCHEDSTATS",
                self.path.display()
            )));
        }
        self.cpus.clear();
        self.seen.clear();
        let mut offset = 0;
        for (index, line) in self.buf.split_inclusive('\n').enumerate() {
            let start = offset;
            offset += line.len();
            let line = line.trim_end_matches('\n');
            let Some(rest) = line.strip_prefix("cpu") else {
                continue;
            };
            match parse_cpu(rest, start + 3) {
                None => continue,
                Some(Ok(cpu)) => {
                    // The kernel lists a CPU once; a repeat would be a series twice.
                    if self.seen.first(self.buf.get(cpu.number.clone()).unwrap_or_default()) {
                        self.cpus.push(cpu);
                    }
                }
                Some(Err(what)) => return Err(CollectError::parse(&self.path, index + 1, what)),
            }
        }
        if self.cpus.is_empty() {
            return Ok(());
        }
        for (name, help, figure) in FAMILIES {
            let mut family = out.family(name, help, Kind::Counter);
            for cpu in &self.cpus {
                let number = self.buf.get(cpu.number.clone()).unwrap_or_default();
                family.sample(&[("cpu", number)], figure(cpu));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const SCHEDSTAT: &str = "version 17\n\
        timestamp 4297299139\n\
        cpu0 0 0 0 0 0 0 2319478433 35462584 16394\n\
        domain0 MC 03 31 30 0 53 4 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
        cpu1 0 0 0 0 0 0 18446744073709551615 1 0\n\
        domain0 MC 03 31 30 0 53 4 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn reports_each_cpu_in_seconds() {
        let dir = TempDir::new();
        dir.write("schedstat", SCHEDSTAT);
        let mut collector = Schedstat::new(dir.path());
        for _ in 0..2 {
            let text = render(&mut collector).unwrap();
            assert!(text.starts_with(
                "# HELP node_schedstat_running_seconds_total Number of seconds CPU spent running a process.\n\
                 # TYPE node_schedstat_running_seconds_total counter\n"
            ));
            assert_eq!(
                samples(&text),
                [
                    "node_schedstat_running_seconds_total{cpu=\"0\"} 2.319478433",
                    "node_schedstat_running_seconds_total{cpu=\"1\"} 18446744073.709553",
                    "node_schedstat_waiting_seconds_total{cpu=\"0\"} 0.035462584",
                    "node_schedstat_waiting_seconds_total{cpu=\"1\"} 1e-9",
                    "node_schedstat_timeslices_total{cpu=\"0\"} 16394",
                    "node_schedstat_timeslices_total{cpu=\"1\"} 0",
                ]
            );
        }
    }

    #[test]
    fn extra_figures_are_ignored_and_other_lines_skipped() {
        let dir = TempDir::new();
        dir.write("schedstat", "cpu12 1 2 3 4 5 6 7000000000 8 9 10 11\ncpus 1\ncpu\nnotcpu0 1\n");
        let text = render(&mut Schedstat::new(dir.path())).unwrap();
        assert_eq!(
            samples(&text),
            [
                "node_schedstat_running_seconds_total{cpu=\"12\"} 7",
                "node_schedstat_waiting_seconds_total{cpu=\"12\"} 8e-9",
                "node_schedstat_timeslices_total{cpu=\"12\"} 9",
            ]
        );
        // A repeated CPU keeps its first line.
        dir.write("schedstat", "cpu3 0 0 0 0 0 0 1 2 3\ncpu3 0 0 0 0 0 0 4 5 6\n");
        let text = render(&mut Schedstat::new(dir.path())).unwrap();
        assert!(text.contains("node_schedstat_timeslices_total{cpu=\"3\"} 3\n"), "{text}");
        assert!(!text.contains("} 6\n"), "{text}");
        dir.write("schedstat", "version 15\ntimestamp 1\n");
        assert_eq!(render(&mut Schedstat::new(dir.path())).unwrap(), "");
    }

    #[test]
    fn a_short_or_overflowing_cpu_line_names_the_file_and_line() {
        let dir = TempDir::new();
        for (line, what) in [
            ("cpu0 0 0 0 0 0 0 1 2", "field 9: expected an unsigned 64-bit integer, got \"\""),
            ("cpu0 0 0 0 0 0 0 18446744073709551616 2 3", "field 7: expected an unsigned 64-bit integer, got \"18446744073709551616\""),
            ("cpu0  0 0 0 0 0 0 1 2 3", "field 1: expected an unsigned 64-bit integer, got \"\""),
            ("cpu0\t0 0 0 0 0 0 1 2 3", "expected a space after the CPU number"),
            ("cpu0 0 0 0 0 0 0 -1 2 3", "field 7: expected an unsigned 64-bit integer, got \"-1\""),
        ] {
            dir.write("schedstat", &format!("version 15\n{line}\n"));
            let err = render(&mut Schedstat::new(dir.path())).unwrap_err();
            assert!(!err.is_no_data());
            assert!(err.to_string().ends_with(&format!("schedstat line 2: {what}")), "{line:?}: {err}");
        }
    }

    #[test]
    fn no_file_is_no_data() {
        let dir = TempDir::new();
        let err = render(&mut Schedstat::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        assert!(err.to_string().contains("CONFIG_SCHEDSTATS"), "{err}");
    }
}
