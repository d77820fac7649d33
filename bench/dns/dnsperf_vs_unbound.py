#!/usr/bin/env python3
"""Benchmark (not a test): Outpost's DNS server vs. Unbound on the same fake hierarchy, inside a
private network namespace, with dnsperf. Cache-hit throughput (one name set, warmed) and cold
resolution (distinct names, fresh servers). Same worker/thread count for both.

Run as root from the repository: tests/integration/netns_run.sh python3 bench/dns/dnsperf_vs_unbound.py \
    build/release/tests/integration/resolver/dns_server [seconds] [threads]
Needs the Debian packages nsd, unbound, dnsperf."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
import dnsfixture  # noqa: E402
import harness  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import unbound_peer  # noqa: E402

DNS_SERVER = sys.argv[1]
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
OUTPOST, UNBOUND = "127.0.0.30", "127.0.0.31"
HOT = ["www.a.test A", "www.a.test AAAA", "mail.a.test A", "final.a.test A", "host.b.example A",
       "chain.a.test A", "txt.a.test TXT", "a.test MX", "www.slow.test A", "long.count.test A"]


def dnsperf(server, qfile, seconds, clients=20, inflight=500):
    """seconds=0: go through the file once (every name asked once: a cold run)."""
    limit = ["-n", "1"] if seconds == 0 else ["-l", str(seconds)]
    out = subprocess.run(["dnsperf", "-s", server, "-d", qfile, "-c", str(clients), "-q", str(inflight), "-t", "5"]
                         + limit, capture_output=True, text=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out).group(1)
    return qps, float(lat.group(1)) * 1000 if lat else 0, int(lost)


def start_outpost(workdir, hints):
    conf = os.path.join(workdir, "bench.toml")
    with open(conf, "w") as f:
        f.write(f'[server]\nworkers = {THREADS}\n[log]\nlevel = "error"\n[dns]\nlisten = ["{OUTPOST}:53"]\n'
                + harness.fake_root_keys(hints))  # unsigned tree: validation off, as Unbound's "iterator"
    p = subprocess.Popen([DNS_SERVER, conf], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def start_unbound(workdir, hints):
    p = unbound_peer.start_unbound(workdir, UNBOUND, 53, hints, threads=THREADS)
    time.sleep(0.5)
    return p


def main():
    with dnsfixture.Hierarchy() as h:
        hints = h.write_hints()
        hot = os.path.join(h.workdir, "hot.txt")
        with open(hot, "w") as f:
            f.write("\n".join(HOT) + "\n")
        # Distinct names, each asked once: one upstream query each (NXDOMAIN from the leaf).
        cold_names = [f"n{i}.a.test A" for i in range(30000)]
        results = {}
        for name, start in (("outpost", start_outpost), ("unbound", start_unbound)):
            addr = OUTPOST if name == "outpost" else UNBOUND
            p = start(h.workdir, hints)
            try:
                cold = os.path.join(h.workdir, f"cold-{name}.txt")
                with open(cold, "w") as f:
                    f.write("\n".join(cold_names) + "\n")
                dnsperf(addr, hot, 1)  # warm
                results[name] = {
                    "hit": dnsperf(addr, hot, SECONDS),
                    "cold": dnsperf(addr, cold, 0, clients=10, inflight=100),
                }
            finally:
                p.terminate()
                p.wait()
        for name, r in results.items():
            print(f"{name:8} cache-hit {r['hit'][0]:>10.0f} q/s (avg {r['hit'][1]:.3f} ms, lost {r['hit'][2]})   "
                  f"cold {r['cold'][0]:>8.0f} q/s (avg {r['cold'][1]:.3f} ms, lost {r['cold'][2]})")
        print(f"ratio outpost/unbound cache-hit: {results['outpost']['hit'][0] / results['unbound']['hit'][0]:.2f}")


if __name__ == "__main__":
    main()
