//! `node_kernel_hung_task_detect_count` from /proc/sys/kernel/hung_task_detect_count:
//! how many tasks the kernel's hung task detector has reported since boot.
//!
//! Follows node_exporter 1.12 (1.5 has no such collector). Off by default, as there.
//!
//! Quirks mirrored: the family is a counter without `_total` and its HELP is
//! "Total number of interrupts serviced." (node_exporter copied it from the
//! interrupts collector); a kernel without `CONFIG_DETECT_HUNG_TASK` has no file,
//! which node_exporter reports as an ordinary error, not as "no data", so it is one
//! here too (logged once, when the collector starts failing).

use super::{parse_uint, read_value, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::path::{Path, PathBuf};

pub struct KernelHung {
    path: PathBuf,
    buf: String,
}

impl KernelHung {
    pub fn new(procfs: &Path) -> Self {
        KernelHung {
            path: procfs.join("sys/kernel/hung_task_detect_count"),
            buf: String::new(),
        }
    }
}

impl Build for KernelHung {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/sys/kernel/hung_task_detect_count"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        KernelHung::new(&context.paths.procfs)
    }
}

impl Collector for KernelHung {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let text = read_value(&self.path, &mut self.buf).map_err(|e| CollectError::io(&self.path, &e))?;
        let count = parse_uint(&self.path, text)?;
        out.family(
            "node_kernel_hung_task_detect_count",
            "Total number of interrupts serviced.",
            Kind::Counter,
        )
        .sample(&[], count as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    #[test]
    fn reads_the_count() {
        let dir = TempDir::new();
        dir.write("sys/kernel/hung_task_detect_count", "3\n");
        assert_eq!(
            render(&mut KernelHung::new(dir.path())).unwrap(),
            "# HELP node_kernel_hung_task_detect_count Total number of interrupts serviced.\n\
             # TYPE node_kernel_hung_task_detect_count counter\n\
             node_kernel_hung_task_detect_count 3\n"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_and_a_bad_value_names_the_file() {
        let dir = TempDir::new();
        let err = render(&mut KernelHung::new(dir.path())).unwrap_err();
        assert!(!err.is_no_data());
        assert!(err.to_string().contains("hung_task_detect_count: "), "{err}");
        dir.write("sys/kernel/hung_task_detect_count", "many\n");
        let err = render(&mut KernelHung::new(dir.path())).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "sys/kernel/hung_task_detect_count line 1: expected an unsigned integer, got \"many\""
            ),
            "{err}"
        );
    }
}
