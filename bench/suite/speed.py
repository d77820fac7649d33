"""Speed: wrk over keep-alive through Outpost, Squid and nginx proxy_cache to one nginx origin,
with nginx serving the same files directly as the ceiling. Fresh hits, misses (no-store),
304s answered from the cache, revalidations with the origin, CONNECT tunnel throughput, and a
concurrency sweep. Per row: req/s, p50/p99 latency, peak RSS, CPU seconds per 100k requests."""
import json
import os
import re
import signal
import socket
import urllib.request

import peers
from common import ROOT, cell, md_table, plot, ratio, run, stat3

ORIGIN, CEILING, OUTPOST, NGINX, SQUID, BLAST_ORIGIN, BLAST = 18081, 18082, 18128, 18129, 18130, 18089, 18090
LUA = os.path.join(ROOT, "bench", "suite", "wrk.lua")
SIZES = {"1k": 1024, "64k": 65536, "1m": 1 << 20}
PEERS = ["outpost", "squid", "nginx", "ceiling"]
LABEL = {"outpost": "Outpost", "squid": "Squid", "nginx": "nginx proxy_cache", "ceiling": "nginx static (ceiling)"}


def request_target(server, url):
    """URL as SERVER wants it: absolute-form for a forward proxy, its path for nginx."""
    return url if server.forward else "/" + url.split("/", 3)[3]


def wrk(ctx, server, target, conns, seconds, headers=()):
    """One wrk run; returns dict(rps, p50, p90, p99 ms, requests, errors)."""
    url = f"http://127.0.0.1:{server.port}"
    target = request_target(server, target)
    threads = 1 if conns < 2 else 2
    out = run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "--latency",
               "-s", LUA, url, "--", target, *headers], timeout=seconds + 60).stdout

    def lat(label):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, out, re.M)
        if not m:
            return None
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": lat("50"),
            "p90": lat("90"), "p99": lat("99"), "requests": reqs, "errors": errors}


def measure(ctx, server, target, conns, seconds, headers=(), warm=True):
    """Warm-up (1 s, untimed), then ctx.runs timed runs. Per run also the server's CPU seconds
    per 100k requests and its peak RSS (VmHWM reset before the run)."""
    if warm:
        wrk(ctx, server, target, min(conns, 64), 1, headers)
    runs = []
    for _ in range(ctx.runs):
        server.proc.reset_peak_rss()
        c0 = server.proc.cpu_seconds()
        r = wrk(ctx, server, target, conns, seconds, headers)
        r["cpu_100k"] = (server.proc.cpu_seconds() - c0) / max(r["requests"], 1) * 100000
        r["peak_rss_mib"] = server.proc.peak_rss_kib() / 1024
        runs.append(r)
    return runs


def tunnel(ctx, server, seconds, tunnels=16):
    """CONNECT throughput: loadgen opens TUNNELS tunnels to the blast server and reads."""
    runs = []
    for _ in range(ctx.runs):
        server.proc.reset_peak_rss()
        c0 = server.proc.cpu_seconds()
        out = run([ctx.bin("bench/loadgen/loadgen"), "connect", "--proxy", f"127.0.0.1:{server.port}",
                   "--target", f"127.0.0.1:{BLAST}", "--tunnels", str(tunnels), "--seconds", str(seconds + 1)],
                  timeout=seconds + 60).stdout
        r = json.loads(out.strip().splitlines()[-1])
        gib = max(r["bytes"], 1) / (1 << 30)
        runs.append({"mbps": r["mbytes_per_s"], "errors": r["errors"], "peak_rss_mib": server.proc.peak_rss_kib() / 1024,
                     "cpu_gib": (server.proc.cpu_seconds() - c0) / gib})
    return runs


def fetch_once(server, target):
    """One plain GET through SERVER (absolute-form for a forward proxy), read to the end."""
    target = request_target(server, target)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{ORIGIN}\r\nConnection: close\r\n\r\n".encode())
        while s.recv(65536):
            pass


def origin_requests():
    body = urllib.request.urlopen(f"http://127.0.0.1:{ORIGIN}/nginx_status", timeout=5).read().decode()
    return int(body.split("\n")[2].split()[2])  # "accepts handled requests": the third number


def etag_of(path):
    req = urllib.request.Request(f"http://127.0.0.1:{ORIGIN}{path}", method="HEAD")
    return urllib.request.urlopen(req, timeout=5).headers["ETag"]


def starters(ctx, www):
    """How to start each server (again): rows restart their proxy so that each row's peak RSS
    is its own, not what an earlier row left in the allocator."""
    return {
        "origin": lambda: peers.nginx_static(ctx, ORIGIN, www, workers=1, name="origin"),
        "ceiling": lambda: peers.nginx_static(ctx, CEILING, www, workers=2, name="ceiling"),
        "blast": lambda: peers.loadgen_origin(ctx, BLAST_ORIGIN, blast_port=BLAST, name="blast"),
        "outpost": lambda: peers.outpost(ctx, OUTPOST, connect_ports=(443, BLAST)),
        "squid": lambda: peers.squid(ctx, SQUID),
        "nginx": lambda: peers.nginx_cache(ctx, NGINX, ORIGIN),
    }


def run_suite(ctx):
    seconds = 2 if ctx.quick else 3
    www = ctx.dir("www")
    for name, size in SIZES.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write(os.urandom(size))
    start = starters(ctx, www)
    servers = {name: start[name]() for name in ("origin", "ceiling", "blast", "outpost", "squid", "nginx")}

    def fresh(peer):
        if peer == "ceiling":  # no cache, nothing kept between rows
            return servers[peer]
        # Squid's memory-only cache has nothing to save: no shutdown_lifetime to wait for.
        servers[peer].proc.stop(sig=signal.SIGKILL if peer == "squid" else signal.SIGTERM)
        servers[peer] = start[peer]()
        return servers[peer]
    res = {"rows": {}, "sweep": {}, "origin_requests_during_hits": {}}
    try:
        sizes = ["1k", "1m"] if ctx.quick else list(SIZES)
        url = f"http://127.0.0.1:{ORIGIN}"
        rows = [(f"fresh hit {s}", f"{url}/{s}", (), PEERS) for s in sizes]
        rows += [(f"miss (no-store) {s}", f"{url}/nc/{s}", (), PEERS[:3]) for s in (["1k"] if ctx.quick else sizes)]
        rows.append(("304 from cache (If-None-Match) 1k", f"{url}/1k", (f"If-None-Match: {etag_of('/1k')}",), PEERS))
        rows.append(("revalidated with origin (no-cache → 304) 1k", f"{url}/reval/1k", (), ["outpost", "squid"]))
        for label, target, headers, who in rows:
            res["rows"][label] = {}
            for peer in who:
                ctx.log(f"speed: {label} via {peer}")
                server = fresh(peer)
                # Warm-up: a plain GET stores the object (a conditional request on a miss is
                # forwarded as such by Outpost and Squid, and a 304 cannot be stored), then the
                # row's own requests, untimed.
                fetch_once(server, target)
                wrk(ctx, server, target, 64, 1, headers)
                before = origin_requests()
                res["rows"][label][peer] = measure(ctx, server, target, 64, seconds, headers, warm=False)
                if label.startswith("fresh hit"):  # a hit must not reach the origin
                    n = origin_requests() - before - 1
                    res["origin_requests_during_hits"][peer] = res["origin_requests_during_hits"].get(peer, 0) + n
        res["rows"]["CONNECT tunnels (16), MB/s"] = {}
        for peer in ("outpost", "squid"):
            ctx.log(f"speed: CONNECT via {peer}")
            res["rows"]["CONNECT tunnels (16), MB/s"][peer] = tunnel(ctx, fresh(peer), seconds)
        for conns in (1, 16, 256, 4096):
            res["sweep"][conns] = {}
            for peer in PEERS:
                ctx.log(f"speed: sweep {conns} connections via {peer}")
                res["sweep"][conns][peer] = measure(ctx, servers[peer], f"{url}/1k", conns, seconds)
    finally:
        for s in servers.values():
            s.stop()
    res["seconds"] = seconds
    return res


def metric(runs, key):
    return stat3([r.get(key) for r in runs]) if runs else None


def tables(ctx, res):
    md = []
    heads = ["workload"] + [LABEL[p] for p in PEERS] + ["Outpost / Squid", "Outpost / nginx", "Outpost / ceiling"]

    def table(title, key, digits=None, higher_is_better=True, connect_key=None, note=""):
        rows = []
        for label, per in res["rows"].items():
            k = connect_key if label.startswith("CONNECT") else key
            if k is None:
                continue
            cells = [cell(metric(per.get(p), k), digits) for p in PEERS]
            med = {p: (metric(per.get(p), k) or (None,))[0] for p in PEERS}
            cells += [ratio(med["outpost"], med[p], higher_is_better) for p in ("squid", "nginx", "ceiling")]
            rows.append([label] + cells)
        md.append(f"**{title}**{note}\n\n" + md_table(heads, rows))

    table("Requests/s", "rps", connect_key="mbps", note=" (CONNECT: MB/s through 16 tunnels)")
    table("Latency p50, ms", "p50", 2, higher_is_better=False)
    table("Latency p99, ms", "p99", 2, higher_is_better=False)
    table("CPU seconds per 100k requests", "cpu_100k", 2, higher_is_better=False, connect_key="cpu_gib",
          note=" (CONNECT: per GiB relayed)")
    table("Peak RSS of the server during the run, MiB", "peak_rss_mib", 1, higher_is_better=False,
          connect_key="peak_rss_mib")
    errors = {f"{label} / {p}": sum(r["errors"] for r in runs)
              for label, per in res["rows"].items() for p, runs in per.items() if sum(r["errors"] for r in runs)}
    md.append("Origin requests during the timed fresh-hit runs (a hit must not reach the origin): "
              + ", ".join(f"{LABEL[p]} {n}" for p, n in res["origin_requests_during_hits"].items())
              + ". Errors (non-2xx/3xx or socket errors): "
              + (", ".join(f"{k}: {v}" for k, v in errors.items()) if errors else "none") + ".\n")

    sweep_heads = ["connections"] + [LABEL[p] for p in PEERS] + ["Outpost / Squid", "Outpost / nginx", "Outpost / ceiling"]
    for key, title, hib, digits in (("rps", "requests/s", True, None), ("p99", "p99 ms", False, 2)):
        rows = []
        for conns, per in res["sweep"].items():
            med = {p: (metric(per.get(p), key) or (None,))[0] for p in PEERS}
            rows.append([conns] + [cell(metric(per.get(p), key), digits) for p in PEERS]
                        + [ratio(med["outpost"], med[p], hib) for p in ("squid", "nginx", "ceiling")])
        md.append(f"**Concurrency sweep, fresh 1 KiB hits, {title}**\n\n" + md_table(sweep_heads, rows))
        md.append(plot(ctx, f"speed-sweep-{key}", f"Fresh 1 KiB hits: {title} by concurrent connections",
                       "connections (keep-alive)", title,
                       [(LABEL[p], [(c, (metric(per.get(p), key) or (None,))[0]) for c, per in res["sweep"].items()])
                        for p in PEERS], logx=True, logy=(key == "p99")))
    return "\n".join(md)


def run_section(ctx):
    res = run_suite(ctx)
    ctx.raw["speed"] = res
    head = f"""## Speed

wrk {ctx.runs} × {res['seconds']} s per row after a 1 s untimed warm-up, 64 keep-alive connections
(2 wrk threads) unless the row says otherwise; cells are the median [min–max] of the runs. Every
server runs unpinned on the same 2 cores as wrk. Origin: nginx (1 worker) serving 1 KiB / 64 KiB /
1 MiB random files, `expires 1h` with ETags; `/nc/` answers the same files with `no-store`, `/reval/`
with `no-cache`. Outpost (2 workers) and Squid (1 worker; its SMP mode needs a shared rock store)
are forward proxies given absolute-form requests; nginx proxy_cache (2 workers, upstream
keep-alive) is a reverse proxy; the ceiling is a second nginx (2 workers) serving the files itself.
Caches: 256 MiB of memory each (nginx: its file cache in the page cache). Ratios are Outpost's
figure over the peer's; ↓ marks a row where Outpost is behind (for latency, CPU and RSS a ratio
above 1 is behind). CPU is the server's user+system time from /proc; peak RSS is VmHWM, reset
before each run (for nginx, master plus workers); each row starts the proxies afresh. CONNECT: `loadgen connect` reads a byte stream
through 16 tunnels (nginx has no CONNECT). Rerun: `bench/run --only speed`.

"""
    return head + tables(ctx, res)
