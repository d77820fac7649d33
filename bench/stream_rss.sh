#!/bin/bash
# 1 GiB through Outpost (release) to a client reading at 200 MB/s; prints RSS before/peak.
set -e
W=$(mktemp -d); chmod 755 $W; mkdir -p $W/www
truncate -s 1G $W/www/1g
cat > $W/o.conf <<EOC
daemon off; master_process off; worker_processes 1; user root; pid $W/o.pid; error_log $W/e.log error;
events { worker_connections 64; }
http { access_log off; sendfile on; server { listen 127.0.0.1:18201; root $W/www; } }
EOC
nginx -c $W/o.conf -p $W & NP=$!
printf '[log]\nlevel = "warn"\naccess_log = ""\n[proxy]\nlisten = ["127.0.0.1:18202"]\nresolver = "system"\n[dns]\nlisten = []\n' > $W/op.toml
${OUTPOST_BIN:-build/release/app/outpost} --config $W/op.toml & OP=$!
sleep 0.5
curl -s -o /dev/null -x http://127.0.0.1:18202 http://127.0.0.1:18201/1g --max-filesize 1 2>/dev/null || true
B=$(grep VmRSS /proc/$OP/status | awk '{print $2}')
PEAK=$B
curl -s -x http://127.0.0.1:18202 --limit-rate 200M http://127.0.0.1:18201/1g | cmp - $W/www/1g && echo "byte-identical" &
CP=$!
while kill -0 $CP 2>/dev/null; do R=$(grep VmRSS /proc/$OP/status | awk '{print $2}'); [ $R -gt $PEAK ] && PEAK=$R; sleep 0.05; done
echo "RSS before ${B} KiB, peak ${PEAK} KiB, growth $(( (PEAK-B)/1024 )) MiB"
kill $OP $NP; rm -rf $W
