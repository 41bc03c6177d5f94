#!/usr/bin/env python3
"""How many panels of a Grafana dashboard show data: sc-agent beside node_exporter.

Evaluates every visible target of every panel of a Grafana dashboard (by default
tests/dashboards/node-exporter-full.json, "Node Exporter Full") as an instant query
against two Prometheus servers, one holding what sc-agent pushed and one holding what
node_exporter was scraped for, and counts, for each, the panels that show data: those
with at least one target whose result is not empty. It prints both counts out of the
total, then the panels that show data on one side only, with the metric names their
queries use (those the other side does not have at all are starred), and those that
show data on neither.

    scripts/dashboard-panels.py [--agent BIN] [--seconds N]
        Starts everything on this machine, in a temporary directory, on free loopback
        ports: Prometheus A (Debian's prometheus, --web.enable-remote-write-receiver)
        fed by sc-agent (its default collectors, collection_interval 1s, job "node",
        instance the host name, as the agent sets them by default), and Prometheus B
        scraping Debian's prometheus-node-exporter every 1s, started with the defaults
        a Debian user gets (no flags but the listen address; Debian patches the
        default filters in the binary). Both collect until every rate() over
        $__rate_interval has samples, then the panels are evaluated. Every child is
        killed when the script ends, also when it is killed itself (PDEATHSIG).
        --agent defaults to target/debug/sc-agent.

    scripts/dashboard-panels.py --urls AGENT_PROMETHEUS NODE_EXPORTER_PROMETHEUS
        The same evaluation against two running Prometheus servers (base URLs such as
        http://prom-a:9090), for example a fleet's. Use --scrape-interval for the one
        their data sources are set to.

Common options: --dashboard PATH; --json PATH (the result as JSON, for
tests/dashboard.rs); --var-agent NAME=VALUE / --var-node-exporter NAME=VALUE (fix a
dashboard variable on one side instead of taking its first value).

Dashboard variables are resolved as Grafana resolves them: each query variable in
order, `label_values(selector, label)` with the earlier variables substituted, over
the dashboard's time range, sorted as the variable says, the first value taken (what
Grafana selects on a first visit). Grafana's own variables get the values a user
would see who set the Prometheus data source's "Scrape interval" to the interval the
series really have (1s here, --scrape-interval otherwise), looking at a recent range:

  $__interval       max(scrape interval, range / 1000 px), Grafana's step for a
                    panel about 1000 px wide (not rounded to Grafana's nice steps)
  $__rate_interval  max($__interval + scrape interval, 4 * scrape interval): Grafana's
                    formula, which makes sure a window holds at least four samples
                    (4s at 1s)
  $__range          the range looked at (--range, default 5m; $__range_s, _ms alike)

A target with `hide: true` is skipped, as Grafana neither queries nor draws it. A
query error counts as no data and is listed.
"""

import argparse
import ctypes
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "tests" / "dashboards" / "node-exporter-full.json"
AGENT = ROOT / "target" / "debug" / "sc-agent"
PROMETHEUS = "prometheus"
NODE_EXPORTER = "prometheus-node-exporter"
SIDES = ("sc-agent", "node_exporter")

# The interval both sides collect at when this script starts them.
INTERVAL_SECONDS = 1
# Grafana's default "max data points": about the width of a panel in pixels.
MAX_DATA_POINTS = 1000
# How long a start may take (Prometheus replaying an empty WAL, a debug build).
START_TIMEOUT = 60

# PromQL words that are not metric names, and those followed by a list of label names.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "atan2", "inf", "nan"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Aggregation operators, which may be followed by their by/without clause, not "(".
AGGREGATIONS = {"sum", "avg", "count", "min", "max", "stddev", "stdvar", "topk", "bottomk",
                "quantile", "count_values", "group"}
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
                   r'|[A-Za-z_:][A-Za-z0-9_:]*|[0-9][A-Za-z0-9_.]*|\s+|.')
LABEL_VALUES = re.compile(r'^\s*label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$',
                          re.S)


# --- the dashboard -------------------------------------------------------------------

def load_panels(dashboard):
    """[(row title, panel)] of every panel but rows, those of collapsed rows included,
    in dashboard order."""
    panels, row = [], ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            row = panel.get("title", "")
            for inner in panel.get("panels", []):
                panels.append((row, inner))
        else:
            panels.append((row, panel))
    return panels


def visible_exprs(panel):
    """The expressions Grafana queries for the panel: its targets that are not hidden."""
    return [t["expr"] for t in panel.get("targets", [])
            if t.get("expr") and not t.get("hide")]


def metric_names(expr):
    """The metric names a PromQL expression selects (sorted): identifiers that are not
    functions, aggregations, keywords or label names (inside {...}, by (...),
    on (...)), nor inside strings or [...] ranges."""
    tokens = [t for t in TOKEN.findall(expr) if not t.isspace()]
    names, depth_braces, depth_brackets, i = set(), 0, 0, 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token == "{":
            depth_braces += 1
        elif token == "}":
            depth_braces -= 1
        elif token == "[":
            depth_brackets += 1
        elif token == "]":
            depth_brackets -= 1
        elif depth_braces or depth_brackets:
            pass
        elif token.lower() in LABEL_LISTS and following == "(":
            # Skip the label list up to its closing parenthesis.
            while i < len(tokens) and tokens[i] != ")":
                i += 1
        elif (re.match(r"[A-Za-z_:]", token) and token.lower() not in KEYWORDS
              and following != "("
              and not (token in AGGREGATIONS and following.lower() in ("by", "without"))):
            names.add(token)
        i += 1
    return sorted(names)


# --- Grafana's variables ---------------------------------------------------------------

def seconds(text):
    """A Prometheus duration ("1m30s", "250ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def duration(value):
    """Seconds as a Prometheus duration, in whole milliseconds if needed."""
    ms = round(value * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def builtin_variables(scrape_interval, range_seconds):
    interval = max(scrape_interval, range_seconds / MAX_DATA_POINTS)
    rate_interval = max(interval + scrape_interval, 4 * scrape_interval)
    return {
        "__rate_interval": duration(rate_interval),
        "__interval": duration(interval),
        "__interval_ms": str(round(interval * 1000)),
        "__range": duration(range_seconds),
        "__range_s": str(round(range_seconds)),
        "__range_ms": str(round(range_seconds * 1000)),
    }


def substitute(text, variables):
    """Grafana's interpolation of $name, ${name} and [[name]], longest names first."""
    def value(match):
        name = match.group(1) or match.group(2) or match.group(3)
        name = name.split(":", 1)[0]  # ${name:format}: the formats do not apply here
        return variables.get(name, match.group(0))
    return re.sub(r"\$\{([^}]+)\}|\[\[([^\]]+)\]\]|\$([A-Za-z0-9_]+)", value, text)


def resolve_variables(dashboard, prometheus, fixed, range_seconds):
    """{name: value} of the dashboard's query variables on one Prometheus."""
    values = dict(fixed)
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable.get("name")
        if variable.get("type") != "query" or name in fixed:
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        match = LABEL_VALUES.match(substitute(query or "", values))
        if not match:
            raise SystemExit(f"variable {name}: only label_values() queries are supported, "
                             f"got {query!r}")
        selector, label = match.groups()
        found = prometheus.label_values(label, selector, range_seconds)
        if variable.get("regex"):
            pattern = re.compile(variable["regex"].strip("/"))
            found = [(m.group(1) if m.groups() else v) for v in found
                     for m in [pattern.search(v)] if m]
        sort = variable.get("sort", 0)
        if sort in (1, 2):
            found = sorted(found, reverse=sort == 2)
        elif sort in (3, 4):
            found = sorted(found, key=lambda v: float(v) if re.match(r"^-?\d", v) else math.inf,
                           reverse=sort == 4)
        if not found:
            raise SystemExit(f"variable {name}: {query!r} found nothing on {prometheus.url}")
        values[name] = found[0]
    return values


# --- Prometheus' HTTP API ---------------------------------------------------------------

class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, params):
        url = f"{self.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: the body says why
            return json.load(error)

    def label_values(self, label, selector, range_seconds):
        now = time.time()
        params = {"start": now - range_seconds, "end": now}
        if selector:
            params["match[]"] = selector
        body = self.get(f"/api/v1/label/{label}/values", params)
        if body.get("status") != "success":
            raise SystemExit(f"{self.url}: label values of {label}: {body.get('error')}")
        return body["data"]

    def query(self, expr, at):
        """(has data, error or None) of an instant query at time `at`."""
        body = self.get("/api/v1/query", {"query": expr, "time": at})
        if body.get("status") != "success":
            return False, body.get("error", "no answer")
        data = body["data"]
        if data["resultType"] == "scalar":
            return not math.isnan(float(data["result"][1])), None
        return bool(data["result"]), None

    def ready(self):
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


# --- running the peers here -----------------------------------------------------------

def die_with_parent():
    """preexec_fn: the child gets SIGKILL when this script dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peers:
    """The four processes of a local run, in a temporary directory; stopped on exit."""

    def __init__(self, agent, enable=()):
        self.dir = tempfile.TemporaryDirectory(prefix="dashboard-panels-")
        self.path = Path(self.dir.name)
        self.children = []
        self.agent_port = free_port()
        self.exporter_port = free_port()
        node_exporter_port = free_port()
        self.prometheus(self.agent_port, "agent", "global:\n  scrape_interval: 1h\n")
        self.prometheus(self.exporter_port, "node_exporter", (
            "scrape_configs:\n"
            "  - job_name: node\n"
            f"    scrape_interval: {INTERVAL_SECONDS}s\n"
            f"    scrape_timeout: {INTERVAL_SECONDS}s\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{node_exporter_port}']\n"))
        self.spawn("node_exporter",
                   [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{node_exporter_port}"]
                   + [f"--collector.{name}" for name in enable])
        config = self.path / "sc-agent.yaml"
        config.write_text(
            f"collection_interval: {INTERVAL_SECONDS}s\n"
            f"ingestor_endpoint: http://127.0.0.1:{self.agent_port}/api/v1/write\n"
            "job: node\n"
            f"instance: {socket.gethostname()}\n"
            + ("collectors:\n" + "".join(f"  {name}: true\n" for name in enable) if enable else ""))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SC_")}
        self.spawn("sc-agent", [str(agent), "--config", str(config)], env)

    def prometheus(self, port, name, config):
        path = self.path / f"{name}.yml"
        path.write_text(config)
        self.spawn(f"prometheus-{name}", [
            PROMETHEUS, f"--config.file={path}",
            f"--storage.tsdb.path={self.path / ('data-' + name)}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver"])

    def spawn(self, name, argv, env=None):
        log = open(self.path / f"{name}.log", "wb")
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 env=env, preexec_fn=die_with_parent)
        self.children.append((name, child))

    def check_running(self):
        for name, child in self.children:
            if child.poll() is not None:
                log = (self.path / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} exited ({child.returncode}):\n{log}")

    def stop(self):
        for _, child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()
        self.dir.cleanup()


def wait_for_data(prometheus, peers, window, deadline):
    """Waits until `node_uname_info` has at least 3 samples in the last `window` on
    every Prometheus, so that every rate() over that window has data."""
    for server in prometheus:
        while True:
            peers.check_running()
            if time.time() > deadline:
                raise SystemExit(f"{server.url}: no data after {START_TIMEOUT}s")
            if server.ready():
                has, _ = server.query(f"count_over_time(node_uname_info[{window}]) >= 3",
                                      time.time())
                if has:
                    break
            time.sleep(0.25)


# --- the evaluation ---------------------------------------------------------------------

def evaluate(dashboard, servers, fixed, builtins, range_seconds):
    panels = load_panels(dashboard)
    sides = {}
    at = time.time()
    for side, server in zip(SIDES, servers):
        variables = resolve_variables(dashboard, server, fixed[side], range_seconds)
        variables.update(builtins)
        with_data, errors = [], []
        for _, panel in panels:
            shows = False
            for expr in visible_exprs(panel):
                has, error = server.query(substitute(expr, variables), at)
                if error:
                    errors.append({"panel": panel.get("title"), "expr": expr, "error": error})
                shows = shows or has
            if shows:
                with_data.append(panel.get("title"))
        sides[side] = {"url": server.url, "variables": {k: variables[k] for k in
                                                       sorted(variables) if
                                                       not k.startswith("__")},
                       "count": len(with_data), "panels": with_data, "errors": errors}
    only = {}
    for side, other in (SIDES, SIDES[::-1]):
        other_set = set(sides[other]["panels"])
        only[side] = [{"row": row, "title": panel.get("title"),
                       "metrics": sorted({n for e in visible_exprs(panel) for n in metric_names(e)})}
                      for row, panel in panels
                      if panel.get("title") in sides[side]["panels"]
                      and panel.get("title") not in other_set]
    # Which of those metrics the side without data lacks altogether (for this node).
    for side, other in (SIDES, SIDES[::-1]):
        server = servers[SIDES.index(other)]
        selector = ",".join(f'{k}="{v}"' for k, v in (("job", sides[other]["variables"].get("job")),
                                                       ("instance", sides[other]["variables"].get("node")))
                            if v)
        for panel in only[side]:
            panel["absent_on_other_side"] = [
                name for name in panel["metrics"]
                if not server.query(f"{name}{{{selector}}}", at)[0]]
    shown = set(sides[SIDES[0]]["panels"]) | set(sides[SIDES[1]]["panels"])
    neither = [{"row": row, "title": panel.get("title"),
                "metrics": sorted({n for e in visible_exprs(panel) for n in metric_names(e)})}
               for row, panel in panels if panel.get("title") not in shown]
    return {"dashboard": dashboard.get("title"), "total": len(panels),
            "builtins": builtins, "sides": sides, "only": only, "neither": neither}


def report(result):
    print(f"{result['dashboard']}: {result['total']} panels; "
          + ", ".join(f"${k}={v}" for k, v in result["builtins"].items()
                      if k in ("__rate_interval", "__interval", "__range")))
    for side in SIDES:
        s = result["sides"][side]
        variables = ", ".join(f"{k}={v}" for k, v in s["variables"].items())
        print(f"  {side:13} {s['count']:3}/{result['total']} panels show data  "
              f"({s['url']}; {variables})")
    for side, other in (SIDES, SIDES[::-1]):
        panels = result["only"][side]
        print(f"\nData from {side} only ({len(panels)}); * = {other} has no such series:")
        for panel in panels:
            names = ", ".join(n + ("*" if n in panel["absent_on_other_side"] else "")
                              for n in panel["metrics"])
            print(f"  [{panel['row']}] {panel['title']}: {names}")
    print(f"\nData from neither ({len(result['neither'])}):")
    for panel in result["neither"]:
        print(f"  [{panel['row']}] {panel['title']}: {', '.join(panel['metrics'])}")
    for side in SIDES:
        for error in result["sides"][side]["errors"]:
            print(f"\nquery error on {side}, panel {error['panel']!r}: {error['error']}\n"
                  f"  {error['expr']}")


def pairs(items):
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--urls", nargs=2, metavar=("AGENT_PROMETHEUS", "NODE_EXPORTER_PROMETHEUS"))
    parser.add_argument("--agent", type=Path, default=AGENT, help="the sc-agent binary")
    parser.add_argument("--scrape-interval", default=f"{INTERVAL_SECONDS}s",
                        help="the data sources' scrape interval (default: %(default)s)")
    parser.add_argument("--range", default="5m", help="the time range looked at (default: %(default)s)")
    parser.add_argument("--var-agent", action="append", metavar="NAME=VALUE")
    parser.add_argument("--var-node-exporter", action="append", metavar="NAME=VALUE")
    parser.add_argument("--enable", action="append", default=[], metavar="COLLECTOR",
                        help="also enable this off-by-default collector in both (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    args = parser.parse_args()

    dashboard = json.loads(args.dashboard.read_text())
    range_seconds = seconds(args.range)
    builtins = builtin_variables(seconds(args.scrape_interval), range_seconds)
    fixed = {"sc-agent": pairs(args.var_agent), "node_exporter": pairs(args.var_node_exporter)}
    # SIGTERM ends the script through its finally blocks, which stop the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    peers = None
    try:
        if args.urls:
            servers = [Prometheus(url) for url in args.urls]
        else:
            if not args.agent.is_file():
                raise SystemExit(f"{args.agent} is not built (cargo build)")
            peers = Peers(args.agent, args.enable)
            servers = [Prometheus(f"http://127.0.0.1:{port}")
                       for port in (peers.agent_port, peers.exporter_port)]
            wait_for_data(servers, peers, builtins["__rate_interval"],
                          time.time() + START_TIMEOUT)
        result = evaluate(dashboard, servers, fixed, builtins, range_seconds)
    finally:
        if peers:
            peers.stop()
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
