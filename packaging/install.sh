#!/bin/sh
# Installs sc-agent: the static binary, its config and its systemd unit.
# POSIX sh; runs on Debian/Ubuntu (dash, coreutils) and Alpine (busybox).
#
#   install.sh --binary PATH [--sha256 HEX] [--config PATH] [--root DIR] [--no-start]
#
# It is idempotent: a second run with the same inputs changes nothing (file
# mtimes included) and says so. Everything is checked before anything is
# written: the binary's SHA-256, that it runs here, the config (sc-agent
# --check-config) and the unit (systemd-analyze verify, where installed).
set -eu

PROG=install.sh
USER_NAME=sc-agent
BIN_PATH=/usr/local/bin/sc-agent
CONFIG_DIR=/etc/sc-agent
CONFIG_PATH=$CONFIG_DIR/sc-agent.yaml
ENV_PATH=$CONFIG_DIR/sc-agent.env
UNIT_PATH=/etc/systemd/system/sc-agent.service
# The example config's endpoint host: a config still naming it is not started.
PLACEHOLDER=example.invalid

usage() {
  cat <<EOF
Usage: $PROG --binary PATH [--sha256 HEX] [--config PATH] [--root DIR] [--no-start]

Installs sc-agent:
  the binary  to <root>$BIN_PATH (replaced only when its content differs)
  the config  to <root>$CONFIG_PATH, mode 0640 root:$USER_NAME
              (only if absent; --config replaces it, after --check-config)
  the unit    to <root>$UNIT_PATH
creates the system user $USER_NAME (when <root> is /), and with systemd running
as PID 1 enables and starts the service (or reloads/restarts it on a change).

Options:
  --binary PATH   the sc-agent binary to install (required)
  --sha256 HEX    its expected SHA-256; default: its line in SHA256SUMS next to it
  --config PATH   install this config, replacing the current one
  --root DIR      install under DIR instead of / (no user, no systemctl)
  --no-start      install only; do not run systemctl
  -h, --help      this help

Exit codes: 0 installed (or nothing to change), 1 refused or failed, 2 bad usage.
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s\n\n' "$PROG" "$*" >&2
  usage >&2
  exit 2
}

# --- arguments ------------------------------------------------------------------
binary=
sha256=
config=
root=/
start=yes
while [ "$#" -gt 0 ]; do
  case "$1" in
    --binary | --sha256 | --config | --root)
      if [ "$#" -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
      case "$1" in
        --binary) binary=$2 ;;
        --sha256) sha256=$2 ;;
        --config) config=$2 ;;
        --root) root=$2 ;;
      esac
      shift 2
      ;;
    --no-start) start=no; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
done
[ -n "$binary" ] || usage_error "--binary PATH is required"

# --- where things are -----------------------------------------------------------
script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
unit_src=$script_dir/sc-agent.service
example_src=$script_dir/sc-agent.yaml

[ -d "$root" ] || die "--root $root: no such directory"
root=$(CDPATH='' cd -- "$root" && pwd)
if [ "$root" = / ]; then
  prefix=
else
  prefix=$root
fi

[ -f "$binary" ] || die "--binary $binary: no such file"
[ -r "$binary" ] || die "--binary $binary: not readable"
binary_dir=$(CDPATH='' cd -- "$(dirname -- "$binary")" && pwd)
binary=$binary_dir/$(basename -- "$binary")
[ -f "$unit_src" ] || die "the unit $unit_src is missing (it ships next to $PROG)"
if [ -n "$config" ]; then
  [ -f "$config" ] || die "--config $config: no such file"
  [ -r "$config" ] || die "--config $config: not readable"
fi

is_root=no
[ "$(id -u)" -eq 0 ] && is_root=yes
if [ "$is_root" = no ] && [ -z "$prefix" ]; then
  die "installing into / needs root (run it with sudo, or use --root DIR)"
fi

command -v sha256sum >/dev/null 2>&1 || die "sha256sum is not installed (coreutils or busybox provide it)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sc-agent-install.XXXXXX")
staged=
cleanup() {
  [ -z "$staged" ] || rm -f "$staged"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

file_sha256() {
  sha256sum <"$1" | awk '{ print $1 }'
}

# The SHA-256 that SHA256SUMS ($1) lists for the file name $2, or nothing.
listed_sha256() {
  awk -v name="$2" '{ file = $2; sub(/^\*/, "", file); if (file == name) { print tolower($1); exit } }' "$1"
}

# --- checks: nothing is written before all of them pass ---------------------------
sums=$binary_dir/SHA256SUMS
if [ -n "$sha256" ]; then
  case "$sha256" in
    *[!0-9a-fA-F]*) die "--sha256 $sha256: expected 64 hexadecimal digits" ;;
  esac
  [ "${#sha256}" -eq 64 ] || die "--sha256 $sha256: expected 64 hexadecimal digits, got ${#sha256}"
  expected=$(printf '%s' "$sha256" | tr 'A-F' 'a-f')
  checksum_from="--sha256"
elif [ -f "$sums" ]; then
  expected=$(listed_sha256 "$sums" "$(basename -- "$binary")")
  [ -n "$expected" ] || die "$sums has no line for $(basename -- "$binary"); pass --sha256 HEX"
  checksum_from=$sums
else
  die "no checksum to verify $binary against: pass --sha256 HEX or put SHA256SUMS next to the binary"
fi
actual=$(file_sha256 "$binary")
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $binary: expected $expected (from $checksum_from), got $actual; refusing to install (download it again)"
fi
say "checksum ok: $binary ($actual)"

# The files shipped beside the binary in the release tarball are in SHA256SUMS too.
if [ -z "$sha256" ] && [ "$script_dir" = "$binary_dir" ]; then
  for shipped in "$unit_src" "$example_src"; do
    listed=$(listed_sha256 "$sums" "$(basename -- "$shipped")")
    if [ -z "$listed" ] || [ ! -f "$shipped" ]; then continue; fi
    [ "$(file_sha256 "$shipped")" = "$listed" ] \
      || die "checksum mismatch for $shipped (listed in $sums); refusing to install"
  done
fi

version=$("$binary" --version 2>&1) \
  || die "$binary does not run on this machine ($(uname -m)): $version"
say "binary: $version"

# Validates a config with the new binary in the environment the service will
# have: none of this shell's variables, plus the unit's EnvironmentFile
# ($ENV_PATH: NAME=value lines, # comments, optionally quoted values), which may
# hold SC_* overrides and secrets the config relies on.
check_config() {
  (
    file=$1
    what=$2
    set --
    if [ -f "$prefix$ENV_PATH" ]; then
      while IFS= read -r line || [ -n "$line" ]; do
        line=${line#"${line%%[![:space:]]*}"}
        case "$line" in
          '' | '#'* | ';'*) continue ;;
        esac
        name=${line%%=*}
        value=${line#*=}
        case "$name" in
          "$line" | '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;;
        esac
        case "$value" in
          \"*\") value=${value#\"}; value=${value%\"} ;;
          \'*\') value=${value#\'}; value=${value%\'} ;;
        esac
        set -- "$@" "$name=$value"
      done <"$prefix$ENV_PATH"
    fi
    if ! out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" "$binary" --check-config --config "$file" 2>&1); then
      die "$what is not valid for $version: $out"
    fi
  )
}
config_dst=$prefix$CONFIG_PATH
if [ -n "$config" ]; then
  check_config "$config" "--config $config"
  config_src=$config
elif [ -f "$config_dst" ]; then
  # An upgrade must not leave the agent with a config it rejects.
  check_config "$config_dst" "the installed config $config_dst"
  config_src=
else
  [ -f "$example_src" ] || die "no config: $config_dst is absent and the example $example_src is missing; pass --config PATH"
  check_config "$example_src" "the example config $example_src"
  config_src=$example_src
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  # Verify a copy whose ExecStart points at the binary being installed, so the
  # check neither depends on nor touches what is installed now.
  mkdir "$tmp/bin" "$tmp/unit"
  ln -s "$binary" "$tmp/bin/sc-agent"
  sed "s#$BIN_PATH#$tmp/bin/sc-agent#g" "$unit_src" >"$tmp/unit/sc-agent.service"
  if ! out=$(systemd-analyze verify --man=no "$tmp/unit/sc-agent.service" 2>&1); then
    die "systemd-analyze verify rejects $unit_src: $out"
  fi
  case "$out" in
    *sc-agent.service*) die "systemd-analyze verify warns about $unit_src: $out" ;;
  esac
  say "unit ok: systemd-analyze verify $unit_src"
else
  say "systemd-analyze not found: the unit was not verified"
fi

# --- the user -------------------------------------------------------------------
group_gid() {
  [ -f "$prefix/etc/group" ] || return 0
  awk -F: -v name="$USER_NAME" '$1 == name { print $3; exit }' "$prefix/etc/group"
}

changed=
note_change() { changed="$changed${changed:+, }$1"; }

if [ -z "$prefix" ]; then
  if ! grep -q "^$USER_NAME:" /etc/group 2>/dev/null; then
    if command -v groupadd >/dev/null 2>&1; then
      groupadd --system "$USER_NAME"
    elif command -v addgroup >/dev/null 2>&1; then
      addgroup -S "$USER_NAME"
    else
      die "cannot create the group $USER_NAME: neither groupadd nor addgroup is installed"
    fi
    note_change "group $USER_NAME"
  fi
  if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    [ -x "$nologin" ] || nologin=/bin/false
    if command -v useradd >/dev/null 2>&1; then
      useradd --system --gid "$USER_NAME" --no-create-home --home-dir /nonexistent \
        --shell "$nologin" --comment "sc-agent metrics agent" "$USER_NAME"
    elif command -v adduser >/dev/null 2>&1; then
      adduser -S -D -H -h /nonexistent -s "$nologin" -G "$USER_NAME" \
        -g "sc-agent metrics agent" "$USER_NAME"
    else
      die "cannot create the user $USER_NAME: neither useradd nor adduser is installed"
    fi
    note_change "user $USER_NAME"
  fi
else
  say "--root $root: not creating the user $USER_NAME (create it in the image)"
fi
gid=$(group_gid)
if [ -z "$gid" ]; then
  warn "no group $USER_NAME in $prefix/etc/group: the config stays root:root 0640; run 'chgrp $USER_NAME $CONFIG_PATH' once the group exists"
  gid=0
fi

# --- the files ------------------------------------------------------------------
# Copies $1 to $2 with mode $3 and group $4 through a temporary file in the same
# directory, then renames it: readers (and a running binary) never see a partial file.
put_file() {
  staged=$(dirname -- "$2")/.$(basename -- "$2").new.$$
  cp "$1" "$staged"
  chmod "$3" "$staged"
  if [ "$is_root" = yes ]; then
    chown "0:$4" "$staged"
  fi
  mv -f "$staged" "$2"
  staged=
}

make_dir() {
  [ -d "$1" ] && return 0
  mkdir -p "$1"
  chmod 0755 "$1"
}

make_dir "$prefix/usr/local/bin"
make_dir "$prefix$CONFIG_DIR"
make_dir "$prefix/etc/systemd/system"

bin_dst=$prefix$BIN_PATH
if [ -f "$bin_dst" ] && cmp -s "$binary" "$bin_dst"; then
  bin_changed=no
else
  put_file "$binary" "$bin_dst" 0755 0
  bin_changed=yes
  note_change "binary $bin_dst"
fi

config_changed=no
if [ -n "$config_src" ] && ! { [ -f "$config_dst" ] && cmp -s "$config_src" "$config_dst"; }; then
  put_file "$config_src" "$config_dst" 0640 "$gid"
  config_changed=yes
  note_change "config $config_dst"
elif [ -z "$config" ]; then
  say "keeping the existing config $config_dst (pass --config PATH to replace it)"
fi
# The agent reads the config as $USER_NAME: say so when it cannot.
if [ "$is_root" = yes ] && [ "$gid" != 0 ]; then
  perms=$(stat -c '%g %a' "$config_dst")
  case "$perms" in
    "$gid "?[4-7]? | *[4-7]) ;;
    *) warn "$config_dst (gid and mode: $perms) is not readable by the group $USER_NAME: run 'chgrp $USER_NAME $CONFIG_PATH && chmod 0640 $CONFIG_PATH'" ;;
  esac
fi

unit_dst=$prefix$UNIT_PATH
if [ -f "$unit_dst" ] && cmp -s "$unit_src" "$unit_dst"; then
  unit_changed=no
else
  put_file "$unit_src" "$unit_dst" 0644 0
  unit_changed=yes
  note_change "unit $unit_dst"
fi

if [ -n "$changed" ]; then
  say "installed: $changed"
else
  say "nothing changed: binary, config and unit are already up to date"
fi

# --- the service ----------------------------------------------------------------
placeholder=no
if grep -v '^[[:space:]]*#' "$config_dst" | grep -q "$PLACEHOLDER"; then
  if ! grep -q '^[[:space:]]*SC_INGESTOR_ENDPOINT=' "$prefix$ENV_PATH" 2>/dev/null; then
    placeholder=yes
  fi
fi

how_to_start() {
  say "not starting sc-agent: $1. To start it:"
  if [ "$placeholder" = yes ]; then
    echo "  edit $CONFIG_PATH: set ingestor_endpoint (it names the placeholder $PLACEHOLDER)"
  fi
  if [ -n "$prefix" ]; then
    echo "  in the image: systemctl --root=$root enable sc-agent"
  else
    echo "  with systemd: systemctl daemon-reload && systemctl enable --now sc-agent"
    echo "  without:      su -s /bin/sh $USER_NAME -c '$BIN_PATH --config $CONFIG_PATH'"
  fi
}

if [ -n "$prefix" ]; then
  how_to_start "installed under --root $root"
elif [ "$start" = no ]; then
  how_to_start "--no-start"
elif [ ! -d /run/systemd/system ]; then
  how_to_start "systemd is not running as PID 1"
else
  enabled=no
  systemctl is-enabled --quiet sc-agent && enabled=yes
  # A unit systemd has not loaded yet (first install, or one made with
  # --no-start) or a changed one needs a reload of systemd's view first.
  if [ "$unit_changed" = yes ] || [ "$enabled" = no ]; then
    systemctl daemon-reload
  fi
  if [ "$placeholder" = yes ]; then
    how_to_start "the config still names the placeholder endpoint"
  elif [ "$enabled" = no ]; then
    systemctl enable --now sc-agent
    say "enabled and started sc-agent (journalctl -u sc-agent shows its log)"
  elif systemctl is-active --quiet sc-agent; then
    if [ "$bin_changed" = yes ] || [ "$unit_changed" = yes ]; then
      systemctl restart sc-agent
      say "restarted sc-agent (new binary or unit)"
    elif [ "$config_changed" = yes ]; then
      systemctl reload sc-agent
      say "reloaded sc-agent (new config)"
    else
      say "sc-agent is running"
    fi
  elif [ -n "$changed" ]; then
    systemctl start sc-agent
    say "started sc-agent"
  else
    say "sc-agent is enabled but not running: systemctl start sc-agent"
  fi
fi
