//! `--once` on this machine's real /proc and /sys must pass `promtool check metrics`,
//! apart from the naming lints node_exporter's own output draws (camelCase meminfo
//! names such as `node_memory_MemTotal_bytes`, and `_bits` units for entropy).

use sc_agent_testkit as common;

use common::{base_config, require, run, TempDir};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The lints node_exporter 1.5's default output draws from promtool 2.42.
const LINTS_NODE_EXPORTER_ALSO_DRAWS: [&str; 2] = [
    "metric names should be written in 'snake_case' not 'camelCase'",
    "use base unit \"bytes\" instead of \"bits\"",
];

fn promtool_complaints(exposition: &str) -> Vec<String> {
    let mut child = Command::new(require("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    text.lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn once_output_passes_promtool_with_node_exporters_lints_only() {
    let dir = TempDir::new();
    let config = dir.write("c.yaml", &base_config("labels:\n  env: test\n"));
    let out = run(
        &["--once", "--config", config.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(common::cycles(&out.stdout) == 1, "{}", out.stdout);
    let unexpected: Vec<_> = promtool_complaints(&out.stdout)
        .into_iter()
        .filter(|line| {
            !LINTS_NODE_EXPORTER_ALSO_DRAWS
                .iter()
                .any(|lint| line.ends_with(lint))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool complaints:\n{}",
        unexpected.join("\n")
    );
}

#[test]
fn promtool_catches_a_broken_exposition() {
    // Guards the test above: promtool must really be parsing what we give it.
    let complaints = promtool_complaints("# TYPE x gauge\nx{a=\"1\" 1\n");
    assert!(
        complaints.iter().any(|l| l.contains("error")),
        "{complaints:?}"
    );
}
