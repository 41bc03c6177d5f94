//! Golden tests: the real binary runs `--once` against each fixture tree under
//! `tests/fixtures/<case>/` and must print exactly `expected.prom`.
//!
//! A case holds `README` (what it covers and why), `config.yaml` (paths relative to
//! the case directory, which is the working directory), the `proc/`, `sys/` and
//! `root/` trees it needs, and `expected.prom`. Durations in
//! `node_scrape_collector_duration_seconds` vary from run to run and are replaced by
//! `<duration>` before comparing. A case may also list, in a `varying` file (one
//! metric name a line), families whose values depend on the machine running the test
//! (page size, the size of the filesystem the checkout lives on): their values become
//! `<varies>`, while their names, labels, HELP and TYPE are still compared.
//! `SC_UPDATE_FIXTURES=1 cargo test --test fixtures` rewrites the expected files;
//! review the diff before committing it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The metric name of a series line; `None` for HELP, TYPE and blank lines.
fn series_name(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        return None;
    }
    line.split(['{', ' '])
        .next()
        .filter(|name| !name.is_empty())
}

fn normalise(output: &str, varying: &[String]) -> String {
    output
        .lines()
        .map(|line| {
            let placeholder = match series_name(line) {
                Some("node_scrape_collector_duration_seconds") => Some("<duration>"),
                Some(name) if varying.iter().any(|v| v == name) => Some("<varies>"),
                _ => None,
            };
            match (placeholder, line.rsplit_once(' ')) {
                (Some(placeholder), Some((series, _))) => format!("{series} {placeholder}\n"),
                _ => format!("{line}\n"),
            }
        })
        .collect()
}

/// The metric names listed in the case's optional `varying` file.
fn varying(case: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("varying"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
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
    let actual = normalise(&agent.stdout(), &varying(case));
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
