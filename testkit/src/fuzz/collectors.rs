//! Every collector fed arbitrary file contents through a fixture root.
//!
//! Input: a first line `<collector> <file>` naming one (collector, file) pair of the
//! collector table (each row's `sources`), then that file's contents. A textual
//! header keeps the corpus and the regression inputs meaningful whatever rows the
//! table gains; an input whose first line names no pair is ignored. The collector is built
//! through the table, as the agent builds it, with a statfs stand-in and without
//! netlink (collectors that can read either the kernel or files read the files;
//! the netlink parsers have their own target, `netlink`). Collecting must
//! return Ok or an error, never panic; and what a collector writes must be something
//! every receiver accepts: valid metric and label names, and no series twice
//! (Prometheus rejects a whole remote-write request that repeats a series).
use sc_agent::batch::Batch;
use sc_agent::collector::table::{Settings, TABLE};
use sc_agent::collector::{Context, FsStats, Resources, StatfsFn};
use sc_agent::config::Paths;
use sc_agent::labels::{is_valid_metric_name, is_valid_name};
use sc_agent::netlink::Netlink;
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

/// Every (collector, file) pair the harness can pick, in table order.
pub fn cases() -> Vec<(&'static str, &'static str)> {
    TABLE
        .iter()
        .flat_map(|d| d.sources.iter().map(move |file| (d.name, *file)))
        .collect()
}

pub fn run(data: &[u8]) {
    let Some(at) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (header, contents) = (&data[..at], &data[at + 1..]);
    let Some((name, file)) = cases()
        .into_iter()
        .find(|(name, file)| header == format!("{name} {file}").as_bytes())
    else {
        return;
    };
    let path = root().join(file);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&path, contents).expect("write fixture file");
    let descriptor = TABLE.iter().find(|d| d.name == name).expect("a table row");
    let statfs: StatfsFn = Arc::new(|_: &Path| {
        Ok(FsStats {
            size_bytes: 1.0,
            free_bytes: 1.0,
            avail_bytes: 1.0,
            files: 1.0,
            files_free: 1.0,
        })
    });
    let resources = Resources {
        statfs,
        netlink: Netlink::unavailable(),
        ..Resources::default()
    };
    let paths = Paths {
        procfs: root().join("proc"),
        sysfs: root().join("sys"),
        rootfs: root().join("root"),
    };
    let settings = Settings::default();
    let context = Context {
        paths: &paths,
        resources: &resources,
        settings: &settings,
    };
    let mut collector = (descriptor.build)(&context, &settings);
    let mut batch = Batch::new();
    batch.begin(0);
    if collector.collect(&mut batch).is_ok() {
        check(&batch);
    }
    let _ = std::fs::remove_file(&path);
}

/// Seeds made from the fixture trees (`tests/fixtures/<case>/`): one input per
/// (collector, file) pair of the table whose file a fixture case has, so that every
/// collector the fixtures cover starts its fuzzing from real files.
pub fn fixture_seeds(fixtures: &Path) -> Vec<(String, Vec<u8>)> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures)
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    cases.sort();
    let mut seeds = Vec::new();
    for case in cases {
        let case_name = case.file_name().unwrap_or_default().to_string_lossy();
        for (name, file) in self::cases() {
            let Ok(contents) = std::fs::read(case.join(file)) else {
                continue;
            };
            let mut input = format!("{name} {file}\n").into_bytes();
            input.extend_from_slice(&contents);
            let seed_name = format!("{case_name}-{name}-{}", file.replace('/', "_"));
            seeds.push((seed_name, input));
        }
    }
    seeds
}
