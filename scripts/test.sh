#!/bin/sh
# Installs dependencies (build and test tools), then builds and runs every test twice:
# the dev preset, and the asan preset (AddressSanitizer + UndefinedBehaviorSanitizer, so
# the parsers' fuzz corpora and every integration test also run under the sanitizers);
# then the shared cache store's concurrency, disk and crash tests under ThreadSanitizer.
# Integration tests run inside private network namespaces. Extra arguments go to ctest.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Clones in other folders (CI) still hit the cache: paths are hashed relative to the tree.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}"
for preset in dev asan; do
  echo "=== $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "=== $preset tests"
  ctest --preset "$preset" --output-on-failure -j2 "$@"
done
echo "=== tsan: cache store tests"
TSAN_TARGETS="cache_store_test cache_concurrency_test cache_disk_test cache_crash_test cache_s3fifo_test"
cmake --preset tsan >/dev/null
# shellcheck disable=SC2086
cmake --build --preset tsan --target $TSAN_TARGETS
ctest --test-dir build/tsan --output-on-failure -j2 -R 'Cache|S3Fifo' "$@"
