//! Replays, through the same harnesses the fuzz targets run
//! (`sc_agent_testkit::fuzz`), every seed in `fuzz/seeds/<target>/`, the seeds made
//! from the fixture trees, and every input that once crashed a target, kept in
//! `tests/fuzz_regressions/<target>/`. A crash found by `scripts/fuzz.sh` is copied
//! there (and fixed) so it can never come back.

use sc_agent_testkit::fuzz::{
    collectors, config, dbus, duration, encode, exposition, netlink, relabel,
};

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
fn collectors_seeds_from_the_fixture_trees() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let seeds = collectors::fixture_seeds(&fixtures);
    for (name, input) in &seeds {
        let result = std::panic::catch_unwind(|| collectors::run(input));
        assert!(result.is_ok(), "seed {name} fails");
    }
    // Every collector reading files has a case; most are covered by a fixture.
    let covered: std::collections::BTreeSet<&str> = seeds
        .iter()
        .filter_map(|(_, input)| std::str::from_utf8(input.split(|b| *b == b' ').next()?).ok())
        .collect();
    for (name, _) in collectors::cases() {
        assert!(
            covered.contains(name),
            "no fixture tree has a file {name} reads"
        );
    }
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

#[test]
fn exposition_inputs() {
    replay("exposition", exposition::run);
}

#[test]
fn dbus_inputs() {
    replay("dbus", dbus::run);
}

#[test]
fn netlink_inputs() {
    replay("netlink", netlink::run);
}

#[test]
fn relabel_inputs() {
    replay("relabel", relabel::run);
}

/// The relabel seeds load their rules and run them: a seed the loader refuses would
/// seed nothing.
#[test]
fn relabel_seeds_reach_the_rules() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/relabel");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        assert!(relabel::exercise(&data), "{} does not load", path.display());
    }
}
