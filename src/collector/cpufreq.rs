//! `node_cpu_frequency_*`, `node_cpu_scaling_frequency_*` and
//! `node_cpu_scaling_governor` from `<sysfs>/devices/system/cpu/cpu<N>/cpufreq/`, as
//! node_exporter 1.12's cpufreq collector exports them (procfs's `SystemCpufreq`).
//!
//! Per CPU directory (`cpu[0-9]*`, in name order; label `cpu` is the name without
//! `cpu`):
//! - no `cpufreq` directory (a VM, an offline CPU): nothing for that CPU;
//! - `cpuinfo_{cur,min,max}_freq` and `scaling_{cur,min,max}_freq` are kHz, exported
//!   in hertz (× 1000.0); one missing or unreadable for permissions is left out, as
//!   is `cpuinfo_cur_freq` for a non-root reader (it is mode 0400). A value that is
//!   not a decimal whole number fails the collector, and so does
//!   `cpuinfo_transition_latency`, which procfs reads and node_exporter never exports;
//! - `scaling_available_governors`, `scaling_driver` and `scaling_governor` are
//!   required: a CPU with `cpufreq` but without one of them fails the collector.
//!   With a governor, `node_cpu_scaling_governor{governor}` has one series per entry
//!   of the available list split at single spaces (so `a  b` gives an empty
//!   governor too, as in node_exporter), 1 for the one in use.
//!
//! No `cpu[0-9]*` directory at all (no sysfs) fails the collector, as node_exporter's
//! "could not find any cpufreq files" does: a real error, not "no data". A machine
//! whose CPUs have no cpufreq (this VM) succeeds with no series.
//!
//! node_exporter 1.5 has the same families, HELP and TYPE (the lower-case "cpu" in the
//! `node_cpu_frequency_*` HELP texts included) but no `node_cpu_scaling_governor`,
//! which later releases added and 1.12 has. Differences: procfs reads
//! CPUs in parallel and reports whichever error comes first; here the first in name
//! order. A governor listed twice is reported once (node_exporter's registry would
//! refuse the repeat). The text attributes are read as procfs reads them (one read,
//! at most 128 bytes); bytes that are not UTF-8 become U+FFFD.

use super::go_parse::{parse_uint, push_valid_utf8, trim_space};
use super::{
    list_dir, read_sys_value, read_value, set_path, Build, CollectError, Collector, Context,
    Seen,
};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::path::{Path, PathBuf};

/// A frequency attribute (kHz) and the family it becomes, if node_exporter exports it.
struct Number {
    file: &'static str,
    family: Option<(&'static str, &'static str)>,
}

const NUMBERS: [Number; 7] = [
    Number {
        file: "cpuinfo_cur_freq",
        family: Some((
            "node_cpu_frequency_hertz",
            "Current cpu thread frequency in hertz.",
        )),
    },
    Number {
        file: "cpuinfo_min_freq",
        family: Some((
            "node_cpu_frequency_min_hertz",
            "Minimum cpu thread frequency in hertz.",
        )),
    },
    Number {
        file: "cpuinfo_max_freq",
        family: Some((
            "node_cpu_frequency_max_hertz",
            "Maximum cpu thread frequency in hertz.",
        )),
    },
    Number {
        file: "cpuinfo_transition_latency",
        family: None,
    },
    Number {
        file: "scaling_cur_freq",
        family: Some((
            "node_cpu_scaling_frequency_hertz",
            "Current scaled CPU thread frequency in hertz.",
        )),
    },
    Number {
        file: "scaling_min_freq",
        family: Some((
            "node_cpu_scaling_frequency_min_hertz",
            "Minimum scaled CPU thread frequency in hertz.",
        )),
    },
    Number {
        file: "scaling_max_freq",
        family: Some((
            "node_cpu_scaling_frequency_max_hertz",
            "Maximum scaled CPU thread frequency in hertz.",
        )),
    },
];

/// The text attributes procfs requires; the driver is read and not exported.
const AVAILABLE_GOVERNORS: &str = "scaling_available_governors";
const DRIVER: &str = "scaling_driver";
const GOVERNOR: &str = "scaling_governor";

const KHZ_TO_HZ: f64 = 1000.0;

/// What was read for one CPU; slots are reused from cycle to cycle.
#[derive(Default)]
struct Cpu {
    has_cpufreq: bool,
    numbers: [Option<u64>; NUMBERS.len()],
    available_governors: String,
    governor: String,
}

pub struct Cpufreq {
    /// `<sysfs>/devices/system/cpu`.
    dir: PathBuf,
    /// The path of the attribute being read.
    path: PathBuf,
    text: String,
    raw: Vec<u8>,
    /// This cycle's `cpu<N>` names in the first `len` slots.
    names: Vec<String>,
    /// What was read for each of `names`, same index.
    cpus: Vec<Cpu>,
    len: usize,
    governors: Seen,
}

impl Cpufreq {
    pub fn new(sysfs: &Path) -> Self {
        Cpufreq {
            dir: sysfs.join("devices/system/cpu"),
            path: PathBuf::new(),
            text: String::new(),
            raw: Vec::new(),
            names: Vec::new(),
            cpus: Vec::new(),
            len: 0,
            governors: Seen::default(),
        }
    }

    /// Lists the `cpu[0-9]*` entries, as procfs globs them.
    fn list(&mut self) -> Result<(), CollectError> {
        let keep = |_: &std::fs::DirEntry, name: &str| {
            name.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        // A missing directory lists nothing, as a Go glob does.
        self.len = match list_dir(&self.dir, &mut self.names, keep) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(CollectError::io(&self.dir, &e)),
        };
        if self.len == 0 {
            return Err(CollectError::new(format!(
                "{}: no cpu[0-9]* directories, so no cpufreq files",
                self.dir.display()
            )));
        }
        if self.cpus.len() < self.len {
            self.cpus.resize_with(self.len, Cpu::default);
        }
        Ok(())
    }

    fn read(&mut self) -> Result<(), CollectError> {
        for (name, cpu) in self.names.iter().zip(&mut self.cpus).take(self.len) {
            set_path(&mut self.path, &self.dir, &[name, "cpufreq"]);
            cpu.has_cpufreq = match std::fs::metadata(&self.path) {
                Ok(_) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(CollectError::io(&self.path, &e)),
            };
            if !cpu.has_cpufreq {
                continue;
            }
            for (number, slot) in NUMBERS.iter().zip(&mut cpu.numbers) {
                set_path(&mut self.path, &self.dir, &[name, "cpufreq", number.file]);
                *slot = match read_value(&self.path, &mut self.text) {
                    Ok(text) => Some(parse_uint(text).ok_or_else(|| {
                        CollectError::parse(
                            &self.path,
                            1,
                            format!("expected a whole number of kHz, got {text:?}"),
                        )
                    })?),
                    Err(e) if is_absent(&e) => None,
                    Err(e) => return Err(CollectError::io(&self.path, &e)),
                };
            }
            for (file, slot) in [
                (AVAILABLE_GOVERNORS, Some(&mut cpu.available_governors)),
                (DRIVER, None),
                (GOVERNOR, Some(&mut cpu.governor)),
            ] {
                set_path(&mut self.path, &self.dir, &[name, "cpufreq", file]);
                let raw = read_sys_value(&self.path, &mut self.raw)
                    .map_err(|e| CollectError::io(&self.path, &e))?;
                if let Some(slot) = slot {
                    slot.clear();
                    push_valid_utf8(slot, trim_space(raw));
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, out: &mut Batch) {
        let cpus = || {
            self.names
                .iter()
                .zip(&self.cpus)
                .take(self.len)
                .filter(|(_, cpu)| cpu.has_cpufreq)
        };
        for (index, number) in NUMBERS.iter().enumerate() {
            let Some((name, help)) = number.family else {
                continue;
            };
            let mut family = out.family(name, help, Kind::Gauge);
            for (cpu_name, cpu) in cpus() {
                if let Some(khz) = cpu.numbers[index] {
                    family
                        .series()
                        .label("cpu", cpu_label(cpu_name))
                        .value(khz as f64 * KHZ_TO_HZ);
                }
            }
        }
        let mut family = out.family(
            "node_cpu_scaling_governor",
            "Current enabled CPU frequency governor.",
            Kind::Gauge,
        );
        for (cpu_name, cpu) in self.names.iter().zip(&self.cpus).take(self.len) {
            if !cpu.has_cpufreq || cpu.governor.is_empty() {
                continue;
            }
            self.governors.clear();
            for governor in cpu.available_governors.split(' ') {
                if !self.governors.first(governor) {
                    continue;
                }
                family
                    .series()
                    .label("cpu", cpu_label(cpu_name))
                    .label("governor", governor)
                    .value(f64::from(u8::from(governor == cpu.governor)));
            }
        }
    }
}

/// The `cpu` label: the directory name without `cpu`.
fn cpu_label(name: &str) -> &str {
    name.strip_prefix("cpu").unwrap_or(name)
}

/// What procfs's `ReadUintFromFile` callers skip: a missing or unreadable attribute.
fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    )
}

impl Build for Cpufreq {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq",
        "sys/devices/system/cpu/cpu4/cpufreq/cpuinfo_max_freq",
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors",
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Cpufreq::new(&context.paths.sysfs)
    }
}

impl Collector for Cpufreq {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.list()?;
        self.read()?;
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    /// cpu0 of node_exporter's sys.ttar fixture (intel_pstate), plus cpuinfo files.
    const CPU0: [(&str, &str); 10] = [
        ("cpuinfo_cur_freq", "1700000"),
        ("cpuinfo_max_freq", "3700000"),
        ("cpuinfo_min_freq", "800000"),
        ("cpuinfo_transition_latency", "0"),
        ("scaling_available_governors", "performance powersave"),
        ("scaling_cur_freq", "1699981"),
        ("scaling_driver", "intel_pstate"),
        ("scaling_governor", "powersave"),
        ("scaling_max_freq", "3700000"),
        ("scaling_min_freq", "800000"),
    ];

    fn write_cpu(dir: &TempDir, cpu: &str, skip: &[&str]) {
        for (file, value) in CPU0.iter().filter(|(f, _)| !skip.contains(f)) {
            dir.write(
                &format!("devices/system/cpu/{cpu}/cpufreq/{file}"),
                &format!("{value}\n"),
            );
        }
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn exports_frequencies_in_hertz_and_the_governor() {
        let dir = TempDir::new();
        write_cpu(&dir, "cpu0", &[]);
        write_cpu(&dir, "cpu1", &["cpuinfo_cur_freq", "cpuinfo_min_freq"]);
        dir.write("devices/system/cpu/cpu1/cpufreq/scaling_governor", "performance\n");
        // Not a CPU, and a CPU without cpufreq: neither is reported.
        dir.write("devices/system/cpu/cpufreq/boost", "1\n");
        std::fs::create_dir_all(dir.path().join("devices/system/cpu/cpu2")).unwrap();
        let text = render(&mut Cpufreq::new(dir.path())).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_cpu_frequency_hertz{cpu=\"0\"} 1700000000",
                "node_cpu_frequency_min_hertz{cpu=\"0\"} 800000000",
                "node_cpu_frequency_max_hertz{cpu=\"0\"} 3700000000",
                "node_cpu_frequency_max_hertz{cpu=\"1\"} 3700000000",
                "node_cpu_scaling_frequency_hertz{cpu=\"0\"} 1699981000",
                "node_cpu_scaling_frequency_hertz{cpu=\"1\"} 1699981000",
                "node_cpu_scaling_frequency_min_hertz{cpu=\"0\"} 800000000",
                "node_cpu_scaling_frequency_min_hertz{cpu=\"1\"} 800000000",
                "node_cpu_scaling_frequency_max_hertz{cpu=\"0\"} 3700000000",
                "node_cpu_scaling_frequency_max_hertz{cpu=\"1\"} 3700000000",
                "node_cpu_scaling_governor{cpu=\"0\",governor=\"performance\"} 0",
                "node_cpu_scaling_governor{cpu=\"0\",governor=\"powersave\"} 1",
                "node_cpu_scaling_governor{cpu=\"1\",governor=\"performance\"} 1",
                "node_cpu_scaling_governor{cpu=\"1\",governor=\"powersave\"} 0",
            ]
        );
        assert!(text.contains(
            "# HELP node_cpu_scaling_governor Current enabled CPU frequency governor.\n\
             # TYPE node_cpu_scaling_governor gauge\n"
        ));
    }

    #[test]
    fn governors_split_at_single_spaces_and_repeats_are_dropped() {
        let dir = TempDir::new();
        write_cpu(&dir, "cpu0", &["scaling_available_governors"]);
        dir.write(
            "devices/system/cpu/cpu0/cpufreq/scaling_available_governors",
            "powersave  powersave\n",
        );
        let text = render(&mut Cpufreq::new(dir.path())).unwrap();
        let governors: Vec<_> = series(&text)
            .into_iter()
            .filter(|l| l.starts_with("node_cpu_scaling_governor"))
            .collect();
        assert_eq!(
            governors,
            [
                "node_cpu_scaling_governor{cpu=\"0\",governor=\"powersave\"} 1",
                "node_cpu_scaling_governor{cpu=\"0\",governor=\"\"} 0",
            ]
        );
        // An empty governor means no governor series at all.
        dir.write("devices/system/cpu/cpu0/cpufreq/scaling_governor", "\n");
        let text = render(&mut Cpufreq::new(dir.path())).unwrap();
        assert!(!text.contains("node_cpu_scaling_governor{"), "{text}");
    }

    #[test]
    fn cpus_without_cpufreq_succeed_with_nothing() {
        let dir = TempDir::new();
        for cpu in ["cpu0", "cpu1"] {
            dir.write(&format!("devices/system/cpu/{cpu}/online"), "1\n");
        }
        let text = render(&mut Cpufreq::new(dir.path())).unwrap();
        assert_eq!(series(&text), Vec::<&str>::new());
    }

    #[test]
    fn no_cpu_directories_is_an_error() {
        let dir = TempDir::new();
        let err = render(&mut Cpufreq::new(dir.path())).unwrap_err();
        assert!(!err.is_no_data());
        assert!(err.to_string().contains("no cpu[0-9]* directories"), "{err}");
        dir.write("devices/system/cpu/online", "0-1\n");
        assert!(render(&mut Cpufreq::new(dir.path())).is_err());
    }

    #[test]
    fn malformed_and_missing_attributes_are_errors_naming_the_file() {
        let dir = TempDir::new();
        write_cpu(&dir, "cpu0", &[]);
        dir.write("devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "+1699981\n");
        let err = render(&mut Cpufreq::new(dir.path())).unwrap_err().to_string();
        assert!(
            err.ends_with("cpu0/cpufreq/scaling_cur_freq line 1: expected a whole number of kHz, got \"+1699981\""),
            "{err}"
        );
        // procfs parses the transition latency too, though it is never exported.
        write_cpu(&dir, "cpu0", &[]);
        dir.write("devices/system/cpu/cpu0/cpufreq/cpuinfo_transition_latency", "x\n");
        let err = render(&mut Cpufreq::new(dir.path())).unwrap_err().to_string();
        assert!(err.contains("cpuinfo_transition_latency line 1"), "{err}");
        // The driver is required although it is not exported.
        let dir = TempDir::new();
        write_cpu(&dir, "cpu0", &["scaling_driver"]);
        let err = render(&mut Cpufreq::new(dir.path())).unwrap_err().to_string();
        assert!(err.contains("cpu0/cpufreq/scaling_driver: "), "{err}");
    }

    #[test]
    fn cpus_come_and_go() {
        let dir = TempDir::new();
        let mut collector = Cpufreq::new(dir.path());
        write_cpu(&dir, "cpu0", &[]);
        write_cpu(&dir, "cpu1", &[]);
        assert!(render(&mut collector).unwrap().contains("cpu=\"1\""));
        std::fs::remove_dir_all(dir.path().join("devices/system/cpu/cpu1/cpufreq")).unwrap();
        let text = render(&mut collector).unwrap();
        assert!(!text.contains("cpu=\"1\""), "{text}");
        assert!(text.contains("node_cpu_frequency_hertz{cpu=\"0\"}"), "{text}");
    }
}
