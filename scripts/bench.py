#!/usr/bin/env python3
"""The measuring half of scripts/bench.sh (which builds what this runs, installs the
reference agents and owns the network namespaces' clean-up).

Runs the static binary against sinks on loopback that accept every remote write
request (HTTP, and HTTPS with a private CA made with openssl), next to
node_exporter + vmagent and node_exporter + Prometheus in agent mode doing the same
work; runs it in a network namespace of many veth interfaces; runs the cycle-cost
bench on fixture hosts of growing size and on each collector alone. Prints every
figure with its budget; exit status 1 when a budget is missed.

CPU of a process is read from /proc/PID/task/*/schedstat (nanoseconds, every thread)
or, when a thread ended during the window, from utime+stime of /proc/PID/stat (clock
ticks, which count ended threads). Memory is VmRSS and VmHWM of /proc/PID/status.
"""

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MIB = 1024 * 1024

BUDGETS = {
    "binary_tls": 2 * MIB,
    "binary_no_tls": 1.5 * MIB,
    "vmhwm_https": 2.5 * MIB,
    "cpu_ratio": 2.0,
    "start_to_first_push_ms": 50.0,
    # node_exporter + vmagent against sc-agent, in the same run: at least this many
    # times more CPU per cycle and more resident memory.
    "side_cpu_factor": 10.0,
    "side_rss_factor": 15.0,
    # netdev + netclass per cycle with --interfaces interfaces (mean, milliseconds).
    "netdev_netclass_ms": 2.0,
    # CPU per series of the largest fixture host against the smallest, either way.
    "per_series_spread": 1.5,
    # A steady ~5,000-series host with RELABEL_RULES against none: CPU per cycle.
    "relabel_ratio": 1.10,
}

# Twenty write_relabel_configs of the kinds fleets write (drops by name and device,
# renames, labelmap, hashmod, case, equality, labeldrop), written so that what is
# sent stays the same: nothing dropped, no label added for good (the scratch label
# is dropped again), replacements that write back what was there. The two runs then
# encode and send the same series and the ratio is the cost of relabeling alone;
# rules that add a label to every series also make every request bigger, which is
# the cost of the bigger series, not of relabeling.
RELABEL_RULES = r"""
- {source_labels: [__name__], regex: 'node_scrape_nothing_.*', action: drop}
- {source_labels: [__name__], regex: 'node_nothing_guest_seconds_total', action: drop}
- {source_labels: [__name__], regex: '.+', action: keep}
- {source_labels: [device], regex: 'veth_nothing.*|docker_nothing.*', action: drop}
- {source_labels: [__name__, device], regex: 'node_network_.*;nothing', action: drop}
- {source_labels: [instance], regex: '([^.]+)\.nothing\..*', target_label: instance, replacement: '$1'}
- {source_labels: [job], regex: '(.+)', target_label: job, replacement: '$1'}
- {source_labels: [vm_id], regex: '(.+)', target_label: vm_id, replacement: '${1}'}
- {regex: '__meta_(.+)', action: labelmap}
- {source_labels: [instance], target_label: __tmp_shard, modulus: 4, action: hashmod}
- {source_labels: [fstype], regex: '(.+)', target_label: fstype, action: lowercase}
- {source_labels: [mountpoint], regex: '/nothing', target_label: root_fs, replacement: 'yes'}
- {source_labels: [job], target_label: job, action: keepequal}
- {source_labels: [__name__, mode], separator: ':', regex: 'node_cpu_seconds_total:(nothing)', target_label: idle_kind, replacement: '$1'}
- {source_labels: [device], regex: '(nvme\d+)n\d+p\d+nothing', target_label: controller, replacement: '$1'}
- {regex: env, action: labeldrop}
- {regex: __tmp_shard, action: labeldrop}
- {source_labels: [mode], regex: 'nothing', target_label: busy, replacement: 'yes'}
- {source_labels: [device], regex: 'eth(\d+)nothing', target_label: port, replacement: '$1'}
- {source_labels: [__name__], regex: '(node_.*)', target_label: __name__, replacement: '$1'}
"""
# RSS may move by a few pages (allocator and kernel bookkeeping) without growing.
RSS_GROWTH_TOLERANCE = 64 * 1024

# The side-by-side run: interval (seconds) and the pushes every side must have made
# before the window opens (Go runtimes and TLS sessions settle in the first seconds).
SIDE_INTERVAL_S = 1
SIDE_WARM_UP_PUSHES = 10

NODE_EXPORTER = "prometheus-node-exporter"
VMAGENT = "vmagent"
PROMETHEUS = "prometheus"
# sc-agent option -> node_exporter flag, where the names differ.
FLAG_NAMES = {("netclass", "device_exclude"): "ignored-devices"}

# The fixture host: collectors it runs, fixture cases whose fixed files it copies
# (meminfo, vmstat, netstat... stay the same size), and the templates of what scales.
FIXTURE_HOST_COLLECTORS = [
    "loadavg", "meminfo", "cpu", "stat", "diskstats", "netdev", "netclass", "time",
    "entropy", "filefd", "vmstat", "pressure", "sockstat", "netstat",
]
FIXED_CASES = ["loadavg_meminfo", "vmstat", "netstat", "sockstat", "filefd", "entropy",
               "pressure", "time"]
NETCLASS_TEMPLATE = FIXTURES / "netclass" / "sys" / "class" / "net" / "eth0"
UDEV_TEMPLATE = FIXTURES / "diskstats" / "root" / "run" / "udev" / "data" / "b254:0"


class Sink(http.server.BaseHTTPRequestHandler):
    """Accepts remote write requests: reads the body, answers 204, counts. HTTP/1.1,
    so a client that keeps the connection alive can."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        server = self.server
        with server.lock:
            if server.first_request is None:
                server.first_request = time.monotonic()
            server.requests += 1
            server.bytes += len(body)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_receiver(tls_context=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.first_request = None
    server.requests = 0
    server.bytes = 0
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_ca(directory):
    """A CA and a server certificate for 127.0.0.1, with the openssl CLI."""
    d = Path(directory)

    def run(*args):
        subprocess.run(args, check=True, cwd=d, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=sc-agent bench CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "san.cnf")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "server.pem", d / "server.key")
    return d / "ca.pem", context


def status(pid):
    """VmRSS, VmHWM (bytes) and CPU seconds of a process."""
    text = Path(f"/proc/{pid}/status").read_text()
    kib = {k: int(v) * 1024 for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M)}
    return kib["VmRSS"], kib["VmHWM"], stat_cpu(pid)


def stat_cpu(pid):
    """utime + stime of the whole process (ended threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_sample(pid):
    """The threads of a process, their summed schedstat run time (ns) and the
    process's utime+stime (s), read together."""
    threads, ns = set(), 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            threads.add(tid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return threads, ns, stat_cpu(pid)


def cpu_between(before, after):
    """CPU seconds between two samples of one process: schedstat's nanoseconds when
    every thread of the first is still there, else stat's clock ticks."""
    if before[0] <= after[0]:
        return (after[1] - before[1]) / 1e9
    return after[2] - before[2]


def agent_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SC_")}
    env.update(extra or {})
    return env


def write_config(directory, name, text):
    path = Path(directory) / name
    path.write_text(text)
    return path


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def mib(n):
    return f"{n / MIB:.2f} MiB"


def verdict(ok):
    return "ok" if ok else "MISSED"


def https_config(port, ca_file, interval, collectors_yaml=""):
    return (f"vm_id: bench-vm\ninstance: bench\ncollection_interval: {interval}\n"
            f"ingestor_endpoint: https://127.0.0.1:{port}/api/v1/write\n"
            f"remote_write:\n  tls:\n    ca_file: {ca_file}\nlog_level: warn\n"
            + collectors_yaml)


def collectors_yaml(names):
    return "collectors:\n  disable_defaults: true\n" + "".join(f"  {n}: true\n" for n in names)


def floor_list(binary, directory):
    """One steady-state cycle of the agent, traced: the files it read, the
    directories it listed, the statfs calls it made (between two stdout writes)."""
    config = write_config(directory, "trace.yaml",
                          "vm_id: bench-vm\ninstance: bench\ncollection_interval: 300ms\n")
    trace = Path(directory) / "cycle.trace"
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,statfs,write", "-o", str(trace),
                    "timeout", "-s", "TERM", "1.3", binary, "--config", str(config)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = trace.read_text().splitlines()
    marks = [i for i, line in enumerate(lines) if re.search(r"\bwrite\(1,", line)]
    if len(marks) < 2:
        sys.exit("bench: strace saw fewer than two cycles")
    ops = []
    for line in lines[marks[0] + 1:marks[1]]:
        # musl calls open(2), glibc openat(2).
        m = re.search(r'open(?:at)?\((?:AT_FDCWD, )?"([^"]+)", ([A-Z_|]+)', line)
        if m:
            ops.append(("list " if "O_DIRECTORY" in m.group(2) else "read ") + m.group(1))
            continue
        m = re.search(r'statfs\("([^"]+)"', line)
        if m:
            ops.append("statfs " + m.group(1))
    path = Path(directory) / "floor.txt"
    path.write_text("\n".join(ops) + "\n")
    return path, len(ops)


def cycle_cost(bench, cycles, *args, prefix_args=()):
    """The `name value` lines of benches/cycle_cost.rs, and its per-collector rows
    (`prefix_args` go between `bench` and the bench's own: `ip netns exec NS`)."""
    out = subprocess.run([bench, *prefix_args, "--cycles", str(cycles), *map(str, args)],
                         check=True, capture_output=True, text=True).stdout
    figures = {k: float(v) for k, v in re.findall(r"^(\w+) ([\d.]+)$", out, re.M)}
    rows = [(name, default, int(samples), float(collect), float(encode))
            for name, default, samples, collect, encode
            in re.findall(r"^collector (\w+) (on|off) (\d+) ([\d.]+) ([\d.]+)$", out, re.M)]
    return figures, rows


def seconds(duration):
    """A duration as the config writes it (`10ms`, `1s`), in seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    if not m:
        sys.exit(f"bench: cannot read the duration {duration!r} (expected e.g. 10ms, 1s)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def long_run(binary, directory, ca_file, context, cycles, interval):
    """The agent pushing over HTTPS for `cycles` cycles: RSS after warm-up and at the
    end, VmHWM, CPU per cycle of the whole process, and the lines it logged (into a
    file: a pipe nobody reads would stop the agent once full)."""
    receiver = start_receiver(context)
    port = receiver.server_address[1]
    config = write_config(directory, "https.yaml", https_config(port, ca_file, interval))
    log = Path(directory) / "https.log"
    with open(log, "wb") as stderr:
        agent = subprocess.Popen([binary, "--config", str(config)], env=agent_env(),
                                 stdout=subprocess.DEVNULL, stderr=stderr)
    warm_up = max(cycles // 10, 1)
    # Ten times the time the pushes need, for a machine busy with other work.
    timeout = cycles * seconds(interval) * 10 + 60
    try:
        if not wait_for(lambda: receiver.requests >= warm_up, timeout):
            sys.exit(f"bench: only {receiver.requests} pushes arrived; is the agent failing? "
                     + log.read_text(errors="replace")[-2000:])
        rss_warm, _, cpu_warm = status(agent.pid)
        warm_requests = receiver.requests
        if not wait_for(lambda: receiver.requests >= cycles, timeout):
            sys.exit(f"bench: {receiver.requests} of {cycles} pushes arrived in {timeout:.0f} s: "
                     + log.read_text(errors="replace")[-2000:])
        rss_end, hwm, cpu_end = status(agent.pid)
        end_requests = receiver.requests
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        receiver.shutdown()
    return {
        "pushes": end_requests,
        "rss_warm": rss_warm,
        "rss_end": rss_end,
        "hwm": hwm,
        "cpu_per_cycle_us": (cpu_end - cpu_warm) / max(end_requests - warm_requests, 1) * 1e6,
        "bytes_per_push": receiver.bytes / max(receiver.requests, 1),
        "log": log.read_text(errors="replace").splitlines(),
    }


def start_to_first_push(binary, directory, runs=7):
    """Milliseconds from exec to the first request at the receiver (HTTP, default
    identity detection), median of several starts."""
    times = []
    for _ in range(runs):
        receiver = start_receiver()
        port = receiver.server_address[1]
        config = write_config(directory, "start.yaml", (
            f"collection_interval: 1h\ningestor_endpoint: http://127.0.0.1:{port}/api/v1/write\n"
            "log_level: warn\n"))
        started = time.monotonic()
        agent = subprocess.Popen([binary, "--config", str(config)], env=agent_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if wait_for(lambda: receiver.first_request is not None, 30):
                times.append((receiver.first_request - started) * 1000)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
            receiver.shutdown()
    return statistics.median(times) if times else float("inf"), times


# --- side by side: sc-agent, node_exporter + vmagent, node_exporter + Prometheus agent


def yaml_scalar(text):
    """A scalar as serde_yaml prints it: null, plain, 'single' or "double" quoted."""
    if text in ("null", "~", ""):
        return None
    if text in ("true", "false"):
        return text == "true"
    if text == "[]":
        return []
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text.startswith('"') and text.endswith('"'):
        return json.loads(text)
    return text


def agent_collectors(binary):
    """{collector: (enabled by default, {option: value})} from `--print-config` of the
    built-in defaults: the agent's own table, its defaults and its default filters."""
    text = subprocess.run([binary, "--print-config"], env=agent_env(), check=True,
                          capture_output=True, text=True).stdout
    section = text.split("\ncollectors:\n", 1)[1]
    result, current = {}, None
    for line in section.splitlines():
        if not line.startswith("  "):
            break
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if not line.startswith("    "):
            current = key
            result[key] = (value == "true", {})
        elif key == "enabled":
            result[current] = (value == "true", result[current][1])
        else:
            result[current][1][key] = yaml_scalar(value)
    return result


def node_exporter_flags():
    """node_exporter's collectors and every `--collector.*` flag it knows, from --help."""
    out = subprocess.run([NODE_EXPORTER, "--help"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    collectors = set(re.findall(r"--collector\.(\w+)\s+Enable the \w+ collector", text))
    flags = set(re.findall(r"--(collector\.[\w.-]+)", text))
    return collectors, flags


def shared_collectors(binary):
    """The collectors both run by default, and node_exporter's flags that give them
    sc-agent's default options (its filters); options node_exporter has no flag for
    are returned as skipped."""
    ours = agent_collectors(binary)
    theirs, known_flags = node_exporter_flags()
    names = [n for n, (on, _) in ours.items() if on and n in theirs]
    if not names:
        sys.exit(f"bench: no collector in common with {NODE_EXPORTER} --help: {sorted(theirs)}")
    flags, skipped = ["--collector.disable-defaults"], []
    for name in names:
        flags.append(f"--collector.{name}")
        options = ours[name][1]
        for key, value in options.items():
            flag = f"collector.{name}.{FLAG_NAMES.get((name, key), key.replace('_', '-'))}"
            if flag not in known_flags:
                skipped.append(f"{name}.{key}")
                continue
            if value is None and key.endswith("_exclude") \
                    and options.get(key.replace("_exclude", "_include")) is None:
                # sc-agent excludes nothing; node_exporter may by default (^lo$ for
                # netdev): a pattern that matches no device name.
                value = "^$"
            if isinstance(value, bool):
                # kingpin's boolean flags take no value: --flag or --no-flag.
                flags.append(f"--{flag}" if value else f"--no-{flag}")
            elif isinstance(value, list):
                # A repeatable flag, given once per item.
                flags.extend(f"--{flag}={item}" for item in value)
            elif value is not None:
                flags.append(f"--{flag}={value}")
    return names, [n for n in ours if n not in names], flags, skipped


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def count_samples(text):
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


class Stack:
    """One side of the run: its processes, the sink it pushes to, its CPU samples."""

    def __init__(self, name, sink, directory):
        self.name = name
        self.sink = sink
        self.directory = Path(directory)
        self.procs = []
        self.logs = []
        self.series = None

    def start(self, args, **kwargs):
        """Starts one process of the stack, its stderr into a file (a pipe nobody
        reads would block a chatty process)."""
        log = self.directory / f"{Path(args[0]).name}-{self.sink.server_address[1]}.log"
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr, **kwargs)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def check_alive(self):
        for proc, log in zip(self.procs, self.logs):
            if proc.poll() is not None:
                err = log.read_text(errors="replace")[-2000:]
                sys.exit(f"bench: {self.name}: {proc.args[0]} exited ({proc.returncode}): {err}")

    def sample(self):
        return [cpu_sample(p.pid) for p in self.procs], self.sink.requests

    def memory(self):
        """(VmRSS, VmHWM) of each process."""
        return [status(proc.pid)[:2] for proc in self.procs]

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.sink.shutdown()


def wait_listening(port, proc, timeout=30):
    def up():
        if proc.poll() is not None:
            return True
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False
    wait_for(up, timeout)


def start_node_exporter(stack, flags):
    port = free_port()
    proc = stack.start([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=error", *flags])
    wait_listening(port, proc)
    stack.check_alive()
    stack.series = count_samples(scrape(port))
    return port


def scrape_config(target):
    return (f"global:\n  scrape_interval: {SIDE_INTERVAL_S}s\n  scrape_timeout: {SIDE_INTERVAL_S}s\n"
            f"scrape_configs:\n  - job_name: node\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target}']\n")


def side_by_side(binary, directory, ca_file, context, cycles, stacks_out):
    """sc-agent, node_exporter + vmagent and node_exporter + Prometheus (agent mode)
    at the same interval with the same collectors, each pushing over HTTPS to a sink
    of its own, measured over the same window of `cycles` intervals."""
    d = Path(directory)
    names, left_out, ne_flags, skipped = shared_collectors(binary)
    url = lambda sink: f"https://127.0.0.1:{sink.server_address[1]}/api/v1/write"

    ours = Stack("sc-agent", start_receiver(context), d)
    stacks_out.append(ours)
    config = write_config(d, "side.yaml", https_config(
        ours.sink.server_address[1], ca_file, f"{SIDE_INTERVAL_S}s", collectors_yaml(names)))
    once = subprocess.run([binary, "--once", "--config", str(config)], env=agent_env(),
                          check=True, capture_output=True, text=True).stdout
    ours.series = count_samples(once)
    ours.start([binary, "--config", str(config)], env=agent_env())

    vm = Stack("node_exporter + vmagent", start_receiver(context), d)
    stacks_out.append(vm)
    target = start_node_exporter(vm, ne_flags)
    (d / "vmagent.yml").write_text(scrape_config(target))
    vm.start([VMAGENT, f"-promscrape.config={d / 'vmagent.yml'}", f"-remoteWrite.url={url(vm.sink)}",
              f"-remoteWrite.tlsCAFile={ca_file}", f"-remoteWrite.tmpDataPath={d / 'vmagent-data'}",
              f"-httpListenAddr=127.0.0.1:{free_port()}", "-loggerLevel=ERROR"])

    prom = Stack("node_exporter + prometheus --enable-feature=agent", start_receiver(context), d)
    stacks_out.append(prom)
    target = start_node_exporter(prom, ne_flags)
    (d / "prometheus.yml").write_text(
        scrape_config(target)
        + f"remote_write:\n  - url: {url(prom.sink)}\n    tls_config:\n      ca_file: {ca_file}\n")
    prom.start([PROMETHEUS, "--enable-feature=agent", f"--config.file={d / 'prometheus.yml'}",
                f"--storage.agent.path={d / 'prometheus-agent'}",
                f"--web.listen-address=127.0.0.1:{free_port()}", "--log.level=error"])

    stacks = [ours, vm, prom]
    warm = lambda: all(s.sink.requests >= SIDE_WARM_UP_PUSHES for s in stacks)
    if not wait_for(lambda: warm() or any(p.poll() is not None for s in stacks for p in s.procs),
                    SIDE_WARM_UP_PUSHES * SIDE_INTERVAL_S * 6 + 30):
        sys.exit("bench: side by side: no pushes from "
                 + ", ".join(f"{s.name} ({s.sink.requests})" for s in stacks if s.sink.requests == 0))
    for stack in stacks:
        stack.check_alive()
    started, before = time.monotonic(), [s.sample() for s in stacks]
    time.sleep(cycles * SIDE_INTERVAL_S)
    elapsed, after = time.monotonic() - started, [s.sample() for s in stacks]
    for stack in stacks:
        stack.check_alive()
    window = elapsed / SIDE_INTERVAL_S
    rows = []
    for stack, (cpu0, pushes0), (cpu1, pushes1) in zip(stacks, before, after):
        parts = [{"name": Path(proc.args[0]).name,
                  "cpu_per_cycle_ms": cpu_between(a, b) / window * 1000, "rss": rss, "hwm": hwm}
                 for proc, a, b, (rss, hwm) in zip(stack.procs, cpu0, cpu1, stack.memory())]
        rows.append({"name": stack.name, "series": stack.series, "pushes": pushes1 - pushes0,
                     "parts": parts,
                     **{k: sum(p[k] for p in parts) for k in ("cpu_per_cycle_ms", "rss", "hwm")}})
    return {"collectors": names, "left_out": left_out, "skipped_options": skipped,
            "cycles": window, "rows": rows}


# --- netdev and netclass with many interfaces, in a network namespace


def ip(*args, stdin=None):
    subprocess.run(["ip", *args], input=stdin, text=True, check=True, capture_output=True)


def make_interfaces(prefix, count):
    """Namespaces `<prefix>-a` (measured: `count` veth ends and lo, every other veth
    down) and `<prefix>-b` (their peers, all up)."""
    a, b = f"{prefix}-a", f"{prefix}-b"
    ip("netns", "add", a)
    ip("netns", "add", b)
    ip("-batch", "-", stdin="".join(
        f"link add v{i} netns {a} type veth peer name p{i} netns {b}\n" for i in range(count)))
    ip("-n", b, "-batch", "-", stdin="".join(f"link set p{i} up\n" for i in range(count)))
    ip("-n", a, "-batch", "-", stdin="link set lo up\n" + "".join(
        f"link set v{i} up\n" for i in range(0, count, 2)))
    return a, b


def remove_namespaces(prefix):
    for suffix in ("a", "b"):
        subprocess.run(["ip", "netns", "del", f"{prefix}-{suffix}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


DURATION = re.compile(r'^node_scrape_collector_duration_seconds\{.*collector="(\w+)".*\} (\S+)$')


def interface_costs(binary, bench, directory, prefix, count, cycles, warm_up=5):
    """netdev's and netclass's cost with `count` interfaces, in the namespace: their
    node_scrape_collector_duration_seconds (wall time) cycle by cycle, from the agent
    printing to stdout every 100 ms, and their CPU per cycle from the cycle-cost bench
    run there. Returns ({collector: [seconds]}, {collector: CPU us}, devices seen)."""
    config = write_config(directory, "netns.yaml", (
        "vm_id: bench-vm\ninstance: bench\ncollection_interval: 100ms\nlog_level: warn\n"
        + collectors_yaml(["netdev", "netclass"])))
    namespace, _ = make_interfaces(prefix, count)
    try:
        seconds = {"netdev": [], "netclass": []}
        devices = set()
        agent = subprocess.Popen(["ip", "netns", "exec", namespace, binary, "--config", str(config)],
                                 env=agent_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True)
        try:
            deadline = time.monotonic() + (cycles + warm_up) * 2 + 60
            for line in agent.stdout:
                if line.startswith("node_network_up{"):
                    devices.update(re.findall(r'device="([^"]+)"', line))
                m = DURATION.match(line)
                if m and m.group(1) in seconds:
                    seconds[m.group(1)].append(float(m.group(2)))
                if min(map(len, seconds.values())) >= cycles + warm_up or time.monotonic() > deadline:
                    break
        finally:
            # Closed first: an agent blocked writing to a full pipe would not see SIGTERM.
            agent.stdout.close()
            agent.terminate()
            agent.wait(timeout=30)
        _, rows = cycle_cost("ip", max(cycles // 2, 10), prefix_args=[
            "netns", "exec", namespace, bench, "--per-collector", "--config", str(config)])
        cpu_us = {name: collect for name, _, _, collect, _ in rows if name in seconds}
    finally:
        remove_namespaces(prefix)
    return {k: v[warm_up:] for k, v in seconds.items()}, cpu_us, len(devices)


# --- CPU per series on fixture hosts of growing size


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_fixture_host(root, units):
    """A proc/sys/root tree of `units` CPUs, `units` disks and `units` interfaces, with
    the fixed files (meminfo, vmstat, netstat, ...) of the fixture cases."""
    for case in FIXED_CASES:
        for tree in ("proc", "sys", "root"):
            if (FIXTURES / case / tree).is_dir():
                shutil.copytree(FIXTURES / case / tree, root / tree, dirs_exist_ok=True)
    cpu = "33235 39568 13834 88889 203 0 42 635 0 0"
    write(root / "proc" / "stat",
          f"cpu  {cpu}\n" + "".join(f"cpu{i} {cpu}\n" for i in range(units))
          + "intr 977730 0 0 0\nctxt 1361088\nbtime 1795617410\nprocesses 46001\n"
            "procs_running 6\nprocs_blocked 0\n"
            "softirq 495319 0 88895 6 9646 89501 0 214 85875 0 221182\n")
    write(root / "sys" / "devices" / "system" / "cpu" / "isolated", "\n")
    udev = UDEV_TEMPLATE.read_text()
    disk = "143425 10625 9724978 115911 22469 43281 14299728 151512 0 29952 278130 14782 53 4836352 8672 1233 2032"
    write(root / "proc" / "diskstats",
          "".join(f" 259 {i} nvme{i}n1 {disk}\n" for i in range(units)))
    write(root / "proc" / "net" / "dev",
          "Inter-|   Receive                                                |  Transmit\n"
          " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
          + "".join(f"  eth{i}: 188325859 8545 0 0 0 0 0 0 482144 5385 0 0 0 0 0 0\n"
                    for i in range(units)))
    template = {f.name: f.read_text() for f in NETCLASS_TEMPLATE.iterdir() if f.is_file()}
    for i in range(units):
        cpu_dir = root / "sys" / "devices" / "system" / "cpu" / f"cpu{i}"
        write(cpu_dir / "topology" / "core_id", f"{i}\n")
        write(cpu_dir / "topology" / "physical_package_id", f"{i // 64}\n")
        write(cpu_dir / "thermal_throttle" / "core_throttle_count", "0\n")
        write(cpu_dir / "thermal_throttle" / "package_throttle_count", "0\n")
        write(root / "root" / "run" / "udev" / "data" / f"b259:{i}", udev)
        net = root / "sys" / "class" / "net" / f"eth{i}"
        for name, text in template.items():
            write(net / name, text)
        write(net / "ifindex", f"{i + 2}\n")
        write(net / "address", f"02:fc:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}\n")
        write(net / "statistics" / "rx_nohandler", "0\n")
    config = root / "config.yaml"
    config.write_text(
        f"paths:\n  procfs: {root / 'proc'}\n  sysfs: {root / 'sys'}\n  rootfs: {root / 'root'}\n"
        + collectors_yaml(FIXTURE_HOST_COLLECTORS))
    return config


class FixtureHosts:
    """Fixture hosts under `directory`, sized by units (n CPUs, disks, interfaces),
    and the series count of one: series = fixed + per_unit * units, from two probes."""

    def __init__(self, bench, directory):
        self.bench, self.dir = bench, Path(directory) / "hosts"
        one, two = self.measure(1, 1)["samples_per_cycle"], self.measure(2, 1)["samples_per_cycle"]
        self.fixed, self.per_unit = 2 * one - two, two - one

    def config(self, units):
        root = self.dir / f"units-{units}"
        if not root.exists():
            make_fixture_host(root, units)
        return root / "config.yaml"

    def measure(self, units, cycles, config=None):
        figures, _ = cycle_cost(self.bench, cycles, "--config", config or self.config(units))
        return figures

    def units_for(self, series):
        return max(1, round((series - self.fixed) / self.per_unit))

    def remove(self, units):
        shutil.rmtree(self.dir / f"units-{units}", ignore_errors=True)


def relabel_costs(bench, directory, series=5000, cycles=400, runs=3):
    """CPU per cycle of a ~`series` fixture host without rules and with RELABEL_RULES,
    alternating runs; the medians, and the series count."""
    hosts = FixtureHosts(bench, directory)
    units = hosts.units_for(series)
    plain = hosts.config(units)
    relabeled = plain.with_name("relabeled.yaml")
    relabeled.write_text(plain.read_text() + "remote_write:\n  write_relabel_configs:\n"
                         + "".join(f"    {line}\n" for line in RELABEL_RULES.strip().splitlines()))
    without, with_rules, count = [], [], 0
    for _ in range(runs):
        figures = hosts.measure(units, cycles, plain)
        without.append(figures["cycle_cpu_us"])
        count = int(figures["samples_per_cycle"])
        with_rules.append(hosts.measure(units, cycles, relabeled)["cycle_cpu_us"])
    hosts.remove(units)
    return statistics.median(without), statistics.median(with_rules), count


def per_series_costs(bench, directory, targets):
    """CPU per cycle and per series on fixture hosts sized for each target series
    count."""
    hosts = FixtureHosts(bench, directory)
    fixed, per_unit = hosts.fixed, hosts.per_unit
    measure = hosts.measure
    rows = []
    for target in targets:
        units = hosts.units_for(target)
        # About 2 million samples per size: 5,000 cycles of 400, 40 of 50,000.
        cycles = max(40, min(5000, 2_000_000 // max(target, 1)))
        figures = measure(units, cycles)
        rows.append({"units": units, "series": int(figures["samples_per_cycle"]),
                     "cycle_us": figures["cycle_cpu_us"], "ns_per_series": figures["cpu_ns_per_sample"],
                     "cycles": cycles})
        hosts.remove(units)
    return rows, fixed, per_unit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--binary-no-tls", required=True)
    parser.add_argument("--cycle-cost", required=True)
    parser.add_argument("--cycles", type=int, default=10000,
                        help="HTTPS pushes of the memory run (default 10000)")
    parser.add_argument("--interval", default="10ms", help="interval of the memory run")
    parser.add_argument("--side-cycles", type=int, default=60,
                        help="1 s cycles in the side-by-side window (default 60)")
    parser.add_argument("--netns", default=f"sc-bench-{os.getpid()}",
                        help="prefix of the network namespaces made (and removed)")
    parser.add_argument("--interfaces", type=int, default=200)
    parser.add_argument("--netns-cycles", type=int, default=100)
    parser.add_argument("--series", default="400,2000,10000,50000",
                        help="series counts of the fixture hosts")
    parser.add_argument("--only", default="",
                        help="comma-separated parts to run: size, floor, memory, start, side, "
                             "netns, series, relabel, collectors (default: all)")
    args = parser.parse_args()
    parts = set(filter(None, args.only.split(","))) or {
        "size", "floor", "memory", "start", "side", "netns", "series", "relabel", "collectors"}

    failed = []

    def report(label, text, within_budget=None):
        """One line; `within_budget` is None for figures without a budget."""
        if within_budget is None:
            print(f"{label:<58} {text}", flush=True)
            return
        if not within_budget:
            failed.append(label)
        print(f"{label:<58} {text:<30} {verdict(within_budget)}", flush=True)

    print(f"sc-agent footprint on {socket.gethostname()} ({os.cpu_count()} CPUs), "
          f"{time.strftime('%Y-%m-%d')}, load average {load_average()}")
    with tempfile.TemporaryDirectory(prefix="sc-agent-bench-") as directory:
        ca_file, context = make_ca(directory)

        if "size" in parts:
            print()
            size_tls = os.path.getsize(args.binary)
            size_plain = os.path.getsize(args.binary_no_tls)
            report("binary size, static, with TLS (budget 2 MiB)", f"{size_tls} B = {mib(size_tls)}",
                   size_tls <= BUDGETS["binary_tls"])
            report("binary size, static, no TLS (budget 1.5 MiB)",
                   f"{size_plain} B = {mib(size_plain)}", size_plain <= BUDGETS["binary_no_tls"])

        if "floor" in parts:
            print()
            floor, ops = floor_list(args.binary, directory)
            cost, _ = cycle_cost(args.cycle_cost, 2000, "--floor", floor)
            report("CPU per cycle: collect+encode+compress",
                   f"{cost['cycle_cpu_us']:.0f} us ({cost['samples_per_cycle']:.0f} samples)")
            report("  of which encode + compress", f"{cost['encode_cpu_us']:.0f} us")
            report("CPU floor: read the same files",
                   f"{cost['floor_cpu_us']:.0f} us ({ops} reads/listings/statfs)")
            report("CPU ratio to the floor (budget 2.0)", f"{cost['cpu_ratio']:.2f}",
                   cost["cpu_ratio"] <= BUDGETS["cpu_ratio"])
            report("wire bytes per sample (snappy)",
                   f"{cost['wire_bytes_per_sample']:.2f} B ({cost['wire_bytes']:.0f} B a batch)")
            report("compression ratio (protobuf / snappy)",
                   f"{cost['compression_ratio']:.2f}x ({cost['protobuf_bytes']:.0f} B raw)")

        if "memory" in parts:
            print()
            run = long_run(args.binary, directory, ca_file, context, args.cycles, args.interval)
            growth = run["rss_end"] - run["rss_warm"]
            report(f"HTTPS pushes at {args.interval}",
                   f"{run['pushes']} ({run['bytes_per_push']:.0f} B each)")
            report("process CPU per cycle incl. TLS push", f"{run['cpu_per_cycle_us']:.0f} us")
            report("lines the agent logged (warn and above)", f"{len(run['log'])}"
                   + (f", the last: {run['log'][-1][:60]}" if run["log"] else ""))
            report(f"VmRSS after warm-up ({args.cycles // 10} cycles)", mib(run["rss_warm"]))
            report(f"VmRSS after {run['pushes']} cycles", mib(run["rss_end"]))
            report("RSS growth after warm-up (budget: none)", f"{growth / 1024:+.0f} KiB",
                   growth <= RSS_GROWTH_TOLERANCE)
            report(f"VmHWM over HTTPS at {args.interval} (budget 2.5 MiB)", mib(run["hwm"]),
                   run["hwm"] <= BUDGETS["vmhwm_https"])

        if "start" in parts:
            print()
            start_ms, starts = start_to_first_push(args.binary, directory)
            report("start to first push, median (budget 50 ms)",
                   f"{start_ms:.1f} ms (runs: {', '.join(f'{t:.0f}' for t in starts)})",
                   start_ms <= BUDGETS["start_to_first_push_ms"])

        if "side" in parts:
            print()
            stacks = []
            try:
                side = side_by_side(args.binary, directory, ca_file, context, args.side_cycles,
                                    stacks)
            finally:
                for stack in stacks:
                    stack.stop()
            print(f"side by side at {SIDE_INTERVAL_S} s over HTTPS, {side['cycles']:.0f} cycles, "
                  f"collectors: {', '.join(side['collectors'])}")
            print(f"  (not in node_exporter, left out: {', '.join(side['left_out']) or 'none'}; "
                  f"options node_exporter has no flag for: {', '.join(side['skipped_options']) or 'none'})")
            print(f"  {'':<52} {'series':>7} {'pushes':>7} {'CPU/cycle':>11} {'VmRSS':>10} {'VmHWM':>10}")
            for row in side["rows"]:
                print(f"  {row['name']:<52} {row['series']:>7} {row['pushes']:>7} "
                      f"{row['cpu_per_cycle_ms']:>8.2f} ms {mib(row['rss']):>10} {mib(row['hwm']):>10}")
                for part in row["parts"] if len(row["parts"]) > 1 else []:
                    print(f"    {part['name']:<66} {part['cpu_per_cycle_ms']:>8.2f} ms "
                          f"{mib(part['rss']):>10} {mib(part['hwm']):>10}")
            ours, vm, prom = side["rows"]
            cpu_factor = vm["cpu_per_cycle_ms"] / max(ours["cpu_per_cycle_ms"], 1e-9)
            rss_factor = vm["rss"] / ours["rss"]
            report("CPU per cycle, node_exporter + vmagent / sc-agent (budget 10x)",
                   f"{cpu_factor:.1f}x", cpu_factor >= BUDGETS["side_cpu_factor"])
            report("VmRSS, node_exporter + vmagent / sc-agent (budget 15x)",
                   f"{rss_factor:.1f}x", rss_factor >= BUDGETS["side_rss_factor"])
            report(f"VmHWM over HTTPS at {SIDE_INTERVAL_S} s (budget 2.5 MiB)", mib(ours["hwm"]),
                   ours["hwm"] <= BUDGETS["vmhwm_https"])
            report("CPU per cycle, node_exporter + Prometheus agent / sc-agent",
                   f"{prom['cpu_per_cycle_ms'] / max(ours['cpu_per_cycle_ms'], 1e-9):.1f}x")
            report("VmRSS, node_exporter + Prometheus agent / sc-agent",
                   f"{prom['rss'] / ours['rss']:.1f}x")

        if "netns" in parts and os.geteuid() != 0:
            print()
            report(f"netdev + netclass, {args.interfaces} interfaces (budget 2 ms)",
                   "not measured: network namespaces need root", False)
        elif "netns" in parts:
            print()
            seconds, cpu_us, devices = interface_costs(
                args.binary, args.cycle_cost, directory, args.netns, args.interfaces,
                args.netns_cycles)
            ms = {k: [s * 1000 for s in v] for k, v in seconds.items()}
            total = [a + b for a, b in zip(ms["netdev"], ms["netclass"])]
            print(f"netdev and netclass with {devices} interfaces ({args.interfaces} veth, half "
                  f"down, and lo) in a network namespace")
            for name in ("netdev", "netclass"):
                report(f"  {name}: duration, mean of {len(ms[name])} cycles",
                       f"{statistics.mean(ms[name]):.2f} ms (median {statistics.median(ms[name]):.2f})")
                report(f"  {name}: CPU per cycle", f"{cpu_us[name] / 1000:.2f} ms")
            report("netdev + netclass, duration (budget 2 ms)",
                   f"{statistics.mean(total):.2f} ms (median {statistics.median(total):.2f})",
                   statistics.mean(total) <= BUDGETS["netdev_netclass_ms"])
            cpu_ms = (cpu_us["netdev"] + cpu_us["netclass"]) / 1000
            report("netdev + netclass, CPU (budget 2 ms)", f"{cpu_ms:.2f} ms",
                   cpu_ms <= BUDGETS["netdev_netclass_ms"])

        if "series" in parts:
            print()
            targets = [int(t) for t in args.series.split(",")]
            rows, fixed, per_unit = per_series_costs(args.cycle_cost, directory, targets)
            print(f"CPU per series on fixture hosts (n CPUs + n disks + n interfaces; "
                  f"{fixed:.0f} fixed series + {per_unit:.0f} per n)")
            print(f"  {'n':>6} {'series':>8} {'cycles':>7} {'CPU/cycle':>12} {'per series':>12}")
            for row in rows:
                print(f"  {row['units']:>6} {row['series']:>8} {row['cycles']:>7} "
                      f"{row['cycle_us'] / 1000:>9.2f} ms {row['ns_per_series']:>9.0f} ns")
            costs = [r["ns_per_series"] for r in rows]
            spread = max(costs) / min(costs)
            report(f"CPU per series, {rows[0]['series']} -> {rows[-1]['series']}: "
                   "largest / smallest (budget 1.5)", f"{spread:.2f}",
                   spread <= BUDGETS["per_series_spread"])

        if "relabel" in parts:
            print()
            without, with_rules, count = relabel_costs(args.cycle_cost, directory)
            print(f"write_relabel_configs: {len(RELABEL_RULES.strip().splitlines())} rules "
                  f"(dropping nothing) on a fixture host of {count} series, median of 3")
            report("  CPU per cycle without rules", f"{without / 1000:.2f} ms")
            report("  CPU per cycle with the rules", f"{with_rules / 1000:.2f} ms")
            ratio = with_rules / without
            report("relabeling, with / without (budget 1.10)", f"{ratio:.3f}",
                   ratio <= BUDGETS["relabel_ratio"])

        if "collectors" in parts:
            print()
            _, rows = cycle_cost(args.cycle_cost, 2000, "--per-collector")
            print("CPU per cycle of each collector alone on this machine "
                  "(series incl. its 2 node_scrape_collector_*)")
            print(f"  {'collector':<12} {'default':>7} {'series':>7} {'collect':>10} {'encode':>10}")
            for name, default, samples, collect, encode in sorted(rows, key=lambda r: -r[3]):
                print(f"  {name:<12} {default:>7} {samples:>7} {collect:>7.0f} us {encode:>7.0f} us")

    print()
    print(f"load average at the end: {load_average()} (what else ran stretches durations and "
          "start-up; CPU figures much less)")
    if failed:
        print("budgets missed: " + "; ".join(failed))
        return 1
    print("all budgets met")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
