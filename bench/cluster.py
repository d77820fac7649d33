"""The cluster figures of the deployment issue, with deploy/cluster/cluster.py (HAProxy,
`balance uri whole` + `hash-type consistent`, over Outpost nodes on 127.0.1.x):
  1. hit ratio of the bench trace (bench/loadgen replay, the hit-rate section's synthetic trace)
     through HAProxy + 3 nodes with M of memory each vs one node with 3 x M (goal: within 2%);
  2. the share of URLs that change node when one of three leaves (goal: about 1/3, never all):
     X-Cache names the node that answered each of K URLs before and after;
  3. 1 KiB hits per second (wrk -t2 -c64, 64 URLs) through HAProxy + 3 nodes vs one node
     directly, and the p99 the HAProxy hop adds.
Nodes run the default config except: one worker each (three nodes share two cores), memory
only (cache.disk_dir = ""), fake root hints, quiet logs, the origin's network allowed.

  bench/run builds build/release; then, as root:
  tests/integration/netns_run.sh python3 bench/cluster.py [--memory-mib 16] [--urls 1500]"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "suite"))
import peers  # noqa: E402

CLUSTER = os.path.join(ROOT, "deploy", "cluster", "cluster.py")
BUILD = os.path.join(ROOT, "build", "release")
ORIGIN = 18181
FRONT = 3128
MIB = 1 << 20


def up(d, nodes, memory, outpost, hints):
    sets = [f"dns.hints={json.dumps(hints)}", "server.workers=1", 'cache.disk_dir=""', f"cache.memory_size={memory}",
            'acl.allow_networks=["127.0.0.0/8"]', 'log.level="warn"', 'log.access_log=""']
    argv = [sys.executable, CLUSTER, "up", "--dir", d, "--nodes", str(nodes), "--outpost", outpost,
            "--listen", f"127.0.0.1:{FRONT}"]
    for s in sets:
        argv += ["--set", s]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def down(d):
    subprocess.run([sys.executable, CLUSTER, "down", "--dir", d, "--grace", "5"], check=True, stdout=subprocess.DEVNULL)


def replay(proxy, spec):
    out = subprocess.run([os.path.join(BUILD, "bench/loadgen/loadgen"), "replay", "--proxy", proxy,
                          "--origin", f"127.0.0.1:{ORIGIN}", "--trace", spec, "--concurrency", "32"],
                         capture_output=True, text=True, check=True, timeout=3600).stdout
    return json.loads(out.strip().splitlines()[-1])


def node_of(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{FRONT}"}))
    with opener.open(url, timeout=10) as r:
        r.read()
        m = re.search(r"from (node-\d+)", r.headers.get("X-Cache", ""))
        return m.group(1) if m else "?"


def wrk(target_proxy, urls_lua, seconds=8):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "-s", urls_lua, f"http://{target_proxy}"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memory-mib", type=int, default=16, help="M: memory per node of the three")
    ap.add_argument("--urls", type=int, default=1500, help="K: URLs for the moved-share figure")
    a = ap.parse_args()
    outpost = os.path.join(BUILD, "app", "outpost")
    work = tempfile.mkdtemp(prefix="bench-cluster-")
    hints = os.path.join(work, "root.hints")
    with open(hints, "w") as f:
        f.write(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n")
    origin = subprocess.Popen([os.path.join(BUILD, "bench/loadgen/loadgen"), "origin", "--listen",
                               f"127.0.0.1:{ORIGIN}", "--threads", "1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    peers.wait_port(ORIGIN)
    spec = ("synthetic:objects=8000,requests=80000,alpha=0.8,seed=1,size_median=8192,size_sigma=1.5,"
            "size_max=1048576,mix=c80/n5/s10/v5,reval=10")
    M = a.memory_mib * MIB
    try:
        # 1. Hit ratio: one node with 3M, then three nodes with M behind HAProxy.
        d1 = os.path.join(work, "one")
        up(d1, 1, 3 * M, outpost, hints)
        one = replay("127.0.1.1:3128", spec)
        down(d1)
        d3 = os.path.join(work, "three")
        up(d3, 3, M, outpost, hints)
        three = replay(f"127.0.0.1:{FRONT}", spec)
        print(f"hit ratio, trace {spec}")
        for label, r in ((f"one node, {3 * a.memory_mib} MiB", one), (f"HAProxy + 3 nodes x {a.memory_mib} MiB", three)):
            print(f"  {label:32s} object {r['object_hit_ratio']:.4f}  byte {r['byte_hit_ratio']:.4f}  "
                  f"req/s {r.get('rps', 0):.0f}")
        print(f"  cluster / one node: object {three['object_hit_ratio'] / one['object_hit_ratio']:.3f}, "
              f"byte {three['byte_hit_ratio'] / one['byte_hit_ratio']:.3f} (goal: within 2%)", flush=True)

        # 3. Throughput and the HAProxy hop (the same three nodes, warm), before one leaves.
        lua = os.path.join(work, "urls.lua")
        with open(lua, "w") as f:
            f.write('local n = 0\nrequest = function()\n  n = n % 64 + 1\n'
                    f'  return wrk.format("GET", "http://127.0.0.1:{ORIGIN}/o/" .. (900000 + n) .. "/1024/c")\nend\n')
        for i in range(64):
            node_of(f"http://127.0.0.1:{ORIGIN}/o/{900001 + i}/1024/c")
        rps3, p99_3 = wrk(f"127.0.0.1:{FRONT}", lua)
        down(d3)
        d1b = os.path.join(work, "one-b")
        up(d1b, 1, 3 * M, outpost, hints)
        for i in range(64):
            node_of(f"http://127.0.0.1:{ORIGIN}/o/{900001 + i}/1024/c")
        rps1, p99_1 = wrk("127.0.1.1:3128", lua)
        down(d1b)
        print(f"1 KiB hits, wrk -t2 -c64, 64 URLs: HAProxy + 3 nodes {rps3:.0f} req/s (p99 {p99_3:.2f} ms); "
              f"one node directly {rps1:.0f} req/s (p99 {p99_1:.2f} ms); ratio {rps3 / rps1:.2f}, "
              f"p99 added {p99_3 - p99_1:+.2f} ms", flush=True)

        # 2. Moved share: K URLs, their nodes, node-2 leaves, their nodes again.
        d3b = os.path.join(work, "three-b")
        up(d3b, 3, M, outpost, hints)
        urls = [f"http://127.0.0.1:{ORIGIN}/o/{700000 + i}/512/c" for i in range(a.urls)]
        before = {u: node_of(u) for u in urls}
        with open(os.path.join(d3b, "cluster.json")) as f:
            pids = json.load(f)["pids"]
        os.kill(pids["node-2"], 15)
        time.sleep(4)  # two failed checks a second apart mark it down
        after = {u: node_of(u) for u in urls}
        down(d3b)
        moved = sum(1 for u in urls if after[u] != before[u])
        share2 = sum(1 for u in urls if before[u] == "node-2")
        wrongly = sum(1 for u in urls if after[u] != before[u] and before[u] != "node-2")
        print(f"node-2 of 3 leaves: {moved} of {len(urls)} URLs change node ({moved / len(urls):.3f}; "
              f"node-2 held {share2 / len(urls):.3f}); URLs of the staying nodes that moved: {wrongly}", flush=True)
    finally:
        for d in ("one", "three", "one-b", "three-b"):
            p = os.path.join(work, d)
            if os.path.exists(os.path.join(p, "cluster.json")):
                down(p)
        origin.terminate()
        origin.wait(10)


if __name__ == "__main__":
    main()
