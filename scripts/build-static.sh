#!/usr/bin/env bash
# Builds the static x86_64-unknown-linux-musl release binary, checks that it is
# statically linked, and prints its size.
#
#   scripts/build-static.sh [cargo build args...]   e.g. --no-default-features
#
# Prints the binary's path on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  echo "installing the rustup target $TARGET" >&2
  rustup target add "$TARGET" >&2
fi
need=()
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
command -v file >/dev/null 2>&1 || need+=(file)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# Each feature set gets its own target dir so TLS and no-TLS builds do not evict
# each other's artifacts.
suffix=$(printf '%s' "$*" | tr -c 'a-zA-Z0-9' '-')
target_dir="target/static${suffix:+-$suffix}"
CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build --release --locked --target "$TARGET" --target-dir "$target_dir" "$@" >&2

bin="$target_dir/$TARGET/release/sc-agent"
description=$(file -b "$bin")
case "$description" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) echo "error: $bin is not statically linked: $description" >&2; exit 1 ;;
esac
ldd_says=$(ldd "$bin" 2>&1 || true)
case "$ldd_says" in
  *"statically linked"* | *"not a dynamic executable"*) ;;
  *) echo "error: ldd finds dynamic dependencies in $bin: $ldd_says" >&2; exit 1 ;;
esac
size=$(stat -c %s "$bin")
echo "static binary: $bin ($description)" >&2
awk -v s="$size" 'BEGIN { printf "size: %d bytes (%.2f MiB)\n", s, s / 1048576 }' >&2
echo "$bin"
