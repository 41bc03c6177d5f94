//! What a SIGHUP keeps, through the real binary: the collectors whose settings did
//! not change keep their state. cpu's memory keeps `node_cpu_seconds_total` from
//! stepping down when the kernel's iowait dips (it does) between two reloads, and a
//! collector that was failing before the reload and still fails after it does not
//! log its failure again.

use sc_agent_testkit as common;

use common::{collectors_only, expositions, Agent, Exposition, TempDir};
use nix::sys::signal::Signal;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// cpu and loadavg from `dir/proc`, printed every 100 ms, with a label saying which
/// config it is.
fn config(dir: &TempDir, generation: &str) -> String {
    format!(
        "vm_id: test-vm\ninstance: test-host\ncollection_interval: 100ms\n\
         labels:\n  generation: {generation}\npaths:\n  procfs: {}\n{}",
        dir.path().join("proc").display(),
        collectors_only(&["cpu", "loadavg"])
    )
}

/// `/proc/stat` with one CPU whose iowait is `iowait` ticks (USER_HZ 100).
fn stat(iowait: u64) -> String {
    format!("cpu  100 0 100 1000 {iowait} 0 0 0 0 0\ncpu0 100 0 100 1000 {iowait} 0 0 0 0 0\n")
}

/// The iowait seconds of every cycle printed so far with the config `generation`.
fn iowait(stdout: &str, generation: &str) -> Vec<f64> {
    expositions(stdout)
        .into_iter()
        .map(Exposition::parse)
        .filter_map(|e| {
            e.value(
                "node_cpu_seconds_total",
                &[("mode", "iowait"), ("generation", generation)],
            )
        })
        .collect()
}

#[test]
fn a_reload_keeps_cpu_counters_from_stepping_down_and_failures_logged_once() {
    let dir = TempDir::new();
    dir.write("proc/stat", &stat(500));
    // No proc/loadavg: the loadavg collector fails at every cycle.
    let path = dir.write("sc-agent.yaml", &config(&dir, "first"));
    let mut agent = Agent::spawn(&["--config", path.to_str().unwrap()], &[]);
    assert!(
        agent.wait_for(WAIT, |out, _| iowait(out, "first").len() >= 3),
        "{}",
        agent.stderr()
    );
    assert_eq!(iowait(&agent.stdout(), "first").last(), Some(&5.0));

    // The kernel's iowait dips, and a reload comes (with another label, so that the
    // cycles after it can be told apart): the counter must stay at 5.
    dir.write("proc/stat", &stat(400));
    dir.write("sc-agent.yaml", &config(&dir, "second"));
    agent.signal(Signal::SIGHUP);
    assert!(
        agent.wait_for(WAIT, |out, _| iowait(out, "second").len() >= 3),
        "{}",
        agent.stderr()
    );
    let after = iowait(&agent.stdout(), "second");
    assert!(after.iter().all(|v| *v == 5.0), "{after:?}");
    assert!(iowait(&agent.stdout(), "first").iter().all(|v| *v == 5.0));

    // When it passes the old value again, the counter moves on.
    dir.write("proc/stat", &stat(600));
    assert!(
        agent.wait_for(WAIT, |out, _| iowait(out, "second").last() == Some(&6.0)),
        "{}",
        agent.stderr()
    );

    // loadavg failed before the reload and after it: logged once, not again.
    let stderr = agent.stderr();
    assert!(stderr.contains("config reloaded"), "{stderr}");
    assert_eq!(
        stderr.matches("collector loadavg failed").count(),
        1,
        "{stderr}"
    );
    // ... and once more when it recovers.
    dir.write("proc/loadavg", "0.5 0.25 0.125 1/100 4242\n");
    assert!(
        agent.wait_for(WAIT, |_, err| err.contains("collector loadavg recovered")),
        "{}",
        agent.stderr()
    );
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(WAIT).and_then(|s| s.code()), Some(0));
}
