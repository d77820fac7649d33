"""DNS: Outpost's DNS server (the real `outpost` binary with a [dns] listener) against Unbound on
the fake hierarchy of tests/integration/dnsfixture (NSD on 127.0.0.x, fake root), plus the c-ares
comparison of the resolver issue (bench/dns/cares_compare, whose driver functions this reuses).

  1. Cache-hit throughput: dnsperf on a warmed server, 10 cached names (A, AAAA, MX, TXT, CNAME
     chain); 1 worker / 1 thread pinned (server CPU 0, dnsperf CPU 1), and 2 / 2 unpinned; then
     both setups again with bench/dns/dns_blast (batched sends and receives) as the client,
     because pinned dnsperf runs out of CPU on its core before either server does.
  2. Cold resolution: a fresh server per measurement, distinct names n*.many.test each asked once;
     c-ares at 1 and 10 in flight (per-name p50 / p99), dnsperf at 200 in flight (throughput).
  3. c-ares comparison: c-ares -> warm Outpost server vs c-ares -> warm Unbound, and Outpost's
     in-process lookups (Resolver::resolve / Resolver::query, no server hop).
  4. DNSSEC validation: the signed tree of tests/integration/dnsfixture/signed.py plus a signed
     many.test, both servers validating with the test root's DS as trust anchor: cache hits as
     in 1 on signed names, and cold resolution of the signed names at 100 in flight (validation
     on, and off for comparison).
Parts 1-3 run with validation off on both servers (the fake root there is unsigned: Outpost
`dnssec_validation = false`, its one setting off the default; Unbound `module-config: "iterator"`).
Every server is started and stopped by PID; the fixture's NSD servers too (by their pidfiles)."""
import os
import statistics
import sys
import time

import common
from common import cell, md_table, plot, ratio, stat3

sys.path.insert(0, os.path.join(common.ROOT, "bench", "dns"))
import cares_compare as cc  # noqa: E402  (also puts tests/integration on sys.path)
import dnsfixture  # noqa: E402
from dnsfixture import signed  # noqa: E402

# Cached names of the fixture for the cache-hit load (the set dnsperf_vs_unbound.py used).
HOT = ["www.a.test A", "www.a.test AAAA", "mail.a.test A", "final.a.test A", "host.b.example A",
       "chain.a.test A", "txt.a.test TXT", "a.test MX", "www.slow.test A", "long.count.test A"]
# Cached names of the signed tree (dnsfixture.signed) for cache hits with validation on: secure
# (NSEC and NSEC3 zones), a wildcard expansion, a CNAME, NODATA and NXDOMAIN proofs, an insecure
# (unsigned) zone, and a name of the signed many.test.
SIGNED_HOT = ["www.signed.test A", "www.nsec3.test A", "txt.signed.test TXT", "alias.signed.test A",
              "host.wild.signed.test A", "www.signed.test AAAA", "www.nsec3.test TXT", "nothere.signed.test A",
              "www.unsigned.test A", "n1.many.test A"]
SIGNED_COLD_INFLIGHT = 100
# (label, workers = Unbound threads, server CPU, dnsperf threads, dnsperf CPU); None = not pinned.
HIT_SETUPS = [("1 worker / 1 thread, server on CPU 0, dnsperf (1 thread) on CPU 1", 1, 0, 1, 1),
              ("2 workers / 2 threads, unpinned, dnsperf with 2 threads", 2, None, 2, None)]
# The same two setups with bench/dns/dns_blast as the timed client (sendmmsg/recvmmsg batches):
# dnsperf pays a system call per query and per answer and, pinned to its one core, runs out of
# CPU first (about 7.5 us per query against Outpost), so its pinned row measures dnsperf.
BLAST_SETUPS = [("1 worker / 1 thread, server on CPU 0, dns_blast (batched, 1 thread) on CPU 1", 1, 0, 1, 1),
                ("2 workers / 2 threads, unpinned, dns_blast (batched, 1 thread)", 2, None, 1, None)]
# dnsperf clients (source ports: SO_REUSEPORT spreads them over the server's threads) and queries
# in flight. More in flight overflows the servers' UDP receive buffers (RcvbufErrors in
# /proc/net/snmp, for both servers: at 500 a cold server dropped 2-5% of the queries).
HIT_CLIENTS, HIT_INFLIGHT = 10, 100
COLD_CLIENTS, COLD_INFLIGHT_DNSPERF = 20, 200
COLD_INFLIGHT = [1, 10]        # c-ares to a cold server (and fresh in-process contexts)
WARM_INFLIGHT = [1, 10, 100]   # c-ares to the same server, warm
WHO = {"outpost": "Outpost", "unbound": "Unbound"}


def params(ctx):
    """Durations and name counts for the mode (quick: about 30 s for the section, full: 2-3 min).
    Full mode asks c-ares for as many names as the resolver issue's figures (5000)."""
    if ctx.quick:
        return {"hit_seconds": 3, "warm_seconds": 1, "cold_names": 5000, "cares_names": 2000}
    return {"hit_seconds": 5, "warm_seconds": 1, "cold_names": 20000, "cares_names": 5000}


# ---------------------------------------------------------------- measuring

def dnsperf(server, qfile, seconds=None, clients=HIT_CLIENTS, inflight=HIT_INFLIGHT, threads=1, cpu=None, blast=None):
    """dnsperf against SERVER ("outpost" / "unbound") with CLIENTS clients, INFLIGHT outstanding,
    THREADS threads, pinned to CPU if given. SECONDS=None: one pass through QFILE (each name asked
    once). Returns qps, avg_ms, sent, completed, lost, rcodes. (dnsperf's run time, hence its
    queries/s, leaves out the wait for lost queries: check `lost`.) BLAST: the path of
    bench/dns/dns_blast, the batched client, instead of dnsperf (timed runs only)."""
    addr, port = cc.SERVERS[server]
    argv = ["dnsperf", "-s", addr, "-p", str(port), "-d", qfile, "-c", str(clients), "-q", str(inflight),
            "-T", str(threads), "-t", "2"] + (["-n", "1"] if seconds is None else ["-l", str(seconds)])
    if blast:  # bench/dns/dns_blast (a timed run, one thread; it prints dnsperf's summary lines)
        argv = [blast, "-s", addr, "-p", str(port), "-d", qfile, "-c", str(clients), "-q", str(inflight),
                "-t", "2", "-l", str(seconds)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    out = common.run(argv, timeout=(seconds or 0) + 120).stdout

    def field(label, cast=float):
        for line in out.splitlines():
            if line.strip().startswith(label + ":"):
                return cast(line.split(":", 1)[1].split()[0])
        raise SystemExit(f"dnsperf printed no {label!r}:\n{out[-1500:]}")

    rcodes = {}
    codes = next((ln.split(":", 1)[1] for ln in out.splitlines() if ln.strip().startswith("Response codes:")), "")
    for part in codes.split(","):  # "NOERROR 9 (90.00%), NXDOMAIN 1 (10.00%)"
        if part.split():
            rcodes[part.split()[0]] = int(part.split()[1])
    return {"qps": field("Queries per second"), "avg_ms": field("Average Latency (s)") * 1000,
            "sent": field("Queries sent", int), "completed": field("Queries completed", int),
            "lost": field("Queries lost", int), "rcodes": rcodes}


def measure_cache_hit(ctx, p, fx, hints, work, names=HOT, anchor=None, tag="hot"):
    """Per run, per setup, per server: a fresh server, warm-up (one pass through the names, then
    warm_seconds of load; not timed), then hit_seconds of dnsperf. Also the server's CPU seconds
    per 100k answers and how busy it was while timed, and how many queries for long.count.test
    reached its authoritative server (the fixture's counting relay) while timed: 0 when every
    answer was a cache hit. ANCHOR: both servers validate with that trust anchor."""
    hot = os.path.join(work, tag + ".txt")
    with open(hot, "w") as f:
        f.write("\n".join(names) + "\n")
    setups = HIT_SETUPS + BLAST_SETUPS
    blast_labels = {s[0] for s in BLAST_SETUPS}
    res = {label: {s: [] for s in cc.SERVERS} for label, *_ in setups}
    for r in range(ctx.runs):
        for label, threads, server_cpu, client_threads, client_cpu in setups:
            blast = ctx.bin("bench/dns/dns_blast") if label in blast_labels else None
            for server in cc.SERVERS:
                proc = cc.start_server(server, ctx.bin("app/outpost"), work, hints, threads, server_cpu, anchor)
                try:
                    dnsperf(server, hot, inflight=len(names), cpu=client_cpu)
                    dnsperf(server, hot, p["warm_seconds"], threads=client_threads, cpu=client_cpu)
                    upstream0, cpu0, t0 = fx.relay.count("long.count.test"), proc.cpu_seconds(), time.monotonic()
                    m = dnsperf(server, hot, p["hit_seconds"], threads=client_threads, cpu=client_cpu, blast=blast)
                    cpu = proc.cpu_seconds() - cpu0
                    m["cpu_busy_pct"] = cpu / (time.monotonic() - t0) * 100
                    m["cpu_s_100k"] = cpu / max(m["completed"], 1) * 1e5
                    m["upstream_during_run"] = fx.relay.count("long.count.test") - upstream0
                finally:
                    proc.stop()
                if m["upstream_during_run"] or m["lost"]:
                    ctx.log(f"dns: warning: {server} {label}: {m['lost']} lost, "
                            f"{m['upstream_during_run']} upstream queries while timed")
                res[label][server].append(m)
        ctx.log(f"dns: cache-hit ({tag}) run {r + 1}/{ctx.runs} done")
    return res


def measure_cold_dnsperf(ctx, p, hints, work, anchor=None, inflight=COLD_INFLIGHT_DNSPERF, names=None):
    """Per run, per server: a fresh (empty-cache) server, 1 thread, unpinned (the NSD servers need
    CPU too), dnsperf through cold_names distinct names once (NAMES: that query file instead),
    INFLIGHT outstanding; validating with ANCHOR if given."""
    names = names or cc.write_names(os.path.join(work, "cold-dnsperf.txt"), p["cold_names"], " A")
    res = {s: [] for s in cc.SERVERS}
    for _ in range(ctx.runs):
        for server in cc.SERVERS:
            proc = cc.start_server(server, ctx.bin("app/outpost"), work, hints, anchor=anchor)
            try:
                cpu0 = proc.cpu_seconds()
                m = dnsperf(server, names, clients=COLD_CLIENTS, inflight=inflight)
                m["cpu_us_per_query"] = (proc.cpu_seconds() - cpu0) / max(m["completed"], 1) * 1e6
                res[server].append(m)
            finally:
                proc.stop()
    return res


def measure_cares(ctx, p, hints, work):
    """ctx.runs runs of cares_compare's one_run (c-ares cold at COLD_INFLIGHT on fresh servers,
    warm at WARM_INFLIGHT; in-process cold and warm). Returns a list of {"phase/who/k": metrics}."""
    names = cc.write_names(os.path.join(work, "cares-names.txt"), p["cares_names"])
    runs = []
    for r in range(ctx.runs):
        res = cc.one_run(ctx.bin("bench/dns/cares_compare"), ctx.bin("app/outpost"), work, hints, names,
                         p["cares_names"], COLD_INFLIGHT, WARM_INFLIGHT, log=lambda msg: ctx.log("dns: " + msg))
        runs.append({"/".join(map(str, k)): v for k, v in res.items()})
        ctx.log(f"dns: c-ares run {r + 1}/{ctx.runs} done")
    return runs


def signed_hierarchy(work, n):
    """dnsfixture.signed's tree (signed root as the trust anchor, test., signed/NSEC3/unsigned
    children...) plus many.test. with N names (n0.many.test ...), signed ECDSAP256SHA256 with
    NSEC (as most signed zones are), on the children's server 127.0.0.5."""
    body = "".join("n%d.many.test. 3600 IN A 198.18.%d.%d\n" % (i, i // 250 % 250, i % 250 + 1) for i in range(n))
    signed.CHILDREN["many.test."] = ("ECDSAP256SHA256", [], body)
    try:
        return signed.SignedHierarchy(workdir=os.path.join(work, "signed"))
    finally:
        del signed.CHILDREN["many.test."]


def wait_stopped(fx):
    """Hierarchy.stop() signals the NSD servers; wait until they are gone (their addresses are
    reused by the next tree)."""
    pids = []
    for pidfile in fx.nsd_pids:
        try:
            with open(pidfile) as f:
                pids.append(int(f.read().strip()))
        except (OSError, ValueError):
            pass
    fx.stop()
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
        time.sleep(0.05)


def measure_dnssec(ctx, p, work):
    """The signed tree: cache hits with validation on (both servers given the test root's DS as
    their only trust anchor), then cold resolution of the signed many.test names at
    SIGNED_COLD_INFLIGHT in flight, with validation on and, for comparison, off."""
    t0 = time.monotonic()
    fx = signed_hierarchy(work, p["cold_names"])
    ctx.log(f"dns: signed tree made in {time.monotonic() - t0:.1f} s")
    try:
        fx.start()
        hints, anchor = fx.write_hints(), fx.tree.anchor_file
        hit = measure_cache_hit(ctx, p, fx, hints, work, names=SIGNED_HOT, anchor=anchor, tag="signed-hot")
        names = cc.write_names(os.path.join(work, "signed-cold.txt"), p["cold_names"], " A")
        cold_on = measure_cold_dnsperf(ctx, p, hints, work, anchor=anchor, inflight=SIGNED_COLD_INFLIGHT, names=names)
        cold_off = measure_cold_dnsperf(ctx, p, hints, work, inflight=SIGNED_COLD_INFLIGHT, names=names)
        ctx.log("dns: signed cold dnsperf done")
    finally:
        wait_stopped(fx)
    return {"cache_hit": hit, "cold_validating": cold_on, "cold_not_validating": cold_off}


# ---------------------------------------------------------------- tables

def side_by_side(label, measure, outpost, unbound, digits=None, higher_is_better=True):
    """A table row: Outpost's and Unbound's figures (median [min-max] of the runs) and the ratio of
    the medians."""
    o, u = stat3(outpost), stat3(unbound)
    r = ratio(o and o[0], u and u[0], bool(higher_is_better))
    if higher_is_better is None:  # neither better nor worse (e.g. how busy the server was)
        r = r.replace(" ↓", "")
    return [label, measure, cell(o, digits), cell(u, digits), r]


def hit_table(res):
    rows = []
    for label, *_ in HIT_SETUPS + BLAST_SETUPS:
        o, u = res[label]["outpost"], res[label]["unbound"]
        for key, measure, digits, hib in (("qps", "queries/s", 0, True), ("avg_ms", "average latency, ms", 3, False),
                                          ("lost", "queries lost", 0, False),
                                          ("cpu_busy_pct", "server CPU busy, % of one core", 0, None),
                                          ("cpu_s_100k", "server CPU s per 100k queries", 2, False)):
            rows.append(side_by_side(label, measure, [m[key] for m in o], [m[key] for m in u], digits, hib))
    return md_table(["setup", "measure", "Outpost", "Unbound", "Outpost/Unbound"], rows)


def cares_col(runs, key, metric):
    return [r[key][metric] for r in runs if key in r]


def cold_table(cares_runs, cold_dnsperf, p):
    rows = []
    for k in COLD_INFLIGHT:
        label = f"c-ares, {k} in flight, {p['cares_names']} names"
        measures = [("median_us", "per-name median, µs", False), ("p99_us", "per-name p99, µs", False)]
        if k > 1:
            measures.append(("qps", "names/s", True))
        for metric, measure, hib in measures:
            rows.append(side_by_side(label, measure, cares_col(cares_runs, f"cold/outpost/{k}", metric),
                                     cares_col(cares_runs, f"cold/unbound/{k}", metric), None, hib))
    label = f"dnsperf, {COLD_INFLIGHT_DNSPERF} in flight, {p['cold_names']} names"
    for key, measure, digits, hib in (("qps", "queries/s", 0, True), ("avg_ms", "average latency, ms", 2, False),
                                      ("lost", "queries lost", 0, False),
                                      ("cpu_us_per_query", "server CPU µs per query", 0, False)):
        rows.append(side_by_side(label, measure, [m[key] for m in cold_dnsperf["outpost"]],
                                 [m[key] for m in cold_dnsperf["unbound"]], digits, hib))
    return md_table(["client, load", "measure", "Outpost", "Unbound", "Outpost/Unbound"], rows)


def signed_cold_table(res, p):
    rows = []
    for key, how in (("cold_validating", "validation on"), ("cold_not_validating", "validation off")):
        label = f"dnsperf, {SIGNED_COLD_INFLIGHT} in flight, {p['cold_names']} signed names, {how}"
        for measure, digits, hib, get in (("queries/s", 0, True, lambda m: m["qps"]),
                                          ("average latency, ms", 2, False, lambda m: m["avg_ms"]),
                                          ("queries lost", 0, False, lambda m: m["lost"]),
                                          ("server CPU µs per query", 0, False, lambda m: m["cpu_us_per_query"]),
                                          ("answers not NOERROR", 0, False,
                                           lambda m: m["completed"] - m["rcodes"].get("NOERROR", 0))):
            rows.append(side_by_side(label, measure, [get(m) for m in res[key]["outpost"]],
                                     [get(m) for m in res[key]["unbound"]], digits, hib))
    return md_table(["client, load", "measure", "Outpost", "Unbound", "Outpost/Unbound"], rows)


def warm_table(cares_runs):
    rows = []
    for k in WARM_INFLIGHT:
        label = f"c-ares → warm server, {k} in flight"
        for metric, measure, hib in (("median_us", "median, µs", False), ("p99_us", "p99, µs", False),
                                     ("qps", "queries/s", True)):
            rows.append(side_by_side(label, measure, cares_col(cares_runs, f"warm/outpost/{k}", metric),
                                     cares_col(cares_runs, f"warm/unbound/{k}", metric), None, hib))
    return md_table(["client, load", "measure", "Outpost server", "Unbound", "Outpost/Unbound"], rows)


def inproc_table(cares_runs):
    """Outpost's in-process lookups next to what a c-ares client pays a server for the same names
    in the same state (warm: 1 in flight; cold: same in-flight level, fresh server)."""
    rows = []
    cases = [("warm", 1)] + [("cold", k) for k in COLD_INFLIGHT]
    for phase, k in cases:
        for kind, how in (("host", "`Resolver::resolve` (A+AAAA)"), ("a", "`Resolver::query` (A)")):
            key = f"{phase}/inproc_{kind}/{k}"
            med = stat3(cares_col(cares_runs, key, "median_us"))
            via_o = stat3(cares_col(cares_runs, f"{phase}/outpost/{k}", "median_us"))
            via_u = stat3(cares_col(cares_runs, f"{phase}/unbound/{k}", "median_us"))
            rows.append([f"{phase}, {k} in flight", how, cell(med), cell(stat3(cares_col(cares_runs, key, "p99_us"))),
                         cell(via_u), ratio(med and med[0], via_o and via_o[0], False),
                         ratio(med and med[0], via_u and via_u[0], False)])
    return md_table(["cache, load", "in-process lookup", "median µs", "p99 µs", "c-ares → Unbound median µs",
                     "in-process / c-ares → Outpost server", "in-process / c-ares → Unbound"], rows)


def latency_plot(ctx, cares_runs):
    """Median per-query latency of c-ares -> server against queries in flight, warm and cold."""
    series = []
    for phase, levels in (("warm", WARM_INFLIGHT), ("cold", COLD_INFLIGHT)):
        for server in cc.SERVERS:
            pts = [(k, statistics.median(v) if (v := cares_col(cares_runs, f"{phase}/{server}/{k}", "median_us"))
                    else None) for k in levels]
            series.append((f"c-ares -> {WHO[server]} ({phase})", pts))
    return plot(ctx, "dns_cares_latency", "c-ares -> local recursive server: median latency per query",
                "queries in flight", "median latency (us)", series, logx=True, logy=True)


# ---------------------------------------------------------------- the section

def run_section(ctx):
    p = params(ctx)
    work = ctx.dir("dns")
    cc.add_many_zone(max(p["cold_names"], p["cares_names"]))
    fx = dnsfixture.Hierarchy(workdir=work)
    load = os.getloadavg()
    try:
        fx.start()
        hints = fx.write_hints()
        hit = measure_cache_hit(ctx, p, fx, hints, work)
        cold = measure_cold_dnsperf(ctx, p, hints, work)
        ctx.log("dns: cold dnsperf done")
        cares_runs = measure_cares(ctx, p, hints, work)
    finally:
        wait_stopped(fx)
    dnssec = measure_dnssec(ctx, p, work)
    ctx.raw["dns"] = {"params": p, "loadavg_at_start": load, "cache_hit": hit, "cold_dnsperf": cold,
                      "cares": cares_runs, "dnssec": dnssec,
                      "servers": {s: "%s:%d" % a for s, a in cc.SERVERS.items()}}
    runs = f"{ctx.runs} runs, median [min–max]" if ctx.runs > 1 else "1 run"
    addr_o, addr_u = ("%s:%d" % cc.SERVERS[s] for s in ("outpost", "unbound"))
    upstream = sum(m["upstream_during_run"] for setup in hit.values() for ms in setup.values() for m in ms)
    return f"""## DNS

Outpost's DNS server against Unbound, both recursive on the same fake hierarchy (NSD on loopback:
fake root 127.0.0.2, `test.`, `example.`, leaf zones, and `many.test` with {max(p['cold_names'], p['cares_names'])} A names
on 127.0.0.20), then the c-ares comparison of the resolver issue. {runs} per figure; ratios are Outpost / Unbound (↓: Outpost behind). Load average
when the section started: {load[0]:.2f} (the 2 cores are shared with whatever else runs).

- Rerun: `bench/run --only dns` (`bench/run --quick --only dns`: 1 run, shorter). The c-ares part
  alone, with its own tables (cold at 10 and 100 in flight): `tests/integration/netns_run.sh python3
  bench/dns/cares_compare.py build/release/app/outpost build/release/bench/dns/cares_compare 3 5000`.
- Outpost: `outpost --config` with `[server] workers = N`, `[dns] listen = ["{addr_o}"]`,
  `hints` = the fake root, `dnssec_validation = false` (validation is on by default; this tree is
  unsigned), `[cache] disk_dir = ""` (the DNS cache in the 256 MiB memory store),
  `[log] level = "error"`, `access_log = ""`, proxy on 127.0.0.1:{cc.PROXY_PORT} (unused).
- Unbound on {addr_u}: `num-threads: N`, `so-reuseport: yes`, `module-config: "iterator"`,
  msg/rrset caches 64m/128m, `do-ip6: no`, `do-not-query-localhost: no`, same root hints
  (both configs under `configs/dns/`).
- dnsperf: {HIT_CLIENTS} clients and {HIT_INFLIGHT} queries in flight for cache hits, {COLD_CLIENTS} clients and
  {COLD_INFLIGHT_DNSPERF} in flight for cold names (at 500 both servers' UDP receive buffers overflowed), timeout 2 s.

### Cache-hit throughput (dnsperf)

{len(HOT)} cached names (A, AAAA, MX, TXT, a CNAME chain across zones), fresh server per
measurement, warm-up not timed (one pass through the names, then {p['warm_seconds']} s of load), then
{p['hit_seconds']} s of dnsperf. Same number of Outpost workers as Unbound threads. Pinned rows: `taskset`
puts the server on CPU 0 and dnsperf on CPU 1 (the machine has 2 cores and dnsperf needs one);
unpinned rows: 2 server threads and 2 dnsperf threads share both cores. On this machine one
dnsperf cannot keep a cache-hitting server busy: where the server's CPU is below 100% of a core
per thread, queries/s is the client's limit, and the server's CPU seconds per 100k answers (from
/proc, lower is better) is the fairer capacity figure. Queries for `long.count.test` that reached
its authoritative server while timed (counted by the fixture's relay): {upstream}.

{hit_table(hit)}
### Cold resolution

Each measurement on a freshly started server (empty cache), 1 worker / 1 thread, unpinned (the NSD
servers, the client and the resolver share the 2 cores); distinct names `n*.many.test`, each asked
once: one upstream exchange each once the delegation `many.test` is cached. c-ares: per-name
latency from `ares_query` to its callback (A questions). dnsperf: one pass through the names.

{cold_table(cares_runs, cold, p)}
### c-ares comparison (resolver issue)

c-ares 1.18 (no query cache) asking the warm server again for the same {p['cares_names']} names
(`bench/dns/cares_compare cares`, right after the {COLD_INFLIGHT[-1]}-in-flight cold pass):

{warm_table(cares_runs)}
Outpost's in-process resolver (`cares_compare inproc`: a fresh `ResolverContext` over a memory-only
`cache::Store`, as the proxy builds it; no server, no socket to the client): warm = the same names
again one at a time, from the call to its callback; cold = a fresh context, each name once.
`resolve` asks A and AAAA in parallel (what the proxy does per origin host; two upstream questions
per cold name), `query` asks A only (what c-ares asks).

{inproc_table(cares_runs)}
{latency_plot(ctx, cares_runs)}
### DNSSEC validation (signed tree)

The signed tree of the `resolver.dnssec` test (`tests/integration/dnsfixture/signed.py`, signed
at the start of the section by dnssec-signzone: RSASHA256 root, ECDSA P-256 `test.`, ECDSA
P-384 / Ed25519 NSEC3 / unsigned / ... children) with one more child, `many.test`
({p['cold_names']} A names, ECDSA P-256, NSEC). Both servers validate with the same trust anchor,
the test root's DS (Outpost: `[dns] trust_anchor_file`, validation on as by default; Unbound:
`module-config: "validator iterator"`, `trust-anchor-file`); every other setting as above.
Queries without DO (as stub resolvers ask).

Cache hits, as above, on {len(SIGNED_HOT)} cached names of the signed tree (secure NSEC and NSEC3
answers, a wildcard expansion, a CNAME, NODATA and NXDOMAIN, an insecure zone):

{hit_table(dnssec["cache_hit"])}
Cold resolution of the signed names `n*.many.test`, each asked once, {SIGNED_COLD_INFLIGHT} in flight,
{COLD_CLIENTS} dnsperf clients, a fresh server each (1 worker / 1 thread, unpinned); each name
needs one upstream exchange and one RRSIG verification once `many.test`'s keys are validated.
The same with validation off on both servers shows what validating costs each:

{signed_cold_table(dnssec, p)}"""


run = run_section  # the name the brief used
