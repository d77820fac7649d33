"""deploy/cluster: HAProxy (balance uri, consistent hashing) over three Outpost nodes on
127.0.1.1-3, in this test's network namespace, with the project's test origin behind and
Prometheus scraping the nodes. Each URL is cached on exactly one node (counted at the origin
and in every node's /metrics); a node that stops costs only its own share of the URLs and
HAProxy routes around it; Prometheus scrapes all three; `down` leaves no process behind."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import harness as h
from harness import http_get, metric

CLUSTER = os.path.join(h.HERE, "..", "..", "deploy", "cluster", "cluster.py")
FRONT = 3128
PROM = 9090
URLS = [f"http://127.0.0.1:{h.ORIGIN_PORT}/script/o{i}" for i in range(60)]



class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not h.in_private_netns():
            raise unittest.SkipTest("run inside tests/integration/netns_run.sh")
        for tool in ("haproxy", "prometheus"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} not installed (scripts/install-deps.sh test)")
        cls.tmp = tempfile.mkdtemp(prefix="outpost-cluster-")
        cls.procs = h.Processes()
        cls.origin = cls.procs.start([sys.executable, os.path.join(h.HERE, "origin.py"), str(h.ORIGIN_PORT)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_port(h.ORIGIN_PORT, proc=cls.origin)
        for i, u in enumerate(URLS):
            body = json.dumps({"path": u.split(str(h.ORIGIN_PORT), 1)[1], "body": f"object {i}\n" * 20,
                               "headers": [["Cache-Control", "max-age=3600"]]}).encode()
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                urllib.request.Request(f"http://127.0.0.1:{h.ORIGIN_PORT}/__script", data=body), timeout=5).read()
        hints = os.path.join(cls.tmp, "root.hints")
        with open(hints, "w") as f:  # a fake root; these URLs need no name lookups at all
            f.write(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n")
        cls.dir = os.path.join(cls.tmp, "cluster")
        cls.up = subprocess.run(
            [sys.executable, CLUSTER, "up", "--dir", cls.dir, "--nodes", "3", "--outpost", h.OUTPOST,
             "--listen", f"127.0.0.1:{FRONT}", "--prometheus", str(PROM),
             *[a for k, v in h.fake_root_settings(hints).items() for a in ("--set", f"dns.{k}={v}")],
             "--set", "server.workers=1",
             "--set", 'acl.allow_networks=["127.0.0.0/8"]', "--set", "cache.disk_size=67108864",
             "--set", "cache.segment_size=4194304", "--set", "cache.max_object_size=1048576"],
            capture_output=True, text=True, timeout=180)
        if cls.up.returncode != 0:
            raise AssertionError(f"cluster up failed:\n{cls.up.stdout}\n{cls.up.stderr}")
        with open(os.path.join(cls.dir, "cluster.json")) as f:
            cls.pids = json.load(f)["pids"]

    @classmethod
    def tearDownClass(cls):
        if os.path.exists(os.path.join(cls.dir, "cluster.json")):
            subprocess.run([sys.executable, CLUSTER, "down", "--dir", cls.dir, "--grace", "5"], timeout=60)
        cls.procs.stop_all()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def origin_counts(self):
        _, _, b = http_get(f"http://127.0.0.1:{h.ORIGIN_PORT}/__stats")
        reqs = json.loads(b)["requests"]
        return {u: reqs.get(u.split(str(h.ORIGIN_PORT), 1)[1], 0) for u in URLS}

    def node_of_each(self):
        """Fetches every URL through HAProxy; {url: (node, hit)} from X-Cache."""
        out = {}
        for u in URLS:
            status, headers, body = http_get(u, proxy=f"http://127.0.0.1:{FRONT}")
            self.assertEqual(status, 200, u)
            self.assertTrue(body.startswith(b"object "), u)
            m = re.fullmatch(r"(HIT|MISS) from (node-\d)", headers.get("x-cache", ""))
            self.assertIsNotNone(m, f"{u}: X-Cache {headers.get('x-cache')!r}")
            out[u] = (m.group(2), m.group(1) == "HIT")
        return out

    def scrape(self, i):
        _, _, b = http_get(f"http://127.0.1.{i}:9145/metrics")
        return b.decode()

    def test_1_each_url_is_cached_on_one_node_and_a_leaving_node_moves_only_its_share(self):
        first = self.node_of_each()
        second = self.node_of_each()
        # The same node every time, and a hit the second time: the origin saw each URL once.
        for u in URLS:
            self.assertEqual(second[u][0], first[u][0], u)
            self.assertTrue(second[u][1], f"{u} not a hit the second time")
        self.assertEqual(set(self.origin_counts().values()), {1})
        share = {n: sum(1 for u in URLS if first[u][0] == n) for n in ("node-1", "node-2", "node-3")}
        for n, c in share.items():
            self.assertGreaterEqual(c, 6, f"{n} got {c} of {len(URLS)} URLs: {share}")
        # Each node's own counters: its share of misses, its share of hits, nothing else.
        for i in (1, 2, 3):
            text = self.scrape(i)
            # (HAProxy's health checks are HEAD requests: not counted here.)
            hits = metric(text, "outpost_http_requests_total", outcome="TCP_MEM_HIT", method="GET") + \
                metric(text, "outpost_http_requests_total", outcome="TCP_HIT", method="GET")
            misses = metric(text, "outpost_http_requests_total", outcome="TCP_MISS", method="GET")
            self.assertEqual((hits, misses), (share[f"node-{i}"], share[f"node-{i}"]), f"node-{i} counters")

        # node-2 leaves: HAProxy's health check marks it down; only its URLs move.
        before = self.origin_counts()
        os.kill(self.pids["node-2"], 15)
        deadline = time.time() + 20
        while time.time() < deadline and os.path.exists(f"/proc/{self.pids['node-2']}") and \
                open(f"/proc/{self.pids['node-2']}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.02)
        # Gone, and HAProxy's checks (1 s apart, 2 to fail) have not marked it down yet: its URL
        # is redispatched to another node, not answered with a 503.
        status, headers, _ = http_get([u for u in URLS if first[u][0] == "node-2"][0], proxy=f"http://127.0.0.1:{FRONT}")
        self.assertEqual(status, 200)
        self.assertIn(headers.get("x-cache", "").rsplit(" ", 1)[-1], ("node-1", "node-3"))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                _, headers, _ = http_get([u for u in URLS if first[u][0] == "node-2"][0],
                                         proxy=f"http://127.0.0.1:{FRONT}")
                if "node-2" not in headers.get("x-cache", ""):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        third = self.node_of_each()
        after = self.origin_counts()
        moved = [u for u in URLS if after[u] > before[u]]
        self.assertEqual(sorted(moved), sorted(u for u in URLS if first[u][0] == "node-2"))
        for u in URLS:
            if first[u][0] != "node-2":
                self.assertEqual(third[u], (first[u][0], True), f"{u} moved although its node stayed")
            else:
                self.assertIn(third[u][0], ("node-1", "node-3"))

    def test_2_prometheus_scrapes_every_node(self):
        up = h.prometheus_up(PROM, lambda up: len(up) == 3, 60)
        self.assertEqual(sorted(up), [f"127.0.1.{i}:9145" for i in (1, 2, 3)])
        # node-2 may have been stopped by test 1 already; the two others are up.
        self.assertEqual(up["127.0.1.1:9145"], "1")
        self.assertEqual(up["127.0.1.3:9145"], "1")

    def test_3_down_leaves_nothing_behind(self):
        r = subprocess.run([sys.executable, CLUSTER, "down", "--dir", self.dir, "--grace", "10"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for name, pid in self.pids.items():
            self.assertFalse(os.path.exists(f"/proc/{pid}") and
                             open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z",
                             f"{name} (pid {pid}) still running")
        import socket
        for addr, port in [("127.0.0.1", FRONT), ("127.0.0.1", PROM)] + [(f"127.0.1.{i}", p)
                                                                       for i in (1, 2, 3) for p in (3128, 9145)]:
            with self.assertRaises(OSError, msg=f"{addr}:{port} still open"):
                socket.create_connection((addr, port), timeout=0.5).close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
