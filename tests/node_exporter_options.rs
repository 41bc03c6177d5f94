//! Every collector option against node_exporter 1.5: each option field
//! (`collectors.<name>.<option>`) that node_exporter 1.5 has a flag for, and that
//! shapes what is exported, has a fixture case `tests/fixtures/<name>_<option>/`
//! that sets it, and `scripts/compare-node-exporter.py` runs Debian's node_exporter
//! 1.5 on each such case with the same flag and the same tree: the series must be the
//! same (apart from what the script lists as 1.12's changes). An option without a
//! case is in [`NO_CASE`] with the reason, so adding an option fails here until it
//! has one or the other.
//!
//! The options are the agent's own (`sc-agent --print-config`, which prints every
//! collector with all its options); their flags are the script's one table (`FLAGS`),
//! which `--options` lists with whether node_exporter 1.5 has each: the reasons below
//! are checked against it, and the README's options table must name every field with
//! that flag.

use sc_agent_testkit as common;

use std::collections::BTreeMap;
use std::process::Command;

/// Why an option has no case of its own.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Why {
    /// node_exporter 1.5 has no such flag (a later version has): 1.5 cannot be given
    /// it. The text names where the option's output is tested instead.
    NotIn1_5(&'static str),
    /// No node_exporter has such a flag: the agent's own.
    NotInNodeExporter(&'static str),
    /// The option shapes what a running systemd answers over D-Bus, which no
    /// fixture tree holds (tests/install.rs runs one in a booted container).
    NeedsSystemd,
    /// The option picks netlink or the files: the series are the same either way
    /// (tests/netlink_modes.rs compares the two on the kernel); a tree has only the
    /// files, so every case of the collector sets it to false.
    ReadsTheKernel,
}

/// The options without a case, each with its reason.
const NO_CASE: [(&str, Why); 23] = [
    ("netdev.netlink", Why::ReadsTheKernel),
    ("netclass.netlink", Why::ReadsTheKernel),
    (
        "netclass.device_include",
        Why::NotInNodeExporter("node_exporter's netclass has only ignored-devices"),
    ),
    (
        "arp.netlink",
        Why::NotIn1_5("1.5 reads /proc/net/arp only, as every arp case does"),
    ),
    (
        "filesystem.mount_points_include",
        Why::NotIn1_5("1.9's; src/collector/filesystem.rs tests it"),
    ),
    (
        "filesystem.fs_types_include",
        Why::NotIn1_5("1.9's; src/collector/filesystem.rs tests it"),
    ),
    (
        "filesystem.mount_timeout",
        Why::NotIn1_5("a time limit, not a filter: tests/stuck_mount.rs"),
    ),
    ("systemd.unit_include", Why::NeedsSystemd),
    ("systemd.unit_exclude", Why::NeedsSystemd),
    ("systemd.enable_task_metrics", Why::NeedsSystemd),
    ("systemd.enable_restarts_metrics", Why::NeedsSystemd),
    ("systemd.enable_start_time_metrics", Why::NeedsSystemd),
    (
        "systemd.private",
        Why::NotIn1_5("which socket, not which series; needs systemd too"),
    ),
    (
        "systemd.timeout",
        Why::NotInNodeExporter("a time limit on the D-Bus calls"),
    ),
    (
        "hwmon.chip_include",
        Why::NotIn1_5("src/collector/hwmon.rs tests it"),
    ),
    (
        "hwmon.chip_exclude",
        Why::NotIn1_5("src/collector/hwmon.rs tests it"),
    ),
    (
        "hwmon.sensor_include",
        Why::NotIn1_5("src/collector/hwmon.rs tests it"),
    ),
    (
        "hwmon.sensor_exclude",
        Why::NotIn1_5("src/collector/hwmon.rs tests it"),
    ),
    (
        "conntrack.stats",
        Why::NotIn1_5("src/collector/conntrack.rs tests it"),
    ),
    (
        "processes.walk_limit",
        Why::NotInNodeExporter(
            "a bound on the work of one cycle: src/collector/processes.rs tests it",
        ),
    ),
    (
        "interrupts.name_include",
        Why::NotIn1_5("src/collector/interrupts.rs tests it"),
    ),
    (
        "interrupts.name_exclude",
        Why::NotIn1_5("the fixture case interrupts_filtered shows it"),
    ),
    (
        "interrupts.include_zeros",
        Why::NotIn1_5("the fixture case interrupts_filtered shows it"),
    ),
];

/// `<name>.<option>` → its value as `--print-config` writes it (a list's items on
/// the lines after it), for every option of every collector in that output.
fn options(print_config: &str) -> BTreeMap<String, String> {
    let section = print_config
        .split_once("\ncollectors:\n")
        .map(|(_, rest)| rest)
        .expect("--print-config has a collectors: section");
    let mut result = BTreeMap::new();
    let (mut collector, mut option) = (None, None::<String>);
    for line in section.lines() {
        if let Some(item) = line.strip_prefix("    - ") {
            let key = option.clone().expect("a list item follows its option");
            let value: &mut String = result.entry(key).or_default();
            value.push_str(&format!(" - {item}"));
        } else if let Some(field) = line.strip_prefix("    ") {
            let (key, value) = field.split_once(':').expect("an option line is key: value");
            if key != "enabled" {
                let name = format!(
                    "{}.{key}",
                    collector.expect("an option follows its collector")
                );
                result.insert(name.clone(), value.trim().to_owned());
                option = Some(name);
            }
        } else if let Some(entry) = line.strip_prefix("  ") {
            // `name: true` has no options; `name:` opens them.
            collector = entry.strip_suffix(':');
        } else {
            break;
        }
    }
    result
}

fn print_config(dir: &std::path::Path) -> String {
    let output = Command::new(common::bin())
        .current_dir(dir)
        .args(["--print-config", "--config", "config.yaml"])
        .output()
        .expect("sc-agent --print-config runs");
    assert!(
        output.status.success(),
        "--print-config in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("--print-config writes UTF-8")
}

/// Every option field with its default value: the agent's reading of an empty
/// collectors section.
fn defaults() -> BTreeMap<String, String> {
    let dir = common::TempDir::new();
    dir.write("config.yaml", "collectors: {}\n");
    options(&print_config(dir.path()))
}

/// The fixture case of an option: `netdev.device_exclude` → `netdev_device_exclude`.
fn case_name(option: &str) -> String {
    option.replace('.', "_")
}

fn script() -> Command {
    let mut command = Command::new(common::require("python3"));
    command
        .arg(common::project_root().join("scripts/compare-node-exporter.py"))
        .arg("--agent")
        .arg(common::bin());
    command
}

/// `<name>.<option>` → (where the script says its flag is: `1.5` (node_exporter 1.5
/// has it), `not-in-1.5`, `none` (no node_exporter flag) or `unknown` (not in its
/// table); the flag without `--collector.`).
fn script_flags() -> BTreeMap<String, (String, String)> {
    common::require("prometheus-node-exporter");
    let output = script().arg("--options").output().expect("the script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "compare-node-exporter.py --options: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            let option = words.next()?.to_owned();
            Some((option, (words.next()?.to_owned(), words.next()?.to_owned())))
        })
        .collect()
}

/// The rows of the README's collector options table.
fn readme_option_rows() -> Vec<String> {
    let readme =
        std::fs::read_to_string(common::project_root().join("README.md")).expect("README.md");
    let start = readme
        .find("Collector options (under `collectors.<name>:`):")
        .expect("the README's collector options table");
    readme[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .map(str::to_owned)
        .collect()
}

/// The options that must have a case: all but those of [`NO_CASE`].
fn with_cases() -> Vec<String> {
    defaults()
        .into_keys()
        .filter(|option| !NO_CASE.iter().any(|(name, _)| name == option))
        .collect()
}

#[test]
fn every_option_has_a_case_or_a_reason() {
    let defaults = defaults();
    assert!(
        defaults.contains_key("netdev.device_exclude") && defaults.len() > 20,
        "the options were not read from --print-config: {defaults:?}"
    );
    let flags = script_flags();
    let mut problems = Vec::new();
    for (name, why) in NO_CASE {
        if !defaults.contains_key(name) {
            problems.push(format!("NO_CASE names {name}, which is no option"));
        }
        if common::fixtures()
            .join(case_name(name))
            .join("config.yaml")
            .is_file()
        {
            problems.push(format!(
                "{name} has a case and a NO_CASE reason: drop the reason"
            ));
        }
        let place = flags.get(name).map(|(place, _)| place.as_str());
        let expected = match why {
            Why::NotIn1_5(_) => Some("not-in-1.5"),
            Why::NotInNodeExporter(_) => Some("none"),
            Why::NeedsSystemd | Why::ReadsTheKernel => Some("1.5"),
        };
        if place != expected {
            problems.push(format!(
                "{name}: NO_CASE says {why:?}, compare-node-exporter.py's FLAGS and \
                 node_exporter --help say {place:?}"
            ));
        }
    }
    for option in with_cases() {
        let case = common::fixtures().join(case_name(&option));
        if !case.join("config.yaml").is_file() || !case.join("README").is_file() {
            problems.push(format!(
                "{option}: no fixture case {} (config.yaml, README, expected.prom) and no \
                 reason in NO_CASE (tests/node_exporter_options.rs)",
                case.display()
            ));
            continue;
        }
        if flags.get(&option).map(|(place, _)| place.as_str()) != Some("1.5") {
            problems.push(format!(
                "{option} has a case, but compare-node-exporter.py says node_exporter 1.5's \
                 flag for it is {:?}",
                flags.get(&option)
            ));
        }
        let set = options(&print_config(&case));
        if set.get(&option) == defaults.get(&option) {
            problems.push(format!(
                "{}: leaves {option} at its default ({:?})",
                case.display(),
                defaults.get(&option)
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_readme_gives_every_option_its_flag() {
    let rows = readme_option_rows();
    let mut problems = Vec::new();
    for (option, (place, flag)) in script_flags() {
        let Some(row) = rows.iter().find(|row| row.contains(&format!("`{option}`"))) else {
            problems.push(format!(
                "the README's options table has no row for `{option}`"
            ));
            continue;
        };
        let flag_text = format!("`--collector.{flag}`");
        if place != "none" && !row.contains(&flag_text) {
            problems.push(format!(
                "the README's row for `{option}` does not name {flag_text}"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn each_option_case_gives_node_exporters_series() {
    common::require("prometheus-node-exporter");
    let cases: Vec<String> = with_cases()
        .iter()
        .map(|option| case_name(option))
        .filter(|case| common::fixtures().join(case).join("config.yaml").is_file())
        .collect();
    assert!(cases.len() > 15, "too few option cases: {cases:?}");
    let output = script().args(&cases).output().expect("the script runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "compare-node-exporter.py {}:\n{report}{}",
        cases.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    for case in &cases {
        assert!(
            report
                .lines()
                .any(|line| line.starts_with(&format!("{case}: same"))),
            "{case} is not reported the same:\n{report}"
        );
    }
}
