#!/usr/bin/env bash
# Runs every check sc-agent has, installing what they need on a fresh Debian machine
# first: the README's test command, and what CI runs (.ci/run).
#
#   scripts/test.sh            format, lint, the static musl build, unit and
#                              integration tests, and a short fuzz run per target
#                              (when the nightly toolchain is installed)
#
# Needs: a Rust toolchain from rustup, and apt (as root or through sudo) when the
# test peers (prometheus, promtool, node_exporter, ...) are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# --- what the tests need --------------------------------------------------------
# command -> Debian package providing it
declare -A APT_FOR=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
  [openssl]=openssl
  [curl]=curl
  [strace]=strace
  [systemd-analyze]=systemd
  [systemd-nspawn]=systemd-container
  [busybox]=busybox
  [shellcheck]=shellcheck
  [cloud-init]=cloud-init
  [unshare]=util-linux
  [losetup]=mount
  [mkfs.btrfs]=btrfs-progs
  [mkfs.xfs]=xfsprogs
  [setpriv]=util-linux
  [useradd]=passwd
  [python3]=python3
  [victoria-metrics]=victoria-metrics
  [faketime]=faketime
  [dbus-daemon]=dbus-daemon
  [ip]=iproute2
)

missing=()
for cmd in "${!APT_FOR[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${APT_FOR[$cmd]}")
done
# The system bus a booted container starts (tests/install.rs, the systemd collector
# under the unit): its unit comes with the dbus package, not with dbus-daemon.
[ -e /lib/systemd/system/dbus.service ] || missing+=(dbus)
if [ "${#missing[@]}" -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  say "installing test peers: $packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
fi

for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" \
    || rustup component add "$component"
done

# --- the checks -----------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

say "static musl binary (for the empty-root test)"
SC_STATIC_BINARY="$PWD/$(scripts/build-static.sh | tail -n 1)"
export SC_STATIC_BINARY

say "cargo test (unit and integration tests)"
cargo test

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  say "fuzzing: ${SC_FUZZ_SECONDS:-20}s per target"
  scripts/fuzz.sh "${SC_FUZZ_SECONDS:-20}"
else
  say "fuzzing skipped: no nightly toolchain (rustup toolchain install nightly)"
fi

say "all checks passed"
