# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# Go 1.27 from sid, extracted only (sid's golang-go would upgrade libc6; the go binary is static and
# runs on bookworm). It builds the VictoriaLogs test server: the VictoriaLogs library that sid's
# VictoriaMetrics 1.145 vendors, and its klauspost/compress, need Go >= 1.24 (package `weak`), so
# bookworm-backports' Go 1.23 (component `go`) cannot compile it.
dep_gosid() {
  local dest=$CACHE/go-sid
  if [ ! -x "$dest/usr/lib/go-1.27/bin/go" ] || [ ! -e "$dest/.complete" ]; then
    fetch_debs sid "$dest" golang-1.27-go golang-1.27-src
    "$dest/usr/lib/go-1.27/bin/go" version >/dev/null
    touch "$dest/.complete"
  fi
}
