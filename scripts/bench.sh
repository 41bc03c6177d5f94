#!/usr/bin/env bash
# Measures sc-agent's footprint on this machine and checks it against its budgets
# (README, Footprint), in one run:
#
#   binary size        static musl release, with TLS and without (feature `tls`)
#   CPU per cycle      collect + encode + compress (default collectors), against the
#                      floor of merely reading the same files, in one process
#   wire bytes         per sample after snappy, and the compression ratio
#   memory             VmRSS/VmHWM after N cycles at a short interval, pushing over
#                      HTTPS to a local receiver, and whether RSS grew after warm-up
#   start-up           from exec to the first push reaching a local receiver
#
#   scripts/bench.sh [--cycles N] [--interval DURATION]    defaults: 10000, 10ms
#
# Installs what it needs when missing (strace, openssl, python3; the musl target and
# musl-tools through build-static.sh). Exits non-zero when a budget is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for cmd in strace openssl python3; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "building: static binaries (with and without TLS) and the cycle-cost bench" >&2
tls_bin=$(scripts/build-static.sh | tail -n 1)
notls_bin=$(scripts/build-static.sh --no-default-features | tail -n 1)
cycle_cost=$(cargo bench --no-run --bench cycle_cost 2>&1 \
  | grep -oE 'target/release/deps/cycle_cost-[0-9a-f]+' | tail -n 1)
[ -x "$cycle_cost" ] || { echo "bench.sh: cannot build benches/cycle_cost.rs" >&2; exit 1; }

exec python3 scripts/bench.py --binary "$tls_bin" --binary-no-tls "$notls_bin" \
  --cycle-cost "$cycle_cost" "$@"
