//! Configs that enable only some collectors. Shared (by `#[path]`) by the tests'
//! common helpers and the soak driver.
#![allow(dead_code)]

/// A `collectors:` block that enables only `enabled` (config names, e.g. `memory`).
/// The list of collectors comes from the agent's own config, so a new collector is
/// switched off here without anyone editing the tests.
pub fn collectors_only(enabled: &[&str]) -> String {
    let all = serde_yaml::to_value(sc_agent::config::Collectors::default())
        .expect("Collectors serialises");
    let names = all.as_mapping().expect("a mapping").keys();
    let mut block = String::from("collectors:\n");
    for name in names.filter_map(|key| key.as_str()) {
        assert!(!name.is_empty());
        block.push_str(&format!("  {name}: {}\n", enabled.contains(&name)));
    }
    for name in enabled {
        assert!(
            block.contains(&format!("  {name}: true\n")),
            "no collector {name}"
        );
    }
    block
}
