#!/usr/bin/env bash
# Builds the Go side of the test tooling, offline, from the Debian toolchain that
# `scripts/test-deps.sh go` extracts (Go 1.23, go-plugin 1.0.1, grpc 1.33, protoc):
#
#   .cache/go-build/bin/velero-host       plays the Velero server against a plugin executable
#   .cache/go-build/bin/go-anchor-plugin  minimal Go plugin, the startup benchmark anchor
#   .cache/go-build/bin/victorialogs-server  VictoriaLogs test server (test/victorialogs-server) on the
#                                         real lib/logstorage that sid's VictoriaMetrics vendors;
#                                         built with sid's Go 1.27 (`test-deps.sh gosid vlogs`),
#                                         because that library needs Go >= 1.24
#
# Debian ships the Go libraries as GOPATH sources, not modules, so everything is built in GOPATH
# mode from a private tree under .cache/go-build/gopath: generated stubs (never committed) plus
# symlinks to the sources in test/velero-host and bench/startup/go-anchor. Idempotent: when no
# input changed since the last successful build, nothing is rebuilt. Prints nothing on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/.cache/go-build
GOPATH_DIR=$OUT/gopath
BIN=$OUT/bin
R=$ROOT/.cache/go-root

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9 # concurrent test runs would otherwise swap the generated tree under each other

"$ROOT/scripts/test-deps.sh" go vlogs gosid >/dev/null

export PATH=$R/usr/lib/go-1.23/bin:$R/usr/bin:$PATH
export GO111MODULE=off GOPATH=$GOPATH_DIR:$R/usr/share/gocode GOPROXY=off GOTOOLCHAIN=local
export GOFLAGS= GOSUMDB=off GOCACHE=$OUT/cache CGO_ENABLED=0

# Every input that can change a binary: protos, Go sources, this script, the toolchain marker.
inputs_hash() {
  (cd "$ROOT" && find proto test/velero-host bench/startup/go-anchor test/victorialogs-server -type f \
      \( -name '*.proto' -o -name '*.go' \) -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
   sha256sum "$ROOT/scripts/build-go.sh"
   ls -l --time-style=+%s "$R/.complete" "$ROOT/.cache/go-sid/.complete" "$ROOT/.cache/vlogs-root/.complete") |
    sha256sum | cut -d' ' -f1
}
hash=$(inputs_hash)
if [ -x "$BIN/velero-host" ] && [ -x "$BIN/go-anchor-plugin" ] && [ -x "$BIN/victorialogs-server" ] && [ -f "$OUT/stamp" ] &&
   [ "$(cat "$OUT/stamp")" = "$hash" ]; then
  exit 0
fi
rm -f "$OUT/stamp"
mkdir -p "$GOPATH_DIR/src" "$BIN"

# Go import paths of the generated packages. The two `package v2` protos (BIA v2, RIA v2) must
# become separate Go packages; `generated` holds Shared/PluginLister/DeleteItemAction.
GEN=velerogen
declare -A MAP=(
  [Shared.proto]=$GEN/generated
  [PluginLister.proto]=$GEN/generated
  [DeleteItemAction.proto]=$GEN/generated
  [backupitemaction/v2/BackupItemAction.proto]=$GEN/biav2
  [restoreitemaction/v2/RestoreItemAction.proto]=$GEN/riav2
)
go_opts=() grpc_opts=()
for f in "${!MAP[@]}"; do
  go_opts+=("--go_opt=M$f=${MAP[$f]}")
  grpc_opts+=("--go-grpc_opt=M$f=${MAP[$f]}")
done

# Generate into a scratch dir and swap it in, so a failed run never leaves half a package.
tmp=$(mktemp -d "$OUT/gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu protoc -I "$ROOT/proto" -I "$R/usr/include" \
  --go_out="$tmp" "${go_opts[@]}" --go-grpc_out="$tmp" "${grpc_opts[@]}" "${!MAP[@]}"
rm -rf "${GOPATH_DIR:?}/src/$GEN"
mv "$tmp/$GEN" "$GOPATH_DIR/src/$GEN"

ln -sfn "$ROOT/test/velero-host" "$GOPATH_DIR/src/velerohost"
ln -sfn "$ROOT/bench/startup/go-anchor" "$GOPATH_DIR/src/goanchor"

# CGO_ENABLED=0 makes both binaries static, like Velero's own plugin images.
(cd "$GOPATH_DIR/src" && go vet velerohost goanchor >&2 &&
  go build -trimpath -o "$BIN/velero-host" velerohost &&
  go build -trimpath -o "$BIN/go-anchor-plugin" goanchor) >&2

# The VictoriaLogs test server. GOPATH-mode vendoring applies only to packages inside the tree that
# holds vendor/, so the server must live inside github.com/VictoriaMetrics/VictoriaMetrics. Rather
# than writing into the extracted Debian tree, a private overlay of that tree (symlinks to its lib/,
# vendor/ and go.mod, plus app/victorialogs-server -> test/victorialogs-server) comes first on
# GOPATH; everything else resolves from the extracted root.
VL=$ROOT/.cache/vlogs-root/usr/share/gocode
VLGOPATH=$OUT/vlgopath
VMTREE=$VLGOPATH/src/github.com/VictoriaMetrics/VictoriaMetrics
mkdir -p "$VMTREE/app"
for d in lib vendor go.mod; do ln -sfn "$VL/src/github.com/VictoriaMetrics/VictoriaMetrics/$d" "$VMTREE/$d"; done
ln -sfn "$ROOT/test/victorialogs-server" "$VMTREE/app/victorialogs-server"
(export PATH=$ROOT/.cache/go-sid/usr/lib/go-1.27/bin:$PATH GOPATH=$VLGOPATH:$VL GOROOT=$ROOT/.cache/go-sid/usr/lib/go-1.27
 cd "$VMTREE" && go vet ./app/victorialogs-server &&
   go build -trimpath -o "$BIN/victorialogs-server" ./app/victorialogs-server) >&2

echo "$hash" > "$OUT/stamp"
