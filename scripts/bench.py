#!/usr/bin/env python3
"""The measuring half of scripts/bench.sh (which builds what this runs).

Runs the static binary against receivers on loopback that accept every remote write
request (HTTP, and HTTPS with a private CA made with openssl), reads the agent's
/proc/<pid>/status, and prints every figure with its budget. Exit status 1 when a
budget is missed.
"""

import argparse
import http.server
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MIB = 1024 * 1024
BUDGETS = {
    "binary_tls": 3 * MIB,
    "binary_no_tls": 1.5 * MIB,
    "vmhwm_https": 3 * MIB,
    "cpu_ratio": 2.0,
    "start_to_first_push_ms": 50.0,
}
# RSS may move by a few pages (allocator and kernel bookkeeping) without growing.
RSS_GROWTH_TOLERANCE = 64 * 1024


class Sink(http.server.BaseHTTPRequestHandler):
    """Accepts remote write requests: reads the body, answers 204, counts."""

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
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return kib["VmRSS"], kib["VmHWM"], cpu


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


def mib(n):
    return f"{n / MIB:.2f} MiB"


def verdict(ok):
    return "ok" if ok else "MISSED"


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


def cycle_cost(example, floor, cycles):
    out = subprocess.run([example, "--cycles", str(cycles), "--floor", str(floor)],
                         check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, v in re.findall(r"^(\w+) ([\d.]+)$", out, re.M)}


def long_run(binary, directory, ca_file, context, cycles, interval):
    """The agent pushing over HTTPS for `cycles` cycles: RSS after warm-up and at the
    end, VmHWM, CPU per cycle of the whole process."""
    receiver = start_receiver(context)
    port = receiver.server_address[1]
    config = write_config(directory, "https.yaml", (
        f"vm_id: bench-vm\ninstance: bench\ncollection_interval: {interval}\n"
        f"ingestor_endpoint: https://127.0.0.1:{port}/api/v1/write\n"
        f"tls:\n  ca_file: {ca_file}\nlog_level: warn\n"))
    agent = subprocess.Popen([binary, "--config", str(config)], env=agent_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    warm_up = max(cycles // 10, 1)
    try:
        if not wait_for(lambda: receiver.requests >= warm_up, 600):
            sys.exit(f"bench: only {receiver.requests} pushes arrived; is the agent failing? "
                     + agent.stderr.read1(4096).decode(errors="replace"))
        rss_warm, _, cpu_warm = status(agent.pid)
        warm_requests = receiver.requests
        wait_for(lambda: receiver.requests >= cycles, cycles * 10)
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--binary-no-tls", required=True)
    parser.add_argument("--cycle-cost", required=True)
    parser.add_argument("--cycles", type=int, default=10000)
    parser.add_argument("--interval", default="10ms")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sc-agent-bench-") as directory:
        size_tls = os.path.getsize(args.binary)
        size_plain = os.path.getsize(args.binary_no_tls)
        floor, ops = floor_list(args.binary, directory)
        cost = cycle_cost(args.cycle_cost, floor, 2000)
        ca_file, context = make_ca(directory)
        run = long_run(args.binary, directory, ca_file, context, args.cycles, args.interval)
        start_ms, starts = start_to_first_push(args.binary, directory)

    failed = []

    def report(label, text, within_budget=None):
        """One line; `within_budget` is None for figures without a budget."""
        if within_budget is None:
            print(f"{label:<48} {text}")
            return
        if not within_budget:
            failed.append(label)
        print(f"{label:<48} {text:<28} {verdict(within_budget)}")

    growth = run["rss_end"] - run["rss_warm"]
    runs = ", ".join(f"{t:.0f}" for t in starts)
    print(f"sc-agent footprint on {socket.gethostname()} ({os.cpu_count()} CPUs), "
          f"{time.strftime('%Y-%m-%d')}")
    print()
    report("binary size, static, with TLS (budget 3 MiB)", f"{size_tls} B = {mib(size_tls)}",
           size_tls <= BUDGETS["binary_tls"])
    report("binary size, static, no TLS (budget 1.5 MiB)", f"{size_plain} B = {mib(size_plain)}",
           size_plain <= BUDGETS["binary_no_tls"])
    report("CPU per cycle: collect+encode+compress",
           f"{cost['cycle_cpu_us']:.0f} us ({cost['samples_per_cycle']:.0f} samples)")
    report("CPU floor: read the same files",
           f"{cost['floor_cpu_us']:.0f} us ({ops} reads/listings/statfs)")
    report("CPU ratio (budget 2.0)", f"{cost['cpu_ratio']:.2f}",
           cost["cpu_ratio"] <= BUDGETS["cpu_ratio"])
    report("wire bytes per sample (snappy)",
           f"{cost['wire_bytes_per_sample']:.2f} B ({cost['wire_bytes']:.0f} B a batch)")
    report("compression ratio (protobuf / snappy)",
           f"{cost['compression_ratio']:.2f}x ({cost['protobuf_bytes']:.0f} B raw)")
    report(f"HTTPS pushes at {args.interval}",
           f"{run['pushes']} ({run['bytes_per_push']:.0f} B each)")
    report("process CPU per cycle incl. TLS push", f"{run['cpu_per_cycle_us']:.0f} us")
    report(f"VmRSS after warm-up ({args.cycles // 10} cycles)", mib(run["rss_warm"]))
    report(f"VmRSS after {run['pushes']} cycles", mib(run["rss_end"]))
    report("RSS growth after warm-up (budget: none)", f"{growth / 1024:+.0f} KiB",
           growth <= RSS_GROWTH_TOLERANCE)
    report("VmHWM over HTTPS (budget 3 MiB)", mib(run["hwm"]),
           run["hwm"] <= BUDGETS["vmhwm_https"])
    report("start to first push, median (budget 50 ms)", f"{start_ms:.1f} ms (runs: {runs})",
           start_ms <= BUDGETS["start_to_first_push_ms"])

    print()
    if failed:
        print("budgets missed: " + "; ".join(failed))
        return 1
    print("all budgets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
