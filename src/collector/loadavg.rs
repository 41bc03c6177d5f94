//! `node_load1`, `node_load5`, `node_load15` from /proc/loadavg.
//!
//! Parsed here rather than with `procfs::LoadAverage`, which reads the figures as
//! `f32`: 0.31 would become 0.3100000023841858 and no longer equal node_exporter's.

use super::{Build, CollectError, Collector, Context, read_file};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};

pub struct Loadavg {
    path: PathBuf,
    buf: String,
}

impl Loadavg {
    pub fn new(procfs: &Path) -> Self {
        Loadavg {
            path: procfs.join("loadavg"),
            buf: String::new(),
        }
    }
}

const FAMILIES: [(&str, &str); 3] = [
    ("node_load1", "1m load average."),
    ("node_load5", "5m load average."),
    ("node_load15", "15m load average."),
];

impl Build for Loadavg {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/loadavg"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Loadavg::new(&context.paths.procfs)
    }
}

impl Collector for Loadavg {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        let mut fields = self.buf.split_ascii_whitespace();
        let mut loads = [0.0; 3];
        for load in &mut loads {
            let field = fields.next().unwrap_or_default();
            *load = field
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    CollectError::parse(
                        &self.path,
                        1,
                        format!("expected a load average, got {field:?}"),
                    )
                })?;
        }
        for ((name, help), load) in FAMILIES.into_iter().zip(loads) {
            out.family(name, help, Kind::Gauge).sample(&[], load);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    #[test]
    fn reads_the_three_averages_exactly() {
        let dir = TempDir::new();
        dir.write("loadavg", "0.31 1.05 12.50 2/345 6789\n");
        let text = render(&mut Loadavg::new(dir.path())).unwrap();
        assert_eq!(
            text,
            "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.31\n\
             # HELP node_load5 5m load average.\n# TYPE node_load5 gauge\nnode_load5 1.05\n\
             # HELP node_load15 15m load average.\n# TYPE node_load15 gauge\nnode_load15 12.5\n"
        );
    }

    #[test]
    fn malformed_file_names_file_and_line() {
        let dir = TempDir::new();
        dir.write("loadavg", "0.31 garbage\n");
        let err = render(&mut Loadavg::new(dir.path())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("loadavg line 1: expected a load average, got \"garbage\""),
            "{err}"
        );
        dir.write("loadavg", "");
        assert!(render(&mut Loadavg::new(dir.path())).is_err());
        dir.write("loadavg", "NaN inf 1\n");
        assert!(render(&mut Loadavg::new(dir.path())).is_err());
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut Loadavg::new(dir.path())).is_err());
    }
}
