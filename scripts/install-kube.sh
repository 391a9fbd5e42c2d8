#!/usr/bin/env bash
# Builds the Kubernetes parts the Kubernetes tests run against, from the Go module proxy:
#   kube-apiserver and etcd (at the version Kubernetes pins)  -> $TRELLIS_KUBE_DIR
#   helm                                                       -> $TRELLIS_HELM_DIR
# Neither is a Debian or npm package. Each lands in a cache directory outside the repository named
# by its version and is skipped when already there, so only the first run pays (about 15 minutes
# and 2.4 GB of memory on a loaded 2-core machine for kube-apiserver; seconds afterwards).
# Exits non-zero, saying what failed, when a build fails; the tests then skip naming the binary.
#
# kube-apiserver is not meant to be a Go module dependency: k8s.io/kubernetes's go.mod replaces
# its ~30 staging modules (k8s.io/api, k8s.io/apimachinery, ...) with local paths at v0.0.0. A
# tiny wrapper module requires k8s.io/kubernetes and replaces each of those with its published
# twin (v0.<minor>.<patch>), which is exactly the code of the staging directory at that tag.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
HELM_MODULE=${HELM_MODULE:-helm.sh/helm/v4}
HELM_VERSION=${HELM_VERSION:-4.3.2}
CACHE_ROOT=${TRELLIS_CACHE:-$HOME/.cache/trellis}
KUBE_DIR=${TRELLIS_KUBE_DIR:-$CACHE_ROOT/kube-$KUBE_VERSION}
HELM_DIR=${TRELLIS_HELM_DIR:-$CACHE_ROOT/helm-$HELM_VERSION}

say() { echo "install-kube: $*"; }
fail() { echo "install-kube: FAILED: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || fail "go is not installed (needed to build kube-apiserver, etcd and helm)"

build_kube() {
  if [ -x "$KUBE_DIR/kube-apiserver" ] && [ -x "$KUBE_DIR/etcd" ]; then
    say "kube-apiserver and etcd $KUBE_VERSION already in $KUBE_DIR"
    return 0
  fi
  local minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  local staging_version="v0.${KUBE_VERSION#*.}"
  local work="$CACHE_ROOT/build/kube-$KUBE_VERSION"
  say "building kube-apiserver and etcd $KUBE_VERSION in $work (about 15 minutes from empty caches)"
  rm -rf "$work"; mkdir -p "$work"
  local gomod
  gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || fail "could not download k8s.io/kubernetes@v$KUBE_VERSION's go.mod"
  # The staging modules are the replace lines pointing into ./staging/src/.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/.*#\1#p' "$gomod")
  [ -n "$staging" ] || fail "found no staging modules in k8s.io/kubernetes@v$KUBE_VERSION's go.mod"
  local etcd_version
  etcd_version=$(sed -n 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3 \(v[^[:space:]]*\).*#\1#p' "$gomod" | head -1)
  [ -n "$etcd_version" ] || fail "k8s.io/kubernetes@v$KUBE_VERSION's go.mod names no go.etcd.io/etcd/server/v3"
  say "$(echo "$staging" | wc -l) staging modules -> $staging_version; etcd server $etcd_version"
  {
    echo "module trellis.local/kube-build"
    echo
    echo "go 1.25"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes v$KUBE_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $etcd_version"
    echo ")"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_version"; done
    echo ")"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
EOF
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy) || fail "go mod tidy for kube-apiserver $KUBE_VERSION"
  local out="$KUBE_DIR.partial"
  rm -rf "$out"; mkdir -p "$out"
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  say "go build etcd $etcd_version"
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3) \
    || fail "go build etcd $etcd_version"
  say "go build kube-apiserver v$KUBE_VERSION"
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) \
    || fail "go build kube-apiserver v$KUBE_VERSION"
  rm -rf "$KUBE_DIR"; mv "$out" "$KUBE_DIR"
  say "kube-apiserver and etcd installed in $KUBE_DIR"
}

build_helm() {
  if [ -x "$HELM_DIR/helm" ]; then
    say "helm $HELM_VERSION already in $HELM_DIR"
    return 0
  fi
  say "go install $HELM_MODULE/cmd/helm@v$HELM_VERSION"
  local out="$HELM_DIR.partial"
  rm -rf "$out"; mkdir -p "$out"
  GOBIN="$out" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" "$HELM_MODULE/cmd/helm@v$HELM_VERSION" \
    || fail "go install $HELM_MODULE/cmd/helm@v$HELM_VERSION"
  rm -rf "$HELM_DIR"; mv "$out" "$HELM_DIR"
  say "helm installed in $HELM_DIR"
}

case "${1:-all}" in
  all) build_helm; build_kube ;;
  kube) build_kube ;;
  helm) build_helm ;;
  *) fail "unknown target '$1' (all, kube, helm)" ;;
esac
