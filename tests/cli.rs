//! The command line and config errors, through the real binary.

use sc_agent_testkit as common;

use common::{base_config, run, TempDir};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn check(config: &str) -> common::Finished {
    let dir = TempDir::new();
    let path = dir.write("sc-agent.yaml", config);
    run(
        &["--check-config", "--config", path.to_str().unwrap()],
        &[],
        T,
    )
}

#[test]
fn valid_config_checks_ok() {
    let out = check(&base_config(
        "collection_interval: 30s\nlabels:\n  env: prod\n",
    ));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("is valid"), "{}", out.stdout);
}

#[test]
fn bad_duration_names_the_field() {
    let out = check("collection_interval: 10 seconds\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("collection_interval: expected a duration like 250ms, 30s or 5m, got \"10 seconds\" at line 1"), "{}", out.stderr);
}

#[test]
fn unknown_field_is_named() {
    let out = check("collection_interval: 5s\ningestor_endpont: http://x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("unknown field `ingestor_endpont`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
}

#[test]
fn bad_label_name_is_named() {
    let out = check("labels:\n  team-name: sre\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr
            .contains("labels: label name \"team-name\" is not valid"),
        "{}",
        out.stderr
    );
    let out = check("labels:\n  __name__: up\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("reserved"), "{}", out.stderr);
}

#[test]
fn missing_file_is_named() {
    let out = run(&["--config", "/nonexistent/sc-agent.yaml"], &[], T);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr
            .contains("config /nonexistent/sc-agent.yaml: cannot open"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn config_path_comes_from_the_environment() {
    let out = run(
        &["--check-config"],
        &[("SC_AGENT_CONFIG", "/nonexistent/env.yaml")],
        T,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("/nonexistent/env.yaml"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_environment_override_is_named() {
    let out = run(
        &["--check-config"],
        &[("SC_COLLECTION_INTERVAL", "fast")],
        T,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr
            .contains("environment SC_COLLECTION_INTERVAL: expected a duration"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_config_does_nothing_else() {
    // The process must exit before collecting: nothing on stdout, even with --once.
    let dir = TempDir::new();
    let path = dir.write("c.yaml", "collectors:\n  cpu: maybe\n");
    let out = run(&["--once", "--config", path.to_str().unwrap()], &[], T);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("collectors.cpu"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn print_config_shows_effective_values() {
    let dir = TempDir::new();
    let path = dir.write("c.yaml", "collection_interval: 90s\n");
    let out = run(
        &["--print-config", "--config", path.to_str().unwrap()],
        &[("SC_JOB", "vms"), ("SC_LABELS", "env=prod")],
        T,
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("collection_interval: 1m30s\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("job: vms\n"), "{}", out.stdout);
    assert!(out.stdout.contains("env: prod"), "{}", out.stdout);
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["--bogus"], &[], T);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.contains("unknown argument \"--bogus\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Usage: sc-agent"), "{}", out.stderr);
}

#[test]
fn version_and_help() {
    let out = run(&["--version"], &[], T);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        out.stdout,
        format!("sc-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["--help"], &[], T);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.contains("--check-config"));
}
