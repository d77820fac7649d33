#!/usr/bin/env python3
"""Destination rules (SSRF and forwarding loops): Outpost's own listener in every spelling,
"this host", link-local and cloud metadata addresses, and the proxy host's loopback services
for clients that are not on loopback. Requests go over raw sockets so that the request line
carries exactly the spelling under test (curl would normalise some of them itself).

The test's private namespace gets one more address on lo, 10.99.0.1, to play a client that
is not on loopback; it exists only inside this namespace."""
import os
import socket
import subprocess
import sys
import time

import harness as h

P = h.PROXY_PORT
P2 = P + 1               # a second listener, on 127.0.0.1 only
O = h.ORIGIN_PORT
ELSEWHERE = "10.99.0.1"  # a non-loopback address of this namespace (added in setUpClass)
FAR_ORIGIN_PORT = 8090   # an origin on ELSEWHERE: reachable by every client


def exchange(data, source="127.0.0.1", timeout=5.0):
    """Sends raw bytes to the proxy from `source` and returns the answer (one complete
    Content-Length response, or whatever came before the close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((source, P))  # the proxy listens on 0.0.0.0: reach it at the client's own address
        s.sendall(data)
        out = b""
        try:
            while not h.complete_response(out):
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    return out


def get(url, source="127.0.0.1"):
    authority = url.split("/")[2]
    return exchange(f"GET {url} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode(), source)


class ProxyDestinations(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # checks first that this is the test's own private namespace
        subprocess.run(["ip", "addr", "add", f"{ELSEWHERE}/32", "dev", "lo"], check=True)
        cls.origin = h.TestOrigin(cls.procs)
        far = cls.procs.start([sys.executable, os.path.join(h.HERE, "origin.py"), str(FAR_ORIGIN_PORT), ELSEWHERE],
                              stdout=subprocess.DEVNULL)
        h.wait_port(FAR_ORIGIN_PORT, host=ELSEWHERE, proc=far)
        # A wildcard listener (the loop guard must cover every local address), a loopback one,
        # and no allow_networks: the built-in rules alone decide here.
        acl = f'[acl]\nallow_clients = ["127.0.0.0/8", "::1/128", "{ELSEWHERE}/32"]\n'
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=f'[proxy]\nlisten = ["0.0.0.0:{P}", "127.0.0.1:{P2}"]\n',
                                acl=acl).start()

    def assert_still_serving(self):
        out = get(f"http://127.0.0.1:{O}/bytes?n=3")
        self.assertEqual(h.status_of(out), 200, out[:300])
        self.assertTrue(out.endswith(b"\x00\x01\x02"))

    def log_lines_with(self, marker, at_least=1):
        deadline = time.time() + 10
        while time.time() < deadline:
            lines = [l for l in self.outpost.access_lines() if marker in l]
            if len(lines) >= at_least:
                return lines
            time.sleep(0.1)
        self.fail(f"no access-log line with {marker}")

    def test_own_listener_in_every_spelling_is_refused_without_a_loop(self):
        spellings = [f"{host}:{P}" for host in ["0.0.0.0", "[::]", "2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1",
                                                 "127.0.0.1", "127.8.9.10", "[::1]", ELSEWHERE]]
        spellings += [f"{host}:{P2}" for host in ["0.0.0.0", "0", "[::]", "2130706433", "127.1", "127.0.0.1"]]
        for i, host in enumerate(spellings):
            with self.subTest(host=host):
                out = get(f"http://{host}/loop-{i}")
                self.assertEqual(h.status_of(out), 403, out[:300])
                self.assertIn(b"denied by this proxy's rules", out)
        # Had a request gone round, its second pass would have logged the same path too (and
        # its Via loop check would have answered 403 as well, so the status alone says little).
        for i, host in enumerate(spellings):
            self.log_lines_with(f"/loop-{i} ")
        time.sleep(1.5)  # the access log is flushed every second: let any inner pass show up
        lines = self.outpost.access_lines()
        for i, host in enumerate(spellings):
            mine = [l for l in lines if f"/loop-{i} " in l]
            self.assertEqual(len(mine), 1, f"{host}: {mine}")
            self.assertIn("TCP_DENIED/403", mine[0])
        self.assert_still_serving()

    def test_v4_mapped_literal_and_bad_numeric_hosts_are_malformed(self):
        for host in ["[::ffff:127.0.0.1]", "4294967296", "1.2.3.4.5", "0x100000000"]:
            with self.subTest(host=host):
                self.assertEqual(h.status_of(get(f"http://{host}:{P}/")), 400)
        self.assert_still_serving()

    def test_link_local_and_metadata_addresses_are_refused(self):
        # Without the rule the connect would fail here (no route): 502, not 403.
        for source in ["127.0.0.1", ELSEWHERE]:
            for url in ["http://169.254.169.254/latest/meta-data/", "http://2852039166/latest/meta-data/",
                        "http://[fd00:ec2::254]/latest/meta-data/", "http://100.100.100.200/latest/meta-data/",
                        "http://[fe80::1]/"]:
                with self.subTest(source=source, url=url):
                    self.assertEqual(h.status_of(get(url, source)), 403)
        self.assert_still_serving()

    def test_loopback_services_only_for_loopback_clients(self):
        for url in [f"http://127.0.0.1:{O}/bytes?n=3", f"http://localhost:{O}/bytes?n=3",
                    f"http://2130706433:{O}/bytes?n=3"]:
            with self.subTest(url=url):
                out = get(url, ELSEWHERE)
                self.assertEqual(h.status_of(out), 403, out[:300])
        self.assertEqual(h.status_of(get(f"http://[::1]:{O}/", ELSEWHERE)), 403)
        # The same client reaches an origin elsewhere, and loopback clients keep their local
        # origins.
        out = get(f"http://{ELSEWHERE}:{FAR_ORIGIN_PORT}/bytes?n=3", ELSEWHERE)
        self.assertEqual(h.status_of(out), 200, out[:300])
        self.assertTrue(out.endswith(b"\x00\x01\x02"))
        self.assert_still_serving()
        out = get(f"http://localhost:{O}/bytes?n=3")
        self.assertEqual(h.status_of(out), 200, out[:300])

    def test_cache_hit_does_not_bypass_loopback_rule(self):
        # A loopback client stores a local service's answer; a client elsewhere must not get it
        # from the cache (the rules that need no lookup run before the cache).
        self.origin.script("/script/secret", body="local secret", headers=[["Cache-Control", "max-age=60"]])
        url = f"http://127.0.0.1:{O}/script/secret"
        out = get(url)
        self.assertEqual(h.status_of(out), 200, out[:300])
        self.assertTrue(out.endswith(b"local secret"))
        out = get(url, ELSEWHERE)
        self.assertEqual(h.status_of(out), 403, out[:300])
        self.assertNotIn(b"local secret", out)


if __name__ == "__main__":
    h.main()
