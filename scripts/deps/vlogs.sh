# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# Sources for the VictoriaLogs test server (test/victorialogs-server), as a GOPATH root in
# .cache/vlogs-root/usr/share/gocode. No VictoriaLogs binary exists in Debian or npm, but sid's
# VictoriaMetrics -dev package vendors the real VictoriaLogs storage (lib/logstorage). Its Depends
# are incomplete for that library, so the packages it imports are listed here too.
# Built by scripts/build-go.sh with the sid Go (component gosid).
VLOGS_PKGS=(golang-github-victoriametrics-victoriametrics-dev
  golang-github-victoriametrics-metrics-dev golang-github-victoriametrics-metricsql-dev
  golang-github-valyala-fastjson-dev golang-github-valyala-fastrand-dev golang-github-valyala-quicktemplate-dev
  golang-github-valyala-histogram-dev golang-github-valyala-bytebufferpool-dev
  golang-github-cespare-xxhash-v2-dev golang-github-klauspost-compress-dev golang-golang-x-sys-dev)

dep_vlogs() {
  local dest=$CACHE/vlogs-root
  if [ ! -e "$dest/.complete" ]; then
    rm -rf "$dest"
    fetch_debs sid "$dest" "${VLOGS_PKGS[@]}"
    [ -d "$dest/usr/share/gocode/src/github.com/VictoriaMetrics/VictoriaMetrics/vendor/github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage" ] ||
      { log "vlogs: lib/logstorage is not vendored in golang-github-victoriametrics-victoriametrics-dev"; return 1; }
    touch "$dest/.complete"
  fi
}
