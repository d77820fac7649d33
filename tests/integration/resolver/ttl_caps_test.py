"""The TTL caps bound the first answer too (issue 13, defect 9): max_ttl and negative_max_ttl
used to apply only to the cached copy, so the client that caused the lookup got the
authority's TTLs. www.a.test has TTL 300; a.test's negative TTL is 2 (SOA MINIMUM)."""
import sys
import unittest

import dnsfixture
from dnsserver import DnsServer, section, status

DNS_SERVER = sys.argv.pop(1)


class TtlCapsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy()
        cls.h.start()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.h.write_hints(),
                               extra="max_ttl = 60\nnegative_max_ttl = 1\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.h.stop()
        cls.h.cleanup()

    def test_first_answer_capped(self):
        out = self.server.dig("www.a.test")
        self.assertEqual(status(out), "NOERROR")
        ttls = [int(r[1]) for r in section(out, "ANSWER")]
        self.assertTrue(ttls)
        self.assertLessEqual(max(ttls), 60)

    def test_first_cname_chain_capped(self):
        out = self.server.dig("chain.a.test")
        self.assertEqual(status(out), "NOERROR")
        rows = section(out, "ANSWER")
        self.assertEqual(len(rows), 3)  # chain.a.test -> www.b.example -> final.a.test
        self.assertLessEqual(max(int(r[1]) for r in rows), 60)

    def test_first_negative_answer_capped(self):
        for name in ("nothere.a.test", "www.a.test"):
            out = self.server.dig(name, "NS" if name == "www.a.test" else "A")
            self.assertIn(status(out), ("NXDOMAIN", "NOERROR"))
            soa = [r for r in section(out, "AUTHORITY") if r[3] == "SOA"]
            self.assertEqual(len(soa), 1, out)
            self.assertLessEqual(int(soa[0][1]), 1)


if __name__ == "__main__":
    unittest.main()
