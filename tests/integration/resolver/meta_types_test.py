"""Question types that are not data (issue 13, defect 2). A TYPE0 question once stored its
NODATA answer in the slot of NXDOMAIN entries, after which the name was NODATA for every type.
Type 0, the meta-TYPEs (OPT, TSIG, TKEY), the obsolete MAILA/MAILB and the reserved range
128-248 get FORMERR, zone transfers REFUSED over UDP and TCP (as Unbound answers), none of
them goes upstream or into the cache; ANY is still resolved."""
import sys
import unittest

import dnsfixture
from dnsserver import DnsServer, answers, rcode_of, status

DNS_SERVER = sys.argv.pop(1)


class MetaTypesTest(unittest.TestCase):
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

    def test_type0_gets_formerr_and_never_poisons_the_name(self):
        for _ in range(2):
            self.assertEqual(status(self.server.dig("long.count.test", "TYPE0")), "FORMERR")
        self.assertEqual(self.h.relay.count("long.count.test", 0), 0)  # never sent upstream
        out = self.server.dig("long.count.test", "A")
        self.assertEqual(status(out), "NOERROR")
        self.assertEqual(answers(out)[0][4], "192.0.2.9")
        out = self.server.dig("long.count.test", "TYPE0")
        self.assertEqual(status(out), "FORMERR")
        self.assertEqual(answers(self.server.dig("long.count.test", "A"))[0][4], "192.0.2.9")

    def test_meta_and_obsolete_types_get_formerr(self):
        for qtype in ("OPT", "TSIG", "TKEY", "MAILA", "MAILB", "TYPE128", "TYPE248"):
            self.assertEqual(status(self.server.dig("www.a.test", qtype)), "FORMERR", qtype)
            self.assertEqual(status(self.server.dig("www.a.test", qtype, "+tcp")), "FORMERR", qtype)
        self.assertEqual(answers(self.server.dig("www.a.test", "A"))[0][4], "192.0.2.1")

    def test_zone_transfers_refused_over_udp_and_tcp(self):
        for qtype in (251, 252):  # IXFR, AXFR
            for tcp in (False, True):
                self.assertEqual(rcode_of(self.server.listen, "a.test", qtype, tcp), 5, (qtype, tcp))
        self.assertEqual(status(self.server.dig("a.test", "SOA")), "NOERROR")

    def test_any_is_resolved(self):
        out = self.server.dig("www.a.test", "ANY")
        self.assertEqual(status(out), "NOERROR")
        self.assertTrue(answers(out))
        self.assertEqual(answers(self.server.dig("www.a.test", "AAAA"))[0][4], "2001:db8::1")


if __name__ == "__main__":
    unittest.main()
