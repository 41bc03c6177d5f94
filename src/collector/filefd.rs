//! `node_filefd_allocated` and `node_filefd_maximum` from `<procfs>/sys/fs/file-nr`,
//! whose three numbers are allocated handles, free handles (always 0 since Linux 2.6,
//! not exported) and the maximum.

use super::{Build, CollectError, Collector, Context, read_value};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};

pub struct Filefd {
    path: PathBuf,
    buf: String,
}

impl Filefd {
    pub fn new(procfs: &Path) -> Self {
        Filefd {
            path: procfs.join("sys/fs/file-nr"),
            buf: String::new(),
        }
    }

    /// The allocated and maximum counts.
    fn parse(&mut self) -> Result<[f64; 2], CollectError> {
        let text = read_value(&self.path, &mut self.buf).map_err(|e| CollectError::io(&self.path, &e))?;
        let mut numbers = [0.0; 3];
        let mut words = text.split_ascii_whitespace();
        for number in &mut numbers {
            let word = words.next().unwrap_or_default();
            *number = word.parse::<u64>().map_err(|_| {
                CollectError::parse(
                    &self.path,
                    1,
                    format!("expected three whole numbers, got {text:?}"),
                )
            })? as f64;
        }
        Ok([numbers[0], numbers[2]])
    }
}

impl Build for Filefd {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/sys/fs/file-nr"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Filefd::new(&context.paths.procfs)
    }
}

impl Collector for Filefd {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let [allocated, maximum] = self.parse()?;
        out.family(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            Kind::Gauge,
        )
        .sample(&[], allocated);
        out.family(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            Kind::Gauge,
        )
        .sample(&[], maximum);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    #[test]
    fn reads_allocated_and_maximum() {
        let dir = TempDir::new();
        dir.write("sys/fs/file-nr", "290\t0\t9223372036854775807\n");
        let text = render(&mut Filefd::new(dir.path())).unwrap();
        assert_eq!(
            text,
            "# HELP node_filefd_allocated File descriptor statistics: allocated.\n\
             # TYPE node_filefd_allocated gauge\nnode_filefd_allocated 290\n\
             # HELP node_filefd_maximum File descriptor statistics: maximum.\n\
             # TYPE node_filefd_maximum gauge\nnode_filefd_maximum 9223372036854776000\n"
        );
    }

    #[test]
    fn missing_or_malformed_file_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut Filefd::new(dir.path())).is_err());
        dir.write("sys/fs/file-nr", "290\t0\n");
        let err = render(&mut Filefd::new(dir.path())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("file-nr line 1: expected three whole numbers, got \"290\\t0\""),
            "{err}"
        );
        dir.write("sys/fs/file-nr", "a\t0\t1\n");
        assert!(render(&mut Filefd::new(dir.path())).is_err());
    }
}
