#!/bin/bash
# Fresh 1 KiB hits, two Outpost builds interleaved (A B A B ...), each on the embedded
# default config with quiet logs: wrk -t2 -c64 for 8 s per run after one untimed miss and
# one hit, inside a private network namespace, the test origin behind. Prints each run and
# the medians. Single 2 s runs (bench/run --quick) vary by ±15% on this kind of machine;
# interleaving and medians make a before/after comparison mean something.
#   bench/hits_ab.sh OLD_BIN NEW_BIN [ROUNDS=6]      (as root)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ "${1:-}" = "--one" ]; then  # inside the namespace: one run of one binary
  BIN=$2 D=$(mktemp -d)
  python3 "$HERE/../tests/integration/origin.py" 8080 >/dev/null 2>&1 & ORIG=$!
  printf '[log]\nlevel = "warn"\naccess_log = ""\n[dns]\nhints = "%s/h"\nlisten = []\n' "$D" > "$D/o.toml"
  printf '. 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n' > "$D/h"
  "$BIN" --config "$D/o.toml" >/dev/null 2>&1 & OP=$!
  for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/__stats && curl -s -o /dev/null http://127.0.0.1:3128/health && break; sleep 0.1; done
  body=$(head -c 1024 /dev/zero | tr '\0' x)
  curl -s -o /dev/null -X POST --data-binary "{\"path\": \"/script/h1k\", \"body\": \"$body\", \"headers\": [[\"Cache-Control\", \"max-age=3600\"]]}" http://127.0.0.1:8080/__script
  for _ in 1 2; do curl -s -o /dev/null -x http://127.0.0.1:3128 http://127.0.0.1:8080/script/h1k; done
  printf 'wrk.path = "http://127.0.0.1:8080/script/h1k"\nwrk.headers["Host"] = "127.0.0.1:8080"\n' > "$D/p.lua"
  wrk -t2 -c64 -d8s -s "$D/p.lua" http://127.0.0.1:3128 | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "errors " $NF > "/dev/stderr"}'
  kill "$OP" "$ORIG"; wait 2>/dev/null || true; rm -rf "$D"
  exit 0
fi
A=$1 B=$2 N=${3:-6}
ulimit -n "$(ulimit -Hn)"
ra=() rb=()
for _ in $(seq "$N"); do
  ra+=("$("$HERE/../tests/integration/netns_run.sh" "$HERE/hits_ab.sh" --one "$A")")
  rb+=("$("$HERE/../tests/integration/netns_run.sh" "$HERE/hits_ab.sh" --one "$B")")
  echo "A ${ra[-1]}  B ${rb[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ma=$(median "${ra[@]}") mb=$(median "${rb[@]}")
echo "median req/s: A $ma  B $mb  B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.2f", b/a}')"
