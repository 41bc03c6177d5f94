#!/bin/sh
# Makes the release tarball that install.sh, cloud-init and the container image use:
#
#   target/dist/sc-agent-<version>-x86_64-linux-musl.tar.gz         the tarball
#   target/dist/sc-agent-<version>-x86_64-linux-musl.tar.gz.sha256  its SHA-256 (sha256sum -c)
#
# The tarball holds one directory, sc-agent-<version>-x86_64-linux-musl/, with
# sc-agent (the static binary), SHA256SUMS (of every other file), install.sh,
# sc-agent.service, sc-agent.yaml (the example config), container-host.yaml (the
# collector preset for container hosts) and Dockerfile (whose
# build context is that directory). It is reproducible: sorted entries, owner
# root, mtimes from SOURCE_DATE_EPOCH (default: the last commit's time).
#
#   packaging/package.sh [--binary PATH] [--out DIR]
#
# --binary packages a binary built elsewhere instead of running
# scripts/build-static.sh (the tests use it); --out writes elsewhere than
# target/dist. Prints the tarball's path on the last line of stdout.
set -eu

PROG=package.sh
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

binary=
out=
while [ "$#" -gt 0 ]; do
  case "$1" in
    --binary | --out)
      if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
      case "$1" in
        --binary) binary=$2 ;;
        --out) out=$2 ;;
      esac
      shift 2
      ;;
    -h | --help)
      sed -n '2,17s/^# \{0,1\}//p' "$0"
      exit 0
      ;;
    *) die "unknown argument: $1 (usage: $PROG [--binary PATH] [--out DIR])" ;;
  esac
done

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
packaging=$repo/packaging

if [ -z "$binary" ]; then
  binary=$repo/$("$repo/scripts/build-static.sh" | tail -n 1)
fi
[ -f "$binary" ] || die "no binary at $binary"
if [ -z "$out" ]; then
  out=$repo/target/dist
fi
mkdir -p "$out"
out=$(CDPATH='' cd -- "$out" && pwd)

version=$("$binary" --version | awk '$1 == "sc-agent" { print $2 }')
[ -n "$version" ] || die "$binary --version did not print 'sc-agent <version>'"
name=sc-agent-$version-x86_64-linux-musl

for tool in sha256sum tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is needed (for --sort and --mtime)"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/sc-agent-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
trap 'exit 1' HUP INT TERM
dir=$stage/$name
mkdir "$dir"
chmod 0755 "$dir"
cp "$binary" "$dir/sc-agent"
cp "$packaging/install.sh" "$packaging/sc-agent.service" "$packaging/sc-agent.yaml" \
  "$packaging/container-host.yaml" "$packaging/Dockerfile" "$dir/"
chmod 0755 "$dir/sc-agent" "$dir/install.sh"
chmod 0644 "$dir/sc-agent.service" "$dir/sc-agent.yaml" "$dir/container-host.yaml" "$dir/Dockerfile"
(cd "$dir" && sha256sum sc-agent install.sh sc-agent.service sc-agent.yaml container-host.yaml \
  Dockerfile >SHA256SUMS)
chmod 0644 "$dir/SHA256SUMS"

tarball=$out/$name.tar.gz
tar --sort=name --format=ustar --mtime="@$SOURCE_DATE_EPOCH" \
  --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$name" \
  | gzip -9n >"$tarball.tmp"
mv -f "$tarball.tmp" "$tarball"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")

printf '%s: %s (%s bytes)\n' "$PROG" "$tarball" "$(wc -c <"$tarball" | tr -d ' ')" >&2
sed 's/^/  /' "$dir/SHA256SUMS" >&2
printf '%s\n' "$tarball"
