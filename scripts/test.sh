#!/usr/bin/env bash
# The test command (README.md): installs what the tests need, builds the single executable and
# the Go Velero host, then runs every test. With REQUIRE_INTEGRATION=1 (CI) an integration test
# whose real component cannot start fails instead of skipping.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/test-deps.sh
export PATH=$ROOT/.cache/node/bin:$PATH
npm ci --no-audit --no-fund --loglevel=error
npm run --silent typecheck
npm run --silent build
bash scripts/build-go.sh
# The tests give every tool moto's credentials themselves; the runner's own (AWS_PROFILE, a session
# token, a role to assume) would be picked up by the SDK's default chain and sent to moto.
for v in "${!AWS_@}"; do unset "$v"; done
exec node_modules/.bin/mocha "$@"
