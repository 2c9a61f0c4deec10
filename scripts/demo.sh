#!/usr/bin/env bash
# The README's first command: on a fresh machine, installs the real components (Node 22, the
# VictoriaMetrics and VictoriaLogs servers) into .cache/, builds the single executable, and runs
# its `demo`: back up a live VictoriaMetrics and VictoriaLogs to file://, restore them into new
# directories, start the databases on the restored data and compare counts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Only what the demo uses: Node, the executable's build inputs, VictoriaMetrics (build-go.sh adds
# the Go toolchains for the VictoriaLogs test server); the test suites' components are not needed.
bash scripts/test-deps.sh node sea vm
export PATH=$ROOT/.cache/node/bin:$PATH
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
bash scripts/build-go.sh
exec dist/velero-plugin-victoria demo --components "$ROOT/.cache"
