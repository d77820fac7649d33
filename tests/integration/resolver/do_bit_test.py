"""The DO bit of a query is copied into the reply (issue 13, defect 11; RFC 3225 section 3),
on every path: a resolution, a cache hit, a cache-only (RD=0) question and an error reply."""
import sys
import unittest

import dnsfixture
from dnsserver import DnsServer, status

DNS_SERVER = sys.argv.pop(1)


def edns_flags(out):
    for line in out.splitlines():
        if line.startswith("; EDNS:"):
            return line.split("flags:")[1].split(";")[0].split()
    return None


class DoBitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy()
        cls.h.start()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.h.write_hints())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.h.stop()
        cls.h.cleanup()

    def test_do_copied_on_resolution_and_cache_hit(self):
        for _ in range(2):  # resolved, then from the cache
            out = self.server.dig("+dnssec", "www.a.test")
            self.assertEqual(status(out), "NOERROR")
            self.assertEqual(edns_flags(out), ["do"])
        out = self.server.dig("+dnssec", "+norec", "www.a.test")
        self.assertEqual(edns_flags(out), ["do"])

    def test_do_clear_when_not_asked(self):
        out = self.server.dig("www.a.test")
        self.assertEqual(status(out), "NOERROR")
        self.assertEqual(edns_flags(out), [])

    def test_do_copied_on_error_replies(self):
        out = self.server.dig("+dnssec", "-t", "TYPE0", "www.a.test")
        self.assertEqual(status(out), "FORMERR")
        self.assertEqual(edns_flags(out), ["do"])


if __name__ == "__main__":
    unittest.main()
