"""The root after a ". NS" query (issue 13, defect 1): a client (or dig +trace) asking ". NS"
must not leave the root unusable. Outpost primes the root from the hints (RFC 8109) and, when
the cached root NS set has no addresses, falls back to the hints instead of failing every name
outside the cached zones."""
import os
import subprocess
import sys
import unittest

import dnsfixture
from dnsfixture import ScriptedServer, rr
from dnsserver import DnsServer, answers, section, status

DNS_SERVER = sys.argv.pop(1)
DNS_QUERY = sys.argv.pop(1)
MINIMAL_ROOT = "127.0.0.41"


def minimal_root(q):
    """A root that answers ". NS" without the servers' addresses (as a root with minimal
    responses may) and refers test. to the fixture's TLD server."""
    if q.name == "." and q.type == 2:
        return q.reply(answer=[rr(".", "NS", 86400, "ns.root.")])
    if q.name == "test." or q.name.endswith(".test."):
        return q.reply(authority=[rr("test.", "NS", 86400, "ns1.test.")],
                       additional=[rr("ns1.test.", "A", 86400, "127.0.0.3")], aa=False)
    return q.reply(authority=[rr(".", "SOA", 86400, ("ns.root.", "admin.root.", 60))], rcode=3)


class PrimingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy()
        cls.h.start()
        cls.hints = cls.h.write_hints()
        cls.minimal_hints = os.path.join(cls.h.workdir, "minimal.hints")
        with open(cls.minimal_hints, "w") as f:
            f.write(". 3600000 IN NS ns.root.\nns.root. 3600000 IN A %s\n" % MINIMAL_ROOT)
        cls.root = ScriptedServer(MINIMAL_ROOT, minimal_root)
        cls.root.start()

    @classmethod
    def tearDownClass(cls):
        cls.root.stop()
        cls.h.stop()
        cls.h.cleanup()

    def server(self, name, hints, listen):
        s = DnsServer(DNS_SERVER, self.h.workdir, name, hints, listen)
        self.addCleanup(s.stop)
        return s

    def test_root_ns_query_leaves_uncached_tlds_resolvable(self):
        s = self.server("nsd-root", self.hints, "127.0.0.1")
        out = s.dig(".", "NS")
        self.assertEqual(status(out), "NOERROR", out)
        self.assertIn(["ns.root."], [r[4:] for r in section(out, "ANSWER")])
        # Nothing below the root is cached yet: these start at the root.
        for name, addr in (("www.a.test", "192.0.2.1"), ("host.b.example", "192.0.2.4")):
            out = s.dig(name)
            self.assertEqual(status(out), "NOERROR", out)
            self.assertEqual(answers(out)[0][4], addr)
        self.assertEqual(status(s.dig("www.nowhere")), "NXDOMAIN")

    def test_root_ns_set_without_addresses_falls_back_to_hints(self):
        s = self.server("minimal-root", self.minimal_hints, "127.0.0.42")
        self.assertEqual(status(s.dig(".", "NS")), "NOERROR")
        out = s.dig("www.a.test")
        self.assertEqual(status(out), "NOERROR", out)
        self.assertEqual(answers(out)[0][4], "192.0.2.1")
        out = s.dig("mail.a.test")
        self.assertEqual(answers(out)[0][4], "192.0.2.25")

    def test_cold_start_primes_the_root_first(self):
        p = subprocess.run([DNS_QUERY, "--hints", self.hints, "--trace", "www.a.test"],
                           capture_output=True, text=True, timeout=30)
        steps = [l for l in p.stdout.splitlines() if l.startswith(";; NOERROR")]
        self.assertIn("answer: . NS from 127.0.0.2#53", steps[0], p.stdout)
        self.assertIn("referral: test. A from 127.0.0.2#53", steps[1], p.stdout)
        self.assertIn("192.0.2.1", p.stdout)


if __name__ == "__main__":
    unittest.main()
