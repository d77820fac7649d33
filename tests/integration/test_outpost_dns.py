#!/usr/bin/env python3
"""The outpost binary with its resolver wired in, against a fake DNS hierarchy served by
real NSD instances on 127.0.0.x: the DNS listener answers dig, the proxy resolves origin
names in-process through the same resolver, and `outpost query --trace` walks the tree."""
import os
import socket
import subprocess
import time

import dnsfixture
import harness as h


class OutpostDns(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hier = dnsfixture.Hierarchy(os.path.join(cls.tmp, "dns"))
        cls.hier.start()
        cls.hints = cls.hier.write_hints()
        cls.origin = h.TestOrigin(cls.procs)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            "[dns]\n" + h.fake_root_keys(cls.hints) + 'listen = ["127.0.0.1:5353"]\n'),
            acl='[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_hosts = ["localhost", "*.test"]\n'
                'allow_networks = ["127.0.0.0/8", "::1/128"]\n').start()

    @classmethod
    def tearDownClass(cls):
        cls.hier.stop()
        super().tearDownClass()

    def dig(self, *args):
        r = subprocess.run(["dig", "@127.0.0.1", "-p", "5353", "+time=3", "+tries=1", *args],
                           capture_output=True, text=True, timeout=20)
        return r.stdout

    def test_dns_listener_answers_recursively(self):
        out = self.dig("www.a.test", "A")
        self.assertIn("status: NOERROR", out)
        self.assertRegex(out, r"flags: qr rd ra")
        self.assertRegex(out, r"www\.a\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1")
        out = self.dig("chain.a.test", "A")
        self.assertRegex(out, r"final\.a\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.3")
        out = self.dig("nosuch.a.test", "A")
        self.assertIn("status: NXDOMAIN", out)

    def test_default_listener_is_loopback_port_53(self):
        # A [dns] section without listen: the DNS server is on 127.0.0.1:53, and only there.
        # systemd-resolved's stub (127.0.0.53:53, here a stand-in socket) does not collide.
        stub_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stub_tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stub_udp.bind(("127.0.0.53", 53))
        stub_tcp.bind(("127.0.0.53", 53))
        stub_tcp.listen(1)
        d = os.path.join(self.tmp, "default-listen")
        os.makedirs(d, exist_ok=True)
        op = h.Outpost(self.procs, d, port=h.PROXY_PORT + 1, extra_config="[dns]\n" + h.fake_root_keys(self.hints)).start()
        try:
            h.wait_port(53, proc=op.proc)
            r = subprocess.run(["dig", "@127.0.0.1", "-p", "53", "+time=3", "+tries=1", "www.a.test", "A"],
                               capture_output=True, text=True, timeout=20)
            self.assertIn("status: NOERROR", r.stdout)
            sockets = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True).stdout.splitlines()
            mine = [l.split()[4] for l in sockets if f"pid={op.proc.pid}," in l and ":53 " in l]
            self.assertEqual(set(mine), {"127.0.0.1:53"}, sockets)
            for _ in range(100):  # the log is flushed now and then
                if "DNS on 127.0.0.1:53" in op.log_text():
                    break
                time.sleep(0.05)
            self.assertIn("DNS on 127.0.0.1:53", op.log_text())
            # Another Outpost with the default cannot have the address, and the error says
            # which setting to change.
            d2 = os.path.join(self.tmp, "default-listen-2")
            os.makedirs(d2, exist_ok=True)
            second = h.Outpost(self.procs, d2, port=h.PROXY_PORT + 2, extra_config="[dns]\n" + h.fake_root_keys(self.hints))
            with open(os.path.join(d2, "stderr.log"), "ab") as err:
                p = subprocess.run([h.OUTPOST, "--config", second.config_path], stdout=subprocess.DEVNULL,
                                   stderr=err, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            log = second.log_text()
            self.assertIn("dns.listen (UDP): cannot use 127.0.0.1:53: Address already in use", log)
            self.assertIn("set [dns] listen to a free address, or listen = [] for no DNS server", log)
        finally:
            op.stop()
            stub_udp.close()
            stub_tcp.close()

    def test_proxy_resolves_origin_names_in_process(self):
        r = h.curl("-si", f"http://origin.a.test:{h.ORIGIN_PORT}/bytes?n=5")
        self.assertEqual(h.status_of(r.stdout), 200)
        self.assertTrue(r.stdout.endswith(b"\x00\x01\x02\x03\x04"))

    def test_resolved_address_outside_allowed_networks_is_refused(self):
        # www.a.test resolves to 192.0.2.1: the address rule refuses it, nothing is contacted.
        r = h.curl("-si", "http://www.a.test/", check=False)
        self.assertEqual(h.status_of(r.stdout), 403)

    def test_unresolvable_name_is_502(self):
        r = h.curl("-si", "http://nosuch.a.test/", check=False)
        self.assertEqual(h.status_of(r.stdout), 502)

    def test_query_trace_walks_from_the_root(self):
        r = subprocess.run([h.OUTPOST, "--config", self.outpost.config_path, "query", "www.a.test", "A", "--trace"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("127.0.0.2", r.stdout)  # the fake root
        self.assertIn("127.0.0.3", r.stdout)  # test.
        self.assertIn("192.0.2.1", r.stdout)  # the answer


if __name__ == "__main__":
    h.main()
