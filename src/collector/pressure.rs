//! `node_pressure_*` from /proc/pressure/{cpu,io,memory,irq} (pressure stall
//! information), as node_exporter 1.12 exports them.
//!
//! Each file has a `some` line and, for io, memory and irq, a `full` line:
//! `some avg10=0.00 avg60=0.00 avg300=0.00 total=115890011`. node_exporter exports
//! only the `total=` figures (microseconds), as seconds: cpu `some` (it ignores the
//! cpu `full` line kernels print since 5.13), io and memory `some` and `full`, irq
//! `full` (the kernel has no irq `some`). Lines with other prefixes are ignored, as
//! procfs does.
//!
//! Quirks mirrored:
//! - the conversion is `total / 1000.0 / 1000.0`, two divisions as node_exporter
//!   does, so the rounding is the same (14.212871999999999, not 14.212872);
//! - a missing file is skipped: /proc/pressure/irq needs Linux 6.1 with
//!   `CONFIG_IRQ_TIME_ACCOUNTING`. With none of the four (a kernel before 4.20,
//!   `CONFIG_PSI` off) node_exporter reports `ErrNoData`, that is success 0 and a
//!   debug log line rather than an error: [`CollectError::no_data`] here, which the
//!   registry treats the same way. So does EOPNOTSUPP (`psi=0` on the kernel command
//!   line), and a file without the line it needs.
//!
//! Changed since node_exporter 1.5: the irq file and its
//! `node_pressure_irq_stalled_seconds_total` (1.9); a missing file no longer makes
//! the whole collector no-data as long as another one exists (1.9.1).
//!
//! Where node_exporter differs: when a later file lacks its `some` or `full` line it
//! returns `ErrNoData` after sending the families of the files before it, which it
//! then still serves; here a failing cycle writes nothing (the registry rolls back),
//! so the series of one cycle always come from a consistent set of files.

use super::{read_file_io, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::path::{Path, PathBuf};

/// One exported figure: the line it is read from and the family it becomes.
struct Figure {
    line: &'static str,
    name: &'static str,
    help: &'static str,
}

/// One file of /proc/pressure and the figures node_exporter takes from it.
struct Resource {
    file: &'static str,
    figures: &'static [Figure],
}

const RESOURCES: [Resource; 4] = [
    Resource {
        file: "cpu",
        figures: &[Figure {
            line: "some",
            name: "node_pressure_cpu_waiting_seconds_total",
            help: "Total time in seconds that processes have waited for CPU time",
        }],
    },
    Resource {
        file: "io",
        figures: &[
            Figure {
                line: "some",
                name: "node_pressure_io_waiting_seconds_total",
                help: "Total time in seconds that processes have waited due to IO congestion",
            },
            Figure {
                line: "full",
                name: "node_pressure_io_stalled_seconds_total",
                help: "Total time in seconds no process could make progress due to IO congestion",
            },
        ],
    },
    Resource {
        file: "memory",
        figures: &[
            Figure {
                line: "some",
                name: "node_pressure_memory_waiting_seconds_total",
                help: "Total time in seconds that processes have waited for memory",
            },
            Figure {
                line: "full",
                name: "node_pressure_memory_stalled_seconds_total",
                help: "Total time in seconds no process could make progress due to memory congestion",
            },
        ],
    },
    Resource {
        file: "irq",
        figures: &[Figure {
            line: "full",
            name: "node_pressure_irq_stalled_seconds_total",
            help: "Total time in seconds no process could make progress due to IRQ congestion",
        }],
    },
];

/// How many figures the four files give.
const MAX_FIGURES: usize = {
    let (mut count, mut index) = (0, 0);
    while index < RESOURCES.len() {
        count += RESOURCES[index].figures.len();
        index += 1;
    }
    count
};

pub struct Pressure {
    paths: [PathBuf; RESOURCES.len()],
    buf: String,
    /// This cycle's totals in microseconds, per figure of [`RESOURCES`] in order;
    /// `None` for the figures of a missing file.
    totals: [Option<u64>; MAX_FIGURES],
}

impl Pressure {
    pub fn new(procfs: &Path) -> Self {
        Pressure {
            paths: RESOURCES.map(|resource| procfs.join("pressure").join(resource.file)),
            buf: String::new(),
            totals: [None; MAX_FIGURES],
        }
    }

    /// Reads the four files into `totals`.
    fn read(&mut self) -> Result<(), CollectError> {
        self.totals = [None; MAX_FIGURES];
        let mut slot = 0;
        let mut found = 0;
        for (resource, path) in RESOURCES.iter().zip(&self.paths) {
            let figures = slot..slot + resource.figures.len();
            slot = figures.end;
            match read_file_io(path, &mut self.buf) {
                Ok(()) => found += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => {
                    return Err(CollectError::no_data(format!(
                        "{}: {e}: pressure stall information is disabled (psi=0 on the \
                         kernel command line)",
                        path.display()
                    )));
                }
                Err(e) => return Err(CollectError::io(path, &e)),
            }
            for (figure, total) in resource.figures.iter().zip(&mut self.totals[figures]) {
                *total = Some(total_of(&self.buf, figure.line, path)?);
            }
        }
        if found == 0 {
            return Err(CollectError::no_data(format!(
                "{} has none of cpu, io, memory, irq: pressure stall information needs \
                 Linux 4.20 or later with CONFIG_PSI",
                self.paths[0].parent().unwrap_or(Path::new("")).display()
            )));
        }
        Ok(())
    }
}

/// The `total=` value, in microseconds, of the line starting with `prefix`.
fn total_of(text: &str, prefix: &str, path: &Path) -> Result<u64, CollectError> {
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
    // node_exporter: "pressure information returned no 'some' data", ErrNoData.
    Err(CollectError::no_data(format!(
        "{} has no `{prefix}` line",
        path.display()
    )))
}

impl Build for Pressure {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "proc/pressure/cpu",
        "proc/pressure/io",
        "proc/pressure/memory",
        "proc/pressure/irq",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Pressure::new(&context.paths.procfs)
    }
}

impl Collector for Pressure {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.read()?;
        let figures = RESOURCES.iter().flat_map(|resource| resource.figures);
        for (figure, total) in figures.zip(self.totals) {
            if let Some(total_us) = total {
                out.family(figure.name, figure.help, Kind::Counter)
                    .sample(&[], total_us as f64 / 1000.0 / 1000.0);
            }
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
        dir.write(
            "pressure/irq",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n",
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
             node_pressure_memory_stalled_seconds_total 18446744073709.55\n\
             # HELP node_pressure_irq_stalled_seconds_total Total time in seconds no process could make progress due to IRQ congestion\n\
             # TYPE node_pressure_irq_stalled_seconds_total counter\n\
             node_pressure_irq_stalled_seconds_total 2.5\n"
        );
    }

    #[test]
    fn no_psi_at_all_is_no_data_not_a_failure() {
        let dir = TempDir::new();
        let err = render(&mut Pressure::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        assert!(err.to_string().contains("has none of cpu, io, memory, irq"), "{err}");
    }

    #[test]
    fn a_missing_file_leaves_out_only_its_families() {
        let dir = TempDir::new();
        write_all(&dir);
        // Linux before 6.1, or without IRQ time accounting.
        std::fs::remove_file(dir.path().join("pressure/irq")).unwrap();
        let text = render(&mut Pressure::new(dir.path())).unwrap();
        assert!(!text.contains("irq"), "{text}");
        assert!(text.contains("node_pressure_memory_stalled_seconds_total "));
        std::fs::remove_file(dir.path().join("pressure/io")).unwrap();
        let text = render(&mut Pressure::new(dir.path())).unwrap();
        assert!(!text.contains("node_pressure_io_"), "{text}");
        assert!(text.contains("node_pressure_cpu_waiting_seconds_total 14.21"));
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
    fn a_file_without_its_line_is_no_data() {
        let dir = TempDir::new();
        for (file, bad, message) in [
            ("pressure/io", "some avg10=0.00 total=1\n", "io has no `full` line"),
            ("pressure/cpu", "full total=1\n", "cpu has no `some` line"),
            ("pressure/irq", "some total=1\n", "irq has no `full` line"),
            ("pressure/memory", "", "memory has no `some` line"),
        ] {
            write_all(&dir);
            dir.write(file, bad);
            let err = render(&mut Pressure::new(dir.path())).unwrap_err();
            assert!(err.is_no_data(), "{bad:?}: {err}");
            assert!(err.to_string().ends_with(message), "{bad:?}: {err}");
        }
    }

    #[test]
    fn malformed_totals_are_parse_errors() {
        let dir = TempDir::new();
        for (file, bad, message) in [
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
            (
                "pressure/irq",
                "full total=1e3\n",
                "irq line 1: expected total=<microseconds>, got \"1e3\"",
            ),
        ] {
            write_all(&dir);
            dir.write(file, bad);
            let err = render(&mut Pressure::new(dir.path())).unwrap_err();
            assert!(!err.is_no_data());
            assert!(err.to_string().ends_with(message), "{bad:?}: {err}");
        }
        // A directory where a file should be is a failure, not "no PSI".
        write_all(&dir);
        std::fs::remove_file(dir.path().join("pressure/io")).unwrap();
        std::fs::create_dir(dir.path().join("pressure/io")).unwrap();
        let err = render(&mut Pressure::new(dir.path())).unwrap_err();
        assert!(!err.is_no_data(), "{err}");
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
        std::fs::remove_file(dir.path().join("pressure/io")).unwrap();
        let text = render(&mut pressure).unwrap();
        assert!(!text.contains("node_pressure_io_"), "{text}");
    }
}
