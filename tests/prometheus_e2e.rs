//! End to end against a real Prometheus (Debian's `prometheus` with its remote write
//! receiver): what the agent pushes is what PromQL finds, with the identity and
//! custom labels, and the same values `--once` prints.

use sc_agent_testkit as common;

use common::{Agent, Prometheus, TempDir};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The value of a query result's single sample, as a number.
fn value(series: &Value) -> f64 {
    series["value"][1].as_str().unwrap().parse().unwrap()
}

/// The value `--once` printed for the series line starting with `name{`.
fn printed(once: &str, name: &str) -> f64 {
    once.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| panic!("{name} not in --once output:\n{once}"))
}

#[test]
fn prometheus_receives_the_series_with_their_labels_and_values() {
    let prometheus = Prometheus::start();
    let dir = TempDir::new();
    let procfs = common::fixtures().join("loadavg_meminfo/proc");
    let config = format!(
        "vm_id: e2e-vm\ninstance: e2e-host\njob: e2e-job\ncollection_interval: 200ms\n\
         ingestor_endpoint: {}\nlabels:\n  env: e2e\n  team: sre\n\
         paths:\n  procfs: {}\n{}",
        prometheus.write_url(),
        procfs.display(),
        common::collectors_only(&["loadavg", "meminfo"])
    );
    let path = dir.write("sc-agent.yaml", &config);
    let path = path.to_str().unwrap();

    // --once prints to stdout even with an endpoint configured, and pushes nothing.
    let once = common::run(&["--once", "--config", path], &[], WAIT);
    assert_eq!(once.status.code(), Some(0), "{}", once.stderr);
    let once = once.stdout;
    let series_lines = once
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();

    let mut agent = Agent::spawn(&["--config", path], &[]);
    let load = prometheus.wait_for(r#"node_load1{vm_id="e2e-vm"}"#);
    assert_eq!(load.len(), 1, "{load:?}");
    assert_eq!(
        load[0]["metric"],
        serde_json::json!({
            "__name__": "node_load1",
            "env": "e2e",
            "instance": "e2e-host",
            "job": "e2e-job",
            "team": "sre",
            "vm_id": "e2e-vm",
        })
    );
    assert_eq!(value(&load[0]), printed(&once, "node_load1"));
    assert_eq!(value(&load[0]), 0.31);
    for name in [
        "node_load15",
        "node_memory_MemTotal_bytes",
        "node_memory_Active_anon_bytes",
        "node_memory_HugePages_Total",
    ] {
        let result = prometheus.wait_for(&format!(r#"{name}{{vm_id="e2e-vm"}}"#));
        assert_eq!(value(&result[0]), printed(&once, name), "{name}");
    }
    // Every series --once prints is in Prometheus.
    let count = prometheus.wait_for(r#"count({vm_id="e2e-vm", job="e2e-job"})"#);
    assert_eq!(value(&count[0]), series_lines as f64, "{once}");
    // Delivery reports itself, and nothing failed.
    let sent = prometheus.wait_for(r#"sc_agent_samples_sent_total{vm_id="e2e-vm"} > 0"#);
    assert!(value(&sent[0]) > 0.0);
    let failed = prometheus.query(r#"sum(sc_agent_send_failures_total{vm_id="e2e-vm"})"#);
    assert_eq!(value(&failed[0]), 0.0, "{}", agent.stderr());
    let build = prometheus.wait_for(r#"sc_agent_build_info{vm_id="e2e-vm"}"#);
    assert_eq!(build[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));

    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(WAIT).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert!(
        !prometheus.log().contains("out of order"),
        "{}",
        prometheus.log()
    );
}
