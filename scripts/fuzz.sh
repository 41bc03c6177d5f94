#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 20) and prints, per target,
# the executions done and whether it crashed. A crash input is copied into
# tests/fuzz_regressions/<target>/ (where tests/fuzz_regressions.rs replays it for
# ever after) and the script exits 1.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain; installs cargo-fuzz when missing. The corpus grows in
# fuzz/corpus/<target> (not committed); fuzz/seeds/<target> seeds it, and the
# collectors target also gets seeds made from the fixture trees (testkit's fuzz-seeds).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz >&2
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

# One build for all targets (cargo fuzz run would otherwise build each in turn).
cargo +nightly fuzz build -O --fuzz-dir fuzz >&2
# The collectors target also starts from every fixture tree's files.
cargo run --quiet -p sc-agent-testkit --bin fuzz-seeds -- fuzz/corpus/collectors >&2

failed=0
printf '%-12s %12s %8s  %s\n' target executions seconds result
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  # Only this run's crash inputs: earlier ones are already kept (and fixed).
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  log=$(mktemp)
  status=ok
  if ! cargo +nightly fuzz run -O --fuzz-dir fuzz "$target" "$corpus" "fuzz/seeds/$target" \
      -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    status=CRASH
    failed=1
    mkdir -p "tests/fuzz_regressions/$target"
    for artifact in "$artifacts"/*; do
      [ -e "$artifact" ] || continue
      cp "$artifact" "tests/fuzz_regressions/$target/"
      echo "  kept $(basename "$artifact") in tests/fuzz_regressions/$target/" >&2
    done
    grep -E "panicked|ERROR|SUMMARY" "$log" | head -n 5 >&2 || true
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
  printf '%-12s %12s %8s  %s\n' "$target" "${runs:-?}" "$seconds" "$status"
  rm -f "$log"
done
exit "$failed"
