"""Pass-through (no-store misses) through Outpost on its default config vs nginx proxy_pass
with upstream keep-alive: wrk -t2 -c64, 1 KiB / 64 KiB / 1 MiB, RUNS (5) interleaved pairs of 3 s runs.
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
ctx.runs = 1
RUNS = int(os.environ.get("RUNS", "5"))
www = ctx.dir("www")
for name, size in speed.SIZES.items():
    with open(os.path.join(www, name), "wb") as f: f.write(os.urandom(size))
origin = peers.nginx_static(ctx, speed.ORIGIN, www, workers=1, name="origin")
nginx = peers.nginx_cache(ctx, speed.NGINX, speed.ORIGIN)
d = ctx.dir("outpost")
conf = os.path.join(d, "o.toml")
with open(conf, "w") as f:
    f.write(f'[log]\nlevel = "warn"\nfile = "{d}/o.log"\naccess_log = ""\n[proxy]\nlisten = ["127.0.0.1:{speed.OUTPOST}"]\n'
            f'[dns]\nhints = "{d}/h"\nlisten = []\n{extra}\n')
open(f"{d}/h", "w").write(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n")
p = Proc("outpost", [ctx.bin("app/outpost"), "--config", conf], cwd=d)
peers.wait_port(speed.OUTPOST, proc=p)
outpost = peers.Server("outpost", p, speed.OUTPOST, True)
try:
    # Interleaved (Outpost, nginx, Outpost, nginx, ...) after one warm-up each, so that drift
    # in the machine's speed (seen at ±15% between minutes here) hits both alike; the ratio
    # reported is the median of the per-pair ratios.
    for s in ("1k", "64k", "1m"):
        t = f"http://127.0.0.1:{speed.ORIGIN}/nc/{s}"
        for srv in (outpost, nginx):
            speed.wrk(ctx, srv, t, 64, 1)
        runs = {outpost.name: [], nginx.name: []}
        for _ in range(RUNS):
            for srv in (outpost, nginx):
                runs[srv.name] += speed.measure(ctx, srv, t, 64, 3, warm=False)
        med = lambda xs: sorted(xs)[len(xs) // 2]
        ratios = [a["rps"] / b["rps"] for a, b in zip(runs[outpost.name], runs[nginx.name])]
        row = [(n, med([r["rps"] for r in rs]), sum(r["errors"] for r in rs), med([r["cpu_100k"] for r in rs]))
               for n, rs in runs.items()]
        print(s, " | ".join(f"{n}: {r:.0f} req/s (err {e}, cpu/100k {c:.2f}s)" for n, r, e, c in row),
              f"ratio {med(ratios):.2f} (pairs {' '.join(f'{x:.2f}' for x in ratios)})", flush=True)
finally:
    for s in (outpost, nginx, origin): s.stop()
    shutil.rmtree(work, ignore_errors=True)
