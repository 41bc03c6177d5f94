#!/usr/bin/env python3
"""Compare sc-agent with node_exporter on the golden fixture trees.

For each case under tests/fixtures (or the ones named on the command line), runs
prometheus-node-exporter with the collectors the case enables, pointed at the case's
proc/, sys/ and root/ trees, scrapes it once, and compares its families (HELP, TYPE),
label sets and values with what `sc-agent --once` prints for the same tree. The labels
sc-agent adds to every series (instance, job, vm_id) are dropped, values are compared
as floats, and node_time_seconds and node_timex_* (the live clock) by name only.

    scripts/compare-node-exporter.py [case...]    # needs cargo build first

Exit status 1 if any case differs beyond the differences listed in EXPECTED, which
are counted but not failed. Differences are expected where the module docs of a
collector say so (e.g. node_exporter's netdev in /proc/net/dev mode has no
receive_nohandler series, which its default netlink mode has and sc-agent reads from
sysfs).
"""

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
AGENT = ROOT / "target" / "debug" / "sc-agent"
NODE_EXPORTER = "prometheus-node-exporter"

# sc-agent's collectors that node_exporter 1.5 does not have (the names of the others
# are node_exporter's own).
NOT_IN_NODE_EXPORTER = {"process", "kernel_hung", "watchdog"}
# sc-agent option -> node_exporter flag, where the names differ.
FLAG_NAMES = {("netclass", "device_exclude"): "ignored-devices"}
# sc-agent's default device filters, given to node_exporter: Debian's build excludes
# lo from netdev, and 1.5's diskstats default does not exclude zram.
DEFAULT_FILTERS = {
    "netdev": {"device_exclude": "^$"},
    "diskstats": {"device_exclude": r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"},
}
# Differences a collector's module doc explains (node_exporter 1.12 changes since 1.5,
# or deliberate ones): case -> (why, regexes of the problem lines it explains).
EXPECTED = {
    "softnet": ("1.12 adds cpu_collision, received_rps, flow_limit_count and backlog_len "
                "and labels a line by its CPU index column (cpu 3), 1.5 by position (cpu 2)",
                [r"node_softnet_(backlog_len|cpu_collision_total|flow_limit_count_total|"
                 r"received_rps_total)", r"'cpu': '[23]'"]),
    "softnet_malformed": ("1.5 never parses the broken received_rps column; 1.12 does",
                          [r"."]),
    "os": ("1.12 adds node_os_support_end_timestamp_seconds",
           [r"node_os_support_end_timestamp_seconds"]),
    "selinux": ("1.5's go-selinux reads the host's own /sys/fs/selinux, not --path.sysfs, "
                "and 1.5 has no AVC families", [r"."]),
    "selinux_malformed": ("1.5's go-selinux reads the host's own /sys/fs/selinux", [r"."]),
    "timex": ("1.12 adds node_timex_offset_overflow_total",
              [r"node_timex_offset_overflow_total"]),
    "schedstat_malformed": ("procfs drops a short cpu line silently; the agent fails",
                            [r"."]),
    "conntrack_malformed": ("a failing collector's earlier series are rolled back",
                            [r"node_nf_conntrack_entries"]),
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


def settings(case):
    """{collector: (enabled, {option: value})} of the case's effective config, read
    from `sc-agent --print-config` (the agent's own reading of config.yaml)."""
    text = subprocess.run([str(AGENT), "--print-config", "--config", "config.yaml"],
                          cwd=case, check=True, capture_output=True, text=True).stdout
    section = text.split("\ncollectors:\n", 1)[1]
    result, current = {}, None
    for line in section.splitlines():
        if not line.startswith("  "):
            break
        if not line.startswith("    "):
            name, _, value = line.strip().partition(":")
            value = value.strip()
            result[name] = (value == "true", {})
            current = name if not value else None
        elif current:
            key, _, value = line.strip().partition(": ")
            if key == "enabled":
                result[current] = (value == "true", result[current][1])
            elif value != "null":
                result[current][1][key] = value.strip("'")
    return result


def enabled(case):
    """The collectors the case's config turns on."""
    return [name for name, (on, _) in settings(case).items() if on]


def filter_flags(case):
    """node_exporter flags for the device filters of the case's config."""
    flags = ["--no-collector.netdev.netlink"]
    options = settings(case)
    for name, defaults in DEFAULT_FILTERS.items():
        chosen = {k: v for k, v in options.get(name, (False, {}))[1].items()
                  if k.startswith("device_")}
        for key, value in {**defaults, **chosen}.items():
            flag = FLAG_NAMES.get((name, key), key.replace("_", "-"))
            flags.append(f"--collector.{name}.{flag}={value}")
    return flags


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


def node_exporter(case, keys, empty):
    port = free_port()
    flags = [f"--collector.{k}" for k in keys if k not in NOT_IN_NODE_EXPORTER]
    # node_exporter refuses to start when a --path.* directory is missing.
    tree = lambda name: name if (case / name).is_dir() else empty
    env = dict(os.environ, TZ="Europe/Berlin")
    child = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
         "--collector.disable-defaults", f"--path.procfs={tree('proc')}",
         f"--path.sysfs={tree('sys')}", f"--path.rootfs={tree('root')}",
         "--path.udev.data=root/run/udev/data", *filter_flags(case), *flags],
        cwd=case, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                    return r.read().decode()
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"node_exporter did not answer: {child.stderr.read()}")
    finally:
        child.terminate()
        child.wait()


def agent(case):
    env = dict(os.environ, TZ="Europe/Berlin", SC_LOG_LEVEL="error")
    return subprocess.run([str(AGENT), "--once", "--config", "config.yaml"], cwd=case,
                          env=env, check=True, capture_output=True, text=True).stdout


def compare(case):
    keys = enabled(case)
    if all(k in NOT_IN_NODE_EXPORTER for k in keys):
        return []
    with tempfile.TemporaryDirectory() as empty:
        ne_meta, ne = parse(node_exporter(case, keys, empty))
    our_meta, ours = parse(agent(case))
    problems = []
    for name in sorted(set(ne_meta) | set(our_meta)):
        if ne_meta.get(name) != our_meta.get(name):
            problems.append(f"family {name}: node_exporter {ne_meta.get(name)}, "
                            f"sc-agent {our_meta.get(name)}")
    for key in sorted(set(ne) | set(ours)):
        a, b = ne.get(key), ours.get(key)
        if a is None or b is None:
            problems.append(f"only in {'sc-agent' if a is None else 'node_exporter'}: "
                            f"{key[0]}{dict(key[1])} {a if b is None else b}")
        elif a != b and key[0] not in UNCOMPARED_VALUES:
            problems.append(f"value {key[0]}{dict(key[1])}: node_exporter {a}, sc-agent {b}")
    return problems


def main():
    names = sys.argv[1:] or sorted(p.name for p in FIXTURES.iterdir()
                                   if (p / "config.yaml").is_file())
    failed = False
    for name in names:
        why, patterns = EXPECTED.get(name, ("", []))
        problems, explained = [], []
        for problem in compare(FIXTURES / name):
            matched = any(re.search(p, problem) for p in patterns)
            (explained if matched else problems).append(problem)
        print(f"{name}: {'same' if not problems else f'{len(problems)} differences'}"
              + (f" ({len(explained)} expected: {why})" if explained else ""))
        for problem in problems:
            print(f"  {problem}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
