#!/bin/sh
# Quick start: install dependencies, build a release build, run Outpost in the foreground
# on its embedded default configuration (extra arguments are passed to outpost).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
cmake --preset release >/dev/null
cmake --build --preset release --target outpost
exec build/release/app/outpost "$@"
