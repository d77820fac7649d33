"""Trace-driven hit rate through the real proxies: bench/loadgen replays a trace (synthetic from a
seed, or a public "timestamp key size" file) against the project's synthetic origin through
Outpost and through Squid, each started empty with the same memory (and disk) budget. The origin
counts what it had to send, so a hit is a request whose body the origin did not send."""
import os

import peers
from common import MIB, cell, md_table, plot, ratio, run, stat3

ORIGIN, OUTPOST, SQUID = 18181, 18182, 18183
PEERS = ("outpost", "squid")
LABEL = {"outpost": "Outpost", "squid": "Squid"}


def trace_spec(ctx, alpha=0.8, seed=1):
    objects, requests = (4000, 40000) if ctx.quick else (8000, 80000)
    return (f"synthetic:objects={objects},requests={requests},alpha={alpha},seed={seed},"
            f"size_median=8192,size_sigma=1.5,size_max=1048576,mix=c80/n5/s10/v5,reval=10"), objects, requests


def ranges_spec(ctx):
    """Media fetched in 64 KiB ranges (kind r, 256 KiB-1 MiB) and pages that vary on
    Accept-Encoding / Accept-Language written in six ways (kind l) beside the usual kinds."""
    objects, requests = (1500, 15000) if ctx.quick else (3000, 30000)
    return (f"synthetic:objects={objects},requests={requests},alpha=0.8,seed=2,size_median=8192,size_sigma=1.5,"
            f"size_max=1048576,mix=c50/n5/s5/v5/r15/l20,reval=10,big_min=262144,chunk=65536"), objects, requests


def start(ctx, peer, memory, disk):
    """A fresh, empty proxy with MEMORY bytes of memory cache and DISK bytes of disk (0: none)."""
    if peer in ("outpost", "before"):
        d = os.path.join(ctx.work, "hitrate-outpost-disk")
        run(["rm", "-rf", d])
        if disk:
            ctx.dir("hitrate-outpost-disk")
        return peers.outpost(ctx, OUTPOST, memory=memory, disk_dir=d if disk else "",
                             disk_size=disk or 1024 * MIB, max_object=1 * MIB, name=f"hitrate-{peer}",
                             binary=ctx.before if peer == "before" else None)
    d = os.path.join(ctx.work, "hitrate-squid-disk")
    if os.path.exists(d):
        run(["rm", "-rf", d])
    return peers.squid(ctx, SQUID, memory=memory, disk_dir=d if disk else None, disk_size=disk or 1024 * MIB,
                       max_object=1 * MIB, name="hitrate-squid")


def measure(ctx, peer, spec, memory, disk=0, runs=None, warmup=0.0):
    results = []
    for _ in range(runs or ctx.runs):
        server = start(ctx, peer, memory, disk)
        try:
            server.proc.reset_peak_rss()
            r = peers.loadgen_replay(ctx, server, ORIGIN, spec, 32, warmup, timeout=1800)
            r["peak_rss_mib"] = server.proc.peak_rss_kib() / 1024
            results.append(r)
        finally:
            server.stop()
    return results


def m(results, key, scale=1.0):
    s = stat3([r[key] * scale for r in results]) if results else None
    return s


def main_table(rows):
    heads = ["setup", "proxy", "object hit ratio", "byte hit ratio", "origin GB saved", "req/s",
             "p50 ms", "p90 ms", "p99 ms", "peak RSS MiB", "errors"]
    out = []
    for label, per in rows:
        for p in PEERS:
            r = per[p]
            out.append([label, LABEL[p], cell(m(r, "object_hit_ratio"), 3), cell(m(r, "byte_hit_ratio"), 3),
                        cell(m(r, "origin_bytes_saved", 1e-9), 2), cell(m(r, "rps")), cell(m(r, "p50_ms"), 2),
                        cell(m(r, "p90_ms"), 2), cell(m(r, "p99_ms"), 2), cell(m(r, "peak_rss_mib"), 1),
                        sum(x["errors"] for x in r)])
        med = {p: {k: m(per[p], k)[0] for k in ("object_hit_ratio", "byte_hit_ratio", "rps", "p99_ms")} for p in PEERS}
        out.append([label, "**Outpost / Squid**", ratio(med["outpost"]["object_hit_ratio"], med["squid"]["object_hit_ratio"]),
                    ratio(med["outpost"]["byte_hit_ratio"], med["squid"]["byte_hit_ratio"]), "",
                    ratio(med["outpost"]["rps"], med["squid"]["rps"]), "", "",
                    ratio(med["outpost"]["p99_ms"], med["squid"]["p99_ms"], higher_is_better=False), "", ""])
    return md_table(heads, out)


def run_section(ctx):
    spec, objects, requests = trace_spec(ctx)
    res = {"spec": spec, "main": {}, "sweep": {}, "file": {}}
    origin = peers.loadgen_origin(ctx, ORIGIN, threads=1, name="hitrate-origin")
    main_mem = 32 * MIB if ctx.quick else 64 * MIB
    sweep = [8, 32, 128] if ctx.quick else [8, 16, 32, 64, 128, 256]
    try:
        rows = []
        for label, memory, disk, warm in (
                (f"{main_mem // MIB} MiB memory", main_mem, 0, 0.0),
                (f"{main_mem // MIB} MiB memory, first 25% as warm-up", main_mem, 0, 0.25),
                (f"16 MiB memory + 256 MiB disk", 16 * MIB, 256 * MIB, 0.0)):
            if ctx.quick and warm:
                continue
            per = {}
            for p in PEERS:
                ctx.log(f"hitrate: {label} via {p}")
                per[p] = measure(ctx, p, spec, memory, disk, warmup=warm)
            res["main"][label] = per
            rows.append((label, per))
        for mib in sweep:
            res["sweep"][mib] = {}
            for p in PEERS:
                ctx.log(f"hitrate: sweep {mib} MiB via {p}")
                known = res["main"].get(f"{mib} MiB memory", {}).get(p)
                res["sweep"][mib][p] = known or measure(ctx, p, spec, mib * MIB)
        if ctx.trace:
            per = {}
            for p in PEERS:
                ctx.log(f"hitrate: trace file via {p}")
                per[p] = measure(ctx, p, f"file:{ctx.trace}", main_mem)
            res["file"] = per
            rows.append((f"trace {os.path.basename(ctx.trace)}, {main_mem // MIB} MiB memory", per))
        # Ranges and variants: this build, the --before build (if given) and Squid.
        rspec, robjects, rrequests = ranges_spec(ctx)
        res["ranges"] = {"spec": rspec}
        rpeers = ("outpost", "before", "squid") if ctx.before else ("outpost", "squid")
        for p in rpeers:
            ctx.log(f"hitrate: ranges and variants via {p}")
            res["ranges"][p] = measure(ctx, p, rspec, main_mem)
    finally:
        origin.stop()
    ctx.raw["hitrate"] = res

    md = [f"""## Hit rate (trace-driven, through the real proxies)

`bench/loadgen replay` sends each request of a trace through the proxy (absolute-form, 32
keep-alive connections, one request in flight each) to `loadgen origin`, which serves
`/o/<id>/<size>/<kind>` and counts what it sends. Trace: `{spec}` — {objects:,} objects, {requests:,}
requests, Zipf 0.8 popularity (ids shuffled), lognormal sizes (median 8 KiB, σ 1.5, clamped to
64 B–1 MiB), 80% cacheable (max-age 1 h), 5% `no-store`, 10% short TTL (max-age 2 s), 5%
validator-only (`no-cache` + ETag), and 10% of requests are client revalidations (If-None-Match
for an object the client fetched before). A request counts as a hit when the origin did not send
its body (so 304s from the cache and from the origin both count); byte hit ratio is 1 − origin
body bytes / client body bytes. Each run starts the proxy empty; Outpost (2 workers) and Squid (1
worker, `heap GDSF` in memory, `heap LFUDA` on disk, the policies Squid recommends for hit ratio)
get the same memory budget, the same disk budget (Outpost's segment store; Squid `ufs`) and a 1
MiB object size limit. Cells: median [min–max] of {ctx.runs} run(s); a run with errors would count
failed requests as hits, so the errors column must read 0 for the row to stand. Rerun: `bench/run --only hitrate`
(add `--trace FILE` to replay a public trace too).

"""]
    md.append(main_table(rows))
    def med(mib, p, key):
        return m(res["sweep"][mib][p], key)[0]

    series = []
    for key, what in (("object_hit_ratio", "object"), ("byte_hit_ratio", "byte")):
        for p in PEERS:
            series.append((f"{LABEL[p]} {what}", [(mib, med(mib, p, key)) for mib in sweep]))
    heads = ["memory MiB"] + [f"{LABEL[p]} {w}" for w in ("object", "byte") for p in PEERS] + ["object ratio", "byte ratio"]
    rows = []
    for mib in sweep:
        rows.append([mib] + [cell(m(res["sweep"][mib][p], k), 3) for k in ("object_hit_ratio", "byte_hit_ratio")
                             for p in PEERS]
                    + [ratio(med(mib, "outpost", k), med(mib, "squid", k)) for k in ("object_hit_ratio", "byte_hit_ratio")])
    md.append(f"\n**Hit ratio by memory cache size** (memory only, no disk; median [min–max] of {ctx.runs} run(s))\n\n"
              + md_table(heads, rows))
    rl = {"outpost": "Outpost", "before": "Outpost (--before build)", "squid": "Squid"}
    rows = []
    for p in rpeers:
        r = res["ranges"][p]
        rows.append([rl[p], cell(m(r, "object_hit_ratio"), 3), cell(m(r, "byte_hit_ratio"), 3),
                     cell(m(r, "origin_bytes_saved", 1e-9), 2), cell(m(r, "rps")), cell(m(r, "p99_ms"), 2),
                     cell(m(r, "peak_rss_mib"), 1), sum(x["errors"] for x in r)])
    for other in [p for p in rpeers if p != "outpost"]:
        a, b = res["ranges"]["outpost"], res["ranges"][other]
        rows.append([f"**Outpost / {rl[other]}**", ratio(m(a, "object_hit_ratio")[0], m(b, "object_hit_ratio")[0]),
                     ratio(m(a, "byte_hit_ratio")[0], m(b, "byte_hit_ratio")[0]), "", ratio(m(a, "rps")[0], m(b, "rps")[0]),
                     ratio(m(a, "p99_ms")[0], m(b, "p99_ms")[0], higher_is_better=False), "", ""])
    md.append(f"""
**Ranges and variants** ({main_mem // MIB} MiB memory, default configs). Trace: `{rspec}` —
{robjects:,} objects, {rrequests:,} requests: besides the kinds above, 15% of objects are media
(256 KiB–1 MiB, strong ETag) only ever asked for in 64 KiB chunk-aligned `Range` requests, the
early chunks most (a player's), and 20% vary on `Accept-Encoding` and `Accept-Language`, asked
with one of six spellings of those fields (four say the same preferences in other words; two
prefer something else). A 206 the origin sends counts as a miss and its bytes as origin bytes.
Squid runs with its defaults for ranges (`range_offset_limit 0`: ranges are forwarded and 206s
not stored); Outpost with its defaults (`range_offset_limit = 0`, parts stored).
{"The --before build is `" + ctx.before + "`." if ctx.before else ""}

""" + md_table(["proxy", "object hit ratio", "byte hit ratio", "origin GB saved", "req/s", "p99 ms", "peak RSS MiB",
                  "errors"], rows))
    md.append(plot(ctx, "hitrate-by-size", "Hit ratio by memory cache size (Zipf 0.8 trace through the proxy, no disk)",
                   "memory cache, MiB", "hit ratio", series, logx=True, yrange=(0, 1)))
    return "\n".join(md)
