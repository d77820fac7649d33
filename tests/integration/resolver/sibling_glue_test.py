"""Sibling glue (issue 13, defect 8): sib1.test. is served by ns.sib2.test. and sib2.test. by
ns.sib1.test.; each server lives in the other zone, so the only way in is the glue test. gives
for both in its referrals. Such zones used to resolve to SERVFAIL (only glue inside the
delegated zone itself was used). Glue is believed inside the referring server's zone, as
Unbound does; glue for a name outside it still is not (that would let any zone poison any
other)."""
import sys
import unittest

import dnsfixture
from dnsserver import DnsServer, section, status

DNS_SERVER = sys.argv.pop(1)
SIB1 = "127.0.0.52"
SIB2 = "127.0.0.53"

EXTRA_ZONES = {
    "127.0.0.3": {"test.": """
sib1.test. 3600 IN NS ns.sib2.test.
sib2.test. 3600 IN NS ns.sib1.test.
ns.sib1.test. 3600 IN A %s
ns.sib2.test. 3600 IN A %s
""" % (SIB1, SIB2)},
    SIB1: {"sib2.test.": dnsfixture.SOA.format(z="sib2.test.", minimum=60) + """
sib2.test. 300 IN NS ns.sib1.test.
www.sib2.test. 300 IN A 192.0.2.82
"""},
    SIB2: {"sib1.test.": dnsfixture.SOA.format(z="sib1.test.", minimum=60) + """
sib1.test. 300 IN NS ns.sib2.test.
www.sib1.test. 300 IN A 192.0.2.81
"""},
}


class SiblingGlueTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()
        cls.h.cleanup()

    def test_zones_served_by_each_other_resolve(self):
        s = DnsServer(DNS_SERVER, self.h.workdir, "sibs", self.h.write_hints())
        try:
            for qname, address in (("www.sib1.test", "192.0.2.81"), ("www.sib2.test", "192.0.2.82")):
                out = s.dig(qname)
                self.assertEqual(status(out), "NOERROR", out)
                self.assertEqual([r[4] for r in section(out, "ANSWER")], [address])
        finally:
            s.stop()

    def test_without_minimisation_too(self):
        s = DnsServer(DNS_SERVER, self.h.workdir, "noqmin", self.h.write_hints(), extra="qname_minimisation = false\n")
        try:
            out = s.dig("www.sib2.test")
            self.assertEqual(status(out), "NOERROR", out)
            self.assertEqual([r[4] for r in section(out, "ANSWER")], ["192.0.2.82"])
        finally:
            s.stop()


if __name__ == "__main__":
    unittest.main()
