#!/usr/bin/env python3
"""Compare sc-agent with node_exporter on the golden fixture trees.

For each case under tests/fixtures (or the ones named on the command line), runs
prometheus-node-exporter with the collectors the case enables, pointed at the case's
proc/, sys/ and root/ trees and with the agent's filters, scrapes it once, and
compares its families (HELP, TYPE), label sets and values with what `sc-agent --once`
prints for the same tree. The labels sc-agent adds to every series (instance, job,
vm_id) are dropped, values are compared as floats, and node_time_seconds and the
families a case lists in its `varying` file are compared by name only.

    scripts/compare-node-exporter.py [case...]    # needs cargo build first

sc-agent follows node_exporter 1.12; the node_exporter here is Debian's 1.5. What 1.12
adds or changes relative to 1.5 (NEW_FAMILIES, NEW_LABELS, MEMINFO_1_12, ...) and what
this way of running node_exporter cannot show (EXPECTED) is reported per case as
"explained", with the reason, and does not count as a difference. Exit status 1 if
any case has a difference left.

Every collector option a case's config sets (a value other than the agent's default)
goes to node_exporter as the same flag (FLAGS: booleans as --flag / --no-flag, lists
as the flag repeated). An option node_exporter 1.5 has no flag for (its --help says
which it has) is reported as "not in 1.5" and not passed; the case is still compared
on its series.

    scripts/compare-node-exporter.py --agent target/debug/sc-agent diskstats_device_include
    scripts/compare-node-exporter.py --options  # every option: its flag, and whether 1.5 has it
"""

import argparse
import collections
import functools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
AGENT = ROOT / "target" / "debug" / "sc-agent"  # --agent replaces it
NODE_EXPORTER = "prometheus-node-exporter"

# sc-agent's collectors that node_exporter 1.5 does not have (the names of the others
# are node_exporter's own).
NOT_IN_NODE_EXPORTER = {"process", "kernel_hung", "watchdog"}
# Every option field of every collector (`collectors.<name>.<field>`) and node_exporter
# 1.12's flag for it, without `--collector.` (the README's options table says the
# same); None where node_exporter has no such flag. A field missing here stops the
# script: a new option needs its flag written down.
FLAGS = {
    ("cpu", "guest"): "cpu.guest",
    ("cpu", "info"): "cpu.info",
    ("cpu", "info_flags_include"): "cpu.info.flags-include",
    ("cpu", "info_bugs_include"): "cpu.info.bugs-include",
    ("stat", "softirq"): "stat.softirq",
    ("diskstats", "device_include"): "diskstats.device-include",
    ("diskstats", "device_exclude"): "diskstats.device-exclude",
    ("netdev", "device_include"): "netdev.device-include",
    ("netdev", "device_exclude"): "netdev.device-exclude",
    ("netdev", "netlink"): "netdev.netlink",
    ("netclass", "device_include"): None,
    ("netclass", "device_exclude"): "netclass.ignored-devices",
    ("netclass", "netlink"): "netclass.netlink",
    ("vmstat", "fields"): "vmstat.fields",
    ("netstat", "fields"): "netstat.fields",
    ("filesystem", "mount_points_exclude"): "filesystem.mount-points-exclude",
    ("filesystem", "mount_points_include"): "filesystem.mount-points-include",
    ("filesystem", "fs_types_exclude"): "filesystem.fs-types-exclude",
    ("filesystem", "fs_types_include"): "filesystem.fs-types-include",
    ("filesystem", "mount_timeout"): "filesystem.mount-timeout",
    ("systemd", "unit_include"): "systemd.unit-include",
    ("systemd", "unit_exclude"): "systemd.unit-exclude",
    ("systemd", "enable_task_metrics"): "systemd.enable-task-metrics",
    ("systemd", "enable_restarts_metrics"): "systemd.enable-restarts-metrics",
    ("systemd", "enable_start_time_metrics"): "systemd.enable-start-time-metrics",
    ("systemd", "private"): "systemd.private",
    ("systemd", "timeout"): None,
    ("hwmon", "chip_include"): "hwmon.chip-include",
    ("hwmon", "chip_exclude"): "hwmon.chip-exclude",
    ("hwmon", "sensor_include"): "hwmon.sensor-include",
    ("hwmon", "sensor_exclude"): "hwmon.sensor-exclude",
    ("powersupplyclass", "ignored_supplies"): "powersupply.ignored-supplies",
    ("conntrack", "stats"): "conntrack.stats",
    ("arp", "device_include"): "arp.device-include",
    ("arp", "device_exclude"): "arp.device-exclude",
    ("arp", "netlink"): "arp.netlink",
    ("processes", "walk_limit"): None,
    ("interrupts", "name_include"): "interrupts.name-include",
    ("interrupts", "name_exclude"): "interrupts.name-exclude",
    ("interrupts", "include_zeros"): "interrupts.include-zeros",
    ("textfile", "directories"): "textfile.directory",
}
# Options given to node_exporter even when the case leaves them at the agent's
# default, and what to give when the agent has none: Debian patches node_exporter's
# defaults (its netdev excludes lo, its filesystem excludes /run, /mnt and /media) and
# 1.5's diskstats default does not exclude zram, so node_exporter always gets the
# agent's filters. An empty exclude is no filter, and lets 1.5 take an include (it
# refuses an include beside its non-empty default exclude).
PASSED_OPTIONS = {
    "netdev": {"device_exclude": ""},
    "diskstats": {"device_exclude": ""},
    "filesystem": {"mount_points_exclude": None, "fs_types_exclude": None},
}

# Flags node_exporter always gets: a tree has no netlink to answer for it.
ALWAYS = {"netdev.netlink": False}

# --- what node_exporter 1.12 (sc-agent) adds or changes relative to 1.5 ----------
# Families 1.12 exports and 1.5 does not.
NEW_FAMILIES = {
    "node_netstat_TcpExt_TCPOFOQueue": "a default netstat field since 1.8",
    "node_netstat_TcpExt_TCPRcvQDrop": "a default netstat field since 1.9",
    "node_pressure_irq_stalled_seconds_total": "the irq pressure file, read since 1.9",
    "node_filesystem_mount_info": "new in 1.9",
    "node_filesystem_purgeable_bytes": "new in 1.9 (0 on Linux)",
    "node_cpu_online": "new in 1.9",
    "node_btrfs_commits_total": "btrfs commit statistics, new in 1.9",
    "node_btrfs_last_commit_seconds": "btrfs commit statistics, new in 1.9",
    "node_btrfs_max_commit_seconds": "btrfs commit statistics, new in 1.9",
    "node_btrfs_commit_seconds_total": "btrfs commit statistics, new in 1.9",
    "node_softnet_backlog_len": "softnet's backlog length column, read since 1.7",
    "node_softnet_cpu_collision_total": "softnet's cpu_collision column, read since 1.7",
    "node_softnet_flow_limit_count_total": "softnet's flow_limit_count column, since 1.7",
    "node_softnet_received_rps_total": "softnet's received_rps column, read since 1.7",
    "node_os_support_end_timestamp_seconds": "os-release's SUPPORT_END, new in 1.8",
    "node_timex_offset_overflow_total": "new in 1.12",
    "node_cpu_scaling_governor": "cpufreq's governor, new in 1.7",
    "node_hwmon_freq_freq_mhz": "hwmon's GPU clocks, new in 1.8",
    "node_nvme_namespace_info": "NVMe namespaces, new in 1.10",
    "node_nvme_namespace_size_bytes": "NVMe namespaces, new in 1.10",
    "node_nvme_namespace_capacity_bytes": "NVMe namespaces, new in 1.10",
    "node_nvme_namespace_used_bytes": "NVMe namespaces, new in 1.10",
    "node_nvme_namespace_logical_block_size_bytes": "NVMe namespaces, new in 1.10",
    "node_md_raid_disks": "from /sys/block/md*/md, new in 1.12",
    "node_md_degraded": "from /sys/block/md*/md, new in 1.12",
}
# Families 1.12 exports only while another collector is off: {family: (collector, why)}.
NEW_FAMILIES_WITHOUT = {
    "node_cpu_frequency_hertz": ("cpufreq", "cpu.info's frequencies from /proc/cpuinfo "
                                 "while cpufreq is off, new in 1.7"),
}
# Labels 1.12 adds to families 1.5 has.
NEW_LABELS = {
    ("node_disk_info", "rotational"): "label new in 1.9",
    ("node_network_info", "adminstate"): "label new in 1.6",
    ("node_nvme_info", "cntlid"): "label new in 1.10",
    **{(f"node_filesystem_{family}", "device_error"): "label new in 1.8"
       for family in ("size_bytes", "free_bytes", "avail_bytes", "files", "files_free",
                      "readonly", "device_error")},
}
# The meminfo fields 1.12 exports (procfs's Meminfo since 1.9); 1.5 exported every line.
MEMINFO_1_12 = set("""Active_bytes Active_anon_bytes Active_file_bytes AnonHugePages_bytes
    AnonPages_bytes Bounce_bytes Buffers_bytes Cached_bytes CmaFree_bytes CmaTotal_bytes
    CommitLimit_bytes Committed_AS_bytes DirectMap1G_bytes DirectMap2M_bytes
    DirectMap4k_bytes Dirty_bytes HardwareCorrupted_bytes Hugepagesize_bytes
    Inactive_bytes Inactive_anon_bytes Inactive_file_bytes KernelStack_bytes
    Mapped_bytes MemAvailable_bytes MemFree_bytes MemTotal_bytes Mlocked_bytes
    NFS_Unstable_bytes PageTables_bytes Percpu_bytes SReclaimable_bytes SUnreclaim_bytes
    Shmem_bytes ShmemHugePages_bytes ShmemPmdMapped_bytes Slab_bytes SwapCached_bytes
    SwapFree_bytes SwapTotal_bytes Unevictable_bytes VmallocChunk_bytes
    VmallocTotal_bytes VmallocUsed_bytes Writeback_bytes WritebackTmp_bytes Zswap_bytes
    Zswapped_bytes HugePages_Free HugePages_Rsvd HugePages_Surp HugePages_Total""".split())
# Not 1.12: what node_exporter run this way cannot show.
EXPECTED = {
    "node_network_receive_nohandler_total":
        "node_exporter's /proc/net/dev mode (no netlink on a tree) has no receive_nohandler; "
        "its default netlink mode has, and sc-agent reads it from sysfs",
}
# Cases whose whole difference one 1.12 change explains.
CASE_NOTES = {
    "btrfs_malformed": "1.5 does not read commit_stats; 1.12 fails the collector on its "
                       "malformed line, as sc-agent does",
    "softnet": "1.12 labels a line by its CPU index column (cpu 3), 1.5 by position (cpu 2)",
    "softnet_malformed": "1.5 never parses the broken received_rps column; 1.12 does",
    "selinux": "1.5's go-selinux reads the host's own /sys/fs/selinux, not --path.sysfs, "
               "and 1.5 has no AVC families",
    "selinux_malformed": "1.5's go-selinux reads the host's own /sys/fs/selinux",
    "schedstat_malformed": "procfs drops a short cpu line silently; the agent fails",
    "conntrack_malformed": "a failing collector's earlier series are rolled back",
    "processes_absent": "a failing collector's earlier series are rolled back "
                        "(node_exporter keeps node_processes_threads 0)",
    "interrupts_aarch64": "1.12 splits a row at its first colon (IPI0:2768808080); 1.5 "
                          "splits at blanks, misreads the IPI rows and fails",
    "interrupts_malformed": "a failing collector's earlier series are rolled back "
                            "(node_exporter keeps the rows its map gave before the bad one)",
    "interrupts_filtered": "1.12's name_exclude and include_zeros, which 1.5 does not have",
    "textfile": "the case reads several directories and a glob, which 1.5's single "
                "--collector.textfile.directory cannot; scripts/compare-textfile.py "
                "compares node_exporter's own textfile cases one directory at a time",
}
COMMON_LABELS = {"instance", "job", "vm_id"}
# Values that change between two reads: compared by name, labels, HELP and TYPE only.
UNCOMPARED_VALUES = {"node_time_seconds"} | {f"node_timex_{name}" for name in (
    "sync_status", "offset_seconds", "offset_overflow_total", "frequency_adjustment_ratio",
    "maxerror_seconds", "estimated_error_seconds", "status", "loop_time_constant",
    "tick_seconds", "pps_frequency_hertz", "pps_jitter_seconds", "pps_shift_seconds",
    "pps_stability_hertz", "pps_jitter_total", "pps_calibration_total", "pps_error_total",
    "pps_stability_exceeded_total", "tai_offset_seconds")}
SKIPPED = re.compile(r"^(go_|process_|promhttp_|sc_agent_|node_exporter_build_info|node_scrape_collector_duration)")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scalar(text):
    """A value as --print-config writes it: null, a boolean, or a (quoted) string."""
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return json.loads(text)
    return text


def print_config(agent, case, config="config.yaml"):
    """(paths, {collector: (enabled, {option: value})}) of a config as the agent reads
    it (`sc-agent --print-config`): paths relative to the case, lists as lists."""
    text = subprocess.run([str(agent), "--print-config", "--config", config],
                          cwd=case, check=True, capture_output=True, text=True).stdout
    paths = {}
    for line in text.split("\npaths:\n", 1)[1].splitlines():
        if not line.startswith("  "):
            break
        key, _, value = line.strip().partition(": ")
        paths[key] = case / scalar(value)
    collectors, current, key = {}, None, None
    for line in text.split("\ncollectors:\n", 1)[1].splitlines():
        if not line.startswith("  "):
            break
        if not line.startswith("    "):
            name, _, value = line.strip().partition(":")
            collectors[name] = (value.strip() == "true", {})
            current = name if not value.strip() else None
        elif current and line.startswith("    - "):
            collectors[current][1][key].append(scalar(line[6:]))
        elif current:
            key, _, value = line.strip().partition(":")
            value = value.strip()
            if key == "enabled":
                collectors[current] = (value == "true", collectors[current][1])
            else:
                collectors[current][1][key] = [] if value in ("", "[]") else scalar(value)
    return paths, collectors


@functools.cache
def defaults(agent):
    """The agent's default options, {collector: {option: value}}."""
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "config.yaml").write_text("collectors: {}\n")
        return {name: options for name, (_, options)
                in print_config(agent, Path(directory))[1].items()}


@functools.cache
def flags_in_1_5():
    """{flag: repeatable} of the collector flags node_exporter here has, without
    `--collector.` (kingpin's --help ends a repeatable flag's line with `...`)."""
    text = subprocess.run([NODE_EXPORTER, "--help"], capture_output=True, text=True)
    flags = {}
    for line in (text.stdout + text.stderr).splitlines():
        match = re.match(r"\s*--(?:\[no-\])?collector\.([a-z0-9_.-]+)", line)
        if match:
            flags[match.group(1)] = line.rstrip().endswith("...")
    return flags


def flag_arguments(flag, value):
    """node_exporter's arguments for one flag: kingpin's --flag / --no-flag for a
    boolean, the flag repeated for a list."""
    if isinstance(value, bool):
        return [f"--{'' if value else 'no-'}collector.{flag}"]
    if isinstance(value, list):
        return [f"--collector.{flag}={item}" for item in value]
    return [f"--collector.{flag}={value}"]


def option_flags(agent, collectors):
    """(arguments, notes): node_exporter's flags for the options of the enabled
    collectors, and a note for each option the case sets that node_exporter 1.5 has no
    flag for. Raises for an option FLAGS does not know."""
    chosen = dict(ALWAYS)
    notes = []
    for name, (on, options) in collectors.items():
        if not on:
            continue
        for option, value in options.items():
            if (name, option) not in FLAGS:
                raise KeyError(f"collectors.{name}.{option} has no entry in FLAGS "
                               "(scripts/compare-node-exporter.py): write down its "
                               "node_exporter flag, or None")
            flag = FLAGS[(name, option)]
            default = defaults(agent).get(name, {}).get(option)
            if name in PASSED_OPTIONS and option in PASSED_OPTIONS[name]:
                if value is None:
                    value = PASSED_OPTIONS[name][option]
                if value is None:
                    continue
            elif value == default:
                continue
            if flag is None:
                notes.append(f"collectors.{name}.{option}: not in node_exporter")
            elif flag not in flags_in_1_5():
                notes.append(f"collectors.{name}.{option}: not in 1.5 "
                             f"(--collector.{flag})")
            elif isinstance(value, list) and len(value) > 1 and not flags_in_1_5()[flag]:
                notes.append(f"collectors.{name}.{option}: 1.5 takes one value "
                             f"(--collector.{flag}), given the first")
                chosen[flag] = value[:1]
            else:
                chosen[flag] = value
    arguments = [a for flag, value in chosen.items() for a in flag_arguments(flag, value)]
    return arguments, notes


def parse(text):
    """{family: (help, type)}, {(name, labels): value} of an exposition text."""
    meta, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            meta.setdefault(name, [None, None])[0] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            meta.setdefault(name, [None, None])[1] = kind
        elif line and not line.startswith("#"):
            match = SAMPLE.match(line)
            if not match:
                raise ValueError(f"cannot parse {line!r}")
            name, labels, value = match.groups()
            pairs = tuple(sorted((k, v) for k, v in LABEL.findall(labels or "")
                                 if k not in COMMON_LABELS))
            samples[(name, pairs)] = float(value)
    keep = lambda name: not SKIPPED.match(name)
    return ({n: tuple(m) for n, m in meta.items() if keep(n)},
            {k: v for k, v in samples.items() if keep(k[0])})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_exporter(case, paths, keys, options, empty):
    port = free_port()
    flags = [f"--collector.{k}" for k in keys if k not in NOT_IN_NODE_EXPORTER]
    # node_exporter refuses to start when a --path.* directory is missing.
    tree = lambda name: paths[name] if paths[name].is_dir() else empty
    env = dict(os.environ, TZ="Europe/Berlin")
    child = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
         "--collector.disable-defaults", f"--path.procfs={tree('procfs')}",
         f"--path.sysfs={tree('sysfs')}", f"--path.rootfs={tree('rootfs')}",
         f"--path.udev.data={paths['rootfs'] / 'run/udev/data'}", *options, *flags],
        cwd=case, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(50):
            if child.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                    return r.read().decode()
            except OSError:
                time.sleep(0.1)
        child.terminate()
        raise RuntimeError(f"node_exporter did not answer: {child.stderr.read().decode()}")
    finally:
        child.terminate()
        child.wait()


def agent(binary, case):
    env = dict(os.environ, TZ="Europe/Berlin", SC_LOG_LEVEL="error")
    return subprocess.run([str(binary), "--once", "--config", "config.yaml"], cwd=case,
                          env=env, check=True, capture_output=True, text=True).stdout


def dropped_by_1_12(name):
    """Whether 1.12 no longer exports this 1.5 family: a meminfo field procfs lacks."""
    return name.startswith("node_memory_") and name[len("node_memory_"):] not in MEMINFO_1_12


def without_1_12_changes(ne_meta, ne, our_meta, ours, explained, keys):
    """Takes what 1.12 changed out of both sides, counting each in `explained`; `keys`
    are the collectors the case runs."""
    new_families = dict(NEW_FAMILIES)
    new_families.update({name: why for name, (other, why) in NEW_FAMILIES_WITHOUT.items()
                         if other not in keys})
    for name in [n for n in ne_meta if dropped_by_1_12(n)]:
        del ne_meta[name]
    for key in [k for k in ne if dropped_by_1_12(k[0])]:
        explained[f"{key[0]}: a meminfo field 1.12 no longer exports"] += 1
        del ne[key]
    for name in new_families:
        our_meta.pop(name, None)
    normalised = {}
    for (name, labels), value in ours.items():
        if name in new_families:
            explained[f"{name}: {new_families[name]}"] += 1
            continue
        labels, keep = dict(labels), True
        for (family, label), reason in NEW_LABELS.items():
            if name == family and label in labels:
                text = labels.pop(label)
                explained[f"{name}{{{label}}}: {reason}"] += 1
                if name == "node_filesystem_readonly" and text:
                    explained["node_filesystem_readonly of a mount statfs fails on: "
                              "reported since 1.7"] += 1
                    keep = False
        if keep:
            normalised[(name, tuple(sorted(labels.items())))] = value
    return normalised


def disk_serials(samples):
    """Takes node_disk_info's serial out of its labels: {device: serial}."""
    serials = {}
    for key in [k for k in samples if k[0] == "node_disk_info"]:
        labels = dict(key[1])
        serials[labels.get("device")] = labels.pop("serial", None)
        samples[(key[0], tuple(sorted(labels.items())))] = samples.pop(key)
    return serials


def varying(case):
    """The families whose values the case's `varying` file says are the machine's."""
    path = case / "varying"
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def compare(binary, case):
    """(problems, explained, notes) of one case: what differs, what 1.12 explains, and
    the options node_exporter 1.5 could not be given."""
    paths, collectors = print_config(binary, case)
    keys = [name for name, (on, _) in collectors.items() if on]
    options, notes = option_flags(binary, collectors)
    if all(k in NOT_IN_NODE_EXPORTER for k in keys):
        return [], collections.Counter(), notes
    with tempfile.TemporaryDirectory() as empty:
        ne_meta, ne = parse(node_exporter(case, paths, keys, options, empty))
    our_meta, ours = parse(agent(binary, case))
    explained = collections.Counter()
    ours = without_1_12_changes(ne_meta, ne, our_meta, ours, explained, keys)
    their_serials, our_serials = disk_serials(ne), disk_serials(ours)
    problems = []
    for device, serial in their_serials.items():
        mine = our_serials.get(device)
        if mine != serial and serial == "":
            explained["node_disk_info{serial}: 1.12 falls back to SCSI_IDENT_SERIAL and "
                      "ID_SERIAL"] += 1
        elif mine != serial:
            problems.append(f"serial of {device}: node_exporter {serial!r}, sc-agent {mine!r}")
    for name in sorted(set(ne_meta) | set(our_meta)):
        if ne_meta.get(name) != our_meta.get(name):
            if name in EXPECTED:
                explained[f"{name}: {EXPECTED[name]}"] += 1
                continue
            problems.append(f"family {name}: node_exporter {ne_meta.get(name)}, "
                            f"sc-agent {our_meta.get(name)}")
    unvalued = UNCOMPARED_VALUES | varying(case)
    for key in sorted(set(ne) | set(ours)):
        a, b = ne.get(key), ours.get(key)
        if key[0] in EXPECTED and (a is None) != (b is None):
            continue
        labels = dict(key[1])
        if a is None or b is None:
            problems.append(f"only in {'sc-agent' if a is None else 'node_exporter'}: "
                            f"{key[0]}{labels} {a if b is None else b}")
        elif a != b and key[0] not in unvalued:
            if (key[0] == "node_btrfs_allocation_ratio" and a == 0
                    and labels.get("mode") in ("raid1c3", "raid1c4")):
                explained["node_btrfs_allocation_ratio of raid1c3/raid1c4: 1.5's procfs "
                          "has no ratio for them"] += 1
                continue
            problems.append(f"value {key[0]}{labels}: node_exporter {a}, sc-agent {b}")
    if problems and case.name in CASE_NOTES:
        explained[f"{len(problems)} differences: {CASE_NOTES[case.name]}"] += 1
        problems = []
    return problems, explained, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", type=Path, default=AGENT,
                        help="the sc-agent binary (default: target/debug/sc-agent)")
    parser.add_argument("--options", action="store_true",
                        help="list every option field with its node_exporter flag and "
                             "whether node_exporter 1.5 has it, and exit")
    parser.add_argument("cases", nargs="*", help="fixture cases (default: all)")
    args = parser.parse_args()
    if args.options:
        for name, options in defaults(args.agent).items():
            for option in options:
                flag = FLAGS.get((name, option), "?")
                where = ("unknown" if flag == "?" else "none" if flag is None
                         else "1.5" if flag in flags_in_1_5() else "not-in-1.5")
                print(f"{name}.{option} {where} {flag}")
        return
    names = args.cases or sorted(p.name for p in FIXTURES.iterdir()
                                 if (p / "config.yaml").is_file())
    failed = False
    for name in names:
        problems, explained, notes = compare(args.agent, FIXTURES / name)
        print(f"{name}: {'same' if not problems else f'{len(problems)} differences'}"
              + (f" ({sum(explained.values())} explained)" if explained else ""))
        for problem in problems:
            print(f"  {problem}")
        for reason, count in sorted(explained.items()):
            print(f"  explained: {reason}" + (f" (x{count})" if count > 1 else ""))
        for note in notes:
            print(f"  option {note}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
