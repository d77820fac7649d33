"""Dead servers are remembered (issue 13, defect 12; Unbound's infra cache). dead.test.'s two
servers swallow every query. After the first name in the zone has timed out to SERVFAIL, a new
name in the same zone used to time out all over again (9-12 s, longer than clients wait); now
the servers are known dead for a while (backing off as they stay dead), so a new name gets
SERVFAIL without queries to them. Asserted on behaviour (how many queries reach the dead
servers); the times are printed, not asserted."""
import sys
import time
import unittest

import dnsfixture
from dnsfixture import SilentServer
from dnsserver import DnsServer, dig, section, status

DNS_SERVER = sys.argv.pop(1)
DEAD = ["127.0.0.54", "127.0.0.55"]

EXTRA_ZONES = {
    "127.0.0.3": {"test.": """
dead.test. 3600 IN NS ns1.dead.test.
dead.test. 3600 IN NS ns2.dead.test.
ns1.dead.test. 3600 IN A %s
ns2.dead.test. 3600 IN A %s
half.test. 3600 IN NS ns1.half.test.
half.test. 3600 IN NS ns2.half.test.
ns1.half.test. 3600 IN A %s
ns2.half.test. 3600 IN A 127.0.0.5
""" % (DEAD[0], DEAD[1], DEAD[0])},
    "127.0.0.5": {"half.test.": dnsfixture.SOA.format(z="half.test.", minimum=60) + """
half.test. 300 IN NS ns1.half.test.
half.test. 300 IN NS ns2.half.test.
www1.half.test. 300 IN A 192.0.2.91
www2.half.test. 300 IN A 192.0.2.92
"""},
}


class DeadServersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy(extra_zones=EXTRA_ZONES)
        cls.h.start()
        cls.silent = [SilentServer(a) for a in DEAD]
        for s in cls.silent:
            s.start()
        cls.server = DnsServer(DNS_SERVER, cls.h.workdir, "main", cls.h.write_hints())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        for s in cls.silent:
            s.stop()
        cls.h.stop()
        cls.h.cleanup()

    def received(self):
        return sum(s.received for s in self.silent)

    def timed_dig(self, name):
        started = time.monotonic()
        out = dig("127.0.0.1", "+time=20", name)
        return out, time.monotonic() - started

    def test_dead_zone_fails_fast_for_new_names(self):
        out, first = self.timed_dig("www1.dead.test")
        self.assertEqual(status(out), "SERVFAIL")
        sent = self.received()
        self.assertGreater(sent, 0)
        out, second = self.timed_dig("www2.dead.test")
        print("dead zone: first name SERVFAIL after %.2f s, a new name after %.2f s (%d queries to the dead servers)"
              % (first, second, self.received() - sent))
        self.assertEqual(status(out), "SERVFAIL")
        # At most one probe may go out, not another round of timeouts to every server.
        self.assertLessEqual(self.received() - sent, 1)

    def test_live_server_beside_a_dead_one_still_used(self):
        for name, address in (("www1.half.test", "192.0.2.91"), ("www2.half.test", "192.0.2.92")):
            out = self.server.dig(name)
            self.assertEqual(status(out), "NOERROR", out)
            self.assertEqual([r[4] for r in section(out, "ANSWER")], [address])


if __name__ == "__main__":
    unittest.main()
