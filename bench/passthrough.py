"""Pass-through (no-store misses) through Outpost on its default config vs nginx proxy_pass
with upstream keep-alive: wrk -t2 -c64, 1 KiB / 64 KiB / 1 MiB, median of 3 runs of 3 s each.
Outpost gets only a listen port, fake root hints and quiet logs; anything else comes from the
optional argument (TOML text), so a setting can be tried against the default.

  bench/run builds build/release; then, as root:
  tests/integration/netns_run.sh python3 bench/passthrough.py ['[origin]\nmax_idle_per_host = 32']"""
import os, sys, tempfile, shutil
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "suite"))
import common, peers, speed
from common import Proc
extra = sys.argv[1].replace("\\n", "\n") if len(sys.argv) > 1 else ""
work = tempfile.mkdtemp()
ctx = common.Ctx(True, work, work, os.path.join(HERE, "..", "build", "release"))
ctx.runs = 3
www = ctx.dir("www")
for name, size in speed.SIZES.items():
    with open(os.path.join(www, name), "wb") as f: f.write(os.urandom(size))
origin = peers.nginx_static(ctx, speed.ORIGIN, www, workers=1, name="origin")
nginx = peers.nginx_cache(ctx, speed.NGINX, speed.ORIGIN)
d = ctx.dir("outpost")
conf = os.path.join(d, "o.toml")
with open(conf, "w") as f:
    f.write(f'[log]\nlevel = "warn"\nfile = "{d}/o.log"\naccess_log = ""\n[proxy]\nlisten = ["127.0.0.1:{speed.OUTPOST}"]\n'
            f'[dns]\nhints = "{d}/h"\n{extra}\n')
open(f"{d}/h", "w").write(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n")
p = Proc("outpost", [ctx.bin("app/outpost"), "--config", conf], cwd=d)
peers.wait_port(speed.OUTPOST, proc=p)
outpost = peers.Server("outpost", p, speed.OUTPOST, True)
try:
    for s in ("1k", "64k", "1m"):
        t = f"http://127.0.0.1:{speed.ORIGIN}/nc/{s}"
        row = []
        for srv in (outpost, nginx):
            runs = speed.measure(ctx, srv, t, 64, 3)
            rps = sorted(r["rps"] for r in runs)[1]
            errs = sum(r["errors"] for r in runs)
            row.append((srv.name, rps, errs, sorted(r["cpu_100k"] for r in runs)[1]))
        print(s, " | ".join(f"{n}: {r:.0f} req/s (err {e}, cpu/100k {c:.1f}s)" for n, r, e, c in row), f"ratio {row[0][1]/row[1][1]:.2f}", flush=True)
finally:
    for s in (outpost, nginx, origin): s.stop()
    shutil.rmtree(work, ignore_errors=True)
