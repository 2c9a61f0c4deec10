#!/usr/bin/env bash
# The test command (README.md): installs what the tests need, builds the single executable and
# the Go Velero host, then runs every test. With REQUIRE_INTEGRATION=1 (CI) an integration test
# whose real component cannot start fails instead of skipping.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# With REQUIRE_INTEGRATION=1 (CI) every integration test must run: what they take from the
# machine itself (Debian 12: binutils, openssl, util-linux, mount, coreutils' chroot and its Python
# 3.11, which the extracted moto needs) and root (PID and mount namespaces, mounts, chroot, other
# users' files) are checked first, so that a missing one is named now, not as a test failing later.
if [ "${REQUIRE_INTEGRATION:-}" = 1 ]; then
  missing=()
  for tool in objdump openssl setpriv flock unshare mount chroot /usr/bin/python3; do
    PATH=$PATH:/usr/sbin:/sbin command -v "$tool" > /dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: this machine lacks ${missing[*]} (Debian 12: apt-get install binutils openssl util-linux mount coreutils python3)" >&2
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: with REQUIRE_INTEGRATION=1 the integration tests run as root (namespaces, mounts, chroot, files of other users)" >&2
    exit 1
  fi
fi
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
