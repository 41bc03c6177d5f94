//! Every collector fed arbitrary file contents through a fixture root.
//!
//! Input: byte 0 picks the collector (and, for sysfs-driven ones, the file), the rest
//! is written as that file's contents. Collecting must return Ok or an error, never
//! panic; and what a collector writes must be something every receiver accepts:
//! valid metric and label names, and no series twice (Prometheus rejects a whole
//! remote-write request that repeats a series).
use sc_agent::batch::Batch;
use sc_agent::collector::filesystem::{FsStats, StuckMounts};
use sc_agent::collector::*;
use sc_agent::config::{FilesystemOptions, Filter};
use sc_agent::labels::{is_valid_metric_name, is_valid_name};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One directory per fuzzing process, on tmpfs when there is one.
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("sc-agent-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("fuzz root");
        root
    })
}

const NETCLASS_FILES: [&str; 8] = [
    "operstate",
    "mtu",
    "address",
    "speed",
    "flags",
    "carrier",
    "duplex",
    "ifalias",
];

fn case(selector: u8) -> (String, Box<dyn Collector>) {
    let proc = root().join("proc");
    let sys = root().join("sys");
    let rootfs = root().join("root");
    let (file, collector): (&str, Box<dyn Collector>) = match selector % 22 {
        0 => ("proc/loadavg", Box::new(loadavg::Loadavg::new(&proc))),
        1 => ("proc/meminfo", Box::new(meminfo::Meminfo::new(&proc))),
        2 => ("proc/stat", Box::new(cpu::Cpu::new(&proc, &sys))),
        3 => ("proc/stat", Box::new(stat::Stat::new(&proc))),
        4 => (
            "proc/diskstats",
            Box::new(diskstats::Diskstats::new(&proc, &rootfs, Filter::default())),
        ),
        5 => (
            "proc/net/dev",
            Box::new(netdev::Netdev::new(
                &proc,
                &sys,
                Filter::default(),
                NetSource::Files,
            )),
        ),
        6 => ("proc/vmstat", Box::new(vmstat::Vmstat::new(&proc))),
        7 => ("proc/pressure/io", Box::new(pressure::Pressure::new(&proc))),
        8 => (
            "proc/net/sockstat",
            Box::new(sockstat::Sockstat::with_page_size(&proc, 4096)),
        ),
        9 => ("proc/net/netstat", Box::new(netstat::Netstat::new(&proc))),
        10 => ("proc/net/snmp6", Box::new(netstat::Netstat::new(&proc))),
        11 => {
            let statfs: filesystem::StatfsFn = Arc::new(|_: &Path| {
                Ok(FsStats {
                    size_bytes: 1.0,
                    free_bytes: 1.0,
                    avail_bytes: 1.0,
                    files: 1.0,
                    files_free: 1.0,
                })
            });
            let collector = filesystem::Filesystem::with_statfs(
                &proc,
                Path::new("/"),
                &FilesystemOptions::default(),
                StuckMounts::default(),
                statfs,
            );
            ("proc/1/mounts", Box::new(collector))
        }
        12 => (
            "proc/sys/kernel/random/entropy_avail",
            Box::new(entropy::Entropy::new(&proc)),
        ),
        13 => ("proc/sys/fs/file-nr", Box::new(filefd::Filefd::new(&proc))),
        14 => (
            "proc/self/stat",
            Box::new(process::Process::with_units(&proc, 4096, 100)),
        ),
        15 => (
            "proc/self/limits",
            Box::new(process::Process::with_units(&proc, 4096, 100)),
        ),
        16 => (
            "sys/devices/system/clocksource/clocksource0/available_clocksource",
            Box::new(time::Time::new(&sys)),
        ),
        n => {
            let file = NETCLASS_FILES[usize::from(n - 17) % NETCLASS_FILES.len()];
            let collector = Box::new(netclass::Netclass::new(
                &sys,
                Filter::default(),
                NetSource::Files,
            ));
            return (format!("sys/class/net/eth0/{file}"), collector);
        }
    };
    (file.to_owned(), collector)
}

/// What every receiver requires of a batch.
fn check(batch: &Batch) {
    let mut seen = HashSet::new();
    for family in batch.families() {
        assert!(
            is_valid_metric_name(family.name()),
            "metric name {:?}",
            family.name()
        );
        for series in family.series() {
            let labels: Vec<(String, String)> = series
                .labels_with_name()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            for (name, _) in &labels {
                assert!(
                    is_valid_name(name),
                    "label name {name:?} in {}",
                    family.name()
                );
            }
            assert!(seen.insert(labels.clone()), "series twice: {labels:?}");
        }
    }
}

pub fn run(data: &[u8]) {
    let Some((&selector, contents)) = data.split_first() else {
        return;
    };
    let (file, mut collector) = case(selector);
    let path = root().join(file);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&path, contents).expect("write fixture file");
    let mut batch = Batch::new();
    batch.begin(0);
    if collector.collect(&mut batch).is_ok() {
        check(&batch);
    }
    let _ = std::fs::remove_file(&path);
}
