//! The collectors node_exporter keeps off by default and that walk the machine's
//! processes or interrupts, beside the real node_exporter (Debian's 1.5) on this
//! machine: over fixed trees (`--path.procfs`) the series, HELP, TYPE and values must
//! be identical; over this machine's /proc, where processes come and go between the
//! two reads, the same families and limits, and counts within a tolerance.
//!
//! sc-agent follows node_exporter 1.12; for these collectors 1.12 changes nothing 1.5
//! shows on these trees but aarch64's interrupt rows, checked as such (each module
//! doc says what 1.12 added).

use sc_agent_testkit as common;

use common::procfs::write_process_table;
use common::{
    base_config, collectors_only, free_port, http_get, require, run, wait_for_port, Exposition,
    Peer, TempDir,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// node_exporter with one collector, reading `procfs`.
fn start_node_exporter(collector: &str, procfs: &Path) -> (Peer, u16) {
    let port = free_port();
    let child = Command::new(require("prometheus-node-exporter"))
        .args([
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.disable-defaults".to_owned(),
            format!("--collector.{collector}"),
            format!("--path.procfs={}", procfs.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let peer = Peer(child);
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "node_exporter did not start"
    );
    (peer, port)
}

fn scrape(port: u16) -> Exposition {
    Exposition::parse(&http_get(port, "/metrics").expect("scrape node_exporter"))
}

/// One cycle of the agent with one collector, reading `procfs`.
fn agent_once(collector: &str, procfs: &Path) -> Exposition {
    let dir = TempDir::new();
    let config = dir.write(
        "c.yaml",
        &base_config(&format!(
            "paths:\n  procfs: {}\n{}",
            procfs.display(),
            collectors_only(&[collector])
        )),
    );
    let out = run(
        &["--once", "--config", config.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    Exposition::parse(&out.stdout)
}

type Key = (String, BTreeMap<String, String>);

/// The series of families starting with `prefix`, without the agent's own labels.
fn series(exposition: &Exposition, prefix: &str) -> BTreeMap<Key, f64> {
    exposition
        .samples
        .iter()
        .filter(|s| s.name.starts_with(prefix))
        .map(|s| {
            let mut labels = s.labels.clone();
            for ours in ["vm_id", "job", "instance"] {
                labels.remove(ours);
            }
            ((s.name.clone(), labels), s.value)
        })
        .collect()
}

fn success(exposition: &Exposition, collector: &str) -> Option<f64> {
    exposition.value("node_scrape_collector_success", &[("collector", collector)])
}

/// HELP and TYPE of every family starting with `prefix` that node_exporter exports.
fn assert_same_help_and_type(theirs: &Exposition, ours: &Exposition, prefix: &str) {
    let mut checked = 0;
    for (name, kind) in theirs.kind.iter().filter(|(n, _)| n.starts_with(prefix)) {
        assert_eq!(ours.kind.get(name), Some(kind), "TYPE of {name}");
        assert_eq!(ours.help.get(name), theirs.help.get(name), "HELP of {name}");
        checked += 1;
    }
    assert!(checked > 0, "no {prefix} family");
}

/// Both sides over the same fixed tree: the same success, and when they succeed the
/// same series with the same values, HELP and TYPE.
fn assert_same_over(collector: &str, prefix: &str, procfs: &Path) -> Exposition {
    let (_node_exporter, port) = start_node_exporter(collector, procfs);
    let theirs = scrape(port);
    let ours = agent_once(collector, procfs);
    let case = procfs.display();
    assert_eq!(
        success(&ours, collector),
        success(&theirs, collector),
        "{case}: success"
    );
    if success(&ours, collector) == Some(1.0) {
        assert_eq!(series(&ours, prefix), series(&theirs, prefix), "{case}");
        assert_same_help_and_type(&theirs, &ours, prefix);
    } else {
        // node_exporter keeps what a failing collector sent before its error; the
        // agent reports nothing of a failed cycle.
        assert!(series(&ours, prefix).is_empty(), "{case}");
    }
    ours
}

#[test]
fn processes_match_node_exporter_on_the_fixture_trees() {
    for case in ["processes", "processes_absent", "processes_malformed"] {
        assert_same_over(
            "processes",
            "node_processes_",
            &common::fixtures().join(case).join("proc"),
        );
    }
}

#[test]
fn processes_match_node_exporter_and_the_generator_on_2000_processes() {
    let dir = TempDir::new();
    let procfs = dir.path().join("proc");
    let table = write_process_table(&procfs, 2000);
    let ours = assert_same_over("processes", "node_processes_", &procfs);
    assert_eq!(success(&ours, "processes"), Some(1.0));
    // Against what the generator wrote, counted by the generator.
    let value = |name: &str, labels: &[(&str, &str)]| ours.value(name, labels).unwrap_or(-1.0);
    assert_eq!(value("node_processes_pids", &[]), table.pids as f64);
    assert_eq!(value("node_processes_threads", &[]), table.threads as f64);
    assert_eq!(value("node_processes_max_processes", &[]), 4_194_304.0);
    for (state, count) in &table.states {
        assert_eq!(
            value("node_processes_state", &[("state", state)]),
            *count as f64,
            "{state}"
        );
    }
    for (state, count) in &table.thread_states {
        let labels = [("thread_state", state.as_str())];
        assert_eq!(
            value("node_processes_threads_state", &labels),
            *count as f64,
            "{state}"
        );
    }
    assert_eq!(
        ours.find("node_processes_state").count(),
        table.states.len()
    );
}

/// Whether two readings of a count that moves (processes start and exit between the
/// reads, the test's own among them) are close: within 10, or 10%.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 10f64.max(0.1 * a.max(b))
}

#[test]
fn processes_match_node_exporter_on_this_machine() {
    let (_node_exporter, port) = start_node_exporter("processes", Path::new("/proc"));
    let before = scrape(port);
    let ours = agent_once("processes", Path::new("/proc"));
    let after = scrape(port);
    assert_eq!(success(&ours, "processes"), Some(1.0));
    assert_same_help_and_type(&before, &ours, "node_processes_");
    let value = |e: &Exposition, name: &str| e.value(name, &[]).unwrap_or(-1.0);
    for limit in ["node_processes_max_processes", "node_processes_max_threads"] {
        assert_eq!(value(&ours, limit), value(&before, limit), "{limit}");
    }
    for count in ["node_processes_pids", "node_processes_threads"] {
        let (mine, low, high) = (
            value(&ours, count),
            value(&before, count),
            value(&after, count),
        );
        assert!(
            close(mine, low) || close(mine, high),
            "{count}: node_exporter {low} then {high}, sc-agent {mine}"
        );
    }
    // Every process and thread is in one state, on both sides.
    let sum = |e: &Exposition, name: &str| e.find(name).map(|s| s.value).sum::<f64>();
    assert_eq!(
        sum(&ours, "node_processes_state"),
        value(&ours, "node_processes_pids")
    );
    assert_eq!(
        sum(&before, "node_processes_state"),
        value(&before, "node_processes_pids")
    );
    // The states most processes are in (sleeping, idle kernel workers) agree.
    for (family, label) in [
        ("node_processes_state", "state"),
        ("node_processes_threads_state", "thread_state"),
    ] {
        for sample in before.find(family).filter(|s| s.value >= 20.0) {
            let state = &sample.labels[label];
            let mine = ours.value(family, &[(label, state)]).unwrap_or(0.0);
            assert!(
                close(mine, sample.value),
                "{family}{{{label}={state:?}}}: node_exporter {}, sc-agent {mine}",
                sample.value
            );
        }
    }
}

#[test]
fn interrupts_match_node_exporter_on_the_fixture_trees() {
    for case in ["interrupts", "interrupts_absent", "interrupts_malformed"] {
        let procfs = common::fixtures().join(case).join("proc");
        assert_same_over("interrupts", "node_interrupts_", &procfs);
    }
    // aarch64's IPI rows, whose first count touches the colon: 1.12 splits at the
    // colon, as the agent does; 1.5 splits at blanks and fails.
    let procfs = common::fixtures().join("interrupts_aarch64/proc");
    let (_node_exporter, port) = start_node_exporter("interrupts", &procfs);
    assert_eq!(success(&scrape(port), "interrupts"), Some(0.0));
    let ours = agent_once("interrupts", &procfs);
    assert_eq!(success(&ours, "interrupts"), Some(1.0));
    let reschedule = [
        ("cpu", "0"),
        ("type", "IPI0"),
        ("info", "Rescheduling interrupts"),
    ];
    assert_eq!(
        ours.value("node_interrupts_total", &reschedule),
        Some(2_768_808_080.0)
    );
    assert_eq!(ours.find("node_interrupts_total").count(), 58 * 8);
}

#[test]
fn interrupts_match_node_exporter_on_this_machine() {
    let (_node_exporter, port) = start_node_exporter("interrupts", Path::new("/proc"));
    let before = scrape(port);
    let ours = agent_once("interrupts", Path::new("/proc"));
    let after = scrape(port);
    assert_eq!(success(&ours, "interrupts"), Some(1.0));
    assert_same_help_and_type(&before, &ours, "node_interrupts_");
    let (low, mine, high) = (
        series(&before, "node_interrupts_"),
        series(&ours, "node_interrupts_"),
        series(&after, "node_interrupts_"),
    );
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        low.keys().collect::<Vec<_>>()
    );
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(mine.len() >= cpus, "{} series", mine.len());
    for (key, value) in &mine {
        let (low, high) = (low[key], high[key]);
        assert!(
            low <= *value && *value <= high,
            "{key:?}: node_exporter read {low} then {high}, sc-agent {value}"
        );
    }
}
