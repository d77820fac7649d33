#!/bin/sh
# Runs a command inside a fresh private network namespace with only loopback up, so that
# integration tests can bind 127.0.0.x:53 without colliding with each other and can never
# reach a public address. Needs root (CI and the dev machines run as root).
# Usage: netns_run.sh COMMAND [ARGS...]
set -eu
exec unshare --net --mount-proc --fork --pid sh -c 'ip link set lo up && exec "$@"' netns_run "$@"
