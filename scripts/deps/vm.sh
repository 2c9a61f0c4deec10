# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# VictoriaMetrics single node with vmbackup and vmrestore, in the two versions Debian ships (and
# 1.145's vmalert-tool, which unit-tests schedules/alerts.yaml):
#   .cache/vm145  1.145 (sid): the current snapshot layout (per-month indexdb, parts.json), 500 on
#                 deleting a missing snapshot, 401 on a wrong -snapshotAuthKey.
#   .cache/vm179  1.79.5 (bookworm): the legacy layout, 200 on deleting a missing snapshot, 400 on
#                 a wrong key.
# Both are only unpacked (dpkg -x), never installed: sid's package Depends on libzstd1 >= 1.5.5,
# bookworm has 1.5.4, and the extracted binary runs with it.
dep_vm() {
  local v dest suite
  for v in 145 179; do
    dest=$CACHE/vm$v
    [ "$v" = 145 ] && suite=sid || suite=bookworm
    if [ ! -e "$dest/.complete" ]; then
      rm -rf "$dest"
      fetch_debs "$suite" "$dest" victoria-metrics
      # Fail here, not in a test, if a binary cannot start on this host (e.g. a missing libzstd).
      local b
      for b in victoria-metrics vmbackup vmrestore; do
        "$dest/usr/bin/$b" -version >/dev/null || { log "$dest/usr/bin/$b does not run"; return 1; }
      done
      if [ "$v" = 145 ]; then
        "$dest/usr/bin/vmalert-tool" --help >/dev/null 2>&1 || { log "$dest/usr/bin/vmalert-tool does not run"; return 1; }
      fi
      touch "$dest/.complete"
    fi
  done
}
