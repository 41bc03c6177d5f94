//! Prometheus relabeling (`sc_agent::relabel`): the rules are the operator's, but
//! their regexes, templates and the label values they run on (device names, mount
//! points, textfile labels) are anything. The input is YAML rules, a line `---`, then
//! one `name=value` label a line. Rules that do not load are refused with an error;
//! rules that load must never panic on any labels, and what they keep must be a label
//! set a receiver takes: sorted by name, each name once and valid, no empty value.

use sc_agent::labels::is_valid_name;
use sc_agent::relabel::Rules;

pub fn run(data: &[u8]) {
    exercise(data);
}

/// [`run`], saying whether the input got as far as running loaded rules (the seeds
/// must, or they seed nothing).
pub fn exercise(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Some((rules, labels)) = text.split_once("\n---\n") else {
        return false;
    };
    // Bounded as a config is: a few kilobytes of rules.
    if rules.len() > 8 << 10 {
        return false;
    }
    let Ok(rules) = serde_yaml::from_str::<Rules>(rules) else {
        return false;
    };
    let mut input: Vec<(&str, &str)> = labels
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, value)| is_valid_name(name) && !value.is_empty())
        .collect();
    input.sort();
    input.dedup_by(|a, b| a.0 == b.0);
    let Some(output) = rules.process(&input) else {
        return true;
    };
    for pair in output.windows(2) {
        assert!(pair[0].0 < pair[1].0, "not sorted or repeated: {output:?}");
    }
    for (name, value) in &output {
        assert!(is_valid_name(name), "label name {name:?} in {output:?}");
        assert!(!value.is_empty(), "empty value of {name} in {output:?}");
    }
    true
}
