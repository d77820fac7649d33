#!/bin/sh
# Installs dependencies (build and test tools), builds the dev preset and runs every test
# in parallel with ctest. Integration tests run inside private network namespaces.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev --output-on-failure -j2 "$@"
