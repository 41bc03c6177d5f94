//! The collector table against everything else that names collectors: the README's
//! list, the fixture cases and the example config. Adding a collector is one file,
//! one table row and one fixture case; these tests fail until the README says so
//! and a fixture case runs it.

use sc_agent::collector::table::TABLE;
use sc_agent::config::Config;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `(name, default)` rows of the README's collector list, in order.
fn readme_rows() -> Vec<(String, bool)> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let start = readme
        .find("<!-- collector-table")
        .expect("the README's collector table (<!-- collector-table ... -->)");
    let end = start
        + readme[start..]
            .find("<!-- end collector-table -->")
            .expect("the end of the README's collector table");
    readme[start..end]
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let default = match *cells.get(2)? {
                "on" => true,
                "off" => false,
                other => panic!("README: {name}: default {other:?}, expected on or off"),
            };
            Some((name.to_owned(), default))
        })
        .collect()
}

#[test]
fn the_readme_lists_every_collector_with_its_default_in_table_order() {
    let table: Vec<(String, bool)> = TABLE
        .iter()
        .map(|d| (d.name.to_owned(), d.enabled_by_default))
        .collect();
    assert_eq!(
        readme_rows(),
        table,
        "the README's collector list and the table (src/collector/mod.rs) disagree"
    );
}

#[test]
fn every_collector_has_a_fixture_case() {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(root().join("tests/fixtures")).expect("tests/fixtures") {
        let path = entry.expect("a fixture case").path().join("config.yaml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let config =
                Config::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            cases.push(config);
        }
    }
    for descriptor in TABLE {
        assert!(
            cases.iter().any(|c| (descriptor.enabled)(&c.collectors)),
            "no fixture case under tests/fixtures enables the {} collector",
            descriptor.name
        );
    }
    // Fixture cases name only what they exercise.
    for config in &cases {
        let enabled = config.collectors.enabled().count();
        assert!(enabled < TABLE.len(), "a fixture case runs every collector");
    }
}

#[test]
fn the_example_config_loads_and_names_only_real_collectors() {
    let path = root().join("packaging/sc-agent.yaml");
    let text = std::fs::read_to_string(&path).expect("packaging/sc-agent.yaml");
    let config = Config::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(config.check(), Ok(()));
    // What it leaves unsaid is the default.
    for descriptor in TABLE {
        assert_eq!(
            (descriptor.enabled)(&config.collectors),
            descriptor.enabled_by_default,
            "{}",
            descriptor.name
        );
    }
}
