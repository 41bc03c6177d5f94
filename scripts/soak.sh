#!/usr/bin/env bash
# The long soak: the static release agent (scripts/build-static.sh, as shipped)
# pushes every INTERVAL_MS to a local receiver that fails in bursts (503s for 2s
# every 8s, now and then 429 + Retry-After, 400, or no answer), for CYCLES cycles;
# then the receiver turns healthy, the backlog drains and SIGTERM flushes the rest.
#
#   scripts/soak.sh [CYCLES] [INTERVAL_MS]      defaults: 100000 cycles, 10 ms
#                                                (10 ms is the agent's shortest interval)
#
# Prints cycles run, samples produced / sent / dropped (by reason) / left queued,
# VmRSS at cycle 1,000 and at the end, and VmHWM. Exits non-zero unless
# produced == sent + dropped + left queued exactly (the receiver's decoded counts
# cross-checked against the agent's own counters) and VmRSS grew by at most 256 KiB
# after warm-up. The receiver and the checks are tests/soak_run/mod.rs, run by
# the soak binary of testkit/ (src/bin/soak.rs); tests/soak.rs runs 5,000 cycles of the same in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=${1:-100000}
interval_ms=${2:-10}

agent=$(scripts/build-static.sh | tail -n 1)
cargo build --release -p sc-agent-testkit --bin soak >&2
exec target/release/soak --agent "$agent" --cycles "$cycles" \
  --interval-ms "$interval_ms" --warmup 1000 --rss-tolerance-kib 256
