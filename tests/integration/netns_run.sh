#!/bin/sh
# Runs a command inside a new, private network namespace that has only loopback, so
# nothing a test starts can reach any address outside this machine (or collide with
# another test's ports). Needs root (CI and the dev machines run as root).
set -eu
exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' netns_run "$@"
