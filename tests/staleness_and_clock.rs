//! Stale markers and clock steps, through the real binary and real receivers.
//!
//! - A disk removed between cycles: each of its series gets exactly one Prometheus
//!   stale NaN, at the next batch's timestamp, and nothing after (the test receiver
//!   decodes the bits).
//! - SIGTERM: every series of the last batch is marked stale, so Prometheus 2.42 and
//!   VictoriaMetrics show the host's series as gone at once: an instant query
//!   returns nothing after the stop (without the markers, for five minutes).
//! - The wall clock stepped back 60 s (libfaketime on the agent only; the machine's
//!   clock is never touched): no request is rejected, the skipped cycles are counted
//!   in `sc_agent_clock_backward_total`, and delivery resumes when the clock is past
//!   the last batch again.

use sc_agent_testkit as common;

use common::receiver::{Receiver, Reply};
use common::{collectors_only, Agent, Prometheus, TempDir, VictoriaMetrics};
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
/// Prometheus' stale marker (`value.StaleNaN`).
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Two disks in /proc/diskstats, or only the first.
fn diskstats(both: bool) -> String {
    let vda = " 254       0 vda 10625 9724 978115 22469 43281 14299 728151 51200 0 29952 78130 0 0 0 0 1233 2032\n";
    let vdb = " 254      16 vdb 100 20 3000 400 50 60 7000 800 0 900 1000 0 0 0 0 11 12\n";
    if both {
        format!("{vda}{vdb}")
    } else {
        vda.to_owned()
    }
}

fn config(endpoint: &str, procfs: &Path, collectors: &[&str], extra: &str) -> String {
    format!(
        "vm_id: test-vm\ninstance: test-host\ncollection_interval: 200ms\n\
         ingestor_endpoint: {endpoint}\n\
         remote_write:\n  min_backoff: 20ms\n  max_backoff: 200ms\n\
         paths:\n  procfs: {}\n  rootfs: {}\n{}{extra}",
        procfs.display(),
        procfs.join("../root").display(),
        collectors_only(collectors)
    )
}

/// A procfs with loadavg and the two disks.
fn procfs(dir: &TempDir) -> std::path::PathBuf {
    dir.write("proc/loadavg", "0.5 0.25 0.125 1/100 4242\n");
    dir.write("proc/diskstats", &diskstats(true));
    dir.path().join("proc")
}

#[test]
fn a_disk_removed_between_cycles_gets_exactly_one_stale_marker_per_series() {
    let receiver = Receiver::start(|_| Reply::ok());
    let dir = TempDir::new();
    let procfs = procfs(&dir);
    let path = dir.write(
        "sc-agent.yaml",
        &config(&receiver.url(), &procfs, &["diskstats"], ""),
    );
    let agent = Agent::spawn(&["--config", path.to_str().unwrap()], &[]);
    let vdb = |r: &common::receiver::Received| {
        r.series
            .iter()
            .filter(|s| s.labels.get("device").map(String::as_str) == Some("vdb"))
            .count()
    };
    receiver.wait_for(WAIT, "batches with vdb", |r| {
        r.iter().filter(|r| r.accepted() && vdb(r) > 0).count() >= 2
    });
    let with_vdb = receiver
        .accepted()
        .iter()
        .rev()
        .find(|r| vdb(r) > 0)
        .map(|r| {
            r.series
                .iter()
                .filter(|s| s.labels.get("device").map(String::as_str) == Some("vdb"))
                .count()
        })
        .unwrap();
    dir.write("proc/diskstats", &diskstats(false));
    let removed_at = receiver.accepted().len();
    receiver.wait_for(WAIT, "five batches after the removal", |r| {
        r.iter().filter(|r| r.accepted()).count() >= removed_at + 5
    });
    drop(agent);

    let accepted = receiver.accepted();
    // Every vdb series the agent sent before, marked stale once, then never again.
    let mut stale_by_series = std::collections::BTreeMap::new();
    let mut marked_at = Vec::new();
    for request in &accepted {
        for series in request.series.iter().filter(|s| {
            s.labels.get("device").map(String::as_str) == Some("vdb")
                && s.value.to_bits() == STALE_NAN
        }) {
            *stale_by_series
                .entry(format!("{:?}", series.labels))
                .or_insert(0) += 1;
            marked_at.push((request.timestamp(), series.timestamp));
        }
    }
    assert_eq!(stale_by_series.len(), with_vdb, "{stale_by_series:?}");
    assert!(
        stale_by_series.values().all(|n| *n == 1),
        "{stale_by_series:?}"
    );
    // At the timestamp of the batch they are part of.
    assert!(marked_at.iter().all(|(batch, sample)| batch == sample));
    // After the marker, vdb is gone for good; vda and its values carry on.
    let first_marker = accepted
        .iter()
        .position(|r| r.series.iter().any(|s| s.value.to_bits() == STALE_NAN))
        .unwrap();
    for request in &accepted[first_marker + 1..] {
        assert_eq!(vdb(request), 0);
        assert!(request
            .series
            .iter()
            .all(|s| s.value.to_bits() != STALE_NAN));
        assert!(request
            .series
            .iter()
            .any(|s| s.labels.get("device").map(String::as_str) == Some("vda")));
    }
}

/// The agent pushing loadavg and the two disks to `url`, started.
fn pushing(dir: &TempDir, url: &str, env: &[(&str, &str)]) -> Agent {
    let procfs = procfs(dir);
    let path = dir.write(
        "sc-agent.yaml",
        &config(url, &procfs, &["loadavg", "diskstats"], ""),
    );
    Agent::spawn(&["--config", path.to_str().unwrap()], env)
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn after_sigterm_prometheus_shows_the_hosts_series_as_gone_at_once() {
    let prometheus = Prometheus::start();
    let dir = TempDir::new();
    let mut agent = pushing(&dir, &prometheus.write_url(), &[]);
    let selector = r#"{vm_id="test-vm"}"#;
    wait_until("the host's series in Prometheus", || {
        prometheus.query(&format!("count({selector})")).len() == 1
    });
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(WAIT).and_then(|s| s.code()), Some(0));
    assert!(
        agent.stderr().contains("0 samples left unsent"),
        "{}",
        agent.stderr()
    );
    // Gone at once: every series ends with a stale marker, which PromQL skips.
    wait_until("the series gone after the stop", || {
        prometheus.query(selector).is_empty()
    });
    assert!(
        prometheus
            .query(&format!("count(last_over_time({selector}[5m]))"))
            .len()
            == 1,
        "the samples before the stop are all still there"
    );
}

#[test]
fn after_sigterm_victoriametrics_shows_the_hosts_series_as_gone_at_once() {
    let victoria = VictoriaMetrics::start();
    let dir = TempDir::new();
    let mut agent = pushing(&dir, &victoria.write_url(), &[]);
    let selector = r#"node_load1{vm_id="test-vm"}"#;
    wait_until("the host's series in VictoriaMetrics", || {
        !victoria.query(selector).is_empty()
    });
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(WAIT).and_then(|s| s.code()), Some(0));
    wait_until("the series gone after the stop", || {
        victoria.query(selector).is_empty()
    });
}

/// libfaketime for the agent: the offset is read from `file` at every clock call.
fn faketime_env(file: &Path) -> Vec<(&'static str, String)> {
    let library = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .expect("libfaketime is not installed: run scripts/test.sh, which installs it");
    vec![
        ("LD_PRELOAD", library.to_owned()),
        ("FAKETIME_TIMESTAMP_FILE", file.display().to_string()),
        ("FAKETIME_NO_CACHE", "1".to_owned()),
        // The cycle timer and the sender's waits are monotonic: left alone.
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
    ]
}

/// The value of `sc_agent_<name>` in the agent's last batch that has it.
fn self_metric(prometheus_or_vm: &dyn Fn(&str) -> Vec<serde_json::Value>, query: &str) -> f64 {
    prometheus_or_vm(query)
        .first()
        .and_then(|s| s["value"][1].as_str().map(str::to_owned))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn clock_step_back(write_url: &str, query: &dyn Fn(&str) -> Vec<serde_json::Value>) {
    let dir = TempDir::new();
    let offset = dir.write("faketime", "+0\n");
    let env = faketime_env(&offset);
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let agent = pushing(&dir, write_url, &env);
    let sent = |q: &str| self_metric(query, q);
    wait_until("batches before the step", || {
        sent(r#"sc_agent_samples_sent_total{vm_id="test-vm"}"#) > 0.0
    });
    // The clock steps back a minute: cycles are skipped, not sent.
    dir.write("faketime", "-60s\n");
    assert!(
        agent.wait_for(WAIT, |_, err| err.contains("the wall clock stepped back")),
        "{}",
        agent.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    // Back (an NTP correction the other way): delivery resumes.
    dir.write("faketime", "+0\n");
    assert!(
        agent.wait_for(WAIT, |_, err| err.contains("collecting again after")),
        "{}",
        agent.stderr()
    );
    wait_until("the skipped cycles counted in a later batch", || {
        sent(r#"sc_agent_clock_backward_total{vm_id="test-vm"}"#) >= 5.0
    });
    // Nothing the receiver would refuse was sent: no 4xx, nothing rejected.
    assert_eq!(
        sent(r#"sc_agent_send_failures_total{vm_id="test-vm",reason="http_4xx"}"#),
        0.0
    );
    assert_eq!(
        sent(r#"sc_agent_samples_dropped_total{vm_id="test-vm",reason="rejected"}"#),
        0.0
    );
    let stderr = agent.stderr();
    assert!(!stderr.contains("rejected the batch"), "{stderr}");
    assert_eq!(
        stderr.matches("the wall clock stepped back").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_clock_step_back_is_skipped_not_sent_prometheus() {
    let prometheus = Prometheus::start();
    clock_step_back(&prometheus.write_url(), &|q| prometheus.query(q));
}

#[test]
fn a_clock_step_back_is_skipped_not_sent_victoriametrics() {
    let victoria = VictoriaMetrics::start();
    clock_step_back(&victoria.write_url(), &|q| victoria.query(q));
}
