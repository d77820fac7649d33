#!/usr/bin/env python3
"""Benchmark (not a test): c-ares (Debian 1.18, no query cache) against Outpost's DNS server and
Unbound, and Outpost's in-process resolver, on the same fake hierarchy (issue 5, "Benchmarks").

Inside a private network namespace, as root, from the repository:
  cmake --build build/release -j1 --target outpost cares_compare
  tests/integration/netns_run.sh python3 bench/dns/cares_compare.py \
      build/release/app/outpost build/release/bench/dns/cares_compare [runs] [names]
Needs the Debian packages nsd, unbound, libc-ares-dev.

The fixture's tree gets one extra leaf zone, many.test (NSD on 127.0.0.20, delegated from test.
with glue), holding n0.many.test ... n{names-1}.many.test (A only, 198.18.x.y, TTL 3600). The
fixture module is not changed: this script adds the zone to its ZONES table before starting it.

Per run, for each server (Outpost on 127.0.0.1:5300, Unbound on 127.0.0.1:5301, one worker /
one thread each, memory caches):
  cold  fresh server, c-ares asks every name once, INFLIGHT outstanding (one fresh start per level)
  warm  the same names again (now cached), INFLIGHT outstanding; INFLIGHT=1 is the per-lookup
        latency a client pays to a warm local recursive server
and in-process: a fresh ResolverContext (cache in a fresh memory-only cache::Store, as the app
builds it) looks every name up (Resolver::resolve, A+AAAA in parallel as the proxy does, and
Resolver::query for A only as c-ares asks; INFLIGHT outstanding), then looks each up again one at
a time on the warm cache.
Tables: median of the runs with min-max.

The functions below (the many.test zone, starting the servers by PID, one_run) are also what the
benchmark suite's DNS section uses (bench/suite/dns_suite.py, `bench/run --only dns`)."""
import os
import statistics
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import dnsfixture  # noqa: E402

sys.path.insert(0, HERE)
import unbound_peer  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "suite"))
from common import Proc  # noqa: E402  (servers started and stopped by PID)

COLD_INFLIGHT = [10, 100]
WARM_INFLIGHT = [1, 10, 100]
MANY_ADDR = "127.0.0.20"  # not used by the fixture (127.0.0.2-11) nor by dnsperf_vs_unbound.py (.30/.31)
SERVERS = {"outpost": ("127.0.0.1", 5300), "unbound": ("127.0.0.1", 5301)}
PROXY_PORT = 3199  # Outpost's proxy listener, unused by these benchmarks
_FIXTURE_ZONES = dnsfixture.ZONES  # the fixture's own table, before add_many_zone


def add_many_zone(n):
    """Adds many.test (n names) to the fixture's tree, leaving existing zones and addresses alone
    (replaces the one a previous call added)."""
    zones = {addr: dict(z) for addr, z in _FIXTURE_ZONES.items()}
    assert MANY_ADDR not in zones and all("many.test" not in body for z in zones.values() for body in z.values())
    zones["127.0.0.3"]["test."] += "many.test. 3600 IN NS ns1.many.test.\nns1.many.test. 3600 IN A %s\n" % MANY_ADDR
    body = dnsfixture.SOA.format(z="many.test.", minimum=3)
    body += "many.test. 3600 IN NS ns1.many.test.\nns1.many.test. 3600 IN A %s\n" % MANY_ADDR
    body += "".join("n%d.many.test. 3600 IN A 198.18.%d.%d\n" % (i, i // 250, i % 250 + 1) for i in range(n))
    zones[MANY_ADDR] = {"many.test.": body}
    dnsfixture.ZONES = zones


def write_names(path, n, suffix=""):
    """n0.many.test ... n{n-1}.many.test, one a line, each followed by SUFFIX (e.g. " A" for
    dnsperf); returns PATH."""
    with open(path, "w") as f:
        f.write("".join("n%d.many.test%s\n" % (i, suffix) for i in range(n)))
    return path


def probe(addr, port, timeout=10):
    """Waits until a server answers on UDP: an RD=0 query for ". NS" (answered from cache or
    refused; never sent upstream, so a cold server stays cold)."""
    q = struct.pack("!HHHHHH", 0x5151, 0, 1, 0, 0, 0) + b"\0" + struct.pack("!HH", 2, 1)
    if not dnsfixture.wait_udp_answer(addr, port, q, timeout, 0.1):
        raise RuntimeError("no answer from %s:%d" % (addr, port))


def start_outpost(outpost_bin, workdir, hints, workers=1, cpu=None, name="outpost-bench", anchor=None):
    """The outpost binary with its DNS server on SERVERS["outpost"] (WORKERS workers, each with
    its own SO_REUSEPORT listener), the DNS cache in the memory store (no disk tier), no access
    log; pinned to CPU (taskset) if given. ANCHOR (a file of DS/DNSKEY records): DNSSEC
    validation with that trust anchor (on by default); else validation off (the fake root is
    unsigned) -- the tests' harness.fake_root_keys. Returns the Proc once the server answers."""
    import harness
    addr, port = SERVERS["outpost"]
    conf = os.path.join(workdir, name + ".toml")
    with open(conf, "w") as f:
        f.write(f'[server]\nworkers = {workers}\n[log]\nlevel = "error"\naccess_log = ""\n'
                f'[proxy]\nlisten = ["127.0.0.1:{PROXY_PORT}"]\n[cache]\ndisk_dir = ""\n'
                f'[dns]\nlisten = ["{addr}:{port}"]\n' + harness.fake_root_keys(hints, anchor))
    p = Proc(name, [outpost_bin, "--config", conf], cwd=workdir, cpu=cpu)
    probe(addr, port)
    return p


def start_unbound(workdir, hints, threads=1, cpu=None, name="unbound-bench", anchor=None):
    """Unbound (unbound_peer's settings) on SERVERS["unbound"] with THREADS threads; pinned to CPU
    if given; validating with ANCHOR if given. Returns the Proc once it answers."""
    addr, port = SERVERS["unbound"]
    conf = unbound_peer.write_conf(workdir, addr, port, hints, threads=threads, name=name, anchor=anchor)
    p = Proc(name, unbound_peer.argv(conf), cwd=workdir, cpu=cpu)
    probe(addr, port)
    return p


def start_server(which, outpost_bin, workdir, hints, threads=1, cpu=None, anchor=None):
    """start_outpost or start_unbound by name ("outpost" / "unbound"), THREADS workers/threads,
    validating with ANCHOR if given (both get the same one)."""
    if which == "outpost":
        return start_outpost(outpost_bin, workdir, hints, workers=threads, cpu=cpu, anchor=anchor)
    return start_unbound(workdir, hints, threads=threads, cpu=cpu, anchor=anchor)


def run_program(program, *args):
    """Runs cares_compare (PROGRAM) with ARGS; returns {phase: [{metric: value}, ...]}."""
    out = subprocess.run([program, *map(str, args)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (args, out.stderr))
    rows = {}
    for line in out.stdout.splitlines():
        kv = dict(f.split("=", 1) for f in line.split())
        rows.setdefault(kv.pop("phase"), []).append({k: float(v) for k, v in kv.items()})
    return rows


def one_run(program, outpost_bin, workdir, hints, names_file, n, cold_inflight=COLD_INFLIGHT,
            warm_inflight=WARM_INFLIGHT, log=None):
    """One run of every measurement; returns {(phase, who, inflight): metrics}. For each server,
    one fresh start per cold in-flight level; after the last, the warm passes on that server.
    In-process (who = inproc_host / inproc_a): a fresh context per cold level, warm one at a time
    after the last. LOG(msg) is told about answers that were not all OK."""
    res = {}
    for name in SERVERS:
        target = "%s:%d" % SERVERS[name]
        for k in cold_inflight:
            p = start_server(name, outpost_bin, workdir, hints)
            try:
                res[("cold", name, k)] = run_program(program, "cares", target, names_file, k)["cares"][0]
                if k == cold_inflight[-1]:
                    for w in warm_inflight:
                        res[("warm", name, w)] = run_program(program, "cares", target, names_file, w)["cares"][0]
            finally:
                p.stop()
    for kind in ("host", "a"):
        for k in cold_inflight:
            rows = run_program(program, "inproc", hints, names_file, k, 1 if k == cold_inflight[-1] else 0,
                               "store", kind)
            res[("cold", "inproc_" + kind, k)] = rows["inproc_cold"][0]
            if "inproc_warm" in rows:
                res[("warm", "inproc_" + kind, 1)] = rows["inproc_warm"][0]
    for key, m in res.items():
        if m["ok"] != n:
            (log or (lambda msg: print(msg, file=sys.stderr)))("warning: %s answered %d of %d names" % (key, m["ok"], n))
    return res


def fmt(values, digits):
    med = statistics.median(values)
    return "%.*f (%.*f-%.*f)" % (digits, med, digits, min(values), digits, max(values))


def main():
    outpost_bin, program = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    n_runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    n_names = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
    add_many_zone(n_names)
    h = dnsfixture.Hierarchy()
    h.start()
    try:
        hints = h.write_hints()
        names_file = write_names(os.path.join(h.workdir, "many-names.txt"), n_names)
        runs = []
        for r in range(n_runs):
            runs.append(one_run(program, outpost_bin, h.workdir, hints, names_file, n_names))
            print("run %d done" % (r + 1), file=sys.stderr)
    finally:
        h.stop()
    keys = list(runs[0].keys())

    def col(key, metric):
        return [run[key][metric] for run in runs]

    print(f"\n{n_names} names n*.many.test, {n_runs} runs: median (min-max)\n")
    print("c-ares asking a server (A queries; latency per query, from ares_query to its callback)")
    print("| cache | client -> server | in flight | median us | p99 us | queries/s | total ms |")
    print("|---|---|---|---|---|---|---|")
    for key in keys:
        phase, who, k = key
        if who.startswith("inproc"):
            continue
        print(f"| {phase} | c-ares -> {who} | {k} | {fmt(col(key, 'median_us'), 1)} | {fmt(col(key, 'p99_us'), 1)} "
              f"| {fmt(col(key, 'qps'), 0)} | {fmt(col(key, 'total_ms'), 1)} |")
    print("\nWarm lookups one at a time (us per lookup)")
    print("| how | median us | p99 us | mean us |")
    print("|---|---|---|---|")
    for label, key in (("Outpost in-process Resolver::resolve (A+AAAA)", ("warm", "inproc_host", 1)),
                       ("Outpost in-process Resolver::query (A)", ("warm", "inproc_a", 1)),
                       ("c-ares -> Outpost server (A)", ("warm", "outpost", 1)),
                       ("c-ares -> Unbound (A)", ("warm", "unbound", 1))):
        print(f"| {label} | {fmt(col(key, 'median_us'), 2)} | {fmt(col(key, 'p99_us'), 2)} "
              f"| {fmt(col(key, 'mean_us'), 2)} |")
    print(f"\nCold resolution of {n_names} names (fresh context / fresh server)")
    print("| how | in flight | total ms | per-name median us | p99 us | names/s |")
    print("|---|---|---|---|---|---|")
    for k in COLD_INFLIGHT:
        for label, who in (("Outpost in-process resolve (fresh context, A+AAAA)", "inproc_host"),
                           ("Outpost in-process query (fresh context, A)", "inproc_a"),
                           ("c-ares -> cold Unbound (A)", "unbound"), ("c-ares -> cold Outpost server (A)", "outpost")):
            key = ("cold", who, k)
            print(f"| {label} | {k} | {fmt(col(key, 'total_ms'), 1)} | {fmt(col(key, 'median_us'), 1)} "
                  f"| {fmt(col(key, 'p99_us'), 1)} | {fmt(col(key, 'qps'), 0)} |")


if __name__ == "__main__":
    main()
