//! `node_entropy_available_bits` and `node_entropy_pool_size_bits` from
//! `<procfs>/sys/kernel/random/entropy_avail` and `poolsize`.
//!
//! Since Linux 5.18 both read 256 on every machine; node_exporter exports them anyway.

use super::{Build, CollectError, Collector, Context, read_value};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};

/// The files read and the families they become.
const FILES: [(&str, &str, &str); 2] = [
    (
        "entropy_avail",
        "node_entropy_available_bits",
        "Bits of available entropy.",
    ),
    (
        "poolsize",
        "node_entropy_pool_size_bits",
        "Bits of entropy pool.",
    ),
];

pub struct Entropy {
    paths: [PathBuf; FILES.len()],
    buf: String,
}

impl Entropy {
    pub fn new(procfs: &Path) -> Self {
        let dir = procfs.join("sys/kernel/random");
        Entropy {
            paths: FILES.map(|(file, _, _)| dir.join(file)),
            buf: String::new(),
        }
    }
}

impl Build for Entropy {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/sys/kernel/random/entropy_avail", "proc/sys/kernel/random/poolsize"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Entropy::new(&context.paths.procfs)
    }
}

impl Collector for Entropy {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let mut values = [0.0; FILES.len()];
        for (path, value) in self.paths.iter().zip(&mut values) {
            let text = read_value(path, &mut self.buf).map_err(|e| CollectError::io(path, &e))?;
            let bits: u64 = text.parse().map_err(|_| {
                CollectError::parse(path, 1, format!("expected a whole number, got {text:?}"))
            })?;
            *value = bits as f64;
        }
        for ((_, name, help), value) in FILES.iter().zip(values) {
            out.family(*name, *help, Kind::Gauge).sample(&[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    #[test]
    fn reads_both_files() {
        let dir = TempDir::new();
        dir.write("sys/kernel/random/entropy_avail", "256\n");
        dir.write("sys/kernel/random/poolsize", "4096\n");
        let text = render(&mut Entropy::new(dir.path())).unwrap();
        assert_eq!(
            text,
            "# HELP node_entropy_available_bits Bits of available entropy.\n\
             # TYPE node_entropy_available_bits gauge\nnode_entropy_available_bits 256\n\
             # HELP node_entropy_pool_size_bits Bits of entropy pool.\n\
             # TYPE node_entropy_pool_size_bits gauge\nnode_entropy_pool_size_bits 4096\n"
        );
    }

    #[test]
    fn missing_or_malformed_file_is_an_error() {
        let dir = TempDir::new();
        dir.write("sys/kernel/random/entropy_avail", "256\n");
        let err = render(&mut Entropy::new(dir.path())).unwrap_err();
        assert!(err.to_string().contains("poolsize"), "{err}");
        dir.write("sys/kernel/random/poolsize", "big\n");
        let err = render(&mut Entropy::new(dir.path())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("poolsize line 1: expected a whole number, got \"big\""),
            "{err}"
        );
        dir.write("sys/kernel/random/poolsize", "");
        assert!(render(&mut Entropy::new(dir.path())).is_err());
    }
}
