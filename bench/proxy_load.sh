#!/bin/bash
# Load benchmark: wrk over keep-alive through Outpost, nginx (proxy_pass with upstream
# keep-alive), Apache Traffic Server (reverse proxy) and Squid to the same nginx origin, for 1 KiB, 64 KiB and 1 MiB objects. Prints req/s, p50/p99 latency and server CPU
# seconds per 100k requests, median of RUNS runs (min-max in brackets).
# Usage: bench/proxy_load.sh [--quick] [--pinned] [--hits]
#   --quick: 1 run of 5 s per row; --pinned: servers on CPU 0 with one worker, wrk on CPU 1;
#   --hits: the origin marks objects fresh for an hour and every proxy caches them in memory
#   (Outpost's cache, nginx proxy_cache, Squid cache_mem): fresh-hit throughput instead.
# Everything listens on 127.0.0.1 high ports; all processes are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3 DURATION=10 PINNED=0 HITS=0 CONNS=${CONNS:-64}
for a in "$@"; do
  case $a in
    --quick) RUNS=1 DURATION=5 ;;
    --pinned) PINNED=1 ;;
    --hits) HITS=1 ;;
  esac
done
ORIGIN_EXPIRES="" NGINX_CACHE="" SQUID_CACHE="cache deny all" MODE="pass-through (no caching)"
if [ $HITS = 1 ]; then
  ORIGIN_EXPIRES="expires 1h;"
  SQUID_CACHE="maximum_object_size_in_memory 2 MB
cache_mem 256 MB"
  MODE="fresh hits from memory"
fi
OUTPOST_BIN=${OUTPOST_BIN:-build/release/app/outpost}
[ -x "$OUTPOST_BIN" ] || { cmake --preset release >/dev/null && cmake --build --preset release --target outpost; }
for t in wrk nginx squid traffic_server; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install wrk nginx squid trafficserver)"; exit 1; }
done

W=$(mktemp -d /tmp/outpost-bench.XXXXXX)
chmod 755 "$W"  # ATS and Squid drop privileges and must reach their files
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT

ORIGIN=18081 OUTPOST=18128 NGINXP=18129 SQUID=18130 ATS=18131
WORKERS=2 SRV_CPU="" WRK_CPU="" WRK_THREADS=2
if [ $PINNED = 1 ]; then WORKERS=1 SRV_CPU="taskset -c 0" WRK_CPU="taskset -c 1" WRK_THREADS=1; fi

mkdir -p "$W/www" "$W/tmp" "$W/squid-cache"
head -c 1024 /dev/urandom > "$W/www/1k"
head -c 65536 /dev/urandom > "$W/www/64k"
head -c 1048576 /dev/urandom > "$W/www/1m"

# --- origin: nginx (pinned runs put it on CPU 1 with wrk, so the proxy has CPU 0 alone)
cat > "$W/origin.conf" <<EOC
daemon off; master_process off; worker_processes 1; user root;
pid $W/origin.pid; error_log $W/origin-error.log error;
events { worker_connections 8192; }
http { access_log off; sendfile on; tcp_nopush off; keepalive_requests 1000000;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  server { listen 127.0.0.1:$ORIGIN reuseport; root $W/www; $ORIGIN_EXPIRES } }
EOC
$WRK_CPU nginx -c "$W/origin.conf" -p "$W" & PIDS+=($!)

# --- Outpost
cat > "$W/outpost.toml" <<EOC
[server]
workers = $WORKERS
[log]
level = "warn"
access_log = ""
[http_cache]
enabled = $( [ $HITS = 1 ] && echo true || echo false )
[proxy]
listen = ["127.0.0.1:$OUTPOST"]
[origin]
max_idle_per_host = 1024
[dns]
listen = []
EOC
$SRV_CPU "$OUTPOST_BIN" --config "$W/outpost.toml" & PIDS+=($!); OUTPOST_PID=$!

# --- nginx as the proxy (proxy_pass to the same origin, upstream keep-alive)
cat > "$W/nginx-proxy.conf" <<EOC
daemon off; master_process on; worker_processes $WORKERS; user root;
pid $W/nginxp.pid; error_log $W/nginxp-error.log error;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000; tcp_nopush off;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 256; keepalive_requests 1000000; }
  proxy_cache_path $W/nginx-cache keys_zone=hot:64m max_size=512m;
  server { listen 127.0.0.1:$NGINXP reuseport;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      $( [ $HITS = 1 ] && echo "proxy_cache hot; add_header X-Cache \$upstream_cache_status;" ) } } }
EOC
$SRV_CPU nginx -c "$W/nginx-proxy.conf" -p "$W" & PIDS+=($!); NGINX_PID=$!

# --- Squid (forward proxy, caching off)
chown -R proxy:proxy "$W/squid-cache" 2>/dev/null || true
cat > "$W/squid.conf" <<EOC
http_port 127.0.0.1:$SQUID
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
$SQUID_CACHE
access_log none
cache_log $W/squid-cache.log
pid_filename $W/squid.pid
coredump_dir $W/squid-cache
pinger_enable off
shutdown_lifetime 1 seconds
visible_hostname outpost-bench
workers 1
EOC
$SRV_CPU squid -N -f "$W/squid.conf" -n outpostbench$$ 2>"$W/squid-stderr.log" & PIDS+=($!); SQUID_PID=$!

# --- Apache Traffic Server (reverse proxy; RAM cache for hits, cache off for pass-through)
mkdir -p "$W/ats/etc" "$W/ats/var" "$W/ats/run" "$W/ats/log" "$W/ats/cache"
cp -r /etc/trafficserver/* "$W/ats/etc/"
cat > "$W/ats/runroot.yaml" <<EOC
prefix: $W/ats
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: $W/ats/etc
datadir: /usr/share/trafficserver
includedir: /usr/include
libdir: /usr/lib/x86_64-linux-gnu
libexecdir: /usr/lib/trafficserver/modules
localstatedir: $W/ats/var
runtimedir: $W/ats/run
logdir: $W/ats/log
cachedir: $W/ats/cache
EOC
cat > "$W/ats/etc/records.config" <<EOC
CONFIG proxy.config.http.server_ports STRING $ATS
CONFIG proxy.config.admin.user_id STRING trafficserver
CONFIG proxy.config.body_factory.template_sets_dir STRING $W/ats/etc/body_factory
CONFIG proxy.config.cache.ram_cache.size INT 268435456
CONFIG proxy.config.http.cache.http INT $HITS
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT $WORKERS
CONFIG proxy.config.log.logging_enabled INT 0
CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 120
CONFIG proxy.config.net.connections_throttle INT 10000
EOC
echo "map / http://127.0.0.1:$ORIGIN/" > "$W/ats/etc/remap.config"
echo "$W/ats/cache 256M" > "$W/ats/etc/storage.config"
chown -R trafficserver "$W/ats"
$SRV_CPU traffic_server --run-root="$W/ats/runroot.yaml" >"$W/ats/stdout.log" 2>&1 & PIDS+=($!); ATS_PID=$!

wait_port() { for _ in $(seq ${2:-100}); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up"; exit 1; }
for p in $ORIGIN $OUTPOST $NGINXP $SQUID; do wait_port $p; done
wait_port $ATS 900  # ATS formats its cache on first start

# CPU seconds (user+sys) of a process and its threads/children, from /proc.
cpu_of() {
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    read -r -a st < "/proc/$pid/stat" || continue
    total=$((total + st[13] + st[14] + st[15] + st[16]))
  done
  echo "$total"
}
TCK=$(getconf CLK_TCK)

run_wrk() {  # name pid url-args... -> "rps p50_ms p99_ms cpu_per_100k"
  local pid=$1; shift
  local c0 c1 out
  c0=$(cpu_of "$pid")
  out=$($WRK_CPU wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --latency "$@" 2>&1)
  c1=$(cpu_of "$pid")
  python3 - "$out" "$c0" "$c1" "$TCK" <<'EOP'
import re, sys
out, c0, c1, tck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def lat(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, out, re.M)
    if not m: return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
reqs = int(re.search(r"(\d+) requests in", out).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
cpu = (c1 - c0) / tck / max(reqs, 1) * 100000
print(f"{rps:.0f} {lat('50'):.3f} {lat('99'):.3f} {cpu:.2f} {errs.group(1) if errs else 0}")
EOP
}

median() { python3 -c "import sys,statistics as s; v=[float(x) for x in sys.argv[1:]]; print(f'{s.median(v):.6g} [{min(v):.6g}-{max(v):.6g}]')" "$@"; }

echo "# Proxy benchmark, $MODE: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, $RUNS run(s), pinned=$PINNED, proxy workers=$WORKERS"
echo "# outpost $("$OUTPOST_BIN" --version | cut -d' ' -f2), $(nginx -v 2>&1 | cut -d' ' -f3), squid $(squid -v | head -1 | awk '{print $4}'), trafficserver $(dpkg-query -W -f='${Version}' trafficserver)"
printf "%-6s %-8s %-26s %-24s %-24s %-22s\n" size proxy "req/s" "p50 ms" "p99 ms" "cpu s/100k req"
for size in 1k 64k 1m; do
  for proxy in outpost nginx ats squid; do
    case $proxy in
      outpost) pid=$OUTPOST_PID; args=(-s bench/abs_url.lua "http://127.0.0.1:$OUTPOST" -- "http://127.0.0.1:$ORIGIN/$size") ;;
      nginx) pid=$NGINX_PID; args=("http://127.0.0.1:$NGINXP/$size") ;;
      ats) pid=$ATS_PID; args=("http://127.0.0.1:$ATS/$size") ;;
      squid) pid=$SQUID_PID; args=(-s bench/abs_url.lua "http://127.0.0.1:$SQUID" -- "http://127.0.0.1:$ORIGIN/$size") ;;
    esac
    $WRK_CPU wrk -t1 -c8 -d1s "${args[@]}" >/dev/null 2>&1 || true  # warm-up, not timed
    R=() P50=() P99=() CPU=()
    for _ in $(seq $RUNS); do
      read -r rps p50 p99 cpu errs < <(run_wrk $pid "${args[@]}")
      [ "$errs" = 0 ] || echo "WARNING: $proxy $size: $errs non-2xx responses"
      R+=("$rps"); P50+=("$p50"); P99+=("$p99"); CPU+=("$cpu")
    done
    printf "%-6s %-8s %-26s %-24s %-24s %-22s\n" $size $proxy "$(median "${R[@]}")" "$(median "${P50[@]}")" "$(median "${P99[@]}")" "$(median "${CPU[@]}")"
  done
done
echo "# Outpost peak RSS: $(grep VmHWM /proc/$OUTPOST_PID/status | awk '{print $2}') KiB"
