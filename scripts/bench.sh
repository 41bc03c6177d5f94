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
#   side by side       CPU per cycle and RSS against node_exporter + vmagent (and
#                      node_exporter + Prometheus in agent mode), same collectors, same
#                      1 s interval, each pushing over HTTPS to a local sink
#   interfaces         netdev and netclass per cycle with 200 veth interfaces, in a
#                      network namespace made for the run
#   series             CPU per series on fixture hosts of 400 to 50,000 series
#   relabel            CPU per cycle of a 5,000-series fixture host with 20 write_relabel_configs
#                      against none
#   collectors         CPU per cycle of each collector alone on this machine
#
#   scripts/bench.sh [--cycles N] [--interval DURATION] [--side-cycles N]
#                    [--interfaces N] [--series N,N,...] [--only PART,...]
#   (defaults: 10000 cycles at 10ms, 60 side-by-side cycles, 200 interfaces,
#   400,2000,10000,50000 series; scripts/bench.py --help lists them all)
#
# Needs root (network namespaces). Installs what it needs when missing, from apt
# (strace, openssl, python3, iproute2, prometheus-node-exporter, victoria-metrics for
# vmagent, prometheus; the musl target and musl-tools through build-static.sh); a
# service a package installed here starts is stopped again. Exits non-zero when a
# budget is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A packages=(
  [strace]=strace [openssl]=openssl [python3]=python3 [ip]=iproute2
  [prometheus-node-exporter]=prometheus-node-exporter [vmagent]=victoria-metrics
  [prometheus]=prometheus
)
need=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("${packages[$cmd]}")
done
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "installing ${need[*]}" >&2
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The reference agents are run by the bench itself: a service their package
  # started would only compete for the CPU being measured.
  if [ -d /run/systemd/system ]; then
    for unit in prometheus prometheus-node-exporter victoria-metrics; do
      case " ${need[*]} " in
        *" $unit "*) $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true ;;
      esac
    done
  fi
fi

# The network namespaces bench.py makes (<prefix>-a, <prefix>-b) are removed by it,
# and here again whatever way it ends.
netns="sc-bench-$$"
trap 'ip netns del "$netns-a" 2>/dev/null || true; ip netns del "$netns-b" 2>/dev/null || true' EXIT

echo "building: static binaries (with and without TLS) and the cycle-cost bench" >&2
tls_bin=$(scripts/build-static.sh | tail -n 1)
notls_bin=$(scripts/build-static.sh --no-default-features | tail -n 1)
cycle_cost=$(cargo bench --no-run --bench cycle_cost 2>&1 \
  | grep -oE 'target/release/deps/cycle_cost-[0-9a-f]+' | tail -n 1)
[ -x "$cycle_cost" ] || { echo "bench.sh: cannot build benches/cycle_cost.rs" >&2; exit 1; }

status=0
python3 scripts/bench.py --binary "$tls_bin" --binary-no-tls "$notls_bin" \
  --cycle-cost "$cycle_cost" --netns "$netns" "$@" || status=$?
exit "$status"
