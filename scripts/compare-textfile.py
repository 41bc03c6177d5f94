#!/usr/bin/env python3
"""Compare node_exporter's textfile collector with the agent's on the textfile fixtures.

For each case of tests/fixtures/textfile (a directory and its <case>.out, the agent's
output that `cargo test --lib textfile` checks), runs prometheus-node-exporter (Debian's
1.5) with only the textfile collector on that directory, from the crate root so the
paths read alike, and compares families (HELP, TYPE), label sets (empty values are no
labels), values as floats and the order of the series. mtimes are compared by name
only (the .out masks them).

    scripts/compare-textfile.py [case...]

Where node_exporter 1.5 and 1.12 differ, the fixtures follow 1.12; those cases are
listed in EXPECTED with the difference 1.5 shows, and fail only if another appears.
Exit status 1 on any unexpected difference.
"""

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("tests/fixtures/textfile")
NODE_EXPORTER = "prometheus-node-exporter"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
SKIPPED = re.compile(r"^(go_|process_|promhttp_|node_exporter_build_info|node_scrape_collector_)")
# Directories whose .out is named otherwise.
PATTERNS = {"glob_extra_dimension": "*_extra_dimension"}
# 1.5 takes one directory: the case of several is the agent's (and 1.12's) only.
UNSUPPORTED = {"several_directories"}
# Differences by design: 1.12 reports a HELP conflict as a scrape error (1.5 only
# logs it), and the agent does so for repeated series too.
EXPECTED = {
    "metrics_merge_different_help": {"value node_textfile_scrape_error{}: 0 vs 1"},
    "duplicate_across_files": {"value node_textfile_scrape_error{}: 0 vs 1"},
}


def parse(text):
    """{family: (help, type)}, [(name, labels, value)] of an exposition text."""
    meta, samples = {}, []
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
            if not SKIPPED.match(name):
                pairs = tuple(sorted((k, v) for k, v in LABEL.findall(labels or "") if v))
                samples.append((name, pairs, value))
    return {n: tuple(m) for n, m in meta.items() if not SKIPPED.match(n)}, samples


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_exporter(directory):
    port = free_port()
    child = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.textfile", f"--collector.textfile.directory={directory}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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


def as_float(value):
    return float(value.replace("Inf", "inf"))


def compare(case):
    directory = FIXTURES / PATTERNS.get(case, case)
    ne_meta, ne = parse(node_exporter(directory))
    our_meta, ours = parse((ROOT / FIXTURES / f"{case}.out").read_text())
    problems = set()
    for name in sorted(set(ne_meta) | set(our_meta)):
        if ne_meta.get(name) != our_meta.get(name):
            problems.add(f"family {name}: {ne_meta.get(name)} vs {our_meta.get(name)}")
    ne_values = {(n, l): v for n, l, v in ne}
    our_values = {(n, l): v for n, l, v in ours}
    for key in sorted(set(ne_values) | set(our_values)):
        a, b = ne_values.get(key), our_values.get(key)
        shown = f"{key[0]}{{{','.join(f'{k}={v!r}' for k, v in key[1])}}}"
        if a is None or b is None:
            problems.add(f"series {shown}: {a} vs {b}")
        elif key[0] != "node_textfile_mtime_seconds" and a != b and not (
                a == b == "NaN" or as_float(a) == as_float(b)):
            problems.add(f"value {shown}: {a} vs {b}")
    order = lambda samples: [(n, l) for n, l, _ in samples if not n.startswith("node_textfile_")]
    if sorted(order(ne)) == sorted(order(ours)) and order(ne) != order(ours):
        problems.add("the series are in another order")
    return problems


def main():
    cases = sys.argv[1:] or sorted(p.stem for p in (ROOT / FIXTURES).glob("*.out")
                                   if p.stem not in UNSUPPORTED)
    failed = False
    for case in cases:
        problems = compare(case)
        expected = EXPECTED.get(case, set())
        unexpected = problems - expected
        status = "same" if not problems else (
            "expected differences" if not unexpected else f"{len(unexpected)} differences")
        print(f"{case}: {status}  (node_exporter vs agent)")
        for problem in sorted(problems):
            print(f"  {problem}{'' if problem in expected else '  <- unexpected'}")
        failed |= bool(unexpected)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
