#!/usr/bin/env bash
# Installs or extracts every real component the tests and the build need, idempotently, into
# .cache/ (git-ignored). Nothing is installed system-wide: Debian packages are downloaded with
# their own apt state per suite and unpacked with `dpkg -x`, so bookworm, bookworm-backports and
# sid can be mixed without touching the host's package database.
#
#   scripts/test-deps.sh            # everything
#   scripts/test-deps.sh node go    # only the named components
#
# Components: one file each in scripts/deps/<name>.sh defining dep_<name> (what each one is
# and why is said there). They use fetch_debs/apt_state below.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TEST_DEPS_CACHE:-$ROOT/.cache}
ARCH=$(dpkg --print-architecture)
NODE_VERSION=22.23.3
mkdir -p "$CACHE"

log() { printf '[test-deps] %s\n' "$*" >&2; }

# The Node build, the executable's loader and the Go tools' library path are the amd64 ones; the
# image (Dockerfile) builds for other architectures, this set-up does not.
if [ "$ARCH" != amd64 ]; then
  log "this set-up runs on amd64 (x86_64) only, this machine is $ARCH: use an amd64 machine, or build the image (Dockerfile) for $ARCH"
  exit 1
fi

# apt_for SUITE_NAME 'deb line' ... : prints apt options that use a private state for those sources.
apt_state() {
  local name=$1; shift
  local dir=$CACHE/apt/$name
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  printf '%s\n' "$@" > "$dir/sources.list"
  : > "$dir/status"   # an empty package database: candidates come from these sources, not the host
  APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$dir/lists" -o "Dir::State::status=$dir/status" -o "Dir::Cache::Archives=$dir/archives"
            -o Acquire::Retries=3 -o APT::Sandbox::User=root)
  if [ ! -e "$dir/updated" ]; then
    log "apt-get update ($name)"
    apt-get "${APT_OPTS[@]}" update -qq >&2
    touch "$dir/updated"
  fi
}
APT_BOOKWORM=('deb http://deb.debian.org/debian bookworm main' 'deb http://deb.debian.org/debian bookworm-backports main')
APT_SID=('deb http://deb.debian.org/debian sid main')
# The libstdc++/libgcc_s shipped beside the executable come from bullseye: bookworm's libstdc++
# needs GLIBC_2.36 (arc4random), and Velero v1.17.1 and older run on Ubuntu jammy's glibc 2.35.
APT_BULLSEYE=('deb http://deb.debian.org/debian bullseye main')

# fetch_debs SUITE DESTDIR PKG... : download the packages (once) and unpack them into DESTDIR.
fetch_debs() {
  local suite=$1 dest=$2; shift 2
  local debs=$CACHE/debs/$suite
  mkdir -p "$debs" "$dest"
  case $suite in
    sid) apt_state sid "${APT_SID[@]}" ;;
    bullseye) apt_state bullseye "${APT_BULLSEYE[@]}" ;;
    *) apt_state bookworm "${APT_BOOKWORM[@]}" ;;
  esac
  local missing=()
  for p in "$@"; do
    local base=${p%%/*}; base=${base%%=*}
    compgen -G "$debs/${base}_*.deb" > /dev/null || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "downloading (${suite}): ${missing[*]}"
    (cd "$debs" && apt-get "${APT_OPTS[@]}" download -qq "${missing[@]}" >&2)
  fi
  for p in "$@"; do
    local base=${p%%/*}; base=${base%%=*}
    for f in "$debs/${base}"_*.deb; do dpkg -x "$f" "$dest"; done
  done
}

for f in "$ROOT"/scripts/deps/*.sh; do
  # shellcheck source=/dev/null
  . "$f"
done
KNOWN=$(cd "$ROOT/scripts/deps" && ls ./*.sh | sed 's|^\./||; s|\.sh$||' | tr '\n' ' ')

components=("$@")
[ ${#components[@]} -eq 0 ] && read -r -a components <<< "$KNOWN"
for c in "${components[@]}"; do
  if [ -f "$ROOT/scripts/deps/$c.sh" ]; then "dep_$c"; else echo "test-deps: unknown component '$c' (known: $KNOWN)" >&2; exit 2; fi
done
log "ready: ${components[*]}"
