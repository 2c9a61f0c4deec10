# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# kubectl 1.36 from sid (source package `kubernetes`), extracted only into .cache/kubectl: the
# manifest tests render velero/ and schedules/ with its built-in `kubectl kustomize`. No cluster is
# involved (none can be obtained from Debian). bookworm's
# kubernetes-client 1.20 predates kustomize Components (kind: Component) in kubectl.
KUBECTL_MIN_MINOR=27   # kustomize v5, the floor docs/velero-install.md asks operators for

dep_kubectl() {
  local dest=$CACHE/kubectl
  if [ ! -x "$dest/usr/bin/kubectl" ] || [ ! -e "$dest/.complete" ]; then
    rm -rf "$dest"
    fetch_debs sid "$dest" kubectl
    rm -rf "$dest/usr/share/doc" "$dest/usr/share/man"
    # Fail here, not in a test, if the binary cannot start on this host or is too old.
    local version minor
    version=$("$dest/usr/bin/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')
    minor=$(printf '%s' "$version" | sed -n 's/^v1\.\([0-9]*\)\..*/\1/p')
    if [ -z "$minor" ] || [ "$minor" -lt "$KUBECTL_MIN_MINOR" ]; then
      log "kubectl: $dest/usr/bin/kubectl reports '${version:-no version}', need v1.$KUBECTL_MIN_MINOR or newer"
      return 1
    fi
    log "kubectl $version"
    touch "$dest/.complete"
  fi
}
