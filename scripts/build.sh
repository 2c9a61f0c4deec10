#!/usr/bin/env bash
# Builds the single executable dist/velero-plugin-victoria plus dist/lib/ (see docs/packaging.md):
#   1. esbuild bundles src/main.ts and its dependencies into one CommonJS file (a SEA main must be one);
#   2. Node's single-executable-application blob is made from it, with a V8 code cache for fast
#      start-up and the proto/ files as assets;
#   3. a copy of the official Node 22 binary gets RPATH $ORIGIN/lib (patchelf 0.18: 0.14 corrupts
#      SEA binaries) and the blob injected (postject);
#   4. libstdc++.so.6 and libgcc_s.so.1 go to dist/lib/ as 0644 files: Velero images before v1.17.2
#      lack them, and Velero executes every file with an exec bit under /plugins.
#
# Inputs can be overridden (the Dockerfile does): SEA_NODE (the Node binary to embed into),
# PATCHELF (a patchelf >= 0.18 command), SEA_LIBDIR (directory holding the two libraries).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CACHE=$ROOT/.cache
OUT=$ROOT/dist
WORK=$OUT/bundle
NAME=velero-plugin-victoria
TRIPLET=$(uname -m)-linux-gnu

if [ -z "${SEA_NODE:-}" ] || [ -z "${PATCHELF:-}" ] || [ -z "${SEA_LIBDIR:-}" ]; then
  bash scripts/test-deps.sh node sea
fi
SEA_NODE=${SEA_NODE:-$CACHE/node/bin/node}
if [ -n "${PATCHELF:-}" ]; then
  read -r -a patchelf <<< "$PATCHELF"
else
  # sid's patchelf 0.18 needs sid's glibc: run it through sid's dynamic loader.
  sidlib=$CACHE/sea/sid/usr/lib/$TRIPLET
  patchelf=("$sidlib/ld-linux-x86-64.so.2" --library-path "$sidlib:/usr/lib/$TRIPLET" "$CACHE/sea/sid/usr/bin/patchelf")
fi
if [ -z "${SEA_LIBDIR:-}" ]; then
  libstdcxx=$CACHE/sea/libs/usr/lib/$TRIPLET/libstdc++.so.6
  libgcc=$CACHE/sea/libs/lib/$TRIPLET/libgcc_s.so.1
else
  libstdcxx=$SEA_LIBDIR/libstdc++.so.6
  libgcc=$SEA_LIBDIR/libgcc_s.so.1
fi

rm -rf "$OUT"
mkdir -p "$WORK" "$OUT/lib"

# The bundle is CommonJS; import.meta.url (used to find proto/ in a checkout) maps to the file's URL.
# Whitespace and syntax are minified, names are not (stack traces keep function names): the bundle
# halves (10.4 → 5.3 MB), and with it the memory of every plugin start (103 → 83 MiB after ListPlugins,
# bench/startup), since Node holds the whole source and reads the whole blob.
node_modules/.bin/esbuild src/main.ts --bundle --platform=node --format=cjs --target=node22 \
  --outfile="$WORK/main.cjs" --log-level=warning --legal-comments=none --minify-whitespace --minify-syntax \
  --define:import.meta.url=__import_meta_url \
  --banner:js='const __import_meta_url = require("node:url").pathToFileURL(__filename).href;'

assets=$(cd proto && find . -name '*.proto' | sort | sed 's|^\./||' |
  awk -v root="$ROOT/proto" '{ printf "%s\"proto/%s\": \"%s/%s\"", (NR>1 ? ", " : ""), $0, root, $0 }')
cat > "$WORK/sea-config.json" <<JSON
{
  "main": "$WORK/main.cjs",
  "output": "$WORK/sea-prep.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true,
  "assets": { $assets }
}
JSON
"$SEA_NODE" --experimental-sea-config "$WORK/sea-config.json" >/dev/null 2>"$WORK/sea.log" || { cat "$WORK/sea.log" >&2; exit 1; }

cp "$SEA_NODE" "$WORK/$NAME"
chmod u+w "$WORK/$NAME"
# DT_RPATH, not the default DT_RUNPATH: the loader searches RUNPATH after LD_LIBRARY_PATH, which
# Velero sets to /plugins, where another plugin may have put its own (older) libstdc++.so.6 as the
# Velero docs suggest; RPATH comes first, so ours are always the ones loaded.
"${patchelf[@]}" --force-rpath --set-rpath '$ORIGIN/lib' "$WORK/$NAME"
"$SEA_NODE" node_modules/postject/dist/cli.js "$WORK/$NAME" NODE_SEA_BLOB "$WORK/sea-prep.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >"$WORK/postject.log" 2>&1 || { cat "$WORK/postject.log" >&2; exit 1; }
install -m 0755 "$WORK/$NAME" "$OUT/$NAME"
install -m 0644 "$(readlink -f "$libstdcxx")" "$OUT/lib/libstdc++.so.6"
install -m 0644 "$(readlink -f "$libgcc")" "$OUT/lib/libgcc_s.so.1"
rm -rf "$WORK"
echo "built $OUT/$NAME ($(du -h "$OUT/$NAME" | cut -f1)) and $OUT/lib/" >&2
