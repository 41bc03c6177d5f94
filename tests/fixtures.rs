//! Golden tests: the real binary runs `--once` against each fixture tree under
//! `tests/fixtures/<case>/` and must print exactly `expected.prom`.
//!
//! A case holds `README` (what it covers and why), `config.yaml` (paths relative to
//! the case directory, which is the working directory), the `proc/`, `sys/` and
//! `root/` trees it needs, and `expected.prom`. Durations in
//! `node_scrape_collector_duration_seconds` vary from run to run and are replaced by
//! `<duration>` before comparing. `SC_UPDATE_FIXTURES=1 cargo test --test fixtures`
//! rewrites the expected files; review the diff before committing it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn normalise(output: &str) -> String {
    output
        .lines()
        .map(|line| {
            if line.starts_with("node_scrape_collector_duration_seconds{") {
                match line.rsplit_once(' ') {
                    Some((series, _)) => format!("{series} <duration>\n"),
                    None => format!("{line}\n"),
                }
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

fn run_case(case: &Path) -> Result<(), String> {
    let mut command = Command::new(common::bin());
    command
        .current_dir(case)
        .args(["--once", "--config", "config.yaml"])
        .env("PATH", "/nonexistent");
    let mut agent = common::Agent::spawn_with(&mut command, &[("SC_LOG_LEVEL", "error")]);
    let status = agent
        .wait_exit(Duration::from_secs(30))
        .ok_or("did not exit")?;
    if !status.success() {
        return Err(format!("exit {status}: {}", agent.stderr()));
    }
    let actual = normalise(&agent.stdout());
    let expected_path = case.join("expected.prom");
    if std::env::var_os("SC_UPDATE_FIXTURES").is_some() {
        std::fs::write(&expected_path, &actual).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path)
        .map_err(|e| format!("{}: {e}", expected_path.display()))?;
    if actual == expected {
        return Ok(());
    }
    let first_difference = actual
        .lines()
        .zip(expected.lines())
        .enumerate()
        .find(|(_, (a, e))| a != e)
        .map(|(n, (a, e))| format!("line {}:\n  actual:   {a}\n  expected: {e}", n + 1))
        .unwrap_or_else(|| {
            format!(
                "lengths differ: {} actual lines, {} expected",
                actual.lines().count(),
                expected.lines().count()
            )
        });
    Err(format!(
        "output differs from expected.prom at {first_difference}"
    ))
}

#[test]
fn every_fixture_tree_gives_its_expected_output() {
    let mut cases: Vec<_> = std::fs::read_dir(common::fixtures())
        .expect("tests/fixtures")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("config.yaml").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixture cases found");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            assert!(
                case.join("README").is_file(),
                "{} has no README",
                case.display()
            );
            run_case(case)
                .err()
                .map(|e| format!("{}: {e}", case.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
