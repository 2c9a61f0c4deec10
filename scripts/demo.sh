#!/usr/bin/env bash
# The README's first command: a local end-to-end run of what the project does today, on a fresh
# machine, with nothing to configure. It builds the single executable and lets a real go-plugin
# host (built from Debian's hashicorp/go-plugin, launched the way Velero launches plugins) discover
# and call it, printing every check as it goes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/test-deps.sh node go sea
export PATH=$ROOT/.cache/node/bin:$PATH
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
bash scripts/build-go.sh
echo "== Velero's view of dist/velero-plugin-victoria (go-plugin host, Velero handshake and flags) =="
exec .cache/go-build/bin/velero-host -- dist/velero-plugin-victoria \
  --features=EnableCSI --uploader-type=kopia --log-level=info
