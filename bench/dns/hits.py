#!/usr/bin/env python3
"""Cache-hit throughput only, Outpost beside Unbound, short and repeatable: the cache-hit rows of
`bench/run --only dns` (bench/suite/dns_suite.py: same names, servers, dnsperf settings and
setups) without the cold, c-ares and DNSSEC parts, the two servers interleaved run by run so a
change of load on a shared machine hits both alike. Optionally `perf stat` counts the server's
instructions (user and kernel) per answered query while timed.

Run inside the bench's network namespace, with a Release build, holding the build lock:
  flock /tmp/coord/build.lock tests/integration/netns_run.sh python3 bench/dns/hits.py \\
      --build build/release --runs 5 --seconds 3 [--perf] [--signed] [--client blast]
--signed: the signed tree (dnsfixture.signed), both servers validating with its root's DS.
--client blast: bench/dns/dns_blast (batched sendmmsg/recvmmsg) times the load instead of
dnsperf, which runs out of CPU on its pinned core first.
Prints one line per run and server (with the server's sleeps — voluntary context switches — and
the client's CPU per query), then the medians and Outpost/Unbound ratios."""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "suite"))
import common  # noqa: E402
import dns_suite  # noqa: E402  (puts bench/dns and tests/integration on sys.path)
from dns_suite import cc, dnsfixture  # noqa: E402


def perf_start(pid):
    return subprocess.Popen(["perf", "stat", "-x,", "-e", "instructions:u,instructions:k", "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_stop(p):
    p.send_signal(2)
    err = p.communicate(timeout=20)[1]
    counts = {}
    for line in err.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].strip().isdigit():
            counts[f[2].split(":")[-1]] = int(f[0])
    return counts


def sleeps(pid):
    """The server's voluntary context switches so far (each one a sleep in epoll_wait, mostly),
    summed over its threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
        except (OSError, StopIteration):
            pass
    return total


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(common.ROOT, "build", "release"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--signed", action="store_true")
    ap.add_argument("--setups", default="pinned,unpinned")
    ap.add_argument("--client", choices=("dnsperf", "blast"), default="dnsperf",
                    help="the timed load: dnsperf, or bench/dns/dns_blast (sendmmsg/recvmmsg batches, one thread: "
                         "about 1 us of client CPU per query, so the server is what saturates)")
    ap.add_argument("--cold", type=int, default=0,
                    help="instead: cold resolution of N signed many.test names at 100 in flight, validation off "
                         "and on (the bench's signed cold rows), with every rcode")
    args = ap.parse_args()
    outpost = os.path.join(os.path.abspath(args.build), "app", "outpost")
    blast = os.path.join(os.path.abspath(args.build), "bench", "dns", "dns_blast") if args.client == "blast" else None
    if blast and not os.access(blast, os.X_OK):
        raise SystemExit(f"{blast} is not built: cmake --build {args.build} --target dns_blast")
    work = tempfile.mkdtemp(prefix="outpost-hits.")
    os.chmod(work, 0o755)
    if args.cold:
        return cold(args, outpost, work)
    setups = [s for s in dns_suite.HIT_SETUPS if ("pinned" if s[2] is not None else "unpinned") in args.setups.split(",")]
    if args.signed:
        fx = dns_suite.signed_hierarchy(work, 10)
        names = dns_suite.SIGNED_HOT
    else:
        fx = dnsfixture.Hierarchy(workdir=work)
        names = dns_suite.HOT
    hot = os.path.join(work, "hot.txt")
    with open(hot, "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    res = {}
    try:
        fx.start()
        hints = fx.write_hints()
        anchor = fx.tree.anchor_file if args.signed else None
        for r in range(args.runs):
            for label, threads, server_cpu, client_threads, client_cpu in setups:
                short = "pinned" if server_cpu is not None else "unpinned"
                for server in (cc.SERVERS if r % 2 == 0 else list(cc.SERVERS)[::-1]):
                    proc = cc.start_server(server, outpost, work, hints, threads, server_cpu, anchor)
                    try:
                        dns_suite.dnsperf(server, hot, inflight=len(names), cpu=client_cpu)
                        dns_suite.dnsperf(server, hot, 1, threads=client_threads, cpu=client_cpu)
                        perf = perf_start(proc.pid) if args.perf else None
                        cpu0, t0, sl0, cc0 = proc.cpu_seconds(), time.monotonic(), sleeps(proc.pid), children_cpu()
                        m = dns_suite.dnsperf(server, hot, args.seconds, threads=client_threads, cpu=client_cpu,
                                              blast=blast)
                        cpu = proc.cpu_seconds() - cpu0
                        m["sleeps"] = (sleeps(proc.pid) - sl0) / max(m["completed"], 1)
                        m["client_us"] = (children_cpu() - cc0) / max(m["completed"], 1) * 1e6
                        m["busy"] = cpu / (time.monotonic() - t0) * 100
                        m["cpu_us"] = cpu / max(m["completed"], 1) * 1e6
                        if perf:
                            c = perf_stop(perf)
                            m["insn_u"] = c.get("u", 0) / max(m["completed"], 1)
                            m["insn_k"] = c.get("k", 0) / max(m["completed"], 1)
                    finally:
                        proc.stop()
                    res.setdefault(short, {}).setdefault(server, []).append(m)
                    extra = f" insn/q user {m['insn_u']:.0f} kernel {m['insn_k']:.0f}" if args.perf else ""
                    print(f"run {r + 1} {short:8} {server:7} {m['qps']:9.0f} q/s  avg {m['avg_ms']:.3f} ms  "
                          f"cpu {m['cpu_us']:.2f} us/q  busy {m['busy']:.0f}%  sleeps/q {m['sleeps']:.3f}  "
                          f"dnsperf cpu {m['client_us']:.2f} us/q  lost {m['lost']} "
                          f"rcodes {m['rcodes']}{extra}  load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        dns_suite.wait_stopped(fx)
    print("medians:")
    for short, by in res.items():
        med = {s: {k: statistics.median(x[k] for x in ms) for k in ms[0] if isinstance(ms[0][k], (int, float))}
               for s, ms in by.items()}
        o, u = med["outpost"], med["unbound"]
        line = (f"  {short:8} q/s {o['qps']:.0f} vs {u['qps']:.0f} = {o['qps'] / u['qps']:.2f}x; "
                f"avg ms {o['avg_ms']:.3f} vs {u['avg_ms']:.3f}; cpu us/q {o['cpu_us']:.2f} vs {u['cpu_us']:.2f}; "
                f"server sleeps/q {o['sleeps']:.3f} vs {u['sleeps']:.3f}; "
                f"dnsperf cpu us/q {o['client_us']:.2f} vs {u['client_us']:.2f}")
        if args.perf:
            line += (f"; insn/q user {o['insn_u']:.0f} vs {u['insn_u']:.0f}, "
                     f"kernel {o['insn_k']:.0f} vs {u['insn_k']:.0f}")
        print(line)
    print(f"load average at end: {os.getloadavg()}")


def cold(args, outpost, work):
    fx = dns_suite.signed_hierarchy(work, args.cold)
    names = cc.write_names(os.path.join(work, "cold.txt"), args.cold, " A")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    try:
        fx.start()
        hints = fx.write_hints()
        res = {}
        for r in range(args.runs):
            for mode, anchor in (("off", None), ("on", fx.tree.anchor_file)):
                for server in (cc.SERVERS if r % 2 == 0 else list(cc.SERVERS)[::-1]):
                    proc = cc.start_server(server, outpost, work, hints, anchor=anchor)
                    try:
                        m = dns_suite.dnsperf(server, names, clients=dns_suite.COLD_CLIENTS,
                                              inflight=dns_suite.SIGNED_COLD_INFLIGHT)
                    finally:
                        proc.stop()
                    res.setdefault(mode, {}).setdefault(server, []).append(m)
                    print(f"cold run {r + 1} validation {mode:3} {server:7} {m['qps']:8.0f} q/s lost {m['lost']} "
                          f"rcodes {m['rcodes']} load {os.getloadavg()[0]:.2f}", flush=True)
        print("medians:")
        for mode, by in res.items():
            o, u = (statistics.median(m["qps"] for m in by[s]) for s in ("outpost", "unbound"))
            bad = {s: sum(m["completed"] - m["rcodes"].get("NOERROR", 0) + m["lost"] for m in by[s]) for s in by}
            print(f"  validation {mode:3} q/s {o:.0f} vs {u:.0f} = {o / u:.2f}x; not NOERROR or lost, all runs: "
                  f"outpost {bad['outpost']}, unbound {bad['unbound']}")
    finally:
        dns_suite.wait_stopped(fx)


if __name__ == "__main__":
    main()
