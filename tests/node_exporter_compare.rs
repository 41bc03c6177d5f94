//! sc-agent beside the real node_exporter (Debian's 1.5) on this machine, with the
//! same collectors and the same filters: the metric names, label sets, HELP and TYPE
//! of the shared collectors must be identical (apart from our vm_id/job/instance),
//! stable values equal, and every counter must lie between node_exporter's reading
//! before and after ours.

use sc_agent_testkit as common;

use common::{
    base_config, collectors_only, free_port, http_get, require, run, wait_for_port, Exposition,
    Peer, Sample, TempDir,
};
use sc_agent::collector::{diskstats, filesystem, table};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Collectors of the agent's table that Debian's node_exporter 1.5 does not have:
/// the agent's own `process_*` (node_exporter's come from the Go client, not a
/// collector) and those node_exporter added later (`kernel_hung`, off by default,
/// needs no entry).
const NOT_IN_NODE_EXPORTER: [&str; 2] = ["process", "watchdog"];

/// Families of shared collectors that follow node_exporter 1.12 and that 1.5 lacks
/// (their module docs say so): only the agent has them.
const SINCE_1_5: [&str; 7] = [
    "node_softnet_cpu_collision_total",
    "node_softnet_received_rps_total",
    "node_softnet_flow_limit_count_total",
    "node_softnet_backlog_len",
    "node_timex_offset_overflow_total",
    "node_os_support_end_timestamp_seconds",
    "node_selinux_avc_",
];

/// The collectors compared: every default collector of the agent's table that
/// node_exporter 1.5 has, under the same name.
fn shared() -> Vec<&'static str> {
    for name in NOT_IN_NODE_EXPORTER {
        assert!(table::find(name).is_some(), "{name} is not in the table");
    }
    table::TABLE
        .iter()
        .filter(|d| d.enabled_by_default && !NOT_IN_NODE_EXPORTER.contains(&d.name))
        .map(|d| d.name)
        .collect()
}

/// Gauges that do not move while the test runs: they must be equal.
const STABLE: [&str; 12] = [
    "node_memory_MemTotal_bytes",
    "node_boot_time_seconds",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
    "node_filefd_maximum",
    "node_entropy_pool_size_bits",
    "node_network_mtu_bytes",
    "node_network_up",
    "node_uname_info",
    "node_disk_info",
    "node_network_info",
];

/// Families only one side has by design: each exporter's own process and runtime.
fn is_exporter_own(name: &str) -> bool {
    [
        "go_",
        "promhttp_",
        "process_",
        "sc_agent_",
        "node_exporter_",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

fn start_node_exporter(port: u16) -> Peer {
    let mut args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults".to_owned(),
        // netdev stays in node_exporter's default (netlink) mode, the one users run:
        // sc-agent reads /proc/net/dev plus sysfs rx_nohandler to give the same series.
        // Debian patches node_exporter's default filters; use the upstream ones,
        // which are sc-agent's defaults.
        format!(
            "--collector.diskstats.device-exclude={}",
            diskstats::DEVICE_EXCLUDE
        ),
        format!(
            "--collector.filesystem.mount-points-exclude={}",
            filesystem::MOUNT_POINTS_EXCLUDE
        ),
        format!(
            "--collector.filesystem.fs-types-exclude={}",
            filesystem::FS_TYPES_EXCLUDE
        ),
        "--collector.netdev.device-exclude=".to_owned(),
    ];
    args.extend(shared().iter().map(|name| format!("--collector.{name}")));
    let child = Command::new(require("prometheus-node-exporter"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let peer = Peer(child);
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "node_exporter did not start"
    );
    peer
}

type Key = (String, BTreeMap<String, String>);

fn key(sample: &Sample) -> Key {
    let mut labels = sample.labels.clone();
    for ours in ["vm_id", "job", "instance"] {
        labels.remove(ours);
    }
    (sample.name.clone(), labels)
}

/// The series of the shared collectors, keyed by name and labels.
fn shared_series(exposition: &Exposition) -> BTreeMap<Key, f64> {
    exposition
        .samples
        .iter()
        .filter(|s| !is_exporter_own(&s.name))
        // Timing series are compared by label set only; the process collector is ours.
        .filter(|s| s.labels.get("collector").map(String::as_str) != Some("process"))
        .map(|s| (key(s), s.value))
        .collect()
}

fn describe(keys: &BTreeSet<&Key>) -> String {
    keys.iter()
        .take(40)
        .map(|(name, labels)| format!("  {name}{labels:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shared_collectors_match_node_exporter() {
    let port = free_port();
    let _node_exporter = start_node_exporter(port);
    let before = Exposition::parse(&http_get(port, "/metrics").expect("scrape node_exporter"));

    let dir = TempDir::new();
    let config = dir.write("c.yaml", &base_config(&collectors_only(&shared())));
    let out = run(
        &["--once", "--config", config.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let ours = Exposition::parse(&out.stdout);

    let after = Exposition::parse(&http_get(port, "/metrics").expect("scrape node_exporter"));

    // 1. The same series: names and label sets (values compared below).
    let theirs_before = shared_series(&before);
    let theirs_after = shared_series(&after);
    let ours_series = shared_series(&ours);
    let volatile = |k: &&Key| {
        // Series that may come and go between the reads; none expected on a quiet VM.
        theirs_before.contains_key(*k) != theirs_after.contains_key(*k)
    };
    let theirs_keys: BTreeSet<&Key> = theirs_before.keys().filter(|k| !volatile(k)).collect();
    let ours_keys: BTreeSet<&Key> = ours_series.keys().filter(|k| !volatile(k)).collect();
    let only_theirs: BTreeSet<&Key> = theirs_keys.difference(&ours_keys).copied().collect();
    let only_ours: BTreeSet<&Key> = ours_keys
        .difference(&theirs_keys)
        .filter(|(name, _)| !SINCE_1_5.iter().any(|newer| name.starts_with(newer)))
        .copied()
        .collect();
    assert!(
        only_theirs.is_empty() && only_ours.is_empty(),
        "series differ\nonly node_exporter has:\n{}\nonly sc-agent has:\n{}",
        describe(&only_theirs),
        describe(&only_ours)
    );

    // 2. HELP and TYPE of every shared family.
    for (name, kind) in before.kind.iter().filter(|(n, _)| !is_exporter_own(n)) {
        if before.find(name).next().is_none() {
            continue;
        }
        assert_eq!(ours.kind.get(name), Some(kind), "TYPE of {name}");
        assert_eq!(ours.help.get(name), before.help.get(name), "HELP of {name}");
    }

    // 3. Stable gauges are equal.
    for name in STABLE {
        // Series order within a family is not part of the format: compare sorted.
        let sorted = |e: &Exposition| {
            let mut series: Vec<_> = e.find(name).map(|s| (key(s), s.value)).collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            series
        };
        let (theirs, mine) = (sorted(&before), sorted(&ours));
        assert_eq!(mine, theirs, "values of {name}");
    }
    let cpus = |e: &Exposition| -> BTreeSet<String> {
        e.find("node_cpu_seconds_total")
            .filter_map(|s| s.labels.get("cpu").cloned())
            .collect()
    };
    assert_eq!(cpus(&ours), cpus(&before), "CPU count");
    assert!(!cpus(&ours).is_empty());

    // 4. Counters agree within their movement between the two node_exporter reads.
    let mut checked = 0;
    for (k, value) in &ours_series {
        if before.kind.get(&k.0).map(String::as_str) != Some("counter") {
            continue;
        }
        let (Some(low), Some(high)) = (theirs_before.get(k), theirs_after.get(k)) else {
            continue;
        };
        let slack = 1e-9 * high.abs().max(1.0);
        assert!(
            *low - slack <= *value && *value <= *high + slack,
            "{}{:?}: node_exporter read {low} then {high}, sc-agent {value}",
            k.0,
            k.1
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} counters compared");
}
