//! Replays, through the same harnesses the fuzz targets run (`tests/fuzz_harness/`),
//! every seed in `fuzz/seeds/<target>/` and every input that once crashed a target,
//! kept in `tests/fuzz_regressions/<target>/`. A crash found by `scripts/fuzz.sh` is
//! copied there (and fixed) so it can never come back.

#[path = "fuzz_harness/collectors.rs"]
mod collectors;
#[path = "fuzz_harness/config.rs"]
mod config;
#[path = "fuzz_harness/duration.rs"]
mod duration;
#[path = "fuzz_harness/encode.rs"]
mod encode;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        root.join("fuzz/seeds").join(target),
        root.join("tests/fuzz_regressions").join(target),
    ];
    let mut inputs = 0;
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{target}: {} fails again", file.display());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "{target}: no seeds or regression inputs found");
}

#[test]
fn collectors_inputs() {
    replay("collectors", collectors::run);
}

#[test]
fn config_inputs() {
    replay("config", config::run);
}

#[test]
fn duration_inputs() {
    replay("duration", duration::run);
}

#[test]
fn encode_inputs() {
    replay("encode", encode::run);
}
