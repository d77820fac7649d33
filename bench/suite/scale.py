"""Scale: how memory and hit latency grow with the number of cached objects (10k → 1M), and what
each concurrent idle keep-alive connection costs, for Outpost and its peers."""
import json
import os
import subprocess
import time

import peers
import speed
from common import MIB, cell, md_table, ratio, stat3

ORIGIN, OUTPOST, SQUID, NGINX, STATIC = 18281, 18282, 18283, 18284, 18285
BODY = 512  # bytes per object in the object-count runs


def scan_spec(objects, requests):
    """Every object once, in id order (the cache is filled with exactly OBJECTS objects)."""
    return (f"synthetic:objects={objects},requests={requests},alpha=0.8,seed=7,scan=1,size_median={BODY},"
            f"size_sigma=0.0001,size_max={BODY},mix=c100/n0/s0/v0,reval=0")


def objects_run(ctx, peer, n):
    """Fresh proxy with room for everything; fill N objects; then a hit pass over up to 100k of them."""
    if peer == "outpost":
        server = peers.outpost(ctx, OUTPOST, memory=16384 * MIB, name="scale-outpost")
    else:
        server = peers.squid(ctx, SQUID, memory=16384 * MIB, name="scale-squid")
    try:
        time.sleep(0.3)
        rss0 = server.proc.rss_kib()
        fill = peers.loadgen_replay(ctx, server, ORIGIN, scan_spec(n, n), 64)
        rss1 = server.proc.rss_kib()
        hits = peers.loadgen_replay(ctx, server, ORIGIN, scan_spec(n, min(n, 100000)), 64)
        return {"objects": n, "rss_before_kib": rss0, "rss_after_kib": rss1,
                "bytes_per_object": (rss1 - rss0) * 1024 / n, "fill_rps": fill["rps"],
                "fill_errors": fill["errors"], "hit_ratio": hits["object_hit_ratio"], "hit_rps": hits["rps"],
                "hit_p50_ms": hits["p50_ms"], "hit_p99_ms": hits["p99_ms"], "hit_errors": hits["errors"]}
    finally:
        server.stop()


def idle_run(ctx, peer, n, target_url):
    """Fresh server; N keep-alive connections that each completed one request and then stay
    idle; RSS per connection; and hit latency (wrk, 16 connections) while they are held."""
    starters = {
        "outpost": lambda: peers.outpost(ctx, OUTPOST, name="idle-outpost"),
        "squid": lambda: peers.squid(ctx, SQUID, name="idle-squid"),
        "nginx": lambda: peers.nginx_cache(ctx, NGINX, STATIC, name="idle-nginx"),
    }
    server = starters[peer]()
    try:
        speed.wrk(ctx, server, target_url, 4, 1)  # the object is cached before the idle clients arrive
        time.sleep(0.3)
        rss0 = server.proc.rss_kib()
        argv = [ctx.bin("bench/loadgen/loadgen"), "idle", "--proxy", f"127.0.0.1:{server.port}",
                "--connections", str(n), "--request", target_url]
        holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = holder.stdout.readline()
            opened = json.loads(line) if line else {"connections": 0, "failed": n}
            time.sleep(1.0)
            rss1 = server.proc.rss_kib()
            lat = speed.wrk(ctx, server, target_url, 16, 3)
        finally:
            holder.stdin.close()
            holder.wait(60)
        ok = max(opened.get("connections", 0) - opened.get("failed", 0), 1)
        return {"connections": n, "held": ok, "failed": opened.get("failed"), "rss_before_kib": rss0,
                "rss_after_kib": rss1, "bytes_per_connection": (rss1 - rss0) * 1024 / ok,
                "rps_while_idle": lat["rps"], "p50_ms": lat["p50"], "p99_ms": lat["p99"]}
    finally:
        server.stop()


def run_section(ctx):
    levels = [10000, 100000] if ctx.quick else [10000, 100000, 1000000]
    conns = [10000] if ctx.quick else [1000, 10000]
    res = {"objects": {}, "idle": {}}
    origin = peers.loadgen_origin(ctx, ORIGIN, threads=1, name="scale-origin")
    www = ctx.dir("scale-www")
    with open(os.path.join(www, "1k"), "wb") as f:
        f.write(os.urandom(1024))
    static = peers.nginx_static(ctx, STATIC, www, workers=1, name="scale-static")
    try:
        for n in levels:
            res["objects"][n] = {}
            for peer in ("outpost", "squid"):
                if peer == "squid" and n > 100000:
                    continue  # Squid fills at a few thousand objects/s: 1M would take minutes
                ctx.log(f"scale: {n} objects via {peer}")
                res["objects"][n][peer] = [objects_run(ctx, peer, n) for _ in range(ctx.runs)]
        for n in conns:
            res["idle"][n] = {}
            for peer in ("outpost", "squid", "nginx"):
                ctx.log(f"scale: {n} idle connections to {peer}")
                res["idle"][n][peer] = [idle_run(ctx, peer, n, f"http://127.0.0.1:{STATIC}/1k")
                                        for _ in range(ctx.runs)]
    finally:
        origin.stop()
        static.stop()
    ctx.raw["scale"] = res

    def c(runs, key, digits=None, scale=1.0, minus=0.0):
        return cell(stat3([r[key] * scale - minus for r in runs]), digits)

    def med(runs, key):
        return stat3([r[key] for r in runs])[0]

    heads = ["objects", "proxy", "RSS after fill, MiB", "bytes per object", "of which not body",
             "fill req/s", "hit req/s", "hit p50 ms", "hit p99 ms", "hit ratio", "errors",
             "Outpost / Squid, bytes per object"]
    rows = []
    for n in levels:
        per = res["objects"][n]
        for peer, runs in per.items():
            rows.append([f"{n:,}", peer, c(runs, "rss_after_kib", 0, 1 / 1024), c(runs, "bytes_per_object", 0),
                         c(runs, "bytes_per_object", 0, minus=BODY), c(runs, "fill_rps"), c(runs, "hit_rps"),
                         c(runs, "hit_p50_ms", 2), c(runs, "hit_p99_ms", 2), c(runs, "hit_ratio", 3),
                         sum(r["fill_errors"] + r["hit_errors"] for r in runs),
                         ratio(med(per["outpost"], "bytes_per_object"), med(runs, "bytes_per_object"),
                               higher_is_better=False) if peer != "outpost" else ""])
    md = [f"""## Scale

**Cached objects.** A fresh proxy with a 16 GiB memory budget (so that S3-FIFO's small queue, 10%,
holds a whole one-pass fill) is filled through `loadgen replay` (64 connections) with N distinct
{BODY}-byte cacheable objects, each requested once; then up to 100k of them are requested again
(all hits). "bytes per object" is the growth of the proxy's RSS divided by N; "of which not body"
subtracts the {BODY}-byte body: stored response headers, key, index and allocator overhead.
Squid is measured up to 100k objects (it fills at a few thousand objects per second). Cells:
median [min–max] of {ctx.runs} run(s). Rerun: `bench/run --only scale`.

""", md_table(heads, rows)]
    heads = ["idle connections", "proxy", "held", "bytes per idle connection", "hit req/s meanwhile",
             "p50 ms", "p99 ms", "Outpost / peer, bytes per connection"]
    rows = []
    for n in conns:
        per = res["idle"][n]
        for peer, runs in per.items():
            rows.append([f"{n:,}", peer, min(r["held"] for r in runs), c(runs, "bytes_per_connection", 0),
                         c(runs, "rps_while_idle"), c(runs, "p50_ms", 2), c(runs, "p99_ms", 2),
                         "" if peer == "outpost" else ratio(med(per["outpost"], "bytes_per_connection"),
                                                            med(runs, "bytes_per_connection"), higher_is_better=False)])
    md.append("""
**Idle connections.** N client connections each complete one request for a cached 1 KiB object
(keep-alive) and then stay idle; RSS growth per held connection, and fresh-hit throughput and
latency of 16 other connections (wrk, 3 s) while they are held. nginx is proxy_cache (2 workers).

""")
    md.append(md_table(heads, rows))
    return "\n".join(md)
