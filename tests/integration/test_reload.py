#!/usr/bin/env python3
"""SIGHUP applies what can change at run time and names, in one log line, what needs a
restart: Outpost's DNS listener against the fake hierarchy (real NSD, dnsfixture), with the
[dns] TTL cap, recursion ACL and local zones, and the log level, changed in the file; the
HTTP cache's refresh patterns and the origin pool's limits, with the test origin."""
import os
import re
import signal
import socket
import subprocess
import time

import dnsfixture
import harness as h

DNS_PORT = 5354
PROXY_PORT = 3140
OTHER_CLIENT = "127.0.0.20"  # a second loopback source address for dig -b
ACL = '[acl]\nallow_clients = ["127.0.0.0/8"]\n'

ZONE = """$ORIGIN corp.test.
@ 3600 IN SOA ns admin 1 3600 600 86400 60
@ 3600 IN NS ns
ns 3600 IN A 192.0.2.70
www 3600 IN A 192.0.2.77
"""


class Reload(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hier = dnsfixture.Hierarchy(os.path.join(cls.tmp, "dns"))
        cls.hier.start()
        cls.hints = cls.hier.write_hints()
        cls.zone = os.path.join(cls.tmp, "corp.test.zone")
        with open(cls.zone, "w") as f:
            f.write(ZONE)

    @classmethod
    def tearDownClass(cls):
        cls.hier.stop()
        super().tearDownClass()

    def config(self, d, dns, log_level, memory_size):
        log, access = os.path.join(d, "outpost.log"), os.path.join(d, "access.log")
        return (f'[log]\nlevel = "{log_level}"\nfile = "{log}"\naccess_log = "{access}"\n'
                f'[cache]\nmemory_size = {memory_size}\n'
                "[dns]\n" + h.fake_root_keys(self.hints) + f"{dns}\n")

    def dig(self, name, qtype="A", source="127.0.0.1"):
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(DNS_PORT), "-b", source, "+time=3", "+tries=1",
                            name, qtype], capture_output=True, text=True, timeout=20)
        return r.stdout

    def ttl_of(self, out, name, qtype):
        m = re.search(rf"^{re.escape(name)}\.\s+(\d+)\s+IN\s+{qtype}\s", out, re.M)
        self.assertIsNotNone(m, out)
        return int(m.group(1))

    def send_malformed_query(self):
        # A header that announces a question which is not there: FORMERR, logged at debug.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", ("127.0.0.1", DNS_PORT))
            s.recv(512)

    def sighup_and_wait(self):
        before = self.op.log_text().count("configuration reloaded")
        self.op.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while self.op.log_text().count("configuration reloaded") == before:
            self.assertLess(time.time(), deadline, "no reload logged")
            time.sleep(0.05)
        time.sleep(0.3)  # the new settings are posted to the workers

    def test_dns_settings_and_log_level_apply_and_restart_keys_are_named(self):
        d = os.path.join(self.tmp, "op")
        os.makedirs(d)
        listen = f'listen = ["127.0.0.1:{DNS_PORT}"]\n'
        self.op = h.Outpost(self.procs, d, port=PROXY_PORT, acl=ACL,
                            extra_config=self.config(d, listen + 'allow_recursion = ["127.0.0.0/8"]\n', "info", 67108864))
        self.op.start()

        # Before: TTLs as the zone gives them, both clients served, no local zone, no debug.
        out = self.dig("www.a.test")
        self.assertIn("status: NOERROR", out)
        self.assertGreater(self.ttl_of(out, "www.a.test", "A"), 60)
        self.assertIn("status: NOERROR", self.dig("mail.a.test", source=OTHER_CLIENT))
        self.assertIn("status: NXDOMAIN", self.dig("www.corp.test"))
        self.send_malformed_query()

        changed = self.config(
            d, f'listen = ["127.0.0.1:{DNS_PORT}", "127.0.0.1:{DNS_PORT + 1}"]\n'
            'allow_recursion = ["127.0.0.1/32"]\nmax_ttl = 60\n'
            f'local_zones = [{{ name = "corp.test", file = "{self.zone}" }}]\n', "debug", 33554432)
        self.op.write_config(changed, ACL)
        self.sighup_and_wait()

        # TTL cap: a name not cached before is answered capped, the first time too.
        out = self.dig("txt.a.test", "TXT")
        self.assertIn("status: NOERROR", out)
        self.assertLessEqual(self.ttl_of(out, "txt.a.test", "TXT"), 60)
        # Recursion ACL: the other loopback address is refused now, 127.0.0.1 still served.
        self.assertIn("status: REFUSED", self.dig("mail.a.test", source=OTHER_CLIENT))
        self.assertIn("status: NOERROR", self.dig("final.a.test"))
        # Local zone read from its file by the reload, answered authoritatively.
        out = self.dig("www.corp.test")
        self.assertRegex(out, r"flags: qr aa")
        self.assertRegex(out, r"www\.corp\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.77")
        # Log level: the second malformed query is logged, the first (at "info") was not.
        self.send_malformed_query()
        deadline = time.time() + 5
        while "malformed query" not in self.op.log_text():
            self.assertLess(time.time(), deadline, "debug line not logged after the reload")
            time.sleep(0.1)
        self.assertEqual(self.op.log_text().count("malformed query"), 1)
        # One line names every setting that needs a restart; the new listener is not opened.
        lines = [l for l in self.op.log_text().splitlines() if "a restart is needed" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("dns.listen", lines[0])
        self.assertIn("cache", lines[0])
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(DNS_PORT + 1), "+time=1", "+tries=1", "www.a.test"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotIn("status: NOERROR", r.stdout)

        # A broken file is refused as a whole; the running settings stay.
        self.op.write_config(changed.replace("max_ttl = 60", "max_ttl = 0"), ACL)
        self.op.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "not reloaded" not in self.op.log_text():
            self.assertLess(time.time(), deadline, "a bad file was not reported")
            time.sleep(0.05)
        self.assertIn("dns.max_ttl", self.op.log_text())
        self.assertIn("status: REFUSED", self.dig("www.a.test", source=OTHER_CLIENT))

    def test_cache_policy_and_origin_pool_apply(self):
        d = os.path.join(self.tmp, "op_http")
        os.makedirs(d)
        origin = h.TestOrigin(self.procs)
        # Responses with a Last-Modified and no explicit freshness: their lifetime comes from
        # the refresh pattern alone.
        for path in ("/a.txt", "/b.txt"):
            origin.script(path, body="x" * 100, headers=[["Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"]])

        def http_config(refresh_min, max_idle):
            # One worker: each worker has its own origin pool, and curl's connections could
            # land on either.
            return (f'[server]\nworkers = 1\n[origin]\nmax_idle_per_host = {max_idle}\n'
                    f'[http_cache]\nheuristic_percent = 0\n'
                    f'refresh_patterns = [{{ pattern = "\\\\.txt$", min = {refresh_min}, percent = 0, max = {refresh_min} }}]\n')

        self.op = h.Outpost(self.procs, d, port=PROXY_PORT + 1, acl=ACL,
                            extra_config=self.config(d, "listen = []\n", "info", 67108864) + http_config(0, 0))

        def x_cache(path):
            out = h.curl("-s", "-D", "-", "-o", "/dev/null", origin.url(path), proxy=PROXY_PORT + 1).stdout.decode()
            m = re.search(r"^X-Cache: (\w+)", out, re.M | re.I)
            self.assertIsNotNone(m, out)
            return m.group(1)

        asked = [0]

        def connections():  # accepted by the origin, not counting these questions' own
            asked[0] += 1
            return origin.stats()["connections"] - asked[0]

        self.op.start()
        # Lifetime 0: every request goes to the origin; no idle origin connection is kept.
        base = connections()
        x_cache("/a.txt")
        self.assertEqual(x_cache("/a.txt"), "MISS")
        self.assertEqual(connections() - base, 2)

        self.op.write_config(self.config(d, "listen = []\n", "info", 67108864) + http_config(3600, 8), ACL)
        self.sighup_and_wait()
        # The new pattern: an hour of freshness, so the second request is a hit; and the pool
        # now keeps the connection, so the next miss reuses it.
        base = connections()
        self.assertEqual(x_cache("/b.txt"), "MISS")
        self.assertEqual(x_cache("/b.txt"), "HIT")
        x_cache("/a.txt")  # stale: revalidated on the kept connection
        self.assertEqual(connections() - base, 1)
        lines = [l for l in self.op.log_text().splitlines() if "a restart is needed" in l]
        self.assertEqual(lines, [])


if __name__ == "__main__":
    h.main()
