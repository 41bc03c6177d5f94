//! sc-agent beside the real node_exporter (Debian's 1.5) on this machine, with the
//! same collectors and the same filters: the metric names, label sets, HELP and TYPE
//! of the shared collectors must be identical (apart from our vm_id/job/instance),
//! stable values equal, and every counter must lie between node_exporter's reading
//! before and after ours.
//!
//! sc-agent follows node_exporter 1.12, so what 1.12 adds or changes relative to 1.5
//! is listed in [`since_1_5`], rule by rule, and taken out of both sides before the
//! comparison; each rule is also checked (the labels 1.12 adds must have 1.12's
//! values). Nothing else may differ.

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
const SINCE_1_5: [&str; 8] = [
    "node_softnet_cpu_collision_total",
    "node_softnet_received_rps_total",
    "node_softnet_flow_limit_count_total",
    "node_softnet_backlog_len",
    "node_timex_offset_overflow_total",
    "node_os_support_end_timestamp_seconds",
    "node_selinux_avc_",
    "node_arp_states",
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

/// What node_exporter 1.12 (which sc-agent follows) adds to or changes in the series
/// node_exporter 1.5 (which this machine has) exports, from node_exporter's source and
/// changelog, with the release that made each change.
mod since_1_5 {
    /// Families 1.12 exports and 1.5 does not (each only when the machine has what
    /// it reads: the irq pressure file, a cpu0 that can go offline, btrfs).
    pub const NEW_FAMILIES: [&str; 10] = [
        "node_netstat_TcpExt_TCPOFOQueue",         // 1.8, default fields
        "node_netstat_TcpExt_TCPRcvQDrop",         // 1.9, default fields
        "node_pressure_irq_stalled_seconds_total", // 1.9
        "node_filesystem_mount_info",              // 1.9
        "node_filesystem_purgeable_bytes",         // 1.9, 0 on Linux
        "node_cpu_online",                         // 1.9
        "node_btrfs_commits_total",                // 1.9
        "node_btrfs_last_commit_seconds",          // 1.9
        "node_btrfs_max_commit_seconds",           // 1.9
        "node_btrfs_commit_seconds_total",         // 1.9
    ];

    /// Of those, the ones every kernel this test runs on has.
    pub const ALWAYS_NEW: [&str; 4] = [
        "node_netstat_TcpExt_TCPOFOQueue",
        "node_netstat_TcpExt_TCPRcvQDrop",
        "node_filesystem_mount_info",
        "node_filesystem_purgeable_bytes",
    ];

    /// A label 1.12 adds to a family 1.5 has, and whether a value is one 1.12 writes.
    pub type NewLabel = (&'static str, &'static str, fn(&str) -> bool);

    pub const NEW_LABELS: [NewLabel; 9] = [
        ("node_disk_info", "rotational", |v| v == "0" || v == "1"), // 1.9
        ("node_network_info", "adminstate", |v| {
            ["up", "down", "unknown"].contains(&v)
        }), // 1.6
        ("node_filesystem_size_bytes", "device_error", |v| {
            v.is_empty()
        }), // 1.8
        ("node_filesystem_free_bytes", "device_error", |v| {
            v.is_empty()
        }),
        ("node_filesystem_avail_bytes", "device_error", |v| {
            v.is_empty()
        }),
        ("node_filesystem_files", "device_error", |v| v.is_empty()),
        ("node_filesystem_files_free", "device_error", |v| {
            v.is_empty()
        }),
        // Not empty for a mount statfs fails on: then 1.12 also has its readonly.
        ("node_filesystem_readonly", "device_error", |_| true),
        ("node_filesystem_device_error", "device_error", |_| true),
    ];

    /// The meminfo fields 1.12 exports (procfs's `Meminfo` since 1.9, where 1.5
    /// exported every line of /proc/meminfo), as metric names after `node_memory_`.
    pub const MEMINFO: [&str; 51] = [
        "Active_bytes",
        "Active_anon_bytes",
        "Active_file_bytes",
        "AnonHugePages_bytes",
        "AnonPages_bytes",
        "Bounce_bytes",
        "Buffers_bytes",
        "Cached_bytes",
        "CmaFree_bytes",
        "CmaTotal_bytes",
        "CommitLimit_bytes",
        "Committed_AS_bytes",
        "DirectMap1G_bytes",
        "DirectMap2M_bytes",
        "DirectMap4k_bytes",
        "Dirty_bytes",
        "HardwareCorrupted_bytes",
        "Hugepagesize_bytes",
        "Inactive_bytes",
        "Inactive_anon_bytes",
        "Inactive_file_bytes",
        "KernelStack_bytes",
        "Mapped_bytes",
        "MemAvailable_bytes",
        "MemFree_bytes",
        "MemTotal_bytes",
        "Mlocked_bytes",
        "NFS_Unstable_bytes",
        "PageTables_bytes",
        "Percpu_bytes",
        "SReclaimable_bytes",
        "SUnreclaim_bytes",
        "Shmem_bytes",
        "ShmemHugePages_bytes",
        "ShmemPmdMapped_bytes",
        "Slab_bytes",
        "SwapCached_bytes",
        "SwapFree_bytes",
        "SwapTotal_bytes",
        "Unevictable_bytes",
        "VmallocChunk_bytes",
        "VmallocTotal_bytes",
        "VmallocUsed_bytes",
        "Writeback_bytes",
        "WritebackTmp_bytes",
        "Zswap_bytes",
        "Zswapped_bytes",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
        "HugePages_Total",
    ];

    /// Whether 1.12 drops this 1.5 series: a meminfo field procfs does not know.
    pub fn dropped(name: &str) -> bool {
        name.strip_prefix("node_memory_")
            .is_some_and(|field| !MEMINFO.contains(&field))
    }
}

type Key = (String, BTreeMap<String, String>);

fn key(sample: &Sample) -> Key {
    let mut labels = sample.labels.clone();
    for ours in ["vm_id", "job", "instance"] {
        labels.remove(ours);
    }
    // 1.12's serial falls back to SCSI_IDENT_SERIAL and ID_SERIAL where 1.5 had only
    // ID_SERIAL_SHORT: compared on its own, below.
    if sample.name == "node_disk_info" {
        labels.remove("serial");
    }
    (sample.name.clone(), labels)
}

/// Which exporter an exposition comes from.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    NodeExporter15,
    Agent,
}

/// The series of the shared collectors, keyed by name and labels, with what 1.12
/// changed taken out: on node_exporter 1.5's side the series 1.12 dropped, on the
/// agent's the families and labels 1.12 added (after checking their values).
fn shared_series(exposition: &Exposition, side: Side) -> BTreeMap<Key, f64> {
    let mut series = BTreeMap::new();
    for sample in &exposition.samples {
        // Timing series are compared by label set only; the process collector is ours.
        if is_exporter_own(&sample.name)
            || sample.labels.get("collector").map(String::as_str) == Some("process")
        {
            continue;
        }
        if side == Side::NodeExporter15 {
            if !since_1_5::dropped(&sample.name) {
                series.insert(key(sample), sample.value);
            }
            continue;
        }
        if since_1_5::NEW_FAMILIES.contains(&sample.name.as_str()) {
            continue;
        }
        let (name, mut labels) = key(sample);
        let mut keep = true;
        for (family, label, valid) in since_1_5::NEW_LABELS {
            if name != family {
                continue;
            }
            let value = labels
                .remove(label)
                .unwrap_or_else(|| panic!("{name}{labels:?} has no {label} label"));
            assert!(valid(&value), "{name}{labels:?}: {label}={value:?}");
            // readonly of a mount statfs fails on: 1.5 reported only device_error.
            keep &= name != "node_filesystem_readonly" || value.is_empty();
        }
        if keep {
            series.insert((name, labels), sample.value);
        }
    }
    series
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

    // 0. What 1.12 adds that every kernel here has is there.
    for name in since_1_5::ALWAYS_NEW {
        assert!(ours.find(name).next().is_some(), "no {name}");
    }

    // 1. The same series: names and label sets (values compared below).
    let theirs_before = shared_series(&before, Side::NodeExporter15);
    let theirs_after = shared_series(&after, Side::NodeExporter15);
    let ours_series = shared_series(&ours, Side::Agent);
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
        if before.find(name).next().is_none() || since_1_5::dropped(name) {
            continue;
        }
        assert_eq!(ours.kind.get(name), Some(kind), "TYPE of {name}");
        assert_eq!(ours.help.get(name), before.help.get(name), "HELP of {name}");
    }

    // 3. Stable gauges are equal.
    for name in STABLE {
        let pick = |series: &BTreeMap<Key, f64>| -> Vec<(Key, f64)> {
            series
                .iter()
                .filter(|(k, _)| k.0 == name)
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        assert_eq!(pick(&ours_series), pick(&theirs_before), "values of {name}");
    }
    // A disk's serial is 1.5's, or one of 1.12's fallbacks where 1.5 had none.
    let serials = |e: &Exposition| -> BTreeMap<String, String> {
        e.find("node_disk_info")
            .map(|s| (s.labels["device"].clone(), s.labels["serial"].clone()))
            .collect()
    };
    let (their_serials, our_serials) = (serials(&before), serials(&ours));
    for (device, serial) in &their_serials {
        let mine = our_serials.get(device).map(String::as_str);
        assert!(
            mine == Some(serial) || serial.is_empty(),
            "{device}: serial {mine:?}, node_exporter {serial:?}"
        );
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
