#!/usr/bin/env python3
"""Metrics and the admin endpoint ([admin]): known traffic through the proxy and the DNS
server, then (a) /metrics read directly, every counter checked against the traffic and the
access log, histograms checked for consistency; (b) a real Prometheus server (the Debian
package) scraping Outpost every second inside this namespace, its HTTP API queried for the
same figures. The admin listener's hostile clients: a client outside admin.allow_clients
(an address added to lo inside this namespace only) gets 403, garbage gets 400, an oversized
head 431, a slow client 408 and is cut, a client that never reads its answer is cut too. And
the default configuration opens no admin port."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request

import dnsfixture
import harness as h

ADMIN_PORT = 9145
DNS_PORT = 5353
PROM_PORT = 9090
ELSEWHERE = "10.99.0.2"  # a non-loopback address of this namespace (added in setUpClass)
TIMEOUT = 2              # admin.timeout in the test's configuration


def admin_exchange(data, source="127.0.0.1", timeout=10.0):
    """Sends raw bytes to the admin port (at `source`, from `source`) and reads until close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((source, ADMIN_PORT))
        if data:
            s.sendall(data)
        return read_until_close(s)


def read_until_close(s):
    """What arrives before the peer closes (a reset ends it too: a cut client may see one)."""
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except ConnectionResetError:
        return out


def scrape():
    with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value}, and {name: type} from the TYPE lines."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class Metrics(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # checks first that this is the test's own private namespace
        subprocess.run(["ip", "addr", "add", f"{ELSEWHERE}/32", "dev", "lo"], check=True)
        cls.hier = dnsfixture.Hierarchy(os.path.join(cls.tmp, "dns"))
        cls.hier.start()
        cls.origin = h.TestOrigin(cls.procs)
        cls.tunnel_origin = h.TestOrigin(cls.procs, port=8443)  # plain HTTP behind a CONNECT
        extra = textwrap.dedent(f"""\
            [proxy]
            listen = ["127.0.0.1:{h.PROXY_PORT}", "{ELSEWHERE}:{h.PROXY_PORT}"]

            [admin]
            enabled = true
            listen = ["127.0.0.1:{ADMIN_PORT}", "{ELSEWHERE}:{ADMIN_PORT}"]
            timeout = {TIMEOUT}
            """) + "[dns]\n" + h.fake_root_keys(cls.hier.write_hints()) + f'listen = ["127.0.0.1:{DNS_PORT}"]\n'
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=extra).start()
        h.wait_port(ADMIN_PORT, proc=cls.outpost.proc)
        cls.expected = cls.make_traffic()

    @classmethod
    def tearDownClass(cls):
        cls.hier.stop()
        super().tearDownClass()

    @classmethod
    def make_traffic(cls):
        """Known traffic; returns the request counts expected by (outcome, method)."""
        o = cls.origin
        for i in range(3):  # three misses
            h.curl("-s", "-o", "/dev/null", o.url(f"/bytes?n=1000&i={i}"))
        o.script("/script/cached", body="cached body\n", headers=[["Cache-Control", "max-age=3600"]])
        for _ in range(3):  # a miss that is stored, then two hits
            h.curl("-s", "-o", "/dev/null", o.url("/script/cached"))
        h.curl("-s", "-o", "/dev/null", "-I", o.url("/bytes?n=10&i=head"))
        # By name: one host lookup through the in-process resolver (source "proxy").
        h.curl("-s", "-o", "/dev/null", f"http://origin.a.test:{h.ORIGIN_PORT}/bytes?n=10&i=byname")
        h.curl("-s", "-o", "/dev/null", "--data-binary", "posted", o.url("/echo"))
        r = h.curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "http://forbidden.example/", check=False)
        assert r.stdout == b"403", r.stdout
        # A client outside acl.allow_clients: answered 403 at accept, no session, no request.
        with socket.socket() as s:
            s.settimeout(5)
            s.bind((ELSEWHERE, 0))
            s.connect((ELSEWHERE, h.PROXY_PORT))
            s.sendall(b"GET http://127.0.0.1:8080/bytes HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 403")
        # DNS: an answer, the same from cache, a SERVFAIL (CNAME loop), an NXDOMAIN.
        cls.dns_statuses = []
        for name in ["www.a.test", "www.a.test", "loop1.a.test", "nosuch.a.test"]:
            out = subprocess.run(["dig", "@127.0.0.1", "-p", str(DNS_PORT), "+time=5", "+tries=1", name, "A"],
                                 capture_output=True, text=True, timeout=30).stdout
            cls.dns_statuses.append(re.search(r"status: (\w+)", out).group(1))
        return {("TCP_MISS", "GET"): 5, ("TCP_MEM_HIT", "GET"): 2, ("TCP_MISS", "HEAD"): 1,
                ("TCP_MISS", "POST"): 1, ("TCP_DENIED", "GET"): 1}

    def open_tunnel(self):
        s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10)
        s.sendall(b"CONNECT 127.0.0.1:8443 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        s.sendall(b"GET /bytes?n=5 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nConnection: close\r\n\r\n")
        got = b""
        while not h.complete_response(got):
            got += s.recv(4096)
        return s

    def access_log_bytes(self, lines):
        return sum(int(l.split()[4]) for l in lines)

    def test_1_counters_after_known_traffic(self):
        tunnel = self.open_tunnel()
        try:
            during, _ = parse_metrics(scrape())
        finally:
            tunnel.close()
        self.assertEqual(value(during, "outpost_tunnels"), 1)
        self.assertGreaterEqual(value(during, "outpost_client_connections"), 1)
        expected = dict(self.expected)
        expected[("TCP_TUNNEL", "CONNECT")] = 1
        total = sum(expected.values())
        lines = self.outpost.access_lines(wait_for=total)
        self.assertEqual(len(lines), total, lines)
        # The tunnel's exchange ends once both sides are closed: wait for its count.
        deadline = time.time() + 10
        while True:
            samples, types = parse_metrics(scrape())
            if value(samples, "outpost_tunnels_total") == 1 and value(samples, "outpost_tunnels") == 0 or \
                    time.time() > deadline:
                break
            time.sleep(0.1)

        got = {}
        for (name, labels), v in samples.items():
            if name == "outpost_http_requests_total":
                d = dict(labels)
                got[(d["outcome"], d["method"])] = v
        self.assertEqual(got, {k: float(v) for k, v in expected.items()})
        self.assertEqual(value(samples, "outpost_http_responses_total", code="2xx"), total - 1)
        self.assertEqual(value(samples, "outpost_http_responses_total", code="4xx"), 1)
        self.assertEqual(value(samples, "outpost_http_responses_total", code="5xx"), 0)
        self.assertEqual(value(samples, "outpost_client_sent_bytes_total"), self.access_log_bytes(lines))
        self.assertEqual(value(samples, "outpost_tunnels_total"), 1)
        self.assertEqual(value(samples, "outpost_tunnels"), 0)
        # One connection per curl and the tunnel's, plus the harness's readiness probe, each to a
        # session; the outsider denied.
        self.assertEqual(value(samples, "outpost_client_connections_total", result="accepted"), total + 1)
        self.assertEqual(value(samples, "outpost_client_connections_total", result="denied"), 1)
        self.assertEqual(value(samples, "outpost_client_connections_total", result="refused"), 0)
        # Seven requests went to an origin (the tunnel's connection is one of its own).
        opened = value(samples, "outpost_origin_connections_opened_total")
        self.assertGreaterEqual(opened, 2)
        self.assertLessEqual(opened, 8)
        # Every origin request came on a new or a pooled connection; origin bytes were read.
        reused = value(samples, "outpost_origin_connections_reused_total")
        self.assertEqual(opened + reused, 8)
        self.assertGreater(value(samples, "outpost_origin_received_bytes_total"), 0)
        # The store: the cached object in memory, two hits on it.
        self.assertGreaterEqual(value(samples, "outpost_store_objects", namespace="http", tier="memory"), 1)
        self.assertGreaterEqual(value(samples, "outpost_store_hits_total", namespace="http", tier="memory"), 2)
        self.assertGreater(value(samples, "outpost_store_bytes", namespace="http", tier="memory"), 0)
        # DNS: four queries answered, one SERVFAIL, upstream queries went to the fake hierarchy,
        # and the repeated name came from the cache.
        self.assertEqual(self.dns_statuses, ["NOERROR", "NOERROR", "SERVFAIL", "NXDOMAIN"])
        self.assertEqual(value(samples, "outpost_dns_queries_total"), 4)
        self.assertEqual(value(samples, "outpost_dns_responses_total"), 4)
        self.assertEqual(value(samples, "outpost_dns_error_responses_total", rcode="SERVFAIL"), 1)
        self.assertEqual(value(samples, "outpost_dns_error_responses_total", rcode="REFUSED"), 0)
        self.assertGreater(value(samples, "outpost_dns_upstream_queries_total", transport="udp"), 0)
        self.assertGreaterEqual(value(samples, "outpost_store_hits_total", namespace="dns", tier="memory"), 1)
        # Resolutions: the four client queries (the repeat a cache hit, the CNAME loop a
        # SERVFAIL) and the proxy's one host lookup (a miss), each timed.
        self.assertEqual(value(samples, "outpost_dns_resolutions_total", source="client"), 4)
        self.assertEqual(value(samples, "outpost_dns_cache_hits_total", source="client"), 1)
        self.assertEqual(value(samples, "outpost_dns_cache_misses_total", source="client"), 3)
        self.assertEqual(value(samples, "outpost_dns_resolution_servfail_total", source="client"), 1)
        self.assertEqual(value(samples, "outpost_dns_resolutions_total", source="proxy"), 1)
        self.assertEqual(value(samples, "outpost_dns_cache_misses_total", source="proxy"), 1)
        self.assertEqual(value(samples, "outpost_dns_resolution_servfail_total", source="proxy"), 0)
        self.assertEqual(types["outpost_dns_resolution_duration_seconds"], "histogram")
        for source, count in [("client", 4), ("proxy", 1)]:
            self.assertEqual(value(samples, "outpost_dns_resolution_duration_seconds_count", source=source), count)
            self.assertEqual(value(samples, "outpost_dns_resolution_duration_seconds_bucket", source=source, le="+Inf"),
                             count)
            self.assertGreater(value(samples, "outpost_dns_resolution_duration_seconds_sum", source=source), 0)
            self.assertLess(value(samples, "outpost_dns_resolution_duration_seconds_sum", source=source), count * 10)
        self.assertEqual(value(samples, "outpost_workers"), 2)
        self.assertEqual(types["outpost_http_requests_total"], "counter")
        self.assertEqual(types["outpost_tunnels"], "gauge")

        # Histograms: cumulative buckets, +Inf = count = requests; sum within the bucket bounds.
        for name in ["outpost_http_request_duration_seconds", "outpost_http_time_to_first_byte_seconds"]:
            self.assertEqual(types[name], "histogram")
            buckets = sorted(((float(dict(l)["le"]), v) for (n, l), v in samples.items() if n == name + "_bucket"))
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), name)
            self.assertEqual(buckets[-1][0], float("inf"))
            self.assertEqual(buckets[-1][1], value(samples, name + "_count"))
            self.assertEqual(value(samples, name + "_count"), total, name)
            self.assertGreaterEqual(value(samples, name + "_sum"), 0)
            self.assertLessEqual(value(samples, name + "_sum"), total * 60)
        # The durations agree with the access log's, to its millisecond resolution.
        logged = sum(int(l.split()[1]) for l in lines) / 1000
        self.assertAlmostEqual(value(samples, "outpost_http_request_duration_seconds_sum"), logged, delta=0.001 * total)

    def test_2_prometheus_scrapes_outpost(self):
        prom = shutil.which("prometheus")
        self.assertIsNotNone(prom, "prometheus not installed (scripts/install-deps.sh test)")
        before, _ = parse_metrics(scrape())
        d = os.path.join(self.tmp, "prometheus")
        os.makedirs(os.path.join(d, "data"))
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(textwrap.dedent(f"""\
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                scrape_configs:
                  - job_name: outpost
                    static_configs:
                      - targets: ["127.0.0.1:{ADMIN_PORT}"]
                """))
        with open(os.path.join(d, "prometheus.log"), "wb") as log:
            p = self.procs.start([prom, f"--config.file={conf}", f"--storage.tsdb.path={d}/data",
                                  f"--web.listen-address=127.0.0.1:{PROM_PORT}"], stdout=log, stderr=log)
        try:
            h.wait_port(PROM_PORT, proc=p, timeout=30)
            # Its API answers 503 until the storage is open.
            deadline = time.time() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{PROM_PORT}/-/ready", timeout=10) as r:
                        if r.status == 200:
                            break
                except urllib.error.HTTPError:
                    pass
                self.assertLess(time.time(), deadline, "Prometheus never became ready")
                time.sleep(0.2)

            def query(expr):
                url = f"http://127.0.0.1:{PROM_PORT}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                with urllib.request.urlopen(url, timeout=10) as r:
                    data = json.load(r)
                self.assertEqual(data["status"], "success", data)
                return data["data"]["result"]

            # Wait for a successful scrape of the target.
            deadline = time.time() + 30
            while True:
                up = query('up{job="outpost"}')
                if up and up[0]["value"][1] == "1":
                    break
                self.assertLess(time.time(), deadline, f"Prometheus never scraped Outpost: {up}")
                time.sleep(0.5)
            # The traffic is over: Prometheus sees the same figures as a direct scrape.
            for expr, labels in [("outpost_http_requests_total", {"outcome": "TCP_MEM_HIT", "method": "GET"}),
                                 ("outpost_http_requests_total", {"outcome": "TCP_MISS", "method": "GET"}),
                                 ("outpost_http_requests_total", {"outcome": "TCP_DENIED", "method": "GET"}),
                                 ("outpost_http_request_duration_seconds_count", {}),
                                 ("outpost_client_sent_bytes_total", {}),
                                 ("outpost_dns_queries_total", {}),
                                 ("outpost_dns_error_responses_total", {"rcode": "SERVFAIL"}),
                                 ("outpost_dns_resolutions_total", {"source": "client"}),
                                 ("outpost_dns_resolution_duration_seconds_count", {"source": "proxy"}),
                                 ("outpost_client_connections_total", {"result": "denied"})]:
                sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
                result = query(f"{expr}{{{sel}}}")
                self.assertEqual(len(result), 1, (expr, labels, result))
                self.assertEqual(float(result[0]["value"][1]), value(before, expr, **labels), (expr, labels))
            # Histogram math as Prometheus does it: every request took at most 60 s.
            q = query("histogram_quantile(0.99, outpost_http_request_duration_seconds_bucket)")
            self.assertEqual(len(q), 1, q)
            self.assertLessEqual(float(q[0]["value"][1]), 60)
            # New traffic shows in the next scrapes.
            h.curl("-s", "-o", "/dev/null", self.origin.url("/script/cached"))
            target = value(before, "outpost_http_requests_total", outcome="TCP_MEM_HIT", method="GET") + 1
            deadline = time.time() + 20
            while True:
                r = query('outpost_http_requests_total{outcome="TCP_MEM_HIT",method="GET"}')
                if r and float(r[0]["value"][1]) == target:
                    break
                self.assertLess(time.time(), deadline, f"Prometheus never saw the new hit: {r}")
                time.sleep(0.5)
        finally:
            p.terminate()
            p.wait(10)

    def test_3_health(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/health", timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b"ok\n")
        out = admin_exchange(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(h.status_of(out), 200)
        self.assertTrue(out.endswith(b"\r\n\r\n"), out)  # no body for HEAD

    def test_4_client_outside_allow_clients_gets_403(self):
        out = admin_exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", source=ELSEWHERE)
        self.assertEqual(h.status_of(out), 403, out)
        self.assertNotIn(b"outpost_", out)
        # The same listener answers loopback clients.
        out = admin_exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", source="127.0.0.1")
        self.assertEqual(h.status_of(out), 200, out)

    def test_5_bad_requests(self):
        cases = [
            (b"HELLO\r\n\r\n", 400),
            (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400),  # TLS-ish garbage
            (b"GET /metrics HTTP/1.1\nHost: x\n\n", None),                   # bare LF: never a head
            (b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
            (b"GET /metrics HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400),
            (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
            (b"GET /admin HTTP/1.1\r\n\r\n", 404),
            (b"GET /metrics HTTP/3.0\r\n\r\n", 505),
            (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
        ]
        for data, status in cases:
            out = admin_exchange(data)
            if status is None:  # the head never completes: 408 after admin.timeout
                status = 408
            self.assertEqual(h.status_of(out), status, (data[:40], out[:200]))
            self.assertIn(b"Connection: close\r\n", out)
        # An endless head is cut at the limit, not buffered.
        with socket.create_connection(("127.0.0.1", ADMIN_PORT), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            try:
                for _ in range(100):
                    s.sendall(b"X-Filler: " + b"y" * 1000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            out = read_until_close(s)
        self.assertTrue(out == b"" or h.status_of(out) == 431, out[:200])
        # Outpost is still there.
        self.assertEqual(h.status_of(admin_exchange(b"GET /health HTTP/1.1\r\n\r\n")), 200)

    def test_6_slow_clients_are_cut(self):
        # Half a request line, then silence: 408 after admin.timeout, then the close.
        out = admin_exchange(b"GET /metr", timeout=TIMEOUT * 5)
        self.assertEqual(h.status_of(out), 408, out)
        # Nothing at all: the same.
        self.assertEqual(h.status_of(admin_exchange(b"", timeout=TIMEOUT * 5)), 408)
        self.assertEqual(h.status_of(admin_exchange(b"GET /health HTTP/1.1\r\n\r\n")), 200)
        samples, _ = parse_metrics(scrape())
        self.assertGreaterEqual(value(samples, "outpost_admin_requests_total", code="408"), 2)

    def test_7_default_config_opens_no_admin_port(self):
        d = os.path.join(self.tmp, "default")
        os.makedirs(d)
        # The embedded default, with only the proxy port moved so it runs beside the other.
        text = subprocess.run([h.OUTPOST, "--print-default-config"], capture_output=True, text=True,
                              check=True).stdout
        self.assertRegex(text, r"\[admin\]\n(#.*\n)*enabled = false\n")
        self.assertIn('listen = ["127.0.0.1:3128"]', text)
        conf = os.path.join(d, "outpost.toml")
        with open(conf, "w") as f:
            f.write(text.replace('listen = ["127.0.0.1:3128"]', 'listen = ["127.0.0.1:3200"]'))
        with open(os.path.join(d, "stderr.log"), "wb") as err:
            p = self.procs.start([h.OUTPOST, "--config", conf], stdout=subprocess.DEVNULL, stderr=err)
        try:
            h.wait_port(3200, proc=p)
            listening = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
            ports = {line.split()[3] for line in listening.splitlines() if f"pid={p.pid}," in line}
            # The proxy and the default DNS listener, both on loopback; no admin port.
            self.assertEqual(ports, {"127.0.0.1:3200", "127.0.0.1:53"}, listening)
        finally:
            p.terminate()
            p.wait(10)

    def test_8_reload_applies_allow_clients_and_names_what_needs_a_restart(self):
        with open(self.outpost.config_path) as f:
            text = f.read()
        self.addCleanup(self.restore_config, text)
        changed = text.replace(f'listen = ["127.0.0.1:{ADMIN_PORT}", "{ELSEWHERE}:{ADMIN_PORT}"]\n',
                               f'listen = ["127.0.0.1:{ADMIN_PORT}", "{ELSEWHERE}:{ADMIN_PORT}"]\n'
                               f'allow_clients = ["{ELSEWHERE}/32"]\n')
        self.assertNotEqual(changed, text)
        with open(self.outpost.config_path, "w") as f:
            f.write(changed.replace(f'"{ELSEWHERE}:{ADMIN_PORT}"]', f'"{ELSEWHERE}:{ADMIN_PORT + 1}"]'))
        self.outpost.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while h.status_of(admin_exchange(b"GET /health HTTP/1.1\r\n\r\n", source=ELSEWHERE)) != 200:
            self.assertLess(time.time(), deadline, "admin.allow_clients not applied by SIGHUP")
            time.sleep(0.1)
        # Loopback is no longer in the list; the listeners stay as they were.
        self.assertEqual(h.status_of(admin_exchange(b"GET /health HTTP/1.1\r\n\r\n")), 403)
        self.assertIn("a restart is needed to apply: admin.listen", self.outpost.log_text())

    def restore_config(self, text):
        with open(self.outpost.config_path, "w") as f:
            f.write(text)
        self.outpost.proc.send_signal(signal.SIGHUP)


if __name__ == "__main__":
    h.main()
