//! `node_pressure_*` from /proc/pressure/{cpu,io,memory} (pressure stall information).
//!
//! Each file has a `some` line and, for io and memory, a `full` line:
//! `some avg10=0.00 avg60=0.00 avg300=0.00 total=115890011`. node_exporter 1.5 exports
//! only the `total=` figures (microseconds), as seconds: cpu `some` (it ignores the
//! cpu `full` line kernels print since 5.13), io and memory `some` and `full`. Lines
//! with other prefixes are ignored, as procfs does.
//!
//! Quirks mirrored:
//! - the conversion is `total / 1000.0 / 1000.0`, two divisions as node_exporter
//!   does, so the rounding is the same (14.212871999999999, not 14.212872);
//! - a kernel without PSI (before 4.20, or `CONFIG_PSI` off, or `psi=0`) has no
//!   /proc/pressure files: node_exporter then reports `ErrNoData`, that is success 0
//!   and a debug log line rather than an error. A missing file gives
//!   [`CollectError::no_data`] here, which the registry treats the same way.
//!
//! Where node_exporter would crash on a nil pointer (a file without its `some` or
//! `full` line), this collector fails with a parse error instead.

use super::{Build, CollectError, Collector, Context, read_optional_file};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};

/// One exported figure: which file, which line, and the family it becomes.
struct Figure {
    resource: usize,
    line: &'static str,
    name: &'static str,
    help: &'static str,
}

const RESOURCES: [&str; 3] = ["cpu", "io", "memory"];

const FIGURES: [Figure; 5] = [
    Figure {
        resource: 0,
        line: "some",
        name: "node_pressure_cpu_waiting_seconds_total",
        help: "Total time in seconds that processes have waited for CPU time",
    },
    Figure {
        resource: 1,
        line: "some",
        name: "node_pressure_io_waiting_seconds_total",
        help: "Total time in seconds that processes have waited due to IO congestion",
    },
    Figure {
        resource: 1,
        line: "full",
        name: "node_pressure_io_stalled_seconds_total",
        help: "Total time in seconds no process could make progress due to IO congestion",
    },
    Figure {
        resource: 2,
        line: "some",
        name: "node_pressure_memory_waiting_seconds_total",
        help: "Total time in seconds that processes have waited for memory",
    },
    Figure {
        resource: 2,
        line: "full",
        name: "node_pressure_memory_stalled_seconds_total",
        help: "Total time in seconds no process could make progress due to memory congestion",
    },
];

pub struct Pressure {
    paths: [PathBuf; 3],
    bufs: [String; 3],
}

impl Pressure {
    pub fn new(procfs: &Path) -> Self {
        Pressure {
            paths: RESOURCES.map(|resource| procfs.join("pressure").join(resource)),
            bufs: Default::default(),
        }
    }

    /// Reads the three files; a missing one means no PSI: [`CollectError::no_data`].
    fn read(&mut self) -> Result<(), CollectError> {
        for (path, buf) in self.paths.iter().zip(&mut self.bufs) {
            if !read_optional_file(path, buf)? {
                return Err(CollectError::no_data(format!(
                    "{} does not exist: pressure stall information needs Linux 4.20 or later \
                     with CONFIG_PSI (and not psi=0)",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// The `total=` value, in microseconds, of the line starting with `prefix`.
fn total(text: &str, prefix: &str, path: &Path) -> Result<u64, CollectError> {
    for (index, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        if fields.next() != Some(prefix) {
            continue;
        }
        let parse_error = |what: String| CollectError::parse(path, index + 1, what);
        let value = fields
            .find_map(|field| field.strip_prefix("total="))
            .ok_or_else(|| parse_error(format!("no total= in {line:?}")))?;
        return value
            .parse()
            .map_err(|_| parse_error(format!("expected total=<microseconds>, got {value:?}")));
    }
    Err(CollectError::parse(
        path,
        text.lines().count() + 1,
        format!("no `{prefix}` line"),
    ))
}

impl Build for Pressure {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/pressure/cpu", "proc/pressure/io", "proc/pressure/memory"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Pressure::new(&context.paths.procfs)
    }
}

impl Collector for Pressure {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.read()?;
        let mut totals = [0u64; FIGURES.len()];
        for (figure, total_us) in FIGURES.iter().zip(&mut totals) {
            let (path, text) = (&self.paths[figure.resource], &self.bufs[figure.resource]);
            *total_us = total(text, figure.line, path)?;
        }
        for (figure, total_us) in FIGURES.iter().zip(totals) {
            out.family(figure.name, figure.help, Kind::Counter)
                .sample(&[], total_us as f64 / 1000.0 / 1000.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn write_all(dir: &TempDir) {
        dir.write(
            "pressure/cpu",
            "some avg10=22.52 avg60=19.04 avg300=18.44 total=14212872\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n",
        );
        dir.write(
            "pressure/io",
            "some avg10=0.00 avg60=0.05 avg300=0.10 total=5848016\n\
             full avg10=0.00 avg60=0.02 avg300=0.05 total=4768801\n",
        );
        dir.write(
            "pressure/memory",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551615\n",
        );
    }

    #[test]
    fn exports_totals_in_seconds_like_node_exporter() {
        let dir = TempDir::new();
        write_all(&dir);
        let text = render(&mut Pressure::new(dir.path())).unwrap();
        assert_eq!(
            text,
            "# HELP node_pressure_cpu_waiting_seconds_total Total time in seconds that processes have waited for CPU time\n\
             # TYPE node_pressure_cpu_waiting_seconds_total counter\n\
             node_pressure_cpu_waiting_seconds_total 14.212871999999999\n\
             # HELP node_pressure_io_waiting_seconds_total Total time in seconds that processes have waited due to IO congestion\n\
             # TYPE node_pressure_io_waiting_seconds_total counter\n\
             node_pressure_io_waiting_seconds_total 5.848015999999999\n\
             # HELP node_pressure_io_stalled_seconds_total Total time in seconds no process could make progress due to IO congestion\n\
             # TYPE node_pressure_io_stalled_seconds_total counter\n\
             node_pressure_io_stalled_seconds_total 4.768801000000001\n\
             # HELP node_pressure_memory_waiting_seconds_total Total time in seconds that processes have waited for memory\n\
             # TYPE node_pressure_memory_waiting_seconds_total counter\n\
             node_pressure_memory_waiting_seconds_total 0\n\
             # HELP node_pressure_memory_stalled_seconds_total Total time in seconds no process could make progress due to memory congestion\n\
             # TYPE node_pressure_memory_stalled_seconds_total counter\n\
             node_pressure_memory_stalled_seconds_total 18446744073709.55\n"
        );
    }

    #[test]
    fn no_psi_is_no_data_not_a_failure() {
        let dir = TempDir::new();
        let err = render(&mut Pressure::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        assert!(
            err.to_string().contains("pressure/cpu does not exist"),
            "{err}"
        );
        // A kernel with cpu but not memory (never seen, but possible in a fixture).
        write_all(&dir);
        std::fs::remove_file(dir.path().join("pressure/memory")).unwrap();
        assert!(render(&mut Pressure::new(dir.path()))
            .unwrap_err()
            .is_no_data());
    }

    #[test]
    fn old_kernels_without_cpu_full_line_are_fine() {
        let dir = TempDir::new();
        write_all(&dir);
        dir.write(
            "pressure/cpu",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
        );
        let text = render(&mut Pressure::new(dir.path())).unwrap();
        assert!(
            text.contains("node_pressure_cpu_waiting_seconds_total 1\n"),
            "{text}"
        );
    }

    #[test]
    fn malformed_files_are_parse_errors() {
        let dir = TempDir::new();
        for (file, bad, message) in [
            (
                "pressure/io",
                "some avg10=0.00 total=1\n",
                "io line 2: no `full` line",
            ),
            (
                "pressure/cpu",
                "full total=1\n",
                "cpu line 2: no `some` line",
            ),
            (
                "pressure/cpu",
                "some avg10=1\n",
                "cpu line 1: no total= in \"some avg10=1\"",
            ),
            (
                "pressure/memory",
                "some total=-1\nfull total=0\n",
                "memory line 1: expected total=<microseconds>, got \"-1\"",
            ),
            ("pressure/memory", "", "memory line 1: no `some` line"),
        ] {
            write_all(&dir);
            dir.write(file, bad);
            let err = render(&mut Pressure::new(dir.path())).unwrap_err();
            assert!(!err.is_no_data());
            assert!(err.to_string().ends_with(message), "{bad:?}: {err}");
        }
    }

    #[test]
    fn unknown_lines_are_ignored_and_files_may_come_back() {
        let dir = TempDir::new();
        let mut pressure = Pressure::new(dir.path());
        assert!(render(&mut pressure).is_err());
        write_all(&dir);
        dir.write(
            "pressure/io",
            "future avg10=1 total=x\nsome total=2000000\nfull total=3000000\n",
        );
        let text = render(&mut pressure).unwrap();
        assert!(
            text.contains("node_pressure_io_waiting_seconds_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("node_pressure_io_stalled_seconds_total 3\n"),
            "{text}"
        );
    }
}
