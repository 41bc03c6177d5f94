//! Pieces of agent configs for tests.

/// A `collectors:` block that runs only `enabled` (collector names as in the
/// collector table, e.g. `meminfo`), through node_exporter's `disable_defaults`:
/// a collector added to the agent later stays off here without anyone editing the
/// tests. Each name is checked against the agent's table.
pub fn collectors_only(enabled: &[&str]) -> String {
    let mut block = String::from("collectors:\n  disable_defaults: true\n");
    for name in enabled {
        assert!(
            sc_agent::collector::table::find(name).is_some(),
            "no collector {name}"
        );
        block.push_str(&format!("  {name}: true\n"));
    }
    block
}

/// `yaml` with every line indented by `by` spaces, to nest a block under a key.
pub fn indent(yaml: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    yaml.lines().map(|line| format!("{pad}{line}\n")).collect()
}

/// A config with a literal identity, so tests do not depend on the machine's.
pub fn base_config(extra: &str) -> String {
    format!("vm_id: test-vm\ninstance: test-host\n{extra}")
}
