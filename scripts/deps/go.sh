# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# Go 1.23 (bookworm-backports), go-plugin 1.0.1, grpc, protobuf and protoc: the Velero host harness.
GO_PKGS=(golang-1.23-go/bookworm-backports golang-1.23-src/bookworm-backports
  golang-github-davecgh-go-spew-dev golang-golang-x-sys-dev golang-github-mattn-go-isatty-dev golang-github-mattn-go-colorable-dev
  golang-github-fatih-color-dev golang-github-google-go-cmp-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  golang-github-pmezard-go-difflib-dev golang-github-stretchr-objx-dev golang-gopkg-yaml.v3-dev golang-github-stretchr-testify-dev
  golang-github-hashicorp-go-hclog-dev golang-github-hashicorp-yamux-dev golang-github-mitchellh-go-testing-interface-dev
  golang-github-oklog-run-dev golang-github-hashicorp-go-plugin-dev golang-glog-dev golang-golang-x-text-dev golang-golang-x-net-dev
  golang-golang-x-oauth2-dev golang-google-cloud-compute-metadata-dev golang-golang-x-oauth2-google-dev golang-google-grpc-dev
  golang-google-genproto-dev libprotobuf32 libprotobuf-lite32 libprotobuf-dev libprotoc32 protobuf-compiler protoc-gen-go protoc-gen-go-grpc)

dep_go() {
  local dest=$CACHE/go-root
  if [ ! -x "$dest/usr/lib/go-1.23/bin/go" ] || [ ! -e "$dest/.complete" ]; then
    fetch_debs bookworm "$dest" "${GO_PKGS[@]}"
    touch "$dest/.complete"
  fi
}
