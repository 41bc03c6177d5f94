//! The dashboard users have: how many panels of Grafana's "Node Exporter Full"
//! (tests/dashboards/) show data when sc-agent feeds Prometheus, beside node_exporter
//! 1.5 on the same machine. `scripts/dashboard-panels.py` does the work (it starts
//! both Prometheus servers, the agent and node_exporter, and evaluates every panel);
//! this test runs it and holds the agent to [`REQUIRED_PANELS`].

use sc_agent_testkit as common;

use common::{require, Peer, TempDir};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What sc-agent's count of panels with data must reach.
#[allow(dead_code)] // one of the two is in use at a time
enum Bar {
    /// A fixed number of panels.
    AtLeast(u64),
    /// As many as node_exporter 1.5 fills on the same machine, in the same run.
    NodeExporter,
}

/// Today's sc-agent count: 95 of 125 panels (node_exporter 1.5: 106; the 11 between
/// them need timex, conntrack, softnet, arp and udp_queues). When issue 11 lands,
/// this becomes `Bar::NodeExporter` (the lead switches it).
const REQUIRED_PANELS: Bar = Bar::AtLeast(95);

/// The script starts four processes and waits for a few seconds of data: about 10 s
/// here with a debug build; this bounds a stuck run.
const TIMEOUT: Duration = Duration::from_secs(110);

fn count(result: &Value, side: &str) -> u64 {
    result["sides"][side]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count for {side} in {result}"))
}

#[test]
fn sc_agent_fills_as_many_dashboard_panels_as_node_exporter() {
    for peer in ["prometheus", "prometheus-node-exporter"] {
        require(peer);
    }
    let dir = TempDir::new();
    let json = dir.path().join("result.json");
    let log = std::fs::File::create(dir.path().join("report.txt")).unwrap();
    let child = Command::new(require("python3"))
        .arg(common::project_root().join("scripts/dashboard-panels.py"))
        .arg("--agent")
        .arg(common::bin())
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run scripts/dashboard-panels.py");
    let mut script = Peer(child);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = script.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < TIMEOUT, "the script ran over {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = std::fs::read_to_string(dir.path().join("report.txt")).unwrap_or_default();
    println!("{report}");
    assert!(status.success(), "the script failed ({status}):\n{report}");

    let result: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let total = result["total"].as_u64().unwrap();
    assert!(total > 0, "no panels in the dashboard");
    for side in ["sc-agent", "node_exporter"] {
        let errors = &result["sides"][side]["errors"];
        assert_eq!(errors, &Value::Array(vec![]), "query errors on {side}");
    }
    let ours = count(&result, "sc-agent");
    let theirs = count(&result, "node_exporter");
    let required = match REQUIRED_PANELS {
        Bar::AtLeast(n) => n,
        Bar::NodeExporter => theirs,
    };
    assert!(
        ours >= required,
        "sc-agent fills {ours} of {total} panels, {required} required \
         (node_exporter: {theirs}):\n{report}"
    );
}
